"""Slot reservation on top of :func:`.ratelimit.gcra`: send at the first moment every limit allows.

:func:`.ratelimit.gcra` answers "may I send now?". A sender that is told "wait 40 ms" and asks
again later races with every other sender, and the fastest wins. Reserving instead gives each
sender its own future slot: the stored state moves forward at once, the sender sleeps until its
slot and sends. Concurrent senders then leave in slot order and the rate never exceeds the
limit, as long as the states are read and written atomically (one PostgreSQL row per key,
locked with ``SELECT ... FOR UPDATE``, see ``wac.rate.bucket``).

Several limits can apply to one message (the company's throughput and the recipient's pair
spacing): the slot is the first moment allowed by all of them, and each state is advanced as
if its message was sent at that slot.
"""

from typing import NamedTuple

from .ratelimit import gcra


class Limit(NamedTuple):
    """One limit on one key.

    :ivar tat: stored theoretical arrival time (epoch seconds) or ``None`` for a new key
    :ivar rate: messages per second (``1 / 6`` for one message every 6 seconds)
    :ivar burst: messages allowed back to back
    """

    tat: float | None
    rate: float
    burst: int = 1


class Reservation(NamedTuple):
    """Result of :func:`reserve`.

    :ivar allowed: the slot is within ``max_wait``; store ``new_tats`` and send at ``slot``
    :ivar slot: epoch seconds of the reserved (or first possible) moment
    :ivar wait: ``slot - now``, never negative
    :ivar new_tats: the states to store (the old ones when not allowed)
    """

    allowed: bool
    slot: float
    wait: float
    new_tats: tuple


def earliest(limit, now):
    """First moment at or after ``now`` when ``limit`` conforms.

    :rtype: float
    """
    decision = gcra(limit.tat, now, limit.rate, limit.burst)
    return now if decision.allowed else now + decision.wait


def reserve(limits, now, max_wait=0.0):
    """Reserve the first slot that every limit allows, if it is at most ``max_wait`` away.

    :param limits: iterable of :class:`Limit` (an empty one means no limit)
    :param float now: current time, epoch seconds, on the same clock as the stored states
    :param float max_wait: longest acceptable wait; beyond it nothing is reserved and the
        caller should postpone (e.g. ``RetryableJobError(seconds=wait)``)
    :rtype: Reservation
    """
    limits = list(limits)
    slot = max([now] + [earliest(limit, now) for limit in limits])
    wait = max(0.0, slot - now)
    if wait > max_wait:
        return Reservation(False, slot, wait, tuple(limit.tat for limit in limits))
    new_tats = []
    for limit in limits:
        decision = gcra(limit.tat, slot, limit.rate, limit.burst)
        # earliest() guarantees conformance at ``slot``; if float rounding says otherwise, apply
        # the same advance as gcra() would (tat' = max(tat, t) + T).
        new_tats.append(decision.new_tat if decision.allowed
                        else max(limit.tat or slot, slot) + 1.0 / limit.rate)
    return Reservation(True, slot, wait, tuple(new_tats))
