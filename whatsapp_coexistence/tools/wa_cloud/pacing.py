"""Slot reservation on top of :func:`.ratelimit.gcra`: send at the first moment every limit allows.

:func:`.ratelimit.gcra` answers "may I send now?". A sender that is told "wait 40 ms" and asks
again later races with every other sender, and the fastest wins. Reserving instead gives each
sender its own future slot: the stored state moves forward at once, the sender sleeps until its
slot and sends. Concurrent senders then leave in slot order and the rate never exceeds the
limit, as long as the states are read and written atomically (one PostgreSQL row per key,
locked with ``SELECT ... FOR UPDATE``, see ``wac.rate.bucket``).

Two kinds of limit:

* :class:`Limit`, a GCRA: messages evenly spaced (the recipient's pair spacing, one message
  every 6 seconds);
* :class:`Window`, at most ``count`` messages in any ``window`` seconds (the number's
  throughput, Meta's "20 messages per second"). It remembers the last ``count`` slots instead
  of one arrival time, so a slot missed because every worker was busy is not lost: the sender
  catches up as long as no window is exceeded, where a GCRA would fall behind for good.

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


class Window(NamedTuple):
    """At most ``count`` messages in any half-open window of ``window`` seconds.

    :ivar recent: the last reserved slots, oldest first (at most ``count`` are kept)
    :ivar count: messages per window
    :ivar window: window length in seconds
    :ivar not_before: no slot before this moment (epoch seconds; Meta said "slow down")
    """

    recent: tuple
    count: int
    window: float
    not_before: float | None = None

    @classmethod
    def for_rate(cls, recent, rate, margin=1.0, not_before=None):
        """A cap of ``rate`` messages per second, held in every one-second window.

        ``rate`` is rounded down to whole messages per second (bursts of 20 then 20 more 0.98 s
        later would put 40 in some second); below one per second it becomes one message per
        ``1 / rate`` seconds. ``margin`` (>= 1) stretches the window, for the moments
        between a reserved slot and the request reaching Meta.
        """
        if rate >= 1:
            return cls(tuple(recent or ()), int(rate + 1e-9), margin, not_before)
        return cls(tuple(recent or ()), 1, margin / rate, not_before)


class Reservation(NamedTuple):
    """Result of :func:`reserve`.

    :ivar allowed: the slot is within ``max_wait``; store ``new_tats`` and send at ``slot``
    :ivar slot: epoch seconds of the reserved (or first possible) moment
    :ivar wait: ``slot - now``, never negative
    :ivar new_tats: the states to store (the old ones when not allowed): a ``tat`` for a
        :class:`Limit`, the new ``recent`` tuple for a :class:`Window`
    """

    allowed: bool
    slot: float
    wait: float
    new_tats: tuple


def earliest(limit, now):
    """First moment at or after ``now`` when ``limit`` conforms.

    :rtype: float
    """
    if isinstance(limit, Window):
        moment = max(now, limit.not_before or now)
        if len(limit.recent) >= limit.count:
            moment = max(moment, limit.recent[-limit.count] + limit.window)
        return moment
    decision = gcra(limit.tat, now, limit.rate, limit.burst)
    return now if decision.allowed else now + decision.wait


def _advance(limit, slot, now):
    """The state of ``limit`` once a message is reserved at ``slot`` (which conforms).

    A window keeps only the slots that can still count (later than ``now - window``: no slot
    is ever reserved before ``now``), so its state stays small however high the cap.
    """
    if isinstance(limit, Window):
        live = [moment for moment in limit.recent if moment > now - limit.window]
        return tuple(sorted((*live, slot)))[-limit.count:]
    decision = gcra(limit.tat, slot, limit.rate, limit.burst)
    # earliest() guarantees conformance at ``slot``; if float rounding says otherwise, apply
    # the same advance as gcra() would (tat' = max(tat, t) + T).
    return (decision.new_tat if decision.allowed
            else max(limit.tat or slot, slot) + 1.0 / limit.rate)


def _state(limit):
    return limit.recent if isinstance(limit, Window) else limit.tat


def reserve(limits, now, max_wait=0.0):
    """Reserve the first slot that every limit allows, if it is at most ``max_wait`` away.

    :param limits: iterable of :class:`Limit` and :class:`Window` (none means no limit)
    :param float now: current time, epoch seconds, on the same clock as the stored states
    :param float max_wait: longest acceptable wait; beyond it nothing is reserved and the
        caller should postpone (e.g. ``RetryableJobError(seconds=wait)``)
    :rtype: Reservation
    """
    limits = list(limits)
    slot = max([now] + [earliest(limit, now) for limit in limits])
    wait = max(0.0, slot - now)
    if wait > max_wait:
        return Reservation(False, slot, wait, tuple(_state(limit) for limit in limits))
    return Reservation(True, slot, wait, tuple(_advance(limit, slot, now) for limit in limits))


def restamp(recent, slot, moment):
    """A window's ``recent`` slots once the message reserved at ``slot`` left at ``moment``.

    A message leaves a little after its slot: its intent is written first, its worker may be
    descheduled. The slot ``count`` places later is one window after the stored one, so a late
    message and that later one would be less than a window apart where Meta counts them.
    Storing when the message really left keeps them a whole window apart. Only ever later:
    a slot is never moved back.

    :param recent: the stored slots, oldest first
    :rtype: tuple
    """
    values = list(recent)
    for index, value in enumerate(values):
        if abs(value - slot) < 1e-6:
            values[index] = max(value, moment)
            break
    return tuple(sorted(values))
