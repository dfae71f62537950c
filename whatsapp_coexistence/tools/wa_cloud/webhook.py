"""Parse Meta's webhook envelope into typed, immutable events (no database here).

Envelope: ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "time",
"changes": [{"field", "value"}]}]}``. :func:`parse_payload` yields one :class:`Change` per
``changes[]`` item; the extractors turn a change's ``value`` into events.

Extractors never raise ``KeyError``: Meta adds fields and types over time, and the webhook of a
gradual rollout may lack a block. Unknown shapes are kept in ``raw``.

Every text an extractor returns can be stored in PostgreSQL as it is: a lone UTF-16 surrogate
(``"\\udfff"`` is valid JSON that Meta signs) becomes U+FFFD, NUL characters (which a PostgreSQL
``text`` cannot hold) are removed, and identifiers and names (what lands in indexed columns) are
cut at :data:`KEY_MAX_CHARS`. The untouched values stay in ``raw`` and in the delivery's body.
https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview
"""

import json
from dataclasses import dataclass
from dataclasses import field as dc_field

from .errors import HISTORY_DECLINED_CODE
from .health import HEALTH_FIELDS

OBJECT = "whatsapp_business_account"

#: Fields whose ``value`` carries ``metadata.phone_number_id`` (routed to a phone number).
MESSAGE_PATH_FIELDS = frozenset(
    {"messages", "history", "smb_message_echoes", "smb_app_state_sync", "user_preferences"}
)
TEMPLATE_FIELDS = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
    }
)
#: Fields the addon processes; others are acknowledged and ignored.
HANDLED_FIELDS = MESSAGE_PATH_FIELDS | TEMPLATE_FIELDS | HEALTH_FIELDS | {"account_update"}

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
#: The ``object`` of Meta's other webhook topics (Graph API, "Webhooks Reference"): a body
#: that names one is not a WhatsApp webhook, whatever it holds.
OTHER_OBJECTS = frozenset(
    {"ad_account", "application", "catalog", "instagram", "page", "permissions", "user"})

#: Delivery statuses in the order a message goes through them; see :func:`status_supersedes`.
STATUS_ORDER = (
    "pending",
    "accepted",
    "held_for_quality_assessment",
    "sent",
    "delivered",
    "read",
    "played",
)
FAILED = "failed"
# ``failed`` ranks after ``delivered`` and before ``read``: see status_supersedes().
STATUS_RANK = {
    "pending": 0,
    "accepted": 1,
    "held_for_quality_assessment": 2,
    "sent": 3,
    "delivered": 4,
    FAILED: 5,
    "read": 6,
    "played": 7,
}

#: ``account_update`` events after which the tenant is disconnected for good.
DISCONNECT_EVENTS = frozenset({"PARTNER_REMOVED", "PARTNER_APP_UNINSTALLED", "ACCOUNT_DELETED"})
OFFBOARDED_EVENT = "ACCOUNT_OFFBOARDED"
RECONNECTED_EVENT = "ACCOUNT_RECONNECTED"


#: Longest identifier or name kept (wamid, wa_id, field, ids, profile names): a btree index
#: entry holds at most 2,704 bytes, and 512 characters are at most 2,048 bytes of UTF-8.
KEY_MAX_CHARS = 512


class PayloadError(ValueError):
    """The body is not a WhatsApp Business Account webhook envelope."""


