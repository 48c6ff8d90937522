"""Replay: a recording played back through the same hub and store, with seek, speed and follow.

``Recording.load(path)`` reads the recording once and keeps an index by time:

- every Sample of the small kinds (probe results, system, findings, pools ...)
  in memory, sorted by timestamp, and per series, so seeking is a binary
  search per series (they cost the live console the same memory in its store);
- the connection-table snapshots (``TRACKED_KINDS``: up to megabytes each)
  only as references: timestamp, segment and the compressed offset of the frame
  their full snapshot starts. Rebuilding one decodes from that frame and applies
  the changes after it (at most ``snapshot_delta.KEYFRAME_S`` seconds of them).

``ReplayPlayer`` owns the position. Its ``clock`` is the store's clock, so every
window a pane or rule reads ends at the replay position, as it ended at "now"
in the live run. ``seek(ts)`` rebuilds the store as it stood at ``ts`` (each
series' last ring-full of Samples up to ``ts``); ``advance(wall_seconds)``
plays forward at ``speed`` and publishes what it passes through the hub.
``Recording.poll()`` reads what a recorder still writing has appended (``--follow``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.engine.recorder import SEGMENT_RE
from console.engine.recording import (
    NOT_A_SAMPLE,
    LineError,
    Problems,
    RawLine,
    SampleDecoder,
    SegmentReader,
    check_ts,
    parse_json,
    sample_from_value,
    segments_of,
)
from console.engine.snapshot_delta import DeltaError, decode_delta
from console.engine.store import SeriesKey, Store
from probes.samples import LOCAL_HOST, Sample

#: Kinds kept on disk and rebuilt on demand (the store keeps only the newest couple).
TRACKED_KINDS = frozenset({"conns_table"})
#: Replay speeds the keys step through.
SPEEDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: Kinds the scrubber marks: a finding appearing or clearing, a marker the responder set.
KIND_FINDING = "finding"
KIND_MARKER = "marker"

# A tracked line as the recorder writes it: kind, host, target and ts lead, so the
# index is built from the line's first bytes without parsing a megabyte of JSON.
_TRACKED_LINE = re.compile(
    rb'^\{"kind":"(conns_table)","host":("(?:[^"\\]|\\.)*"),"target":("(?:[^"\\]|\\.)*"),"ts":'
    rb'(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?),"(fields|delta)":')


@dataclass(frozen=True)
class SnapshotRef:
    """Where one tracked snapshot is: enough to find it again and to know when it was."""

    ts: float
    segment: int
    frame: int
    full: bool
    """A full snapshot (it starts a frame); otherwise changes since the one before."""


@dataclass(frozen=True)
class Mark:
    """Something the scrubber shows: a finding appearing or clearing, or a marker."""

    ts: float
    kind: str
    """"appeared", "cleared" or "marker"."""
    title: str


class SnapshotTrack:
    """One tracked series: its snapshot references, and a cursor that decodes forward from a frame."""

    def __init__(self, recording: Recording, key: SeriesKey, prefix: bytes) -> None:
        self.recording = recording
        self.key = key
        self.prefix = prefix
        """How this series' lines start (up to the timestamp), to skip other lines without parsing them."""
        self.refs: list[SnapshotRef] = []
        self.times: list[float] = []
        self._walk: Iterator[tuple[int, Sample]] | None = None
        self._walk_at = -1

    def add(self, ref: SnapshotRef) -> None:
        self.refs.append(ref)
        self.times.append(ref.ts)

    def index_at(self, ts: float) -> int:
        """The last snapshot at or before ``ts`` (-1: none yet)."""
        return bisect.bisect_right(self.times, ts) - 1

    def get(self, index: int) -> Sample | None:
        """Snapshot ``index`` rebuilt (None when it cannot be: its lines were damaged)."""
        if not 0 <= index < len(self.refs):
            return None
        if self._walk is None or not self._walk_at < index or self._restart_needed(index):
            start = next((k for k in range(index, -1, -1) if self.refs[k].full), None)
            if start is None:
                return None
            self._walk = self._decode_from(start)
            self._walk_at = start - 1
        for at, sample in self._walk:
            self._walk_at = at
            if at == index:
                return sample
        self._walk = None
        return None

    def _restart_needed(self, index: int) -> bool:
        """Walking on would be slower than starting at a full snapshot nearer to ``index``."""
        return any(self.refs[k].full for k in range(self._walk_at + 1, index + 1))

    def _decode_from(self, start: int) -> Iterator[tuple[int, Sample]]:
        ref = self.refs[start]
        problems = self.recording.problems
        reader = SegmentReader(self.recording.segments[ref.segment], ref.segment, Problems(), offset=ref.frame)
        index = start
        base: Sample | None = None
        try:
            for raw in reader.poll():
                if not raw.data.startswith(self.prefix):
                    continue
                if index >= len(self.refs) or self.refs[index].segment != ref.segment:
                    return
                try:
                    value = parse_json(raw.data)
                    if not isinstance(value, dict) or value.get("ts") != self.refs[index].ts:
                        raise LineError(NOT_A_SAMPLE, "snapshot moved since the recording was read")
                    if "delta" in value:
                        if base is None:
                            raise LineError(NOT_A_SAMPLE, "snapshot change without its snapshot")
                        check_ts(value["ts"])
                        base = decode_delta(base, value)
                    else:
                        base = sample_from_value(value)
                except (LineError, DeltaError, TypeError, KeyError) as exc:
                    kind = exc.kind if isinstance(exc, LineError) else NOT_A_SAMPLE
                    problems.add(kind, f"{reader.path.name} (connection table at {self.refs[index].ts:.0f})")
                    return
                yield index, base
                index += 1
        finally:
            reader.close()


