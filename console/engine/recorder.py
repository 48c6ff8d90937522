"""The flight recorder: every Sample of a run, compressed, capped, flushed every second.

A recording is one or more *segments*, each a compressed file of JSON lines:

- the first line of a segment is a header,
  ``{"recording": "warroom", "schema": N, "segment": K, "started": TS, "warroom": VERSION}``;
  ``schema`` is probes.samples.SCHEMA_VERSION, so a newer recording is refused
  instead of misread;
- every other line is a Sample exactly as ``warroom --json`` prints it, or, for
  the large snapshot kinds (``conns_table``, ``pools``), a delta line (see
  console/engine/snapshot_delta.py for the encoding; the socket table is also
  recorded at most every 5 s).

Compression is zstandard (gzip where the zstandard package is missing; plain
text for a ``--record FILE`` whose name does not end in .zst or .gz). The
writer flushes a compressed block every second, so a crash (even SIGKILL)
loses at most the last second, and a torn last line is all a reader can meet.
A new compression frame starts before every full snapshot: replay can start
decoding there without reading what came before.

Segments: in a folder (the default, one per run under the incidents directory,
or the incident's own folder) they are ``recording-000001.jsonl.zst``,
``recording-000002...``; for ``--record FILE`` the first is FILE and the next
are FILE.2, FILE.3 ... Segments are never renamed (a reader that follows the
recording keeps its place). When the recording would pass its cap (default
200 MB), the oldest segments are deleted.

A folder being recorded holds ``recording.lock`` (the recorder's pid, under an
exclusive ``flock`` for as long as it writes), so retention
(console/engine/retention.py) never removes a recording another console is
writing. Each header also carries ``"console"``: what the console watched
(targets as shown, redacted; the demo's labels; this host's and the SSH hosts'
names; the demo flag; never a secret), so a replay shows the same rows, labels
and Hosts tab. When that changes mid-run (a target added, the demo's servers
up), the recorder writes a header line again with the new state and starts the
next snapshots in full, so a reader of any age decodes on as after a segment's
first header.

Recording never runs on the caller's thread beyond a list append: a writer
thread encodes, compresses and writes. When the disk fills, the file goes away
or a write fails for any reason, the recorder says so once (``error``,
``on_error``), drops what comes after and never raises into the hub: the
console and the ``--json`` stream keep going, and the file replays up to its
last good line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from console import __version__
from console.engine.paths import incidents_dir
from console.engine.snapshot_delta import DELTA_KINDS, KEYFRAME_S, RECORD_EVERY_S, encode_delta
from probes.redact import redact_url, scrub
from probes.samples import SCHEMA_VERSION, Sample

if TYPE_CHECKING:
    from console.settings.settings import Settings

try:  # an optional speed-up: gzip is always there
    import zstandard
except ImportError:  # pragma: no cover - exercised where the package is missing
    zstandard = None  # type: ignore[assignment]

#: The cap of one recording on disk (all its segments), unless configured.
DEFAULT_MAX_MB = 200.0
#: A recording is cut into this many segments, so dropping the oldest loses an eighth.
SEGMENTS_PER_CAP = 8
#: Never cut segments smaller than this (a tiny cap still keeps whole snapshots).
MIN_SEGMENT_BYTES = 16 * 1024
#: Seconds between two flushes: what a crash can lose.
FLUSH_S = 1.0
#: Compressed bytes gathered before a write (a full disk then costs at most this much).
WRITE_BYTES = 256 * 1024
#: Samples waiting for the writer thread; past this they are dropped (and counted).
MAX_PENDING = 200_000
#: How long close() waits for the writer to write what is queued.
CLOSE_TIMEOUT_S = 10.0
#: The header's marker key and value.
HEADER_KEY = "recording"
HEADER_VALUE = "warroom"
#: Segment files in a recording folder.
SEGMENT_PREFIX = "recording-"
SEGMENT_RE = re.compile(r"^recording-(\d{6,})\.jsonl(\.zst|\.gz)?$")

#: Held (flock) by the recorder writing a folder; it says the writer's pid.
LOCK_NAME = "recording.lock"
#: The header's key for what the console watched (see console_state).
CONSOLE_KEY = "console"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


class RecordingError(OSError):
    """A recording that cannot be written or read; the message says which file and why."""


def zstd_available() -> bool:
    return zstandard is not None


def default_compression() -> str:
    return "zstd" if zstd_available() else "gzip"


def compression_for_name(path: Path) -> str:
    """--record FILE: the name says the format (.zst, .gz), anything else is plain JSON lines."""
    if path.name.endswith(".zst"):
        if not zstd_available():
            raise RecordingError(f"cannot write {path}: zstandard is not installed (pip install zstandard), "
                                 "or name the file .gz")
        return "zstd"
    return "gzip" if path.name.endswith(".gz") else "plain"


SUFFIXES = {"zstd": ".jsonl.zst", "gzip": ".jsonl.gz", "plain": ".jsonl"}


def sniff_compression(path: Path) -> str | None:
    """The format of an existing, non-empty file from its first bytes (None for a new or empty file)."""
    try:
        with path.open("rb") as fh:
            start = fh.read(4)
    except OSError:
        return None
    if not start:
        return None
    if start.startswith(ZSTD_MAGIC):
        return "zstd"
    return "gzip" if start.startswith(GZIP_MAGIC) else "plain"


def _json(value: Any) -> str:
    """json.dumps with the options that make exactly Sample.to_json's text."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)

