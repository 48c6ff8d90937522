"""Connection pools as the sockets show them: no instrumentation in the application needed.

Every open TCP connection is grouped by (process, remote endpoint). For an
outbound connection the endpoint is the server it talks to ("10.0.0.5:5432");
for an inbound one (its local port is a listening port here) it is the
listening port (":5432 in"), so a server's clients form one group instead of
one per client port. Per group: open connections, how many carried data in
the last ``active_ms`` (from tcp_info's lastsnd/lastrcv) versus idle,
CLOSE-WAIT count (the peer closed, our process has not: a leak), and growth
over the last ``growth_window`` seconds.

Declared pools (``options.pools``: ``[{name, process, remote, max}]``) turn a
group into a gauge: utilization %, and how long it has sat at its maximum.

One ``pools`` Sample per refresh carries every group (capped) and the gauges.
Every pool-ish probe (pools, pg_pool, redis_pool, metrics_pool) yields a
``gauges`` list of the same shape (see ``gauge``) so the gauges pane and the
"pool at maximum" rule read them all alike.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from probes import conns
from probes.runtime import ProbeSpec, scheduled
from probes.samples import LOCAL_HOST, JSONValue, Sample

KIND = "pools"
DEFAULT_ACTIVE_MS = 5000
DEFAULT_GROWTH_WINDOW = 300.0
MAX_GROUPS = 50


def gauge(name: str, source: str, used: int | None, maximum: int | None, *, at_max_s: float = 0.0,
          **extra: JSONValue) -> dict[str, JSONValue]:
    """One pool gauge, the shape every pool probe reports."""
    util = round(100.0 * used / maximum, 1) if used is not None and maximum else None
    out: dict[str, JSONValue] = {"name": name, "source": source, "used": used, "max": maximum,
                                 "util_pct": util, "at_max_s": round(at_max_s, 1)}
    out.update(extra)
    return out


class AtMaxClock:
    """How long each key has been at (or over) its maximum without a break."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def update(self, key: str, at_max: bool, now: float) -> float:
        if not at_max:
            self._since.pop(key, None)
            return 0.0
        return now - self._since.setdefault(key, now)


@dataclass(frozen=True)
class DeclaredPool:
    """A pool whose maximum the user told us: which process, which remote, how many."""

    name: str
    max: int
    process: str | None = None
    """Process name (substring, case-insensitive) or pid; None matches any process."""
    remote: str | None = None
    """"host:port", ":port"/"port" or "host"; None matches any remote."""

    def matches(self, pid: int | None, process: str | None, endpoint: str) -> bool:
        if self.process is not None:
            wanted = self.process.lower()
            if not (str(pid) == wanted or (process is not None and wanted in process.lower())):
                return False
        if self.remote is not None:
            remote = self.remote.strip()
            host, _, port = endpoint.rpartition(":")
            if remote.lstrip(":").isdigit():
                return port == remote.lstrip(":")
            if ":" in remote and not remote.startswith("["):
                return endpoint == remote
            return host.strip("[]") == remote.strip("[]") or endpoint == remote
        return True

    @classmethod
    def from_dict(cls, data: dict[str, JSONValue]) -> DeclaredPool:
        name, maximum = data.get("name"), data.get("max")
        if not isinstance(name, str) or not name:
            raise ValueError("a pool needs a name")
        if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 1:
            raise ValueError(f"pool {name!r}: max must be a whole number >= 1")
        process, remote = data.get("process"), data.get("remote")
        return cls(name=name, max=maximum, process=str(process) if process not in (None, "") else None,
                   remote=str(remote) if remote not in (None, "") else None)


@dataclass
class Group:
    pid: int | None
    process: str | None
    direction: str
    endpoint: str
    uid: int | None = None
    open: int = 0
    active: int = 0
    close_wait: int = 0


def group_rows(rows: Iterable[conns.Row], active_ms: int = DEFAULT_ACTIVE_MS) -> dict[tuple, Group]:  # type: ignore[type-arg]
    """Open TCP connections grouped by (pid, process, direction, endpoint)."""
    rows = list(rows)
    listen_ports = {conns.port_of(str(r[conns.C_LOCAL])) for r in rows
                    if r[conns.C_PROTO] == "tcp" and r[conns.C_STATE] == "LISTEN"}
    groups: dict[tuple, Group] = {}  # type: ignore[type-arg]
    for row in rows:
        if row[conns.C_PROTO] != "tcp" or row[conns.C_STATE] not in conns.OPEN_TCP_STATES:
            continue
        local_port = conns.port_of(str(row[conns.C_LOCAL]))
        if local_port in listen_ports:
            direction, endpoint = "in", f":{local_port}"
        else:
            direction, endpoint = "out", str(row[conns.C_REMOTE])
        pid = row[conns.C_PID] if isinstance(row[conns.C_PID], int) else None
        process = row[conns.C_PROCESS] if isinstance(row[conns.C_PROCESS], str) else None
        uid = row[conns.C_UID] if isinstance(row[conns.C_UID], int) else None
        key = (pid, process if pid is not None else uid, direction, endpoint)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(pid, process, direction, endpoint, uid)
        group.open += 1
        if row[conns.C_STATE] == "CLOSE-WAIT":
            group.close_wait += 1
        lastsnd, lastrcv = row[conns.C_LASTSND], row[conns.C_LASTRCV]
        recent = [v for v in (lastsnd, lastrcv) if isinstance(v, int)]
        if recent and min(recent) <= active_ms:
            group.active += 1
    return groups


