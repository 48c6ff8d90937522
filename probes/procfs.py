"""Small readers of /proc shared by the host probes (system, conns): cheaper than psutil per call.

The host probes read every process once a second on hosts the responder is
triaging, so each read here is one open and one read (or one stat), with no
per-process objects. The host totals (CPU, memory, swap) come from two small
files too, so the host probes need no psutil on Linux: a production host's
python3 often has none and nothing can be installed there, and importing it
was 18 of a fresh SSH agent's ~100 ms of CPU. psutil stays for other
platforms' fallbacks.
"""

from __future__ import annotations

import os
import pwd
import time


def fd_count_by_stat(proc: str = "/proc") -> bool:
    """Whether the size of /proc/PID/fd is its number of open fds here (Linux 6.2+), and we may read them all.

    Only for the real /proc, as root: the kernel reports the count to anyone, but another user's fd
    table is not this user's to read, and a full scan would count that process as unreadable.
    """
    if proc != "/proc" or os.geteuid() != 0:
        return False
    try:
        return os.stat("/proc/self/fd").st_size > 0  # at least our stdin..stderr or this stat's own fd
    except OSError:
        return False


def comm(pid: int, proc: str = "/proc") -> str:
    """The kernel's name of the process (15 characters at most), or "?" when it is gone."""
    try:
        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().rstrip("\n")
    except OSError:
        return "?"


def read_small(path: str) -> bytes | None:
    """One /proc file of a few KB in one read (os.open/os.read: a file object costs more than the read)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)


#: How long a figure that hardly ever changes (a sysctl's maximum, a process's fd limit) is kept before
#: read_settled reads it again: a 1 Hz probe reads it once in this many seconds, at 5-10x a hot read's
#: cost each time (a probe's second is cold), and a change made during an incident (a limit raised with
#: prlimit, a wider port range) shows within them.
SETTLED_S = 10.0
_settled: dict[str, tuple[float, bytes | None]] = {}


def read_settled(path: str) -> bytes | None:
    """read_small(path), kept for SETTLED_S seconds. A /proc/PID path of a pid reused within them gives
    the old process's file until then; entries older than that go when there are many (ended pids)."""
    now = time.monotonic()
    kept = _settled.get(path)
    if kept is not None and now - kept[0] < SETTLED_S:
        return kept[1]
    if len(_settled) >= 512:  # list() copies in one step: the host probes read from two threads
        for old, (when, _) in list(_settled.items()):
            if now - when >= SETTLED_S:
                _settled.pop(old, None)
    data = read_small(path)
    _settled[path] = (now, data)
    return data


#: A pid list is listed again after this long even while /proc/loadavg's counts stay (see pid_entries).
PIDS_KEPT_S = SETTLED_S
_pid_lists: dict[str, tuple[bytes, float, tuple[str, ...]]] = {}


def pid_entries(proc: str = "/proc") -> tuple[str, ...]:
    """The process directories of ``proc`` (pids as text), listed again only when a process may have
    started or ended since the last listing.

    Listing /proc is ~1 ms of CPU a second on a host of 570 processes (a second is a cold call), and
    two host probes list it every second. /proc/loadavg's last two figures, the number of tasks and the
    last pid handed out, move with every fork, thread start and exit; while both stay, so does the
    list. It is listed again every PIDS_KEPT_S anyway: a process of another pid namespace starting as
    one of ours ends leaves both figures where they were. A host that forks every second lists every
    second, as before. (The counts are read before the listing, so a change during it shows next time.)
    """
    figures = (read_small(f"{proc}/loadavg") or b"").split()
    key = figures[3].rpartition(b"/")[2] + b" " + figures[4] if len(figures) >= 5 else b""
    now = time.monotonic()
    kept = _pid_lists.get(proc)
    if key and kept is not None and kept[0] == key and now - kept[1] < PIDS_KEPT_S:
        return kept[2]
    entries = tuple(entry for entry in os.listdir(proc) if entry.isdigit())
    _pid_lists[proc] = (key, now, entries)  # one assignment: the host probes read from two threads
    return entries


def first_int(data: bytes | None) -> int | None:
    """The first word of a /proc or /proc/sys file as an int (None: unread, empty or not a number)."""
    words = data.split(None, 1) if data else None
    try:
        return int(words[0]) if words else None
    except ValueError:
        return None


def read_int(path: str) -> int | None:
    """The first word of a small /proc or /proc/sys file as an int (None: unread, empty or not a number)."""
    return first_int(read_small(path))


def real_uid(pid: int, proc: str = "/proc") -> int | None:
    """The real uid of ``pid`` (the first of /proc/PID/status's Uid: line, as psutil's username uses)."""
    status = read_small(f"{proc}/{pid}/status")
    if status is None:
        return None
    at = status.find(b"\nUid:")
    if at < 0:
        return None
    words = status[at + 5:status.find(b"\n", at + 5)].split()
    return int(words[0]) if words and words[0].isdigit() else None


_user_names: dict[int, str] = {}


def user_name(uid: int) -> str:
    """The login name of ``uid`` (its number when the host has no such user), looked up once per uid:
    each getpwuid reads /etc/passwd (or asks NSS) again."""
    name = _user_names.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        _user_names[uid] = name
    return name


def fd_count(pid: int, by_stat: bool, proc: str = "/proc") -> int | None:
    """How many fds ``pid`` holds (None: not ours to read or gone); by_stat: see fd_count_by_stat."""
    try:
        if by_stat:
            return os.stat(f"{proc}/{pid}/fd").st_size
        return len(os.listdir(f"{proc}/{pid}/fd"))
    except OSError:
        return None


def meminfo(proc: str = "/proc") -> dict[bytes, int] | None:
    """/proc/meminfo in bytes by field name (b"MemTotal"...), or None when it cannot be read."""
    raw = read_small(f"{proc}/meminfo")
    if raw is None:
        return None
    fields: dict[bytes, int] = {}
    for line in raw.splitlines():
        name, _, rest = line.partition(b":")
        words = rest.split()
        if words and words[0].isdigit():
            fields[name] = int(words[0]) * (1024 if len(words) > 1 else 1)  # "kB", or a bare count
    return fields


def cpu_times(proc: str = "/proc") -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot from /proc/stat's first line, as psutil counts
    them for cpu_percent: total leaves out guest time (already inside user time), busy also idle and iowait."""
    raw = read_small(f"{proc}/stat")
    if raw is None or not raw.startswith(b"cpu "):
        return None
    try:
        ticks = [int(word) for word in raw[4:raw.index(b"\n")].split()]
    except ValueError:
        return None
    if len(ticks) < 5:
        return None
    total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal; guest, guest_nice after
    return total - ticks[3] - ticks[4], total
