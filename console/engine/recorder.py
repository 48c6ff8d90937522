"""Recording: the Sample stream written as JSON lines, one Sample per line.

The lines are exactly what `warroom --json` prints and what the SSH agent
sends, so a recording can be replayed through the hub or used as a fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from probes.samples import Sample, SampleDecodeError


class RecordingError(OSError):
    """A recording that cannot be read; the message says which file and why."""


class Recorder:
    """A hub listener that appends each Sample to a file, flushed line by line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8", buffering=1)
        self.written = 0

    def __call__(self, sample: Sample) -> None:
        self._file.write(sample.to_json() + "\n")
        self.written += 1

    def close(self) -> None:
        self._file.close()



def read_recording(path: Path) -> tuple[list[Sample], list[str]]:
    """All Samples in the file, and one problem line per line that was not a Sample."""
    samples: list[Sample] = []
    problems: list[str] = []
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    samples.append(Sample.from_json(raw))
                except SampleDecodeError as exc:
                    problems.append(f"{path} line {number}: {exc}")
    except OSError as exc:
        raise RecordingError(f"cannot read recording {path}: {exc.strerror}") from None
    return samples, problems
