"""Streaming webhook parsing (ijson) against the in-memory parser, with Meta's payload shapes."""

import copy
import io
import json
import tracemalloc

import ijson
import pytest

import payloads
from fake_graph.state import FakeState
from wa_cloud import webhook, webhook_stream
from wa_cloud.webhook import OBJECT, PayloadError, parse_payload
from wa_cloud.webhook_stream import (
    HISTORY_REF,
    SOURCE_BODY,
    SOURCE_VALUE,
    BodyHistory,
    TextReader,
    history_items,
    load_value,
    parse_body,
)

FACTORIES = payloads.ALL_FACTORIES


class Trickle:
    """A stream that returns at most ``step`` bytes per read and counts what was read."""

    def __init__(self, data, step):
        self.data, self.step, self.position, self.closed = data, step, 0, False

    def read(self, size=-1):
        size = self.step if size is None or size < 0 else min(size, self.step)
        piece = self.data[self.position:self.position + size]
        self.position += len(piece)
        return piece

    def close(self):
        self.closed = True


def opener(payload, step=None, ascii_only=True):
    """``open_stream`` over ``payload`` serialised like Meta (or as raw UTF-8)."""
    if isinstance(payload, bytes):
        data = payload
    elif ascii_only:
        data = payloads.dumps(payload)
    else:
        data = json.dumps(payload, ensure_ascii=False).encode()
    return lambda: Trickle(data, step) if step else io.BytesIO(data)


def expected_changes(payload):
    """``parse_payload`` with each history array replaced by the marker."""
    changes = parse_payload(json.loads(json.dumps(payload)))
    result = []
    for change in changes:
        value = dict(change.value)
        if change.field == "history" and isinstance(value.get("history"), list):
            items = value.pop("history")
            value[HISTORY_REF] = {
                "source": SOURCE_BODY, "items": sum(isinstance(i, dict) for i in items)}
        result.append((change.entry_id, change.entry_time, change.field, value, change.index))
    return result


def as_tuples(changes):
    return [(c.entry_id, c.entry_time, c.field, c.value, c.index) for c in changes]


def expected_items(value):
    """What :func:`history_items` yields, computed by the in-memory ``webhook.history``."""
    return [
        ((c.phase, c.chunk_order, c.progress, c.errors, c.declined, c.complete),
         [(t.wa_id, m) for t in c.threads for m in (t.messages or [None])])
        for c in webhook.history(value)
    ]


def streamed_items(open_stream, change_index=None):
    return [
        ((i.phase, i.chunk_order, i.progress, i.errors, i.declined, i.complete),
         list(i.messages))
        for i in history_items(open_stream, change_index)
    ]


def history_value(payload):
    return payload["entry"][0]["changes"][0]["value"]


def thread(wa_id, count, text="oi %d"):
    return {"id": wa_id, "messages": [
        {"from": wa_id, "id": "wamid.%s.%d" % (wa_id, i), "timestamp": str(1739230955 + i),
         "type": "text", "text": {"body": text % i}, "history_context": {"status": "READ"}}
        for i in range(count)]}


# --------------------------------------------------------------------------- backend


def test_compiled_backend_is_used_when_installed():
    try:
        ijson.get_backend("yajl2_c")
    except ImportError:
        pytest.skip("ijson without its compiled extension")
    assert webhook_stream.BACKEND_NAME == "yajl2_c"


# --------------------------------------------------------------------------- readers


def test_text_reader_serves_utf8_in_slices():
    text = '{"a": "ação 😊"}' * 50
    reader = TextReader(text, slice_chars=7)
    assert reader.read(0) == b""
    first = reader.read(5)
    assert len(first) == 5
    assert first + reader.read(13) + reader.read() == text.encode()
    assert reader.read(10) == b""
    reader.close()


