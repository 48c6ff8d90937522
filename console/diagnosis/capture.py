"""Diagnosis rules over the capture probe's summaries: what the packets say about the failure.

Each rule merges the capture samples of the last ``WINDOW`` seconds per series
(one per host and interface) and reports what an on-call engineer would
conclude from them, with the counts as evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from console.diagnosis.evidence import target_for_endpoint
from console.diagnosis.registry import Finding, rule
from console.engine.store import SeriesKey, Store
from probes.pcapstream import merge

LAYER = "capture"
WINDOW = 60.0

#: What a TLS alert usually means, for the next step.
TLS_ALERT_ADVICE = {
    "protocol_version": "client and server share no TLS version: compare minimum/maximum versions on both sides",
    "handshake_failure": "no common cipher suite or a failed certificate check: compare cipher and cert settings",
    "certificate_required": "the server wants a client certificate: configure the client's cert and key",
    "bad_certificate": "a certificate was rejected: check the chain, key usage and client certificate",
    "unknown_ca": "a certificate's issuer is not trusted: install the CA bundle or fix the chain",
    "certificate_expired": "a certificate has expired: renew it",
    "unrecognized_name": "the server has no certificate for the SNI name: check the hostname the client sends",
    "decrypt_error": "a signature or Finished check failed: check keys and middleboxes rewriting TLS",
    "internal_error": "the peer failed internally: read the peer's TLS logs",
}


def windows(store: Store, seconds: float = WINDOW) -> Iterator[tuple[SeriesKey, dict[str, Any], dict[str, Any]]]:
    """(series, merged summary, last health) for each capture series with data in the window."""
    for key in store.keys(kind="capture"):
        samples = store.window(key, seconds)
        ok = [s.fields for s in samples if s.ok]
        if not ok:
            continue
        health = ok[-1].get("health") or {}
        yield key, merge(ok), health if isinstance(health, dict) else {}


def _target(store: Store, key: SeriesKey, dest: str) -> str:
    """The typed target at ``dest`` ("ip:port") seen from this capture's host, or "" (this host)."""
    return target_for_endpoint(store, dest, key[0]) or ""


def _where(key: SeriesKey) -> str:
    host, _, iface = key
    return f"{iface or 'capture'} on {host}"


@rule
def capture_syn_unanswered(store: Store) -> Iterable[Finding]:
    """SYNs to a destination that get neither SYN-ACK nor RST: dropped on the way or by a firewall."""
    for key, summary, _health in windows(store):
        for dest, row in summary["tcp"]["dest"].items():
            unanswered, syn, synack = row["unanswered"], row["syn"], row["synack"]
            if unanswered < 2:
                continue
            all_lost = synack == 0 and row["refused"] == 0
            yield Finding(
                rule="capture_syn_unanswered",
                target=_target(store, key, dest), host=key[0], window_s=WINDOW, subject=f"{key[2]} {dest}",
                title=(f"SYNs to {dest} get no answer: dropped by a firewall or on the path" if all_lost else
                       f"{unanswered} of {syn} SYNs to {dest} got no answer: partial drops or a full backlog"),
                severity="critical" if all_lost else "warning",
                layer=LAYER,
                confidence=0.85 if all_lost else 0.6,
                evidence=(f"{_where(key)}, last {WINDOW:.0f} s: {syn} SYNs, {synack} SYN-ACKs, "
                          f"{row['refused']} RSTs, {unanswered} unanswered, {row['syn_retrans']} SYN retransmissions",),
                series=(key,),
                next_step=("check firewalls and security groups between here and the server, and that the server "
                           "is up (a SYN that gets no reply at all is a drop, not a refusal)" if all_lost else
                           "check the server's listen backlog (ss -ltn: Recv-Q vs Send-Q) and packet loss on the path"),
            )


