"""Template parameters: sanitising to Meta's rules, template reading, mapping checks, sends,
answers and wa.me links."""

import json
import re
import urllib.parse

import pytest

from wa_cloud import template_library as lib
from wa_cloud.template_params import (
    BODY_PARAM_LIMIT,
    CANCEL,
    CONFIRM,
    HEADER_PARAM_LIMIT,
    TemplateSpec,
    fold,
    make_payload,
    parse_payload,
    parse_reply,
    placeholders,
    render_text,
    sanitize_param,
    wa_me_link,
)

# The fake server's rule, itself Meta's: no newline/tab, at most 4 consecutive spaces.
META_REFUSES = re.compile(r"[\n\t]| {5,}")


# ---------------------------------------------------------------------------
# sanitize_param
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("Rua das Flores, 123\nSão Paulo", "Rua das Flores, 123, São Paulo"),
    ("Rua das Flores, 123,\r\n\r\nSão Paulo\n", "Rua das Flores, 123, São Paulo"),
    ("Sala\t3", "Sala 3"),
    ("Dr.      Paulo", "Dr. Paulo"),
    ("  Maria  ", "Maria"),
    ("Ma\u200bria", "Maria"),
    ("2:30\u202fPM", "2:30 PM"),
    ("", "-"),
    (None, "-"),
    (False, "-"),
    (" \n\t ", "-"),
    (42, "42"),
])
def test_sanitize_param(raw, expected):
    assert sanitize_param(raw) == expected


def test_sanitize_param_never_produces_what_meta_refuses():
    nasty = "a\n\n\tb     c\r\nd" + " " * 30 + "e\u2028f"
    clean = sanitize_param(nasty)
    assert not META_REFUSES.search(clean)
    assert clean == "a, b c, d e, f"


def test_sanitize_param_length_limits():
    long_text = "x" * 2000
    body = sanitize_param(long_text)
    assert len(body) == BODY_PARAM_LIMIT and body.endswith("…")
    header = sanitize_param(long_text, limit=HEADER_PARAM_LIMIT)
    assert len(header) == HEADER_PARAM_LIMIT
    assert sanitize_param("short", limit=HEADER_PARAM_LIMIT) == "short"
    with pytest.raises(ValueError):
        sanitize_param("x", limit=0)


def test_sanitize_param_custom_fallback():
    assert sanitize_param("", fallback="a combinar") == "a combinar"


# ---------------------------------------------------------------------------
# TemplateSpec
# ---------------------------------------------------------------------------

POSITIONAL = [
    {"type": "HEADER", "format": "TEXT", "text": "Consulta {{1}}"},
    {"type": "BODY", "text": "Olá {{1}}, sua consulta em {{2}} às {{3}} está confirmada."},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Confirmar"},
                                     {"type": "QUICK_REPLY", "text": "Cancelar"}]},
]
NAMED = [
    {"type": "BODY",
     "text": "Olá {{customer_name}}, lembrete da sua consulta amanhã às {{appointment_time}}."},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Confirmar"}]},
]


def test_spec_positional():
    spec = TemplateSpec.from_components("appointment_confirmation", "pt_BR", POSITIONAL,
                                        "POSITIONAL")
    assert spec.param_keys == ["header:1", "body:1", "body:2", "body:3"]
    assert [b.text for b in spec.quick_replies] == ["Confirmar", "Cancelar"]
    assert spec.problems == ()
    assert spec.check_keys(["header:1", "body:1", "body:2", "body:3"]) == []
    assert spec.params[0].limit == HEADER_PARAM_LIMIT
    assert spec.params[1].limit == BODY_PARAM_LIMIT


def test_spec_positional_order_is_numeric():
    spec = TemplateSpec.from_components("t", "pt_BR", [
        {"type": "BODY", "text": "{{2}} antes de {{1}} e {{10}}"}])
    assert spec.param_keys == ["body:1", "body:2", "body:10"]


def test_spec_guesses_named_format():
    spec = TemplateSpec.from_components("appointment_reminder", "pt_BR", NAMED)
    assert spec.parameter_format == "NAMED"
    assert spec.param_keys == ["body:customer_name", "body:appointment_time"]


def test_check_keys_reports_every_mismatch():
    spec = TemplateSpec.from_components("t", "pt_BR", POSITIONAL, "POSITIONAL")
    problems = spec.check_keys(["body:1", "body:2", "body:4", "body:4"])
    text = " | ".join(problems)
    assert "filled twice: body:4" in text
    assert "missing: header:1, body:3" in text
    assert "not in the template: body:4" in text


def test_spec_problems_for_unsupported_components():
    spec = TemplateSpec.from_components("t", "en_US", [
        {"type": "HEADER", "format": "LOCATION"},
        {"type": "BODY", "text": "Hi {{1}}"},
    ])
    assert any("location header" in p for p in spec.problems)
    no_body = TemplateSpec.from_components("t", "en_US", [{"type": "FOOTER", "text": "x"}])
    assert "the template has no body" in no_body.problems


def test_build_components_positional_with_payloads():
    spec = TemplateSpec.from_components("t", "pt_BR", POSITIONAL, "POSITIONAL")
    values = {"header:1": "amanhã", "body:1": "Maria", "body:2": "terça", "body:3": "14:30"}
    components = spec.build_components(values, {0: "CONFIRM:7", 1: "CANCEL:7"})
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "amanhã"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Maria"},
                                        {"type": "text", "text": "terça"},
                                        {"type": "text", "text": "14:30"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "CONFIRM:7"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1",
         "parameters": [{"type": "payload", "payload": "CANCEL:7"}]},
    ]
    json.dumps(components)  # a send payload must be JSON


