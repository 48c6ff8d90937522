"""Every TCP and UDP socket on the host, with its process and the kernel's TCP counters.

Two Samples per refresh, never one per socket:

- kind ``conns``: the summary a responder reads first (counts by state,
  listeners and missing expected listeners, ephemeral port use, conntrack
  table use, open fds against their limit for the top processes, how many
  sockets belong to processes this user cannot read). Small, so the store
  keeps its history for growth graphs and diagnosis.
- kind ``conns_table``: one snapshot of every socket as a compact table
  (``columns`` once, ``rows`` as lists). 10,000 sockets are one Sample of
  10,000 short lists instead of 10,000 Samples a second through the hub,
  store and recorder; the table pane only ever needs the newest one, so the
  store keeps just a couple of these (see ``console.engine.store.DEFAULT_KIND_LIMITS``).

How: the kernel's sock_diag netlink dump (probes.sockdiag: states, queues,
inode, owner uid and tcp_info - rtt, retransmits, last send/receive, bytes)
runs in one thread while another maps socket inodes to processes by reading
``/proc/PID/fd``. That scan also counts each process's fds, so the fd summary
costs little extra. ``ss -p`` would do the same mapping, but only after its
own dump and without telling us which processes it could not read. Where
sock_diag is unavailable the probe reads ``ss -tuanieOH`` instead (the same
netlink data as text), and without ss psutil.net_connections (no tcp_info);
only that last fallback needs psutil, so a remote agent runs this probe on a
host with a bare Python. ``parse_ss(text)`` also reads ``ss -tuanieOH`` output
taken over SSH from a host without Python (no process names then).

A socket whose owner we cannot read (another user's process when not root)
keeps its row: pid and process are None, ``hidden`` is true and the owner uid
from the kernel is kept, so the pane can say "root would show more".
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from probes import procfs, sockdiag
from probes.runtime import ProbeSpec, scheduled
from probes.samples import LOCAL_HOST, JSONValue, Sample

KIND = "conns"
TABLE_KIND = "conns_table"

#: The table's columns, in row order. Rows are lists so 10,000 of them stay compact in JSON.
COLUMNS: tuple[str, ...] = (
    "proto", "state", "local", "remote", "recvq", "sendq", "pid", "process", "uid", "ino",
    "rtt_ms", "retrans", "lastsnd_ms", "lastrcv_ms", "bytes_acked", "bytes_received", "hidden",
)
(C_PROTO, C_STATE, C_LOCAL, C_REMOTE, C_RECVQ, C_SENDQ, C_PID, C_PROCESS, C_UID, C_INO,
 C_RTT, C_RETRANS, C_LASTSND, C_LASTRCV, C_ACKED, C_RECEIVED, C_HIDDEN) = range(len(COLUMNS))

#: ss's state names; the psutil fallback is mapped onto these.
LISTEN_STATES = frozenset({"LISTEN", "UNCONN"})
OPEN_TCP_STATES = frozenset({"ESTAB", "SYN-SENT", "SYN-RECV", "CLOSE-WAIT", "FIN-WAIT-1", "FIN-WAIT-2",
                             "LAST-ACK", "CLOSING"})
_PSUTIL_STATES = {
    "ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV", "FIN_WAIT1": "FIN-WAIT-1",
    "FIN_WAIT2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT", "CLOSE": "UNCONN", "CLOSE_WAIT": "CLOSE-WAIT",
    "LAST_ACK": "LAST-ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING", "NONE": "UNCONN",
}

#: One socket: a list in COLUMNS order (JSON-safe values; typed loosely for speed and brevity).
Row = list[Any]

SS_ARGS = ("-tuanieOH",)
DEFAULT_MAX_ROWS = 20000
TOP_FD_PROCESSES = 5
LISTENERS_SHOWN = 50

# One line of `ss -tuanieOH`: netid, state, queues, addresses, optional timer and
# uid (omitted for uid 0), the inode, then tcp_info as "key:value" words. The
# words are walked by one repeated alternation that captures the keys we want
# and skips any other word, so each line is scanned once, in C: a Python loop
# over the words of 10,000 lines would cost more than ss itself. The trailing
# ".*" eats ss's column padding so the search resumes at the next line.
# Possessive quantifiers (Python 3.11+) stop backtracking into words; older
# Pythons (a remote agent's) get the same pattern without them.
_POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""
_SS_LINE = re.compile(
    r"^(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(?:timer:\(\S*?\)\s+)?(?:uid:(\d+)\s+)?ino:(\d+)"
    r"(?: (?:rtt:([\d.]+)/\S+|bytes_acked:(\d+)|bytes_received:(\d+)|lastsnd:(\d+)|lastrcv:(\d+)"
    r"|retrans:\d+/(\d+)|\S+" + _POSSESSIVE + "))*" + _POSSESSIVE + ".*",
    re.M,
)


@dataclass
class ProcessScan:
    """Who owns which socket inode, from /proc/PID/fd."""

    owners: dict[int, int] = field(default_factory=dict)
    """socket inode -> pid."""
    names: dict[int, str] = field(default_factory=dict)
    fds: dict[int, int] = field(default_factory=dict)
    """pid -> number of open fds, for every process we could read."""
    unreadable: int = 0
    """Processes whose fd table this user may not read (other users' when not root)."""


def scan_processes(proc: str = "/proc") -> ProcessScan:
    """Map socket inodes to pids; blocking (thousands of readlinks), so run it in a thread."""
    scan = ProcessScan()
    owners = scan.owners
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        pid = int(entry)
        fd_dir = f"{proc}/{entry}/fd"
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            scan.unreadable += 1
            continue
        except OSError:  # the process ended while we looked
            continue
        scan.fds[pid] = len(fds)
        has_socket = False
        try:
            for _fd, ino in socket_fds(fd_dir, fds):
                owners[ino] = pid
                has_socket = True
        except PermissionError:  # its count is known, its sockets' owner is not
            continue
        if has_socket:
            scan.names[pid] = procfs.comm(pid, proc)
    return scan


def socket_fds(fd_dir: str, fds: Iterable[str]) -> Iterator[tuple[str, int]]:
    """(fd, socket inode) for each of ``fds`` in ``fd_dir`` (/proc/PID/fd) that is a socket.

    Raises PermissionError, at the first fd, for a process whose fd table lists but whose links are
    not ours to read (they are all alike; a host's init under some sandboxes, ~175 failed readlinks
    every time it was searched)."""
    for fd in fds:
        try:
            link = os.readlink(f"{fd_dir}/{fd}")
        except PermissionError:
            raise
        except OSError:  # closed while we looked
            continue
        if link.startswith("socket:["):
            yield fd, int(link[8:-1])


class OwnerScan:
    """scan_processes() from one reading to the next, reading fd links only for sockets it cannot place.

    A full scan readlinks every fd of every process each second (thousands of
    syscalls, the probe's largest cost after the kernel's own dump). But a
    socket's inode is its identity for its whole life and most sockets keep
    their owner, so each owner found is kept with the fd it was found at, and
    the next reading checks it with one readlink of that fd. Only sockets that
    check fails for, and sockets never seen, are searched for: in the processes
    that owned sockets first, then in those new since the last reading, then in
    the rest, stopping as soon as every one is placed. A socket no process
    holds (another network namespace's, the kernel's own) is remembered as
    unowned and does not send every reading through every process again.

    A process holding fewer than FD_CANDIDATE_MIN fds (far from any limit) is counted again at one
    reading in FD_RECOUNT_EVERY (a fifth of them each second, by pid) and keeps its last count in
    between: a host of 500 processes costs a fifth of 500 fd-table reads a second, and a process
    that starts leaking fds is counted every second once it holds FD_CANDIDATE_MIN of them.

    Each process's fd count (for the fd-limit figures) is the size the kernel
    reports for /proc/PID/fd (Linux 6.2+; one stat, no list of names) when
    running as root, who may read every fd table; otherwise, or on an older
    kernel, the fd directory is listed, which also tells which processes this
    user may not read. A socket held by several processes (after a fork, or
    passed over a unix socket) is given to one of them, as in a full scan.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._owners: dict[int, tuple[int, str]] = {}
        """socket inode -> (pid, fd) where it was last found."""
        self._names: dict[int, str] = {}
        self._unowned: set[int] = set()
        """Sockets a full pass found no owner for: they do not trigger another full pass while they last."""
        self._count_by_stat = procfs.fd_count_by_stat(proc)
        self._counts: dict[int, int] = {}
        """pid -> fd count at the last reading: every process it could read (and so which are new since)."""
        self._unreadable: set[int] = set()
        self._deferred: set[int] = set()
        """Sockets first seen at the last reading and not found in the likely processes: searched for
        everywhere if they are still there at this one."""
        self._links_unreadable: set[int] = set()
        """Processes whose fd table lists but whose links do not: not searched again until their recount turn."""
        self._readings = 0

    def scan(self, inodes: Iterable[int]) -> ProcessScan:
        wanted = {ino for ino in inodes if ino}
        result = ProcessScan()
        counts = result.fds
        fds_of: dict[int, list[str]] = {}
        proc = self.proc
        by_stat = self._count_by_stat
        me = os.getpid()  # listed as a full scan lists it: that count includes the fd the listing holds open
        self._readings += 1
        turn = self._readings % FD_RECOUNT_EVERY
        last_counts, last_unreadable = self._counts, self._unreadable
        unreadable: set[int] = set()
        self._links_unreadable = {pid for pid in self._links_unreadable if pid % FD_RECOUNT_EVERY != turn}
        for entry in procfs.pid_entries(proc):
            pid = int(entry)
            if pid != me and pid % FD_RECOUNT_EVERY != turn:  # not its turn: keep what the last count said
                before = last_counts.get(pid)
                if before is not None and before < FD_CANDIDATE_MIN:
                    counts[pid] = before
                    continue
                if pid in last_unreadable:
                    unreadable.add(pid)
                    continue
            try:
                if by_stat and pid != me:
                    counts[pid] = os.stat(f"{proc}/{entry}/fd").st_size
                    continue
                fds = os.listdir(f"{proc}/{entry}/fd")
            except PermissionError:
                unreadable.add(pid)
                continue
            except OSError:  # the process ended while we looked
                continue
            counts[pid] = len(fds)
            fds_of[pid] = fds
        owners: dict[int, int] = {}
        found: dict[int, tuple[int, str]] = {}
        readlink = os.readlink
        for ino, (pid, fd) in self._owners.items():
            if ino in wanted and pid in counts:
                try:
                    if readlink(f"{proc}/{pid}/fd/{fd}") == f"socket:[{ino}]":
                        owners[ino] = pid
                        found[ino] = (pid, fd)
                except OSError:
                    pass
        missing = wanted - owners.keys() - self._unowned
        # A socket first seen now may belong to any process, but most that are not in the likely ones
        # (this one, those that held sockets, those new since the last reading) are connections that
        # closed within the second: the probes' own, which tick with this reading. Searching every
        # process for them each second listed every fd table of the host (565 of them on a busy test
        # host). They wait one reading; one still there then is searched for everywhere.
        deferred: set[int] = set()
        if missing:
            seen_before = missing & (self._owners.keys() | self._deferred)
            owning = {pid for pid, _ in self._owners.values()}
            likely: list[int] = []
            rest: list[int] = []
            for pid in counts:
                if pid not in self._links_unreadable:
                    (likely if pid == me or pid in owning or pid not in last_counts else rest).append(pid)
            likely.sort(key=lambda pid: pid not in owning)  # those that hold sockets open more of them
            for pid in likely:
                self._search(pid, fds_of, missing, owners, found)
                if not missing:
                    break
            deferred = missing - seen_before
            missing &= seen_before
            for pid in rest if missing else ():
                self._search(pid, fds_of, missing, owners, found)
                if not missing:
                    break
            self._unowned = (self._unowned & wanted) | missing
        else:
            self._unowned &= wanted
        self._deferred = deferred
        names = {pid: name for pid, name in self._names.items() if pid in counts and pid in last_counts}
        for pid in set(owners.values()):
            if pid not in names:
                names[pid] = procfs.comm(pid, proc)
        self._owners, self._names, self._counts, self._unreadable = found, names, counts, unreadable
        self._links_unreadable &= counts.keys()
        result.unreadable = len(unreadable)
        result.owners = owners
        result.names = names
        return result

    def _search(self, pid: int, fds_of: dict[int, list[str]], missing: set[int], owners: dict[int, int],
                found: dict[int, tuple[int, str]]) -> None:
        """Read the fd links of ``pid``, placing the ``missing`` sockets it holds."""
        fd_dir = f"{self.proc}/{pid}/fd"
        fds = fds_of.get(pid)
        if fds is None:
            try:
                fds = os.listdir(fd_dir)
            except OSError:  # ended, or not ours to read
                return
        try:
            for fd, ino in socket_fds(fd_dir, fds):
                if ino in missing:
                    missing.discard(ino)
                    owners[ino] = pid
                    found[ino] = (pid, fd)
        except PermissionError:
            self._links_unreadable.add(pid)


_owner_scan = OwnerScan()


def parse_ss(text: str, scan: ProcessScan | None = None) -> list[Row]:
    """Rows (see COLUMNS) from `ss -tuanieOH` output, owners filled from ``scan``."""
    return rows_from_matches(_SS_LINE.findall(text), scan)


def rows_from_matches(matches: list[tuple[str, ...]], scan: ProcessScan | None) -> list[Row]:
    """Rows from the regex matches of ss lines.

    ``hidden`` marks a socket with an inode (so some process holds it) whose
    process we could not read: only possible when not root.
    """
    owners = scan.owners if scan else {}
    names = scan.names if scan else {}
    can_hide = scan is not None and os.geteuid() != 0
    rows: list[Row] = []
    append = rows.append
    for (proto, state, recvq, sendq, local, remote, uid, ino,
         rtt, acked, received, lastsnd, lastrcv, retrans) in matches:
        pid = owners.get(int(ino))
        if rtt:
            append([proto, state, local, remote, int(recvq), int(sendq), pid,
                    names.get(pid) if pid is not None else None, int(uid) if uid else 0, int(ino),
                    float(rtt), int(retrans) if retrans else 0, int(lastsnd) if lastsnd else None,
                    int(lastrcv) if lastrcv else None, int(acked) if acked else 0,
                    int(received) if received else 0, can_hide and pid is None and ino != "0"])
        else:
            append([proto, state, local, remote, int(recvq), int(sendq), pid,
                    names.get(pid) if pid is not None else None, int(uid) if uid else 0, int(ino),
                    None, None, None, None, None, None, can_hide and pid is None and ino != "0"])
    return rows


def _endpoint(addr: tuple | None) -> str:  # type: ignore[type-arg]
    if not addr:
        return "*:*"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def psutil_rows() -> list[Row]:
    """Fallback without ss: psutil's view (no tcp_info, no owner uid of hidden sockets)."""
    import socket  # only the fallback needs these

    import psutil

    rows: list[Row] = []
    names: dict[int, str] = {}
    for conn in psutil.net_connections(kind="inet"):
        proto = "udp" if conn.type == socket.SOCK_DGRAM else "tcp"
        state = _PSUTIL_STATES.get(conn.status, conn.status)
        if proto == "udp":
            state = "ESTAB" if conn.raddr else "UNCONN"
        pid = conn.pid
        name = None
        if pid is not None:
            if pid not in names:
                try:
                    names[pid] = psutil.Process(pid).name()
                except psutil.Error:
                    names[pid] = "?"
            name = names[pid]
        rows.append([proto, state, _endpoint(conn.laddr), _endpoint(conn.raddr), 0, 0, pid, name, None, None,
                     None, None, None, None, None, None, pid is None and state != "TIME-WAIT"])
    return rows


def port_of(endpoint: str) -> int | None:
    """The port of "1.2.3.4:80", "[::1]:80" or "*:*" (None)."""
    _, _, port = endpoint.rpartition(":")
    return int(port) if port.isdigit() else None


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int] | None:
    """The kernel's ephemeral port range, read once in procfs.SETTLED_S seconds."""
    words = (procfs.read_settled(path) or b"").split()
    if len(words) < 2 or not (words[0].isdigit() and words[1].isdigit()):
        return None
    return int(words[0]), int(words[1])


