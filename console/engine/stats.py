"""Statistics the panes show: percentiles, loss and RFC 3550 interarrival jitter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (numpy's default) of already sorted values."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    fraction = rank - low
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction)


def rfc3550_jitter(transit_times: Sequence[float]) -> float | None:
    """Interarrival jitter as RFC 3550 section 6.4.1 defines it.

    J(i) = J(i-1) + (|D(i-1, i)| - J(i-1)) / 16, where D is the difference
    between the transit times of consecutive packets. For a probe, the transit
    time is the measured RTT of each attempt. The 1/16 gain smooths noise; the
    result is a running estimate, not max minus min.
    """
    if len(transit_times) < 2:
        return None
    jitter = 0.0
    for previous, current in pairwise(transit_times):
        jitter += (abs(current - previous) - jitter) / 16.0
    return jitter
