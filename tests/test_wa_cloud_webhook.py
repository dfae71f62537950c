"""Webhook parsing with Meta's payload shapes (reference §2)."""

import copy
import itertools
import json

import pytest

import payloads
from wa_cloud import webhook
from wa_cloud.webhook import (
    HANDLED_FIELDS,
    MESSAGE_PATH_FIELDS,
    STATUS_ORDER,
    Change,
    PayloadError,
    parse_payload,
    status_supersedes,
)


def only_change(payload):
    changes = parse_payload(payload)
    assert len(changes) == 1
    return changes[0]


def one_value(payload, field):
    change = only_change(payload)
    assert change.field == field
    return change.value


# --------------------------------------------------------------------------- envelope


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "text",
        {},
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {}},
    ],
)
def test_parse_payload_rejects_non_whatsapp(data):
    with pytest.raises(PayloadError):
        parse_payload(data)
    assert issubclass(PayloadError, ValueError)


def test_parse_payload_change_fields():
    change = only_change(payloads.inbound_text())
    assert isinstance(change, Change)
    assert change.entry_id == "102290129340398"
    assert change.entry_time is None
    assert change.field == "messages"
    assert change.index == (0, 0)
    assert change.phone_number_id == "106540352242922"
    assert change.display_phone_number == "15550783881"
    assert change.waba_id == "102290129340398"
    assert change.handled is True


def test_parse_payload_several_entries_and_changes():
    first = payloads.inbound_text()
    second = payloads.statuses()
    first["entry"][0]["changes"].append(second["entry"][0]["changes"][0])
    first["entry"].append(payloads.template_status()["entry"][0])
    changes = parse_payload(first)
    assert [c.index for c in changes] == [(0, 0), (0, 1), (1, 0)]
    assert [c.field for c in changes] == [
        "messages",
        "messages",
        "message_template_status_update",
    ]
    assert changes[2].entry_time == 1739321024


def test_parse_payload_tolerates_junk_items():
    data = {
        "object": "whatsapp_business_account",
        "entry": [None, {"id": 123, "changes": [None, {"field": "messages"}]}, {"id": "x"}],
    }
    changes = parse_payload(data)
    assert len(changes) == 1
    assert changes[0].entry_id == "123"
    assert changes[0].value == {}
    assert changes[0].phone_number_id is None


@pytest.mark.parametrize("changes", [2**63, True, 1.5, "messages", {"field": "messages"}])
def test_parse_payload_takes_changes_that_are_no_list_for_none(changes):
    """Found by tests/test_property_webhook_stream.py: a number or ``true`` as ``changes``
    raised ``TypeError`` (not iterable); the streaming parser skips them, like a string."""
    data = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}
    assert parse_payload(data) == []


def test_account_and_template_fields_carry_the_waba():
    removed = only_change(payloads.account_update_partner_removed())
    assert removed.waba_id == "102290129340398"
    template = only_change(payloads.template_status())
    assert template.waba_id == "102290129340398"
    assert template.phone_number_id is None


def test_account_update_prefers_waba_info():
    change = only_change(
        payloads.account_update_partner_removed(
            waba_id="2949482758682047", waba_info_waba_id="980198427658004"
        )
    )
    assert change.entry_id == "2949482758682047"
    assert change.waba_id == "980198427658004"


@pytest.mark.parametrize(
    "factory",
    [
        payloads.inbound_text,
        payloads.button_reply,
        payloads.statuses,
        payloads.history_chunk,
        payloads.history_declined,
        payloads.history_media,
        payloads.state_sync_add,
        payloads.state_sync_remove,
        payloads.echo,
        payloads.user_preferences,
        payloads.system_changed_number,
    ],
)
def test_message_path_payloads_carry_the_phone_number_id(factory):
    change = only_change(factory())
    assert change.field in MESSAGE_PATH_FIELDS
    assert change.phone_number_id == payloads.PHONE_NUMBER_ID
    assert change.handled


def test_handled_fields():
    assert MESSAGE_PATH_FIELDS <= HANDLED_FIELDS
    assert {
        "account_update",
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
    } <= HANDLED_FIELDS
    assert "phone_number_quality_update" in HANDLED_FIELDS
    assert "security" not in HANDLED_FIELDS


