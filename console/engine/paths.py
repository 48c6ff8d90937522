"""Where warroom keeps what it writes: the user's data directory (XDG), one folder per incident."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """$XDG_DATA_HOME/warroom, else ~/.local/share/warroom."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "warroom"


def incidents_dir() -> Path:
    """Every incident's folder lives here: its recording, checklist, timeline and report."""
    return data_dir() / "incidents"


def incident_dir(name: str) -> Path:
    """The folder of incident ``name`` (not created here)."""
    return incidents_dir() / name