def conntrack(base: str = "/proc/sys/net/netfilter") -> tuple[int | None, int | None]:
    """(entries, maximum) of the conntrack table; (None, None) on a host without conntrack. The
    maximum is read once in procfs.SETTLED_S seconds."""
    count = procfs.read_int(f"{base}/nf_conntrack_count")
    if count is None:
        return None, None
    return count, procfs.first_int(procfs.read_settled(f"{base}/nf_conntrack_max"))


def nofile_limit(pid: int, proc: str = "/proc") -> int | None:
    """The soft RLIMIT_NOFILE of ``pid`` from /proc/PID/limits (None: unreadable or unlimited), read
    once in procfs.SETTLED_S seconds."""
    data = procfs.read_settled(f"{proc}/{pid}/limits")
    at = data.find(b"\nMax open files") if data else -1
    if data is None or at < 0:
        return None
    soft = data[at + len(b"\nMax open files"):].split(None, 1)[0]
    return int(soft) if soft.isdigit() else None


#: Processes with fewer fds than this are not looked at: far from any sane limit.
FD_CANDIDATE_MIN = 64
#: A process below FD_CANDIDATE_MIN fds is counted again at one reading in this many (see OwnerScan).
FD_RECOUNT_EVERY = 5
FD_CANDIDATES_MAX = 200


