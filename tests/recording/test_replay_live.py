"""A real run's recording replays to the figures the live console showed, and plays, seeks and follows."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from console.engine.recorder import Recorder
from console.engine.replay import Recording
from console.ui.app import AppConfig, WarroomApp, create_app
from tests.unit.test_cli import ROOT, warroom
from widgets.replay_scrubber import ReplayScrubber
from widgets.target_row import TargetRow
from widgets.targets_pane import TargetsPane


def rows_text(app: WarroomApp) -> dict[str, str]:
    return {row.target: row.text for row in app.query(TargetRow)}


def shown_figures(app: WarroomApp) -> tuple[dict[str, str], list[str]]:
    """What the targets pane and the findings show now (redrawn at once)."""
    pane = app.query_one(TargetsPane)
    pane._seen_version = -1
    pane.refresh_rows()
    app.findings.run_once()
    return rows_text(app), sorted(f.title for f in app.findings.current)


async def test_a_live_demo_run_replays_to_the_same_figures(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    live = create_app(AppConfig(demo=True, hostname="h", record=recorder))
    live_tables: dict[float, str] = {}
    live.hub.listeners.append(lambda s: live_tables.__setitem__(s.ts, s.to_json()) if s.kind == "conns_table" else None)
    async with live.run_test(size=(100, 30)) as pilot:
        for _ in range(40):  # until every demo target has a few probes and a finding has appeared
            await pilot.pause(0.25)
            counts = [live.store.stats(("local", "tcp", t), seconds=None).count for t in live.config.targets]
            if len(counts) == 5 and min(counts) >= 4 and live.findings.current:
                break
        await live.hub.stop()
        await pilot.pause(0.3)  # Samples already on their way to the store land
        end = max(s.ts for s in live.store)
        live.store.clock = lambda: end
        live_rows, live_findings = shown_figures(live)
    assert len(live_rows) == 5 and any("REFUSED" in text for text in live_rows.values())
    assert live_findings

    recording = Recording.load(tmp_path)
    assert recording.problems.total == 0
    assert any(mark.kind == "appeared" for mark in recording.marks)  # the findings are in the recording
    replay = create_app(AppConfig(targets=list(live_rows), labels=dict(live.config.labels), live=False,
                                  replay=recording, replay_at=end))
    async with replay.run_test(size=(100, 30)) as pilot:
        assert replay.replay is not None
        replay.replay.paused = True
        await pilot.pause(0.2)
        replay_rows, replay_findings = shown_figures(replay)
        assert replay_rows == live_rows
        assert replay_findings == live_findings
        conns = replay.store.last(("local", "conns_table", ""))
        assert conns is not None and end - conns.ts <= 5.5  # recorded every 5 s
        assert conns.to_json() == live_tables[conns.ts]  # the snapshot the live console had, rebuilt exactly


async def test_replay_keys_pause_speed_and_seek(tmp_path: Path) -> None:
    from console.engine.recorder import Recorder as R
    from probes.samples import Sample

    start = time.time() - 7200
    recorder = R(tmp_path)
    for i in range(600):  # ten minutes: the target fails from minute 5
        ok = i < 300
        recorder(Sample("tcp", "127.0.0.1:5432", start + i, {"rtt_ms": 1.0} if ok else {},
                        error=None if ok else "refused", message=None if ok else "Connect call failed"))
    recorder(Sample("finding", "local/tcp/127.0.0.1:5432", start + 302,
                    {"change": "appeared", "rule": "unreachable", "title": "127.0.0.1:5432 refuses"}))
    recorder.close()
    recording = Recording.load(tmp_path)
    app = create_app(AppConfig(targets=["127.0.0.1:5432"], live=False, replay=recording))
    launched = time.monotonic()
    async with app.run_test(size=(100, 30)) as pilot:
        player = app.replay
        # Plays the incident from its start, at 1x: never further in than the wall time since launch (a
        # loaded CI machine took 1.3 s to the first frame; a fixed bound of 1 s failed there).
        assert player is not None and start <= player.position <= start + (time.monotonic() - launched) + 0.1
        await pilot.pause(0.5)
        assert start + 0.3 < player.position <= start + (time.monotonic() - launched) + 0.1
        await pilot.press("space")
        paused_at = player.position
        await pilot.pause(0.3)
        assert player.paused and player.position == paused_at
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign", "greater_than_sign",
                          "greater_than_sign", "full_stop")
        assert abs(player.position - (paused_at + 310)) < 1e-6
        await pilot.pause(0.3)
        assert "REFUSED" in rows_text(app)["127.0.0.1:5432"]  # the pane shows minute 5, not the start
        await pilot.press("comma", "less_than_sign")
        assert abs(player.position - (paused_at + 240)) < 1e-6
        await pilot.press("j")
        await pilot.press(*"+00:30", "enter")
        assert abs(player.position - (start + 30)) < 1e-6
        await pilot.press("plus", "plus", "plus")
        assert player.speed == 10
        await pilot.press("minus")
        assert player.speed == 5
        scrubber = app.query_one(ReplayScrubber)
        state = scrubber.state()
        assert [(round(ts - start), kind) for ts, kind in state.marks] == [(302, "appeared")]
        await pilot.press("end")
        assert player.position == recording.end
        await pilot.press("space")  # at the end, play starts over
        assert player.position - recording.start < 5 and not player.paused


async def test_follow_shows_what_a_running_recorder_appends(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        target = f"127.0.0.1:{listener.getsockname()[1]}"
        run = subprocess.Popen([sys.executable, "-m", "console", "--json", "--duration", "9", "--record",
                                str(tmp_path / "live.jsonl.zst"), target], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        try:
            for _ in range(50):
                await asyncio.sleep(0.2)
                path = tmp_path / "live.jsonl.zst"
                if path.exists() and path.stat().st_size > 200:
                    break
            recording = Recording.load(tmp_path / "live.jsonl.zst", follow=True)
            first_end = recording.end
            app = create_app(AppConfig(targets=[target], live=False, replay=recording, replay_at=recording.end,
                                       replay_follow=True))
            async with app.run_test(size=(100, 30)) as pilot:
                assert app.replay is not None
                for _ in range(30):
                    await pilot.pause(0.2)
                    if recording.end > first_end + 2 and app.replay.position > first_end + 1.5:
                        break
                assert recording.end > first_end + 2  # new Samples came in while it ran
                assert app.replay.position > first_end + 1.5  # and the replay moved along with them
                assert "OK" in rows_text(app)[target]
        finally:
            run.wait(timeout=20)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""


def test_replay_json_of_a_real_run_is_the_stream_it_recorded(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        rec = tmp_path / "run.jsonl.zst"
        result = warroom("--json", "--duration", "2.5", "--record", str(rec), f"127.0.0.1:{listener.getsockname()[1]}",
                         "127.0.0.1:9")
    assert result.returncode == 0 and result.stderr == ""
    replayed = warroom("replay", str(rec), "--json")
    assert replayed.returncode == 0 and replayed.stderr == ""
    def split(lines: list[str]) -> tuple[list[str], set[str]]:
        tables = {line for line in lines if json.loads(line)["kind"] == "conns_table"}
        return sorted(line for line in lines if line not in tables), tables

    replayed_rest, replayed_tables = split(replayed.stdout.splitlines())
    streamed_rest, streamed_tables = split(result.stdout.splitlines())
    assert replayed_rest == streamed_rest
    assert replayed_tables and replayed_tables <= streamed_tables  # one socket table in 5 s, each exact
    kinds = {json.loads(line)["kind"] for line in replayed_rest}
    assert {"tcp", "pools", "system", "conns"} <= kinds


async def test_help_lists_the_replay_keys_in_a_replay(tmp_path: Path) -> None:
    from textual.widgets import Static

    from console.ui.recording_controls import REPLAY_BINDINGS
    from console.ui.screens import HelpScreen
    from probes.samples import Sample

    recorder = Recorder(tmp_path)
    recorder(Sample("tcp", "127.0.0.1:1", time.time() - 60, {"rtt_ms": 1.0}))
    recorder.close()
    app = create_app(AppConfig(live=False, replay=Recording.load(tmp_path)))
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one(Static).render())
        assert all(b.description in text for b in REPLAY_BINDINGS)
