"""WABA-level health webhooks: the number's quality, its display name, the messaging limit.

These fields carry no ``metadata`` block: they are routed by WABA id (``entry[].id``) and
name the number by ``display_phone_number`` (digits).
https://developers.facebook.com/docs/graph-api/webhooks/reference/whatsapp-business-account
"""

from dataclasses import dataclass

#: Webhook fields handled by the health part of the addon.
HEALTH_FIELDS = frozenset(
    {"phone_number_quality_update", "phone_number_name_update", "business_capability_update"}
)
#: ``phone_number_quality_update.event`` values that mean the quality dropped to low.
QUALITY_FLAGGED = "FLAGGED"
QUALITY_UNFLAGGED = "UNFLAGGED"
#: ``name_status`` / ``decision`` values that stop the display name from being shown.
NAME_REFUSED = frozenset({"DECLINED", "REJECTED", "EXPIRED"})
#: Phone number ``status`` while it can send messages.
PHONE_CONNECTED = "CONNECTED"
#: Quality ratings that raise an alert (``GREEN`` is high, ``UNKNOWN`` not rated yet).
QUALITY_DROPPED = frozenset({"YELLOW", "RED"})


@dataclass(frozen=True)
class QualityUpdate:
    """``phone_number_quality_update``: ``FLAGGED``/``UNFLAGGED`` (quality) or
    ``UPGRADE``/``DOWNGRADE``/``ONBOARDING`` (messaging limit).

    :ivar display_phone_number: the number, digits only
    :ivar event: Meta's event name
    :ivar current_limit: the messaging limit tier now, e.g. ``TIER_1K``
    :ivar old_limit: the tier before, when Meta sends it
    """

    display_phone_number: str | None
    event: str | None
    current_limit: str | None
    old_limit: str | None


@dataclass(frozen=True)
class NameUpdate:
    """``phone_number_name_update``: Meta's decision on a requested display name.

    :ivar decision: ``APPROVED``, ``DECLINED``, ``DEFERRED``...
    :ivar requested_verified_name: the name that was reviewed
    :ivar rejection_reason: Meta's reason, or ``None``
    """

    display_phone_number: str | None
    decision: str | None
    requested_verified_name: str | None
    rejection_reason: str | None


@dataclass(frozen=True)
class CapabilityUpdate:
    """``business_capability_update``: the business's messaging limits changed.

    :ivar messaging_limit: ``max_daily_conversations_per_business`` (a tier such as
        ``TIER_2K``) or, in older versions, ``max_daily_conversation_per_phone`` (a number)
    :ivar max_phone_numbers: ``max_phone_numbers_per_business``
    """

    messaging_limit: str | None
    max_phone_numbers: int | None


def _text(value):
    return str(value).strip() or None if value not in (None, "") else None


def quality_update(value):
    """Parse a ``phone_number_quality_update`` value.

    :rtype: QualityUpdate
    """
    value = value if isinstance(value, dict) else {}
    return QualityUpdate(
        display_phone_number=_text(value.get("display_phone_number")),
        event=(_text(value.get("event")) or "").upper() or None,
        current_limit=_text(value.get("current_limit")),
        old_limit=_text(value.get("old_limit")),
    )


def name_update(value):
    """Parse a ``phone_number_name_update`` value.

    :rtype: NameUpdate
    """
    value = value if isinstance(value, dict) else {}
    return NameUpdate(
        display_phone_number=_text(value.get("display_phone_number")),
        decision=(_text(value.get("decision")) or "").upper() or None,
        requested_verified_name=_text(value.get("requested_verified_name")),
        rejection_reason=_text(value.get("rejection_reason")),
    )


def capability_update(value):
    """Parse a ``business_capability_update`` value.

    :rtype: CapabilityUpdate
    """
    value = value if isinstance(value, dict) else {}
    limit = value.get("max_daily_conversations_per_business")
    if limit in (None, ""):
        limit = value.get("max_daily_conversation_per_phone")
    try:
        numbers = int(value["max_phone_numbers_per_business"])
    except (KeyError, TypeError, ValueError):
        numbers = None
    return CapabilityUpdate(messaging_limit=_text(limit), max_phone_numbers=numbers)
