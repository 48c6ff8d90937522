"""ICMP echo: unprivileged where net.ipv4.ping_group_range allows, raw when privileged, one clear line otherwise.

ping_group_range is a per-namespace sysctl, so each test sets it inside its own
namespace and the machine's setting is never touched. The probe runs there in a
child process (tests/lab/probe_runner.py) that drops to uid/gid 65534 (nobody),
which also drops CAP_NET_RAW, when the test is about an unprivileged user.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from console.engine.hub import Hub
from console.engine.store import Store
from probes.icmp import ERROR_NOT_PERMITTED, _bpf_echo_filter, attach_filter, echo_request, parse_icmp
from probes.runtime import ProbeSpec
from probes.samples import Sample
from tests.lab.netns import Namespace

pytestmark = pytest.mark.system

RUNNER = str(Path(__file__).with_name("probe_runner.py"))
NOBODY = 65534


def run_probes(netns: Namespace, specs: list[ProbeSpec], *, count: int, seconds: float,
               unprivileged: bool) -> list[Sample]:
    args = [RUNNER, "--count", str(count), "--seconds", str(seconds)]
    if unprivileged:
        args += ["--uid", str(NOBODY), "--gid", str(NOBODY)]
    args += [json.dumps(spec.to_dict()) for spec in specs]
    proc = netns.python(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=seconds + 15)
    assert proc.returncode == 0, err.decode()
    return [Sample.from_json(line) for line in out.decode().splitlines()]


def icmp_spec(address: str) -> ProbeSpec:
    return ProbeSpec("icmp", address, interval=0.1, timeout=0.5)


def test_unprivileged_echo_where_sysctl_allows(netns: Namespace) -> None:
    netns.sysctl("net.ipv4.ping_group_range", f"{NOBODY} {NOBODY}")
    samples = run_probes(netns, [icmp_spec(netns.host_addr)], count=5, seconds=10, unprivileged=True)
    assert len(samples) == 5
    assert all(s.ok for s in samples), [s.message for s in samples]
    assert {s.fields["mode"] for s in samples} == {"dgram"}
    assert all(0 < float(s.fields["rtt_ms"]) < 50 for s in samples)


def test_unprivileged_without_sysctl_says_what_is_missing_and_tcp_keeps_going(netns: Namespace) -> None:
    netns.sysctl("net.ipv4.ping_group_range", "1 0")  # the kernel default: nobody may
    # A listener on our side of the link for the same target's TCP probe.
    with socket.create_server((netns.host_addr, 0)) as listener:
        port = listener.getsockname()[1]
        specs = [icmp_spec(netns.host_addr), ProbeSpec("tcp", f"{netns.host_addr}:{port}", interval=0.1, timeout=0.5)]
        samples = run_probes(netns, specs, count=5, seconds=3, unprivileged=True)
    icmp = [s for s in samples if s.kind == "icmp"]
    tcp = [s for s in samples if s.kind == "tcp"]
    assert len(icmp) == 1, "one clear line, not a stream of errors"
    assert icmp[0].error == ERROR_NOT_PERMITTED
    message = icmp[0].message or ""
    assert "net.ipv4.ping_group_range" in message and "CAP_NET_RAW" in message and "sysctl -w" in message
    assert f"{NOBODY}" in message  # names the group that needs to be in the range
    assert len(tcp) == 5 and all(s.ok for s in tcp), [s.message for s in tcp]


def test_privileged_uses_raw_socket_when_sysctl_forbids_dgram(netns: Namespace) -> None:
    netns.sysctl("net.ipv4.ping_group_range", "1 0")
    samples = run_probes(netns, [icmp_spec(netns.host_addr)], count=3, seconds=10, unprivileged=False)
    assert len(samples) == 3 and all(s.ok for s in samples), [s.message for s in samples]
    assert {s.fields["mode"] for s in samples} == {"raw"}


@pytest.mark.parametrize("unprivileged", [False, True], ids=["raw", "dgram"])
def test_host_unreachable_is_reported_as_unreachable(netns: Namespace, unprivileged: bool) -> None:
    """An ICMP host-unreachable answer to the echo becomes "unreachable", on both socket kinds."""
    netns.sysctl("net.ipv4.ping_group_range", f"{NOBODY} {NOBODY}" if unprivileged else "1 0")
    netns.reject_local_echo_unreachable()
    samples = run_probes(netns, [icmp_spec(netns.addr)], count=2, seconds=10, unprivileged=unprivileged)
    assert [s.error for s in samples] == ["unreachable", "unreachable"], [s.message for s in samples]
    assert {s.fields["mode"] for s in samples} == {"dgram" if unprivileged else "raw"}


async def test_drop_all_shows_as_timeouts_in_store_loss(netns: Namespace) -> None:
    """Lost echoes are timeout Samples, so the store's loss % counts them."""
    netns.drop_all()
    store = Store()
    hub = Hub(store)
    hub.start_probe(ProbeSpec("icmp", netns.addr, interval=0.1, timeout=0.2))
    for _ in range(50):
        if len(store) >= 3:
            break
        await asyncio.sleep(0.1)
    await hub.stop()
    (key,) = store.keys(kind="icmp")
    stats = store.stats(key, seconds=None)
    assert stats.count >= 3 and stats.loss_pct == 100.0
    assert stats.last_error == "timeout"