class Recording:
    """A recording read for replay (see the module docstring for what is kept in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems = Problems()
        self.segments: list[Path] = segments_of(path)
        self.samples: list[Sample] = []
        """Every in-memory Sample, by timestamp."""
        self.times: list[float] = []
        self.series: dict[SeriesKey, list[Sample]] = {}
        self.series_times: dict[SeriesKey, list[float]] = {}
        self.tracks: dict[SeriesKey, SnapshotTrack] = {}
        self.marks: list[Mark] = []
        self._decoder = SampleDecoder(self.segments, self.problems, path)
        self.consoles = self._decoder.consoles
        """What the console watched, from each header that said so (see recorder.console_state)."""
        self._tail: SegmentReader | None = None
        self.version = 0
        """Bumped whenever new Samples were read (follow)."""

    @classmethod
    def load(cls, path: Path, *, follow: bool = False) -> Recording:
        """Read every segment; with ``follow`` the last one stays open for ``poll``."""
        recording = cls(path)
        recording._read_all(follow)
        return recording

    @property
    def start(self) -> float:
        starts = [t[0] for t in (self.times, *(tr.times for tr in self.tracks.values())) if t]
        return min(starts, default=0.0)

    @property
    def end(self) -> float:
        ends = [t[-1] for t in (self.times, *(tr.times for tr in self.tracks.values())) if t]
        return max(ends, default=0.0)

    def __len__(self) -> int:
        return len(self.samples) + sum(len(t.refs) for t in self.tracks.values())

    def all_samples(self) -> Iterator[Sample]:
        """Every Sample in timestamp order, snapshots rebuilt (for --json and diff)."""
        tracked = sorted(((ref.ts, key, i) for key, track in self.tracks.items() for i, ref in enumerate(track.refs)),
                         key=lambda item: item[0])
        t = 0
        for sample in self.samples:
            while t < len(tracked) and tracked[t][0] <= sample.ts:
                rebuilt = self.tracks[tracked[t][1]].get(tracked[t][2])
                if rebuilt is not None:
                    yield rebuilt
                t += 1
            yield sample
        for ts_key_index in tracked[t:]:
            rebuilt = self.tracks[ts_key_index[1]].get(ts_key_index[2])
            if rebuilt is not None:
                yield rebuilt

    def samples_after(self, ts: float) -> list[Sample]:
        """The Samples stamped after ``ts`` (snapshots rebuilt), by timestamp: what --follow prints next."""
        out = self.samples[bisect.bisect_right(self.times, ts):]
        for track in self.tracks.values():
            first = bisect.bisect_right(track.times, ts)
            out += [s for j in range(first, len(track.refs)) if (s := track.get(j)) is not None]
        return sorted(out, key=lambda s: s.ts)

    # -- reading --------------------------------------------------------------------

    def _read_all(self, follow: bool) -> None:
        for index, segment in enumerate(self.segments):
            reader = self._open(segment, index)
            for raw in reader.poll():
                self._ingest(raw)
            if follow and index == len(self.segments) - 1:
                self._tail = reader  # still being written: a partial last line is not torn yet
                continue
            for raw in reader.finish():
                self._ingest(raw)
            reader.close()

    def _open(self, segment: Path, index: int) -> SegmentReader:
        try:
            return SegmentReader(segment, index, self.problems)
        except OSError as exc:
            from console.engine.recorder import RecordingError

            raise RecordingError(f"cannot read recording {segment}: {exc.strerror}") from None

    def poll(self) -> int:
        """Read what was appended since (and segments that appeared); the number of new Samples."""
        if self._tail is None:
            return 0
        before = len(self)
        for raw in self._tail.poll():
            self._ingest(raw)
        newer = self._newer_segments()
        for path in newer:
            for raw in self._tail.finish():  # the writer moved on: the old segment is complete
                self._ingest(raw)
            self._tail.close()
            self.segments.append(path)
            self._tail = self._open(path, len(self.segments) - 1)
            for raw in self._tail.poll():
                self._ingest(raw)
        added = len(self) - before
        if added:
            self.version += 1
        return added

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None

    def _newer_segments(self) -> list[Path]:
        last = self.segments[-1]
        if self.path.is_dir():
            match = SEGMENT_RE.match(last.name)
            number = int(match.group(1)) if match else 0
            found = sorted((int(m.group(1)), p) for p in self.path.iterdir()
                           if (m := SEGMENT_RE.match(p.name)) and int(m.group(1)) > number)
            return [p for _, p in found]
        try:
            return [p for p in segments_of(self.path) if p not in self.segments and p.exists()][:1]
        except OSError:
            return []

    def _ingest(self, raw: RawLine) -> None:
        match = _TRACKED_LINE.match(raw.data[:4096])
        if match is not None and not raw.torn:
            self._index_tracked(raw, match)
            return
        sample = self._decoder.decode(raw)
        if sample is not None:
            self._add(sample)

    def _index_tracked(self, raw: RawLine, match: re.Match[bytes]) -> None:
        try:
            host, target = parse_json(match.group(2)), parse_json(match.group(3))
            ts = float(match.group(4))
            check_ts(ts)
        except (LineError, ValueError) as exc:
            self.problems.add(exc.kind if isinstance(exc, LineError) else NOT_A_SAMPLE,
                              f"{self.segments[raw.segment].name} line {raw.number}")
            return
        key: SeriesKey = (str(host), match.group(1).decode(), str(target))
        track = self.tracks.get(key)
        if track is None:
            track = self.tracks[key] = SnapshotTrack(self, key, raw.data[:match.start(4)])
        if track.times and ts < track.times[-1]:
            self.problems.add(NOT_A_SAMPLE, f"{self.segments[raw.segment].name} line {raw.number} "
                                            "(connection table older than the one before)")
            return
        track.add(SnapshotRef(ts, raw.segment, raw.frame, full=match.group(5) == b"fields"))

    def _add(self, sample: Sample) -> None:
        if self.times and sample.ts < self.times[-1]:
            at = bisect.bisect_right(self.times, sample.ts)
            self.times.insert(at, sample.ts)
            self.samples.insert(at, sample)
        else:
            self.times.append(sample.ts)
            self.samples.append(sample)
        key = sample.series
        ring = self.series.setdefault(key, [])
        times = self.series_times.setdefault(key, [])
        if times and sample.ts < times[-1]:
            at = bisect.bisect_right(times, sample.ts)
            times.insert(at, sample.ts)
            ring.insert(at, sample)
        else:
            times.append(sample.ts)
            ring.append(sample)
        mark = mark_of(sample)
        if mark is not None:
            self.marks.append(mark)


def mark_of(sample: Sample) -> Mark | None:
    if sample.kind == KIND_FINDING:
        change = sample.fields.get("change")
        title = sample.fields.get("title")
        return Mark(sample.ts, "cleared" if change == "cleared" else "appeared", str(title or sample.target))
    if sample.kind == KIND_MARKER:
        return Mark(sample.ts, "marker", str(sample.fields.get("text") or sample.message or sample.target))
    return None


@dataclass
class ReplayPlayer:
    """The replay position over a Recording, feeding a store (and the hub's listeners) as it moves."""

    recording: Recording
    store: Store
    publish: Callable[[Sample], None]
    """The hub's publish: what playback passes goes through the same path as live Samples."""
    speed: float = 1.0
    follow: bool = False
    """Keep reading the recording as it grows, and stay at its end while there."""
    position: float = 0.0
    paused: bool = False
    _track_at: dict[SeriesKey, int] = field(default_factory=dict)
    on_seek: list[Callable[[], None]] = field(default_factory=list)
    """Called after every seek (the app resets the findings engine)."""

    def clock(self) -> float:
        """The store's "now"."""
        return self.position

    @property
    def at_end(self) -> bool:
        return self.position >= self.recording.end

    def seek(self, ts: float) -> None:
        """Rebuild the store as it stood at ``ts`` (clamped to the recording)."""
        ts = min(max(ts, self.recording.start), self.recording.end)
        self.position = ts
        self.store.clear()
        rec = self.recording
        order = sorted(rec.series, key=lambda k: last_before(rec.series_times[k], ts))
        for key in order:
            hi = bisect.bisect_right(rec.series_times[key], ts)
            if hi:
                depth = self.store.kind_limits.get(key[1], self.store.per_series)
                self.store.load_series(key, rec.series[key][max(0, hi - depth):hi])
        self._track_at.clear()
        for key, track in rec.tracks.items():
            index = track.index_at(ts)
            depth = self.store.kind_limits.get(key[1], self.store.per_series)
            rebuilt = [s for j in range(max(0, index - depth + 1), index + 1) if (s := track.get(j)) is not None]
            if rebuilt:
                self.store.load_series(key, rebuilt)
            self._track_at[key] = index
        for callback in self.on_seek:
            callback()

    def step(self, seconds: float) -> None:
        self.seek(self.position + seconds)

    def advance(self, wall_seconds: float) -> int:
        """Play ``wall_seconds`` of real time at ``speed``; the number of Samples published."""
        if self.paused:
            return 0
        rec = self.recording
        end = rec.end
        new = min(self.position + wall_seconds * self.speed, end)
        if new <= self.position:
            if not self.follow:
                self.paused = True  # at the end: stop, so a key press is needed to go on
            return 0
        lo = bisect.bisect_right(rec.times, self.position)
        hi = bisect.bisect_right(rec.times, new)
        for sample in rec.samples[lo:hi]:
            self.publish(sample)
        published = hi - lo
        for key, track in rec.tracks.items():
            index = track.index_at(new)
            last = self._track_at.get(key, -1)
            if index > last:
                depth = self.store.kind_limits.get(key[1], self.store.per_series)
                for j in range(max(last + 1, index - depth + 1), index + 1):
                    snapshot = track.get(j)
                    if snapshot is not None:
                        self.publish(snapshot)
                        published += 1
                self._track_at[key] = index
        self.position = new
        return published

    def toggle(self) -> None:
        if self.paused and self.at_end and not self.follow:
            self.seek(self.recording.start)  # play again from the start
        self.paused = not self.paused

    def faster(self) -> None:
        self.speed = next((s for s in SPEEDS if s > self.speed), SPEEDS[-1])

    def slower(self) -> None:
        self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0])


