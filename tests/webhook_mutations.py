"""Meta's webhook payloads, mutated the way a careless or hostile sender could still sign them.

One engine for the property tests (``tests/test_property_*.py``, driven by hypothesis'
``randoms()``) and ``bench/fuzz_webhook.py`` (a seeded :class:`random.Random`): every choice
comes from the ``rng`` it is given, so a seed replays the same bodies.

* :func:`mutate` applies a few of :data:`MUTATIONS` to one of Meta's shapes
  (``payloads.ALL_FACTORIES``): dropped keys, wrong types, huge strings, deep nesting, extreme
  numbers, unicode oddities (lone surrogates, NUL...), 500 entries or changes, duplicate
  keys, unknown fields.
* :func:`dumps` writes such a document as JSON bytes, including what ``json.dumps`` cannot:
  duplicate keys (:class:`Pairs`), literal text (:class:`Raw`: ``1e400``, 5,000 nested
  arrays) and lone surrogates as the ``\\udXXX`` escapes Meta's ASCII-escaped JSON would carry.
* :func:`invalid_body` breaks a body so that it is no JSON object at all (``NaN`` included).
* :func:`with_neighbour` puts a valid inbound message before the poison, in the same delivery.

Pure: the standard library and ``payloads`` (Meta's shapes, no Odoo).
"""

import copy
import json
import re

import payloads

OBJECT = "whatsapp_business_account"

#: Keys whose repetition in one object ``webhook_stream`` reads otherwise than ``json.loads``
#: (which keeps the last): it follows each occurrence of the first six, and decides whether
#: to skip a change's history array on the ``field`` seen before the value. A documented
#: difference (tests/test_property_webhook_stream.py); Meta repeats no key.
STRUCTURAL_KEYS = frozenset({"entry", "changes", "value", "history", "threads", "messages",
                             "field"})

#: Characters that have broken text handling somewhere: NUL, lone and reversed surrogates,
#: BOM, bidi override, a non-character, a line separator, an emoji, a combining accent.
ODD_TEXT = ("\x00", "\ud800", "\udfff", "\udc00\ud800", "\ufeff", "\u202e", "\uffff",
            "\u2028", "\U0001f600", "e\u0301", "\\", '"', "\x1f")
#: Numbers at the edges of int64, float and Python's int-to-text limit (4,300 digits).
EXTREME_NUMBERS = (2**63, 2**64, -(2**63) - 1, 10**100, 10**4000, 1e308, 5e-324, -0.0,
                   1.7976931348623157e308, 0, -1)
#: Values of every JSON type, for wrong-type mutations.
ODD_VALUES = (None, True, False, 0, -1, 1.5, "", "x", [], {}, [None], {"a": 1}, "null")


class Pairs(list):
    """A JSON object written with these ``(key, value)`` pairs in this order, a repeated key
    included (``json.loads`` keeps the last one)."""


class Raw(str):
    """JSON text written as it is: numbers beyond a float, nesting deeper than a Python stack."""


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(text, ascii_only):
    written = json.dumps(text, ensure_ascii=ascii_only)
    if ascii_only:
        return written
    # UTF-8 cannot carry a lone surrogate: it can only be the escape, as in Meta's JSON.
    return _SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), written)


def _write(value, out, ascii_only):
    if isinstance(value, Raw):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value, ascii_only))
    elif isinstance(value, (dict, Pairs)):
        out.append("{")
        pairs = value.items() if isinstance(value, dict) else value
        for position, (key, item) in enumerate(pairs):
            if position:
                out.append(",")
            out.append(_string(str(key), ascii_only) + ":")
            _write(item, out, ascii_only)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(",")
            _write(item, out, ascii_only)
        out.append("]")
    else:
        out.append(json.dumps(value))


def dumps(value, ascii_only=True):
    """Write ``value`` as compact JSON bytes: escaped like Meta's bodies (``ascii_only``) or
    as UTF-8, :class:`Pairs` with their repeated keys, :class:`Raw` text as it is.

    :rtype: bytes
    """
    out = []
    _write(value, out, ascii_only)
    return "".join(out).encode("utf-8")


# ---------------------------------------------------------------------------
# Mutations: each changes ``doc`` in place at places ``rng`` picks
# ---------------------------------------------------------------------------


def _slots(doc):
    """Every ``(container, key)`` below ``doc`` (lists and dicts; :class:`Pairs` are leaves)."""
    found, stack = [], [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, Pairs):
            continue
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for key, item in items:
            found.append((node, key))
            stack.append(item)
    return found


