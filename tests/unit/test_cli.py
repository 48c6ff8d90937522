"""The command line as a script uses it: exit codes, one-line errors, the JSON stream."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from console import __version__

ROOT = Path(__file__).resolve().parents[2]


def warroom(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "console", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_version_and_help() -> None:
    assert warroom("--version").stdout.strip() == f"warroom {__version__}"
    help_text = warroom("--help").stdout
    for word in ("TARGET", "--json", "--duration", "demo", "check", "capture"):
        assert word in help_text


@pytest.mark.parametrize("args, says", [
    (["host:99999"], "port 99999 is outside 1-65535"),
    (["http//x"], "'http//x'"),
    ([""], "empty target"),
    (["--json", "--duration", "-1"], "--duration must be more than 0"),
    (["--nonsense"], "unrecognized arguments: --nonsense"),
    (["--theme", "pink", "127.0.0.1:1"], "unknown theme 'pink'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = warroom(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warroom: ") and says in lines[0]
    assert "Traceback" not in result.stderr


def test_json_stream_reports_refused_and_ok_targets(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        open_port = listener.getsockname()[1]
        with socket.socket() as probe_port:
            probe_port.bind(("127.0.0.1", 0))
            closed_port = probe_port.getsockname()[1]
        record = tmp_path / "rec.jsonl"
        result = warroom("--json", "--duration", "2.5", "--record", str(record),
                         f"127.0.0.1:{open_port}", f"127.0.0.1:{closed_port}")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_target: dict[str, list[dict]] = {}
    for line in lines:
        if line["kind"] == "tcp":
            by_target.setdefault(line["target"], []).append(line)
    ok = by_target[f"127.0.0.1:{open_port}"]
    refused = by_target[f"127.0.0.1:{closed_port}"]
    assert len(ok) >= 2 and all("error" not in s and s["fields"]["rtt_ms"] > 0 for s in ok)
    assert len(refused) >= 2 and all(s["error"] == "refused" for s in refused)
    assert any(s["kind"] == "system" for s in lines)
    # the recording holds exactly the streamed Samples, after its header (snapshots as changes: see the reader)
    assert json.loads(record.read_text().splitlines()[0])["recording"] == "warroom"
    from console.engine.recording import read_recording

    recorded, problems = read_recording(record)
    streamed = result.stdout.splitlines()
    assert problems.total == 0
    assert [s.to_json() for s in recorded if s.kind != "conns_table"] == [
        line for line in streamed if json.loads(line)["kind"] != "conns_table"]
    assert {s.to_json() for s in recorded if s.kind == "conns_table"} <= set(streamed)  # one in 5 s, exact


def test_no_arguments_probes_no_address() -> None:
    result = warroom("--json", "--duration", "2.5")
    samples = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {s["kind"] for s in samples}
    # Only host-wide readings of this machine (and findings about it): no sample names a target address.
    assert {"system", "conns"} <= kinds <= {"system", "conns", "conns_table", "pools", "finding"}
    assert all(s["target"] == "" for s in samples)


def test_unwritable_recording_is_one_line() -> None:
    result = warroom("--json", "--duration", "1", "--record", "/nonexistent/dir/rec.jsonl")
    assert result.returncode == 2
    assert result.stderr.startswith("warroom: cannot write the recording")
