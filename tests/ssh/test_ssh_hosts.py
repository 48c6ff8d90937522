"""Against real sshd: agent sessions, no-python hosts, ProxyJump, host keys, auth, reconnects, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from console.engine.hub import Hub
from console.engine.store import Store
from console.remote.host import RemoteHost, connect, remote_capture
from console.settings.hosts import HostConfig
from probes.runtime import ProbeSpec
from probes.samples import Sample
from tests.ssh.sshd_harness import Lab, agent_processes, fast_settings, fingerprint, keygen

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parents[2]


async def take(stream: AsyncIterator[Sample], until: Callable[[list[Sample]], bool], timeout: float = 15
               ) -> list[Sample]:
    """Samples from ``stream`` until ``until(seen)`` holds; fails the test after ``timeout`` s."""
    seen: list[Sample] = []

    async def run() -> None:
        async for sample in stream:
            seen.append(sample)
            if until(seen):
                return

    try:
        await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"condition not met in {timeout} s; saw {[(s.kind, s.error, s.message) for s in seen][-8:]}")
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return seen


def states(samples: list[Sample]) -> list[str]:
    return [str(s.fields["state"]) for s in samples if s.kind == "host_status"]


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


# ---------------------------------------------------------------- running probes there

async def test_agent_host_streams_samples_under_its_own_name(lab: Lab) -> None:
    sshd = lab.hosts["prod-1"]
    target = f"{sshd.addr}:{sshd.port}"
    remote = RemoteHost(HostConfig("prod-1"), [ProbeSpec("tcp", target, interval=0.3),
                                               ProbeSpec("system", interval=0.3)], fast_settings(lab))
    agent_seen: list[psutil.Process] = []
    fds: list[str] = []

    def enough(seen: list[Sample]) -> bool:
        if not agent_seen:
            agent_seen.extend(agent_processes(sshd.addr, sshd.port))
            if agent_seen:  # while it runs: what is it, and what does it have open?
                fds.append(" ".join(agent_seen[0].cmdline()))
                fd_dir = f"/proc/{agent_seen[0].pid}/fd"
                for fd in os.listdir(fd_dir):
                    with contextlib.suppress(FileNotFoundError):  # a probe's socket, closed meanwhile
                        fds.append(os.readlink(f"{fd_dir}/{fd}"))
        return sum(s.kind == "tcp" for s in seen) >= 2 and any(s.kind == "system" for s in seen)

    seen = await take(remote.stream(), enough)
    assert states(seen)[:2] == ["connecting", "connected"]
    tcp = [s for s in seen if s.kind == "tcp"]
    assert all(s.host == "prod-1" and s.ok and isinstance(s.fields["rtt_ms"], float) for s in tcp)
    system = next(s for s in seen if s.kind == "system")
    assert system.ok and system.fields["cpu_count"] == psutil.cpu_count()
    # The agent ran from memory: its code is a memfd, nothing on the host's disk.
    assert agent_seen, "no agent process was found on the host while samples flowed"
    assert "warroom-agent" in fds[0] and len(agent_seen) == 1  # one process: the shells exec'd into python
    assert "/memfd:warroom-agent (deleted)" in fds, fds
    assert not [f for f in fds if f.endswith((".py", ".zip", ".pyz"))]
    assert wait_until(lambda: not agent_processes(sshd.addr, sshd.port), 5), "agent left behind after close"


async def test_a_host_python_without_psutil_still_reads_the_host(lab: Lab) -> None:
    """A production host's python3 often has no psutil, and nothing can be installed there: the System
    pane's figures come from /proc, the same as psutil gives them."""
    remote = RemoteHost(HostConfig("prod-1", python="python3 -S"),  # -S: no site-packages, no psutil
                        [ProbeSpec("system", interval=0.3), ProbeSpec("tcp", "127.0.0.1:9", interval=0.3)],
                        fast_settings(lab))
    seen = await take(remote.stream(), lambda s: any(x.kind == "system" for x in s) and
                      any(x.kind == "tcp" for x in s))
    system = next(s for s in seen if s.kind == "system")
    assert system.ok, system.message
    assert system.fields["cpu_count"] == psutil.cpu_count()
    assert system.fields["mem_total_mb"] == round(psutil.virtual_memory().total / 1048576, 1)
    assert abs(float(system.fields["mem_percent"]) - psutil.virtual_memory().percent) < 5  # type: ignore[arg-type]
    assert system.fields["top"] and system.fields["procs"]
    assert next(s for s in seen if s.kind == "tcp").error == "refused"


