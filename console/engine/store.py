"""The store: bounded ring buffers of Samples, one per series, and the queries panes need.

Cold starts: a probe stream's first measurement (its Samples carry
probes.runtime.COLD_FIELD) is left out of a series' percentiles, mean and
jitter (``SeriesStats.cold_ms`` says what was left out). It pays for the
console's own start - imports, the first connection pool, cold caches - and
not the target's: the demo's healthy backend answers in 4 ms but its first
request takes 70-190 ms, which alone made p95/p99 read 161/192 ms for a
minute. It still counts as an attempt (count, loss) and is still the last
value while it is the only one.

Memory is bounded twice: each series keeps at most ``per_series`` samples, and
at most ``max_series`` series are kept (the one updated longest ago goes
first). A day-long incident therefore costs the same memory as an hour.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from console.engine.stats import percentile, rfc3550_jitter
from probes.runtime import COLD_FIELD
from probes.samples import Sample

SeriesKey = tuple[str, str, str]  # (host, kind, target)

#: Ring depth for kinds whose Samples are large: a conns_table Sample is a full
#: snapshot of every socket (the newest replaces the rest), a pools Sample
#: carries up to 50 connection groups; 3600-deep rings of those would cost
#: gigabytes, and panes and rules need only the newest few.
#: system and conns Samples (a process top list, fd and listener tables: several KB each) are read only
#: at their newest; five minutes of them is plenty and keeps them from growing memory for an hour.
DEFAULT_KIND_LIMITS: dict[str, int] = {"conns_table": 2, "pools": 300, "system": 300, "conns": 300}
#: A target layer's Samples older than this keep only what windows older than any rule's need
#: (THIN_FIELDS: each layer's time, the HTTP status, the DNS rcode, the cold mark; the error and its
#: text stay whole).
#: An HTTP Sample is ~1.5 KB with its 18 fields, a TLS one several KB with its chain, a thin one
#: ~0.3 KB: an hour of five targets went from ~100 MB toward ~15 MB. The rules read 60 s windows.
FULL_DETAIL_S = 120.0
THIN_KINDS = frozenset({"http", "tcp", "icmp", "dns", "tls"})
THIN_FIELDS = frozenset({"rtt_ms", "time_ms", "total_ms", "handshake_ms", "elapsed_ms", "duration_ms",
                         "status", "rcode", COLD_FIELD})


def thin(sample: Sample) -> Sample:
    """``sample`` with only THIN_FIELDS (the same Sample when it has nothing else)."""
    if all(name in THIN_FIELDS for name in sample.fields):
        return sample
    return Sample(kind=sample.kind, target=sample.target, ts=sample.ts,
                  fields={k: v for k, v in sample.fields.items() if k in THIN_FIELDS},
                  host=sample.host, error=sample.error, message=sample.message)


@dataclass(frozen=True)
class SeriesStats:
    """A summary of one series over a window, as a targets row shows it."""

    count: int
    ok: int
    loss_pct: float | None
    last: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    jitter: float | None
    last_error: str | None
    last_message: str | None
    cold_ms: float | None = None
    """The series' first measurement when it is in the window and was left out of the figures (a cold start)."""