def test_payload_factories_return_fresh_dicts():
    first = payloads.history_chunk()
    first["entry"][0]["changes"][0]["value"]["history"][0]["threads"].clear()
    assert payloads.history_chunk()["entry"][0]["changes"][0]["value"]["history"][0]["threads"]


# --------------------------------------------------------------------------- messages


def test_inbound_text():
    (msg,) = webhook.inbound_messages(one_value(payloads.inbound_text(), "messages"))
    assert msg.wamid == payloads.TEXT_WAMID
    assert msg.from_wa_id == "16505551234"
    assert msg.profile_name == "Sheena Nelson"
    assert msg.timestamp == 1749416383
    assert msg.type == "text"
    assert msg.text == "Does it come in another color?"
    assert msg.button_payload is None
    assert msg.context_wamid is None
    assert msg.media is None
    assert msg.errors == []
    assert msg.bsuid is None
    assert msg.raw["id"] == payloads.TEXT_WAMID


def test_inbound_bsuid_from_contacts():
    value = one_value(payloads.inbound_text(user_id="US.13491208655302741918"), "messages")
    (msg,) = webhook.inbound_messages(value)
    assert msg.bsuid == "US.13491208655302741918"


def test_inbound_bsuid_from_message_without_phone():
    value = one_value(payloads.inbound_text(), "messages")
    message = value["messages"][0]
    del message["from"]
    message["from_user_id"] = "BR.998877"
    value["contacts"] = [{"profile": {"name": "Ana"}, "user_id": "BR.998877"}]
    (msg,) = webhook.inbound_messages(value)
    assert msg.from_wa_id is None
    assert msg.bsuid == "BR.998877"
    assert msg.profile_name == "Ana"


def test_contacts_are_matched_by_wa_id():
    value = one_value(payloads.inbound_text(), "messages")
    second = dict(value["messages"][0], id="wamid.second", **{"from": "5511987654321"})
    value["messages"].append(second)
    value["contacts"].insert(0, payloads.contact("5511987654321", "Maria"))
    first_msg, second_msg = webhook.inbound_messages(value)
    assert first_msg.profile_name == "Sheena Nelson"
    assert second_msg.profile_name == "Maria"


def test_button_reply():
    (msg,) = webhook.inbound_messages(one_value(payloads.button_reply(), "messages"))
    assert msg.type == "button"
    assert msg.text == "Confirm"
    assert msg.button_payload == "CONFIRM:42"
    assert msg.context_wamid == payloads.SENT_WAMID


def _single_message_value(message):
    return payloads.message_value([message], contacts=[payloads.contact()])


@pytest.mark.parametrize(
    "message, text, payload, context",
    [
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "CANCEL:42", "title": "Cancel"},
                },
                "context": {"id": "wamid.ctx"},
            },
            "Cancel",
            "CANCEL:42",
            "wamid.ctx",
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "slot-3", "title": "10:00", "description": "Mon"},
                },
            },
            "10:00",
            "slot-3",
            None,
        ),
        (
            {"type": "reaction", "reaction": {"message_id": "wamid.reacted", "emoji": "👍"}},
            "👍",
            None,
            "wamid.reacted",
        ),
        (
            {
                "type": "location",
                "location": {
                    "latitude": -23.5613,
                    "longitude": -46.6565,
                    "name": "MASP",
                    "address": "Av. Paulista, 1578",
                },
            },
            "MASP, Av. Paulista, 1578 (-23.5613, -46.6565)",
            None,
            None,
        ),
        (
            {"type": "location", "location": {"latitude": 1.5, "longitude": 2}},
            "(1.5, 2)",
            None,
            None,
        ),
        (
            {
                "type": "contacts",
                "contacts": [{"name": {"formatted_name": "John Doe"}, "phones": []}],
            },
            "John Doe",
            None,
            None,
        ),
        ({"type": "unsupported", "errors": [{"code": 131051}]}, None, None, None),
        ({"type": "order", "order": {"catalog_id": "1"}}, None, None, None),
        ({"type": "brand_new_type", "brand_new_type": {"x": 1}}, None, None, None),
    ],
)
def test_message_types(message, text, payload, context):
    message = dict(message, id="wamid.X", timestamp="1749416383", **{"from": "16505551234"})
    (msg,) = webhook.inbound_messages(_single_message_value(message))
    assert msg.text == text
    assert msg.button_payload == payload
    assert msg.context_wamid == context
    assert msg.raw == message


