"""How busy the whole machine was while a bench measured: every bench "host" and peer shares its CPUs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from probes import procfs


def machine_busy_s() -> float:
    """Seconds of CPU the whole machine has spent busy since boot (all cores), as the system probe counts them."""
    times = procfs.cpu_times()
    if times is None:
        raise SystemExit("this bench needs /proc/stat to say how busy the machine was")
    return times[0] / os.sysconf("SC_CLK_TCK")
