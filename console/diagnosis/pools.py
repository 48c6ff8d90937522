"""Diagnosis rules for the host panes: full pools, leaked connections, exhausted host limits.

Each rule reads the newest Samples of the conns / pools / *_pool / system
probes from the store and returns Findings; no I/O, no screen.

A host finding is about a target when it explains one: a pool or leaked
connections whose peer is the target's address, ephemeral ports used up
toward it, the fd limit of the process that calls it, a full conntrack table
while a target loses connects. It then carries that target (and ranks with
the target findings); otherwise its target is "" and it is listed under
"this host".
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from console.diagnosis.evidence import collect, target_for_endpoint
from console.diagnosis.registry import Finding, rule
from console.engine.store import SeriesKey, Store
from probes.samples import Sample

#: Kinds whose Samples carry a ``gauges`` list (see probes.pools.gauge).
POOL_KINDS = ("pools", "pg_pool", "redis_pool", "metrics_pool")
#: A pool must sit at its maximum this long before it is a finding (a burst is not).
AT_MAX_MIN_S = 5.0
#: CLOSE-WAIT sockets in one group before it looks like a leak rather than a moment.
CLOSE_WAIT_MIN = 5
CLOSE_WAIT_CRITICAL = 50
NEAR_LIMIT_PCT = 80.0
AT_LIMIT_PCT = 95.0


def _latest(store: Store, kind: str) -> Iterable[tuple[SeriesKey, Sample]]:
    for key in store.keys(kind=kind):
        sample = store.last(key)
        if sample is not None:
            yield key, sample


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _endpoint_of(text: object) -> str | None:
    """"ip:port" from a socket label ("proc[1] → 10.0.0.5:5432") or a DSN label (postgresql://u@h:p/db)."""
    if not isinstance(text, str) or not text:
        return None
    if "://" in text:
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port
        except ValueError:
            return None
        if not host or not port:
            return None
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return text.rsplit("→", 1)[-1].strip() or None


def _explained(store: Store, text: object, host: str) -> str:
    """The target whose endpoint ``text`` names, or "" (a finding about this host)."""
    endpoint = _endpoint_of(text)
    return (target_for_endpoint(store, endpoint, host) or "") if endpoint else ""


def _about(target: str, what: str) -> str:
    return f"{target}: {what}" if target else what


@rule
def pool_at_max(store: Store) -> Iterable[Finding]:
    """A pool (declared, server-side or from /metrics) at its maximum for a while: callers wait."""
    for kind in POOL_KINDS:
        for key, sample in _latest(store, kind):
            if not sample.ok:
                if sample.error == "server-full":
                    target = _explained(store, sample.target, sample.host)
                    server = "PostgreSQL" if kind == "pg_pool" else "the server"
                    yield Finding(rule="pool_server_full",
                                  title=_about(target, f"{server} at {sample.target} has no free connection slots "
                                                       "(too many clients)"),
                                  severity="critical", layer="pool", confidence=0.9,
                                  evidence=(f"{kind}: {sample.error}: {sample.message}",), series=(key,),
                                  chain=("new connections are refused by the server", "every connection slot "
                                         "is taken", "clients hold more connections than the server allows: a "
                                         "leak, or pools sized above max_connections"),
                                  target=target, host=sample.host, subject=sample.target,
                                  next_step="find which clients hold the slots (pg_stat_activity / CLIENT LIST) "
                                            "and whether a pool leaks or is sized above the server's limit")
                continue
            gauges = sample.fields.get("gauges")
            if not isinstance(gauges, list):
                continue
            for g in gauges:
                if not isinstance(g, dict):
                    continue
                used, maximum, at_max = _num(g.get("used")), _num(g.get("max")), _num(g.get("at_max_s")) or 0.0
                if used is None or not maximum or used < maximum or at_max < AT_MAX_MIN_S:
                    continue
                evidence = [f"{g.get('name')}: {used:g} of {maximum:g} in use for {at_max:.0f} s"]
                waiting = _num(g.get("waiting"))
                if waiting:
                    evidence.append(f"{waiting:g} waiting")
                if g.get("where"):
                    evidence.append(f"connections: {g.get('where')}")
                target = _explained(store, g.get("where") or sample.target, sample.host)
                yield Finding(
                    rule="pool_at_max",
                    title=_about(target, f"pool {g.get('name')} is at its maximum ({used:g}/{maximum:g}) "
                                         f"for {at_max:.0f} s"),
                    severity="critical", layer="pool", confidence=0.8 if waiting else 0.7,
                    evidence=tuple(evidence), series=(key,), target=target, host=sample.host,
                    subject=str(g.get("name")),
                    chain=("callers wait for a connection", f"pool {g.get('name')} has all {maximum:g} in use"),
                    next_step="callers queue for a connection: look for slow queries or connections held "
                              "across slow calls (idle in transaction), then for a leak; raise the maximum last",
                )


@rule
def close_wait_piling(store: Store) -> Iterable[Finding]:
    """Sockets in CLOSE-WAIT: the peer closed, our process never did - leaked connections."""
    for key, sample in _latest(store, "pools"):
        groups = sample.fields.get("groups") if sample.ok else None
        if not isinstance(groups, list):
            continue
        for g in groups:
            if not isinstance(g, dict):
                continue
            count = int(_num(g.get("close_wait")) or 0)
            if count < CLOSE_WAIT_MIN:
                continue
            growth = int(_num(g.get("close_wait_growth")) or 0)
            span = _num(g.get("growth_span_s")) or 0.0
            evidence = [f"pools: {g.get('label')}: {count} of {g.get('open')} connections in CLOSE_WAIT"]
            if growth > 0:
                evidence.append(f"pools: +{growth} in the last {span:.0f} s")
            target = _explained(store, g.get("endpoint") if g.get("direction") == "out" else None, sample.host)
            yield Finding(
                rule="close_wait_piling",
                title=_about(target, f"{count} connections stuck in CLOSE_WAIT in {g.get('label')}"
                                     + (" and growing" if growth > 0 else "")),
                severity="critical" if count >= CLOSE_WAIT_CRITICAL or growth > 0 else "warning",
                layer="pool", confidence=0.8, evidence=tuple(evidence), series=(key,),
                target=target, host=sample.host, subject=str(g.get("label")),
                chain=("connections pile up", f"{g.get('process') or 'a process'} never closes sockets the peer "
                       "closed (CLOSE_WAIT)", "a connection leak: no close/return to the pool on an error path"),
                next_step="the other side closed these and the application never called close(): "
                          "a connection leak (missing close/return to pool on an error path)",
            )


def _pct_finding(rule_name: str, what: str, pct: float | None, detail: str, key: SeriesKey,
                 next_step: str, target: str = "") -> Iterable[Finding]:
    if pct is None or pct < NEAR_LIMIT_PCT:
        return
    yield Finding(rule=rule_name, title=_about(target, f"{what} at {pct:.0f}% of its limit"),
                  severity="critical" if pct >= AT_LIMIT_PCT else "warning", layer="host",
                  confidence=0.8 if pct >= AT_LIMIT_PCT else 0.5, evidence=(detail,), series=(key,),
                  next_step=next_step, target=target, host=key[0], subject=what)


def _losing_targets(store: Store, host: str) -> list[str]:
    """Targets on ``host`` whose connects time out or whose echoes are lost: what a full conntrack table explains."""
    out = []
    for (h, target), ev in sorted(collect(store).items()):
        if h == host and any(s.error == "timeout" for kind in ("tcp", "icmp") for s in ev.attempts(kind)):
            out.append(target)
    return out


def _callers(store: Store, host: str) -> dict[int, str]:
    """pid -> the target that process is connected to (from the newest pools Sample of ``host``)."""
    out: dict[int, str] = {}
    for key in store.keys(kind="pools", host=host):
        sample = store.last(key)
        groups = sample.fields.get("groups") if sample is not None and sample.ok else None
        for g in groups if isinstance(groups, list) else []:
            if isinstance(g, dict) and isinstance(g.get("pid"), int) and g.get("direction") == "out":
                target = _explained(store, g.get("endpoint"), host)
                if target:
                    out.setdefault(int(g["pid"]), target)  # type: ignore[arg-type]
    return out


@rule
def host_limits_near(store: Store) -> Iterable[Finding]:
    """Ephemeral ports, the conntrack table or file descriptors close to exhaustion."""
    for key, sample in _latest(store, "conns"):
        if not sample.ok:
            continue
        f = sample.fields
        yield from _pct_finding(
            "ephemeral_ports", f"ephemeral ports to {f.get('ephemeral_top_remote')}", _num(f.get("ephemeral_pct")),
            f"conns: {f.get('ephemeral_top_count')} local ports used towards {f.get('ephemeral_top_remote')}, "
            f"range {f.get('ephemeral_low')}-{f.get('ephemeral_high')}", key,
            "connect() will fail with EADDRNOTAVAIL: reuse connections (keep-alive, pooling) or widen "
            "net.ipv4.ip_local_port_range; many TIME-WAIT means short-lived connections",
            target=_explained(store, f.get("ephemeral_top_remote"), sample.host))
        conntrack_pct = _num(f.get("conntrack_pct"))
        losing = _losing_targets(store, sample.host) if (conntrack_pct or 0) >= NEAR_LIMIT_PCT else []
        yield from _pct_finding(
            "conntrack_full", "the conntrack table", conntrack_pct,
            f"conns: {f.get('conntrack_count')} of {f.get('conntrack_max')} conntrack entries"
            + (f"; targets losing connects meanwhile: {', '.join(losing)}" if losing else ""), key,
            "new flows get dropped silently ('nf_conntrack: table full' in dmesg): raise "
            "net.netfilter.nf_conntrack_max or exempt high-volume flows from tracking",
            target=losing[0] if losing else "")
        fd_top = f.get("fd_top")
        callers = _callers(store, sample.host) if isinstance(fd_top, list) and fd_top else {}
        for proc in fd_top if isinstance(fd_top, list) else []:
            if isinstance(proc, dict):
                pid = proc.get("pid")
                yield from _pct_finding(
                    "fd_exhaustion", f"open files of {proc.get('name')}[{pid}]", _num(proc.get("pct")),
                    f"conns: {proc.get('fds')} of {proc.get('limit')} file descriptors (RLIMIT_NOFILE)", key,
                    "accept()/connect()/open() fail with EMFILE: look for leaked sockets, or raise LimitNOFILE",
                    target=callers.get(pid, "") if isinstance(pid, int) else "")
        missing = f.get("listen_missing")
        if isinstance(missing, list) and missing:
            target = next((ev.target for (h, _t), ev in sorted(collect(store).items())
                           if h == sample.host and ev.port in missing
                           and any(a.startswith("127.") or a == "::1" for a in ev.addresses())), "")
            yield Finding(rule="listener_missing",
                          title=_about(target, f"nothing listens on port {', '.join(map(str, missing))}"),
                          severity="warning", layer="host", confidence=0.6,
                          evidence=(f"conns: expected listening ports not bound: "
                                    f"{', '.join(map(str, missing))}",), series=(key,),
                          target=target, host=sample.host,
                          next_step="the service is down or bound elsewhere: check its process and logs")
    for key, sample in _latest(store, "system"):
        if sample.ok:
            used, limit = _num(sample.fields.get("open_fds")), _num(sample.fields.get("fd_max"))
            if used is not None and limit:
                yield from _pct_finding("fd_exhaustion", "system-wide open files", 100.0 * used / limit,
                                        f"{used:g} of {limit:g} file handles (fs.file-max)", key,
                                        "raise fs.file-max or find the process holding the handles")
