"""Property: any JSON object under 3 MB that the webhook controller lets through yields typed
events or an *ignored* reason (:class:`~wa_cloud.webhook.PayloadError`), never an exception.

Both parsing paths are checked, each to the end of what the jobs do with a change:

* the jobs' path: ``webhook_stream.parse_body`` over the body as a stream; each change stored
  as its event's payload (``json.dumps(value, ensure_ascii=False)``, UTF-8 text in
  PostgreSQL) and decoded back (``load_value`` for history); a history change's items read
  back from the body (``history_items``); the field's extractors;
* the in-memory path: ``webhook.parse_payload(json.loads(body))`` and ``webhook.history``.

"Typed" is checked on every event: each dataclass field holds its annotated type
(``str | None`` is a ``str`` or ``None``, never an ``int`` or a ``dict``).
"""

import dataclasses
import io
import json
import types
import typing

from hypothesis import given, settings

import strategies
from wa_cloud import phone, webhook, webhook_stream
from wa_cloud.webhook import PayloadError

PROPERTY = settings(max_examples=80)

#: What the event handlers of ``wac.webhook.event`` extract, by field.
EXTRACTORS = {
    "messages": (webhook.statuses, webhook.inbound_messages, webhook.change_errors,
                 webhook.number_changes),
    "smb_message_echoes": (webhook.echoes,),
    "history": (webhook.history_media,),
    "smb_app_state_sync": (webhook.state_sync,),
    "account_update": (webhook.account_update,),
    "user_preferences": (webhook.user_preferences,),
}


def assert_typed(event):
    """Every field of the dataclass ``event`` holds a value of its annotated type."""
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        hint = field.type
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        allowed = tuple(typing.get_origin(t) or t for t in allowed)
        assert isinstance(value, allowed), (type(event).__name__, field.name, value)


def check_change(change):
    """The routing properties and the field's events of one change."""
    assert_typed(change)
    assert isinstance(change.phone_number_id, (str, type(None)))
    assert isinstance(change.handled, bool)
    events = []
    for extract in EXTRACTORS.get(change.field, ()):
        events += extract(change.value)
    if change.field in webhook.TEMPLATE_FIELDS:
        events += webhook.template_event(change.field, change.value)
    for event in events:
        if isinstance(event, dict):  # change_errors: Meta's error objects as they are
            continue
        assert_typed(event)
        if isinstance(event, webhook.InboundMessage):
            key = phone.canonical(event.from_wa_id) if event.from_wa_id else None
            assert key is None or key.isascii()
        if isinstance(event, webhook.StatusUpdate):
            assert isinstance(webhook.status_supersedes(event.status, "sent"), bool)
    return events


def stored_value(change):
    """The change as its event stores it and the event's job decodes it again."""
    payload = json.dumps(change.value, ensure_ascii=False)
    payload.encode("utf-8")  # PostgreSQL text: a lone surrogate would not go in
    if change.field == "history":
        return webhook_stream.load_value(lambda: webhook_stream.TextReader(payload))
    return json.loads(payload)


def read_history(open_stream, index, business_number="15550783881"):
    count = 0
    for item in webhook_stream.history_items(open_stream, change_index=index):
        assert isinstance(item.declined, bool) and isinstance(item.complete, bool)
        for wa_id, message in item.messages:
            assert isinstance(wa_id, (str, type(None)))
            if message is not None:
                assert_typed(message)
                assert isinstance(message.sent_by_business(business_number), bool)
                count += 1
    return count


def jobs_path(body):
    """What the delivery job and the event jobs do with ``body``: events or an ignored reason."""
    open_stream = lambda: io.BytesIO(body)  # noqa: E731
    try:
        changes = webhook_stream.parse_body(open_stream)
    except PayloadError as error:
        assert str(error)
        return "ignored"
    for index, change in enumerate(changes):
        check_change(dataclasses.replace(change, value=stored_value(change)))
        ref = change.value.get(webhook_stream.HISTORY_REF)
        if ref and ref.get("source") == webhook_stream.SOURCE_BODY:
            read_history(open_stream, index)
    return changes


def memory_path(body):
    try:
        changes = webhook.parse_payload(json.loads(body))
    except PayloadError as error:
        assert str(error)
        return "ignored"
    for change in changes:
        check_change(change)
        if change.field == "history":
            for chunk in webhook.history(change.value):
                assert_typed(chunk)
                for thread in chunk.threads:
                    assert_typed(thread)
                    for message in thread.messages:
                        assert_typed(message)
    return changes


@PROPERTY
@given(strategies.meta_bodies())
def test_meta_shapes_mutated_give_events_or_a_reason(body):
    jobs_path(body)
    memory_path(body)


@PROPERTY
@given(strategies.envelopes(duplicates=True))
def test_arbitrary_envelopes_give_events_or_a_reason(body):
    jobs_path(body)
    memory_path(body)


@PROPERTY
@given(strategies.json_objects(duplicates=True))
def test_any_json_object_gives_events_or_a_reason(body):
    assert jobs_path(body) == "ignored" or json.loads(body).get("object") == webhook.OBJECT
    memory_path(body)


@given(strategies.meta_bodies(surrogates=True))
def test_lone_surrogates_give_events_or_a_reason(body):
    jobs_path(body)
