"""Pure rate-limiting math; the state (one timestamp per key) is stored by the caller.

Meta's limits that drive it (reference §4.3):

* throughput per phone number: 80 mps by default, **fixed at 20 mps for coexistence numbers**;
  beyond it, error 130429
  (https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput);
* pair rate limit: too many messages to the same user gives 131056; practitioners space messages
  to one user by about 6 seconds.

:func:`gcra` needs a single stored float per key (the "theoretical arrival time"), so the Odoo
side can keep it in one PostgreSQL row and update it with ``SELECT ... FOR UPDATE``.
"""

import datetime as dt
from typing import NamedTuple


class Decision(NamedTuple):
    """Result of :func:`gcra`.

    :ivar allowed: send now
    :ivar new_tat: value to store (unchanged when not allowed)
    :ivar wait: seconds to wait before trying again (``0.0`` when allowed)
    """

    allowed: bool
    new_tat: float
    wait: float


class SpacingDecision(NamedTuple):
    """Result of :func:`spacing`: ``(allowed, wait)``."""

    allowed: bool
    wait: float


def gcra(tat, now, rate_per_s, burst=1):
    """Generic cell rate algorithm (virtual scheduling form).

    Each key stores a *theoretical arrival time* ``tat``: when the next message would be due if
    messages were sent exactly at ``rate_per_s``. With the emission interval ``T = 1 / rate``
    and the tolerance ``tau = (burst - 1) * T``, a message at ``now`` conforms when
    ``now >= tat - tau``; it then advances ``tat`` to ``max(tat, now) + T``. Otherwise it must
    wait ``tat - tau - now`` seconds and ``tat`` is left unchanged.

    Any half-open window of ``t`` seconds then holds fewer than ``t * rate + burst`` messages
    (at most ``rate`` per second with ``burst=1``), whatever the number of concurrent callers,
    as long as they read and update the stored ``tat`` atomically.

    :param tat: stored theoretical arrival time (epoch seconds) or ``None`` for a new key
    :param float now: current time (epoch seconds, same clock as ``tat``)
    :param float rate_per_s: sustained rate, > 0
    :param int burst: messages that may be sent back to back, >= 1
    :rtype: Decision
    """
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    if burst < 1:
        raise ValueError("burst must be at least 1")
    interval = 1.0 / rate_per_s
    tolerance = (burst - 1) * interval
    if tat is None:
        tat = now
    allow_at = tat - tolerance
    if now < allow_at:
        return Decision(False, tat, allow_at - now)
    return Decision(True, max(tat, now) + interval, 0.0)


def spacing(last_sent_at, now, min_gap_s):
    """Minimum gap between two messages to the same recipient (pair rate limit, 131056).

    :param last_sent_at: epoch seconds of the last send to this recipient, or ``None``
    :param float now: current time
    :param float min_gap_s: minimum gap in seconds
    :returns: ``(allowed, wait)``
    :rtype: SpacingDecision
    """
    if last_sent_at is None:
        return SpacingDecision(True, 0.0)
    elapsed = now - last_sent_at
    if elapsed >= min_gap_s:
        return SpacingDecision(True, 0.0)
    return SpacingDecision(False, min_gap_s - elapsed)


def _check_hours(start, end):
    if not (0 <= start <= 24 and 0 <= end <= 24):
        raise ValueError("quiet hours must be between 0 and 24")


def _hours(value):
    return (
        value.hour
        + value.minute / 60.0
        + value.second / 3600.0
        + value.microsecond / 3_600_000_000.0
    )


def in_quiet_hours(local_dt_time, start, end):
    """Tell whether a local time falls in the quiet window ``[start, end)``.

    Hours are floats (``21.5`` is 21:30). ``start > end`` means a window over midnight
    (21:00-08:00); ``start == end`` means no quiet hours.

    :param local_dt_time: ``datetime.datetime`` or ``datetime.time``, in the recipient's (or
        company's) local time
    :param float start: start hour
    :param float end: end hour
    :rtype: bool
    """
    _check_hours(start, end)
    if start == end:
        return False
    hour = _hours(local_dt_time)
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_hours_end(local_dt, start, end):
    """Return the first moment at or after ``local_dt`` when sending is allowed.

    ``local_dt`` itself when outside quiet hours, else the next ``end`` o'clock (same day or
    the day after). Arithmetic is on wall-clock time and keeps ``tzinfo``; callers using
    ``pytz`` should ``normalize()`` the result around DST changes.

    :param datetime.datetime local_dt: local date and time
    :rtype: datetime.datetime
    """
    if not in_quiet_hours(local_dt, start, end):
        return local_dt
    midnight = local_dt.replace(hour=0, minute=0, second=0, microsecond=0)
    candidate = midnight + dt.timedelta(hours=end)
    if candidate <= local_dt:
        candidate += dt.timedelta(days=1)
    return candidate


def max_in_window(times, window=1.0):
    """Count the most events that fall in any half-open window ``[t, t + window)``.

    This measures a limiter from the outside: for a cap of 20 per second,
    ``max_in_window(send_times) <= 20`` must hold. It works on seconds or on integer ticks.

    :param times: event times, in any order
    :param window: window length, in the same unit as ``times``
    :rtype: int
    """
    times = sorted(times)
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window - 1e-9:
            first += 1
        best = max(best, last - first + 1)
    return best