# ---------------------------------------------------------------------------
# Tolerant accessors
# ---------------------------------------------------------------------------


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def unpaired_surrogates_replaced(text):
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD.

    Python's ``json`` and ijson's Python backend decode ``"\\udc00"`` to a lone surrogate,
    which UTF-8 cannot encode, so neither PostgreSQL nor a log line could take it.

    :param str text: any text
    :rtype: str
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs the valid surrogate pairs; what is left alone becomes U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def storable(text):
    """``text`` as PostgreSQL can store it: without NUL characters (a ``text`` value cannot
    hold them) and with :func:`unpaired_surrogates_replaced`.

    :param str text: any text
    :rtype: str
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    return unpaired_surrogates_replaced(text)


def _str(value):
    if value is None or isinstance(value, (dict, list)):
        return None
    return storable(str(value))


def _key(value):
    """:func:`_str` cut at :data:`KEY_MAX_CHARS`: an identifier or a name."""
    text = _str(value)
    return text[:KEY_MAX_CHARS] if text is not None else None


def _int(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None


def _get(data, *path):
    for key in path:
        data = _dict(data).get(key)
    return data


# ---------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item.

    :ivar entry_id: ``entry[].id``, the WABA id (see :attr:`waba_id` for ``account_update``)
    :ivar entry_time: ``entry[].time`` (unix seconds) or ``None``
    :ivar field: webhook field, e.g. ``"messages"``
    :ivar value: the change's ``value`` dict (``{}`` when missing)
    :ivar index: ``(entry index, change index)`` in the payload, for stable idempotency keys
    """

    entry_id: str | None
    entry_time: int | None
    field: str | None
    value: dict
    index: tuple

    @property
    def phone_number_id(self):
        """``value.metadata.phone_number_id`` or ``None``."""
        return _key(_get(self.value, "metadata", "phone_number_id"))

    @property
    def display_phone_number(self):
        """``value.metadata.display_phone_number`` (digits) or ``None``."""
        return _key(_get(self.value, "metadata", "display_phone_number"))

    @property
    def waba_id(self):
        """WABA the change is about.

        For ``account_update``, Meta's PARTNER_* example has ``entry[].id`` different from
        ``value.waba_info.waba_id``: the latter is preferred (reference §1.3).
        """
        if self.field == "account_update":
            return _key(_get(self.value, "waba_info", "waba_id")) or self.entry_id
        return self.entry_id

    @property
    def handled(self):
        """``True`` when :data:`HANDLED_FIELDS` contains the field."""
        return self.field in HANDLED_FIELDS


def _refuse_constant(name):
    raise PayloadError("Webhook body is not JSON: %s is not a JSON number" % name)


def decode_body(raw):
    """Decode a webhook body as JSON, strictly: what the door accepts.

    ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259), though Python's ``json``
    reads them; nesting deeper than Python's recursion limit is refused too. Lone surrogate
    escapes are valid JSON and are accepted (:func:`storable` repairs them later).

    :param bytes raw: the body as received
    :raises PayloadError: not UTF-8, not JSON, or not a JSON object
    :rtype: dict
    """
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError too
        if isinstance(error, PayloadError):
            raise
        raise PayloadError("Webhook body is not JSON: %s" % type(error).__name__) from error
    if not isinstance(data, dict):
        raise PayloadError("Webhook body is not a JSON object")
    return data


def parse_payload(data):
    """Split a webhook body into :class:`Change` items.

    :param dict data: the parsed JSON body
    :raises PayloadError: not a WhatsApp webhook (:func:`check_object`) or ``entry`` is not
        a list
    :rtype: list[Change]
    """
    if not isinstance(data, dict):
        raise PayloadError("Webhook body is not a JSON object")
    entries = data.get("entry")
    if not isinstance(entries, list):
        check_object(data.get("object"), [])
        raise PayloadError("Webhook entry is not a list")
    changes = []
    for entry_index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        changes_list = entry.get("changes")
        if not isinstance(changes_list, list):
            continue  # a number or true here is not iterable; a string is no list of changes
        for change_index, change in enumerate(changes_list):
            if not isinstance(change, dict):
                continue
            changes.append(
                Change(
                    entry_id=_key(entry.get("id")),
                    entry_time=_int(entry.get("time")),
                    field=_key(change.get("field")),
                    value=_dict(change.get("value")),
                    index=(entry_index, change_index),
                )
            )
    check_object(data.get("object"), changes)
    return changes


