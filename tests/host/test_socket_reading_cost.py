"""The cheaper socket reading says what the full one says: IPv6 walks skipped only when provably empty,
fd links read only where owners can have changed, CPU per process from /proc/PID/stat."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from probes import conns, sockdiag, system


def keys(rows: list[list[object]]) -> set[tuple[object, ...]]:
    return {(r[conns.C_PROTO], r[conns.C_STATE], r[conns.C_LOCAL], r[conns.C_REMOTE]) for r in rows}


def test_ipv6_sockets_are_found_whenever_there_are_some() -> None:
    with socket.socket(socket.AF_INET6) as listener:
        listener.bind(("::1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        assert not sockdiag._none_v6(sockdiag.sockstat(), sockdiag.sockstat(), "TCP6", 0)
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.bind(("::1", 0))
            udp_port = udp.getsockname()[1]
            # Both ways of reading: one TCP walk for both families, and one per family (older kernels).
            for rows in (sockdiag.dump_all(), sockdiag._dump_all_by_family()):
                assert ("tcp", "LISTEN", f"[::1]:{port}", "[::]:*") in keys(rows)
                assert ("udp", "UNCONN", f"[::1]:{udp_port}", "[::]:*") in keys(rows)
        # A connection closed by us: its TIME-WAIT is not "in use", yet it is still found.
        client = socket.create_connection(("::1", port))
        server, _ = listener.accept()
        local = client.getsockname()[1]
        client.close()
        server.close()
    time.sleep(0.05)
    found = keys(sockdiag.dump_all())
    assert ("tcp", "TIME-WAIT", f"[::1]:{local}", f"[::1]:{port}") in found


def test_the_counts_decide_only_when_they_prove_it() -> None:
    empty = {"TCP6.inuse": 0, "UDP6.inuse": 0, "TCP.tw": 3}
    assert sockdiag._none_v6(empty, empty, "TCP6", 3)
    assert not sockdiag._none_v6(empty, empty, "TCP6", 2)  # a TIME-WAIT that is not IPv4: dump IPv6
    assert not sockdiag._none_v6(empty, {**empty, "TCP.tw": 4}, "TCP6", 3)  # changed while we looked
    assert not sockdiag._none_v6({}, {}, "TCP6", 0)  # unreadable counts prove nothing
    assert sockdiag._none_v6(empty, empty, "UDP6")


def test_owner_scan_says_what_a_full_scan_says_as_sockets_come_and_go() -> None:
    scanner = conns.OwnerScan()
    held: list[socket.socket] = []
    try:
        for round_ in range(4):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            held.append(listener)  # a socket this process did not have last round
            if round_ == 2:
                held.pop(0).close()
            rows, _ = conns.read_sockets()
            inodes = [r[conns.C_INO] for r in rows if r[conns.C_INO]]
            partial = scanner.scan(inodes)
            full = conns.scan_processes()
            mine = [s.getsockname()[1] for s in held]
            for row in rows:
                ino = row[conns.C_INO]
                if ino and conns.port_of(str(row[conns.C_LOCAL])) in mine:
                    assert partial.owners.get(ino) == full.owners.get(ino) == os.getpid()
            assert partial.fds[os.getpid()] == full.fds[os.getpid()]
            assert partial.names[os.getpid()] == full.names[os.getpid()]
    finally:
        for listener in held:
            listener.close()


def test_a_socket_opened_by_a_process_that_held_none_is_placed_a_reading_later() -> None:
    """A socket first seen in a process that held no sockets and is not new is looked for everywhere at
    the next reading (not at once: most such sockets are connections gone within the second)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import socket, sys\nsys.stdin.readline()\n"
                              "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
                              "print(s.getsockname()[1], flush=True)\nsys.stdin.readline()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    scanner = conns.OwnerScan()
    try:
        def owner_of(port: int | None) -> int | None:
            rows, _ = conns.read_sockets()
            scan = scanner.scan([r[conns.C_INO] for r in rows if r[conns.C_INO]])
            inos = [r[conns.C_INO] for r in rows if r[conns.C_LOCAL] == f"127.0.0.1:{port}"]
            return scan.owners.get(inos[0]) if inos else None

        owner_of(None)  # the first reading: every process is searched
        owner_of(None)  # the child is an old process now, holding no socket
        child.stdin.write("listen\n")
        child.stdin.flush()
        port = int(child.stdout.readline())
        assert owner_of(port) in (None, child.pid)  # first seen: the likely processes only
        assert owner_of(port) == child.pid  # still there: searched for everywhere
        assert owner_of(port) == child.pid == conns.scan_processes().owners.get(
            next(r[conns.C_INO] for r in conns.read_sockets()[0] if r[conns.C_LOCAL] == f"127.0.0.1:{port}"))
    finally:
        child.kill()
        child.wait()


