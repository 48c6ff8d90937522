"""The agent ships only what its probes need, and sends snapshots as changes the console rebuilds exactly.

Against real sshd (tests/ssh/sshd_harness.py) where the link matters; the
delta round trip is also checked in-process over real socket tables, where
every rebuilt snapshot can be compared with the whole one it stands for.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from console.remote.host import RemoteHost
from console.remote.payload import build_payload, probe_modules
from console.settings.hosts import HostConfig
from probes import conns, pools
from probes.agent import Agent
from probes.runtime import ProbeSpec
from probes.samples import Sample
from tests.ssh.sshd_harness import Lab, agent_processes, fast_settings
from tests.ssh.test_ssh_hosts import states, take

pytestmark = pytest.mark.system


def names_in(payload: bytes) -> set[str]:
    return set(zipfile.ZipFile(io.BytesIO(payload)).namelist())


def test_payload_holds_the_agent_and_what_the_probes_import_only() -> None:
    small = names_in(build_payload((), ("tcp", "system")))
    assert {"probes/__init__.py", "probes/agent.py", "probes/tcp.py", "probes/system.py",
            "probes/runtime.py", "probes/samples.py", "probes/targets.py", "probes/snapshot_delta.py"} <= small
    # Nothing the requested probes do not import: no http, dns, capture, conns, nor dnspython.
    assert not small & {"probes/http.py", "probes/dns.py", "probes/capture.py", "probes/conns.py",
                        "probes/pcapstream.py"}
    assert not [n for n in small if n.startswith("dns/")]
    # Lazy imports count: conns imports sockdiag at the top, the psutil fallback inside a function.
    assert "sockdiag" in probe_modules(["conns"])
    every = build_payload(("dns",))
    assert len(build_payload((), ("tcp", "system"))) < len(every) / 5


def test_snapshots_rebuilt_from_the_agents_changes_equal_the_whole_ones() -> None:
    """Real socket tables and pool groups, taken a moment apart, through Agent(deltas) and the console's decoder."""
    lines: list[bytes] = []
    agent = Agent(lines.append, host="h", deltas=True)
    console = RemoteHost(HostConfig("h"), [])

    async def readings() -> list[Sample]:
        out: list[Sample] = []
        listeners = []
        watch = pools.PoolWatch()
        for i in range(6):
            out += await conns.measure("h")
            out.append(await pools.measure(watch, "h"))
            listener = socket.socket()  # the table changes between readings
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listeners.append(listener)
            if i == 3:
                listeners.pop(0).close()
            await asyncio.sleep(0.3)
        for listener in listeners:
            listener.close()
        return out

    whole = asyncio.run(readings())
    tables = [s for s in whole if s.kind == "conns_table"]
    assert len(tables) == 6
    rebuilt = []
    for sample in whole:
        lines.clear()
        agent.emit_sample(sample)
        (line,) = lines
        decoded = console._decode_line(line)
        assert decoded is not None and decoded.kind != "agent", decoded
        rebuilt.append((sample, decoded, b'"delta"' in line))
    for sample, decoded, _ in rebuilt:
        assert decoded.to_dict() == sample.to_dict()  # same values, types and order
    for kind in ("conns_table", "pools"):
        sent_as_changes = [was_delta for sample, _, was_delta in rebuilt if sample.kind == kind]
        assert sent_as_changes == [False] + [True] * 5, kind  # whole once, then changes


async def test_changes_travel_over_ssh_and_cost_less_than_the_tables(lab: Lab) -> None:
    remote = RemoteHost(HostConfig("prod-1"), [ProbeSpec("conns", interval=0.3)], fast_settings(lab))
    seen = await take(remote.stream(), lambda s: sum(x.kind == "conns_table" for x in s) >= 6)
    tables = [s for s in seen if s.kind == "conns_table"]
    assert all(s.host == "prod-1" and s.ok for s in tables)
    sshd = lab.hosts["prod-1"]
    for table in tables:  # every rebuilt table is a table: its own SSH session's socket is in it
        rows = table.fields["rows"]
        assert isinstance(rows, list) and any(f":{sshd.port}" in str(row[2]) for row in rows)
    whole = sum(len(s.to_json()) + 1 for s in seen if s.kind != "host_status")
    assert remote.bytes_received < whole * 0.7, (remote.bytes_received, whole)


async def respecified(lab: Lab, new_specs: list[ProbeSpec],
                      done: Callable[[Sample], bool]) -> tuple[RemoteHost, list[Sample]]:
    """Run tcp on prod-1, switch to ``new_specs`` at its first Sample, stop at the first Sample ``done`` accepts."""
    remote = RemoteHost(HostConfig("prod-1"), [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2)], fast_settings(lab))
    stream = remote.stream()
    seen: list[Sample] = []
    changed = False
    try:
        async with asyncio.timeout(20):
            async for sample in stream:
                seen.append(sample)
                if sample.kind == "tcp" and not changed:
                    remote.set_specs(new_specs)
                    changed = True
                if done(sample):
                    break
    finally:
        await stream.aclose()
    return remote, seen


async def test_a_new_kind_restarts_the_agent_on_the_same_connection(lab: Lab) -> None:
    # The agent was shipped with tcp only: system needs probes/system.py, which it lacks.
    remote, seen = await respecified(lab, [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2),
                                           ProbeSpec("system", interval=0.2)], lambda sample: sample.kind == "system")
    assert remote.connects == 1  # the same SSH connection: no reconnect, no backoff
    assert states(seen) == ["connecting", "connected", "connected"]  # a second agent said hello
    system = next(s for s in seen if s.kind == "system")
    assert system.ok or system.error == "unavailable", system  # it ran: not "no probe called system"
    assert "no probe called" not in (system.message or "")


