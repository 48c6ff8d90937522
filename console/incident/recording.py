"""The incident's recording: the one place it is opened and read back.

It is console/engine/recorder.py's flight recorder (compressed, capped,
rotated, flushed every second) on the incident folder's recording file, read
back by console/engine/recording.py. Samples pass through the incident's
redactor on the way in, so nothing the config marks secret reaches the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.engine.recorder import Recorder, RecordingError
from console.engine.recording import read_recording as read_segments
from console.incident.redaction import Redactor
from probes.samples import Sample


class IncidentRecording:
    """A hub listener: each Sample, redacted, appended to the incident's recording."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        self._recorder = Recorder(path)

    def __call__(self, sample: Sample) -> None:
        line = sample.to_json()
        if self.redactor.needs(line):
            sample = Sample.from_dict(self.redactor.value(sample.to_dict()))
        self._recorder(sample)

    def set_console(self, state: dict[str, Any]) -> None:
        """What the console watches, redacted, into the recording's header (replay restores it)."""
        self._recorder.set_console(self.redactor.value(state))

    @property
    def written(self) -> int:
        return self._recorder.written

    @property
    def notices(self) -> list[str]:
        """What went wrong with the recording, once each (the console shows them)."""
        return self._recorder.notices

    def close(self) -> None:
        self._recorder.close()


def open_recording(path: Path, redactor: Redactor) -> IncidentRecording:
    """Start (or continue) the recording at ``path``; raises OSError when it cannot be written."""
    return IncidentRecording(path, redactor)


def read_recording(path: Path) -> tuple[list[Sample], list[str]]:
    """Every Sample of a recording (an incident's or `warroom --record`'s) and one line per bad line."""
    if not path.exists():
        return [], []
    samples, problems = read_segments(path)
    return samples, [problems.describe().removeprefix("skipped ")] if problems.total else []


Listener = Callable[[Sample], None]
__all__ = ["IncidentRecording", "RecordingError", "open_recording", "read_recording"]
