"""The cheaper socket reading says what the full one says: IPv6 walks skipped only when provably empty,
fd links read only where owners can have changed, CPU per process from /proc/PID/stat."""

from __future__ import annotations

import os
import socket
import time

from probes import conns, sockdiag, system


def keys(rows: list[list[object]]) -> set[tuple[object, ...]]:
    return {(r[conns.C_PROTO], r[conns.C_STATE], r[conns.C_LOCAL], r[conns.C_REMOTE]) for r in rows}


def test_ipv6_sockets_are_found_whenever_there_are_some() -> None:
    with socket.socket(socket.AF_INET6) as listener:
        listener.bind(("::1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        assert not sockdiag._none_v6(sockdiag.sockstat(), sockdiag.sockstat(), "TCP6", 0)
        assert (("tcp", "LISTEN", f"[::1]:{port}", "[::]:*") in keys(sockdiag.dump_all()))
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