def test_a_socket_gone_within_the_second_is_not_searched_for_in_every_process() -> None:
    """A connection in the dump that no process holds by the time of the scan (the probes' own, which
    tick with the reading) costs a look in the likely processes, not in every fd table of the host."""
    scanner = conns.OwnerScan()
    rows, _ = conns.read_sockets()
    inodes = [r[conns.C_INO] for r in rows if r[conns.C_INO]]
    scanner.scan(inodes)
    scanner.scan(inodes)  # steady: every socket placed or known unowned
    searched: list[int] = []
    search = scanner._search

    def counting(pid: int, *args: object) -> None:
        searched.append(pid)
        search(pid, *args)  # type: ignore[arg-type]

    scanner._search = counting  # type: ignore[method-assign]
    gone = 2**40  # a socket inode no process holds
    scanner.scan([*inodes, gone])
    processes = len(os.listdir("/proc"))
    assert len(searched) < processes / 2, (len(searched), processes)
    assert os.getpid() in searched  # this process is always a likely owner
    searched.clear()
    scanner.scan(inodes)  # gone from the next dump: nothing to look for
    assert searched == []


def test_cpu_per_process_from_proc_stat() -> None:
    ticks = system.CpuTicks()
    ticks.busiest(5)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn CPU: this process must come out on top
        pass
    busiest = ticks.busiest(50)
    mine = next(cpu for cpu, pid in busiest if pid == os.getpid())
    assert mine > 20.0 and ticks.count >= len(busiest)
    snapshot = system.snapshot()
    assert snapshot["procs"] == system._ticks.count and snapshot["top"]


def test_a_socket_left_to_another_process_is_found_there() -> None:
    """The owner kept from the last reading is checked: when it closes a socket a child still holds, the
    next reading names the child, as a full scan does."""
    import subprocess

    scanner = conns.OwnerScan()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    child = subprocess.Popen(["sleep", "30"], pass_fds=[listener.fileno()])
    try:
        def owner() -> int | None:
            rows, _ = conns.read_sockets()
            (ino,) = [r[conns.C_INO] for r in rows
                      if r[conns.C_STATE] == "LISTEN" and r[conns.C_LOCAL] == f"127.0.0.1:{port}"]
            return scanner.scan([r[conns.C_INO] for r in rows if r[conns.C_INO]]).owners.get(ino)

        assert owner() in (os.getpid(), child.pid)  # both hold it
        listener.close()
        assert owner() == child.pid
        assert owner() == child.pid  # and from the kept owner, checked
    finally:
        listener.close()
        child.kill()
        child.wait()