def check_object(obj, changes):
    """Refuse a body that is not a WhatsApp Business Account webhook.

    ``object`` names Meta's product. A body that names another one is refused. One whose
    ``object`` is missing or garbled (no topic's name) is signed by Meta all the same: its
    changes decide, and it is kept when one of them is a WhatsApp change
    (:func:`_whatsapp_change`). Its events are then routed like any others: nothing is lost
    over a bad ``object``.

    :raises PayloadError: not a WhatsApp webhook
    """
    if obj == OBJECT:
        return
    if (isinstance(obj, str) and obj in OTHER_OBJECTS) or not any(
            _whatsapp_change(change) for change in changes):
        raise PayloadError("Webhook object is not whatsapp_business_account")


def _whatsapp_change(change):
    """Whether a change is WhatsApp's: its value says ``messaging_product: whatsapp`` or
    carries the phone number it is for (``metadata.phone_number_id``), or its field is one
    only WhatsApp sends."""
    return (change.value.get("messaging_product") == "whatsapp"
            or _key(_dict(change.value.get("metadata")).get("phone_number_id")) is not None
            or change.field in HANDLED_FIELDS - {"messages"})


def change_errors(value):
    """Out-of-band ``value.errors[]`` (errors not tied to a message).

    :rtype: list[dict]
    """
    return _list(_dict(value).get("errors"))


@dataclass(frozen=True)
class ErrorInfo:
    """One item of an ``errors[]`` array, typed (a status's, a message's or a change's).

    :ivar code: Meta's error code, or ``None``
    :ivar title: short title, or ``None``
    :ivar details: ``error_data.details``, else ``message``, or ``None``
    """

    code: int | None
    title: str | None
    details: str | None


#: PostgreSQL ``integer`` bounds: a code outside them is not one of Meta's.
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1


def error_info(errors):
    """The first of ``errors`` (a list of dicts, maybe empty) as an :class:`ErrorInfo`.

    :rtype: ErrorInfo
    """
    error = next(iter(_list(errors)), {})
    code = _int(error.get("code"))
    return ErrorInfo(
        code=code if code is not None and _INT4_MIN <= code <= _INT4_MAX else None,
        title=_key(error.get("title")),
        details=_str(_get(error, "error_data", "details")) or _str(error.get("message")),
    )


# ---------------------------------------------------------------------------
# Message content
# ---------------------------------------------------------------------------


def _location_text(location):
    location = _dict(location)
    label = ", ".join(str(p) for p in (location.get("name"), location.get("address")) if p)
    lat, lng = location.get("latitude"), location.get("longitude")
    coords = f"({lat}, {lng})" if lat is not None and lng is not None else ""
    return storable(" ".join(p for p in (label, coords) if p)) or None


def _message_text(msg):
    """Human text of a message of any type, or ``None``."""
    kind = msg.get("type")
    if kind == "text":
        return _str(_get(msg, "text", "body"))
    if kind == "button":
        return _str(_get(msg, "button", "text"))
    if kind == "interactive":
        interactive = _dict(msg.get("interactive"))
        for reply in ("button_reply", "list_reply"):
            if reply in interactive:
                return _str(_get(interactive, reply, "title"))
        return _str(_get(interactive, "nfm_reply", "body"))
    if kind == "reaction":
        return _str(_get(msg, "reaction", "emoji"))
    if kind == "location":
        return _location_text(msg.get("location"))
    if kind == "system":
        return _str(_get(msg, "system", "body"))
    if kind in MEDIA_TYPES:
        return _str(_get(msg, kind, "caption"))
    if kind == "contacts":
        names = [_get(c, "name", "formatted_name") for c in _list(msg.get("contacts"))]
        return storable(", ".join(str(n) for n in names if n)) or None
    if kind == "edit":
        return _message_text(_dict(_get(msg, "edit", "message")))
    return None