def test_media_message():
    message = {
        "from": "16505551234",
        "id": "wamid.doc",
        "timestamp": "1749416383",
        "type": "document",
        "document": {
            "caption": "Exam results",
            "filename": "results.pdf",
            "mime_type": "application/pdf",
            "sha256": "abc",
            "id": "1003383421387256",
        },
    }
    (msg,) = webhook.inbound_messages(_single_message_value(message))
    assert msg.text == "Exam results"
    assert msg.media == {
        "type": "document",
        "id": "1003383421387256",
        "mime_type": "application/pdf",
        "sha256": "abc",
        "caption": "Exam results",
        "filename": "results.pdf",
    }


def test_unsupported_message_errors_131060():
    message = {
        "from": "16505551234",
        "id": "wamid.u",
        "timestamp": "1749416383",
        "type": "unsupported",
        "errors": [
            {
                "code": 131060,
                "title": "Unsupported message",
                "error_data": {"details": "Message type unknown"},
            }
        ],
    }
    (msg,) = webhook.inbound_messages(_single_message_value(message))
    assert msg.errors[0]["code"] == 131060


def test_edit_and_revoke():
    edit = {
        "from": "16505551234",
        "id": "wamid.HBgLedit",
        "timestamp": "1749854575",
        "type": "edit",
        "edit": {
            "original_message_id": "wamid.HBgLMTQxoriginal",
            "message": {
                "context": {"id": "M0"},
                "type": "image",
                "image": {
                    "caption": "Updated image caption",
                    "mime_type": "image/jpeg",
                    "sha256": "a1b2c3d4e5f6",
                    "id": "1234567890",
                    "url": "https://media.example.com/updated-image.jpg",
                },
            },
        },
    }
    revoke = {
        "from": "16505551234",
        "id": "wamid.HBgLrevoke",
        "timestamp": "1749854575",
        "type": "revoke",
        "revoke": {"original_message_id": "wamid.HBgLMTQxoriginal"},
    }
    edited, revoked = webhook.inbound_messages(payloads.message_value([edit, revoke]))
    assert edited.original_wamid == "wamid.HBgLMTQxoriginal"
    assert edited.text == "Updated image caption"
    assert edited.media["id"] == "1234567890"
    assert revoked.type == "revoke"
    assert revoked.original_wamid == "wamid.HBgLMTQxoriginal"
    assert revoked.text is None


def test_system_changed_number():
    (msg,) = webhook.inbound_messages(one_value(payloads.system_changed_number(), "messages"))
    assert msg.type == "system"
    assert msg.profile_name is None
    assert msg.system == {
        "body": "User Sheena Nelson changed from 16505551234 to 12195555358",
        "wa_id": "12195555358",
        "type": "user_changed_number",
    }
    assert msg.text.startswith("User Sheena Nelson changed")


def test_number_change_is_a_typed_event():
    value = one_value(payloads.system_changed_number(), "messages")
    (change,) = webhook.number_changes(value)
    assert change.old_wa_id == payloads.USER_WA_ID
    assert change.new_wa_id == "12195555358"
    assert change.wamid.startswith("wamid.")
    assert change.timestamp == 1739321024
    assert change.body == "User Sheena Nelson changed from 16505551234 to 12195555358"
    # The same message is still a stored inbound message.
    assert webhook.inbound_messages(value)[0].type == "system"


