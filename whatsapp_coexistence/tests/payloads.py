"""Meta webhook payloads, in Meta's own shapes (reference/meta-whatsapp-coexistence.md §2).

Each function returns a fresh, complete envelope (``{"object": ..., "entry": [...]}``) so tests
can mutate it freely. Defaults are the values of Meta's examples; override what the test needs.
:func:`dumps` renders a payload the way Meta sends it (escaped unicode), for signature tests.

Pure data: no Odoo and no ``wa_cloud`` import, so the Odoo tests can reuse it.
"""

import copy
import json

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
USER_WA_ID = "16505551234"
USER_NAME = "Sheena Nelson"
TEXT_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
SENT_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
FAILED_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA"
ECHO_WAMID = "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA"
PLACEHOLDER_WAMID = "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA"
OFFBOARD_WABA_ID = "862475293675413"
TEMPLATE_ID = 806312974732579

ERROR_131049 = {
    "code": 131049,
    "title": "This message was not delivered to maintain healthy ecosystem engagement.",
    "message": "This message was not delivered to maintain healthy ecosystem engagement.",
    "error_data": {
        "details": "In order to maintain a healthy ecosystem engagement, the message failed "
        "to be delivered."
    },
    "href": "/documentation/business-messaging/whatsapp/support/error-codes",
}
ERROR_2593109 = {
    "code": 2593109,
    "title": "History sync is turned off by the business from the WhatsApp Business App",
    "message": "History sync is turned off by the business from the WhatsApp Business App",
    "error_data": {"details": "History sharing is turned off by the business"},
}


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def dumps(payload):
    """Serialize like Meta: compact JSON with escaped unicode (``ä`` -> ``\\u00e4``).

    :rtype: bytes
    """
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def metadata(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER):
    """The ``value.metadata`` block of message-path fields."""
    return {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}


def envelope(field, value, waba_id=WABA_ID, time=None):
    """Wrap one change ``value`` in the webhook envelope."""
    entry = {"id": waba_id, "changes": [{"value": copy.deepcopy(value), "field": field}]}
    if time is not None:
        entry["time"] = time
    return {"object": "whatsapp_business_account", "entry": [entry]}


def message_value(messages, phone_number_id=PHONE_NUMBER_ID, contacts=None):
    """A ``messages`` value with optional ``contacts``."""
    value = {"messaging_product": "whatsapp", "metadata": metadata(phone_number_id)}
    if contacts is not None:
        value["contacts"] = contacts
    value["messages"] = messages
    return value


def contact(wa_id=USER_WA_ID, name=USER_NAME, user_id=None):
    """A ``contacts[]`` item; ``user_id`` is the BSUID (2026)."""
    item = {"profile": {"name": name}, "wa_id": wa_id}
    if user_id:
        item["user_id"] = user_id
    return item


# ---------------------------------------------------------------------------
# messages (§2.1)
# ---------------------------------------------------------------------------


def inbound_text(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    wamid=TEXT_WAMID,
    from_=USER_WA_ID,
    body="Does it come in another color?",
    timestamp="1749416383",
    profile_name=USER_NAME,
    user_id=None,
):
    """A user sent a text message (Meta webhooks overview example)."""
    message = {
        "from": from_,
        "id": wamid,
        "timestamp": timestamp,
        "type": "text",
        "text": {"body": body},
    }
    value = message_value(
        [message], phone_number_id, contacts=[contact(from_, profile_name, user_id)]
    )
    return envelope("messages", value, waba_id)


def button_reply(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    wamid="wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUI1QjQ2RjE0QkEyRjVENjk5RAA=",
    from_=USER_WA_ID,
    payload="CONFIRM:42",
    text="Confirm",
    context_wamid=SENT_WAMID,
    timestamp="1750030100",
    profile_name=USER_NAME,
):
    """A user tapped a quick-reply button of a template (Button messages webhook reference)."""
    message = {
        "context": {"from": DISPLAY_PHONE_NUMBER, "id": context_wamid},
        "from": from_,
        "id": wamid,
        "timestamp": timestamp,
        "type": "button",
        "button": {"payload": payload, "text": text},
    }
    value = message_value([message], phone_number_id, contacts=[contact(from_, profile_name)])
    return envelope("messages", value, waba_id)


