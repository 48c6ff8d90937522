"""`warroom diagnose` as a script uses it, and the findings in `warroom --json`'s stream."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def warroom(*args: str, timeout: float = 40, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "console", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("args, says", [
    (["--pool", "orders"], "--pool"),
    (["host:99999"], "port 99999 is outside 1-65535"),
    (["127.0.0.1:1", "--duration", "0"], "--duration must be more than 0"),
    (["127.0.0.1:1", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    proc = warroom("diagnose", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and says in proc.stderr and "Traceback" not in proc.stderr


def test_text_report_names_the_cause_and_wraps_at_80_columns() -> None:
    target = f"127.0.0.1:{unused_port()}"
    proc = warroom("diagnose", target, "--duration", "3.5")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "\nTargets\n" in out and f"{target}: connection refused" in out
    for label in ("evidence:", "why:", "ruled out:", "next:"):
        assert f"    {label}" in out
    assert f"{target} from local · since " in out and "window 60 s" in out
    assert f"[Errno 111] Connect call failed ('127.0.0.1', {target.split(':')[1]})" in " ".join(out.split())
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    # A wrapped line continues under its text, indented past its label ("    why: ").
    why = next(i for i, line in enumerate(lines) if line.startswith("    why: "))
    assert lines[why + 1].startswith(" " * len("    why: ")) and lines[why + 1].strip()


def test_json_prints_one_object_per_finding_with_its_times() -> None:
    target = f"127.0.0.1:{unused_port()}"
    proc = warroom("diagnose", target, "--json", "--duration", "3.5")
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    top = records[0]
    assert {"target", "host", "severity", "confidence", "layer", "rule", "title", "evidence", "chain", "ruled_out",
            "window_s", "first_seen", "last_seen"} <= set(top)
    assert top["target"] == target and top["host"] == "local" and top["layer"] == "tcp"
    assert top["first_seen"] <= top["last_seen"] and 0 < top["first_top_s"] < 3.5


def test_the_json_stream_carries_findings_appearing() -> None:
    target = f"127.0.0.1:{unused_port()}"
    proc = warroom("--json", "--duration", "4", target)
    assert proc.returncode == 0, proc.stderr
    findings = [s for line in proc.stdout.splitlines() if (s := json.loads(line))["kind"] == "finding"]
    appeared = [s for s in findings if s["fields"]["change"] == "appeared" and s["target"] == target]
    assert appeared and appeared[0]["fields"]["layer"] == "tcp" and "refused" in appeared[0]["fields"]["title"]
    assert appeared[0]["fields"]["window_s"] == 60.0 and appeared[0]["fields"]["chain"]
