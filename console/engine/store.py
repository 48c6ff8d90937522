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

Old Samples are thinned to what their readers read. A target layer's Samples
older than ``full_detail_s`` keep THIN_FIELDS and are held as columns (ThinColumns:
~30-40 bytes a Sample where a thin Sample object cost ~300); a host kind's
(HOST_THIN_FIELDS) keep their newest HOST_FULL_DETAIL whole and the older ones
only the fields any reader takes from an older one. Queries hand out Samples
either way: a thinned one is made again from its columns when a window reaches it.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from console.engine.stats import percentile, rfc3550_jitter
from probes.runtime import COLD_FIELD
from probes.samples import JSONValue, Sample

SeriesKey = tuple[str, str, str]  # (host, kind, target)

#: Ring depth for kinds whose Samples are large: a conns_table Sample is a full
#: snapshot of every socket (the newest replaces the rest), a pools Sample
#: carries up to 50 connection groups; 3600-deep rings of those would cost
#: gigabytes, and panes and rules need only the newest few.
#: system, conns and pools keep five minutes: the paste-error linking (600 s windows), the alert
#: rules and fix validation count and read older ones, thinned (HOST_THIN_FIELDS).
DEFAULT_KIND_LIMITS: dict[str, int] = {"conns_table": 2, "pools": 300, "system": 300, "conns": 300}
#: A target layer's Samples older than this keep only what windows older than any rule's need
#: (THIN_FIELDS: each layer's time, the HTTP status, the DNS rcode, the cold mark; the error and its
#: text stay whole).
#: An HTTP Sample is ~1.5 KB with its 18 fields, a TLS one several KB with its chain, a thin one
#: ~30-40 bytes in columns (~300 as a thin Sample object): tests/unit/test_store.py's hour of five
#: HTTP targets is 18.9 MB whole, 7.2 MB as thin objects, 1.4 MB in columns. The rules read 60 s windows.
FULL_DETAIL_S = 120.0
THIN_KINDS = frozenset({"http", "tcp", "icmp", "dns", "tls"})
THIN_FIELDS = frozenset({"rtt_ms", "time_ms", "total_ms", "handshake_ms", "elapsed_ms", "duration_ms",
                         "status", "rcode", COLD_FIELD})
#: How many of a host kind's newest Samples stay whole: every reader of their detail reads at
#: most the newest five (the panes and pool rules the last one, paste-error evidence five, a
#: finding's evidence three).
HOST_FULL_DETAIL = 10
#: What an older host Sample keeps: the fields some reader takes from Samples that are not the newest.
#: system: none (the report counts them; no rule reads an old one's figures).
#: conns: classify.EVIDENCE (ephemeral_pct, fd_top), the conntrack alert rule (conntrack_count,
#: conntrack_max), and source/total/by_state, the first three fields, which link_evidence quotes as
#: a hit's example. pools: the gauges (fix validation, classify's pool_full) and groups_total; the
#: groups (up to 50 dicts, ~1 KB each: 300 of them were ~15 MB) are not kept, so a pasted error's
#: example from a pool that was full only minutes ago quotes its gauges instead of its groups.
HOST_THIN_FIELDS: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "conns": frozenset({"source", "total", "by_state", "ephemeral_pct", "fd_top", "conntrack_count",
                        "conntrack_max"}),
    "pools": frozenset({"gauges", "groups_total"}),
}


def thin(sample: Sample, keep: frozenset[str] = THIN_FIELDS) -> Sample:
    """``sample`` with only the fields in ``keep`` (the same Sample when it has nothing else)."""
    if all(name in keep for name in sample.fields):
        return sample
    return Sample(kind=sample.kind, target=sample.target, ts=sample.ts,
                  fields={k: v for k, v in sample.fields.items() if k in keep},
                  host=sample.host, error=sample.error, message=sample.message)


class OldSamples(Protocol):
    """A series' thinned Samples, oldest first."""

    def __len__(self) -> int: ...
    def append(self, sample: Sample) -> None: ...
    def popleft(self) -> None: ...
    def ts(self, index: int) -> float: ...
    def sample(self, index: int) -> Sample: ...


