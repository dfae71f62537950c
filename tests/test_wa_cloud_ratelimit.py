"""GCRA throughput limiter, per-recipient spacing and quiet hours (reference §4.3)."""

import datetime as dt
import math
import random
from zoneinfo import ZoneInfo

import pytest

from wa_cloud.ratelimit import (
    Decision,
    gcra,
    in_quiet_hours,
    max_in_window,
    quiet_hours_end,
    spacing,
)

TICK = 0.001  # simulated clock resolution (seconds)


def simulate(rate, burst, seconds=30, callers=40, seed=7):
    """Many callers share one stored TAT (as one PostgreSQL row would) and retry after
    ``wait``. Returns the integer ticks at which a send was allowed."""
    rng = random.Random(seed)
    total_ticks = int(seconds / TICK)
    # Each caller first shows up at a random moment, in bursts around a few instants.
    starts = [0, 0, 0, 5000, 12000]
    next_try = [rng.choice([*starts, rng.randrange(total_ticks)]) for _ in range(callers)]
    tat = None
    allowed = []
    for tick in range(total_ticks):
        due = [i for i, t in enumerate(next_try) if t == tick]
        for caller in due:
            decision = gcra(tat, tick * TICK, rate, burst)
            if decision.allowed:
                tat = decision.new_tat
                allowed.append(tick)
                next_try[caller] = tick + 1  # keeps sending as fast as it is allowed
            else:
                assert decision.new_tat == tat
                assert decision.wait > 0
                # Round the wait up to the clock resolution, plus jitter between callers.
                delay = max(1, math.ceil(decision.wait / TICK))
                next_try[caller] = tick + delay + rng.randrange(3)
    return allowed


def test_first_request_is_allowed():
    decision = gcra(None, 100.0, 20)
    assert decision == Decision(True, 100.05, 0.0)
    assert isinstance(decision, tuple)


def test_denied_request_keeps_tat_and_reports_wait():
    first = gcra(None, 0.0, 10)
    second = gcra(first.new_tat, 0.03, 10)
    assert second.allowed is False
    assert second.new_tat == first.new_tat
    assert second.wait == pytest.approx(0.07)
    third = gcra(first.new_tat, 0.1, 10)
    assert third.allowed is True
    assert third.new_tat == pytest.approx(0.2)


def test_idle_key_does_not_accumulate_credit():
    tat = gcra(None, 0.0, 20).new_tat
    later = gcra(tat, 3600.0, 20)
    assert later.allowed and later.new_tat == pytest.approx(3600.05)
    again = gcra(later.new_tat, 3600.0, 20)
    assert again.allowed is False


def test_burst_allows_back_to_back_then_paces():
    tat, allowed = None, 0
    for _ in range(10):
        decision = gcra(tat, 0.0, 20, burst=5)
        if decision.allowed:
            tat, allowed = decision.new_tat, allowed + 1
    assert allowed == 5


def test_steady_20_per_second_never_exceeds_20_in_any_second():
    ticks = simulate(rate=20, burst=1, seconds=30)
    assert max_in_window(ticks, int(1 / TICK)) <= 20
    # And the limiter does not starve the callers: close to 20/s over the run.
    assert len(ticks) >= 20 * 30 - 20


def test_burst_bound_holds_with_many_callers():
    burst = 5
    ticks = simulate(rate=20, burst=burst, seconds=30, callers=60, seed=11)
    assert max_in_window(ticks, int(1 / TICK)) <= 20 + burst - 1
    assert max_in_window(ticks, int(10 / TICK)) <= 200 + burst - 1


def test_gcra_rejects_bad_parameters():
    with pytest.raises(ValueError):
        gcra(None, 0.0, 0)
    with pytest.raises(ValueError):
        gcra(None, 0.0, 20, burst=0)


def test_spacing():
    assert spacing(None, 100.0, 6) == (True, 0.0)
    assert spacing(95.0, 100.0, 6) == (False, pytest.approx(1.0))
    assert spacing(94.0, 100.0, 6) == (True, 0.0)
    allowed, wait = spacing(99.5, 100.0, 6)
    assert not allowed and wait == pytest.approx(5.5)


@pytest.mark.parametrize(
    "hour, minute, expected",
    [
        (20, 59, False),
        (21, 0, True),
        (23, 30, True),
        (0, 0, True),
        (7, 59, True),
        (8, 0, False),
        (12, 0, False),
    ],
)
def test_quiet_hours_over_midnight(hour, minute, expected):
    assert in_quiet_hours(dt.time(hour, minute), 21, 8) is expected
    assert in_quiet_hours(dt.datetime(2026, 5, 3, hour, minute), 21.0, 8.0) is expected


@pytest.mark.parametrize(
    "hour, minute, expected",
    [(12, 29, False), (12, 30, True), (13, 59, True), (14, 0, False)],
)
def test_quiet_hours_same_day(hour, minute, expected):
    assert in_quiet_hours(dt.time(hour, minute), 12.5, 14) is expected


def test_no_quiet_hours_when_start_equals_end():
    assert in_quiet_hours(dt.time(3, 0), 8, 8) is False


def test_quiet_hours_bad_bounds():
    with pytest.raises(ValueError):
        in_quiet_hours(dt.time(3, 0), -1, 8)
    with pytest.raises(ValueError):
        in_quiet_hours(dt.time(3, 0), 21, 25)


def test_quiet_hours_end():
    evening = dt.datetime(2026, 5, 3, 22, 15)
    assert quiet_hours_end(evening, 21, 8) == dt.datetime(2026, 5, 4, 8, 0)
    early = dt.datetime(2026, 5, 4, 6, 45, 10)
    assert quiet_hours_end(early, 21, 8) == dt.datetime(2026, 5, 4, 8, 0)
    noon = dt.datetime(2026, 5, 4, 12, 0)
    assert quiet_hours_end(noon, 21, 8) == noon
    lunch = dt.datetime(2026, 5, 4, 13, 0)
    assert quiet_hours_end(lunch, 12.5, 13.75) == dt.datetime(2026, 5, 4, 13, 45)
    assert quiet_hours_end(dt.datetime(2026, 5, 4, 23, 0), 21, 24) == dt.datetime(2026, 5, 5)


def test_quiet_hours_end_keeps_timezone():
    tz = ZoneInfo("America/Sao_Paulo")
    local = dt.datetime(2026, 5, 3, 23, 0, tzinfo=tz)
    end = quiet_hours_end(local, 21, 8)
    assert end == dt.datetime(2026, 5, 4, 8, 0, tzinfo=tz)
    assert end.tzinfo is tz
    assert not in_quiet_hours(end, 21, 8)


def test_max_in_window_counts_half_open_windows():
    assert max_in_window([]) == 0
    assert max_in_window([0.0, 0.5, 0.999, 1.0, 1.5]) == 3
    assert max_in_window([3, 1, 2, 0], window=2) == 2
    assert max_in_window([0.0] * 5) == 5
