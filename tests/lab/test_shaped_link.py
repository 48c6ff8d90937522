"""On a link shaped to 40 ms delay, 10 ms jitter and 10% loss, the console measures what was configured.

The probes run through the real path: Hub -> Store -> Store.stats (console.engine.stats).
The link: each packet entering the namespace is dropped with p = 0.10, else held
for U(30, 50) ms by the NFQUEUE delayer, so the round trip seen from here is that
delay plus a fraction of a millisecond.

Tolerances, from the sample counts (n ~ 180 successful probes of ~200):
- mean RTT: the delay's sd is 10/sqrt(3) = 5.77 ms, so the mean's sd is
  5.77/sqrt(n) ~ 0.43 ms. Allowed: 40 - 4 sd .. 40 + 4 sd + 2.5 ms, the extra
  2.5 ms being the path's own cost (asyncio rounds timer waits up to the next
  millisecond in the delayer, plus scheduling on a busy 2-core machine).
- RFC 3550 jitter: for independent U(30, 50) delays E|D| = 2 x 10/3 = 6.67 ms.
  The estimator's 1/16 gain makes it an average over the last ~31 differences
  whatever n is; simulated, its sd is 0.91 ms and its 99.9 % range 4.1..9.9 ms.
  Allowed: 6.67 +- 3.5 ms. The plain mean of |D| over all n pairs has sd
  4.71/sqrt(n) ~ 0.35 ms; allowed 6.67 +- 1.5 ms (4 sd plus timer noise).
- loss: the lost count is Binomial(N, 0.10); the bounds are its exact 0.05 %
  and 99.95 % quantiles for the N = 200 sent: 8..35 lost (4 %..17.5 %).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time

import pytest

from console.engine.hub import Hub
from console.engine.stats import rfc3550_jitter
from console.engine.store import Store
from probes.runtime import ProbeSpec
from tests.lab.netns import Namespace

pytestmark = pytest.mark.system

DELAY_MS, JITTER_MS, LOSS = 40.0, 10.0, 0.10
PROBES = 200
PORT = 8080
#: Below the 1 s SYN retransmission timer: a lost SYN counts as lost, not as a 1 s "RTT".
TIMEOUT = 0.5


def binomial_bounds(n: int, p: float, tail: float = 0.0005) -> tuple[int, int]:
    """Smallest and largest counts outside which Binomial(n, p) puts at most ``tail`` each side."""
    cdf, low, high = 0.0, 0, n
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    for k in range(n + 1):
        cdf += pmf[k]
        if cdf > tail:
            low = k
            break
    cdf = 0.0
    for k in range(n, -1, -1):
        cdf += pmf[k]
        if cdf > tail:
            high = k
            break
    return low, high


async def probe_shaped_link(netns: Namespace) -> Store:
    netns.tcp_listener(PORT)
    netns.shape(DELAY_MS, JITTER_MS, LOSS)
    store = Store()
    hub = Hub(store)
    for spec in (ProbeSpec("tcp", f"{netns.addr}:{PORT}", interval=0.1, timeout=TIMEOUT),
                 ProbeSpec("icmp", netns.addr, interval=0.1, timeout=TIMEOUT)):
        hub.start_probe(spec)
    deadline = time.monotonic() + 50
    try:
        while time.monotonic() < deadline:
            series = store.keys()  # (host, kind, target) keys, not samples
            counts = [len(store.series(key)) for key in series]
            if len(counts) == 2 and min(counts) >= PROBES:
                break
            await asyncio.sleep(0.2)
    finally:
        await hub.stop()
    return store


def check_series(store: Store, kind: str) -> dict[str, float]:
    (key,) = store.keys(kind=kind)
    window = store.window(key)[:PROBES]
    assert len(window) == PROBES, f"{kind}: only {len(window)} probes in 50 s"
    assert all(s.ok or s.error == "timeout" for s in window), [s.message for s in window if not s.ok][:3]
    rtts = [float(s.fields["rtt_ms"]) for s in window if s.ok]
    n = len(rtts)
    mean = sum(rtts) / n
    sd_mean = (JITTER_MS / math.sqrt(3)) / math.sqrt(n)
    lost = PROBES - n
    low, high = binomial_bounds(PROBES, LOSS)
    jitter = rfc3550_jitter(rtts)
    mean_abs_diff = sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (n - 1)
    stats = store.stats(key, seconds=None)
    figures = {"n": n, "mean": mean, "jitter": jitter or 0.0, "mean_abs_diff": mean_abs_diff, "lost": lost,
               "store_mean": stats.mean or 0.0, "store_jitter": stats.jitter or 0.0}
    print(kind, {k: round(v, 2) for k, v in figures.items()})
    assert DELAY_MS - 4 * sd_mean <= mean <= DELAY_MS + 4 * sd_mean + 2.5, figures
    assert jitter is not None and abs(jitter - 2 * JITTER_MS / 3) <= 3.5, figures
    assert abs(mean_abs_diff - 2 * JITTER_MS / 3) <= 1.5, figures
    assert low <= lost <= high, (figures, (low, high))
    # The store's own summary (what the targets pane shows) agrees with the raw samples.
    assert stats.loss_pct is not None and stats.loss_pct == pytest.approx(
        100.0 * sum(not s.ok for s in store.window(key)) / len(store.window(key)))
    assert stats.jitter is not None and abs(stats.jitter - 2 * JITTER_MS / 3) <= 3.5
    return figures


async def test_shaped_link_measures_delay_jitter_and_loss(netns: Namespace) -> None:
    store = await probe_shaped_link(netns)
    check_series(store, "tcp")
    check_series(store, "icmp")


def test_binomial_bounds_cut_the_stated_tails() -> None:
    """The loss bounds leave at most 0.05 % on each side, and are the tightest that do."""
    n, p = PROBES, LOSS
    low, high = binomial_bounds(n, p)
    cdf = [sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1)) for k in range(n + 1)]
    assert cdf[low - 1] <= 0.0005 < cdf[low]
    assert 1 - cdf[high] <= 0.0005 < 1 - cdf[high - 1]
    assert (low, high) == (8, 35)  # 4 % .. 17.5 % at N = 200, as the module doc says