def test_one_tcp_walk_gives_what_a_walk_per_family_gives() -> None:
    with socket.socket(socket.AF_INET6) as six, socket.socket() as four:
        six.bind(("::1", 0))
        six.listen(1)
        four.bind(("127.0.0.1", 0))
        four.listen(1)
        v4, v6 = sockdiag.dump_tcp()
        per4 = sockdiag.dump(socket.AF_INET, socket.IPPROTO_TCP)
        per6 = sockdiag.dump(socket.AF_INET6, socket.IPPROTO_TCP)
        listening = {(r[conns.C_LOCAL], r[conns.C_INO]) for r in v4 + v6 if r[conns.C_STATE] == "LISTEN"}
        assert (f"[::1]:{six.getsockname()[1]}", os.fstat(six.fileno()).st_ino) in listening
        assert (f"127.0.0.1:{four.getsockname()[1]}", os.fstat(four.fileno()).st_ino) in listening
    # Sockets come and go between the walks (other tests on this machine): compare the ones in both, in order.
    def common(rows: list[list[object]], other: list[list[object]]) -> list[tuple[object, ...]]:
        both = {(r[conns.C_LOCAL], r[conns.C_REMOTE], r[conns.C_INO]) for r in other}
        return [(r[conns.C_LOCAL], r[conns.C_REMOTE], r[conns.C_INO], r[conns.C_UID]) for r in rows
                if (r[conns.C_LOCAL], r[conns.C_REMOTE], r[conns.C_INO]) in both]

    assert common(v4, per4) == common(per4, v4) and common(v6, per6) == common(per6, v6)
    assert all(r[conns.C_LOCAL].startswith("[") for r in v6) and not any(r[conns.C_LOCAL].startswith("[") for r in v4)


def test_a_tcp_walk_for_some_states_gives_the_sockets_in_those_states_only() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                server_port, client_port = listener.getsockname()[1], client.getsockname()[1]
                ours = {server_port, client_port}

                def mine(rows: list[list[object]]) -> set[tuple[object, object]]:
                    return {(r[conns.C_STATE], r[conns.C_LOCAL]) for r in rows
                            if conns.port_of(str(r[conns.C_LOCAL])) in ours}

                listen_only = mine(sockdiag.dump_tcp(states=1 << 10)[0])  # TCP_LISTEN
                established = mine(sockdiag.dump_tcp(states=1 << 1)[0])  # TCP_ESTABLISHED
                closing = sockdiag.dump_tcp(states=1 << 11)  # TCP_CLOSING: walks the hash, finds none of ours
    assert listen_only == {("LISTEN", f"127.0.0.1:{server_port}")}
    assert ("ESTAB", f"127.0.0.1:{client_port}") in established
    assert all(state == "ESTAB" for state, _ in established)
    assert not mine(closing[0] + closing[1])


def test_a_tcp_socket_bound_and_not_listening_is_not_read_as_a_socket_as_with_ss() -> None:
    # ss -tan and /proc/net/tcp leave out a socket that is only bound (the kernel's TCP_BOUND_INACTIVE,
    # Linux 6.5+); asking the kernel for it showed it as an "UNCONN" row, among the listeners.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        local = f"127.0.0.1:{bound.getsockname()[1]}"
        before = {r[conns.C_LOCAL] for r in sockdiag.dump_all()}
        bound.listen(1)
        after = {(r[conns.C_STATE], r[conns.C_LOCAL]) for r in sockdiag.dump_all()}
    assert local not in before
    assert ("LISTEN", local) in after


def test_the_top_processes_read_from_proc_say_what_psutil_says(tmp_path: Path) -> None:
    """Name (the long one, past the kernel's 15 characters), RSS, user and fds, as psutil would show them."""
    import subprocess

    import psutil

    long_named = tmp_path / "warroom-a-rather-long-process-name"
    long_named.symlink_to(shutil.which("sleep") or "/bin/sleep")
    child = subprocess.Popen([str(long_named), "30"])
    try:
        time.sleep(0.2)
        system._top_processes(10_000)  # the first reading only primes the CPU figures
        rows = {row["pid"]: row for row in system._top_processes(10_000)}
        for pid in (os.getpid(), child.pid):
            proc = psutil.Process(pid)
            with proc.oneshot():
                expected = {"name": proc.name(), "user": proc.username(), "fds": proc.num_fds(),
                            "rss_mb": proc.memory_info().rss / 1048576}
            row = rows[pid]
            assert (row["name"], row["user"]) == (expected["name"], expected["user"])
            assert abs(row["rss_mb"] - expected["rss_mb"]) < 5.0
            if pid == child.pid:  # ours changes with each file this test opens
                assert row["fds"] == expected["fds"]
        assert rows[child.pid]["name"] == "warroom-a-rather-long-process-name"
    finally:
        child.kill()
        child.wait()