@rule
def capture_connections_refused(store: Store) -> Iterable[Finding]:
    """SYNs answered by RST: the host is there but nothing listens on the port, or a firewall rejects."""
    for key, summary, _health in windows(store):
        for dest, row in summary["tcp"]["dest"].items():
            if row["refused"] < 2:
                continue
            yield Finding(
                rule="capture_connections_refused",
                target=_target(store, key, dest), host=key[0], window_s=WINDOW, subject=f"{key[2]} {dest}",
                title=f"{dest} refuses connections: its side answers SYNs with RST",
                severity="critical" if row["synack"] == 0 else "warning",
                layer=LAYER,
                confidence=0.85,
                evidence=(f"{_where(key)}: {row['syn']} SYNs, {row['refused']} answered by RST, "
                          f"{row['synack']} by SYN-ACK",),
                series=(key,),
                next_step="check the service is running and listening on that port and address (ss -ltnp), "
                          "and for a firewall REJECT rule",
            )


@rule
def capture_server_resets(store: Store) -> Iterable[Finding]:
    """Established connections reset from the server side."""
    for key, summary, _health in windows(store):
        for dest, row in summary["tcp"]["dest"].items():
            if row["rst_server"] < 3:
                continue
            yield Finding(
                rule="capture_server_resets",
                target=_target(store, key, dest), host=key[0], window_s=WINDOW, subject=f"{key[2]} {dest}",
                title=f"the server side of {dest} resets connections ({row['rst_server']} RSTs)",
                severity="warning",
                layer=LAYER,
                confidence=0.6,
                evidence=(f"{_where(key)}: {row['rst_server']} RSTs from {dest}, {row['rst_client']} from clients",),
                series=(key,),
                next_step="read the server's and any load balancer's logs at those times; compare idle time-outs "
                          "of the client's pool with the server's",
            )


@rule
def capture_retransmissions(store: Store) -> Iterable[Finding]:
    """TCP data retransmitted: loss or a peer too slow to acknowledge."""
    for key, summary, _health in windows(store):
        tcp = summary["tcp"]
        for dest, row in tcp["dest"].items():
            target = _target(store, key, dest)
            if target and row["retrans"] + row["syn_retrans"] >= 3:  # joins the target's path finding (JOINS)
                yield Finding(rule="capture_retransmissions", target=target, host=key[0], window_s=WINDOW,
                              subject=f"{key[2]} {dest}",
                              title=f"{target}: {row['retrans']} TCP retransmissions toward {dest}",
                              severity="warning", layer=LAYER, confidence=0.6,
                              evidence=(f"{_where(key)}: {row['retrans']} retransmissions, {row['syn_retrans']} SYN "
                                        f"retransmissions toward {dest}",), series=(key,),
                              next_step="look for loss on the path (interface errors, a saturated link)")
        if tcp["retrans"] < 10 or tcp["data_segments"] == 0:
            continue
        ratio = tcp["retrans"] / tcp["data_segments"]
        if ratio < 0.02:
            continue
        worst = sorted(tcp["dest"].items(), key=lambda kv: -kv[1]["retrans"])[:3]
        yield Finding(
            rule="capture_retransmissions", host=key[0], window_s=WINDOW,
            title=f"{ratio:.1%} of TCP data segments are retransmitted",
            severity="critical" if ratio >= 0.1 else "warning",
            layer=LAYER,
            confidence=0.6,
            evidence=(f"{_where(key)}: {tcp['retrans']} of {tcp['data_segments']} data segments retransmitted",
                      *(f"{dest}: {row['retrans']} retransmissions" for dest, row in worst if row["retrans"])),
            series=(key,),
            next_step="look for loss on the path (interface errors, a saturated link) and at the receiver's load",
        )


@rule
def capture_zero_windows(store: Store) -> Iterable[Finding]:
    """A receiver advertising a zero window: it cannot read as fast as it is sent to."""
    for key, summary, _health in windows(store):
        for dest, row in summary["tcp"]["dest"].items():
            if row["zero_window"] < 5:
                continue
            yield Finding(
                rule="capture_zero_windows",
                target=_target(store, key, dest), host=key[0], window_s=WINDOW, subject=f"{key[2]} {dest}",
                title=f"zero windows on connections to {dest}: a receiver is not reading",
                severity="warning",
                layer=LAYER,
                confidence=0.5,
                evidence=(f"{_where(key)}: {row['zero_window']} zero-window segments",),
                series=(key,),
                next_step="find which side advertises it (the pane's flows) and check that process's CPU and "
                          "event loop",
            )