@pytest.mark.parametrize("step", [1, 2, 3, 7])
def test_multibyte_characters_split_across_reads(step):
    payload = payloads.history_chunk(threads=[thread("5511900000001", 3, "Olá, tudo bem? 😊 %d")])
    for ascii_only in (True, False):
        open_stream = opener(payload, step=step, ascii_only=ascii_only)
        assert as_tuples(parse_body(open_stream)) == expected_changes(payload)
        assert streamed_items(open_stream, 0) == expected_items(history_value(payload))


# --------------------------------------------------------------------------- envelope


@pytest.mark.parametrize("factory", FACTORIES)
def test_parse_body_matches_parse_payload(factory):
    payload = factory()
    assert as_tuples(parse_body(opener(payload))) == expected_changes(payload)


def test_parse_body_keeps_non_history_values_whole():
    payload = payloads.inbound_text()
    (change,) = parse_body(opener(payload))
    assert change.value == history_value(payload)
    assert HISTORY_REF not in change.value


def test_history_change_keeps_the_rest_of_its_value():
    payload = payloads.history_chunk()
    (change,) = parse_body(opener(payload))
    assert change.value == {
        "messaging_product": "whatsapp",
        "metadata": payloads.metadata(),
        HISTORY_REF: {"source": SOURCE_BODY, "items": 1},
    }
    assert change.phone_number_id == payloads.PHONE_NUMBER_ID
    assert change.display_phone_number == payloads.DISPLAY_PHONE_NUMBER


def test_parse_body_several_entries_and_changes():
    body = payloads.inbound_text()
    body["entry"][0]["changes"].append(payloads.statuses()["entry"][0]["changes"][0])
    body["entry"][0]["changes"].append(payloads.history_chunk()["entry"][0]["changes"][0])
    body["entry"].append(payloads.template_status()["entry"][0])
    body["entry"].append(payloads.history_declined()["entry"][0])
    body["entry"][0]["time"] = 1739321024
    changes = parse_body(opener(body))
    assert as_tuples(changes) == expected_changes(body)
    assert [c.index for c in changes] == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0)]
    assert [c.field for c in changes] == [
        "messages", "messages", "history", "message_template_status_update", "history"]


def test_parse_body_entry_id_after_changes_and_junk_items():
    body = {
        "entry": [
            None,
            {"changes": [None, {"field": "messages"}, 7], "time": "1739321024", "id": 123},
            {"id": "x", "changes": {"field": "messages"}},
            "junk",
        ],
        "object": "whatsapp_business_account",
    }
    changes = parse_body(opener(body))
    assert as_tuples(changes) == expected_changes(body)
    assert (changes[0].entry_id, changes[0].entry_time, changes[0].index) == (
        "123", 1739321024, (1, 1))


def test_parse_body_numbers_decode_like_json_loads():
    value = {"a": 1, "b": 2.5, "c": 1e3, "d": -0, "e": 12345678901234567890123, "f": None,
             "g": True, "h": [], "i": {}}
    payload = payloads.envelope("messages", value)
    (change,) = parse_body(opener(payload))
    assert change.value == value
    assert json.dumps(change.value) == json.dumps(value)  # no Decimal, same types


def test_history_key_in_another_field_is_built_whole():
    # "value" before "field", as Meta writes it: the array is skipped, then read again.
    payload = payloads.envelope("messages", {"history": [{"threads": []}], "messages": []})
    (change,) = parse_body(opener(payload))
    assert change.value == {"history": [{"threads": []}], "messages": []}
    # "field" first: never skipped.
    payload["entry"][0]["changes"][0] = {"field": "messages", "value": change.value}
    assert parse_body(opener(payload))[0].value == change.value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"{}", "not whatsapp_business_account"),
        (b'{"object": "page", "entry": []}', "not whatsapp_business_account"),
        (b'{"object": "whatsapp_business_account"}', "entry is not a list"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "entry is not a list"),
        (b'{"object": "whatsapp_business_account", ', "not JSON"),
        (b"", "not JSON"),
        (b'{"object": NaN}', "not JSON"),
    ],
)
def test_parse_body_rejects_non_whatsapp(body, message):
    with pytest.raises(PayloadError, match=message):
        parse_body(opener(body))