def fd_pressure(scan: ProcessScan, top: int = TOP_FD_PROCESSES, proc: str = "/proc") -> list[JSONValue]:
    """Open fds against RLIMIT_NOFILE for the processes closest to their limit.

    The limit is read (one small /proc file) only for processes holding at
    least FD_CANDIDATE_MIN fds, at most FD_CANDIDATES_MAX of them, so a host
    with thousands of idle processes costs little; the ones nearest their
    limit are shown (by count when no limit is known).
    """
    heavy = sorted(((count, pid) for pid, count in scan.fds.items() if count >= FD_CANDIDATE_MIN), reverse=True)
    if not heavy:  # a quiet host: still show who holds the most
        heavy = sorted(((count, pid) for pid, count in scan.fds.items()), reverse=True)[:top]
    out: list[tuple[float, int, dict[str, JSONValue]]] = []
    for count, pid in heavy[:FD_CANDIDATES_MAX]:
        limit = nofile_limit(pid, proc)
        pct = round(100.0 * count / limit, 1) if limit else None
        name = scan.names.get(pid) or procfs.comm(pid, proc)
        out.append((pct or 0.0, count, {"pid": pid, "name": name, "fds": count, "limit": limit, "pct": pct}))
    out.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [row for _, _, row in out[:top]]