def test_number_changes_skip_other_messages_and_incomplete_ones():
    value = one_value(payloads.system_changed_number(), "messages")
    (system,) = value["messages"]
    other_system = copy.deepcopy(system)
    other_system["system"] = {"type": "user_changed_user_id", "body": "BSUID changed"}
    no_new_number = copy.deepcopy(system)
    del no_new_number["system"]["wa_id"]
    same_number = copy.deepcopy(system)
    same_number["system"]["wa_id"] = system["from"]
    not_system = copy.deepcopy(system)
    not_system["type"] = "text"
    value["messages"] = [other_system, no_new_number, same_number, not_system, "junk", system]
    assert [c.new_wa_id for c in webhook.number_changes(value)] == ["12195555358"]
    assert webhook.number_changes({}) == []
    assert webhook.number_changes({"messages": [{"type": "system", "system": "x"}]}) == []


def test_messages_value_without_messages():
    assert webhook.inbound_messages({}) == []
    assert webhook.inbound_messages(None) == []
    assert webhook.inbound_messages({"messages": "nope", "contacts": 3}) == []


# --------------------------------------------------------------------------- statuses


def test_statuses_sent_and_failed():
    value = one_value(
        payloads.statuses(
            [
                (payloads.SENT_WAMID, "sent", "1750030073"),
                (payloads.FAILED_WAMID, "failed", "1751142888"),
            ],
            biz_opaque_callback_data="appointment:42:reminder",
            pricing=True,
        ),
        "messages",
    )
    sent, failed = webhook.statuses(value)
    assert sent.wamid == payloads.SENT_WAMID
    assert sent.status == "sent"
    assert sent.timestamp == 1750030073
    assert sent.recipient_id == "16505551234"
    assert sent.biz_opaque_callback_data == "appointment:42:reminder"
    assert sent.pricing["pricing_model"] == "PMP"
    assert sent.errors == []
    assert failed.status == "failed"
    assert failed.pricing is None
    assert failed.errors[0]["code"] == 131049
    assert webhook.inbound_messages(value) == []


def test_status_is_lower_cased_and_tolerant():
    value = {"statuses": [{"id": "wamid.1", "status": "DELIVERED"}, {}, "junk"]}
    delivered, empty = webhook.statuses(value)
    assert delivered.status == "delivered"
    assert delivered.timestamp is None
    assert empty.wamid is None and empty.status is None


@pytest.mark.parametrize(
    "new, old, expected",
    [
        ("sent", None, True),
        ("sent", "", True),
        ("delivered", "sent", True),
        ("read", "sent", True),  # delivered may be skipped
        ("sent", "read", False),
        ("delivered", "read", False),
        ("read", "read", False),
        ("played", "read", True),
        ("failed", "sent", True),
        ("failed", "delivered", True),
        ("failed", "accepted", True),
        ("failed", "read", False),
        ("failed", "played", False),
        ("failed", "failed", False),
        ("sent", "failed", False),
        ("delivered", "failed", False),
        ("read", "failed", True),
        ("played", "failed", True),
        ("READ", "Sent", True),
        ("sent", "held_for_quality_assessment", True),
        ("held_for_quality_assessment", "accepted", True),
        ("deleted", "sent", False),
        ("sent", "mystery", False),
        (None, None, False),
    ],
)
def test_status_supersedes(new, old, expected):
    assert status_supersedes(new, old) is expected


def test_status_order_is_monotonic():
    for lower, higher in itertools.combinations(STATUS_ORDER, 2):
        assert status_supersedes(higher, lower)
        assert not status_supersedes(lower, higher)


@pytest.mark.parametrize(
    "received",
    [
        ["sent", "delivered", "read"],
        ["sent", "read"],
        ["sent", "failed"],
        ["sent", "delivered", "failed"],
        ["sent", "read", "failed"],
        ["accepted", "sent", "delivered", "read", "played"],
    ],
)
def test_final_status_does_not_depend_on_arrival_order(received):
    finals = set()
    for order in itertools.permutations(received):
        current = None
        for status in order:
            if status_supersedes(status, current):
                current = status
        finals.add(current)
    assert len(finals) == 1


# --------------------------------------------------------------------------- echoes