@pytest.mark.parametrize("obj", [None, {"a": 1}, [[["x"]]], "whatsapp_business_acc\u0000ount",
                                 "WHATSAPP_BUSINESS_ACCOUNT", 7])
def test_a_garbled_object_is_decided_by_the_changes(obj):
    """Meta signed it: a missing or garbled ``object`` loses nothing when the changes are
    WhatsApp's; a body naming another product, or without a WhatsApp change, is refused."""
    payload = payloads.inbound_text()
    payload["entry"][0]["changes"].append(payloads.template_status()["entry"][0]["changes"][0])
    if obj is None:
        del payload["object"]
    else:
        payload["object"] = obj
    expected = parse_payload(json.loads(json.dumps(dict(payload, object=OBJECT))))
    assert as_tuples(parse_body(opener(payload))) == as_tuples(expected)
    assert as_tuples(parse_payload(json.loads(json.dumps(payload)))) == as_tuples(expected)
    # Its ``messaging_product`` garbled too: the phone number it is for still says it.
    garbled = json.loads(json.dumps(payload))
    for change in garbled["entry"][0]["changes"]:
        change["value"]["messaging_product"] = "whats\\app"
    garbled["entry"][0]["changes"][1]["field"] = "feed"
    assert len(parse_body(opener(garbled))) == 2
    # No WhatsApp change: no ``messaging_product``, no phone number, no field only WhatsApp
    # sends.
    foreign = dict(payload, entry=[{"id": "1", "changes": [
        {"field": "messages", "value": {"text": "hi", "metadata": {"page": "1"}}},
        {"field": "feed", "value": {}}]}])
    with pytest.raises(PayloadError, match="not whatsapp_business_account"):
        parse_body(opener(foreign))
    with pytest.raises(PayloadError, match="not whatsapp_business_account"):
        parse_payload(json.loads(json.dumps(foreign)))


def test_another_products_webhook_is_refused_even_with_whatsapp_changes():
    payload = dict(payloads.inbound_text(), object="instagram")
    with pytest.raises(PayloadError, match="not whatsapp_business_account"):
        parse_body(opener(payload))


def test_streams_are_closed():
    streams = []
    data = payloads.dumps(payloads.history_chunk())

    def open_stream():
        streams.append(Trickle(data, 100))
        return streams[-1]

    parse_body(open_stream)
    streamed_items(open_stream, 0)
    assert len(streams) == 3 and all(s.closed for s in streams)


# --------------------------------------------------------------------------- history


def test_history_items_of_meta_example():
    payload = payloads.history_chunk()
    items = streamed_items(opener(payload), 0)
    assert items == expected_items(history_value(payload))
    ((state, messages),) = items
    assert state[:3] == (0, 1, 55)
    assert [w for w, _m in messages] == [payloads.USER_WA_ID] * 3 + ["12125557890"]
    first = messages[0][1]
    assert first.wamid == payloads.ECHO_WAMID
    assert first.status == "READ"
    assert first.timestamp == 1739230955
    assert first.sent_by_business("+1 555-078-3881") is True
    assert messages[1][1].type == "media_placeholder"


def test_history_declined():
    payload = payloads.history_declined()
    ((state, messages),) = streamed_items(opener(payload), 0)
    assert state[4] is True  # declined
    assert state[0] is None and messages == []
    assert state[3][0]["code"] == 2593109


def test_history_keys_in_any_order():
    first = thread("5511911110000", 3)
    first = {"messages": first["messages"], "id": first["id"]}  # id after the messages
    second = thread("5511922220000", 2)
    third = {"messages": [], "id": "5511933330000"}  # empty, id last
    declined = {"threads": [thread("5511944440000", 2)],
                "errors": [copy.deepcopy(payloads.ERROR_2593109)]}
    value = {
        "history": [
            {"threads": [first, second, third],
             "metadata": {"progress": 40, "chunk_order": 3, "phase": 1}},
            declined,
        ],
        "metadata": payloads.metadata(),
        "messaging_product": "whatsapp",
    }
    payload = {"entry": [{"changes": [{"value": value, "field": "history"}], "id": "1"}],
               "object": "whatsapp_business_account"}
    items = streamed_items(opener(payload), 0)
    assert items == expected_items(value)
    (state, messages), (declined_state, _declined_messages) = items
    assert state[:3] == (1, 3, 40)
    assert [w for w, _m in messages] == ["5511911110000"] * 3 + ["5511922220000"] * 2 + [
        "5511933330000"]
    assert messages[-1] == ("5511933330000", None)
    assert declined_state[4] is True


