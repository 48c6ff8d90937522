"""A recording replays through the same hub and store; bad lines are skipped, not fatal."""

from __future__ import annotations

import time
from pathlib import Path

from console.ui.app import AppConfig, create_app
from probes.samples import Sample
from tests.unit.test_cli import warroom
from widgets.target_row import TargetRow


def write_recording(path: Path, end: float) -> None:
    lines = [Sample("tcp", "127.0.0.1:9", end - 30 + i, {}, error="refused", message="Connect call failed").to_json()
             for i in range(30)]
    lines.insert(5, "this is not json")
    path.write_text("\n".join(lines) + "\n")


def test_replay_json_skips_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    write_recording(rec, time.time() - 3600)
    result = warroom("replay", str(rec), "--json")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 30
    assert result.stderr == f"warroom: {rec}: skipped 1 bad line: 1 not JSON (first: rec.jsonl line 6)\n"


def test_replay_of_nothing_is_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n")
    result = warroom("replay", str(empty))
    assert result.returncode == 2 and "holds no Samples" in result.stderr.splitlines()[-1]
    missing = warroom("replay", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read recording" in missing.stderr and "no such file" in missing.stderr


async def test_replayed_incident_shows_as_it_stood_at_the_end(tmp_path: Path) -> None:
    end = time.time() - 86400  # a day-old recording: outside any live 60 s window
    config = AppConfig(targets=["127.0.0.1:9"], live=False, replay_end=end, hostname="h")
    app = create_app(config)
    for i in range(30):
        app.hub.publish(Sample("tcp", "127.0.0.1:9", end - 30 + i, {}, error="refused", message="m"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        row = app.query_one(TargetRow)
        text = row.text
        assert "REFUSED" in text and "loss 100%" in text
        assert "REPLAY" in app.sub_title