def test_build_components_named_carries_parameter_name():
    spec = TemplateSpec.from_components("t", "pt_BR", NAMED, "NAMED")
    components = spec.build_components(
        {"body:customer_name": "Maria", "body:appointment_time": "14:30"})
    assert components == [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "customer_name", "text": "Maria"},
        {"type": "text", "parameter_name": "appointment_time", "text": "14:30"}]}]
    with pytest.raises(KeyError):
        spec.build_components({"body:customer_name": "Maria"})


def test_hydrate_and_fit():
    spec = TemplateSpec.from_components("t", "pt_BR", POSITIONAL, "POSITIONAL")
    values = {"body:1": "Maria", "body:2": "x" * 1000, "body:3": "y" * 500}
    assert len(spec.hydrate(values)) > 1024
    fitted = spec.fit(values)
    assert len(spec.hydrate(fitted)) <= 1024
    assert fitted["body:1"] == "Maria"
    assert fitted["body:2"].endswith("…")
    assert values["body:2"] == "x" * 1000, "fit() returns a new dict"


# ---------------------------------------------------------------------------
# Answers and payloads
# ---------------------------------------------------------------------------

CONFIRM_WORDS = "1, SIM, CONFIRMAR, CONFIRMAR PRESENÇA, CONFIRM"
CANCEL_WORDS = "2, NÃO, CANCELAR HORÁRIO, CANCEL"


@pytest.mark.parametrize("text, expected", [
    ("1", CONFIRM),
    (" 1 ", CONFIRM),
    ("1 - Confirmar", CONFIRM),
    ("1.", CONFIRM),
    ("sim!", CONFIRM),
    ("*Confirmar presença*", CONFIRM),
    ("2", CANCEL),
    ("2 - Cancelar horário", CANCEL),
    ("nao", CANCEL),
    ("Não", CANCEL),
    ("Cancel", CANCEL),
    ("1 minuto atrasado", None),
    ("2 - Confirmar", None),
    ("12", None),
    ("olá, tudo bem?", None),
    ("", None),
    (None, None),
])
def test_parse_reply(text, expected):
    assert parse_reply(text, CONFIRM_WORDS, CANCEL_WORDS) == expected


def test_fold():
    assert fold("  Não,  obrigado! ") == "NAO OBRIGADO"
    assert fold("*STOP!*") == fold("stop.") == "STOP"


def test_payload_round_trip():
    assert make_payload(CONFIRM, 42) == "CONFIRM:42"
    assert parse_payload("CANCEL:42") == (CANCEL, 42)
    assert parse_payload("CONFIRM:42") == (CONFIRM, 42)
    for other in ("Confirmar", "CONFIRM:", "CONFIRM:abc", "DELETE:1", None, "CONFIRM:1:2"):
        assert parse_payload(other) is None


# ---------------------------------------------------------------------------
# Manual message
# ---------------------------------------------------------------------------


def test_render_text_only_replaces_known_keys():
    text = render_text("Olá *{name}*, {date} {unknown} {name.__class__} {{1}}",
                       {"name": "Maria", "date": "terça"})
    assert text == "Olá *Maria*, terça {unknown} {name.__class__} {{1}}"


def test_wa_me_link_encodes_everything():
    text = "Olá *Maria*! 👋\n1 - Confirmar & 2 - Cancelar #1?"
    url = wa_me_link("+55 (11) 98765-4321", text)
    assert url.startswith("https://wa.me/5511987654321?text=")
    encoded = url.split("?text=", 1)[1]
    assert " " not in encoded and "\n" not in encoded and "&" not in encoded
    assert "%0A" in encoded and "%F0%9F%91%8B" in encoded
    assert urllib.parse.unquote(encoded) == text
    assert wa_me_link("5511987654321", "") == "https://wa.me/5511987654321"
    with pytest.raises(ValueError):
        wa_me_link("", "x")


# ---------------------------------------------------------------------------
# Library templates
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind, lang", lib.entries())
def test_library_templates_follow_meta_rules(kind, lang):
    payload = lib.creation_payload(kind, lang)
    assert payload["category"] == "UTILITY"
    assert payload["parameter_format"] == "NAMED"
    assert re.fullmatch(r"[a-z0-9_]{1,512}", payload["name"])
    body = next(c for c in payload["components"] if c["type"] == "BODY")
    names = placeholders(body["text"])
    assert set(names) <= set(lib.DEFAULT_SOURCES)
    examples = {e["param_name"] for e in body["example"]["body_text_named_params"]}
    assert examples == set(names), "every variable needs an example"
    text = body["text"]
    assert not text.lstrip().startswith("{{") and not text.rstrip().endswith("}}")
    assert "}}{{" not in text.replace(" ", "")
    assert len(text) <= 1024
    footer = next(c for c in payload["components"] if c["type"] == "FOOTER")
    assert len(footer["text"]) <= 60
    for comp in payload["components"]:
        for button in comp.get("buttons", []):
            assert button["type"] == "QUICK_REPLY" and len(button["text"]) <= 25
            # The bare opt-out keyword must never be a button label.
            assert fold(button["text"]) not in {"CANCELAR", "STOP", "SAIR", "PARAR"}
    spec = TemplateSpec.from_components(payload["name"], lang, payload["components"],
                                        payload["parameter_format"])
    assert spec.problems == ()
    assert len(spec.quick_replies) == (0 if kind == "cancellation" else 2)
    assert lib.message_type_of(payload["name"]) == kind


def test_library_portuguese_reads_naturally():
    body = lib.components("reminder", "pt_BR")[0]["text"]
    assert body.startswith("Olá, {{customer_name}}! Passando para lembrar")
    assert "às {{appointment_time}}" in body
    assert lib.message_type_of("hello_world") is None
    with pytest.raises(ValueError):
        lib.template_name("birthday")