def test_history_several_items_in_one_change():
    payload = payloads.history_chunk(phase=1, chunk_order=1, progress=40,
                                     threads=[thread("5511911110000", 3)])
    second = payloads.history_chunk(phase=1, chunk_order=2, progress=80,
                                    threads=[thread("5511922220000", 2)])
    history_value(payload)["history"] += history_value(second)["history"]
    history_value(payload)["history"].insert(1, "junk")
    items = streamed_items(opener(payload), 0)
    assert items == expected_items(history_value(payload))
    assert [(s[1], len(m)) for s, m in items] == [(1, 3), (2, 2)]
    (change,) = parse_body(opener(payload))
    assert change.value[HISTORY_REF] == {"source": SOURCE_BODY, "items": 2}


def test_history_change_not_first_in_its_delivery():
    body = payloads.inbound_text()
    body["entry"][0]["changes"].append(payloads.statuses()["entry"][0]["changes"][0])
    other = payloads.history_chunk(threads=[thread("5511900000009", 2)], chunk_order=9)
    body["entry"][0]["changes"].append(other["entry"][0]["changes"][0])
    wanted = payloads.history_chunk(threads=[thread("5511911110000", 4, "Não, às 14h 😊 %d")],
                                    chunk_order=2, progress=100)
    body["entry"].append({"id": "x", "changes": ["junk"]})
    body["entry"].append(wanted["entry"][0])
    body["entry"].append(payloads.history_chunk()["entry"][0])
    changes = parse_body(opener(body))
    flat = next(i for i, c in enumerate(changes) if c.index == (2, 0))
    assert flat == 3 and changes[flat].field == "history"
    items = streamed_items(opener(body), flat)
    assert items == expected_items(history_value(wanted))
    assert items[0][1][0][1].text == "Não, às 14h 😊 0"
    assert streamed_items(opener(body), 2) == expected_items(other["entry"][0]["changes"][0]
                                                             ["value"])
    assert streamed_items(opener(body), 0) == []  # a messages change has no history
    assert streamed_items(opener(body), 99) == []


def test_history_unicode_text_raw_and_escaped():
    text = "Olá! Confirmado para terça às 14h 😊 — ação nº %d"
    payload = payloads.history_chunk(threads=[thread("5511911110000", 3, text)])
    for ascii_only in (True, False):
        items = streamed_items(opener(payload, ascii_only=ascii_only), 0)
        assert [m.text for _w, m in items[0][1]] == [text % i for i in range(3)]


def test_history_empty_threads_and_junk():
    threads = [
        {"id": "5511911110000", "messages": []},
        {"id": "5511922220000"},
        {"messages": [{"id": "wamid.noid", "type": "text", "text": {"body": "?"}}]},
        "junk",
        {"id": "5511933330000", "messages": ["junk", {"id": "wamid.x", "type": "text"}, 3]},
    ]
    payload = payloads.history_chunk(threads=threads)
    items = streamed_items(opener(payload), 0)
    assert items == expected_items(history_value(payload))
    assert [(w, m and m.wamid) for w, m in items[0][1]] == [
        ("5511911110000", None), ("5511922220000", None), (None, "wamid.noid"),
        ("5511933330000", "wamid.x")]
    assert streamed_items(opener(payloads.history_chunk(threads=[])), 0) == [
        ((0, 1, 55, [], False, False), [])]


