"""Statistics against worked examples computed by hand."""

from __future__ import annotations

import pytest

from console.engine.stats import percentile, rfc3550_jitter


def test_jitter_worked_example() -> None:
    # RTTs 10, 12, 11, 15 ms: differences |D| = 2, 1, 4.
    # J1 = 0 + (2 - 0)/16            = 0.125
    # J2 = 0.125 + (1 - 0.125)/16    = 0.1796875
    # J3 = 0.1796875 + (4 - 0.1796875)/16 = 0.418457031...
    assert rfc3550_jitter([10, 12, 11, 15]) == pytest.approx(0.41845703125)


def test_jitter_from_rfc3550_transit_times() -> None:
    # RFC 3550 6.4.1: transit = arrival - sent. Packets sent every 20 ms arrive
    # at 100, 125, 140, 170 ms: transits 100, 105, 100, 110; |D| = 5, 5, 10.
    sent = [0, 20, 40, 60]
    arrived = [100, 125, 140, 170]
    transit = [a - s for a, s in zip(arrived, sent, strict=True)]
    j1 = 5 / 16
    j2 = j1 + (5 - j1) / 16
    j3 = j2 + (10 - j2) / 16
    assert rfc3550_jitter(transit) == pytest.approx(j3)
    assert j3 == pytest.approx(1.192626953125)  # 0.3125 -> 0.60546875 -> 1.192626953125


def test_jitter_is_not_max_minus_min() -> None:
    values = [10.0, 50.0] + [10.0] * 30
    assert rfc3550_jitter(values) < 50 - 10  # one spike decays, it does not pin the figure


def test_constant_rtt_has_zero_jitter_and_too_few_values_none() -> None:
    assert rfc3550_jitter([5.0] * 10) == 0.0
    assert rfc3550_jitter([5.0]) is None


def test_percentile_interpolates_like_numpy() -> None:
    values = sorted([1.0, 2.0, 3.0, 4.0, 10.0])
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(8.8)  # numpy.percentile(values, 95)
    assert percentile(values, 99) == pytest.approx(9.76)
    assert percentile([], 50) is None