class ThinSamples:
    """Thinned host Samples as Sample objects (their kept fields hold lists and dicts)."""

    def __init__(self, keep: frozenset[str]) -> None:
        self.keep = keep
        self._samples: deque[Sample] = deque()

    def __len__(self) -> int:
        return len(self._samples)

    def append(self, sample: Sample) -> None:
        self._samples.append(thin(sample, self.keep))

    def popleft(self) -> None:
        self._samples.popleft()

    def ts(self, index: int) -> float:
        return self._samples[index].ts

    def sample(self, index: int) -> Sample:
        return self._samples[index]


#: Ints beyond this lose digits as a double: such a value is held like a string, in the shape.
_EXACT_INT = 2 ** 53

Shape = tuple[tuple[str, str, JSONValue], ...]
"""A thin Sample's fields in their order: (name, "f" or "i", None) for a float or an int in the
name's column, (name, "=", value) for a value the shape itself carries (a bool, None, a string)."""
Value = TypeVar("Value", bound=Hashable)


def _held(value: JSONValue) -> tuple[str, JSONValue] | None:
    """How ``value`` is held in ThinColumns, or None when it cannot be (a list or a dict).

    A shape is a dict key, and True == 1 == 1.0: the only numbers a shape carries are ints a double
    cannot hold, which never equal a bool, so equal shapes are the same fields of the same types.
    """
    if isinstance(value, float):
        return ("f", None)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return ("=", value)
    if isinstance(value, int):
        return ("i", None) if -_EXACT_INT <= value <= _EXACT_INT else ("=", value)
    return None


class _Interned(Generic[Value]):
    """Distinct values held once, each known by its number (shapes, (error, message) pairs)."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self._codes: dict[Value, int] = {}

    def code(self, value: Value) -> int:
        code = self._codes.get(value)
        if code is None:
            code = self._codes[value] = len(self.values)
            self.values.append(value)
        return code

    def keep_used(self, codes: array[int]) -> array[int]:
        """Forget the values ``codes`` no longer name; returns ``codes`` renumbered to match."""
        used = sorted(set(codes))
        renumber = {old: new for new, old in enumerate(used)}
        self.values = [self.values[old] for old in used]
        self._codes = {value: code for code, value in enumerate(self.values)}
        return array("I", (renumber[code] for code in codes))


class ThinColumns:
    """A target layer's thinned Samples as columns: ~30-40 bytes each instead of a ~300 byte Sample object.

    Per Sample: its time (a double), the number of its shape (which fields in which order, how
    each is held), the number of its (error, message) pair (each distinct pair, and so each
    repeated message, is held once) and a double per numeric field. kind, target and host are the
    series'. A Sample with a list or a dict among its THIN_FIELDS is kept as an object in ``odd``.
    """

    #: Popped rows leave the arrays' front in batches of at least this many (each deletion moves
    #: the whole array).
    COMPACT_AT = 256

    def __init__(self, key: SeriesKey) -> None:
        self.host, self.kind, self.target = key
        self._ts = array("d")
        self._shape = array("I")
        self._reason = array("I")
        self._columns: dict[str, array[float]] = {}
        self._shapes: _Interned[Shape] = _Interned()
        self._reasons: _Interned[tuple[str | None, str | None]] = _Interned()
        self._odd: dict[int, Sample] = {}
        """Samples the columns cannot hold, by their absolute number."""
        self._head = 0
        """Popped rows still at the arrays' front."""
        self._base = 0
        """The absolute number of the arrays' first row."""

    def __len__(self) -> int:
        return len(self._ts) - self._head

    def append(self, sample: Sample) -> None:
        row = len(self._ts)
        kept = thin(sample)
        fields = kept.fields
        shape: list[tuple[str, str, JSONValue]] = []
        for name, value in fields.items():
            held = _held(value)
            if held is None:  # the columns cannot hold it: this one stays a Sample
                self._odd[self._base + row] = kept
                shape, fields = [], {}
                break
            shape.append((name, *held))
            if held[0] != "=" and name not in self._columns:
                self._columns[name] = array("d", bytes(8 * row))  # zeros for the rows before
        for name, column in self._columns.items():
            value = fields.get(name)
            column.append(float(value) if isinstance(value, (int, float)) else 0.0)
        self._ts.append(sample.ts)
        self._shape.append(self._shapes.code(tuple(shape)))
        self._reason.append(self._reasons.code((sample.error, sample.message)))

    def popleft(self) -> None:
        if not len(self):
            raise IndexError("pop from empty ThinColumns")
        self._odd.pop(self._base + self._head, None)
        self._head += 1
        if self._head >= max(self.COMPACT_AT, len(self)):
            self._compact()

    def _compact(self) -> None:
        """Drop the popped rows, and the shapes and (error, message) pairs no row uses any more."""
        head = self._head
        rows: list[array[Any]] = [self._ts, self._shape, self._reason, *self._columns.values()]
        for column in rows:
            del column[:head]
        self._base += head
        self._head = 0
        self._shape = self._shapes.keep_used(self._shape)
        self._reason = self._reasons.keep_used(self._reason)

    def ts(self, index: int) -> float:
        return self._ts[self._head + index]

    def sample(self, index: int) -> Sample:
        row = self._head + index
        odd = self._odd.get(self._base + row)
        if odd is not None:
            return odd
        fields: dict[str, JSONValue] = {}
        for name, how, value in self._shapes.values[self._shape[row]]:
            if how == "f":
                fields[name] = self._columns[name][row]
            elif how == "i":
                fields[name] = int(self._columns[name][row])
            else:
                fields[name] = value
        error, message = self._reasons.values[self._reason[row]]
        return Sample(kind=self.kind, target=self.target, ts=self._ts[row], fields=fields, host=self.host,
                      error=error, message=message)