def settle() -> None:
    """After loading: move what was read out of the garbage collector's way.

    A loaded hour is a few hundred thousand objects; a full collection over them in
    the middle of a seek cost up to a second (bench/replay_seek.py). They live as
    long as the replay, so they are frozen once instead of scanned again and again.
    """
    gc.collect()
    gc.freeze()


def last_before(times: list[float], ts: float) -> float:
    hi = bisect.bisect_right(times, ts)
    return times[hi - 1] if hi else float("-inf")


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$")
_SPAN = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d+)?)$")


def parse_span(text: str) -> float:
    """"90", "1:30", "1:02:03" -> seconds."""
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (SECONDS, MM:SS or HH:MM:SS)")
    first, second, seconds = match.groups()
    if second is not None:
        hours, minutes = int(first), int(second)
    else:
        hours, minutes = 0, int(first) if first is not None else 0
    return hours * 3600 + minutes * 60 + float(seconds)


def parse_seek_time(text: str, start: float, end: float) -> float:
    """A replay position from what a responder types; ValueError with the accepted forms otherwise.

    ``start``/``end``; ``+D`` after the start and ``-D`` before the end (D: SECONDS, MM:SS, HH:MM:SS);
    ``HH:MM[:SS]`` a wall-clock time during the recording; ``YYYY-MM-DD HH:MM:SS``; epoch seconds.
    """
    text = text.strip()
    forms = ("start, end, +SECONDS or +MM:SS from the start, -MM:SS from the end, HH:MM[:SS] of the day, "
             "or YYYY-MM-DD HH:MM:SS")
    if text in ("start", "begin"):
        return start
    if text == "end":
        return end
    try:
        if text.startswith("+"):
            return start + parse_span(text[1:])
        if text.startswith("-"):
            return end - parse_span(text[1:])
        clock = _CLOCK.match(text)
        if clock is not None:
            return _time_of_day(clock, start, end)
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            value = float(text)
            return value if value > 1e9 else start + value
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}: use {forms}") from None