def test_echo():
    (echo,) = webhook.echoes(one_value(payloads.echo(), "smb_message_echoes"))
    assert echo.wamid == payloads.ECHO_WAMID
    assert echo.from_number == "15550783881"
    assert echo.to == "16505551234"
    assert echo.timestamp == 1700255121
    assert echo.type == "text"
    assert echo.text.startswith("Here's the info you requested!")
    assert echo.media is None
    assert echo.raw["id"] == payloads.ECHO_WAMID
    assert webhook.echoes({}) == []


# --------------------------------------------------------------------------- history


def test_history_chunk():
    (chunk,) = webhook.history(one_value(payloads.history_chunk(), "history"))
    assert (chunk.phase, chunk.chunk_order, chunk.progress) == (0, 1, 55)
    assert chunk.declined is False
    assert chunk.complete is False
    assert [t.wa_id for t in chunk.threads] == ["16505551234", "12125557890"]
    first, placeholder, reply = chunk.threads[0].messages
    assert first.wamid == payloads.ECHO_WAMID
    assert first.from_number == "15550783881"
    assert first.status == "READ"
    assert first.text.startswith("Here's the info")
    assert first.from_me is None
    assert first.sent_by_business("+1 555-078-3881") is True
    assert placeholder.type == "media_placeholder"
    assert placeholder.status == "PLAYED"
    assert placeholder.text is None and placeholder.media is None
    assert reply.sent_by_business("15550783881") is False
    assert chunk.threads[1].messages[0].status == "DELIVERED"


def test_history_status_case_and_from_me():
    threads = [
        {
            "id": "5511987654321",
            "messages": [
                {
                    "from": "15550783881",
                    "to": "5511987654321",
                    "id": "wamid.gs",
                    "timestamp": "1739230955",
                    "type": "text",
                    "text": {"body": "Oi"},
                    "history_context": {"from_me": True, "status": "read"},
                },
                {"id": "wamid.nostatus", "type": "text", "text": {"body": "?"}},
            ],
        }
    ]
    (chunk,) = webhook.history(
        one_value(payloads.history_chunk(threads=threads, phase=2, progress=100), "history")
    )
    gs, no_status = chunk.threads[0].messages
    assert gs.status == "READ"
    assert gs.from_me is True
    assert gs.to == "5511987654321"
    assert gs.sent_by_business("") is True
    assert no_status.status is None and no_status.from_me is None
    assert no_status.sent_by_business("") is False
    assert chunk.complete is True


def test_history_declined():
    value = one_value(payloads.history_declined(), "history")
    (chunk,) = webhook.history(value)
    assert chunk.declined is True
    assert chunk.threads == []
    assert chunk.phase is None
    assert chunk.errors[0]["code"] == 2593109


def test_history_media():
    value = one_value(payloads.history_media(), "history")
    assert webhook.history(value) == []
    (media_msg,) = webhook.history_media(value)
    assert media_msg.wamid == payloads.PLACEHOLDER_WAMID
    assert media_msg.type == "image"
    assert media_msg.text == "Black Prince echeveria"
    assert media_msg.media["id"] == "24230790383178626"
    assert media_msg.media["mime_type"] == "image/jpeg"


# --------------------------------------------------------------------------- state sync


def test_state_sync_add_and_remove():
    (added,) = webhook.state_sync(one_value(payloads.state_sync_add(), "smb_app_state_sync"))
    assert added == webhook.StateSyncItem(
        type="contact",
        action="add",
        phone_number="16505551234",
        full_name="Pablo Morales",
        first_name="Pablo",
        timestamp=1739321024,
    )
    (removed,) = webhook.state_sync(one_value(payloads.state_sync_remove(), "smb_app_state_sync"))
    assert removed.action == "remove"
    assert removed.full_name is None and removed.first_name is None
    assert removed.phone_number == "16505551234"


# --------------------------------------------------------------------------- account_update


def test_partner_removed():
    (update,) = webhook.account_update(
        one_value(payloads.account_update_partner_removed(), "account_update")
    )
    assert update.event == "PARTNER_REMOVED"
    assert update.phone_number == "15550783881"
    assert update.reason == "PRIMARY_INACTIVITY"
    assert update.initiated_by == "SYSTEM"
    assert update.waba_id is None
    assert update.is_disconnect is True
    assert update.is_offboarded is False