def _message_media(msg):
    """Media descriptor (``type``, ``id``, ``mime_type``, ``sha256``, ``caption``,
    ``filename``, and for a sticker ``animated``: ``True``, ``False`` or ``None``) or
    ``None``."""
    kind = msg.get("type")
    if kind == "edit":
        return _message_media(_dict(_get(msg, "edit", "message")))
    if kind not in MEDIA_TYPES:
        return None
    media = _dict(msg.get(kind))
    descriptor = {
        "type": kind,
        "id": _key(media.get("id")),
        "mime_type": _key(media.get("mime_type")),
        "sha256": _key(media.get("sha256")),
        "caption": _str(media.get("caption")),
        "filename": _key(media.get("filename")),
    }
    if kind == "sticker":
        # Static and animated stickers have different size limits (media_limits.max_bytes);
        # anything but a JSON boolean is "not said".
        animated = media.get("animated")
        descriptor["animated"] = animated if isinstance(animated, bool) else None
    return descriptor


def _button_payload(msg):
    kind = msg.get("type")
    if kind == "button":
        return _key(_get(msg, "button", "payload"))
    if kind == "interactive":
        interactive = _dict(msg.get("interactive"))
        for reply in ("button_reply", "list_reply"):
            if reply in interactive:
                return _key(_get(interactive, reply, "id"))
    return None


def _context_wamid(msg):
    context_id = _key(_get(msg, "context", "id"))
    if context_id:
        return context_id
    # A reaction points at the message it reacts to, without a context block.
    if msg.get("type") == "reaction":
        return _key(_get(msg, "reaction", "message_id"))
    return None


def _original_wamid(msg):
    kind = msg.get("type")
    if kind in ("edit", "revoke"):
        return _key(_get(msg, kind, "original_message_id"))
    return None


# ---------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundMessage:
    """A message a WhatsApp user sent to the business (``messages`` field).

    :ivar wamid: message id (idempotency key)
    :ivar from_wa_id: sender's ``wa_id`` (digits) or ``None`` for username-only users
    :ivar bsuid: sender's business-scoped user id, when Meta sends one
    :ivar profile_name: sender's WhatsApp profile name
    :ivar timestamp: unix seconds, ``None`` if missing
    :ivar type: Meta's message type (``text``, ``button``, ``image``, ``system``, ``edit``...)
    :ivar text: readable text: body, button text, reply title, emoji, caption, location...
    :ivar button_payload: quick-reply payload or interactive reply id
    :ivar context_wamid: id of the message replied to (ties "Confirm" to the reminder sent)
    :ivar original_wamid: for ``edit`` / ``revoke``: the message edited or deleted
    :ivar media: media descriptor dict or ``None``
    :ivar system: ``system`` block of system messages (``user_changed_number``...) or ``None``
    :ivar errors: ``errors[]`` (e.g. 131060 on ``unsupported`` messages)
    :ivar raw: the message dict as received
    """

    wamid: str | None
    from_wa_id: str | None
    bsuid: str | None
    profile_name: str | None
    timestamp: int | None
    type: str | None
    text: str | None
    button_payload: str | None
    context_wamid: str | None
    media: dict | None
    errors: list
    raw: dict = dc_field(repr=False, compare=False)
    original_wamid: str | None = None
    system: dict | None = None


def _find_contact(contacts, msg):
    wa_id = msg.get("from")
    user_id = msg.get("from_user_id")
    for contact in contacts:
        if wa_id and contact.get("wa_id") == wa_id:
            return contact
    for contact in contacts:
        if user_id and contact.get("user_id") == user_id:
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def inbound_messages(value):
    """Extract ``value.messages[]`` as :class:`InboundMessage` objects.

    Profile name and BSUID come from ``value.contacts[]`` matched by ``wa_id`` (system messages
    have no contacts block).

    :rtype: list[InboundMessage]
    """
    value = _dict(value)
    contacts = _list(value.get("contacts"))
    result = []
    for msg in _list(value.get("messages")):
        contact = _find_contact(contacts, msg)
        system = msg.get("system")
        result.append(
            InboundMessage(
                wamid=_key(msg.get("id")),
                from_wa_id=_key(msg.get("from")),
                bsuid=_key(contact.get("user_id") or msg.get("from_user_id")),
                profile_name=_key(_get(contact, "profile", "name")),
                timestamp=_int(msg.get("timestamp")),
                type=_key(msg.get("type")),
                text=_message_text(msg),
                button_payload=_button_payload(msg),
                context_wamid=_context_wamid(msg),
                media=_message_media(msg),
                errors=_list(msg.get("errors")),
                raw=msg,
                original_wamid=_original_wamid(msg),
                system=system if isinstance(system, dict) else None,
            )
        )
    return result