def _pick(rng, doc, accept=lambda container, key: True):
    slots = [slot for slot in _slots(doc) if accept(*slot)]
    return rng.choice(slots) if slots else (None, None)


def drop_key(rng, doc):
    container, key = _pick(rng, doc, lambda c, k: isinstance(c, dict))
    if container is not None:
        del container[key]


def wrong_type(rng, doc):
    container, key = _pick(rng, doc)
    if container is not None:
        container[key] = copy.deepcopy(rng.choice(ODD_VALUES))


def huge_string(rng, doc, sizes=(9_000, 100_000, 1_000_000), max_bytes=None):
    """Make a string ``sizes`` characters long (fewer when the body would pass
    ``max_bytes``: escaped, a character of the filler takes up to 7 bytes)."""
    container, key = _pick(rng, doc, lambda c, k: isinstance(c[k], str))
    if container is not None:
        size = rng.choice(sizes)
        if max_bytes:
            size = max(0, min(size, (max_bytes - len(dumps(doc))) // 7))
        container[key] = (container[key] + "\u00e7\U0001f600x" * size)[:size]


def deep_nesting(rng, doc, depths=(64, 512, 900, 3_000)):
    container, key = _pick(rng, doc)
    if container is not None:
        depth = rng.choice(depths)
        if rng.random() < 0.5:
            container[key] = Raw("[" * depth + "]" * depth)
        else:
            container[key] = Raw('{"a":' * depth + "{}" + "}" * depth)


def extreme_number(rng, doc):
    container, key = _pick(rng, doc)
    if container is not None:
        container[key] = rng.choice(EXTREME_NUMBERS)


def odd_text(rng, doc):
    """Put an :data:`ODD_TEXT` piece in a string value, or in a key."""
    container, key = _pick(rng, doc, lambda c, k: isinstance(c[k], str) or isinstance(c, dict))
    if container is None:
        return
    piece = rng.choice(ODD_TEXT)
    if isinstance(container[key], str) and (not isinstance(container, dict) or rng.random() < .8):
        text = container[key]
        cut = rng.randint(0, len(text))
        container[key] = text[:cut] + piece + text[cut:]
    else:
        container[key + piece] = container.pop(key)


def many_items(rng, doc, count=500, max_bytes=None):
    """Grow a list (``entry`` or ``changes`` when there is one) to ``count`` copies (fewer
    when the body would pass ``max_bytes``)."""
    container, key = _pick(rng, doc, lambda c, k: k in ("entry", "changes")
                           and isinstance(c[k], list) and c[k])
    if container is None:
        container, key = _pick(rng, doc, lambda c, k: isinstance(c[k], list) and c[k])
    if container is None:
        return
    items = container[key]
    if max_bytes:
        room = max_bytes - len(dumps(doc))
        largest = max(len(dumps(item)) for item in items) + 1
        count = max(len(items), min(count, len(items) + room // largest))
    container[key] = [copy.deepcopy(items[i % len(items)]) for i in range(count)]


def duplicate_key(rng, doc, avoid=STRUCTURAL_KEYS):
    """Turn an object into :class:`Pairs` that repeat one key (not one of ``avoid``), the
    junk copy first or last."""
    container, key = _pick(rng, doc, lambda c, k: isinstance(c[k], dict) and any(
        name not in avoid for name in c[k]))
    if container is None:
        return
    obj = container[key]
    name = rng.choice(sorted(name for name in obj if name not in avoid))
    pairs = Pairs(obj.items())
    junk = (name, copy.deepcopy(rng.choice(ODD_VALUES)))
    if rng.random() < 0.5:
        pairs.insert(0, junk)
    else:
        pairs.append(junk)
    container[key] = pairs


def unknown_field(rng, doc):
    container, key = _pick(rng, doc, lambda c, k: isinstance(c[k], dict))
    target = container[key] if container is not None else doc
    if isinstance(target, dict):
        target["x_unknown_%d" % rng.randint(0, 999)] = copy.deepcopy(rng.choice(ODD_VALUES))


def routing_keys(rng, doc):
    """Break what routes a change: its ``field``, ``phone_number_id`` or entry ``id``."""
    names = ("field", "phone_number_id", "id")
    container, key = _pick(rng, doc, lambda c, k: k in names and isinstance(c, dict))
    if container is not None:
        container[key] = rng.choice((
            "messages\x00", "\x00", "m" * 9_000, "history" * 1_300, "\ud800messages", "", 1e308,
            ["messages"], "account_update", "unknown_field"))


#: Every mutation, by name.
MUTATIONS = {f.__name__: f for f in (
    drop_key, wrong_type, huge_string, deep_nesting, extreme_number, odd_text, many_items,
    duplicate_key, unknown_field, routing_keys)}


#: The mutations that grow a body, and so take ``max_bytes``.
GROWING = ("huge_string", "many_items")


def mutate(rng, doc=None, count=None, names=None, max_bytes=None, **options):
    """Apply ``count`` (1-3) mutations picked by ``rng`` to a copy of ``doc`` (default: one
    of Meta's shapes, also picked by ``rng``).

    :param names: the mutations to pick from (default: all of :data:`MUTATIONS`)
    :param max_bytes: what the growing mutations keep the body under (roughly: the escaping
        of odd text is not counted)
    :param options: keyword arguments of a mutation, by name: ``{"huge_string": {"sizes":
        (500,)}}`` keeps the property tests small
    :return: ``(document, names of the mutations applied)``
    """
    doc = copy.deepcopy(doc if doc is not None else rng.choice(payloads.ALL_FACTORIES)())
    chosen = [rng.choice(sorted(names or MUTATIONS)) for _ in range(count or rng.randint(1, 3))]
    for name in chosen:
        kwargs = dict(options.get(name, {}))
        if max_bytes and name in GROWING:
            kwargs["max_bytes"] = max_bytes
        MUTATIONS[name](rng, doc, **kwargs)
    return doc, chosen


# ---------------------------------------------------------------------------
# Invalid bodies and valid neighbours
# ---------------------------------------------------------------------------


def invalid_body(rng, body):
    """``body`` (valid JSON bytes) broken so that it is no JSON object.

    :return: ``(bytes, what was done)``
    """
    choices = {
        "truncated": lambda: body[:rng.randint(0, max(0, len(body) - 1))],
        "trailing garbage": lambda: body + b"}",
        "NaN": lambda: body[:-1] + b',"x":NaN}',
        "Infinity": lambda: body[:-1] + b',"x":-Infinity}',
        "invalid UTF-8": lambda: body[:-1] + b',"x":"\xff\xfe"}',
        "raw control character": lambda: body[:-1] + b',"x":"a\nb"}',
        "single quotes": lambda: body.replace(b'"', b"'", 4),
        "not an object": lambda: rng.choice([b"[]", b'"x"', b"null", b"1", b"[" + body + b"]"]),
        "empty": lambda: b"",
        "BOM": lambda: b"\xef\xbb\xbf" + body,
        "number beyond the int-to-text limit": lambda: body[:-1] + b',"x":1' + b"0" * 5000 + b"}",
    }
    kind = rng.choice(sorted(choices))
    return choices[kind](), kind


def neighbour_message(wamid, wa_id, body):
    """A valid inbound text message change (``messages`` field) from ``wa_id``."""
    return payloads.inbound_text(wamid=wamid, from_=wa_id, body=body)["entry"][0]


def with_neighbour(rng, doc, wamid, wa_id):
    """Put a valid inbound message (``wamid``) in the first entry of the delivery ``doc``.

    It goes, as ``rng`` picks: in an entry of its own before the others, as the first change
    of the first entry, or as the first message of the first change's ``messages``. A ``doc``
    that is not an envelope with a list of entries becomes the second entry.

    :return: ``(document, where)``
    """
    entry = neighbour_message(wamid, wa_id, "Quero remarcar, por favor \U0001f64f")
    if not (isinstance(doc, dict) and isinstance(doc.get("entry"), list)):
        return {"object": OBJECT, "entry": [entry, doc]}, "own entry"
    first = doc["entry"][0] if doc["entry"] else None
    where = rng.choice(("own entry", "first change", "first message"))
    changes = first.get("changes") if isinstance(first, dict) else None
    if where != "own entry" and isinstance(changes, list):
        change = changes[0] if changes and isinstance(changes[0], dict) else {}
        value = change.get("value")
        if (where == "first message" and change.get("field") == "messages"
                and isinstance(value, dict) and isinstance(value.get("messages"), list)
                and isinstance(value.get("metadata"), dict)):
            value["messages"].insert(0, entry["changes"][0]["value"]["messages"][0])
            value["contacts"] = entry["changes"][0]["value"]["contacts"]
            value["metadata"] = entry["changes"][0]["value"]["metadata"]
            return doc, where
        changes.insert(0, entry["changes"][0])
        return doc, "first change"
    doc["entry"].insert(0, entry)
    return doc, "own entry"
