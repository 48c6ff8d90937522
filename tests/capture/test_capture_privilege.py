"""Privilege pre-flight, checked by really dropping privileges: the probe runs as `nobody`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]

HUB_SCRIPT = """
import asyncio, json, socket
from console.engine.hub import Hub
from console.engine.store import Store
from probes.capture import capture_spec
from probes.runtime import ProbeSpec

async def main():
    listener = socket.socket()
    listener.bind(("127.83.5.10", 0))
    listener.listen(16)
    target = "127.83.5.10:%d" % listener.getsockname()[1]
    store = Store()
    hub = Hub(store, backoff_start=30)
    hub.start_probe(capture_spec("lo", "host 127.83.5.10"))
    hub.start_probe(ProbeSpec(kind="tcp", target=target, interval=0.3, timeout=1.0))
    await asyncio.sleep(1.5)
    await hub.stop()
    print(json.dumps([s.to_dict() for s in store]))

asyncio.run(main())
"""

CAPTURE_SCRIPT = """
import asyncio, sys
from probes.capture import capture_spec, stream

async def main():
    async for sample in stream(capture_spec("lo", "host 127.83.5.11", tcpdump=sys.argv[1])):
        print(sample.to_json(), flush=True)
        if not sample.ok or sample.fields["health"]["state"] == "listening":
            break

asyncio.run(main())
"""


def as_nobody(script: str, *args: str, keep_bounding: bool = False) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing"
    drop = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"]
    if not keep_bounding:
        drop.append("--bounding-set=-all")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT),
           "HOME": "/nonexistent"}
    return subprocess.run([setpriv, *drop, sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_without_cap_net_raw_the_capture_says_what_to_run_and_the_rest_runs() -> None:
    assert os.geteuid() == 0, "this test drops root privileges, so it must start as root"
    result = as_nobody(HUB_SCRIPT)
    assert result.returncode == 0, result.stderr
    samples = json.loads(result.stdout)
    captures = [s for s in samples if s["kind"] == "capture"]
    assert captures and all(s.get("error") == "permission" for s in captures)
    message = captures[0]["message"]
    tcpdump = os.path.realpath(shutil.which("tcpdump") or "tcpdump")
    assert f"sudo setcap cap_net_raw,cap_net_admin=eip {tcpdump}" in message
    assert "sudo warroom" in message and "remote host" in message
    assert "uid 65534" in message
    tcp = [s for s in samples if s["kind"] == "tcp"]
    assert len(tcp) >= 3 and all("error" not in s for s in tcp)  # the rest of the console kept working


@pytest.fixture
def tcpdump_with_caps() -> Iterator[str]:
    """A copy of tcpdump given CAP_NET_RAW by setcap (the fix the message proposes), removed afterwards."""
    setcap = shutil.which("setcap")
    assert setcap, "setcap is missing: scripts/apt.d/capture.txt lists libcap2-bin"
    directory = tempfile.mkdtemp(prefix="warroom-capture-")
    os.chmod(directory, 0o755)
    copy = os.path.join(directory, "tcpdump")
    shutil.copy2(shutil.which("tcpdump") or "/usr/bin/tcpdump", copy)
    os.chmod(copy, 0o755)
    subprocess.run([setcap, "cap_net_raw,cap_net_admin=eip", copy], check=True)
    try:
        yield copy
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_after_setcap_an_unprivileged_user_can_capture(tcpdump_with_caps: str) -> None:
    result = as_nobody(CAPTURE_SCRIPT, tcpdump_with_caps, keep_bounding=True)
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in last, last
    assert last["fields"]["health"]["state"] == "listening"