#: ``system.type`` of the message Meta sends when a customer changes their number.
USER_CHANGED_NUMBER = "user_changed_number"


@dataclass(frozen=True)
class NumberChange:
    """A customer moved their WhatsApp account to a new phone number (System messages webhook
    reference, ``system.type`` ``user_changed_number``).

    The message comes from the old number (``from``) and names the new one in ``system.wa_id``;
    it carries no ``contacts`` block.

    :ivar wamid: the system message's id
    :ivar old_wa_id: the number the customer left (digits), from ``from``
    :ivar new_wa_id: the customer's new ``wa_id`` (digits)
    :ivar body: Meta's sentence ("User A changed from ... to ..."), or ``None``
    :ivar timestamp: unix seconds, ``None`` if missing
    """

    wamid: str | None
    old_wa_id: str
    new_wa_id: str
    body: str | None
    timestamp: int | None
    raw: dict = dc_field(default_factory=dict, repr=False, compare=False)


def number_changes(value):
    """Extract the ``user_changed_number`` system messages of ``value.messages[]``.

    A message without both numbers, or whose numbers are the same, tells nothing to act on
    and is left out (it is still stored as a message by :func:`inbound_messages`).

    :rtype: list[NumberChange]
    """
    result = []
    for msg in _list(_dict(value).get("messages")):
        system = _dict(msg.get("system"))
        if msg.get("type") != "system" or system.get("type") != USER_CHANGED_NUMBER:
            continue
        old, new = _key(msg.get("from")), _key(system.get("wa_id"))
        if not old or not new or old == new:
            continue
        result.append(NumberChange(wamid=_key(msg.get("id")), old_wa_id=old, new_wa_id=new,
                                   body=_str(system.get("body")),
                                   timestamp=_int(msg.get("timestamp")), raw=msg))
    return result


# ---------------------------------------------------------------------------
# statuses
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusUpdate:
    """Delivery status of a message the business sent (``value.statuses[]``).

    :ivar status: lower-case status (``sent``, ``delivered``, ``read``, ``played``, ``failed``)
    :ivar biz_opaque_callback_data: the value given at send time, if any
    :ivar pricing: ``pricing`` block or ``None`` (sent with ``sent`` and one later status)
    :ivar errors: ``errors[]`` of a failed status
    """

    wamid: str | None
    status: str | None
    timestamp: int | None
    recipient_id: str | None
    biz_opaque_callback_data: str | None
    pricing: dict | None
    errors: list
    raw: dict = dc_field(default_factory=dict, repr=False, compare=False)

    @property
    def pricing_category(self):
        """``pricing.category`` (``utility``, ``service``...) or ``None``."""
        return _key(_get(self.pricing, "category"))

    @property
    def pricing_type(self):
        """``pricing.type`` (``regular``, ``free_customer_service``...) or ``None``."""
        return _key(_get(self.pricing, "type"))


def statuses(value):
    """Extract ``value.statuses[]`` as :class:`StatusUpdate` objects.

    :rtype: list[StatusUpdate]
    """
    result = []
    for item in _list(_dict(value).get("statuses")):
        status = _key(item.get("status"))
        pricing = item.get("pricing")
        result.append(
            StatusUpdate(
                wamid=_key(item.get("id")),
                status=status.lower() if status else None,
                timestamp=_int(item.get("timestamp")),
                recipient_id=_key(item.get("recipient_id")),
                biz_opaque_callback_data=_key(item.get("biz_opaque_callback_data")),
                pricing=pricing if isinstance(pricing, dict) else None,
                errors=_list(item.get("errors")),
                raw=item,
            )
        )
    return result