def test_unread_messages_are_skipped():
    payload = payloads.history_chunk(chunk_order=1, threads=[thread("5511911110000", 5)])
    second = payloads.history_chunk(chunk_order=2, threads=[thread("5511922220000", 2)])
    history_value(payload)["history"] += history_value(second)["history"]
    items = history_items(opener(payload), 0)
    first = next(items)
    assert next(first.messages)[1].wamid == "wamid.5511911110000.0"
    following = next(items)
    assert following.chunk_order == 2
    assert [m.wamid for _w, m in following.messages] == [
        "wamid.5511922220000.0", "wamid.5511922220000.1"]


def many_chunks_body(count, messages=2):
    """A delivery of ``count`` history changes over two entries, one of them a status change
    between the chunks (so change and chunk indexes differ)."""
    def chunk(order):
        change = payloads.history_chunk(
            chunk_order=order, threads=[thread("55119%08d" % order, messages)])
        return change["entry"][0]["changes"][0]
    first = [chunk(order) for order in range(count // 2)]
    second = [chunk(order) for order in range(count // 2, count)]
    status = payloads.statuses()["entry"][0]["changes"][0]
    return {"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [*first, status]}, {"id": "2", "changes": second}]}


def as_read(items):
    return [(i.chunk_order, i.phase, [(w, m and m.wamid) for w, m in i.messages]) for i in items]


def test_body_history_agrees_with_history_items_change_by_change():
    payload = many_chunks_body(6)
    open_stream = opener(payload)
    history = BodyHistory(open_stream)
    for index in range(8):  # 6 chunks, the status change (index 3) and one past the end
        assert as_read(history.items(index)) == as_read(history_items(open_stream, index))
    assert [order for order, _p, _m in as_read(history.items(4))] == [3]  # asked again: restart


def test_body_history_reads_the_body_twice_not_once_per_chunk():
    payload = many_chunks_body(40)
    data = payloads.dumps(payload)
    streams = []

    def open_stream():
        streams.append(Trickle(data, 4096))
        return streams[-1]

    history = BodyHistory(open_stream)
    orders = [item.chunk_order for index in range(41) for item in history.items(index)]
    assert orders == list(range(40))
    assert sum(s.position for s in streams) <= 2 * len(data)  # one pass each
    streams.clear()
    for index in range(41):
        list(history_items(open_stream, index))
    assert sum(s.position for s in streams) > 15 * len(data)  # per chunk: from the start


def test_body_history_left_unread_and_skipped_changes():
    payload = many_chunks_body(6, messages=4)
    history = BodyHistory(opener(payload))
    first = next(history.items(0))
    assert next(first.messages)[1].wamid == "wamid.5511900000000.0"  # the rest left unread
    assert as_read(history.items(5))[0][2][-1] == ("5511900000004", "wamid.5511900000004.3")
    assert as_read(history.items(6)) == as_read(history_items(opener(payload), 6))


def test_body_history_starts_again_after_a_failed_read():
    data = payloads.dumps(many_chunks_body(6, messages=3))
    opened = []

    class Failing(Trickle):
        def read(self, size=-1):
            if len(opened) == 2 and self.position > len(data) // 3:
                raise OSError("connection lost")
            return super().read(size)

    def open_stream():
        opened.append(Failing(data, 512))
        return opened[-1]

    history = BodyHistory(open_stream)
    assert as_read(history.items(0))[0][0] == 0
    with pytest.raises(OSError):
        for index in range(1, 7):
            as_read(history.items(index))
    # The failed stream is dropped: the same and the later changes are read right.
    assert [as_read(history.items(i)) for i in (4, 5, 6)] == [
        as_read(history_items(opener(data), i)) for i in (4, 5, 6)]


def test_old_stored_value_is_read_from_itself():
    payload = payloads.history_chunk(threads=[thread("5511911110000", 3, "Olá %d")])
    text = json.dumps(history_value(payload), ensure_ascii=False)
    value = load_value(lambda: TextReader(text))
    assert value == {"messaging_product": "whatsapp", "metadata": payloads.metadata(),
                     HISTORY_REF: {"source": SOURCE_VALUE, "items": 1}}
    items = streamed_items(lambda: TextReader(text, slice_chars=5))
    assert items == expected_items(history_value(payload))
    # A value stored after this change: nothing to skip, the marker is kept.
    (change,) = parse_body(opener(payload))
    stored = json.dumps(change.value)
    assert load_value(lambda: TextReader(stored)) == change.value
    assert load_value(lambda: TextReader('{"messages": [{"id": "m"}]}')) == {
        "messages": [{"id": "m"}]}
    with pytest.raises(PayloadError):
        load_value(lambda: TextReader('{"history": ['))


def test_integers_beyond_64_bits_fall_back_to_the_python_backend():
    payload = payloads.history_chunk(threads=[thread("5511911110000", 2)])
    history_value(payload)["history"][0]["metadata"]["huge"] = 2**70
    payload["entry"][0]["time"] = 2**70
    assert as_tuples(parse_body(opener(payload))) == expected_changes(payload)
    assert streamed_items(opener(payload), 0) == expected_items(history_value(payload))


def test_messages_are_read_one_at_a_time():
    payload = payloads.history_chunk(threads=[thread("55119%08d" % i, 20) for i in range(200)])
    data = payloads.dumps(payload)
    streams = []

    def open_stream():
        streams.append(Trickle(data, 4096))
        return streams[-1]

    item = next(history_items(open_stream, 0))
    _wa_id, message = next(item.messages)
    assert message.wamid == "wamid.5511900000000.0"
    assert streams[0].position == len(data)  # first pass: the whole change
    assert streams[1].position < 3 * 4096 < len(data) / 10  # second: just what was needed


def _peak(threads):
    payload = {"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"value": {"history": [{
            "metadata": {"phase": 0, "chunk_order": 1, "progress": 100},
            "threads": [thread("55119%08d" % i, 50, "mensagem número %d da conversa")
                        for i in range(threads)]}]}, "field": "history"}]}]}
    data = payloads.dumps(payload)
    del payload
    tracemalloc.start()
    try:
        changes = parse_body(lambda: io.BytesIO(data))
        count = sum(1 for item in history_items(lambda: io.BytesIO(data), 0)
                    for _pair in item.messages)
        return tracemalloc.get_traced_memory()[1], count, changes
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_payload():
    small, small_count, _changes = _peak(20)
    large, large_count, changes = _peak(60)
    assert (small_count, large_count) == (1000, 3000)
    assert changes[0].value[HISTORY_REF]["items"] == 1
    assert large < 1.2 * small, (small, large)