def _time_of_day(match: re.Match[str], start: float, end: float) -> float:
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), float(match.group(3) or 0)
    if hours > 23 or minutes > 59 or seconds >= 60:
        raise ValueError("not a time of day")
    day = dt.datetime.fromtimestamp(start).replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in range(0, 8):  # the first such moment at or after the recording's start
        moment = (day + dt.timedelta(days=offset)).replace(hour=hours, minute=minutes) + dt.timedelta(seconds=seconds)
        if moment.timestamp() >= start - 1 or moment.timestamp() > end:
            return moment.timestamp()
    return end


#: A header's state is read from a file: past these it is not a console's (and would only slow the screen).
MAX_WATCHED = 1000
MAX_NAME = 500


@dataclass
class Watched:
    """What the recorded console watched, as replay restores it: rows, labels, the Hosts tab, the demo flag."""

    targets: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    remote_hosts: list[str] = field(default_factory=list)
    demo: bool = False


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str) and v and len(v) <= MAX_NAME]


def watched(recording: Recording) -> Watched:
    """The consoles' states from the recording's headers (in order; targets and hosts of every state kept),
    then what the Samples show besides: targets probed over TCP or HTTP, the hosts that sent Samples."""
    out = Watched()
    for state in recording.consoles:
        out.targets += [t for t in _names(state.get("targets")) if t not in out.targets]
        labels = state.get("labels")
        if isinstance(labels, dict):
            out.labels.update({k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)
                               and len(k) <= MAX_NAME and len(v) <= MAX_NAME})
        out.remote_hosts += [h for h in _names(state.get("remote_hosts")) if h not in out.remote_hosts]
        hostname = state.get("hostname")
        if isinstance(hostname, str) and hostname and len(hostname) <= MAX_NAME:
            out.hostname = hostname
        out.demo = out.demo or state.get("demo") is True
    seen = sorted({s.target for s in recording.samples if s.kind in ("tcp", "http") and s.target})
    out.targets += [t for t in seen if t not in out.targets]
    hosts = sorted({key[0] for key in (*recording.series, *recording.tracks) if key[0] != LOCAL_HOST})
    out.remote_hosts += [h for h in hosts if h not in out.remote_hosts]
    out.targets, out.remote_hosts = out.targets[:MAX_WATCHED], out.remote_hosts[:MAX_WATCHED]
    out.labels = {k: v for k, v in out.labels.items() if k in out.targets}
    return out


def describe(recording: Recording) -> dict[str, Any]:
    """What a recording holds, for a one-line summary."""
    return {"samples": len(recording), "start": recording.start, "end": recording.end,
            "segments": len(recording.segments), "series": len(recording.series) + len(recording.tracks)}
