"""The store: bounded ring buffers of Samples, one per series, and the queries panes need.

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
from probes.samples import Sample

SeriesKey = tuple[str, str, str]  # (host, kind, target)

#: Ring depth for kinds whose Samples are large: a conns_table Sample is a full
#: snapshot of every socket (the newest replaces the rest), a pools Sample
#: carries up to 50 connection groups; 3600-deep rings of those would cost
#: gigabytes, and panes and rules need only the newest few.
DEFAULT_KIND_LIMITS: dict[str, int] = {"conns_table": 2, "pools": 300}


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


class Store:
    """Bounded per-series rings with a change counter widgets can poll cheaply."""

    def __init__(self, per_series: int = 3600, max_series: int = 5000,
                 kind_limits: dict[str, int] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.per_series = per_series
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
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(key)
        ring.append(sample)
        self.version += 1
        self.total_added += 1

    def clear(self) -> None:
        """Forget every series (a replay seeking elsewhere); ``version`` still moves on."""
        self._series.clear()
        self.version += 1

    def load_series(self, key: SeriesKey, samples: list[Sample]) -> None:
        """Set one series to ``samples`` (oldest first) at once, as if each had been added."""
        ring = deque(samples, maxlen=self.kind_limits.get(key[1], self.per_series))
        self._series[key] = ring
        self._series.move_to_end(key)
        if len(self._series) > self.max_series:
            self._series.popitem(last=False)
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

    def values(self, key: SeriesKey, field: str, seconds: float | None = None,
               now: float | None = None) -> list[float]:
        """The numeric ``field`` of the successful samples in the window, oldest first."""
        out: list[float] = []
        for sample in self.window(key, seconds, now):
            value = sample.fields.get(field) if sample.ok else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(float(value))
        return out

    def stats(self, key: SeriesKey, field: str = "rtt_ms", seconds: float | None = 60.0,
              now: float | None = None) -> SeriesStats:
        window = self.window(key, seconds, now)
        values = [float(v) for s in window if s.ok and isinstance(v := s.fields.get(field), (int, float))]
        ordered = sorted(values)
        failures = [s for s in window if not s.ok]
        last_failure = failures[-1] if failures else None
        return SeriesStats(
            count=len(window),
            ok=len(window) - len(failures),
            loss_pct=100.0 * len(failures) / len(window) if window else None,
            last=values[-1] if values else None,
            mean=sum(values) / len(values) if values else None,
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            jitter=rfc3550_jitter(values),
            last_error=last_failure.error if last_failure else None,
            last_message=last_failure.message if last_failure else None,
        )

    def __iter__(self) -> Iterator[Sample]:
        for ring in self._series.values():
            yield from ring
