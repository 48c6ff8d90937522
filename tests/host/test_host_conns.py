"""The conns probe against this host's real sockets (ss, /proc), no mocks."""

from __future__ import annotations

import asyncio
import encodings.ascii  # noqa: F401 - preloaded for the forked child that drops privileges
import json
import os
import socket
import time
from pathlib import Path

from bench.socket_farm import farm
from console.engine.store import Store
from probes import conns
from probes.runtime import ProbeSpec
from tests.host.host_helpers import close_all, listener, run_probe


def _rows(samples):  # type: ignore[no-untyped-def]
    table = next(s for s in samples if s.kind == conns.TABLE_KIND)
    assert table.fields["columns"] == list(conns.COLUMNS)
    return table.fields["rows"]


async def test_own_connection_has_process_and_tcp_info() -> None:
    with listener() as lsock:
        port = lsock.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = lsock.accept()
        try:
            client.sendall(b"x" * 5000)
            received = 0
            while received < 5000:
                received += len(server.recv(10000))
            server.sendall(b"ok")  # the reply carries the ACK for all 5000 bytes, no delayed-ACK wait
            assert client.recv(2) == b"ok"
            samples = await run_probe(ProbeSpec("conns", options={"expect_listen": [port]}), count=2)
        finally:
            close_all([client, server])
    rows = _rows(samples)
    mine = [r for r in rows if r[conns.C_REMOTE] == f"127.0.0.1:{port}" and r[conns.C_STATE] == "ESTAB"]
    assert len(mine) == 1, mine
    row = mine[0]
    assert row[conns.C_PROTO] == "tcp"
    assert row[conns.C_PID] == os.getpid()
    assert row[conns.C_PROCESS]  # comm of this python process
    assert isinstance(row[conns.C_RTT], float) and row[conns.C_RTT] >= 0
    assert row[conns.C_ACKED] >= 5000  # the 5000 bytes we sent were acknowledged
    assert row[conns.C_RECEIVED] == 2
    assert row[conns.C_RETRANS] == 0
    assert row[conns.C_HIDDEN] is False
    summary = next(s for s in samples if s.kind == conns.KIND)
    assert port in summary.fields["listen_ports"]
    assert summary.fields["listen_missing"] == []
    assert summary.fields["by_state"].get("tcp:ESTAB", 0) >= 2
    # The samples travel as JSON (agent, recordings): they must survive it.
    for sample in samples:
        assert json.loads(sample.to_json())["kind"] == sample.kind