async def test_a_target_that_is_a_name_restarts_an_agent_shipped_without_dnspython(lab: Lab) -> None:
    remote, seen = await respecified(lab, [ProbeSpec("tcp", "localhost:9", interval=0.2)],  # the hosts file's loopback
                                     lambda sample: sample.kind == "tcp" and sample.target == "localhost:9")
    assert remote.connects == 1
    assert states(seen) == ["connecting", "connected", "connected"]
    assert "package:dns" in remote._shipped  # the second agent came with dnspython


def _loads_ssl(pid: int) -> bool:
    """Whether the process has the ssl module's C part mapped (it is loaded once imported)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        return "/_ssl." in maps.read()


async def test_an_agent_for_probes_without_tls_starts_without_ssl_and_one_for_http_with_it(lab: Lab) -> None:
    """tcp alone never speaks TLS: its agent runs without ssl (less start-up CPU). Asked for http, the
    console starts an agent that has it, on the same connection, and the http probe works."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    sshd = lab.hosts["prod-1"]
    tcp = ProbeSpec("tcp", "127.0.0.1:9", interval=0.2)
    remote = RemoteHost(HostConfig("prod-1"), [tcp], fast_settings(lab))
    stream = remote.stream()
    seen: list[Sample] = []
    ssl_before: list[bool] = []
    ssl_after: list[bool] = []
    try:
        async with asyncio.timeout(20):
            async for sample in stream:
                seen.append(sample)
                if sample.kind == "tcp" and not ssl_before:
                    ssl_before = [_loads_ssl(agent.pid) for agent in agent_processes(sshd.addr, sshd.port)]
                    remote.set_specs([tcp, ProbeSpec("http", url, interval=0.2)])
                if sample.kind == "http":
                    ssl_after = [_loads_ssl(agent.pid) for agent in agent_processes(sshd.addr, sshd.port)]
                    break
    finally:
        await stream.aclose()
        server.shutdown()
        server.server_close()
    assert ssl_before == [False] and ssl_after == [True]  # one agent each time, the second with ssl
    assert remote.connects == 1 and states(seen) == ["connecting", "connected", "connected"]
    http_sample = next(s for s in seen if s.kind == "http")
    assert http_sample.ok and http_sample.fields["status"] == 200, http_sample.message


async def test_http_runs_on_a_host_without_h11_installed(lab: Lab) -> None:
    """The http probe speaks HTTP/1.1 through h11, which a production host rarely has: it travels.

    The host's python runs with -I -S, so nothing of this machine's site-packages is importable
    there: only what the payload carried."""
    import http.server
    import sys
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        remote = RemoteHost(HostConfig("prod-1", python=f"{sys.executable} -I -S"),
                            [ProbeSpec("http", url, interval=0.3)], fast_settings(lab))
        seen = await take(remote.stream(), lambda s: any(x.kind == "http" for x in s))
    finally:
        server.shutdown()
        server.server_close()
    http_sample = next(s for s in seen if s.kind == "http")
    assert http_sample.ok, http_sample.message  # not "unavailable: missing module h11"
    assert http_sample.fields["status"] == 200
    assert "package:h11" in remote._shipped


async def first_psutil_sample(lab: Lab, python: str) -> Sample:
    """The first Sample of a probe that needs psutil from the host's site-packages (the socket table read
    through psutil, the fallback of a host without netlink or ss), from prod-1's agent run on ``python``."""
    spec = ProbeSpec("conns", interval=0.3, options={"method": "psutil", "table": False})
    remote = RemoteHost(HostConfig("prod-1", python=python), [spec], fast_settings(lab))
    seen = await take(remote.stream(), lambda s: any(x.kind == "conns" for x in s))
    return next(s for s in seen if s.kind == "conns")


def _pth_that_leaves_a_mark(site_packages: Path) -> Path:
    ran = site_packages.parent / "pth-ran"
    site_packages.mkdir(parents=True, exist_ok=True)
    (site_packages / "mark.pth").write_text(f"import pathlib; pathlib.Path({str(ran)!r}).touch()\n")
    return ran


async def test_the_agent_runs_no_pth_file_of_the_host(lab: Lab, tmp_path: Path) -> None:
    """A .pth line is code a host's Python runs at every start: the agent finds psutil without running any.

    The host's user site-packages (PYTHONUSERBASE here) has a .pth that leaves a file when it runs."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    ran = _pth_that_leaves_a_mark(tmp_path / "lib" / version / "site-packages")
    python = f"env PYTHONUSERBASE={tmp_path} {sys.executable}"
    conns = await first_psutil_sample(lab, python)
    assert conns.ok and conns.fields["source"] == "psutil", conns.message  # found without site's start-up
    assert not ran.exists()
    started = subprocess.run([*python.split(), "-c", "pass"], check=True)  # the same python, started plainly
    assert started.returncode == 0 and ran.exists()  # does run it: the test's .pth works


async def test_a_venv_python_on_the_host_gets_its_own_packages(lab: Lab, tmp_path: Path) -> None:
    """In a venv only site knows where the packages are (here psutil only through a .pth line): it runs as usual."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    extra = venv / "extra"
    extra.mkdir()
    (extra / "psutil").symlink_to(Path(psutil.__file__).parent)
    (site_packages / "extra.pth").write_text(f"{extra}\n")
    conns = await first_psutil_sample(lab, str(venv / "bin" / "python"))
    assert conns.ok and conns.fields["source"] == "psutil", conns.message  # not "No module named 'psutil'"


def test_request_asks_for_deltas() -> None:
    from console.remote.payload import request_line

    assert json.loads(request_line("h", [], deltas=True))["deltas"] is True