def test_the_host_totals_read_from_proc_say_what_psutil_says() -> None:
    """CPU %, CPU count, memory and swap from /proc/stat and /proc/meminfo, as psutil computes them from
    the same files, over the same second: here one core of the two or more spins through it."""
    import subprocess
    import sys

    import psutil

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        ours = system.CpuPercent()
        psutil.cpu_percent(interval=None)
        time.sleep(1.0)
        cpu, theirs = ours(), psutil.cpu_percent(interval=None)
        assert cpu is not None and abs(cpu - theirs) < 3.0, (cpu, theirs)
        assert cpu >= 100.0 / (os.cpu_count() or 1) * 0.8  # the spinner's core is in it
        fields = system._cpu_and_memory()
        vm, swap = psutil.virtual_memory(), psutil.swap_memory()
        assert fields["cpu_count"] == psutil.cpu_count()
        assert fields["mem_total_mb"] == round(vm.total / 1048576, 1)
        assert abs(float(fields["mem_percent"]) - vm.percent) < 1.0  # type: ignore[arg-type]
        assert abs(float(fields["mem_used_mb"]) - (vm.total - vm.available) / 1048576) < 64  # type: ignore[arg-type]
        assert abs(float(fields["swap_percent"]) - swap.percent) < 1.0  # type: ignore[arg-type]
    finally:
        spinner.kill()
        spinner.wait()
    assert "psutil" not in subprocess.run(  # the probe itself imports no psutil on Linux
        [sys.executable, "-c", "import sys, probes.system; probes.system.snapshot(); print(*sys.modules)"],
        capture_output=True, text=True, check=True).stdout.split()


def test_a_process_that_wakes_up_and_spins_is_on_top_within_a_few_readings() -> None:
    """Idle processes are read one reading in IDLE_EVERY; one that starts spinning still reaches the
    top within IDLE_EVERY readings, and from then on every reading measures it."""
    import subprocess
    import sys

    ticks = system.CpuTicks()
    # Sleeps first (idle at the first three readings), then spins until killed.
    child = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(1.5)\nwhile True: pass"])
    try:
        time.sleep(0.2)  # past its start-up
        ticks.busiest(5)  # the first reading: nothing measured yet
        time.sleep(0.3)
        ticks.busiest(5)  # measured: the child and most others idle
        time.sleep(0.3)
        ticks.busiest(5)
        assert ticks.reads < ticks.count  # the idle majority was not read again
        time.sleep(0.9)  # it spins now
        found_at = None
        for reading in range(1, system.IDLE_EVERY + 1):
            time.sleep(0.25)
            top = ticks.busiest(5)
            if any(pid == child.pid and cpu > 20.0 for cpu, pid in top):
                found_at = reading
                break
        assert found_at is not None, "a spinning process was not found within IDLE_EVERY readings"
        time.sleep(0.25)
        top = dict((pid, cpu) for cpu, pid in ticks.busiest(5))
        assert top.get(child.pid, 0.0) > 20.0  # read at every reading now
    finally:
        child.kill()
        child.wait()