class _Series:
    """One series: its newest Samples whole, older ones thinned when its kind is thinned."""

    __slots__ = ("maxlen", "old", "whole")

    def __init__(self, maxlen: int, old: OldSamples | None) -> None:
        self.maxlen = maxlen
        self.whole: deque[Sample] = deque()
        self.old = old

    def __len__(self) -> int:
        return len(self.whole) + (len(self.old) if self.old is not None else 0)

    def drop_oldest(self) -> None:
        if self.old is not None and len(self.old):
            self.old.popleft()
        else:
            self.whole.popleft()

    def since(self, cutoff: float) -> list[Sample]:
        """The Samples from the newest back to the first older than ``cutoff``, oldest first."""
        out: list[Sample] = []
        for sample in reversed(self.whole):  # newest first, so old data is not scanned
            if sample.ts < cutoff:
                out.reverse()
                return out
            out.append(sample)
        out.reverse()
        old = self.old
        if old is None:
            return out
        first = len(old)
        while first > 0 and old.ts(first - 1) >= cutoff:
            first -= 1
        return [old.sample(i) for i in range(first, len(old))] + out


class SeriesView(Sequence[Sample]):
    """A series' Samples, oldest first, as a read-only sequence (thinned ones made again as they are read)."""

    def __init__(self, series: _Series | None) -> None:
        self._series = series

    def __len__(self) -> int:
        return len(self._series) if self._series is not None else 0

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if self._series is None or not 0 <= index < size:
            raise IndexError("series index out of range")
        old = self._series.old
        thinned = len(old) if old is not None else 0
        if old is not None and index < thinned:
            return old.sample(index)
        return self._series.whole[index - thinned]

    def __iter__(self) -> Iterator[Sample]:
        if self._series is None:
            return
        old = self._series.old
        if old is not None:
            for i in range(len(old)):
                yield old.sample(i)
        yield from self._series.whole

    def __reversed__(self) -> Iterator[Sample]:
        if self._series is None:
            return
        yield from reversed(self._series.whole)
        old = self._series.old
        if old is not None:
            for i in range(len(old) - 1, -1, -1):
                yield old.sample(i)


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
    newest_failed: bool = False
    """The window's newest Sample is a failure: ``last`` is then an older success, not the latest word."""