def summarize(rows: list[Row], scan: ProcessScan | None, *, expect_listen: Iterable[int] = (),
              source: str = "ss", time_wait: Sequence[tuple[int, str]] = ()) -> dict[str, Any]:
    """The summary fields of the ``conns`` Sample (see the module docstring), of ``rows`` and the
    TIME-WAIT sockets read as ``time_wait`` pairs instead of rows (Snapshot.time_wait).

    Run on every socket every second, so the per-socket work is left to C where it can be: the states
    are counted by Counter over itemgetter, and only TCP sockets that are not listening go through the
    loop over local ports. A host whose clients close first holds tens of thousands of TIME-WAIT sockets.
    """
    by_pair: Counter[tuple[str, str]] = Counter(map(itemgetter(C_PROTO, C_STATE), rows))
    if time_wait:
        by_pair["tcp", "TIME-WAIT"] += len(time_wait)
    listening = [row for row in rows if row[C_STATE] == "LISTEN"]
    # Inbound connections share their listener's port: only outbound ones use ephemeral ports.
    listen_ports: set[int] = {p for r in listening if (p := port_of(str(r[C_LOCAL])))}
    listeners: list[JSONValue] = [{"proto": r[C_PROTO], "local": str(r[C_LOCAL]), "pid": r[C_PID],
                                   "process": r[C_PROCESS]} for r in listening[:LISTENERS_SHOWN]]
    eph = ephemeral_range()
    eph_ports: set[int] = set()
    per_remote: Counter[str] = Counter()
    if eph is not None:
        low, high = eph
        for row in rows:
            if row[C_PROTO] != "tcp" or row[C_STATE] == "LISTEN":
                continue
            port = port_of(str(row[C_LOCAL]))
            if port is not None and low <= port <= high and port not in listen_ports:
                eph_ports.add(port)
                # Exhaustion happens per destination: each needs its own local port.
                per_remote[str(row[C_REMOTE])] += 1
        for port, remote in time_wait:
            if low <= port <= high and port not in listen_ports:
                eph_ports.add(port)
                per_remote[remote] += 1
    hidden_rows = [row for row in rows if row[C_HIDDEN]]
    hidden_uids = {row[C_UID] for row in hidden_rows if isinstance(row[C_UID], int)}
    ct_count, ct_max = conntrack()
    eph_size = eph[1] - eph[0] + 1 if eph else None
    top_remote = per_remote.most_common(1)
    top_count = top_remote[0][1] if top_remote else 0
    return {
        "source": source,
        "total": len(rows) + len(time_wait),
        "by_state": {f"{proto}:{state}": count for (proto, state), count in by_pair.items()},
        "listeners": listeners,
        "listen_ports": sorted(listen_ports),
        "listen_missing": sorted(set(expect_listen) - listen_ports),
        "ephemeral_low": eph[0] if eph else None,
        "ephemeral_high": eph[1] if eph else None,
        "ephemeral_size": eph_size,
        "ephemeral_used": len(eph_ports),
        "ephemeral_top_remote": top_remote[0][0] if top_remote else None,
        "ephemeral_top_count": top_count,
        "ephemeral_pct": round(100.0 * max(top_count, 0) / eph_size, 1) if eph_size else None,
        "conntrack_count": ct_count,
        "conntrack_max": ct_max,
        "conntrack_pct": round(100.0 * ct_count / ct_max, 1) if ct_count is not None and ct_max else None,
        "fd_top": fd_pressure(scan) if scan else [],
        "hidden_sockets": len(hidden_rows),
        "hidden_uids": sorted(hidden_uids),
        "unreadable_processes": scan.unreadable if scan else None,
        "euid": os.geteuid(),
    }