def test_fake_graph_history_webhooks():
    seed = {"wabas": [{"id": payloads.WABA_ID, "phone_numbers": [{
        "id": payloads.PHONE_NUMBER_ID, "display_phone_number": "15550783881",
        "history": [{"id": "55119%08d" % t, "messages": [
            {"from_me": m % 2 == 0, "age_seconds": 1000 * (t + m + 1), "type": "text",
             "text": "oi %d" % m} for m in range(4)]} for t in range(6)]}]}]}
    state = FakeState(seed=seed, config={"history_chunk_threads": 2})
    bodies = state.history_webhooks(state.phones[payloads.PHONE_NUMBER_ID])
    assert len(bodies) >= 3
    for body in bodies:
        assert as_tuples(parse_body(opener(body))) == expected_changes(body)
        assert streamed_items(opener(body), 0) == expected_items(history_value(body))


@pytest.mark.parametrize("depth", [300, 5_000])
def test_deep_nesting_is_built_without_recursion(depth):
    """Found by tests/test_property_webhook.py: deep nesting raised ``RecursionError``, which
    the delivery job does not take for a reason. Values are built without recursion."""
    envelope = b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[%s]}]}'
    nested = b"[" * depth + b"]" * depth
    (change,) = parse_body(opener(envelope % (b'{"field":"messages","value":{"x":%s}}' % nested)))
    value, levels = change.value["x"], 1
    while value:
        (value,), levels = value, levels + 1
    assert value == [] and levels == depth