def status_supersedes(new, old):
    """Tell whether status ``new`` should replace the stored status ``old``.

    Webhooks arrive late, twice, or out of order, and ``delivered`` is skipped when a message
    is delivered and read at once (Status messages webhook reference). So a status never
    goes down, whatever the arrival order, using this total order::

        pending < accepted < held_for_quality_assessment < sent < delivered
                < failed < read < played

    * ``read`` may replace ``sent`` directly (no ``delivered`` required);
    * ``failed`` wins over every earlier stage and is terminal for them;
    * ``failed`` after ``read``/``played`` is ignored: the user saw the message; conversely a
      late ``read``/``played`` replaces ``failed``, as proof that it arrived.

    Because the order is total, the final status is the same whatever order the webhooks
    came in. The same status again, or an unknown one, never supersedes an existing status.

    :param str new: incoming status (case-insensitive)
    :param old: stored status or ``None``
    :rtype: bool
    """
    new = (new or "").lower()
    old = (old or "").lower()
    if not old:
        return bool(new)
    if new not in STATUS_RANK or old not in STATUS_RANK:
        return False
    return STATUS_RANK[new] > STATUS_RANK[old]


# ---------------------------------------------------------------------------
# smb_message_echoes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoMessage:
    """A message the business sent from the WhatsApp Business app (``message_echoes[]``).

    Echoes do not open or extend the customer service window and must not trigger automations.

    :ivar from_number: business display number (digits)
    :ivar to: the user, as the ``input`` the app used; may differ from the user's ``wa_id``
    """

    wamid: str | None
    from_number: str | None
    to: str | None
    timestamp: int | None
    type: str | None
    text: str | None
    media: dict | None
    raw: dict = dc_field(repr=False, compare=False)
    context_wamid: str | None = None


def echoes(value):
    """Extract ``value.message_echoes[]`` as :class:`EchoMessage` objects.

    :rtype: list[EchoMessage]
    """
    return [
        EchoMessage(
            wamid=_key(msg.get("id")),
            from_number=_key(msg.get("from")),
            to=_key(msg.get("to")),
            timestamp=_int(msg.get("timestamp")),
            type=_key(msg.get("type")),
            text=_message_text(msg),
            media=_message_media(msg),
            raw=msg,
            context_wamid=_context_wamid(msg),
        )
        for msg in _list(_dict(value).get("message_echoes"))
    ]


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryMessage:
    """One message of a synchronized chat history.

    :ivar status: upper-cased ``history_context.status`` (``READ``, ``DELIVERED``...) or
        ``None``; Meta documents upper case but relayed payloads show lower case
    :ivar from_me: ``history_context.from_me`` when present, else ``None``
    :ivar type: ``media_placeholder`` for media, whose content follows in a later webhook
    """

    wamid: str | None
    from_number: str | None
    to: str | None
    timestamp: int | None
    type: str | None
    text: str | None
    status: str | None
    from_me: bool | None
    media: dict | None
    raw: dict = dc_field(repr=False, compare=False)

    def sent_by_business(self, business_number):
        """Tell whether the business sent this message.

        ``from_me`` when present, else ``from`` equal to the business number (Meta: "from =
        business number ⇒ sent by the business").

        :param str business_number: the business display number (any format)
        :rtype: bool
        """
        if self.from_me is not None:
            return self.from_me
        digits = "".join(c for c in str(business_number or "") if c.isdigit())
        return bool(digits) and self.from_number == digits


@dataclass(frozen=True)
class HistoryThread:
    """One 1:1 chat of a history chunk; ``wa_id`` is the other party."""

    wa_id: str | None
    messages: list


class HistoryChunkState:
    """What a ``value.history[]`` item says about the sync, from its ``progress`` and
    ``errors``; shared by :class:`HistoryChunk` and the streamed
    :class:`~.webhook_stream.HistoryItem`."""

    @property
    def declined(self):
        """``True`` when the business turned history sharing off (error 2593109)."""
        return any(_int(e.get("code")) == HISTORY_DECLINED_CODE for e in self.errors)

    @property
    def complete(self):
        """``True`` when ``progress`` reached 100."""
        return self.progress is not None and self.progress >= 100


