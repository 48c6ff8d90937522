"""`warroom --incident NAME --no-record`: the checklist and timeline persist, the Sample recording does not,
and the incident's folder, list and report say so. The console runs on a real terminal (tmux, own socket)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from console.engine.recording import read_recording
from tests.recording.user_env import Tmux, UserEnv


def run_console(user: UserEnv, *args: str, screen_has: str, expect: str | None = None) -> str:
    """Start the console with ``args`` in a terminal, let it probe a little, quit with q; its last screen."""
    terminal = Tmux(width=160, height=40)
    try:
        terminal.start(user.command_line(*args))
        screen = terminal.wait_for("Targets", screen_has, timeout=40)
        time.sleep(2.5)  # a couple of probes of each target
        if expect is not None:
            assert expect in screen, screen
        terminal.keys("q")
        terminal.wait_exit()
        return screen
    finally:
        terminal.close()


def test_no_record_keeps_the_checklist_and_timeline_but_records_no_samples(tmp_path: Path) -> None:
    user = UserEnv(tmp_path / "user")
    folder = user.incidents / "lab-1"
    run_console(user, "--incident", "lab-1", "127.0.0.1:9", screen_has="127.0.0.1:9", expect="● REC")
    recording = folder / "recording.jsonl.zst"
    first, problems = read_recording(recording)
    assert first and problems.total == 0
    recorded_bytes = recording.read_bytes()

    screen = run_console(user, "--incident", "lab-1", "--no-record", screen_has="NOT RECORDING")
    assert "● REC" not in screen
    assert recording.read_bytes() == recorded_bytes and not list(folder.glob("recording.jsonl.zst.*"))
    assert user.run_folders() == [folder]  # and no automatic recording beside it either
    meta = json.loads((folder / "meta.json").read_text())
    assert [s["recorded"] for s in meta["sessions"]] == [True, False]
    timeline = json.loads((folder / "timeline.json").read_text())
    assert any("resumed" in e["text"] and "--no-record" in e["text"] for e in timeline)
    assert json.loads((folder / "checklist.json").read_text())  # the checklist is saved as before

    listing = user.run("incidents")
    row = next(line for line in listing.stdout.splitlines() if line.startswith("lab-1"))
    assert "(1 session not recorded)" in row
    report = user.run("report", "lab-1")
    assert report.returncode == 0, report.stderr
    assert "- recording: 1 of 2 sessions ran with --no-record" in report.stdout
    data = json.loads(user.run("report", "lab-1", "--json").stdout)
    assert data["recording"]["sessions"] == 2 and data["recording"]["not_recorded"] == 1


def test_an_incident_never_recorded_has_no_recording_and_its_report_says_why(tmp_path: Path) -> None:
    user = UserEnv(tmp_path / "user")
    user.config_file.parent.mkdir(parents=True)
    user.config_file.write_text("record = false\n")  # the config's way of saying --no-record
    run_console(user, "--incident", "quiet-1", "127.0.0.1:9", screen_has="NOT RECORDING")
    folder = user.incidents / "quiet-1"
    assert (folder / "meta.json").exists() and not list(folder.glob("recording*"))
    report = user.run("report", "quiet-1")
    assert report.returncode == 0, report.stderr
    assert "no Sample recording: every session ran with --no-record" in report.stdout