def system_changed_number(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    wamid="wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRjBBRDgxQjhDQjk0RjQxOTcxQgA=",
    from_=USER_WA_ID,
    new_wa_id="12195555358",
    timestamp="1739321024",
):
    """The user changed their phone number (System messages webhook reference): no contacts."""
    message = {
        "from": from_,
        "id": wamid,
        "timestamp": timestamp,
        "type": "system",
        "system": {
            "body": f"User {USER_NAME} changed from {from_} to {new_wa_id}",
            "wa_id": new_wa_id,
            "type": "user_changed_number",
        },
    }
    return envelope("messages", message_value([message], phone_number_id), waba_id)


# ---------------------------------------------------------------------------
# statuses (§2.2)
# ---------------------------------------------------------------------------


def status_error(code=131049, **overrides):
    """One ``statuses[].errors[]`` item; defaults to Meta's 131049 example."""
    error = copy.deepcopy(ERROR_131049)
    error["code"] = code
    error.update(overrides)
    return error


def statuses(
    items=((SENT_WAMID, "sent", "1750030073"),),
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    recipient_id=USER_WA_ID,
    errors=None,
    biz_opaque_callback_data=None,
    pricing=None,
):
    """Status webhooks for ``items``: ``(wamid, status, timestamp)`` tuples.

    A ``failed`` item gets ``errors`` (default: Meta's 131049 example). ``pricing=True`` adds
    Meta's per-message pricing block to ``sent``/``delivered``/``read`` items.
    """
    result = []
    for wamid, status, timestamp in items:
        item = {
            "id": wamid,
            "status": status,
            "timestamp": str(timestamp),
            "recipient_id": recipient_id,
        }
        if biz_opaque_callback_data:
            item["biz_opaque_callback_data"] = biz_opaque_callback_data
        if pricing and status in ("sent", "delivered", "read"):
            item["pricing"] = {
                "billable": True,
                "pricing_model": "PMP",
                "type": "regular",
                "category": "utility",
            }
        if status == "failed":
            item["errors"] = copy.deepcopy(errors) if errors is not None else [status_error()]
        result.append(item)
    value = {
        "messaging_product": "whatsapp",
        "metadata": metadata(phone_number_id),
        "statuses": result,
    }
    return envelope("messages", value, waba_id)


# ---------------------------------------------------------------------------
# history (§2.3)
# ---------------------------------------------------------------------------


def default_history_threads():
    """The threads of Meta's approved-sharing example."""
    return [
        {
            "id": USER_WA_ID,
            "messages": [
                {
                    "from": DISPLAY_PHONE_NUMBER,
                    "id": ECHO_WAMID,
                    "timestamp": "1739230955",
                    "type": "text",
                    "text": {
                        "body": "Here's the info you requested! https://www.meta.com/quest/quest-3/"
                    },
                    "history_context": {"status": "READ"},
                },
                {
                    "from": DISPLAY_PHONE_NUMBER,
                    "id": PLACEHOLDER_WAMID,
                    "timestamp": "1739230970",
                    "type": "media_placeholder",
                    "history_context": {"status": "PLAYED"},
                },
                {
                    "from": USER_WA_ID,
                    "id": "wamid.N0FCNjMAHBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0",
                    "timestamp": "1739230970",
                    "type": "text",
                    "text": {"body": "Thanks!"},
                    "history_context": {"status": "READ"},
                },
            ],
        },
        {
            "id": "12125557890",
            "messages": [
                {
                    "from": DISPLAY_PHONE_NUMBER,
                    "id": "wamid.BIyNDlBOEI5N0FCNjMAHBgLMTY0NjcwNDM1OTUVAgARGQUQ4NDc0",
                    "timestamp": "1739230970",
                    "type": "text",
                    "text": {"body": "Thanks for your order! ..."},
                    "history_context": {"status": "DELIVERED"},
                }
            ],
        },
    ]


