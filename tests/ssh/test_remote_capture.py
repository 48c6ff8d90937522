"""A capture on an SSH host as a hub stream: real sshd, real tcpdump on the host's side."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import psutil
import pytest

from console.engine.hub import Hub, ProbeLoop
from console.engine.store import Store
from console.remote.capture import start_remote_capture, stream_name
from console.remote.host import RemoteHost
from console.settings.hosts import parse_host_arg
from probes.pcapstream import merge
from probes.samples import Sample
from tests.ssh.sshd_harness import Lab, agent_processes, fast_settings

pytestmark = pytest.mark.system


def closed_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


def knock(addr: str, port: int) -> None:
    """One connect that the host's kernel refuses with RST."""
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.settimeout(1)
        s.connect((addr, port))


def command_line(proc: psutil.Process) -> list[str]:
    """The command line agent_processes read: reading it again races a process that ends meanwhile
    (a tcpdump wrapper or ss loop between two seconds: NoSuchProcess failed a CI run)."""
    return list(proc.info.get("cmdline") or [])


def tcpdumps(addr: str, port: int) -> list[int]:
    return [p.pid for p in agent_processes(addr, port) if "tcpdump" in " ".join(command_line(p))]


def capture_interfaces(addr: str, port: int) -> set[str]:
    """The -i arguments of the tcpdump processes (and their wrappers) on the host."""
    found = set()
    for proc in agent_processes(addr, port):
        words = command_line(proc)
        if "tcpdump" in words and "-i" in words:
            found.add(words[words.index("-i") + 1])
    return found


async def connected(hub: Hub, store: Store, lab: Lab, name: str) -> RemoteHost:
    remote = RemoteHost(parse_host_arg(name), [], fast_settings(lab))
    hub.add_stream(f"ssh:{name}", remote.stream, kind="host_status")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        last = store.last((name, "host_status", ""))
        if last is not None and last.fields.get("state") == "connected":
            return remote
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never connected: {store.last((name, 'host_status', ''))}")


@pytest.fixture
async def hub() -> AsyncIterator[tuple[Hub, Store]]:
    # As in the console: SSH objects and the capture live on the probe loop, the store on this one.
    store = Store()
    loop = ProbeLoop()
    hub = Hub(store, probe_loop=loop)
    try:
        yield hub, store
    finally:
        await hub.stop()
        loop.close()


async def test_remote_capture_sees_a_refused_handshake_and_leaves_nothing_behind(
        lab: Lab, hub: tuple[Hub, Store]) -> None:
    the_hub, store = hub
    sshd = lab.hosts["prod-1"]
    remote = await connected(the_hub, store, lab, "prod-1")
    port = closed_port("127.0.0.2")
    start_remote_capture(the_hub, remote, "lo", f"tcp port {port}")
    dest = f"127.0.0.2:{port}"
    deadline = time.monotonic() + 20
    refused = 0
    while time.monotonic() < deadline and not refused:
        knock("127.0.0.2", port)
        await asyncio.sleep(0.3)
        samples = [s for s in store.window(("prod-1", "capture", "lo")) if s.ok]
        if samples:
            summary = merge([s.fields for s in samples])
            refused = int(summary["tcp"]["dest"].get(dest, {}).get("refused", 0))
    assert refused >= 1, store.last(("prod-1", "capture", "lo"))
    last = store.last(("prod-1", "capture", "lo"))
    assert last is not None and last.host == "prod-1" and last.fields["health"]["filter"] == f"tcp port {port}"
    assert tcpdumps(sshd.addr, sshd.port), "tcpdump should be running on the host during the capture"
    # The pane's restart path: cancelling the stream must stop tcpdump on the host.
    assert the_hub.remove(stream_name("prod-1", "lo"))
    deadline = time.monotonic() + 5
    while tcpdumps(sshd.addr, sshd.port) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert tcpdumps(sshd.addr, sshd.port) == []


