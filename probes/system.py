"""Host pressure: CPU, memory, load, open file descriptors, top processes.

On Linux every figure is read from /proc (probes/procfs.py), so the probe runs
on any python3 of a host, psutil or not; elsewhere CPU and memory come from
psutil, imported only then.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

from probes import procfs
from probes.runtime import ProbeSpec, scheduled
from probes.samples import LOCAL_HOST, JSONValue, Sample

KIND = "system"
TOP_PROCESSES = 5


def _open_fds() -> int | None:
    """System-wide allocated file handles, from the kernel's own count."""
    return procfs.read_int("/proc/sys/fs/file-nr")


def _fd_max() -> int | None:
    """fs.file-max, read once in procfs.SETTLED_S seconds."""
    return procfs.first_int(procfs.read_settled("/proc/sys/fs/file-max"))


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


#: A process that used no CPU at its last reading is read again within this many readings; one that
#: used some, one never measured and one shown in the top list are read at every reading.
IDLE_EVERY = 5


class CpuTicks:
    """Each process's CPU time between two readings, from /proc/PID/stat alone.

    One small read per process and no per-process objects: psutil's
    process_iter with cpu_percent reads and parses more per process (and its
    name() re-reads the command line of every process whose name fills the
    15 characters the kernel keeps), about five times the CPU on a quiet host,
    every second. The stat line read is kept, so the few processes shown take
    their name and RSS from it (``details``) instead of reading it again.

    Most processes of a host sleep: a process idle at its last reading is read
    again at one reading in IDLE_EVERY (a fifth of them each second, by pid),
    so a host of 500 processes costs about a fifth of 500 stat reads a second
    (~2 ms less CPU a second on the test machine), and a process that wakes up
    and spins is in the list within IDLE_EVERY seconds; from then on it is read
    every second. Its first figure is its average since its last reading.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._last: dict[int, tuple[bytes, int, float, float | None]] = {}
        """pid -> (starttime, utime+stime ticks, when read, cpu % then or None when not measured)."""
        self._stat: dict[int, bytes] = {}
        self._readings = 0
        self._shown: set[int] = set()
        self.count = 0
        """How many processes the last reading saw."""
        self.reads = 0
        """How many stat lines the last reading read."""

    def busiest(self, limit: int) -> list[tuple[float, int]]:
        """(cpu %, pid) of the ``limit`` busiest processes since the last call (0 % on the first)."""
        now = time.monotonic()
        self._readings += 1
        turn = self._readings % IDLE_EVERY
        seen: dict[int, tuple[bytes, int, float, float | None]] = {}
        stats: dict[int, bytes] = {}
        usage: list[tuple[float, int]] = []
        last, last_stat, shown = self._last, self._stat, self._shown
        reads = 0
        for entry in procfs.pid_entries(self.proc):
            pid = int(entry)
            before = last.get(pid)
            if before is not None and before[3] == 0.0 and pid % IDLE_EVERY != turn and pid not in shown:
                seen[pid] = before  # idle when last read, and not its turn: it stays at 0 %
                stats[pid] = last_stat[pid]
                usage.append((0.0, pid))
                continue
            stat = procfs.read_small(f"{self.proc}/{entry}/stat")
            if stat is None:  # ended while we looked
                continue
            reads += 1
            close = stat.rfind(b")")
            fields = stat[close + 2:].split(b" ", 20)
            try:
                ticks = int(fields[11]) + int(fields[12])  # utime + stime
            except (IndexError, ValueError):
                continue
            start = fields[19] if len(fields) > 19 else b""  # starttime: tells a reused pid from the old process
            cpu: float | None = None
            if before is not None and before[0] == start and now > before[2]:
                cpu = 100.0 * (ticks - before[1]) / _CLOCK_TICKS / (now - before[2])
            seen[pid] = (start, ticks, now, cpu)
            stats[pid] = stat
            usage.append((cpu or 0.0, pid))
        self._last, self._stat = seen, stats
        self.count, self.reads = len(seen), reads
        usage.sort(reverse=True)
        top = usage[:limit]
        self._shown = {pid for _, pid in top}
        return top

    def details(self, pid: int) -> tuple[str, bytes, float] | None:
        """(kernel name, starttime, RSS in MB) of ``pid`` from the last reading's stat line."""
        stat = self._stat.get(pid)
        if stat is None:
            return None
        close = stat.rfind(b")")
        fields = stat[close + 2:].split(b" ", 22)
        try:
            rss_pages = int(fields[21])
        except (IndexError, ValueError):
            return None
        name = stat[stat.find(b"(") + 1:close].decode("utf-8", "replace")
        return name, fields[19], round(rss_pages * _PAGE_SIZE / 1048576, 1)


_ticks = CpuTicks()
_count_fds_by_stat = procfs.fd_count_by_stat()
_first_words: dict[tuple[int, bytes], str] = {}
"""(pid, starttime) -> the command line's first word, for processes whose kernel name fills 15 characters."""
_uids: dict[tuple[int, bytes], int] = {}
"""(pid, starttime) -> real uid, for the processes shown: read once while one stays in the list (a
daemon that drops root does so as it starts, before its first second in the list)."""


