"""Shared by the recording tests: synthetic Samples shaped like the probes' own, and file fingerprints."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from probes.conns import COLUMNS
from probes.samples import Sample


def socket_rows(n: int, tick: int, *, first_port: int = 30000) -> list[list[object]]:
    """``n`` sockets as the conns probe lists them; timers move every tick, a few sockets come and go."""
    rows: list[list[object]] = []
    for i in range(n):
        port = first_port + i + (tick % 7 if i % 50 == 0 else 0)  # every 50th socket is a new one now and then
        rows.append(["tcp", "ESTAB" if i % 9 else "CLOSE-WAIT", f"127.0.0.1:{port}", "127.0.0.1:5432", 0, 0,
                     4242, "java", 1000, 100000 + port, round(0.05 + (i % 13) * 0.01, 3), i % 3,
                     (tick * 1000 + i) % 60000, (tick * 1000 + i * 7) % 60000, 1000 + i, 2000 + i, False])
    return rows


def conns_table(ts: float, n: int, tick: int, host: str = "local") -> Sample:
    return Sample("conns_table", "", ts, {"columns": list(COLUMNS), "rows": socket_rows(n, tick), "truncated": 0},
                  host=host)


def pools_sample(ts: float, tick: int, used: int = 5) -> Sample:
    groups = [{"label": f"java → 127.0.0.1:{5432 + g}", "process": "java", "peer": f"127.0.0.1:{5432 + g}",
               "open": 10 + g, "active": (tick + g) % 10, "idle": 10 - (tick + g) % 10, "close_wait": 0,
               "growth": 0} for g in range(6)]
    gauge = {"name": "orders-db", "source": "sockets", "used": used, "max": 10, "util_pct": used * 10.0,
             "at_max_s": 0.0}
    return Sample("pools", "", ts, {"groups": groups, "groups_total": 6, "gauges": [gauge], "active_ms": 5000,
                                    "growth_window_s": 300})


def fingerprint(path: Path) -> tuple[int, str]:
    """(mode, sha256 of the content) of a file; a FIFO or device is fingerprinted by its mode only."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        return mode, ""
    return mode, hashlib.sha256(path.read_bytes()).hexdigest()