async def test_without_privilege_the_capture_says_tcpdumps_message_and_what_to_do(
        fresh_lab: Lab, hub: tuple[Hub, Store]) -> None:
    # The host runs every command as nobody: tcpdump has no right to capture there.
    fresh_lab.add("unpriv", "127.0.0.21", extra_config=[
        'ForceCommand exec setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c "$SSH_ORIGINAL_COMMAND"'])
    the_hub, store = hub
    remote = await connected(the_hub, store, fresh_lab, "unpriv")
    start_remote_capture(the_hub, remote, "lo", "")
    deadline = time.monotonic() + 15
    last: Sample | None = None
    while time.monotonic() < deadline:
        last = store.last(("unpriv", "capture", "lo"))
        if last is not None:
            break
        await asyncio.sleep(0.1)
    assert last is not None and last.error == "permission"
    assert str(last.message).startswith("tcpdump failed (exit 1): tcpdump: lo: ")  # tcpdump's own words ...
    assert "sudo = true" in str(last.message)  # ... and what to do
    await asyncio.sleep(1.5)  # not retried in a loop: the same message would only repeat
    assert len(store.series(("unpriv", "capture", "lo"))) == 1


async def test_console_captures_on_the_host_too_and_the_pane_restarts_it(lab: Lab) -> None:
    """`warroom --host prod-1 --capture lo`: the Capture tab's h key shows prod-1, i restarts prod-1's capture."""
    from textual.widgets import Static

    from console.ui.app import AppConfig, create_app
    from probes.capture import capture_spec
    from widgets.capture_view import CaptureView

    sshd = lab.hosts["prod-1"]
    port = closed_port("127.0.0.2")
    app = create_app(AppConfig(hostname="console", remote_hosts=[parse_host_arg("prod-1")],
                               ssh_settings=fast_settings(lab), capture=capture_spec("lo", f"tcp port {port}")))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        view = app.query_one(CaptureView)
        app.query_one("#capture-body").focus()
        await pilot.press("h")
        assert view.host == "prod-1" and view.border_title == "Capture (prod-1)"
        deadline = time.monotonic() + 20
        summary = ""
        while time.monotonic() < deadline and f"127.0.0.2:{port}" not in summary:
            knock("127.0.0.2", port)
            await pilot.pause(0.5)
            summary = str(app.query_one("#capture-summary", Static).render())
        assert f"127.0.0.2:{port}" in summary  # the refused handshake, as prod-1's tcpdump saw it
        assert tcpdumps(sshd.addr, sshd.port)
        await pilot.press("i", "ctrl+a", "ctrl+k", *"any", "enter")
        await pilot.pause(0.3)
        assert "prod-1/capture/any" in app.hub.streams and "prod-1/capture/lo" not in app.hub.streams
        assert "local/capture/lo" in app.hub.streams  # this host's capture is left as it was
        deadline = time.monotonic() + 10
        while capture_interfaces(sshd.addr, sshd.port) != {"any"} and time.monotonic() < deadline:
            await pilot.pause(0.2)
        assert capture_interfaces(sshd.addr, sshd.port) == {"any"}  # the lo capture is gone from the host


async def test_hosts_tab_shows_each_hosts_own_pressure_and_status(lab: Lab) -> None:
    """`warroom --host prod-1`: tab 7 has prod-1's status line and its system pane, fed over SSH."""
    from console.ui.app import AppConfig, create_app
    from widgets.hosts_view import HostsView
    from widgets.system_pane import SystemPane

    app = create_app(AppConfig(hostname="console", remote_hosts=[parse_host_arg("prod-1")],
                               ssh_settings=fast_settings(lab)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        pane = next(p for p in app.query(SystemPane) if p.host == "prod-1")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "CPU" not in pane._shown:
            await pilot.pause(0.5)
        assert pane.border_title == "System (prod-1)"
        assert "CPU" in pane._shown and "MEM" in pane._shown  # figures measured on the host, not here
        status = str(app.query_one(HostsView).render())
        assert "prod-1" in status and "connected" in status