async def test_concurrent_echoes_share_one_socket_without_crossing_replies(netns: Namespace) -> None:
    """Probes of a slow and a fast target at once: each reply goes to its own echo.

    The process shares one ICMP socket per family between probes, so a reply
    handed to the wrong waiter would show the shaped 20 ms on the local target.
    """
    netns.shape(20.0, 0.0, 0.0)
    store = Store()
    hub = Hub(store)
    for target in (netns.addr, netns.host_addr, "127.0.0.1"):
        hub.start_probe(ProbeSpec("icmp", target, interval=0.05, timeout=0.5))
    for _ in range(60):
        if len(store.keys()) == 3 and all(len(store.series(k)) >= 10 for k in store.keys(kind="icmp")):
            break
        await asyncio.sleep(0.1)
    await hub.stop()
    by_target = {key[2]: store.values(key, "rtt_ms") for key in store.keys(kind="icmp")}
    assert all(len(v) >= 10 for v in by_target.values()), by_target
    # Crossed replies would put ~0 ms on the shaped target or >= 20 ms on the local ones;
    # the bounds leave room for a loaded machine and nothing more.
    assert all(19.0 <= v <= 200.0 for v in by_target[netns.addr]), by_target[netns.addr]
    assert all(v < 15.0 for v in by_target[netns.host_addr] + by_target["127.0.0.1"])


def echo_requests_received(netns: Namespace) -> int:
    """Echo requests the namespace's kernel has received (IcmpMsg InType8 of its /proc/net/snmp)."""
    lines = [line.split() for line in netns.run("cat", "/proc/net/snmp").stdout.splitlines()
             if line.startswith("IcmpMsg:")]
    if not lines:  # no ICMP message of any type counted yet
        return 0
    names, values = lines[0], lines[1]
    return int(values[names.index("InType8")]) if "InType8" in names else 0


async def echo_run(netns: Namespace, targets: list[str], samples_each: int) -> tuple[dict[str, list[float]], int]:
    """Run an icmp probe per target (10 Hz) until each has ``samples_each`` Samples: each target's
    round trips, and how many echo requests reached the namespace meanwhile."""
    before = echo_requests_received(netns)
    store = Store()
    hub = Hub(store)
    for target in targets:
        hub.start_probe(ProbeSpec("icmp", target, interval=0.1, timeout=0.5))
    for _ in range(100):
        keys = store.keys(kind="icmp")
        if len(keys) == len(targets) and all(len(store.series(k)) >= samples_each for k in keys):
            break
        await asyncio.sleep(0.05)
    await hub.stop()
    return ({key[2]: store.values(key, "rtt_ms") for key in store.keys(kind="icmp")},
            echo_requests_received(netns) - before)


async def test_targets_on_one_address_share_an_echo_and_a_lone_target_never_reuses_its_own(
        netns: Namespace) -> None:
    """A TCP target and a URL of the same backend: one echo a tick reaches it, not one per target.

    Counted where the echoes arrive (the namespace's own ICMP counters). A lone probe sends
    one echo per Sample, so its figures are always fresh."""
    netns.shape(5.0, 0.0, 0.0)  # a reply takes longer than the second probe's tick is late
    alone, sent_alone = await echo_run(netns, [netns.addr], 20)
    (rtts,) = alone.values()
    assert len(rtts) >= 20 and all(v >= 4.5 for v in rtts), rtts
    assert len(rtts) <= sent_alone <= len(rtts) + 2, (len(rtts), sent_alone)  # +2: one in flight at stop

    both, sent_both = await echo_run(netns, [netns.addr, f"{netns.addr}:5432"], 20)
    assert set(both) == {netns.addr, f"{netns.addr}:5432"}
    most = max(len(v) for v in both.values())
    assert all(len(v) >= 20 and all(x >= 4.5 for x in v) for v in both.values()), both
    # Shared: about one echo per tick for both targets (a tick apart at start or stop: a few more).
    assert most <= sent_both <= most + 4, (most, sent_both, {k: len(v) for k, v in both.items()})


async def test_a_lost_shared_echo_is_a_timeout_for_every_target_of_the_address(netns: Namespace) -> None:
    netns.drop_all()
    store = Store()
    hub = Hub(store)
    for target in (netns.addr, f"{netns.addr}:443"):
        hub.start_probe(ProbeSpec("icmp", target, interval=0.2, timeout=0.3))
    for _ in range(60):
        keys = store.keys(kind="icmp")
        if len(keys) == 2 and all(len(store.series(k)) >= 3 for k in keys):
            break
        await asyncio.sleep(0.1)
    await hub.stop()
    keys = store.keys(kind="icmp")
    assert len(keys) == 2
    for key in keys:
        stats = store.stats(key, seconds=None)
        assert stats.count >= 3 and stats.loss_pct == 100.0 and stats.last_error == "timeout", (key, stats)


def test_raw_socket_filter_lets_only_our_replies_in() -> None:
    """The BPF filter on a raw socket: other pings' replies and all requests stay in the kernel.

    Runs as root on the loopback: one raw socket sends echoes with two
    identifiers; the filtered socket must receive only the reply with its own.
    """
    ours, theirs = 0x4242, 0x1717
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as listener, \
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sender:
        assert attach_filter(listener, _bpf_echo_filter(ours, v6=False))
        listener.setblocking(False)
        sender.sendto(echo_request(theirs, 1, b"x" * 8), ("127.0.0.1", 0))
        sender.sendto(echo_request(ours, 2, b"x" * 8), ("127.0.0.1", 0))
        time.sleep(0.1)
        got = []
        while True:
            try:
                got.append(parse_icmp(listener.recv(2048), "raw", v6=False))
            except BlockingIOError:
                break
    assert got == [("reply", ours, 2)]
