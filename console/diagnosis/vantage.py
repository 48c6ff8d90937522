"""Diagnosis rules that need more than one vantage point, and rules about the SSH hosts themselves."""

from __future__ import annotations

from collections.abc import Iterable

from console.diagnosis.registry import Finding, rule
from console.engine.store import Store

KIND_STATUS = "host_status"
WINDOW = 30.0
_TERMINAL = {"auth_failed", "host_key_unknown", "host_key_changed", "agent_failed", "config_error"}


@rule
def only_some_vantage_points_fail(store: Store) -> Iterable[Finding]:
    """A target that fails from some hosts while others reach it: the cause is on those hosts' path."""
    by_target: dict[str, list[tuple[str, str]]] = {}
    for host, kind, target in store.keys(kind="tcp"):
        by_target.setdefault(target, []).append((host, kind))
    for target, series in by_target.items():
        if len(series) < 2:
            continue
        failing, fine = [], []
        for host, kind in series:
            stats = store.stats((host, kind, target), seconds=WINDOW)
            if stats.count < 3:
                continue
            if stats.loss_pct is not None and stats.loss_pct >= 50:
                failing.append((host, stats))
            elif stats.loss_pct == 0:
                fine.append(host)
        if not failing or not fine:
            continue
        names = ", ".join(h for h, _ in failing)
        evidence = tuple(f"{h}: {s.count - s.ok} of {s.count} connects failed in {WINDOW:.0f} s, last error "
                         f"{s.last_error}: {s.last_message}" for h, s in failing)
        evidence += (f"fine from {', '.join(fine)} over the same window",)
        yield Finding(
            rule="only_some_vantage_points_fail",
            title=f"{target} fails only from {names}; {', '.join(fine)} reach it",
            severity="critical",
            layer="tcp",
            confidence=0.8,
            evidence=evidence,
            series=tuple((h, "tcp", target) for h, _ in failing) + tuple((h, "tcp", target) for h in fine),
            target=target, host=failing[0][0], window_s=WINDOW,
            chain=(f"connects to {target} fail from {names}", f"the same target answers from {', '.join(fine)}",
                   f"the cause is on {names}'s way to it, not the service"),
            next_step=(f"the fault is on {names}'s path, not the service: compare its routes (ip route get), "
                       "firewall rules, security group and conntrack table with a host that works"),
        )


@rule
def remote_host_not_probing(store: Store) -> Iterable[Finding]:
    """A configured SSH host that is not running probes: its vantage point is missing from the evidence."""
    for key in store.keys(kind=KIND_STATUS):
        last = store.last(key)
        if last is None:
            continue
        state = str(last.fields.get("state", ""))
        if state in _TERMINAL:
            yield Finding(
                rule="remote_host_not_probing",
                title=f"{last.host} is not probing: {state.replace('_', ' ')}",
                severity="warning",
                layer="ssh",
                confidence=1.0,
                evidence=(str(last.message or last.fields.get("detail", "")),),
                series=(key,), host=last.host,
                next_step="fix what the line says (for host keys: verify the fingerprint, then "
                          "--accept-new-host-keys), then restart warroom",
            )
        elif state == "reconnecting":
            yield Finding(
                rule="remote_host_not_probing",
                title=f"{last.host} disconnected, reconnecting",
                severity="info",
                layer="ssh",
                confidence=0.5,
                evidence=(str(last.message or ""),),
                series=(key,), host=last.host,
                next_step=f"samples from {last.host} stopped; check that the host is up and reachable over SSH",
            )