#: Rows per json.dumps call for long lists: the C encoder holds the GIL for a whole call, and a
#: 10,000-socket table in one call kept the UI thread waiting ~40 ms (bench/recorder_cost.py).
DUMP_ROWS = 500


def dumps(value: Any) -> str:
    """json.dumps(value) with Sample.to_json's options, long lists encoded a slice at a time."""
    if isinstance(value, list) and len(value) > DUMP_ROWS:
        parts = [_json(value[i:i + DUMP_ROWS])[1:-1] for i in range(0, len(value), DUMP_ROWS)]
        return "[" + ",".join(parts) + "]"
    if isinstance(value, dict) and _has_long_list(value, 3):
        return "{" + ",".join(_json(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    return _json(value)


def _has_long_list(value: Any, depth: int) -> bool:
    if isinstance(value, list):
        return len(value) > DUMP_ROWS
    if isinstance(value, dict) and depth > 0:
        return any(_has_long_list(v, depth - 1) for v in value.values())
    return False


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def header(segment: int, started: float, console: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {HEADER_KEY: HEADER_VALUE, "schema": SCHEMA_VERSION, "segment": segment,
                           "started": started, "warroom": __version__}
    if console is not None:
        out[CONSOLE_KEY] = console
    return out


def console_state(*, targets: list[str], labels: dict[str, str] | None = None, hostname: str = "",
                  remote_hosts: list[str] | None = None, demo: bool = False,
                  secrets: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """What the console watches, as a recording header keeps it: targets as the panes show them (a URL's
    password masked), labels, host names and the demo flag; every literal ``secrets`` value masked too."""
    def clean(text: str) -> str:
        return scrub(redact_url(text), secrets)

    return {"targets": [clean(t) for t in targets],
            "labels": {clean(t): scrub(label, secrets) for t, label in (labels or {}).items()},
            "hostname": scrub(hostname, secrets), "remote_hosts": [scrub(h, secrets) for h in remote_hosts or []],
            "demo": bool(demo)}


def lock_folder(folder: Path) -> int:
    """Take ``folder``'s recording lock (and write our pid in it); the fd holds it until closed.

    Raises RecordingError when another process holds it: it is recording into that folder.
    """
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = lock_holder(folder)
        raise RecordingError(f"cannot record into {folder}: warroom (pid {pid or '?'}) is recording there now") \
            from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def lock_holder(folder: Path) -> int | None:
    """The pid of the process recording into ``folder`` now (0 when it did not say), None when nobody is.

    A crashed recorder's lock file is left behind, but its flock went with it: that folder is free.
    """
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # only fails while a writer holds it exclusively
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def run_folder(now: float | None = None) -> Path:
    """A new folder under the incidents directory named by the start time (never an existing one)."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(time.time() if now is None else now))
    base = incidents_dir()
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise RecordingError(f"cannot make a recording folder under {base}: too many runs started at {stamp}")


def check_record_path(path: Path) -> None:
    """--record FILE: refuse what is not (or cannot become) a regular file, with the one-line reason."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise RecordingError(f"cannot write the recording {path}: folder {path.parent} does not exist") from None
        return
    except OSError as exc:
        raise RecordingError(f"cannot write the recording {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RecordingError(f"cannot write the recording {path}: it is {describe_mode(info.st_mode)}, "
                             "not a regular file (give a file name)")


def describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@dataclass(frozen=True)
class _ConsoleChange:
    """Queued with the Samples: the console's state from this point of the stream on."""

    state: dict[str, Any]


class _Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def sync(self) -> bytes: ...
    def end_frame(self) -> bytes: ...


class _Plain:
    def compress(self, data: bytes) -> bytes:
        return data

    def sync(self) -> bytes:
        return b""

    def end_frame(self) -> bytes:
        return b""


class _Gzip:
    """gzip members; Z_SYNC_FLUSH makes everything so far decodable, a member end starts a new one."""

    def __init__(self) -> None:
        self._obj = zlib.compressobj(6, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def sync(self) -> bytes:
        return self._obj.flush(zlib.Z_SYNC_FLUSH)

    def end_frame(self) -> bytes:
        out = self._obj.flush(zlib.Z_FINISH)
        self._obj = zlib.compressobj(6, zlib.DEFLATED, 31)
        return out


class _Zstd:
    """zstandard frames; a block flush makes everything so far decodable."""

    def __init__(self) -> None:
        assert zstandard is not None
        self._ctx = zstandard.ZstdCompressor(level=3)
        self._obj = self._ctx.compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def sync(self) -> bytes:
        return self._obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def end_frame(self) -> bytes:
        out = self._obj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self._obj = self._ctx.compressobj()
        return out


def _encoder(compression: str) -> _Encoder:
    if compression == "zstd":
        return _Zstd()
    return _Gzip() if compression == "gzip" else _Plain()


@dataclass
class Segment:
    """The segment being written."""

    number: int
    path: Path
    fd: int
    written: int = 0
    """Bytes on disk (compressed)."""


class Recorder:
    """A hub listener that records every Sample (call it with a Sample; close() at the end).

    ``target`` is a folder (segments inside, named as above) or a file (--record FILE).
    """

    def __init__(self, target: str | Path, *, max_bytes: int | None = None, compression: str | None = None,
                 on_error: Callable[[str], None] | None = None, flush_s: float = FLUSH_S,
                 console: dict[str, Any] | None = None) -> None:
        self.target = Path(target)
        self.folder = self.target.is_dir()
        if not self.folder:
            check_record_path(self.target)
        self.console = console
        """What the console watches (console_state), in every header; set_console changes it."""
        self._lock: int | None = None
        if self.folder:
            try:
                self._lock = lock_folder(self.target)
            except OSError as exc:
                if isinstance(exc, RecordingError):
                    raise
                raise RecordingError(f"cannot write the recording {self.target}: {exc.strerror}") from None
        self.compression = compression or (default_compression() if self.folder else
                                           sniff_compression(self.target) or compression_for_name(self.target))
        self.max_bytes = int(DEFAULT_MAX_MB * 1024 * 1024) if max_bytes is None else max(1, int(max_bytes))
        self.segment_bytes = max(MIN_SEGMENT_BYTES, self.max_bytes // SEGMENTS_PER_CAP)
        self.on_error = on_error
        self.flush_s = flush_s
        self.written = 0
        """Samples written (queued samples are not yet counted)."""
        self.dropped = 0
        """Samples not recorded: after a failure, past MAX_PENDING, or with values JSON cannot carry."""
        self.thinned = 0
        """Snapshots left out on purpose (RECORD_EVERY_S)."""
        self.error: str | None = None
        """Why recording stopped (set once, by the writer thread)."""
        self.notices: list[str] = []
        """What went wrong, once each (the stop included), for the console to show."""
        self.segments: list[Path] = []
        """The segments this recorder made and has not dropped, oldest first."""
        self._pending: deque[Sample | _ConsoleChange] = deque()
        self._closing = threading.Event()
        self._bases: dict[tuple[str, str, str], tuple[Sample, float]] = {}
        """Per snapshot series: the last snapshot written and when its last full line was."""
        self._encoder = _encoder(self.compression)
        self._segment: Segment | None = None
        self._last_flush = time.monotonic()
        try:
            self._segment = self._open_segment(self._first_segment_number())
        except OSError as exc:
            self._unlock()
            raise RecordingError(f"cannot write the recording {self.target}: {exc.strerror}") from None
        self._thread = threading.Thread(target=self._run, name="warroom-recorder", daemon=True)
        self._thread.start()

    @property
    def path(self) -> Path:
        """The segment being written now (the recording's first file for --record FILE)."""
        return self._segment.path if self._segment is not None else self.target

    # -- the hub's side: as cheap as a list append --------------------------------

    def __call__(self, sample: Sample) -> None:
        if self.error is not None or len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append(sample)

    def set_console(self, state: dict[str, Any]) -> None:
        """The console's state changed (console_state): the recording says so from here on."""
        self._pending.append(_ConsoleChange(state))

    def close(self) -> None:
        """Write what is queued, end the compressed stream and close the file (idempotent)."""
        self._closing.set()
        self._thread.join(timeout=CLOSE_TIMEOUT_S)
        if not self._thread.is_alive():
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.target / LOCK_NAME).unlink()  # while still held: the folder is all recording again
            with contextlib.suppress(OSError):
                os.close(self._lock)  # the flock goes with the fd (a crash leaves the file; its flock is gone)
            self._lock = None

    # -- the writer thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            # Half a flush interval: each wake-up of this thread takes the GIL from the probes and the UI,
            # and close() sets the event, so the last Samples never wait for the timeout.
            closing = self._closing.wait(timeout=self.flush_s / 2)
            self._write_pending()
            if closing:
                self._finish()
                return
            if time.monotonic() - self._last_flush >= self.flush_s:
                self._flush()

    def _write_pending(self) -> None:
        chunks: list[bytes] = []
        size = count = 0
        while self._pending and self.error is None:
            sample = self._pending.popleft()
            if isinstance(sample, _ConsoleChange):
                state_line = self._console_line(sample.state)
                chunks.append(state_line)
                size += len(state_line)
                continue
            try:
                chunk = self._line(sample)
            except ValueError:  # a value JSON cannot carry exactly (NaN): that Sample only
                self.dropped += 1
                continue
            if chunk is None:
                self.thinned += 1
                continue
            chunks.append(chunk)
            size += len(chunk)
            count += 1
            segment_full = self._segment is not None and self._segment.written + size >= self.segment_bytes
            if size >= WRITE_BYTES or segment_full:
                self._write_batch(chunks, count)
                chunks, size, count = [], 0, 0
                if segment_full:
                    self._rotate()
        if chunks:
            self._write_batch(chunks, count)
        if self.error is not None:
            self.dropped += len(self._pending)
            self._pending.clear()

    def _write_batch(self, chunks: list[bytes], count: int) -> None:
        self._write(b"".join(chunks))
        if self.error is None:
            self.written += count
        else:
            self.dropped += count

    def _line(self, sample: Sample) -> bytes | None:
        """The bytes for one Sample: its JSON line, a delta line, or a new frame and a full snapshot;
        None for a snapshot within RECORD_EVERY_S of the last one recorded."""
        if sample.kind not in DELTA_KINDS:
            return self._encoder.compress((sample.to_json() + "\n").encode())
        base = self._bases.get(sample.series)
        every = RECORD_EVERY_S.get(sample.kind)
        if every is not None and base is not None and sample.ok and sample.ts - base[0].ts < every:
            return None
        delta = None
        if base is not None and sample.ts - base[1] < KEYFRAME_S.get(sample.kind, 60.0):
            delta = encode_delta(base[0], sample)
        if delta is not None:
            text = dumps(delta)
            self._bases[sample.series] = (sample, base[1])  # type: ignore[index]
            return self._encoder.compress((text + "\n").encode())
        text = dumps(sample.to_dict())  # what sample.to_json() says, without holding the GIL for all of it
        self._bases[sample.series] = (sample, sample.ts)
        # A full snapshot starts a compression frame: replay decodes from here without what came before.
        return self._encoder.end_frame() + self._encoder.compress((text + "\n").encode())

    def _console_line(self, state: dict[str, Any]) -> bytes:
        """A header line with the new console state, in a frame of its own; snapshots start in full after it
        (a reader clears its snapshot bases at every header)."""
        if state == self.console or self._segment is None:
            self.console = state
            return b""
        self.console = state
        self._bases.clear()
        line = json.dumps(header(self._segment.number, time.time(), state), separators=(",", ":")) + "\n"
        return self._encoder.end_frame() + self._encoder.compress(line.encode())

    def _first_segment_number(self) -> int:
        """A new segment, never the end of an old compressed one: a run that crashed left its last frame
        unfinished, and frames appended after it could not be decoded. (A plain file is appended to.)"""
        if not self.folder:
            existing = [1] if self.target.exists() and self.target.stat().st_size > 0 else []
            prefix = self.target.name + "."
            existing += [int(p.name[len(prefix):]) for p in self.target.parent.iterdir()
                         if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()]
            if not existing or self.compression == "plain":
                return max(existing, default=1)
            return max(existing) + 1
        numbers = [int(m.group(1)) for p in self.target.iterdir() if (m := SEGMENT_RE.match(p.name))]
        return max(numbers, default=0) + 1

    def _segment_path(self, number: int) -> Path:
        if self.folder:
            return self.target / f"{SEGMENT_PREFIX}{number:06d}{SUFFIXES[self.compression]}"
        return self.target if number == 1 else self.target.with_name(f"{self.target.name}.{number}")

    def _open_segment(self, number: int) -> Segment:
        path = self._segment_path(number)
        # O_NONBLOCK: a FIFO swapped in after the check must not hang the open.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(0, f"{path} is {describe_mode(info.st_mode)}, not a regular file")
            os.set_blocking(fd, True)
        except OSError:
            os.close(fd)
            raise
        segment = Segment(number, path, fd, written=info.st_size)
        if info.st_size and self.compression == "plain" and not _ends_with_newline(path):
            self._raw_write(segment, b"\n")  # a torn last line of a crashed run stays one bad line, alone
        self._segment = segment
        self.segments.append(path)
        self._encoder = _encoder(self.compression)
        self._bases.clear()  # each segment stands alone: its snapshots start in full
        line = json.dumps(header(number, time.time(), self.console), separators=(",", ":")) + "\n"
        self._raw_write(segment, self._encoder.compress(line.encode()) + self._encoder.sync())
        return segment

    def _rotate(self) -> None:
        segment = self._segment
        if segment is None or self.error is not None:
            return
        try:
            self._raw_write(segment, self._encoder.end_frame())
            os.close(segment.fd)
            self._segment = None
            self._open_segment(segment.number + 1)
        except OSError as exc:
            self._fail(exc)
            return
        self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Delete the oldest segments until they and a full current segment fit the cap."""
        completed = self.segments[:-1]
        sizes = []
        for path in completed:
            try:
                sizes.append(path.stat().st_size)
            except OSError:
                sizes.append(0)
        while completed and sum(sizes) + self.segment_bytes > self.max_bytes:
            oldest = completed.pop(0)
            sizes.pop(0)
            self.segments.remove(oldest)
            try:
                oldest.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._fail(exc)
                return

    def _write(self, data: bytes) -> None:
        if self._segment is None or self.error is not None:
            return
        try:
            self._raw_write(self._segment, data)
        except OSError as exc:
            self._fail(exc)

    def _raw_write(self, segment: Segment, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(segment.fd, view)
            segment.written += n
            view = view[n:]

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        segment = self._segment
        if segment is None or self.error is not None:
            return
        self._write(self._encoder.sync())
        try:
            removed = os.fstat(segment.fd).st_nlink == 0
        except OSError:
            removed = True
        if removed:
            # Someone deleted the file under us: go on in a new segment rather than into a file nobody can read.
            self._rotate()
            if self.error is None:
                self._notice(f"recording file {segment.path} was deleted while being recorded; "
                             f"recording goes on in {self.path}")

    def _finish(self) -> None:
        segment = self._segment
        if segment is None:
            return
        if self.error is None:
            self._write(self._encoder.end_frame())
        try:
            os.close(segment.fd)
        except OSError:
            pass
        self._segment = None

    def _fail(self, exc: OSError) -> None:
        if self.error is not None:
            return
        reason = exc.strerror or str(exc)
        where = self._segment.path if self._segment is not None else self.target
        self.error = (f"recording stopped after {self.written} samples: cannot write {where}: {reason}; "
                      "the console goes on, and the recording replays up to its last good line")
        if self._segment is not None:
            try:
                os.close(self._segment.fd)
            except OSError:
                pass
            self._segment = None
        self._notice(self.error)

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # whoever listens must not take the recorder's thread down with it
                pass


def settings_console_state(settings: Settings, hostname: str | None = None) -> dict[str, Any]:
    """console_state for a run as ``settings`` start it (the app updates it as targets come and go)."""
    import socket

    return console_state(targets=list(settings.targets), hostname=hostname or socket.gethostname(),
                         remote_hosts=[h.name for h in settings.hosts], demo=settings.demo, secrets=settings.secrets)


def open_recorder(settings: Settings, *, folder: Path | None = None,
                  on_error: Callable[[str], None] | None = None) -> Recorder | None:
    """The run's recorder as ``settings`` say: None with --no-record; --record FILE; else ``folder``
    (an incident's) or a new folder per run. Raises RecordingError with the one-line reason."""
    if settings.no_record:
        return None
    max_bytes = int(settings.record_max_mb * 1024 * 1024)
    console = settings_console_state(settings)
    if settings.record:
        check_record_path(Path(settings.record))  # --record names a file: a folder here is a mistake
        return Recorder(Path(settings.record), max_bytes=max_bytes, on_error=on_error, console=console)
    try:
        if folder is None:
            folder = run_folder()
        else:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = folder or incidents_dir()
        raise RecordingError(f"cannot make the recording folder {where}: {exc.strerror} "
                             "(--record FILE records elsewhere, --no-record not at all)") from None
    return Recorder(folder, max_bytes=max_bytes, on_error=on_error, console=console)