@dataclass(frozen=True)
class HistoryChunk(HistoryChunkState):
    """One ``value.history[]`` item.

    Chunks may arrive out of order: sort by ``(phase, chunk_order)``. ``progress == 100``
    means the whole synchronization is complete.

    :ivar phase: 0 (day 0-1), 1 (day 1-90) or 2 (day 90-180)
    :ivar errors: ``errors[]``, e.g. 2593109 when the business declined to share history
    """

    phase: int | None
    chunk_order: int | None
    progress: int | None
    threads: list
    errors: list


def _history_message(msg):
    context = _dict(msg.get("history_context"))
    status = _key(context.get("status"))
    from_me = context.get("from_me")
    return HistoryMessage(
        wamid=_key(msg.get("id")),
        from_number=_key(msg.get("from")),
        to=_key(msg.get("to")),
        timestamp=_int(msg.get("timestamp")),
        type=_key(msg.get("type")),
        text=_message_text(msg),
        status=status.upper() if status else None,
        from_me=from_me if isinstance(from_me, bool) else None,
        media=_message_media(msg),
        raw=msg,
    )


def history(value):
    """Extract ``value.history[]`` as :class:`HistoryChunk` objects.

    A single chunk can hold thousands of messages: store the change first, process it later.

    :rtype: list[HistoryChunk]
    """
    result = []
    for item in _list(_dict(value).get("history")):
        threads = [
            HistoryThread(
                wa_id=_key(thread.get("id")),
                messages=[_history_message(m) for m in _list(thread.get("messages"))],
            )
            for thread in _list(item.get("threads"))
        ]
        result.append(HistoryChunk(threads=threads, **history_header(item)))
    return result


def history_header(item):
    """The sync state of one ``value.history[]`` item, its ``metadata`` and ``errors``.

    :param dict item: the item, or only its ``metadata`` and ``errors`` keys
    :return: the keyword arguments ``phase``, ``chunk_order``, ``progress`` and ``errors``
    :rtype: dict
    """
    metadata = _dict(item.get("metadata"))
    return {
        "phase": _int(metadata.get("phase")),
        "chunk_order": _int(metadata.get("chunk_order")),
        "progress": _int(metadata.get("progress")),
        "errors": _list(item.get("errors")),
    }


def history_media(value):
    """Extract the media follow-up of a history sync (``field: history`` with
    ``value.messages[]``); each message's ``wamid`` is that of the earlier placeholder.

    :rtype: list[InboundMessage]
    """
    return inbound_messages(value)


# ---------------------------------------------------------------------------
# smb_app_state_sync
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StateSyncItem:
    """A contact added/edited (``action: add``) or removed in the phone's address book.

    On ``remove`` Meta sends no names.
    """

    type: str | None
    action: str | None
    phone_number: str | None
    full_name: str | None
    first_name: str | None
    timestamp: int | None
    raw: dict = dc_field(default_factory=dict, repr=False, compare=False)


def state_sync(value):
    """Extract ``value.state_sync[]`` as :class:`StateSyncItem` objects.

    :rtype: list[StateSyncItem]
    """
    result = []
    for item in _list(_dict(value).get("state_sync")):
        contact = _dict(item.get("contact"))
        result.append(
            StateSyncItem(
                type=_key(item.get("type")),
                action=_key(item.get("action")),
                phone_number=_key(contact.get("phone_number")),
                full_name=_key(contact.get("full_name")),
                first_name=_key(contact.get("first_name")),
                timestamp=_int(_get(item, "metadata", "timestamp")),
                raw=item,
            )
        )
    return result


