"""Host pressure from psutil: CPU, memory, load, open file descriptors, top processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import psutil

from probes.runtime import ProbeSpec, scheduled
from probes.samples import LOCAL_HOST, JSONValue, Sample

KIND = "system"
TOP_PROCESSES = 5


def _open_fds() -> int | None:
    """System-wide allocated file handles, from the kernel's own count."""
    try:
        with open("/proc/sys/fs/file-nr", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _fd_max() -> int | None:
    try:
        with open("/proc/sys/fs/file-max", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _top_processes(limit: int) -> list[JSONValue]:
    """The busiest processes. Only pid, name and CPU are read for every process;
    RSS, fds and user (the costly reads) only for the ``limit`` shown."""
    by_cpu = sorted(psutil.process_iter(["pid", "name", "cpu_percent"]),
                    key=lambda proc: proc.info.get("cpu_percent") or 0.0, reverse=True)
    rows: list[JSONValue] = []
    for proc in by_cpu[:limit]:
        info = proc.info
        row: dict[str, JSONValue] = {"pid": info["pid"], "name": info.get("name") or "?",
                                     "cpu": round(info.get("cpu_percent") or 0.0, 1)}
        try:
            with proc.oneshot():
                row["rss_mb"] = round(proc.memory_info().rss / 1048576, 1)
                row["user"] = proc.username()
                row["fds"] = proc.num_fds()
        except psutil.AccessDenied:
            row["fds"] = None  # another user's process: root would show more
        except psutil.NoSuchProcess:
            continue
        rows.append(row)
    return rows


def snapshot(top: int = TOP_PROCESSES) -> dict[str, JSONValue]:
    """One reading of the host; blocking (psutil walks /proc), so call it in a thread."""
    mem = psutil.virtual_memory()
    swap = psutil.swap_memory()
    load1, load5, load15 = os.getloadavg()
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "cpu_count": psutil.cpu_count() or 1,
        "mem_percent": mem.percent,
        "mem_used_mb": round((mem.total - mem.available) / 1048576, 1),
        "mem_total_mb": round(mem.total / 1048576, 1),
        "swap_percent": swap.percent,
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "load15": round(load15, 2),
        "open_fds": _open_fds(),
        "fd_max": _fd_max(),
        "procs": len(psutil.pids()),
        "top": _top_processes(top),
    }


async def measure(host: str = LOCAL_HOST, top: int = TOP_PROCESSES) -> Sample:
    fields = await asyncio.to_thread(snapshot, top)
    return Sample(kind=KIND, target="", ts=time.time(), host=host, fields=fields)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    top = spec.options.get("top", TOP_PROCESSES)
    limit = top if isinstance(top, int) else TOP_PROCESSES
    return scheduled(lambda: measure(host, limit), kind=KIND, target="", interval=spec.interval,
                     timeout=spec.timeout, host=host)