async def test_host_without_python_gets_connections_from_ss(lab: Lab) -> None:
    sshd = lab.hosts["nopy"]
    remote = RemoteHost(HostConfig("nopy"), [ProbeSpec("conns", interval=0.3), ProbeSpec("tcp", "127.0.0.1:9")],
                        fast_settings(lab))
    seen = await take(remote.stream(), lambda s: sum(x.kind == "conns_table" for x in s) >= 2)
    status = next(s for s in seen if s.kind == "host_status" and s.fields["state"] == "connected")
    assert status.fields["mode"] == "ss" and "no python3" in str(status.fields["detail"])
    tcp = next(s for s in seen if s.kind == "tcp")
    assert tcp.error == "unavailable" and "no python3" in str(tcp.message)
    summary = [s for s in seen if s.kind == "conns"][-1]
    assert summary.fields["source"] == "ss-remote" and sshd.port in summary.fields["listen_ports"]  # type: ignore[operator]
    table = [s for s in seen if s.kind == "conns_table"][-1]
    rows = [dict(zip(table.fields["columns"], r, strict=True)) for r in table.fields["rows"]]  # type: ignore[arg-type,call-overload]
    # The host's own sshd listener is in the table, with its owner (we are root there).
    listener = [r for r in rows if r["local"] == f"{sshd.addr}:{sshd.port}" and r["state"] == "LISTEN"]
    assert listener and listener[0]["process"] == "sshd"
    assert wait_until(lambda: not agent_processes(sshd.addr, sshd.port), 5), "ss loop left behind after close"


async def test_proxyjump_from_ssh_config(lab: Lab) -> None:
    bastion = lab.hosts["bastion"]
    remote = RemoteHost(HostConfig("behind"), [ProbeSpec("tcp", "127.0.0.1:9", interval=0.3)], fast_settings(lab))
    through_bastion: list[int] = []

    def enough(seen: list[Sample]) -> bool:
        through_bastion.extend(bastion.session_pids())
        return any(s.kind == "tcp" for s in seen)

    seen = await take(remote.stream(), enough)
    assert next(s for s in seen if s.kind == "tcp").host == "behind"
    assert through_bastion, "the connection to 'behind' did not go through the bastion's sshd"


# ---------------------------------------------------------------- host keys and auth