def history_chunk(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    phase=0,
    chunk_order=1,
    progress=55,
    threads=None,
):
    """One history chunk (Meta's approved-sharing example)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": metadata(phone_number_id),
        "history": [
            {
                "metadata": {"phase": phase, "chunk_order": chunk_order, "progress": progress},
                "threads": default_history_threads() if threads is None else threads,
            }
        ],
    }
    return envelope("history", value, waba_id)


def history_declined(phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID):
    """The business turned history sharing off (error 2593109)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": metadata(phone_number_id),
        "history": [{"errors": [copy.deepcopy(ERROR_2593109)]}],
    }
    return envelope("history", value, waba_id)


def history_media(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    wamid=PLACEHOLDER_WAMID,
    from_=USER_WA_ID,
    media_id="24230790383178626",
    caption="Black Prince echeveria",
    timestamp="1738796547",
):
    """The media asset that follows a ``media_placeholder`` (same wamid, ``field: history``)."""
    message = {
        "from": from_,
        "id": wamid,
        "timestamp": timestamp,
        "type": "image",
        "image": {
            "caption": caption,
            "mime_type": "image/jpeg",
            "sha256": "3f9d94d399fa61c191bc1d4ca71375a035cd9b9f5b1128e1f0963a415c16b0cc",
            "id": media_id,
        },
    }
    return envelope("history", message_value([message], phone_number_id), waba_id)


# ---------------------------------------------------------------------------
# smb_app_state_sync (§2.4)
# ---------------------------------------------------------------------------


def _state_sync(action, contact_block, timestamp, phone_number_id, waba_id):
    value = {
        "messaging_product": "whatsapp",
        "metadata": metadata(phone_number_id),
        "state_sync": [
            {
                "type": "contact",
                "contact": contact_block,
                "action": action,
                "metadata": {"timestamp": timestamp},
            }
        ],
    }
    return envelope("smb_app_state_sync", value, waba_id)


def state_sync_add(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    phone_number=USER_WA_ID,
    full_name="Pablo Morales",
    first_name="Pablo",
    timestamp="1739321024",
):
    """A contact was added or edited in the WhatsApp Business app's address book."""
    block = {"full_name": full_name, "first_name": first_name, "phone_number": phone_number}
    return _state_sync("add", block, timestamp, phone_number_id, waba_id)


def state_sync_remove(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    phone_number=USER_WA_ID,
    timestamp="1739321099",
):
    """A contact was removed; Meta sends no names on ``remove``."""
    return _state_sync(
        "remove", {"phone_number": phone_number}, timestamp, phone_number_id, waba_id
    )


# ---------------------------------------------------------------------------
# smb_message_echoes (§2.5)
# ---------------------------------------------------------------------------


