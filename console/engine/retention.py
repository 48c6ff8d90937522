"""Retention: the automatic recordings (one folder per run) do not pile up forever.

Every run records into a new folder under the incidents directory named by its
start time (recorder.run_folder). At start, the console removes those
*automatic* folders that the retention settings no longer keep:

- older than ``keep_days`` (by when they were last written, so a long run is
  as old as its end), and then
- the oldest, while all automatic recordings together take more than ``keep_mb``.

Never removed: a named incident's folder (``--incident NAME``: it has a
meta.json, or a name that is not a start time), a folder another console is
recording into (its ``recording.lock`` is held: see recorder.lock_folder), one
written in the last ``MIN_AGE_S`` seconds (a console that has just made it may
not hold its lock yet), and one holding a file warroom did not write there (a
person put it there). ``judge`` says what would go and why; ``prune`` removes
it and ``summary`` is the one line that says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from console.engine import paths
from console.engine.recorder import LOCK_NAME, SEGMENT_RE, lock_holder
from console.settings.settings import RetentionSettings

#: A folder written this recently is never removed (it may be a console's that has not locked it yet).
MIN_AGE_S = 60.0
#: How a run folder is named: recorder.run_folder's start time, "-N" when several runs started in one second.
RUN_NAME = re.compile(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(-\d{1,3})?")
MB = 1024 * 1024
DAY_S = 86400.0


def is_run_folder(path: Path) -> bool:
    """An automatic recording's folder (not a named incident's, which always has its meta.json)."""
    return bool(RUN_NAME.fullmatch(path.name)) and path.is_dir() and not (path / "meta.json").exists()


def is_ours(name: str) -> bool:
    """A file the recorder writes in a run folder."""
    return bool(SEGMENT_RE.match(name)) or name == LOCK_NAME


@dataclass
class RunRecording:
    """One automatic recording on disk."""

    path: Path
    size: int
    """Bytes of its files."""
    last_written: float
    """The newest modification time in it (its folder's included)."""
    writer: int | None
    """The pid of the console recording into it now (0: one that did not say), None when nobody is."""
    foreign: list[str] = field(default_factory=list)
    """Files in it that warroom did not write (it is then never removed)."""


def folder_size(path: Path) -> int:
    """Bytes of the files under ``path`` (what removing it frees); unreadable entries count 0."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def scan_run(path: Path) -> RunRecording:
    size, newest, foreign = 0, 0.0, []
    with contextlib.suppress(OSError):
        newest = path.stat().st_mtime
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        newest = max(newest, info.st_mtime)
        if entry.is_file(follow_symlinks=False) and is_ours(entry.name):
            size += info.st_size
        else:
            foreign.append(entry.name)
            size += folder_size(Path(entry.path)) if entry.is_dir(follow_symlinks=False) else info.st_size
    return RunRecording(path, size, newest, lock_holder(path), sorted(foreign))


def run_recordings(root: Path | None = None) -> list[RunRecording]:
    """Every automatic recording under the incidents directory, least recently written first."""
    root = paths.incidents_dir() if root is None else root
    try:
        folders = [p for p in root.iterdir() if is_run_folder(p)]
    except OSError:
        return []
    return sorted((scan_run(p) for p in folders), key=lambda r: (r.last_written, r.path.name))


@dataclass(frozen=True)
class Verdict:
    """What retention does with one automatic recording, and why (as `warroom incidents` shows it)."""

    run: RunRecording
    remove: bool
    reason: str
    by_age: bool = False


def _kept_because(run: RunRecording, now: float) -> str | None:
    """Why ``run`` may not be removed whatever the settings say (None: it may)."""
    if run.writer is not None:
        return f"recording now (pid {run.writer})" if run.writer else "recording now"
    if now - run.last_written < MIN_AGE_S:
        return "written in the last minute"
    if run.foreign:
        shown = ", ".join(run.foreign[:2]) + (f" +{len(run.foreign) - 2}" if len(run.foreign) > 2 else "")
        return f"holds files warroom did not write ({shown})"
    return None


def judge(runs: list[RunRecording], policy: RetentionSettings, now: float | None = None) -> list[Verdict]:
    """A verdict per recording (``runs`` least recently written first): age first, then the total size."""
    now = time.time() if now is None else now
    verdicts: dict[Path, Verdict] = {}
    for run in runs:
        protected = _kept_because(run, now)
        if protected is not None:
            verdicts[run.path] = Verdict(run, False, protected)
        elif policy.keep_days is not None and now - run.last_written > policy.keep_days * DAY_S:
            days = (now - run.last_written) / DAY_S
            verdicts[run.path] = Verdict(run, True, f"last written {days:.0f} days ago, more than "
                                                    f"{policy.keep_days:g} ({policy.days_from})", by_age=True)
    if policy.keep_mb is not None:
        total = sum(r.size for r in runs if not (r.path in verdicts and verdicts[r.path].remove))
        for run in runs:
            if total <= policy.keep_mb * MB:
                break
            if run.path in verdicts:
                continue
            verdicts[run.path] = Verdict(run, True, f"oldest while all take more than {policy.keep_mb:,.0f} MB "
                                                    f"({policy.mb_from})")
            total -= run.size
    return [verdicts.get(r.path) or Verdict(r, False, "kept") for r in runs]


@dataclass
class PruneResult:
    removed: list[Verdict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """One line per folder that could not be removed (and why)."""

    @property
    def freed(self) -> int:
        return sum(v.run.size for v in self.removed)


def prune(policy: RetentionSettings, *, root: Path | None = None, now: float | None = None) -> PruneResult:
    """Remove what ``judge`` says goes; a folder whose lock a console took meanwhile is left alone."""
    result = PruneResult()
    for verdict in judge(run_recordings(root), policy, now):
        if not verdict.remove:
            continue
        path = verdict.run.path
        lock = None
        try:
            if (path / LOCK_NAME).exists():
                lock = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while removing: nobody starts in it
                except BlockingIOError:
                    continue  # a console is recording into it after all
            shutil.rmtree(path)
        except OSError as exc:
            result.failed.append(f"cannot remove {path}: {exc.strerror or exc}")
            continue
        finally:
            if lock is not None:
                os.close(lock)
        result.removed.append(verdict)
    return result


def human_size(n: float) -> str:
    """1536 -> "1.5 KB": sizes as a person reads them in a list."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns at GB


def summary(result: PruneResult, policy: RetentionSettings) -> str | None:
    """The one line that says what start-up removed (None when nothing was, and nothing failed)."""
    if not result.removed and not result.failed:
        return None
    parts = []
    if result.removed:
        aged = sum(1 for v in result.removed if v.by_age)
        sized = len(result.removed) - aged
        why = []
        if aged:
            why.append(f"{aged} older than {policy.keep_days:g} days")
        if sized:
            why.append(f"{sized} to stay under {policy.keep_mb:,.0f} MB in all")
        noun = "recording" if len(result.removed) == 1 else "recordings"
        parts.append(f"removed {len(result.removed)} automatic {noun} ({human_size(result.freed)}): "
                     + ", ".join(why) + " (--keep-days/--keep-mb, or record_keep_days/record_keep_mb in the config; "
                     "--incident folders are never removed)")
    if result.failed:
        parts.append(result.failed[0] + (f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""))
    return "; ".join(parts)


def prune_at_start(policy: RetentionSettings) -> str | None:
    """What every recording command runs first: prune, and the line to say (None: nothing to say)."""
    return summary(prune(policy), policy)
