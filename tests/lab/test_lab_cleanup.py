"""The lab leaves nothing behind: not after a failing test, not after a run that was killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.lab.netns import list_namespaces, run, sweep_stale

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent, the inner pytest, has exited too).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_failing_test_still_removes_namespace_rules_and_processes(tmp_path: Path) -> None:
    record = tmp_path / "made.json"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(f"""
        import json
        from tests.lab.fixtures import lab, lab_session, netns

        def test_fails_midway(netns):
            listener = netns.tcp_listener(8080)
            netns.shape(10.0, 0.0, 0.0)
            netns.drop_syn(8081)
            pids = [p.pid for p in netns.processes]
            pids += [int(p) for p in netns.run("ip", "netns", "pids", netns.name, check=False).stdout.split()]
            open({str(record)!r}, "w").write(json.dumps({{"name": netns.name, "pids": pids}}))
            assert False, "this test fails on purpose"
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    inner = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                            str(test_file)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert inner.returncode == 1, inner.stdout + inner.stderr
    assert "this test fails on purpose" in inner.stdout
    made = json.loads(record.read_text())
    assert made["name"] not in list_namespaces()
    assert len(made["pids"]) >= 2  # the listener and the delayer were running
    assert not [pid for pid in made["pids"] if alive(pid)]


def test_sweep_removes_namespaces_left_by_dead_runs() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"wr-{dead.pid}-1"
    run(["ip", "netns", "add", name])
    sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "60"])
    try:
        mine = f"wr-{os.getpid()}-999"
        run(["ip", "netns", "add", mine])
        try:
            removed = sweep_stale()
            assert name in removed and name not in list_namespaces()
            assert mine in list_namespaces(), "a live run's namespace must be left alone"
            assert sleeper.wait(timeout=5) != 0  # killed by the sweep
        finally:
            run(["ip", "netns", "del", mine], check=False)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        run(["ip", "netns", "del", name], check=False)