def echo(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    wamid=ECHO_WAMID,
    to=USER_WA_ID,
    body="Here's the info you requested! https://www.meta.com/quest/quest-3/",
    timestamp="1700255121",
    from_=DISPLAY_PHONE_NUMBER,
):
    """The business replied from the WhatsApp Business app."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": metadata(phone_number_id),
        "message_echoes": [
            {
                "from": from_,
                "to": to,
                "id": wamid,
                "timestamp": timestamp,
                "type": "text",
                "text": {"body": body},
            }
        ],
    }
    return envelope("smb_message_echoes", value, waba_id)


# ---------------------------------------------------------------------------
# account_update (§2.6)
# ---------------------------------------------------------------------------


def account_update_partner_removed(
    waba_id=WABA_ID,
    phone_number=DISPLAY_PHONE_NUMBER,
    reason="PRIMARY_INACTIVITY",
    initiated_by="SYSTEM",
    time=1739212624,
    waba_info_waba_id=None,
):
    """Coexistence disconnection. ``reason=None`` omits ``disconnection_info`` (gradual
    rollout); ``waba_info_waba_id`` adds a ``waba_info`` block (PARTNER_* events)."""
    value = {"phone_number": phone_number, "event": "PARTNER_REMOVED"}
    if reason is not None:
        value["disconnection_info"] = {"reason": reason, "initiated_by": initiated_by}
    if waba_info_waba_id:
        value["waba_info"] = {"waba_id": waba_info_waba_id, "owner_business_id": "1546789012"}
    return envelope("account_update", value, waba_id, time)


def offboarded(waba_id=OFFBOARD_WABA_ID, time=1768477204):
    """Offboarded after a device change or re-registration (temporary)."""
    return envelope("account_update", {"event": "ACCOUNT_OFFBOARDED"}, waba_id, time)


def reconnected(waba_id=OFFBOARD_WABA_ID, time=1768477203):
    """Automatically re-onboarded after an offboarding."""
    return envelope("account_update", {"event": "ACCOUNT_RECONNECTED"}, waba_id, time)


# ---------------------------------------------------------------------------
# Templates (§2.7)
# ---------------------------------------------------------------------------


def template_status(
    waba_id=WABA_ID,
    event="APPROVED",
    template_id=TEMPLATE_ID,
    name="appointment_reminder",
    language="pt_BR",
    reason="NONE",
    category="UTILITY",
    time=1739321024,
):
    """``message_template_status_update``."""
    value = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
        "message_template_category": category,
    }
    return envelope("message_template_status_update", value, waba_id, time)


def template_quality(
    waba_id=WABA_ID,
    previous="GREEN",
    new="YELLOW",
    template_id=TEMPLATE_ID,
    name="appointment_reminder",
    language="pt_BR",
    time=1739321024,
):
    """``message_template_quality_update``."""
    value = {
        "previous_quality_score": previous,
        "new_quality_score": new,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
    }
    return envelope("message_template_quality_update", value, waba_id, time)


def template_category(
    waba_id=WABA_ID,
    previous="UTILITY",
    new="MARKETING",
    template_id=TEMPLATE_ID,
    name="appointment_reminder",
    language="pt_BR",
    time=1739321024,
):
    """``template_category_update``."""
    value = {
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "previous_category": previous,
        "new_category": new,
    }
    return envelope("template_category_update", value, waba_id, time)


# ---------------------------------------------------------------------------
# user_preferences (§2.8)
# ---------------------------------------------------------------------------


def user_preferences(
    phone_number_id=PHONE_NUMBER_ID,
    waba_id=WABA_ID,
    wa_id=USER_WA_ID,
    value="stop",
    detail="User requested to stop marketing messages",
    timestamp=1731705721,
    profile_name=USER_NAME,
):
    """A user stopped (``"stop"``) or resumed (``"resume"``) marketing messages."""
    change_value = {
        "messaging_product": "whatsapp",
        "metadata": metadata(phone_number_id),
        "contacts": [contact(wa_id, profile_name)],
        "user_preferences": [
            {
                "wa_id": wa_id,
                "detail": detail,
                "category": "marketing_messages",
                "value": value,
                "timestamp": timestamp,
            }
        ],
    }
    return envelope("user_preferences", change_value, waba_id)


#: Every payload builder above, for the tests that run them all.
ALL_FACTORIES = [
    inbound_text,
    button_reply,
    statuses,
    history_chunk,
    history_declined,
    history_media,
    state_sync_add,
    state_sync_remove,
    echo,
    account_update_partner_removed,
    offboarded,
    reconnected,
    template_status,
    template_quality,
    template_category,
    user_preferences,
    system_changed_number,
]