def test_a_process_that_starts_leaking_fds_is_counted_again_within_a_few_readings() -> None:
    """Small fd tables are recounted one reading in FD_RECOUNT_EVERY; a process that opens many fds is
    seen with its new count within FD_RECOUNT_EVERY readings, and counted at every reading after."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c",
                              "import os,sys,time\nsys.stdin.readline()\n"
                              "fds=[os.open('/dev/null',os.O_RDONLY) for _ in range(200)]\n"
                              "print('open',flush=True)\ntime.sleep(60)"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        scanner = conns.OwnerScan()
        for _ in range(3):
            small = scanner.scan([]).fds[child.pid]
        assert small < conns.FD_CANDIDATE_MIN
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "open"
        seen = [scanner.scan([]).fds[child.pid] for _ in range(conns.FD_RECOUNT_EVERY)]
        assert max(seen) >= 200, seen
        assert scanner.scan([]).fds[child.pid] >= 200  # above FD_CANDIDATE_MIN: counted every reading
    finally:
        child.kill()
        child.wait()


def _time_wait_to(family: int, host: str, count: int, *, client_closes_first: bool) -> int:
    """``count`` connections to a fresh listener on ``host``, closed so that TIME-WAIT stays on the
    client's side (client_closes_first) or on the listener's; returns the listener's port."""
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(count)
        port = listener.getsockname()[1]
        for _ in range(count):
            client = socket.create_connection((host, port))
            server, _ = listener.accept()
            first, second = (client, server) if client_closes_first else (server, client)
            first.close()
            second.recv(1)  # the FIN has arrived: the second close is the passive one
            second.close()
    return port


def test_time_wait_read_as_pairs_gives_the_summary_the_rows_give() -> None:
    # A host whose clients close first holds TIME-WAIT sockets by the ten thousand: read as pairs
    # (local port, remote) instead of rows, they must still count in every figure the summary gives.
    out_port = _time_wait_to(socket.AF_INET, "127.0.0.1", 60, client_closes_first=True)
    in_port = _time_wait_to(socket.AF_INET, "127.0.0.1", 20, client_closes_first=False)
    v6_port = _time_wait_to(socket.AF_INET6, "::1", 10, client_closes_first=True)
    time.sleep(0.05)
    rows = sockdiag.dump_all()
    pairs: sockdiag.TimeWait = []
    other_rows = sockdiag.dump_all(pairs)
    assert all(r[conns.C_STATE] != "TIME-WAIT" for r in other_rows if r[conns.C_PROTO] == "tcp")
    ours = {f"127.0.0.1:{out_port}", f"127.0.0.1:{in_port}", f"[::1]:{v6_port}"}

    def from_rows(remote_port: int) -> set[tuple[int, str]]:
        return {(conns.port_of(r[conns.C_LOCAL]) or 0, r[conns.C_REMOTE]) for r in rows
                if r[conns.C_STATE] == "TIME-WAIT" and conns.port_of(r[conns.C_REMOTE]) == remote_port}

    assert {p for p in pairs if p[1] in ours} == from_rows(out_port) | from_rows(v6_port)
    assert len(from_rows(out_port)) == 60 and len(from_rows(v6_port)) == 10
    # The listener's side of the 20 it closed first: TIME-WAIT from its own port, to the clients.
    assert sum(1 for port, _ in pairs if port == in_port) == 20
    whole = conns.summarize(rows, None)
    paired = conns.summarize(other_rows, None, time_wait=pairs)
    for key in ("total", "by_state", "ephemeral_used", "ephemeral_top_remote", "ephemeral_top_count"):
        assert paired[key] == whole[key], key
    assert whole["by_state"]["tcp:TIME-WAIT"] >= 90
    assert whole["ephemeral_used"] >= 70  # the clients' 70 ports; the listener's own port is not one


async def test_a_table_reader_never_gets_a_reading_whose_time_wait_is_pairs() -> None:
    port = _time_wait_to(socket.AF_INET, "127.0.0.1", 5, client_closes_first=True)
    # The pools probe (or a summary-only conns) reads first: pairs; the table asks within the same tick.
    summary_only = await conns.collect_shared()
    assert sum(1 for _, remote in summary_only.time_wait if remote == f"127.0.0.1:{port}") == 5
    samples = await conns.measure(table=True)
    table = next(s for s in samples if s.kind == conns.TABLE_KIND).fields["rows"]
    assert isinstance(table, list)
    assert sum(1 for r in table if r[conns.C_STATE] == "TIME-WAIT" and r[conns.C_REMOTE] == f"127.0.0.1:{port}") == 5
    summary = next(s for s in samples if s.kind == conns.KIND).fields
    assert summary["ephemeral_top_count"] >= 5
