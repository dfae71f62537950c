"""Slot reservation: concurrent senders leave in slot order and never exceed the rate."""

import random

import pytest

from wa_cloud.pacing import Limit, Window, earliest, reserve, restamp
from wa_cloud.ratelimit import max_in_window


def test_first_message_goes_now():
    result = reserve([Limit(None, 20.0)], now=100.0)
    assert result.allowed and result.slot == 100.0 and result.wait == 0.0
    assert result.new_tats == (pytest.approx(100.05),)


def test_reservations_are_spaced_by_the_interval():
    tat, slots = None, []
    for _ in range(5):
        result = reserve([Limit(tat, 20.0)], now=100.0, max_wait=10)
        assert result.allowed
        slots.append(result.slot)
        (tat,) = result.new_tats
    assert slots == pytest.approx([100.0, 100.05, 100.10, 100.15, 100.20])


def test_too_far_is_refused_without_changing_state():
    result = reserve([Limit(110.0, 20.0)], now=100.0, max_wait=1.0)
    assert not result.allowed
    assert result.wait == pytest.approx(10.0)
    assert result.new_tats == (110.0,)


def test_the_slot_satisfies_every_limit():
    company = Limit(100.2, 20.0)  # next company slot in 0.2 s
    pair = Limit(103.0, 1 / 6)  # this recipient again in 3 s
    result = reserve([company, pair], now=100.0, max_wait=5)
    assert result.allowed and result.slot == pytest.approx(103.0)
    assert result.new_tats == (pytest.approx(103.05), pytest.approx(109.0))
    assert earliest(pair, 100.0) == pytest.approx(103.0)


def test_no_limit_means_now():
    assert reserve([], now=5.0) == (True, 5.0, 0.0, ())


def test_any_one_second_window_holds_at_most_the_rate():
    rng = random.Random(7)
    tat, now, slots = None, 0.0, []
    for _ in range(2000):
        now += rng.uniform(0.0, 0.08)  # callers arrive faster and slower than the rate
        result = reserve([Limit(tat, 20.0)], now=now, max_wait=60)
        assert result.allowed
        slots.append(result.slot)
        (tat,) = result.new_tats
    slots.sort()
    j = 0
    for i, start in enumerate(slots):
        while j < len(slots) and slots[j] < start + 1.0 - 1e-9:
            j += 1
        assert j - i <= 20


def test_window_lets_a_late_sender_catch_up():
    """Workers were busy for 0.5 s: a GCRA has lost those slots, the window has not."""
    window = Window.for_rate((), 20.0)
    gcra_tat, slots, gcra_slots = None, [], []
    for n in range(40):
        now = 100.0 + (0.5 if n >= 5 else 0.0) + n * 0.01  # 5 sends, a pause, then a rush
        result = reserve([window], now=now, max_wait=60)
        window = window._replace(recent=result.new_tats[0])
        slots.append(result.slot)
        gcra = reserve([Limit(gcra_tat, 20.0)], now=now, max_wait=60)
        gcra_tat = gcra.new_tats[0]
        gcra_slots.append(gcra.slot)
    assert max_in_window(slots) == 20
    assert len([s for s in slots if s < 101.0]) == 20
    assert len([s for s in gcra_slots if s < 101.0]) < 20


def test_window_never_exceeds_its_count_in_any_window():
    rng = random.Random(11)
    window, now, slots = Window.for_rate((), 20.0, margin=1.03), 0.0, []
    for _ in range(3000):
        now += rng.choice((0.0, 0.001, 0.02, 0.3))  # rushes and pauses
        result = reserve([window], now=now, max_wait=60)
        assert result.allowed and result.slot >= now
        window = window._replace(recent=result.new_tats[0])
        slots.append(result.slot)
    assert max_in_window(slots, window=1.03) == 20
    assert len(window.recent) <= 20


def test_window_for_fractional_and_slow_rates():
    assert Window.for_rate((), 20.7)[1:3] == (20, 1.0), "whole messages per second"
    slow = Window.for_rate((), 0.5)
    assert (slow.count, slow.window) == (1, 2.0)
    first = reserve([slow], now=10.0)
    second = reserve([slow._replace(recent=first.new_tats[0])], now=10.5, max_wait=5)
    assert second.slot == pytest.approx(12.0)


def test_window_not_before_and_far_slots():
    window = Window((99.5,) * 20, 20, 1.0, not_before=105.0)
    result = reserve([window], now=100.0, max_wait=1.0)
    assert not result.allowed and result.wait == pytest.approx(5.0)
    assert result.new_tats == (window.recent,), "nothing reserved"
    assert earliest(window._replace(not_before=None), 100.0) == pytest.approx(100.5)


def test_window_state_stays_small_under_a_high_cap():
    window, now = Window.for_rate((), 1000.0), 0.0
    for _ in range(200):
        now += 0.02  # 50 messages/s, far below the cap
        result = reserve([window], now=now)
        window = window._replace(recent=result.new_tats[0])
    assert len(window.recent) == 50, "only the last second is kept"
    assert window.recent[-1] == pytest.approx(now)


def _paced_sends(lateness, use_restamp, count=200):
    """Two senders at a 20/s cap (window 1/0.97 s), always backlogged: each reserves its next
    slot as soon as its last message left. ``lateness(n)`` is how long after its slot message
    ``n`` really leaves. Returns the moments the messages left."""
    window = Window.for_rate((), 20.0, margin=1 / 0.97)
    free = [0.0, 0.0]  # when each sender can reserve again
    left = []
    for n in range(count):
        sender = free.index(min(free))
        result = reserve([window], now=free[sender], max_wait=60)
        window = window._replace(recent=result.new_tats[0])
        moment = result.slot + lateness(n)
        if use_restamp and lateness(n) > 0.015:
            window = window._replace(recent=restamp(window.recent, result.slot, moment))
        left.append(moment)
        free[sender] = moment + 0.05  # the answer, the outcome, the next job
    return left


def test_a_late_message_would_crowd_a_second_unless_restamped():
    """One message in 15 leaves 45 ms after its slot (a slow commit, a descheduled worker):
    the message 20 slots later is planned one window after the slot, which is less than a
    second after the late message really left. Restamping keeps every second within the cap,
    at the same throughput."""
    def lateness(n):
        return 0.045 if n % 15 == 7 else 0.003

    plain = _paced_sends(lateness, use_restamp=False)
    assert max_in_window(plain) == 21
    restamped = _paced_sends(lateness, use_restamp=True)
    assert max_in_window(restamped) == 20
    assert len([t for t in restamped if t < restamped[0] + 10]) >= 19.0 * 10


def test_restamp_moves_one_slot_later_only():
    recent = (1.0, 1.05, 1.1)
    assert restamp(recent, 1.05, 1.2) == (1.0, 1.1, 1.2), "moved, and kept in order"
    assert restamp(recent, 1.05, 1.0) == recent, "never earlier"
    assert restamp(recent, 7.0, 8.0) == recent, "a slot no longer kept: nothing to move"
