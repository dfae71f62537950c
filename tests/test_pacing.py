"""Slot reservation: concurrent senders leave in slot order and never exceed the rate."""

import random

import pytest

from wa_cloud.pacing import Limit, earliest, reserve


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
