"""A host behind the lab's shaped link: sshd inside a network namespace, 40 ms added on the way in.

The target is a listener in this (root) namespace on the link's root-side
address. The console reaches it over its own loopback path (no delay); the host
in the namespace reaches it over the veth link, where every packet entering the
namespace (the SYN-ACK among them) is held 40 ms. So the host's handshake RTT
is really ~40 ms longer, and a firewall rule inside the namespace fails the
target from that host only.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from console.diagnosis.registry import diagnose
from console.engine.hub import Hub, ProbeLoop
from console.engine.store import Store
from console.remote.host import RemoteHost
from console.settings.hosts import parse_host_arg
from probes.runtime import ProbeSpec
from probes.samples import LOCAL_HOST
from tests.lab.fixtures import lab_session  # noqa: F401 - a fixture, used by name
from tests.lab.netns import Lab as NetLab
from tests.lab.netns import Namespace
from tests.ssh.sshd_harness import SSHD, Lab, Sshd, fast_settings, keygen
from widgets.vantage_table import vantage_rows

pytestmark = pytest.mark.system
DELAY_MS = 40.0
INTERVAL = 0.3


@pytest.fixture
def shaped_host(lab_session: None, fresh_lab: Lab) -> Iterator[tuple[Namespace, Sshd]]:  # noqa: F811
    """sshd (host "shaped") inside a fresh namespace whose inbound link is delayed DELAY_MS."""
    net = NetLab()
    try:
        ns = net.namespace()
        workdir = fresh_lab.root / "shaped"
        workdir.mkdir()
        sshd = Sshd(workdir=workdir, addr=ns.addr, port=22, host_key=keygen(workdir / "host_key"),
                    authorized_keys=fresh_lab.root / "authorized_keys")
        fresh_lab.hosts["shaped"] = sshd
        fresh_lab.trust("shaped")
        fresh_lab.write_ssh_config()
        sshd.write_config()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        # `ip netns exec` execs sshd, so this pid is sshd's own: fresh_lab.stop() kills it and its sessions.
        sshd.proc = ns.popen([SSHD, "-D", "-e", "-f", str(sshd.config_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((ns.addr, 22), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        ns.shape(delay_ms=DELAY_MS)
        yield ns, sshd
    finally:
        net.close()


@pytest.fixture
def target(shaped_host: tuple[Namespace, Sshd]) -> Iterator[str]:
    """A listener on the link's root-side address: the backend both vantage points probe."""
    ns, _ = shaped_host
    with socket.socket() as srv:
        srv.bind((ns.host_addr, 0))
        srv.listen(1024)  # connects only: the kernel completes the handshakes
        yield f"{ns.host_addr}:{srv.getsockname()[1]}"


@pytest.fixture
async def hub() -> AsyncIterator[tuple[Hub, Store]]:
    store = Store()
    loop = ProbeLoop()
    hub = Hub(store, probe_loop=loop)
    try:
        yield hub, store
    finally:
        await hub.stop()
        loop.close()


async def wait_for(predicate: object, timeout: float, what: str, store: Store) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            seen = {key: store.last(key) for key in store.keys(None)}
            raise AssertionError(f"timed out waiting for {what}; last samples: {seen}")
        await asyncio.sleep(0.1)


async def test_shaped_host_sees_the_delay_and_only_it_fails_behind_its_firewall(
        fresh_lab: Lab, shaped_host: tuple[Namespace, Sshd], target: str, hub: tuple[Hub, Store]) -> None:
    ns, _ = shaped_host
    the_hub, store = hub
    spec = ProbeSpec("tcp", target, interval=INTERVAL, timeout=2.0)
    the_hub.start_probe(spec)
    remote = RemoteHost(parse_host_arg("shaped"), [spec], fast_settings(fresh_lab))
    the_hub.add_stream("ssh:shaped", remote.stream, kind="host_status")
    local_key, remote_key = (LOCAL_HOST, "tcp", target), ("shaped", "tcp", target)

    def ok_count(key: tuple[str, str, str]) -> int:
        return sum(1 for s in store.series(key) if s.ok)

    await wait_for(lambda: ok_count(remote_key) >= 8 and ok_count(local_key) >= 8, 20, "8 connects from each", store)
    local, far = store.stats(local_key), store.stats(remote_key)
    assert local.loss_pct == 0 and far.loss_pct == 0
    assert local.p50 is not None and far.p50 is not None
    print(f"tcp rtt p50: local {local.p50:.3f} ms, shaped {far.p50:.3f} ms over {far.count} connects")
    assert local.p50 < 5.0, local  # this host: its own stack, no shaping on the way
    assert DELAY_MS * 0.9 <= far.p50 <= DELAY_MS * 2, far  # the host: the SYN-ACK waited 40 ms on the link
    hosts, rows = vantage_rows(store, "tcp")
    row = next(r for r in rows if r.target == target)
    assert hosts == [LOCAL_HOST, "shaped"] and row.only == ()
    assert row.cells["shaped"].p50 is not None and row.cells[LOCAL_HOST].p50 is not None
    assert row.cells["shaped"].p50 - row.cells[LOCAL_HOST].p50 >= DELAY_MS * 0.9
    assert not [f for f in diagnose(store) if f.rule == "only_some_vantage_points_fail"]

    # A firewall rule on the host only: its connects to the target are rejected, the console's are not.
    ns.iptables("-A", "OUTPUT", "-p", "tcp", "-d", target.split(":")[0], "--dport", target.split(":")[1],
                "-j", "REJECT", "--reject-with", "tcp-reset")

    def finding() -> list[object]:
        return [f for f in diagnose(store) if f.rule == "only_some_vantage_points_fail"]

    await wait_for(lambda: bool(finding()), 20, "the only-some-vantage-points finding", store)
    found = finding()[0]
    assert found.title == f"{target} fails only from shaped; {LOCAL_HOST} reach it"  # type: ignore[attr-defined]
    assert "refused" in " ".join(found.evidence)  # type: ignore[attr-defined]
    _, rows = vantage_rows(store, "tcp")
    assert next(r for r in rows if r.target == target).only == ("shaped",)
    assert store.stats(local_key).loss_pct == 0