def test_partner_removed_without_disconnection_info():
    (update,) = webhook.account_update(
        one_value(payloads.account_update_partner_removed(reason=None), "account_update")
    )
    assert update.reason is None and update.initiated_by is None
    assert update.is_disconnect


def test_offboarded_and_reconnected():
    off = only_change(payloads.offboarded())
    assert off.entry_id == off.waba_id == "862475293675413"
    assert off.entry_time == 1768477204
    (update,) = webhook.account_update(off.value)
    assert update.is_offboarded and not update.is_disconnect
    (back,) = webhook.account_update(only_change(payloads.reconnected()).value)
    assert back.is_reconnected


# --------------------------------------------------------------------------- templates


def test_template_status():
    change = only_change(payloads.template_status(event="REJECTED", reason="INCORRECT_CATEGORY"))
    (event,) = webhook.template_event(change.field, change.value)
    assert event.field == "message_template_status_update"
    assert event.event == "REJECTED"
    assert event.template_id == str(payloads.TEMPLATE_ID)
    assert event.name == "appointment_reminder"
    assert event.language == "pt_BR"
    assert event.reason == "INCORRECT_CATEGORY"
    assert event.category == "UTILITY"
    assert event.new_quality is None


def test_template_quality():
    change = only_change(payloads.template_quality(previous="YELLOW", new="RED"))
    (event,) = webhook.template_event(change.field, change.value)
    assert (event.previous_quality, event.new_quality) == ("YELLOW", "RED")
    assert event.event is None
    assert event.template_id == "806312974732579"


def test_template_category():
    change = only_change(payloads.template_category())
    (event,) = webhook.template_event(change.field, change.value)
    assert (event.previous_category, event.new_category) == ("UTILITY", "MARKETING")


# --------------------------------------------------------------------------- preferences


def test_user_preferences():
    (pref,) = webhook.user_preferences(one_value(payloads.user_preferences(), "user_preferences"))
    assert pref.wa_id == "16505551234"
    assert pref.category == "marketing_messages"
    assert pref.value == "stop"
    assert pref.detail
    assert pref.timestamp == 1731705721
    (resume,) = webhook.user_preferences(
        one_value(payloads.user_preferences(value="RESUME"), "user_preferences")
    )
    assert resume.value == "resume"


# --------------------------------------------------------------------------- robustness


ALL_FACTORIES = payloads.ALL_FACTORIES


def _run_all_extractors(change):
    webhook.inbound_messages(change.value)
    webhook.statuses(change.value)
    webhook.echoes(change.value)
    for chunk in webhook.history(change.value):
        assert isinstance(chunk.declined, bool)
    webhook.state_sync(change.value)
    webhook.account_update(change.value)
    webhook.template_event(change.field, change.value)
    webhook.user_preferences(change.value)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, child in node.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


def _without(data, path):
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


def _replaced(data, path, new):
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return data


@pytest.mark.parametrize("factory", ALL_FACTORIES, ids=lambda f: f.__name__)
def test_extractors_never_raise_on_missing_or_odd_values(factory):
    payload = factory()
    value_root = ("entry", 0, "changes", 0, "value")
    paths = [p for p in _paths(payload) if p[: len(value_root)] == value_root]
    assert paths
    for path in paths:
        for mutated in (
            _without(payload, path),
            _replaced(payload, path, None),
            _replaced(payload, path, 7),
            _replaced(payload, path, "x"),
            _replaced(payload, path, []),
        ):
            for change in parse_payload(mutated):
                _run_all_extractors(change)


@pytest.mark.parametrize("factory", ALL_FACTORIES, ids=lambda f: f.__name__)
def test_payloads_survive_a_json_round_trip(factory):
    payload = factory()
    assert json.loads(payloads.dumps(payload)) == payload
    assert parse_payload(json.loads(payloads.dumps(payload)))


def test_events_are_frozen():
    (msg,) = webhook.inbound_messages(one_value(payloads.inbound_text(), "messages"))
    with pytest.raises(AttributeError):
        msg.text = "changed"