async def test_unknown_host_key_is_refused_with_its_fingerprint(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("newbox", "127.0.0.6", trust=False)
    remote = RemoteHost(HostConfig("newbox"), [ProbeSpec("tcp", "127.0.0.1:9")], fast_settings(fresh_lab))
    seen = await take(remote.stream(), lambda s: states(s)[-1:] == ["host_key_unknown"])
    status = seen[-1]
    expected = fingerprint(Path(str(sshd.host_key) + ".pub"))
    assert status.error == "host_key_unknown" and status.fields["fingerprint"] == expected
    assert expected in str(status.message) and "--accept-new-host-keys" in str(status.message)
    assert "\n" not in str(status.message)
    assert fresh_lab.known_hosts.read_text() == ""  # nothing was accepted silently
    assert remote.state == "host_key_unknown"


async def test_changed_host_key_is_refused_even_with_accept_new(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("rebuilt", "127.0.0.7")  # known_hosts has its key ...
    old = fingerprint(Path(str(sshd.host_key) + ".pub"))
    sshd.kill_all()
    keygen(sshd.workdir / "new_key")  # ... and now it comes back with another one
    sshd.host_key = sshd.workdir / "new_key"
    sshd.start()
    before = fresh_lab.known_hosts.read_text()
    remote = RemoteHost(HostConfig("rebuilt"), [ProbeSpec("tcp", "127.0.0.1:9")],
                        fast_settings(fresh_lab, accept_new_host_keys=True))
    seen = await take(remote.stream(), lambda s: states(s)[-1:] == ["host_key_changed"])
    message = str(seen[-1].message)
    assert fingerprint(sshd.workdir / "new_key.pub") in message and old in message
    assert "ssh-keygen -R" in message
    assert fresh_lab.known_hosts.read_text() == before


async def test_accept_new_records_the_key_and_later_runs_trust_it(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("fresh", "127.0.0.8", trust=False)
    settings = fast_settings(fresh_lab, accept_new_host_keys=True)
    spec = [ProbeSpec("tcp", "127.0.0.1:9", interval=0.3)]
    seen = await take(RemoteHost(HostConfig("fresh"), spec, settings).stream(),
                      lambda s: any(x.kind == "tcp" for x in s))
    connected = next(s for s in seen if s.kind == "host_status" and s.fields["state"] == "connected")
    assert connected.fields["accepted_key"] == fingerprint(Path(str(sshd.host_key) + ".pub"))
    line = fresh_lab.known_hosts.read_text().split()
    host_pub = Path(str(sshd.host_key) + ".pub").read_text().split()
    assert line[0] == f"[{sshd.addr}]:{sshd.port}" and line[1:3] == host_pub[:2]
    # Strict again: the recorded key is now simply known.
    seen = await take(RemoteHost(HostConfig("fresh"), spec, fast_settings(fresh_lab)).stream(),
                      lambda s: any(x.kind == "tcp" for x in s))
    assert "connected" in states(seen)


async def test_wrong_key_is_auth_failed_and_not_retried(fresh_lab: Lab, tmp_path: Path) -> None:
    fresh_lab.add("locked", "127.0.0.9")
    stranger = keygen(tmp_path / "stranger")
    config = tmp_path / "ssh_config"
    config.write_text(fresh_lab.ssh_config.read_text().replace(str(fresh_lab.client_key), str(stranger)))
    remote = RemoteHost(HostConfig("locked"), [ProbeSpec("tcp", "127.0.0.1:9")],
                        fast_settings(fresh_lab, ssh_config=(str(config),)))
    stream = remote.stream()
    seen = await take(stream, lambda s: states(s)[-1:] == ["auth_failed"])
    assert "authentication to root@locked failed" in str(seen[-1].message)
    assert states(seen).count("connecting") == 1


# ---------------------------------------------------------------- drops, reconnects, cleanup

async def test_sshd_killed_mid_session_reconnects_and_keeps_earlier_samples(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("flaky", "127.0.0.10")
    store = Store()
    hub = Hub(store)
    remote = RemoteHost(HostConfig("flaky"), [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2)],
                        fast_settings(fresh_lab))
    hub.add_stream("ssh:flaky", remote.stream, kind="host_status")
    key = ("flaky", "tcp", "127.0.0.1:9")

    async def until(check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out; host state {remote.state}"
            await asyncio.sleep(0.05)

    try:
        await until(lambda: len(store.series(key)) >= 3, 10)
        before = list(store.series(key))
        sshd.kill_all()
        await until(lambda: remote.state == "reconnecting", 10)
        status = store.last(("flaky", "host_status", ""))
        assert status is not None and isinstance(status.fields.get("retry_in"), float)
        assert "reconnecting in" in str(status.message)
        await asyncio.sleep(1.0)  # a failed attempt or two while the host is down
        sshd.start()
        count = len(store.series(key))
        await until(lambda: remote.state == "connected" and len(store.series(key)) > count + 2, 15)
        assert remote.connects == 2
        assert list(store.series(key))[:len(before)] == before  # nothing from before the drop was lost
        history = [s.fields["state"] for s in store.series(("flaky", "host_status", ""))]
        assert history.index("reconnecting") < len(history) - 1 - history[::-1].index("connected")
    finally:
        await hub.stop()
    assert wait_until(lambda: not agent_processes(sshd.addr, sshd.port), 5)


def test_console_killed_with_sigkill_leaves_no_agent_on_the_host(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("victim", "127.0.0.11")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "--host", "victim", "--json",
                             "--ssh-config", str(fresh_lab.ssh_config), "--interval", "0.3", "127.0.0.1:9"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = json.loads(proc.stdout.readline())
            if line["kind"] == "tcp":
                break
        else:
            pytest.fail("no tcp sample from the host")
        assert agent_processes(sshd.addr, sshd.port), "the agent should be running on the host"
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert wait_until(lambda: not agent_processes(sshd.addr, sshd.port), 5), \
            f"left on the host: {[p.cmdline() for p in agent_processes(sshd.addr, sshd.port)]}"
    finally:
        proc.kill()
        proc.wait(5)


async def test_link_drop_on_the_host_side_leaves_no_agent(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("dropper", "127.0.0.12")
    remote = RemoteHost(HostConfig("dropper"), [ProbeSpec("tcp", "127.0.0.1:9", interval=0.3)],
                        fast_settings(fresh_lab))
    stream = remote.stream()
    seen: list[Sample] = []
    async for sample in stream:
        seen.append(sample)
        if sample.kind == "tcp":
            break
    agents = agent_processes(sshd.addr, sshd.port)
    assert agents
    for pid in sshd.session_pids():  # the session's sshd dies; the console is still up
        os.kill(pid, signal.SIGKILL)
    gone = await asyncio.to_thread(wait_until, lambda: not any(p.is_running() for p in agents), 5)
    async for sample in stream:  # the console notices and starts reconnecting
        if sample.kind == "host_status" and sample.fields["state"] == "reconnecting":
            break
    await stream.aclose()
    assert gone, "agent left behind after its sshd session died"


# ---------------------------------------------------------------- hostile input and remote capture

async def test_hostile_targets_reach_the_host_as_data(lab: Lab) -> None:
    marker = Path("/tmp/warroom-pwned")
    marker.unlink(missing_ok=True)
    hostile = ["127.0.0.1:9; touch /tmp/warroom-pwned", "$(touch /tmp/warroom-pwned):80",
               "`touch /tmp/warroom-pwned`", "a'b\"c:1", "x\ntouch /tmp/warroom-pwned"]
    specs = [ProbeSpec("tcp", t) for t in hostile]
    for host in ("prod-1", "nopy"):
        remote = RemoteHost(HostConfig(host), specs, fast_settings(lab))
        seen = await take(remote.stream(), lambda s: {x.target for x in s if x.kind == "tcp"} == set(hostile))
        assert all(s.error for s in seen if s.kind == "tcp")
        assert {s.target for s in seen if s.kind == "tcp"} == set(hostile)  # echoed back unchanged
    assert not marker.exists()


async def test_remote_capture_streams_pcap_and_excludes_our_own_session(lab: Lab) -> None:
    sshd = lab.hosts["prod-1"]
    connection = await connect(HostConfig("prod-1"), fast_settings(lab))
    try:
        # Traffic to a port nobody listens on: RSTs on lo, 4 packets for 2 connects.
        async def traffic() -> None:
            for _ in range(20):
                await asyncio.sleep(0.2)
                try:
                    await asyncio.open_connection("127.0.0.1", 9)
                except OSError:
                    pass

        task = asyncio.get_running_loop().create_task(traffic())
        data = b"".join([c async for c in remote_capture(connection.conn, interface="lo", bpf="tcp port 9",
                                                         count=4, seconds=8)])
        task.cancel()
        assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")  # a pcap stream
        assert len(data) > 24 + 4 * 16  # header plus four packet records
        # Only our own SSH session matches this filter, and it is excluded: header only.
        data = b"".join([c async for c in remote_capture(connection.conn, interface="lo",
                                                         bpf=f"tcp port {sshd.port}", count=5, seconds=1.5)])
        assert len(data) == 24
        # Whereas another SSH session to the same sshd is captured by the same filter.
        other = await connect(HostConfig("prod-1"), fast_settings(lab))

        async def chatter() -> None:
            for _ in range(10):
                await other.conn.run("true")

        task = asyncio.get_running_loop().create_task(chatter())
        data = b"".join([c async for c in remote_capture(connection.conn, interface="lo",
                                                         bpf=f"tcp port {sshd.port}", count=5, seconds=5)])
        await task
        other.close()
        assert len(data) > 24 + 5 * 16
    finally:
        connection.close()


async def test_remote_capture_is_stopped_when_we_go_away(lab: Lab) -> None:
    sshd = lab.hosts["prod-1"]
    connection = await connect(HostConfig("prod-1"), fast_settings(lab))
    stream = remote_capture(connection.conn, interface="lo", bpf="tcp port 9", count=100000, seconds=60)
    try:
        await asyncio.wait_for(stream.__anext__(), 5)  # the pcap header: tcpdump is running
        assert any("tcpdump" in " ".join(p.cmdline()) for p in agent_processes(sshd.addr, sshd.port))
    finally:
        await stream.aclose()
        connection.close()
    assert await asyncio.to_thread(wait_until, lambda: not agent_processes(sshd.addr, sshd.port), 5)


async def test_capture_failure_says_what_tcpdump_said(lab: Lab) -> None:
    from console.remote.host import RemoteCaptureError

    connection = await connect(HostConfig("prod-1"), fast_settings(lab))
    try:
        with pytest.raises(RemoteCaptureError) as info:
            async for _ in remote_capture(connection.conn, interface="lo", bpf="tcp port $(touch /tmp/x)",
                                          count=1, seconds=2):
                pass
        assert "tcpdump failed" in str(info.value) and "syntax error" in str(info.value)
    finally:
        connection.close()


async def test_specs_change_on_a_live_agent_and_capture_uses_the_same_link(lab: Lab) -> None:
    remote = RemoteHost(HostConfig("prod-1"), [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2)], fast_settings(lab))
    stream = remote.stream()
    seen: list[Sample] = []
    changed = False
    async for sample in stream:
        seen.append(sample)
        if sample.kind == "tcp" and not changed:
            remote.set_specs([ProbeSpec("tcp", "127.0.0.1:7", interval=0.2)])
            changed = True
            # While connected, a capture runs over the same SSH connection.
            data = b"".join([c async for c in remote.capture(interface="lo", bpf="tcp port 1", count=1,
                                                             seconds=0.5)])
            assert len(data) == 24
        if sample.kind == "tcp" and sample.target == "127.0.0.1:7":
            break
    await stream.aclose()
    assert remote.connects == 1  # no reconnect was needed
    assert states(seen) == ["connecting", "connected"]


async def test_authenticates_with_the_ssh_agent(fresh_lab: Lab, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_lab.add("agentauth", "127.0.0.14")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        assert wait_until(sock.exists, 5)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(fresh_lab.client_key)], env=env, check=True, capture_output=True)
        config = tmp_path / "ssh_config"  # no IdentityFile: only the agent holds the key
        config.write_text("\n".join(line for line in fresh_lab.ssh_config.read_text().splitlines()
                                    if "IdentityFile" not in line) + "\n")
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* keys to fall back on
        remote = RemoteHost(HostConfig("agentauth"), [ProbeSpec("tcp", "127.0.0.1:9", interval=0.3)],
                            fast_settings(fresh_lab, ssh_config=(str(config),)))
        seen = await take(remote.stream(), lambda s: any(x.kind == "tcp" for x in s))
        assert "connected" in states(seen)
    finally:
        agent.terminate()
        agent.wait(5)


async def test_unknown_jump_host_key_names_the_jump_host(fresh_lab: Lab) -> None:
    jump = fresh_lab.add("jumpbox", "127.0.0.17", trust=False)
    fresh_lab.add("inner", "127.0.0.18", jump="jumpbox")
    remote = RemoteHost(HostConfig("inner"), [ProbeSpec("tcp", "127.0.0.1:9")], fast_settings(fresh_lab))
    seen = await take(remote.stream(), lambda s: states(s)[-1:] == ["host_key_unknown"])
    message = str(seen[-1].message)
    assert message.startswith("jump host jumpbox for inner: host key for")
    assert fingerprint(Path(str(jump.host_key) + ".pub")) in message