def _process_name(pid: int, start: bytes, kernel_name: str) -> str:
    """The name psutil's name() gives: the kernel's, or, when that fills its 15 characters, the command
    line's first word where it starts with it. The command line is read once per process: it is not
    short, and it does not change. (A kernel thread's name does, and its command line is empty.)"""
    if len(kernel_name) < 15:
        return kernel_name or "?"
    key = (pid, start)
    first = _first_words.get(key)
    if first is None:
        raw = procfs.read_small(f"/proc/{pid}/cmdline") or b""
        first = _first_words[key] = os.path.basename(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))
    return first if first and first.startswith(kernel_name) else kernel_name


def _top_processes(limit: int) -> list[JSONValue]:
    """The busiest processes: CPU from /proc/PID/stat for every process (CpuTicks); name and RSS from
    the same stat line, user and fds (one small read and one stat more) only for the ``limit`` shown."""
    rows: list[JSONValue] = []
    alive: set[tuple[int, bytes]] = set()
    for cpu, pid in _ticks.busiest(limit):
        details = _ticks.details(pid)
        if details is None:
            continue
        kernel_name, start, rss_mb = details
        alive.add((pid, start))
        uid = _uids.get((pid, start))
        if uid is None:
            uid = procfs.real_uid(pid)
            if uid is None:  # ended since the reading
                continue
            _uids[pid, start] = uid
        rows.append({"pid": pid, "name": _process_name(pid, start, kernel_name), "cpu": round(cpu, 1),
                     "rss_mb": rss_mb, "user": procfs.user_name(uid),
                     # None: another user's process (root would show more)
                     "fds": procfs.fd_count(pid, _count_fds_by_stat)})
    for kept in (_first_words, _uids):
        for key in [key for key in kept if key not in alive]:
            del kept[key]
    return rows


def _percent(used: float, total: float) -> float:
    return round(100.0 * used / total, 1) if total > 0 else 0.0


class CpuPercent:
    """Whole-host CPU busy % since the previous call (since creation on the first), as
    psutil.cpu_percent(interval=None) gives it, from /proc/stat's first line."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._last = procfs.cpu_times(proc)

    def __call__(self) -> float | None:
        now = procfs.cpu_times(self.proc)
        last, self._last = self._last, now
        if now is None or last is None:
            return None
        busy, total = now[0] - last[0], now[1] - last[1]
        return round(min(max(0.0, 100.0 * busy / total), 100.0), 1) if total > 0 else 0.0


_cpu_percent = CpuPercent()


def _cpu_and_memory() -> dict[str, JSONValue]:
    """CPU %, CPU count, memory and swap: from /proc/stat and /proc/meminfo on Linux (the figures
    psutil computes from the same files), from psutil where those are not there."""
    mem = procfs.meminfo()
    cpu = _cpu_percent()
    if mem is not None and cpu is not None and b"MemAvailable" in mem:  # MemAvailable: Linux 3.14+
        total, available = mem.get(b"MemTotal", 0), mem[b"MemAvailable"]
        swap_total = mem.get(b"SwapTotal", 0)
        return {"cpu_percent": cpu, "cpu_count": os.cpu_count() or 1,
                "mem_percent": _percent(total - available, total),
                "mem_used_mb": round((total - available) / 1048576, 1),
                "mem_total_mb": round(total / 1048576, 1),
                "swap_percent": _percent(swap_total - mem.get(b"SwapFree", 0), swap_total)}
    import psutil  # not Linux (or a /proc without these files)

    vm = psutil.virtual_memory()
    return {"cpu_percent": psutil.cpu_percent(interval=None), "cpu_count": psutil.cpu_count() or 1,
            "mem_percent": vm.percent, "mem_used_mb": round((vm.total - vm.available) / 1048576, 1),
            "mem_total_mb": round(vm.total / 1048576, 1), "swap_percent": psutil.swap_memory().percent}


def snapshot(top: int = TOP_PROCESSES) -> dict[str, JSONValue]:
    """One reading of the host; blocking (it reads /proc), so call it in a thread."""
    load1, load5, load15 = os.getloadavg()
    return {
        **_cpu_and_memory(),
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "load15": round(load15, 2),
        "open_fds": _open_fds(),
        "fd_max": _fd_max(),
        "top": _top_processes(top),
        "procs": _ticks.count,  # counted by the reading of every process that _top_processes just made
    }


async def measure(host: str = LOCAL_HOST, top: int = TOP_PROCESSES) -> Sample:
    fields = await asyncio.to_thread(snapshot, top)
    return Sample(kind=KIND, target="", ts=time.time(), host=host, fields=fields)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    top = spec.options.get("top", TOP_PROCESSES)
    limit = top if isinstance(top, int) else TOP_PROCESSES
    return scheduled(lambda: measure(host, limit), kind=KIND, target="", interval=spec.interval,
                     timeout=spec.timeout, host=host)
