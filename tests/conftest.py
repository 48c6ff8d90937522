"""Shared test helpers: a store filled with fixed samples, and the app built over it."""

from __future__ import annotations

import time

import pytest

from console.ui.app import AppConfig, WarroomApp, create_app
from probes.samples import Sample

DEMO_TARGETS = {
    "http://127.0.0.1:8001/health": "api: healthy HTTP baseline",
    "http://127.0.0.1:8002/orders": "slow: HTTP answering in 120 ± 40 ms",
    "127.0.0.1:8003": "refused: nothing listens",
    "127.0.0.1:8005": "backlog: never accepts: SYNs dropped",
}


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recordings and incidents of a test go to a directory of its own, never the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


def fill_fixed_samples(app: WarroomApp, now: float | None = None) -> None:
    """Deterministic evidence: the same numbers every run, stamped relative to now."""
    now = time.time() if now is None else now
    targets = list(DEMO_TARGETS)
    for i in range(30):
        ts = now - 30 + i
        app.hub.publish(Sample("tcp", targets[0], ts, {"rtt_ms": 0.2 + (i % 5) * 0.05}))
        app.hub.publish(Sample("tcp", targets[1], ts, {"rtt_ms": 100.0 + (i % 7) * 10}))
        app.hub.publish(Sample("tcp", targets[2], ts, {}, error="refused",
                               message="[Errno 111] Connect call failed ('127.0.0.1', 8003)"))
        if i % 3:
            app.hub.publish(Sample("tcp", targets[3], ts, {}, error="timeout", message="no result within 2 s"))
        else:
            app.hub.publish(Sample("tcp", targets[3], ts, {"rtt_ms": 1000.0 + i}))
    app.hub.publish(Sample("system", "", now, {
        "cpu_percent": 37.5, "cpu_count": 2, "mem_percent": 81.0, "mem_used_mb": 19525.0,
        "mem_total_mb": 24105.0, "swap_percent": 0.0, "load1": 1.5, "load5": 1.2, "load15": 0.9,
        "open_fds": 2048, "fd_max": 65536, "procs": 212,
        "top": [{"pid": 4242, "name": "java", "cpu": 31.0, "rss_mb": 2048.0, "fds": 900, "user": "app"},
                {"pid": 77, "name": "postgres", "cpu": 4.0, "rss_mb": 300.0, "fds": 120, "user": "postgres"}],
    }))


def fixed_app() -> WarroomApp:
    """The app with no live probes and no clock, over fixed samples (tests, snapshots)."""
    config = AppConfig(targets=list(DEMO_TARGETS), labels=dict(DEMO_TARGETS), live=False,
                       hostname="incident-host")
    app = create_app(config)
    fill_fixed_samples(app)
    return app


@pytest.fixture
def app() -> WarroomApp:
    return fixed_app()


#: The findings views' fixed "now": a replayed clock, so "since" and the windows read the same every run.
FINDINGS_NOW = 1_800_000_000.0


def findings_app() -> WarroomApp:
    """The fixed samples on a fixed clock, plus a CLOSE_WAIT leak in a process that calls none of the targets."""
    config = AppConfig(targets=list(DEMO_TARGETS), labels=dict(DEMO_TARGETS), live=False, hostname="incident-host",
                       replay_end=FINDINGS_NOW)
    app = create_app(config)
    fill_fixed_samples(app, FINDINGS_NOW)
    app.hub.publish(Sample("pools", "", FINDINGS_NOW, {"gauges": [], "groups": [{
        "label": "worker[977] → 10.9.9.9:6379", "pid": 977, "process": "worker", "direction": "out",
        "endpoint": "10.9.9.9:6379", "open": 90, "active": 2, "idle": 88, "close_wait": 86,
        "close_wait_growth": 12, "growth_span_s": 60.0}]}))
    return app