# ---------------------------------------------------------------------------
# account_update
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountUpdate:
    """Lifecycle event of a WABA (``account_update``; no ``metadata`` block).

    :ivar event: e.g. ``PARTNER_REMOVED``, ``ACCOUNT_OFFBOARDED``, ``ACCOUNT_RECONNECTED``
    :ivar waba_id: ``waba_info.waba_id`` or ``None`` (use :attr:`Change.waba_id` to route)
    :ivar reason: ``disconnection_info.reason`` (gradual rollout: may be absent)
    :ivar initiated_by: ``disconnection_info.initiated_by`` (``USER`` / ``SYSTEM``)
    :ivar raw: the whole value (``ban_info``, ``violation_info``, ``restriction_info``...)
    """

    event: str | None
    waba_id: str | None
    phone_number: str | None
    reason: str | None
    initiated_by: str | None
    raw: dict = dc_field(repr=False, compare=False)

    @property
    def is_disconnect(self):
        """The tenant is disconnected for good (partner removed, app uninstalled, deleted)."""
        return self.event in DISCONNECT_EVENTS

    @property
    def is_offboarded(self):
        """Temporary offboarding (device change / re-registration): pause sending."""
        return self.event == OFFBOARDED_EVENT

    @property
    def is_reconnected(self):
        """The offboarded coexistence number was re-onboarded automatically."""
        return self.event == RECONNECTED_EVENT


def account_update(value):
    """Extract the ``account_update`` value as a one-item list of :class:`AccountUpdate`.

    :rtype: list[AccountUpdate]
    """
    value = _dict(value)
    info = _dict(value.get("disconnection_info"))
    return [
        AccountUpdate(
            event=_key(value.get("event")),
            waba_id=_key(_get(value, "waba_info", "waba_id")),
            phone_number=_key(value.get("phone_number")),
            reason=_str(info.get("reason")),
            initiated_by=_key(info.get("initiated_by")),
            raw=value,
        )
    ]


# ---------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateEvent:
    """Template status, quality or category change.

    :ivar field: the webhook field it came from
    :ivar event: ``APPROVED``, ``REJECTED``, ``PAUSED``... (status updates only)
    :ivar template_id: ``message_template_id`` as text
    """

    field: str | None
    event: str | None
    template_id: str | None
    name: str | None
    language: str | None
    reason: str | None
    category: str | None
    previous_quality: str | None
    new_quality: str | None
    previous_category: str | None
    new_category: str | None
    raw: dict = dc_field(repr=False, compare=False)


def template_event(field, value):
    """Extract a template webhook value as a one-item list of :class:`TemplateEvent`.

    Handles ``message_template_status_update``, ``message_template_quality_update`` and
    ``template_category_update``.

    :rtype: list[TemplateEvent]
    """
    value = _dict(value)
    return [
        TemplateEvent(
            field=_key(field),
            event=_key(value.get("event")),
            template_id=_key(value.get("message_template_id")),
            name=_key(value.get("message_template_name")),
            language=_key(value.get("message_template_language")),
            reason=_str(value.get("reason")),
            category=_key(value.get("message_template_category")),
            previous_quality=_key(value.get("previous_quality_score")),
            new_quality=_key(value.get("new_quality_score")),
            previous_category=_key(value.get("previous_category")),
            new_category=_key(value.get("new_category")),
            raw=value,
        )
    ]


# ---------------------------------------------------------------------------
# user_preferences
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserPreference:
    """A user stopped or resumed marketing messages (not utility/authentication).

    :ivar value: ``"stop"`` or ``"resume"`` (lower case)
    """

    wa_id: str | None
    category: str | None
    value: str | None
    detail: str | None
    timestamp: int | None
    raw: dict = dc_field(default_factory=dict, repr=False, compare=False)


def user_preferences(value):
    """Extract ``value.user_preferences[]`` as :class:`UserPreference` objects.

    :rtype: list[UserPreference]
    """
    result = []
    for item in _list(_dict(value).get("user_preferences")):
        pref = _key(item.get("value"))
        result.append(
            UserPreference(
                wa_id=_key(item.get("wa_id")),
                category=_key(item.get("category")),
                value=pref.lower() if pref else None,
                detail=_str(item.get("detail")),
                timestamp=_int(item.get("timestamp")),
                raw=item,
            )
        )
    return result