class Store:
    """Bounded per-series rings with a change counter widgets can poll cheaply."""

    def __init__(self, per_series: int = 3600, max_series: int = 5000,
                 kind_limits: dict[str, int] | None = None, clock: Callable[[], float] = time.time,
                 full_detail_s: float | None = FULL_DETAIL_S) -> None:
        self.per_series = per_series
        self.full_detail_s = full_detail_s
        """Target layer Samples older than this (by the series' newest) are thinned; None keeps every
        Sample whole (host kinds too)."""
        self.clock = clock
        """What "now" is for windows: wall time live, the recording's end in a replay."""
        self.max_series = max_series
        self.kind_limits = dict(DEFAULT_KIND_LIMITS if kind_limits is None else kind_limits)
        """Ring depth per kind, overriding ``per_series`` (snapshot kinds keep only a few)."""
        self._series: OrderedDict[SeriesKey, _Series] = OrderedDict()
        self.version = 0
        """Incremented on every add: a widget whose last-seen version matches has nothing to redraw."""
        self.total_added = 0

    def _new_series(self, key: SeriesKey) -> _Series:
        kind = key[1]
        old: OldSamples | None = None
        if self.full_detail_s is not None and kind in THIN_KINDS:
            old = ThinColumns(key)
        elif self.full_detail_s is not None and kind in HOST_THIN_FIELDS:
            old = ThinSamples(HOST_THIN_FIELDS[kind])
        return _Series(self.kind_limits.get(kind, self.per_series), old)

    def _settle(self, series: _Series) -> None:
        """Thin what is now old enough, then drop the oldest beyond the ring's depth."""
        whole, old = series.whole, series.old
        if old is not None and isinstance(old, ThinColumns):
            cutoff = whole[-1].ts - (self.full_detail_s or 0.0)
            while len(whole) > 1 and whole[0].ts < cutoff:  # the newest always stays whole
                old.append(whole.popleft())
        elif old is not None:
            while len(whole) > HOST_FULL_DETAIL:
                old.append(whole.popleft())
        while len(series) > series.maxlen:
            series.drop_oldest()

    def add(self, sample: Sample) -> None:
        key = sample.series
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._new_series(key)
            if len(self._series) > self.max_series:
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(key)
        series.whole.append(sample)
        self._settle(series)
        self.version += 1
        self.total_added += 1

    def clear(self) -> None:
        """Forget every series (a replay seeking elsewhere); ``version`` still moves on."""
        self._series.clear()
        self.version += 1

    def load_series(self, key: SeriesKey, samples: list[Sample]) -> None:
        """Set one series to ``samples`` (oldest first) at once, as if each had been added."""
        series = self._series[key] = self._new_series(key)
        series.whole.extend(samples[-series.maxlen:] if series.maxlen else ())
        if series.whole:
            self._settle(series)
        self._series.move_to_end(key)
        if len(self._series) > self.max_series:
            self._series.popitem(last=False)
        self.version += 1
        self.total_added += len(samples)

    def __len__(self) -> int:
        return sum(len(series) for series in self._series.values())

    def keys(self, kind: str | None = None, host: str | None = None) -> list[SeriesKey]:
        return [k for k in self._series if (kind is None or k[1] == kind) and (host is None or k[0] == host)]

    def series(self, key: SeriesKey) -> SeriesView:
        """Every kept Sample of one series, oldest first (a live view: it follows later adds)."""
        return SeriesView(self._series.get(key))

    def last(self, key: SeriesKey) -> Sample | None:
        series = self._series.get(key)
        return series.whole[-1] if series is not None and series.whole else None

    def window(self, key: SeriesKey, seconds: float | None = None, now: float | None = None) -> list[Sample]:
        """Samples of the last ``seconds`` (all kept samples when None), oldest first."""
        series = self._series.get(key)
        if series is None:
            return []
        if seconds is None:
            return list(SeriesView(series))
        return series.since((self.clock() if now is None else now) - seconds)

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
            newest_failed=bool(window) and not window[-1].ok,
        )

    def __iter__(self) -> Iterator[Sample]:
        for series in self._series.values():
            yield from SeriesView(series)