@rule
def capture_dns_failures(store: Store) -> Iterable[Finding]:
    """DNS queries answered SERVFAIL, or not answered at all, per server."""
    for key, summary, _health in windows(store):
        by_server: dict[tuple[str, str], list[str]] = {}
        counts: dict[tuple[str, str], int] = {}
        for qname, qtype, outcome, server, count, _avg, _max in summary["dns"]["names"]:
            if outcome in ("SERVFAIL", "unanswered", "REFUSED"):
                by_server.setdefault((server, outcome), []).append(f"{qname} {qtype} x{count}")
                counts[(server, outcome)] = counts.get((server, outcome), 0) + count
        for (server, outcome), names in by_server.items():
            count = counts[(server, outcome)]
            if outcome == "unanswered" and count < 2:
                continue
            yield Finding(
                rule="capture_dns_failures",
                title=(f"DNS server {server} does not answer ({count} queries unanswered)" if outcome == "unanswered"
                       else f"DNS server {server} answers {outcome} (x{count})"),
                severity="critical",
                layer=LAYER,
                confidence=0.8 if outcome == "unanswered" else 0.75,
                evidence=(f"{_where(key)}: " + ", ".join(names[:5]),),
                series=(key,),
                next_step=("check that the resolver is up and reachable on UDP 53 (firewalls often pass TCP and "
                           "drop UDP)" if outcome == "unanswered" else
                           "the resolver could not resolve the name upstream: query the authoritative servers, "
                           "check DNSSEC and forwarders"),
            )


def _hellos(summary: dict[str, Any]) -> str:
    hellos = summary["tls"]["hellos"][:3]
    return ", ".join(f"{sni or '(no SNI)'} {ver} x{c}" for sni, ver, c in hellos) or "none seen"


@rule
def capture_tls_alerts(store: Store) -> Iterable[Finding]:
    """Fatal TLS alerts ending handshakes, with what each alert usually means."""
    for key, summary, _health in windows(store):
        for description, level, side, count in summary["tls"]["alerts"]:
            if level != "fatal":
                continue
            yield Finding(
                rule="capture_tls_alerts",
                title=f"TLS handshakes end with a fatal {description} alert from the {side} (x{count})",
                severity="critical",
                layer=LAYER,
                confidence=0.8,
                evidence=(f"{_where(key)}: client hellos: " + _hellos(summary),),
                series=(key,),
                next_step=TLS_ALERT_ADVICE.get(description, "read the TLS logs of the side that sent the alert"),
            )


@rule
def capture_health(store: Store) -> Iterable[Finding]:
    """The capture itself: no privilege to run, or the kernel dropping packets (counts are then low)."""
    for key in store.keys(kind="capture"):
        last = store.last(key)
        if last is None:
            continue
        if not last.ok:
            yield Finding(rule="capture_health", title=f"packet capture is not running: {last.error}",
                          severity="info", layer=LAYER, confidence=1.0, evidence=(last.message or "",),
                          series=(key,), next_step=last.message or "")
            continue
        raw_health = last.fields.get("health")
        health: dict[str, Any] = raw_health if isinstance(raw_health, dict) else {}
        dropped = health.get("dropped_kernel")
        if isinstance(dropped, int) and dropped > 0:
            yield Finding(rule="capture_health", title=f"the kernel dropped {dropped} packets of this capture",
                          severity="info", layer=LAYER, confidence=1.0,
                          evidence=(f"{_where(key)}: seen {health.get('seen')}, dropped {dropped}",),
                          series=(key,),
                          next_step="counts are lower bounds: narrow the BPF filter or raise buffer_kib")
