"""Tolerant decoding: any body Meta can sign decodes, and what it yields can be stored.

Meta escapes every non-ASCII character (reference §1.1), so a lone UTF-16 surrogate such as
``"\\udfff"`` is a few ASCII bytes that Meta signs like any other. NUL (``"\\u0000"``) is valid
JSON that PostgreSQL text cannot hold, and a change may carry a 9,000-character ``field``.
"""

import io
import json

import pytest

import payloads
from wa_cloud import webhook
from wa_cloud.webhook import (
    KEY_MAX_CHARS,
    PayloadError,
    decode_body,
    inbound_messages,
    storable,
)
from wa_cloud.webhook_stream import history_items, parse_body

REPLACEMENT = "\ufffd"

# (JSON text of a string, what it decodes to once storable); Meta escapes like ensure_ascii.
SURROGATE_CASES = [
    (r"\udfff", REPLACEMENT),
    (r"\udc00\ud800", REPLACEMENT * 2),
    (r"ab\ud800", "ab" + REPLACEMENT),  # a lone high one at the end
    (r"x\ud800y", "x" + REPLACEMENT + "y"),
    (r"\ud800\u0041", REPLACEMENT + "A"),
    (r"\udbff\udbff", REPLACEMENT * 2),
    (r"\ud800\ud800\udc00", REPLACEMENT + "\U00010000"),
    (r"\ud83d\ude00", "\U0001f600"),  # a pair: an emoji, as Meta escapes it
    (r"\ud83d\ude00" * 5 + r"\udc00", "\U0001f600" * 5 + REPLACEMENT),
    (r"\\ud800", "\\ud800"),  # an escaped backslash, then text
]


class Trickle:
    """A stream that returns at most ``step`` bytes per read."""

    def __init__(self, data, step):
        self.data, self.step, self.position = data, step, 0

    def read(self, size=-1):
        size = self.step if size is None or size < 0 else min(size, self.step)
        piece = self.data[self.position:self.position + size]
        self.position += len(piece)
        return piece


def signed_text_body(text_json, pad=0):
    """An inbound text message whose body is the JSON string ``text_json`` (escaped form)."""
    payload = payloads.inbound_text(body="@BODY@")
    payload["entry"][0]["changes"][0]["value"]["padding"] = "p" * pad
    return payloads.dumps(payload).replace(b"@BODY@", text_json.encode())


# --------------------------------------------------------------------------- the door


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused_at_the_door(constant):
    body = ('{"object": "whatsapp_business_account", "entry": [], "n": %s}' % constant).encode()
    json.loads(body)  # Python reads them...
    with pytest.raises(PayloadError, match=constant.lstrip("-")):
        decode_body(body)  # ...JSON does not


@pytest.mark.parametrize("body", [
    b"\xff\xfe", b'{"a": ', b"[1, 2]", b'"text"', b"\xef\xbb\xbf{}", b"[" * 100_000,
])
def test_bodies_that_are_not_a_json_object_are_refused(body):
    with pytest.raises(PayloadError):
        decode_body(body)


@pytest.mark.parametrize(("text_json", "_expected"), SURROGATE_CASES)
def test_lone_surrogates_and_nul_pass_the_door(text_json, _expected):
    assert decode_body(signed_text_body(text_json))["object"] == "whatsapp_business_account"
    assert decode_body(signed_text_body(r"a\u0000b"))


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize(("text_json", "expected"), SURROGATE_CASES)
@pytest.mark.parametrize("step", [1, 5, 6, 7, 11, 12, 13, 64, 1 << 20])
def test_lone_surrogates_become_replacement_characters(text_json, expected, step):
    body = signed_text_body(text_json)
    (change,) = parse_body(lambda: Trickle(body, step))
    assert change.value["messages"][0]["text"]["body"] == expected
    (message,) = inbound_messages(change.value)
    assert message.text == expected
    message.text.encode("utf-8")  # what PostgreSQL and the logs need


@pytest.mark.parametrize(("text_json", "expected"), SURROGATE_CASES[:3])
def test_a_lone_surrogate_far_into_the_body_is_found(text_json, expected):
    # Past the first slices the compiled parser has already read: the whole body is read
    # again by the Python backend, and the emoji before it stay whole.
    emoji = r"\ud83d\ude00" * 20_000
    body = signed_text_body(emoji + text_json, pad=200_000)
    (change,) = parse_body(lambda: io.BytesIO(body))
    assert change.value["messages"][0]["text"]["body"] == "\U0001f600" * 20_000 + expected


