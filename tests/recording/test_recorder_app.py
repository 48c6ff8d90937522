"""In the console, a recorder that fails says so once on screen, and the panes keep going."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.engine.recorder import Recorder
from console.engine.recording import read_recording
from console.ui.app import AppConfig, create_app
from probes.samples import Sample
from tests.recording.helpers import conns_table
from tests.recording.test_recorder import small_tmpfs
from widgets.target_row import TargetRow


@pytest.mark.system
async def test_a_full_disk_is_said_once_and_the_console_goes_on(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "96k") as disk:
        recorder = Recorder(disk / "rec.jsonl.zst")
        app = create_app(AppConfig(targets=["127.0.0.1:9"], live=False, record=recorder, hostname="h"))
        async with app.run_test(size=(100, 30)) as pilot:
            assert "● REC" in app.sub_title
            now = time.time()
            for i in range(120):  # socket tables (one in 5 s is recorded) fill the 96 kB disk at once
                app.hub.publish(conns_table(now - 600 + 5 * i, 600, i))
                app.hub.publish(Sample("tcp", "127.0.0.1:9", now - 600 + 5 * i, {}, error="refused", message="m"))
                if i % 20 == 0:
                    await pilot.pause(0.05)
            for _ in range(30):
                await pilot.pause(0.2)
                if recorder.error:
                    break
            await pilot.pause(1.3)  # the 1 Hz tick shows the notice
            said = [n.message for n in app._notifications if "recording stopped" in n.message]
            assert len(said) == 1 and "No space left on device" in said[0]
            app.hub.publish(Sample("tcp", "127.0.0.1:9", now + 1, {"rtt_ms": 1.0}))
            await pilot.pause(1.2)
            text = app.query_one(TargetRow).text
            assert "LOSS" in text or "OK" in text  # the pane took the Sample after the recorder stopped
            assert len([n for n in app._notifications if "recording stopped" in n.message]) == 1
        got, _ = read_recording(disk / "rec.jsonl.zst")
        assert got  # what was written before the disk filled replays