class Store:
    """Bounded per-series rings with a change counter widgets can poll cheaply."""

    def __init__(self, per_series: int = 3600, max_series: int = 5000,
                 kind_limits: dict[str, int] | None = None, clock: Callable[[], float] = time.time,
                 full_detail_s: float | None = FULL_DETAIL_S) -> None:
        self.per_series = per_series
        self.full_detail_s = full_detail_s
        """Target layer Samples older than this (by the series' newest) are thinned; None keeps all whole."""
        self._full: dict[SeriesKey, int] = {}
        """Per thinned series: how many of its newest Samples are still whole."""
        self.clock = clock
        """What "now" is for windows: wall time live, the recording's end in a replay."""
        self.max_series = max_series
        self.kind_limits = dict(DEFAULT_KIND_LIMITS if kind_limits is None else kind_limits)
        """Ring depth per kind, overriding ``per_series`` (snapshot kinds keep only a few)."""
        self._series: OrderedDict[SeriesKey, deque[Sample]] = OrderedDict()
        self.version = 0
        """Incremented on every add: a widget whose last-seen version matches has nothing to redraw."""
        self.total_added = 0

    def add(self, sample: Sample) -> None:
        key = sample.series
        ring = self._series.get(key)
        if ring is None:
            ring = self._series[key] = deque(maxlen=self.kind_limits.get(sample.kind, self.per_series))
            if len(self._series) > self.max_series:
                self._full.pop(self._series.popitem(last=False)[0], None)
        else:
            self._series.move_to_end(key)
        ring.append(sample)
        if self.full_detail_s is not None and sample.kind in THIN_KINDS:
            self._thin_older(key, ring, sample.ts)
        self.version += 1
        self.total_added += 1

    def _thin_older(self, key: SeriesKey, ring: deque[Sample], newest: float) -> None:
        # The whole Samples are the newest ``full`` of the ring; older ones were thinned already.
        full = min(self._full.get(key, 0) + 1, len(ring))
        cutoff = newest - (self.full_detail_s or 0.0)
        while full > 1 and ring[-full].ts < cutoff:
            ring[-full] = thin(ring[-full])
            full -= 1
        self._full[key] = full

    def clear(self) -> None:
        """Forget every series (a replay seeking elsewhere); ``version`` still moves on."""
        self._series.clear()
        self._full.clear()
        self.version += 1

    def load_series(self, key: SeriesKey, samples: list[Sample]) -> None:
        """Set one series to ``samples`` (oldest first) at once, as if each had been added."""
        ring = deque(samples, maxlen=self.kind_limits.get(key[1], self.per_series))
        self._series[key] = ring
        self._full.pop(key, None)
        if ring and self.full_detail_s is not None and key[1] in THIN_KINDS:
            self._full[key] = len(ring) - 1
            self._thin_older(key, ring, ring[-1].ts)
        self._series.move_to_end(key)
        if len(self._series) > self.max_series:
            self._full.pop(self._series.popitem(last=False)[0], None)
        self.version += 1
        self.total_added += len(samples)

    def __len__(self) -> int:
        return sum(len(ring) for ring in self._series.values())

    def keys(self, kind: str | None = None, host: str | None = None) -> list[SeriesKey]:
        return [k for k in self._series if (kind is None or k[1] == kind) and (host is None or k[0] == host)]

    def series(self, key: SeriesKey) -> deque[Sample]:
        return self._series.get(key, deque())

    def last(self, key: SeriesKey) -> Sample | None:
        ring = self._series.get(key)
        return ring[-1] if ring else None

    def window(self, key: SeriesKey, seconds: float | None = None, now: float | None = None) -> list[Sample]:
        """Samples of the last ``seconds`` (all kept samples when None), oldest first."""
        ring = self._series.get(key)
        if not ring:
            return []
        if seconds is None:
            return list(ring)
        cutoff = (self.clock() if now is None else now) - seconds
        out: list[Sample] = []
        for sample in reversed(ring):  # newest first, so old data is not scanned
            if sample.ts < cutoff:
                break
            out.append(sample)
        out.reverse()
        return out

    @staticmethod
    def is_cold(sample: Sample) -> bool:
        """True for a cold start's Sample (see the module docstring)."""
        return sample.fields.get(COLD_FIELD) is True

    def values(self, key: SeriesKey, field: str, seconds: float | None = None,
               now: float | None = None, *, include_cold: bool = True) -> list[float]:
        """The numeric ``field`` of the successful samples in the window, oldest first."""
        out: list[float] = []
        for sample in self.window(key, seconds, now):
            value = sample.fields.get(field) if sample.ok else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and (include_cold or
                                                                                   not self.is_cold(sample)):
                out.append(float(value))
        return out

    def stats(self, key: SeriesKey, field: str = "rtt_ms", seconds: float | None = 60.0,
              now: float | None = None) -> SeriesStats:
        window = self.window(key, seconds, now)
        values: list[float] = []
        cold_ms: float | None = None
        last: float | None = None
        failures = 0
        last_failure: Sample | None = None
        for sample in window:
            if not sample.ok:
                failures += 1
                last_failure = sample
                continue
            value = sample.fields.get(field)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            last = float(value)
            if sample.fields.get(COLD_FIELD) is True:
                cold_ms = last
            else:
                values.append(last)
        ordered = sorted(values)
        return SeriesStats(
            count=len(window),
            ok=len(window) - failures,
            loss_pct=100.0 * failures / len(window) if window else None,
            last=last,
            mean=sum(values) / len(values) if values else None,
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            jitter=rfc3550_jitter(values),
            last_error=last_failure.error if last_failure else None,
            last_message=last_failure.message if last_failure else None,
            cold_ms=cold_ms,
        )

    def __iter__(self) -> Iterator[Sample]:
        for ring in self._series.values():
            yield from ring
