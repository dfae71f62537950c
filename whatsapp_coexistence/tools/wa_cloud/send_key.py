"""Send keys: the one identity of an automated appointment message.

A send key is ``wac:<event id>:<kind>:<partner id>:<start>``. It is the queue job's
``identity_key``, the message row's ``wa_send_key`` and the ``biz_opaque_callback_data`` Meta
echoes in every status webhook of the message, so a status can be tied to its send even when
the send's own answer was lost.
"""

from datetime import datetime
from typing import NamedTuple

PREFIX = "wac"


def start_key(value):
    """The start time as it appears in send keys: UTC, to the second (``20260203T173000``).

    :param value: a naive UTC ``datetime``, its ``YYYY-MM-DD HH:MM:SS`` string, or nothing
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y%m%dT%H%M%S") if value else "none"


def send_key(event_id, kind, partner_id, start):
    """The key of one send.

    :param str start: the appointment's start as :func:`start_key` writes it
    """
    return "%s:%d:%s:%d:%s" % (PREFIX, event_id, kind, partner_id, start)


class SendKey(NamedTuple):
    """The parts of a :func:`send_key`."""

    event_id: int
    kind: str
    partner_id: int
    start: str


def parse_send_key(key):
    """The :class:`SendKey` of ``key``, or ``None`` when it is not one."""
    parts = (key or "").split(":")
    if len(parts) != 5 or parts[0] != PREFIX or not (parts[1].isdigit() and parts[3].isdigit()):
        return None
    return SendKey(int(parts[1]), parts[2], int(parts[3]), parts[4])