def test_history_message_with_a_lone_surrogate_is_read():
    thread = {"id": "5511911110000", "messages": [
        {"from": "5511911110000", "id": "wamid.%d" % n, "timestamp": "1739230955",
         "type": "text", "text": {"body": "@%d@" % n}} for n in range(3)]}
    payload = payloads.history_chunk(threads=[thread])
    body = payloads.dumps(payload)
    body = body.replace(b"@0@", rb"ok \ud83d\ude00").replace(b"@1@", rb"bad \udfff")
    body = body.replace(b"@2@", rb"end \ud800")
    texts = [message.text for item in history_items(lambda: Trickle(body, 7), change_index=0)
             for _wa_id, message in item.messages]
    assert texts == ["ok \U0001f600", "bad " + REPLACEMENT, "end " + REPLACEMENT]


def test_deep_nesting_decodes_without_recursion():
    depth = 50_000
    payload = payloads.inbound_text()
    value = payload["entry"][0]["changes"][0]["value"]
    deep = b"[" * depth + b"]" * depth
    body = payloads.dumps(payload).replace(
        b'"messaging_product"', b'"deep": ' + deep + b', "messaging_product"')
    (change,) = parse_body(lambda: io.BytesIO(body))
    deep = change.value.pop("deep")
    assert change.value == value
    for _level in range(depth - 1):
        (deep,) = deep
    assert deep == []


# --------------------------------------------------------------------------- extractors


def test_storable_removes_nul_and_repairs_surrogates():
    assert storable("a\x00b\x00") == "ab"
    assert storable("ok \udfff \U0001f600") == "ok \ufffd \U0001f600"
    assert storable("Olá") == "Olá"


def test_identifiers_are_cut_and_cleaned_text_is_kept_whole():
    payload = payloads.inbound_text(wamid="w" * 9000, from_="5511\x0099887766",
                                    body="x\x00" * 9000, profile_name="N" * 9000)
    (message,) = inbound_messages(payload["entry"][0]["changes"][0]["value"])
    assert message.wamid == "w" * KEY_MAX_CHARS
    assert message.from_wa_id == "551199887766"
    assert message.profile_name == "N" * KEY_MAX_CHARS
    assert message.text == "x" * 9000
    assert message.raw["id"] == "w" * 9000  # the fragment as received


def test_change_field_and_routing_ids_are_storable():
    payload = payloads.inbound_text(phone_number_id="106540352242922\x00")
    payload["entry"][0]["changes"][0]["field"] = "f" * 9000
    (change,) = parse_body(lambda: io.BytesIO(payloads.dumps(payload)))
    assert change.field == "f" * KEY_MAX_CHARS
    assert change.phone_number_id == "106540352242922"
    # The value keeps the NUL: json.dumps escapes it, so the stored payload can hold it.
    assert change.value["metadata"]["phone_number_id"] == "106540352242922\x00"
    assert "\\u0000" in json.dumps(change.value, ensure_ascii=False)


@pytest.mark.parametrize("value", ["1e400", 1e400, float("-inf"), "99" * 200, "abc", True])
def test_timestamps_out_of_every_range_never_raise(value):
    payload = payloads.inbound_text()
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = value
    (message,) = inbound_messages(payload["entry"][0]["changes"][0]["value"])
    assert message.timestamp is None or isinstance(message.timestamp, int)
    assert webhook._int(value) == message.timestamp


@pytest.mark.parametrize(("errors", "expected"), [
    ([], (None, None, None)),
    ("not a list", (None, None, None)),
    ([{"code": 131049, "title": "Blocked", "error_data": {"details": "Pacing"}}],
     (131049, "Blocked", "Pacing")),
    ([{"code": "131026", "title": "T", "message": "M"}], (131026, "T", "M")),
    ([{"code": 2**40, "title": ["x"], "error_data": "text"}], (None, None, None)),
    ([{"code": "abc", "title": "a\x00b", "message": "bad \udfff"}], (None, "ab", "bad \ufffd")),
])
def test_error_info_is_typed_for_the_database(errors, expected):
    info = webhook.error_info(errors)
    assert (info.code, info.title, info.details) == expected


def test_status_pricing_is_typed():
    payload = payloads.statuses(pricing=True)
    (status,) = webhook.statuses(payload["entry"][0]["changes"][0]["value"])
    assert (status.pricing_category, status.pricing_type) == ("utility", "regular")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] = {"category": [1]}
    (status,) = webhook.statuses(payload["entry"][0]["changes"][0]["value"])
    assert (status.pricing_category, status.pricing_type) == (None, None)