@dataclass
class Snapshot:
    rows: list[Row]
    scan: ProcessScan | None
    source: str
    elapsed_ms: float
    time_wait: sockdiag.TimeWait = field(default_factory=list)
    """TIME-WAIT sockets as pairs, not rows, when no table was asked for (see collect)."""


METHODS = ("auto", "netlink", "ss", "psutil")


def read_sockets(method: str = "auto", time_wait: sockdiag.TimeWait | None = None) -> tuple[list[Row], str]:
    """Every socket, without processes, and how it was read. Blocking: run it in a thread.

    "auto" tries the kernel's sock_diag netlink dump (probes.sockdiag), then
    ``ss -tuanieOH``, then psutil (which fills processes itself). With ``time_wait`` (a list), the
    netlink dump puts TIME-WAIT sockets there as pairs instead of rows; the others still give rows.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if method in ("auto", "netlink"):
        try:
            return sockdiag.dump_all(time_wait), "netlink"
        except OSError:
            if method == "netlink":
                raise
    if method in ("auto", "ss"):
        import shutil  # only this fallback needs it: it imports bz2 and lzma, ~3 ms of a fresh agent

        path = shutil.which("ss")
        if path is not None:
            done = subprocess.run([path, *SS_ARGS], capture_output=True, text=True, errors="replace", check=False)
            if done.returncode != 0:
                raise RuntimeError(f"ss failed ({done.returncode}): {done.stderr.strip()[:200]}")
            return parse_ss(done.stdout), "ss"
        if method == "ss":
            raise RuntimeError("ss not found: install iproute2")
    return psutil_rows(), "psutil"


def attach_owners(rows: list[Row], scan: ProcessScan) -> None:
    """Fill pid and process from the /proc scan; mark sockets of processes we may not read as hidden."""
    owners, names = scan.owners, scan.names
    can_hide = os.geteuid() != 0  # as root every process is readable: an unowned socket is the kernel's
    for row in rows:
        pid = owners.get(row[C_INO])
        if pid is not None:
            row[C_PID] = pid
            row[C_PROCESS] = names.get(pid)
        elif can_hide and row[C_INO]:
            row[C_HIDDEN] = True


async def collect(method: str = "auto", *, time_wait_rows: bool = True) -> Snapshot:
    """One full reading: sockets with tcp_info and their owning processes.

    The /proc scan follows the dump, so that it reads fd links only where the
    dump has sockets whose owner it does not know yet (OwnerScan). Without
    ``time_wait_rows`` the TIME-WAIT sockets are pairs in Snapshot.time_wait,
    not rows: for readers of the summary and pools only (an SSH agent's).
    """
    start = time.perf_counter()
    if method == "psutil":
        rows = await asyncio.to_thread(psutil_rows)
        return Snapshot(rows, None, "psutil", (time.perf_counter() - start) * 1000.0)
    time_wait: sockdiag.TimeWait = []

    def read() -> tuple[list[Row], str, ProcessScan | None]:
        rows, source = read_sockets(method, None if time_wait_rows else time_wait)
        if source == "psutil":
            return rows, source, None
        return rows, source, _owner_scan.scan(row[C_INO] for row in rows if isinstance(row[C_INO], int))

    rows, source, scan = await asyncio.to_thread(read)
    if scan is None:
        return Snapshot(rows, None, source, (time.perf_counter() - start) * 1000.0, time_wait)
    attach_owners(rows, scan)
    return Snapshot(rows, scan, source, (time.perf_counter() - start) * 1000.0, time_wait)


_shared: list[tuple[asyncio.AbstractEventLoop, float, asyncio.Future[Snapshot], bool]] = []
_table_streams = 0
"""How many conns streams send the whole table: while there is one, the shared reading keeps TIME-WAIT
sockets as rows (the table shows them); otherwise they are pairs (Snapshot.time_wait), which the
summary and the pools read at a third of a row's cost."""


async def collect_shared(max_age: float = 0.25, method: str = "auto", *, time_wait_rows: bool = False) -> Snapshot:
    """collect(), shared by every caller within ``max_age`` seconds (conns and pools tick together).

    The conns and pools probes both need the socket list every second; one
    reading serves both instead of running ss and the /proc scan twice. A
    caller that arrives while a reading is in flight waits for that reading.
    TIME-WAIT sockets are rows when ``time_wait_rows`` or while a table stream
    runs (_table_streams), pairs otherwise; a caller that wants rows never
    gets a reading that has pairs.
    """
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    rows_wanted = time_wait_rows or _table_streams > 0
    if _shared:
        owner, started, pending, with_rows = _shared[0]
        fresh = not pending.done() or (now - started <= max_age and pending.exception() is None)
        if owner is loop and fresh and method == "auto" and (with_rows or not rows_wanted):
            return await asyncio.shield(pending)
    if method != "auto":  # an explicit method (tests, a host without netlink) is not shared
        return await collect(method)
    future: asyncio.Future[Snapshot] = loop.create_future()
    _shared[:] = [(loop, now, future, rows_wanted)]
    try:
        snap = await collect(time_wait_rows=rows_wanted)
    except BaseException as exc:
        # Waiters get an error they turn into an error Sample, never our cancellation.
        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("socket reading cancelled"))
        future.exception()  # retrieved here; the waiters re-raise it themselves
        raise
    future.set_result(snap)
    return snap


