"""Reading a recording: its segments, their compressed frames, and every line checked.

The reader never trusts the file. A path that is not a regular file (a FIFO,
a device, a socket) is refused before it is opened, so nothing waits for a
writer that never comes; a line is read with a bound (``MAX_LINE_BYTES``);
JSON is parsed without non-finite numbers (NaN, Infinity, 1e999), nesting
too deep for the parser is a bad line (not a RecursionError), timestamps must
fall in ``TS_RANGE``; damaged compressed data ends that segment where it breaks. Each bad line is skipped and counted by
what was wrong with it (``Problems``); ``Problems.summary`` is the one line a
command prints. A header that says the recording was made by a newer schema
stops the read with a ``RecordingError`` instead of a misreading.

Lines carry where they were read: the segment, and the compressed offset of the
frame they start in, so replay can come back to a snapshot later and decode it
from that frame (see recorder.py: each full snapshot starts a frame).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from console.engine.recorder import (
    CONSOLE_KEY,
    GZIP_MAGIC,
    HEADER_KEY,
    HEADER_VALUE,
    SEGMENT_RE,
    ZSTD_MAGIC,
    RecordingError,
    describe_mode,
)
from console.engine.snapshot_delta import DELTA_KINDS, DeltaError, decode_delta
from probes.samples import SCHEMA_VERSION, Sample, SampleDecodeError

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None  # type: ignore[assignment]

#: A longer line is skipped (a full 20,000-socket table is about 3 MB).
MAX_LINE_BYTES = 32 * 1024 * 1024
#: Timestamps outside 2000-01-01 .. 2100-01-01 are not from a real run.
TS_RANGE = (946684800.0, 4102444800.0)
CHUNK_BYTES = 1024 * 1024

# Problem kinds, as the summary line names them.
NOT_JSON = "not JSON"
NOT_A_SAMPLE = "not a Sample"
NON_FINITE = "non-finite number"
BAD_TS = "timestamp out of range"
TOO_DEEP = "nested too deep to read"
TOO_LONG = f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MB"
TORN = "torn last line"
NO_BASE = "snapshot change without its snapshot"
DAMAGED = "damaged compressed data"


class LineError(ValueError):
    """Why one line is not usable; its ``kind`` is one of the problem kinds above."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass
class Problems:
    """Bad lines, counted by kind, with where the first of each kind was."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, where: str) -> None:
        self.counts[kind] += 1
        self.first.setdefault(kind, where)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        """"skipped N bad lines: K why (first: where), ..." ("" when there were none)."""
        if not self.total:
            return ""
        parts = [f"{n} {kind} (first: {self.first[kind]})" for kind, n in self.counts.most_common()]
        noun = "line" if self.total == 1 else "lines"
        return f"skipped {self.total} bad {noun}: " + ", ".join(parts)

    def summary(self, source: Path | str) -> str | None:
        """One line: the recording, how many lines were skipped and why; None when none were."""
        return f"{source}: {self.describe()}" if self.total else None


@dataclass(frozen=True)
class RawLine:
    """One line as it came out of a segment."""

    data: bytes
    segment: int
    """Index into the recording's segment list."""
    frame: int
    """Compressed offset of the frame the line starts in (for plain files: the line's own offset)."""
    number: int
    """Line number within the segment, from 1."""
    torn: bool = False
    """The segment's last line, without its newline: the writer stopped in the middle of it."""