async def test_missing_expected_listener_and_limits_in_summary() -> None:
    with listener() as lsock:
        unused = lsock.getsockname()[1]
    samples = await run_probe(ProbeSpec("conns", options={"expect_listen": [unused], "table": False}), count=1)
    assert [s.kind for s in samples] == ["conns"]
    fields = samples[0].fields
    assert fields["listen_missing"] == [unused]
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert (fields["ephemeral_low"], fields["ephemeral_high"]) == (low, high)
    if os.path.isdir("/proc/sys/net/netfilter"):
        assert fields["conntrack_max"] == int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    me = [p for p in fields["fd_top"] if p["pid"] == os.getpid()]
    if me:  # we are among the top fd users only on a quiet host; when we are, the limit is ours
        import resource

        assert me[0]["limit"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert fields["euid"] == os.geteuid()


async def test_udp_sockets_are_listed() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    local = f"127.0.0.1:{udp.getsockname()[1]}"
    try:
        rows = _rows(await run_probe(ProbeSpec("conns"), count=2))
    finally:
        udp.close()
    mine = [r for r in rows if r[conns.C_LOCAL] == local]
    assert mine and mine[0][conns.C_PROTO] == "udp" and mine[0][conns.C_PID] == os.getpid()


def test_psutil_fallback_sees_the_same_connection() -> None:
    with listener() as lsock:
        port = lsock.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = lsock.accept()
        try:
            rows = conns.psutil_rows()
        finally:
            close_all([client, server])
    mine = [r for r in rows if r[conns.C_REMOTE] == f"127.0.0.1:{port}" and r[conns.C_STATE] == "ESTAB"]
    assert len(mine) == 1 and mine[0][conns.C_PID] == os.getpid()


def _view_as_nobody(port: int) -> dict:  # type: ignore[type-arg]
    """The probe's functions run in a forked child that dropped to uid/gid nobody (65534).

    Forked, not exec'd: this Python lives under /root, which nobody may not enter.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = {}
            for method in ("netlink", "ss"):  # the main path and its fallback, both unprivileged
                rows, source = conns.read_sockets(method)
                scan = conns.scan_processes()
                conns.attach_owners(rows, scan)
                result[method] = {
                    "source": source,
                    "mine": [r for r in rows if r[conns.C_LOCAL] == f"127.0.0.1:{port}"],
                    "summary": conns.summarize(rows, scan),
                }
            os.write(write_fd, json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 1 << 16):
        data += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the unprivileged child failed"
    return json.loads(data)


def test_other_users_processes_are_shown_hidden_not_dropped() -> None:
    """Run as root (as CI does): a root-owned process holds sockets, the probe runs as nobody."""
    assert os.geteuid() == 0, "this test needs root to run the probe as another user (nobody)"
    with farm(1) as port:  # a separate root process holding a listener and one connection
        views = _view_as_nobody(port)
        as_root, _ = conns.read_sockets("netlink")
        conns.attach_owners(as_root, conns.scan_processes())
    for method, view in views.items():
        assert view["source"] == method
        listen = [r for r in view["mine"] if r[conns.C_STATE] == "LISTEN"]
        assert len(listen) == 1, (method, view["mine"])
        row = listen[0]
        assert row[conns.C_PID] is None and row[conns.C_PROCESS] is None
        assert row[conns.C_HIDDEN] is True
        assert row[conns.C_UID] == 0  # the kernel still tells us whose socket it is
        summary = view["summary"]
        assert summary["euid"] == 65534
        assert summary["hidden_sockets"] >= 1 and 0 in summary["hidden_uids"]
        assert summary["unreadable_processes"] >= 1
    # As root the same socket has its process.
    root_row = [r for r in as_root if r[conns.C_LOCAL] == f"127.0.0.1:{port}" and r[conns.C_STATE] == "LISTEN"]
    assert root_row and root_row[0][conns.C_PID] is not None and root_row[0][conns.C_HIDDEN] is False


def test_parse_ss_lines_of_every_shape() -> None:
    """Lines as ss 6.1 prints them: IPv6, uid, timers, sockets without tcp_info, padding."""
    text = (
        "udp UNCONN 0 0 [::1]:33946 [::]:* ino:13349 sk:3 cgroup:/ v6only:1 <->      \n"
        "tcp LISTEN 0 128 0.0.0.0:2024 0.0.0.0:* uid:1000 ino:624 sk:1 cgroup:/ <-> bbr cwnd:10   \n"
        "tcp TIME-WAIT 0 0 127.0.0.1:41316 127.0.0.1:37589 timer:(timewait,552ms,0) ino:0 sk:5842 \n"
        "tcp ESTAB 7 3 127.0.0.1:56134 127.0.0.1:49309 uid:1000 ino:13347 sk:5 cgroup:/ <-> ts sack bbr "
        "wscale:10,10 rto:204 rtt:0.026/0.014 mss:45568 cwnd:11 bytes_sent:2000 bytes_retrans:10 bytes_acked:2001 "
        "bytes_received:77 segs_out:3 bbr:(bw:72908795648bps,mrtt:0.005) send 154230153846bps lastsnd:4 "
        "lastrcv:8 lastack:4 unacked:1 retrans:0/3 rcv_rtt:1 minrtt:0.005 snd_wnd:91136\n"
    )
    scan = conns.ProcessScan(owners={13347: 42}, names={42: "api"})
    rows = conns.parse_ss(text, scan)
    assert [r[conns.C_STATE] for r in rows] == ["UNCONN", "LISTEN", "TIME-WAIT", "ESTAB"]
    assert rows[0][conns.C_LOCAL] == "[::1]:33946"
    assert rows[1][conns.C_UID] == 1000 and rows[1][conns.C_RTT] is None
    assert rows[2][conns.C_INO] == 0 and rows[2][conns.C_HIDDEN] is False
    est = rows[3]
    assert est[conns.C_RECVQ] == 7 and est[conns.C_SENDQ] == 3
    assert est[conns.C_PID] == 42 and est[conns.C_PROCESS] == "api"
    assert est[conns.C_RTT] == 0.026 and est[conns.C_RETRANS] == 3
    assert (est[conns.C_ACKED], est[conns.C_RECEIVED]) == (2001, 77)
    assert (est[conns.C_LASTSND], est[conns.C_LASTRCV]) == (4, 8)


async def test_table_snapshot_is_kept_shallow_in_the_store() -> None:
    store = Store()
    for _ in range(4):
        await run_probe(ProbeSpec("conns"), store=store, count=2)
    assert len(store.series(("local", conns.TABLE_KIND, ""))) == 2
    assert len(store.series(("local", conns.KIND, ""))) == 4


async def test_ten_thousand_sockets_one_refresh_is_bounded() -> None:
    with farm(5000) as port:
        start = time.perf_counter()
        samples = await run_probe(ProbeSpec("conns", timeout=10), count=2)
        elapsed = time.perf_counter() - start
    rows = _rows(samples)
    farm_rows = [r for r in rows if r[conns.C_STATE] == "ESTAB" and
                 f":{port}" in (r[conns.C_LOCAL][-6:] + r[conns.C_REMOTE][-6:])]
    assert len(farm_rows) == 10000
    assert all(r[conns.C_PID] is not None for r in farm_rows)
    assert elapsed < 3.0, f"one refresh with 10,000 sockets took {elapsed:.2f} s"
    summary = next(s for s in samples if s.kind == conns.KIND).fields
    # 5,000 outbound connections to one peer hold 5,000 ephemeral ports; the accepted ends hold none.
    assert summary["ephemeral_top_remote"] == f"127.0.0.1:{port}"
    assert summary["ephemeral_top_count"] == 5000
    farm_fds = [p for p in summary["fd_top"] if p["fds"] >= 10000]
    assert farm_fds and farm_fds[0]["limit"] >= 10000  # the farm raised its own limit to hold them


async def test_probes_ticking_together_share_one_reading() -> None:
    first, second = await asyncio.gather(conns.collect_shared(), conns.collect_shared())
    assert first is second
    await asyncio.sleep(0.3)
    assert await conns.collect_shared() is not first  # older than max_age: read again


async def test_every_method_sees_the_same_connection_with_its_process() -> None:
    with listener() as lsock:
        port = lsock.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = lsock.accept()
        try:
            client.sendall(b"ping")
            server.recv(4)
            snaps = {m: await conns.collect(m) for m in ("netlink", "ss", "psutil")}
        finally:
            close_all([client, server])
    seen = {}
    for method, snap in snaps.items():
        assert snap.source == method
        mine = [r for r in snap.rows if r[conns.C_REMOTE] == f"127.0.0.1:{port}" and r[conns.C_STATE] == "ESTAB"]
        assert len(mine) == 1, (method, mine)
        assert mine[0][conns.C_PID] == os.getpid()
        seen[method] = mine[0]
    netlink, ss = seen["netlink"], seen["ss"]
    for col in (conns.C_PROTO, conns.C_STATE, conns.C_LOCAL, conns.C_REMOTE, conns.C_INO, conns.C_UID,
                conns.C_PROCESS):
        assert netlink[col] == ss[col], conns.COLUMNS[col]
    assert netlink[conns.C_ACKED] == ss[conns.C_ACKED] == 5  # 4 bytes and the SYN
    assert isinstance(netlink[conns.C_RTT], float) and isinstance(ss[conns.C_RTT], float)


def test_a_limit_raised_with_prlimit_shows_within_the_settled_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import resource
    import subprocess
    import sys

    from probes import procfs

    monkeypatch.setattr(procfs, "SETTLED_S", 0.5)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)))
    try:
        assert conns.nofile_limit(child.pid) == 256
        resource.prlimit(child.pid, resource.RLIMIT_NOFILE, (512, 4096))  # what a responder does mid-incident
        assert conns.nofile_limit(child.pid) == 256  # kept: read once in SETTLED_S, not every second
        time.sleep(0.6)
        assert conns.nofile_limit(child.pid) == 512
    finally:
        child.kill()
        child.wait()


def test_the_process_list_follows_a_process_that_starts_and_one_that_ends() -> None:
    """The host probes' list of pids (procfs.pid_entries) is listed only when /proc/loadavg's task count
    or last pid moved: a process started or ended between two readings is in, or out of, the next one."""
    import subprocess

    from probes import procfs

    child = subprocess.Popen(["sleep", "30"])
    try:
        assert str(child.pid) in procfs.pid_entries()
    finally:
        child.kill()
        child.wait()
    assert str(child.pid) not in procfs.pid_entries()


def test_the_process_list_is_kept_while_loadavg_says_nothing_started_or_ended(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from probes import procfs

    proc = tmp_path / "proc"
    for pid in ("1", "20"):
        (proc / pid).mkdir(parents=True)
    (proc / "self").mkdir()
    loadavg = proc / "loadavg"
    loadavg.write_text("0.00 0.01 0.05 1/90 300\n")
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "20"]
    (proc / "31").mkdir()  # a process whose start loadavg does not show (another pid namespace's)
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "20"]  # kept: both figures stayed
    loadavg.write_text("0.00 0.01 0.05 1/91 301\n")  # a fork: a task more, the last pid moved
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "20", "31"]
    (proc / "20").rmdir()
    loadavg.write_text("0.00 0.01 0.05 1/90 301\n")  # an exit: a task less
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "31"]
    (proc / "42").mkdir()
    monkeypatch.setattr(procfs, "PIDS_KEPT_S", 0.0)  # kept no longer than this, whatever loadavg says
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "31", "42"]
    loadavg.unlink()  # no loadavg (not Linux's /proc): listed every time
    (proc / "43").mkdir()
    monkeypatch.setattr(procfs, "PIDS_KEPT_S", 10.0)
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "31", "42", "43"]
    (proc / "44").mkdir()
    assert sorted(procfs.pid_entries(str(proc))) == ["1", "31", "42", "43", "44"]
