"""The sizes issue 10 set for the addon's code, kept by the suite rather than by memory.

No file of Odoo models, wizards or controllers over 500 lines, and no function or method of
the addon's code (its tests excepted) over 60 lines: a newcomer should find a behaviour in one
hop and read it on one screen. ``tools/`` holds the pure client and the fake Graph server, whose
size is the size of Meta's wire format; their functions are held to the same 60 lines.
"""

import ast
import pathlib

import pytest

ADDON = pathlib.Path(__file__).resolve().parent.parent / "whatsapp_coexistence"
MAX_MODEL_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def _code_files():
    return sorted(path for path in ADDON.rglob("*.py")
                  if "tests" not in path.relative_to(ADDON).parts)


def _functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_the_tree_is_found():
    assert (ADDON / "__manifest__.py").is_file()
    assert len(_code_files()) > 50


@pytest.mark.parametrize("folder", ["models", "wizards", "controllers"])
def test_no_model_file_over_500_lines(folder):
    files = sorted((ADDON / folder).glob("*.py"))
    assert files, folder
    too_long = {path.name: count for path in files
                if (count := len(path.read_text(encoding="utf-8").splitlines()))
                > MAX_MODEL_FILE_LINES}
    assert not too_long, "split these files (lines): %s" % too_long


def test_no_function_over_60_lines():
    too_long = ["%s:%d %s (%d lines)" % (path.relative_to(ADDON), line, name, count)
                for path in _code_files() for name, line, count in _functions(path)
                if count > MAX_FUNCTION_LINES]
    assert not too_long, "split these functions: %s" % too_long


def test_the_measure_counts_a_long_function(tmp_path):
    body = "\n".join("    x = %d" % i for i in range(MAX_FUNCTION_LINES))
    path = tmp_path / "sample.py"
    path.write_text("def long():\n%s\n\n\ndef short():\n    return 1\n" % body)
    assert dict((name, count) for name, _line, count in _functions(path)) == {
        "long": MAX_FUNCTION_LINES + 1, "short": 2}