def check_readable(path: Path) -> os.stat_result:
    """Stat ``path``; refuse what does not exist or is not a regular file (or a folder of segments)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise RecordingError(f"cannot read recording {path}: no such file or folder") from None
    except OSError as exc:
        raise RecordingError(f"cannot read recording {path}: {exc.strerror}") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise RecordingError(f"cannot read recording {path}: it is {describe_mode(info.st_mode)}, "
                             "not a recording file")
    return info


_NUMBERED = re.compile(r"\.(\d+)$")


def segments_of(path: Path) -> list[Path]:
    """The segment files of the recording at ``path`` (a folder or a file), oldest first."""
    info = check_readable(path)
    if stat.S_ISDIR(info.st_mode):
        found = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := SEGMENT_RE.match(p.name)))
        if not found:
            raise RecordingError(f"{path} holds no recording (no {SEGMENT_RE.pattern[1:-1]} files)")
        segments = [p for _, p in found]
    else:
        siblings = []
        for p in path.parent.glob(f"{glob_escape(path.name)}.*"):
            m = _NUMBERED.search(p.name)
            if m and p.name == f"{path.name}.{m.group(1)}":
                siblings.append((int(m.group(1)), p))
        segments = [path] + [p for _, p in sorted(siblings)]
    for segment in segments:
        check_readable(segment)
    return segments


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def sniff(fh: BinaryIO) -> str:
    start = fh.read(4)
    fh.seek(0)
    if start.startswith(ZSTD_MAGIC):
        return "zstd"
    return "gzip" if start.startswith(GZIP_MAGIC) else "plain"


class _Frames:
    """Incremental decompression that knows where each frame (gzip member) starts."""

    def __init__(self, compression: str, offset: int) -> None:
        self.compression = compression
        self.offset = offset
        """Compressed bytes consumed so far (absolute in the file)."""
        self.frame_start = offset
        self._obj: Any = self._new()
        self.plain = self._obj is None

    def _new(self) -> Any:
        if self.compression == "zstd":
            if zstandard is None:
                raise RecordingError("this recording is zstandard-compressed: pip install zstandard to read it")
            return zstandard.ZstdDecompressor().decompressobj()
        if self.compression == "gzip":
            return zlib.decompressobj(31)
        return None

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        """(frame start, decompressed bytes) pieces; raises ValueError on damaged data."""
        if self._obj is None:  # plain: a "frame" is wherever the piece starts
            start = self.offset
            self.offset += len(chunk)
            yield start, chunk
            return
        while chunk:
            try:
                out = self._obj.decompress(chunk)
            except (zlib.error, ValueError, getattr(zstandard, "ZstdError", ValueError)) as exc:
                raise ValueError(str(exc)) from None
            if out:
                yield self.frame_start, out
            if not self._obj.eof:
                self.offset += len(chunk)
                return
            leftover = self._obj.unused_data
            self.offset += len(chunk) - len(leftover)
            self.frame_start = self.offset
            self._obj = self._new()
            chunk = leftover


class SegmentReader:
    """The lines of one segment from a compressed offset; ``poll`` reads what was appended since."""

    def __init__(self, path: Path, index: int, problems: Problems, *, offset: int = 0, line_number: int = 0) -> None:
        self.path = path
        self.index = index
        self.problems = problems
        self.number = line_number
        self._fh: BinaryIO = path.open("rb")
        compression = sniff(self._fh)
        self._fh.seek(offset)
        self._frames = _Frames(compression, offset)
        self._buffer = bytearray()
        self._line_frame: int | None = None
        self._skipping = False
        self.damaged = False

    def close(self) -> None:
        self._fh.close()

    def poll(self) -> Iterator[RawLine]:
        """Complete lines read from what the file holds now; keeps a partial last line for later."""
        while not self.damaged:
            chunk = self._fh.read(CHUNK_BYTES)
            if not chunk:
                return
            try:
                for frame, piece in self._frames.feed(chunk):
                    yield from self._split(frame, piece)
            except ValueError as exc:
                self.damaged = True
                self.problems.add(DAMAGED, f"{self.path.name} after byte {self._frames.offset}: {exc}")

    def finish(self) -> Iterator[RawLine]:
        """At the real end: what is left in the buffer is a last line without its newline."""
        if self._buffer and not self._skipping:
            self.number += 1
            yield RawLine(bytes(self._buffer), self.index, self._line_frame or 0, self.number, torn=True)
        self._buffer.clear()
        self._skipping = False

    def _split(self, frame: int, piece: bytes) -> Iterator[RawLine]:
        start = 0
        while start < len(piece):
            if not self._buffer and not self._skipping:
                # A plain file has no frames: a line is found again at its own offset, and a piece
                # (a read of CHUNK_BYTES) holds many lines.
                self._line_frame = frame + start if self._frames.plain else frame
            end = piece.find(b"\n", start)
            if end < 0:
                if not self._skipping:
                    self._buffer += piece[start:]
                    if len(self._buffer) > MAX_LINE_BYTES:
                        self._buffer.clear()
                        self._skipping = True
                        self.number += 1
                        self.problems.add(TOO_LONG, f"{self.path.name} line {self.number}")
                return
            if self._skipping:
                self._skipping = False
            else:
                self._buffer += piece[start:end]
                if len(self._buffer) > MAX_LINE_BYTES:
                    self.number += 1
                    self.problems.add(TOO_LONG, f"{self.path.name} line {self.number}")
                else:
                    self.number += 1
                    yield RawLine(bytes(self._buffer), self.index, self._line_frame or 0, self.number)
            self._buffer.clear()
            start = end + 1


_EXPONENT = re.compile(rb"\d[eE]")


def _reject_constant(name: str) -> Any:
    raise LineError(NON_FINITE, name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise LineError(NON_FINITE, text[:20])
    return value


def parse_json(data: bytes) -> Any:
    """A JSON value with only finite numbers and bounded depth; LineError says what is wrong."""
    try:
        if _EXPONENT.search(data):  # only a number with an exponent can overflow to inf (1e999)
            value = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
        else:  # the C scanner's own float parsing: several times faster on a socket table
            value = json.loads(data, parse_constant=_reject_constant)
    except LineError:
        raise
    except RecursionError:
        raise LineError(TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, an integer too long to read
        raise LineError(NOT_JSON, str(exc)[:80]) from None
    if _SURROGATE_ESCAPE.search(data) and not _encodable(value):
        # "\ud800" alone is valid JSON but no UTF-8 text: printing it would fail later.
        raise LineError(NOT_JSON, "a lone UTF-16 surrogate in a string")
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    return True


def is_header(value: Any) -> bool:
    return isinstance(value, dict) and value.get(HEADER_KEY) == HEADER_VALUE


def check_header(value: dict[str, Any], source: Path) -> None:
    schema = value.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise RecordingError(f"{source}: the recording header has no schema number; it is not a warroom recording")
    if schema > SCHEMA_VERSION:
        made_by = value.get("warroom")
        raise RecordingError(
            f"{source} was recorded with sample schema {schema} (warroom {made_by}); this warroom reads "
            f"schema {SCHEMA_VERSION} and older: replay it with a newer warroom")


def check_ts(ts: float) -> None:
    if not TS_RANGE[0] <= ts <= TS_RANGE[1]:
        raise LineError(BAD_TS, repr(ts)[:24])


def sample_from_value(value: Any) -> Sample:
    """A checked Sample from a parsed line (not a header, not a delta)."""
    try:
        sample = Sample.from_dict(value)
    except SampleDecodeError as exc:
        raise LineError(NOT_A_SAMPLE, str(exc)) from None
    check_ts(sample.ts)
    return sample


def where(raw: RawLine, segments: list[Path]) -> str:
    return f"{segments[raw.segment].name} line {raw.number}"


class SampleDecoder:
    """Turns raw lines into Samples: headers checked, deltas applied to the last snapshot of their series."""

    def __init__(self, segments: list[Path], problems: Problems, source: Path) -> None:
        self.segments = segments
        self.problems = problems
        self.source = source
        self.bases: dict[tuple[str, str, str], Sample] = {}
        self.consoles: list[dict[str, Any]] = []
        """What the console watched, from each header that said (oldest first): see recorder.console_state."""

    def decode(self, raw: RawLine, value: Any | None = None) -> Sample | None:
        """The Sample on this line, or None (a header, or a bad line, which is counted)."""
        if value is None and not raw.data.strip():
            return None  # a blank line carries nothing and harms nothing
        try:
            value = parse_json(raw.data) if value is None else value
            if is_header(value):
                check_header(value, self.source)
                self.bases.clear()  # a new segment or session: snapshots start in full again
                if isinstance(value.get(CONSOLE_KEY), dict):
                    self.consoles.append(value[CONSOLE_KEY])
                return None
            if isinstance(value, dict) and "delta" in value:
                sample = self._apply_delta(value)
            else:
                sample = sample_from_value(value)
                if sample.kind in DELTA_KINDS:
                    self.bases[sample.series] = sample
            return sample
        except LineError as exc:
            # A last line without its newline that does not parse is the writer stopped mid-line.
            self.problems.add(TORN if raw.torn else exc.kind, where(raw, self.segments))
            return None

    def _apply_delta(self, value: dict[str, Any]) -> Sample:
        host, kind, target, ts = value.get("host"), value.get("kind"), value.get("target"), value.get("ts")
        if not all(isinstance(x, str) for x in (host, kind, target)):
            raise LineError(NOT_A_SAMPLE, "a delta line needs kind, host and target strings")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise LineError(NOT_A_SAMPLE, "ts must be a number")
        check_ts(ts)
        key = (host, kind, target)
        base = self.bases.get(key)  # type: ignore[arg-type]
        if base is None:
            raise LineError(NO_BASE)
        try:
            sample = decode_delta(base, value)
        except (DeltaError, TypeError, KeyError) as exc:
            raise LineError(NOT_A_SAMPLE, f"delta does not fit its snapshot: {exc}") from None
        self.bases[key] = sample  # type: ignore[index]
        return sample


def iter_lines(segments: list[Path], problems: Problems) -> Iterator[RawLine]:
    """Every line of every segment, oldest first (a torn or damaged end is handled per segment)."""
    for index, path in enumerate(segments):
        try:
            reader = SegmentReader(path, index, problems)
        except OSError as exc:
            raise RecordingError(f"cannot read recording {path}: {exc.strerror}") from None
        try:
            yield from reader.poll()
            yield from reader.finish()
        except OSError as exc:
            raise RecordingError(f"cannot read recording {path}: {exc.strerror}") from None
        finally:
            reader.close()


def read_recording(path: Path) -> tuple[list[Sample], Problems]:
    """Every Sample of the recording (snapshot changes applied), and the bad lines counted."""
    problems = Problems()
    segments = segments_of(path)
    decoder = SampleDecoder(segments, problems, path)
    samples = [s for raw in iter_lines(segments, problems) if (s := decoder.decode(raw)) is not None]
    return samples, problems