def _int_list(value: JSONValue) -> list[int]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int)]
    return []


async def measure(host: str = LOCAL_HOST, *, table: bool = True, max_rows: int = DEFAULT_MAX_ROWS,
                  expect_listen: Iterable[int] = (), method: str = "auto") -> list[Sample]:
    snap = await collect_shared(method=method, time_wait_rows=table)
    summary = summarize(snap.rows, snap.scan, expect_listen=expect_listen, source=snap.source,
                        time_wait=snap.time_wait)
    summary["collect_ms"] = round(snap.elapsed_ms, 1)
    now = time.time()
    samples = [Sample(kind=KIND, target="", ts=now, host=host, fields=summary)]
    if table:
        rows = snap.rows
        truncated = max(0, len(rows) - max_rows)
        if truncated:
            # Keep the sockets that matter: anything not TIME-WAIT first.
            rows = sorted(rows, key=lambda r: r[C_STATE] == "TIME-WAIT")[:max_rows]
        fields: dict[str, Any] = {"columns": list(COLUMNS), "rows": rows,
                                        "truncated": truncated}
        samples.append(Sample(kind=TABLE_KIND, target="", ts=now, host=host, fields=fields))
    return samples


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    """Options: table (bool, default true), max_rows (int), expect_listen (list of ports),
    method ("auto", "netlink", "ss" or "psutil": how sockets are read; auto falls back in that order)."""
    opts = spec.options
    method = opts.get("method", "auto")
    if method not in METHODS:
        raise ValueError(f"conns: method must be one of {', '.join(METHODS)}")
    table = opts.get("table", True) is not False
    max_rows = opts.get("max_rows", DEFAULT_MAX_ROWS)
    limit = max_rows if isinstance(max_rows, int) and max_rows > 0 else DEFAULT_MAX_ROWS
    expect = _int_list(opts.get("expect_listen"))
    readings = scheduled(lambda: measure(host, table=table, max_rows=limit, expect_listen=expect,
                                         method=str(method)), kind=KIND,
                         target="", interval=spec.interval, timeout=spec.timeout, host=host)
    return _counted_as_table(readings) if table else readings


async def _counted_as_table(readings: AsyncIterator[Sample]) -> AsyncIterator[Sample]:
    """``readings``, counted in _table_streams from its first step to its end (the shared reading then
    keeps TIME-WAIT sockets as rows)."""
    global _table_streams
    _table_streams += 1
    try:
        async for sample in readings:
            yield sample
    finally:
        _table_streams -= 1