def _label(group: Group) -> str:
    who = f"{group.process}[{group.pid}]" if group.pid is not None else f"? (uid {group.uid})"
    arrow = "→" if group.direction == "out" else "←"
    return f"{who} {arrow} {group.endpoint}"


@dataclass
class PoolWatch:
    """The probe's memory between refreshes: history for growth, clocks for time at 100%."""

    declared: list[DeclaredPool] = field(default_factory=list)
    active_ms: int = DEFAULT_ACTIVE_MS
    growth_window: float = DEFAULT_GROWTH_WINDOW
    max_groups: int = MAX_GROUPS
    history: dict[str, deque[tuple[float, int, int]]] = field(default_factory=dict)
    clock: AtMaxClock = field(default_factory=AtMaxClock)

    def _growth(self, key: str, now: float, open_: int, close_wait: int) -> tuple[int, int, float]:
        ring = self.history.setdefault(key, deque())
        ring.append((now, open_, close_wait))
        while ring and ring[0][0] < now - self.growth_window:
            ring.popleft()
        first = ring[0]
        return open_ - first[1], close_wait - first[2], now - first[0]

    def fields(self, rows: list[conns.Row], now: float) -> dict[str, JSONValue]:
        groups = sorted(group_rows(rows, self.active_ms).values(), key=lambda g: g.open, reverse=True)
        out_groups: list[JSONValue] = []
        gauges: list[JSONValue] = []
        seen: set[str] = set()
        per_pool: dict[str, list[Group]] = {}
        for group in groups:
            for pool in self.declared:
                if pool.matches(group.pid, group.process, group.endpoint):
                    per_pool.setdefault(pool.name, []).append(group)
                    break
        for index, group in enumerate(groups):
            label = _label(group)
            seen.add(label)
            growth, cw_growth, span = self._growth(label, now, group.open, group.close_wait)
            if index >= self.max_groups:
                continue
            out_groups.append({
                "label": label, "pid": group.pid, "process": group.process, "uid": group.uid,
                "direction": group.direction, "endpoint": group.endpoint, "open": group.open,
                "active": group.active, "idle": group.open - group.active, "close_wait": group.close_wait,
                "growth": growth, "close_wait_growth": cw_growth, "growth_span_s": round(span, 1),
            })
        for pool in self.declared:
            matched = per_pool.get(pool.name, [])
            # A pool lives in one process: with several matching processes
            # (workers) each gets its own gauge against the same maximum.
            targets: list[Group | None] = list(matched) or [None]
            for hit in targets:
                name = pool.name if hit is None or len(targets) == 1 else f"{pool.name} [{hit.pid}]"
                used = hit.open if hit else 0
                at_max = self.clock.update(name, used >= pool.max, now)
                gauges.append(gauge(
                    name, "sockets", used, pool.max, at_max_s=at_max,
                    active=hit.active if hit else 0, idle=(hit.open - hit.active) if hit else 0,
                    close_wait=hit.close_wait if hit else 0,
                    where=_label(hit) if hit else f"no connection matches {pool.process or '*'} → "
                                                        f"{pool.remote or '*'}",
                ))
        for stale in set(self.history) - seen:  # forget groups that went away
            del self.history[stale]
        return {"groups": out_groups, "groups_total": len(groups), "gauges": gauges,
                "active_ms": self.active_ms, "growth_window_s": self.growth_window}


async def measure(watch: PoolWatch, host: str = LOCAL_HOST) -> Sample:
    snap = await conns.collect_shared()
    now = time.time()
    fields = watch.fields(snap.rows, now)
    fields["hidden_sockets"] = sum(1 for r in snap.rows if r[conns.C_HIDDEN])
    return Sample(kind=KIND, target="", ts=now, host=host, fields=fields)


def watch_from_options(options: dict[str, JSONValue]) -> PoolWatch:
    """Options: pools (list of {name, process, remote, max}), active_ms, growth_window (s)."""
    raw = options.get("pools") or []
    declared = [DeclaredPool.from_dict(p) for p in raw if isinstance(p, dict)] if isinstance(raw, list) else []
    active = options.get("active_ms", DEFAULT_ACTIVE_MS)
    window = options.get("growth_window", DEFAULT_GROWTH_WINDOW)
    return PoolWatch(declared=declared,
                     active_ms=int(active) if isinstance(active, (int, float)) else DEFAULT_ACTIVE_MS,
                     growth_window=float(window) if isinstance(window, (int, float)) else DEFAULT_GROWTH_WINDOW)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    watch = watch_from_options(spec.options)
    return scheduled(lambda: measure(watch, host), kind=KIND, target="", interval=spec.interval,
                     timeout=spec.timeout, host=host)
