"""Diagnosis rules for TCP and the path: refused, SYNs unanswered, resets, loss, and loss toward some targets only.

Everything here comes from the probes alone: TCP connects (their failure
kind and time), ICMP echoes, and the connect phase of HTTP and TLS. A lost
SYN shows either as a connect that times out (the probe's limit is shorter
than the kernel's first retransmission at 1 s) or as a connect that lands on
the retransmission timeout (~1 s, ~3 s). With a capture running, what the
packets say about the same destination joins these findings (see
registry.fold).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.diagnosis.evidence import (
    HTTP_CONNECT_ERRORS,
    MIN_ATTEMPTS,
    MIN_EVENTS,
    TargetEvidence,
    collect,
    duration,
    median,
    number,
    on_rto,
    recovered,
    share,
)
from console.diagnosis.finding import Finding
from console.diagnosis.registry import rule
from console.engine.store import Store
from probes.samples import Sample

#: Share of connects timing out above which the port drops SYNs (rather than the path losing some).
SYN_DROP_SHARE = 0.75
#: Share of connects refused / reset above which that is the target's state, not an accident.
MOSTLY = 0.5
#: ICMP loss at or above this (with MIN_EVENTS lost) means the path loses packets.
ICMP_LOSSY_SHARE = 0.1
#: Loss at or above this share of attempts is critical.
HEAVY_LOSS_SHARE = 0.2
#: Attempts (echoes, connects, requests) before a path is judged clean or lossy.
MIN_PATH_ATTEMPTS = 5


@dataclass
class Transport:
    """What the connects and echoes of one target add up to over the window."""

    tcp: list[Sample]
    icmp: list[Sample]
    http: list[Sample]
    tls: list[Sample]

    @classmethod
    def of(cls, ev: TargetEvidence) -> Transport:
        return cls(ev.attempts("tcp"), ev.attempts("icmp"), ev.attempts("http"), ev.attempts("tls"))

    def tcp_errors(self, kind: str) -> list[Sample]:
        return [s for s in self.tcp if s.error == kind]

    @property
    def icmp_lost(self) -> list[Sample]:
        return [s for s in self.icmp if s.error == "timeout"]

    @property
    def icmp_filtered(self) -> bool:
        """Every echo unanswered while TCP works: ICMP is filtered, which says nothing about loss."""
        return len(self.icmp) >= MIN_ATTEMPTS and len(self.icmp_lost) == len(self.icmp) and any(
            s.ok for s in self.tcp)

    @property
    def icmp_lossy(self) -> bool:
        lost = len(self.icmp_lost)
        return (not self.icmp_filtered and lost >= MIN_EVENTS and lost < len(self.icmp)
                and lost / len(self.icmp) >= ICMP_LOSSY_SHARE)

    @property
    def tcp_resent(self) -> list[Sample]:
        """TCP connects that worked only after a SYN retransmission (~1 s, ~3 s)."""
        return [s for s in self.tcp if s.ok and on_rto(self.connect_ms(s))]

    @property
    def syn_dropped(self) -> bool:
        """Most connects time out (or get through only on a retransmitted SYN) and echoes are not lost:
        SYNs are dropped at the port."""
        timeouts = len(self.tcp_errors("timeout"))
        troubled = timeouts + len(self.tcp_resent)
        return (len(self.tcp) >= MIN_ATTEMPTS and timeouts >= MIN_EVENTS and troubled >= MIN_ATTEMPTS
                and troubled / len(self.tcp) >= SYN_DROP_SHARE and not self.icmp_lossy)

    def mostly(self, kind: str) -> bool:
        count = len(self.tcp_errors(kind))
        return len(self.tcp) >= MIN_ATTEMPTS and count >= MIN_ATTEMPTS and count / len(self.tcp) >= MOSTLY

    @property
    def trailing_timeouts(self) -> int:
        """How many of the latest connects in a row timed out (a listen queue that filled up starts like this)."""
        count = 0
        for sample in reversed(self.tcp):
            if sample.error != "timeout":
                break
            count += 1
        return count

    @property
    def syn_leaning(self) -> bool:
        """Connects time out so far (too few to judge yet) and echoes are not lost: TCP's to judge, not the path's."""
        timeouts = len(self.tcp_errors("timeout"))
        troubled = timeouts + len(self.tcp_resent)
        return bool(self.tcp) and timeouts > 0 and not self.icmp_lossy and (
            troubled / len(self.tcp) >= SYN_DROP_SHARE or self.trailing_timeouts >= MIN_EVENTS)

    @property
    def state_of_the_port(self) -> bool:
        """True when TCP's own rule explains the target (refused, SYNs dropped, reset, unreachable)."""
        return self.syn_leaning or any(self.mostly(k) for k in ("refused", "reset", "unreachable"))

    # -- path events ---------------------------------------------------------------------------------
    def connect_ms(self, sample: Sample) -> float | None:
        return number(sample.fields.get("connect_ms")) or number(sample.fields.get("rtt_ms"))

    def resent(self) -> list[Sample]:
        """Connects (TCP, HTTP, TLS) that took a SYN retransmission: ~1 s or ~3 s."""
        return [s for s in (*self.tcp, *self.http, *self.tls) if s.ok and on_rto(self.connect_ms(s))]

    @property
    def http_connect_timeouts(self) -> list[Sample]:
        return [s for s in self.http if s.error == "connect-timeout"]

    @property
    def http_resets(self) -> list[Sample]:
        return [s for s in self.http if s.error == "reset"]

    @property
    def resets(self) -> list[Sample]:
        return self.tcp_errors("reset") + self.http_resets

    @property
    def lost(self) -> int:
        """Bad events that a lost packet explains."""
        icmp = 0 if self.icmp_filtered else len(self.icmp_lost)
        return icmp + len(self.tcp_errors("timeout")) + len(self.http_connect_timeouts) + len(self.resent())

    @property
    def attempts(self) -> int:
        return (0 if self.icmp_filtered else len(self.icmp)) + len(self.tcp) + len(self.http)

    @property
    def clean(self) -> bool:
        """Enough attempts, every one fine and none on a retransmission: a path with nothing wrong."""
        return (self.attempts >= MIN_PATH_ATTEMPTS and self.lost == 0 and not self.resets
                and all(s.ok for s in (*self.tcp, *self.icmp)) and not self.http_connect_timeouts)


def _noun(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _icmp_line(t: Transport) -> str | None:
    if not t.icmp:
        return None
    if t.icmp_filtered:
        return f"icmp: every one of {len(t.icmp)} echoes unanswered while TCP connects: ICMP is filtered"
    rtts = [v for s in t.icmp if (v := number(s.fields.get("rtt_ms"))) is not None]
    lost = t.icmp_lost
    if not lost:
        return f"icmp: every one of {len(t.icmp)} echoes answered, in {duration(median(rtts))} (median)"
    line = f"icmp: {share(len(lost), len(t.icmp))} echoes lost"
    if rtts:
        line += f", the others answered in {duration(median(rtts))} (median)"
    if lost and lost[-1].message:
        line += f"; last: {lost[-1].message}"
    return line


def _last_message(samples: list[Sample]) -> str:
    return samples[-1].message or samples[-1].error or "" if samples else ""


def _ok_rtt(samples: list[Sample]) -> str | None:
    rtts = [v for s in samples if s.ok and (v := number(s.fields.get("rtt_ms"))) is not None]
    return duration(median(rtts)) if rtts else None


@rule
def tcp_target(store: Store) -> Iterable[Finding]:
    """A target whose connects are refused, time out at the port, reset at once, or find no route."""
    for ev in collect(store).values():
        t = Transport.of(ev)
        if not t.tcp:
            continue
        finding = _tcp_finding(ev, t)
        if finding is not None:
            yield finding


def _tcp_finding(ev: TargetEvidence, t: Transport) -> Finding | None:
    if recovered(t.tcp, lambda s: not s.ok, lambda s: s.ok and not on_rto(t.connect_ms(s))):
        return None  # it failed earlier in the window, and connects have worked since: fixed, not a finding
    m = len(t.tcp)
    refused, timeouts = t.tcp_errors("refused"), t.tcp_errors("timeout")
    resets, unreachable = t.tcp_errors("reset"), t.tcp_errors("unreachable")
    ok_rtt = _ok_rtt(t.tcp)
    port = ev.port
    common = {"target": ev.target, "host": ev.host, "layer": "tcp", "window_s": ev.window_s,
              "series": tuple(ev.series), "ruled_out": ev.ruled_out("tcp", "http", "tls")}
    http_connect = [s for s in t.http if s.error in HTTP_CONNECT_ERRORS]
    extra = [f"http: {share(len(http_connect), len(t.http))} requests failed to connect: {_last_message(http_connect)}"
             ] if http_connect else []
    icmp = _icmp_line(t)
    if t.mostly("refused") or len(refused) >= MIN_EVENTS:
        every = len(refused) == m
        return Finding(
            rule="tcp_refused", severity="critical" if t.mostly("refused") else "warning",
            confidence=0.95 if every else 0.7,
            title=f"{ev.target}: connection refused: {share(len(refused), m)} connects answered with RST",
            evidence=(f"tcp: {share(len(refused), m)} connects refused in {ev.window_s:.0f} s: "
                      f"{_last_message(refused)}",
                      *([f"tcp: the others connected in {ok_rtt}"] if ok_rtt else []), *extra,
                      *([icmp] if icmp else [])),
            chain=("connects are refused", f"the host answers SYNs to port {port} with RST",
                   "nothing listens on that port (service down, crashed, or on another port), "
                   "or a firewall rejects"),
            next_step="check that the service runs and listens on that address and port (ss -ltnp), "
                      "and for a REJECT rule on the way",
            **common)  # type: ignore[arg-type]
    if t.syn_dropped:
        icmp_answers = bool(t.icmp) and not t.icmp_lost
        icmp_dead = len(t.icmp) >= MIN_ATTEMPTS and len(t.icmp_lost) == len(t.icmp)
        where = ("the host answers ICMP echo, so SYNs are dropped at the port: a firewall rule, or a listen "
                 "backlog that is full (a server too busy to accept)" if icmp_answers else
                 "ICMP echo gets no answer either: the host is down, or the path drops everything"
                 if icmp_dead else "a firewall drops SYNs, or the listen backlog is full")
        resent = t.tcp_resent
        some_ok = m - len(timeouts) - len(resent)
        rest = (f", {len(resent)} connected only after a SYN retransmission" if resent else "") + (
            ", the rest connected" if some_ok else "")
        return Finding(
            rule="tcp_syn_unanswered", severity="critical", confidence=0.9 if icmp_answers else 0.75,
            title=f"{ev.target}: SYNs get no answer: {share(len(timeouts), m)} connects timed out{rest}",
            evidence=(f"tcp: {share(len(timeouts), m)} connects timed out with no SYN-ACK: "
                      f"{_last_message(timeouts)}",
                      *([f"tcp: {len(resent)} connects took "
                         + ", ".join(duration(t.connect_ms(s)) for s in resent[-3:])
                         + ": the first SYN went unanswered and was resent"] if resent else []),
                      *([f"tcp: {some_ok} connected at once, in {ok_rtt} (median)"] if ok_rtt and some_ok else []),
                      *extra, *([icmp] if icmp else [])),
            chain=("connects time out", "no SYN-ACK comes back for the SYNs", where),
            next_step=("compare the listen backlog with the accept rate on the server (ss -ltn: Recv-Q against "
                       "Send-Q) and look for DROP rules or security groups for this port" if icmp_answers else
                       "check the host is up and the route and firewalls between here and there"),
            **common)  # type: ignore[arg-type]
    if t.mostly("reset"):
        return Finding(
            rule="tcp_reset_after_connect", severity="critical", confidence=0.8,
            title=f"{ev.target}: connections reset right after the handshake: {share(len(resets), m)} connects",
            evidence=(f"tcp: {share(len(resets), m)} connects reset: {_last_message(resets)}", *extra,
                      *([icmp] if icmp else [])),
            chain=("connections die at once", "the handshake completes, then an RST arrives",
                   "the server accepts and aborts (accept queue overflow with tcp_abort_on_overflow, a crashing "
                   "worker), or a middlebox kills the session"),
            next_step="read the server's log for aborted connections; check the accept queue and any load "
                      "balancer or firewall that resets idle or unknown sessions",
            **common)  # type: ignore[arg-type]
    if t.mostly("unreachable"):
        return Finding(
            rule="tcp_unreachable", severity="critical", confidence=0.85,
            title=f"{ev.target}: the network says unreachable: {share(len(unreachable), m)} connects",
            evidence=(f"tcp: {share(len(unreachable), m)} connects unreachable: {_last_message(unreachable)}",
                      *extra, *([icmp] if icmp else [])),
            chain=("connects fail at once", "an ICMP unreachable or a missing route answers",
                   "no route to that network, a router or firewall rejecting, or the host down"),
            next_step="check routing (ip route get ADDRESS), the interface, and reject rules on the way",
            **common)  # type: ignore[arg-type]
    return None


@rule
def path_quality(store: Store) -> Iterable[Finding]:
    """Loss and resets on the way to a target, from echoes and connects; compared with the other targets."""
    evidence = collect(store)
    transports = {key: Transport.of(ev) for key, ev in evidence.items()}
    for key, ev in evidence.items():
        t = transports[key]
        if t.state_of_the_port or t.attempts < MIN_PATH_ATTEMPTS:
            continue
        lost, resets = t.lost, len(t.resets)
        if lost + resets < MIN_EVENTS:
            continue
        if not any(s.ok for s in (*t.tcp, *t.icmp, *t.http)):
            continue  # nothing gets through at all: that is TCP's finding (or the host is down)
        if (resets and not lost and len(t.http_resets) >= MOSTLY * max(len(t.http), 1)
                and not t.tcp_errors("reset")):
            continue  # only the HTTP exchange is reset, connects are fine: the server's doing (HTTP's rule)
        clean = sorted(other.target for (h, _), other in evidence.items()
                       if h == ev.host and other.target != ev.target and transports[(h, other.target)].clean)
        yield _path_finding(ev, t, clean)


def _path_finding(ev: TargetEvidence, t: Transport, clean: list[str]) -> Finding:
    lost, resets = t.lost, len(t.resets)
    what = "packet loss and resets" if lost >= MIN_EVENTS and resets else "resets" if resets >= lost else \
        "packet loss"
    share_lost = lost / t.attempts if t.attempts else 0.0
    icmp_share = len(t.icmp_lost) / len(t.icmp) if t.icmp and not t.icmp_filtered else 0.0
    heavy = max(share_lost, icmp_share) >= HEAVY_LOSS_SHARE or resets / max(t.attempts, 1) >= HEAVY_LOSS_SHARE
    evidence: list[str] = []
    icmp = _icmp_line(t)
    if icmp and t.icmp:
        evidence.append(icmp)
    timeouts = t.tcp_errors("timeout")
    resent = t.resent()
    if t.tcp:
        line = f"tcp: {share(len(timeouts), len(t.tcp))} connects timed out (no SYN-ACK: a SYN or its answer lost)"
        if timeouts:
            line += f"; last: {_last_message(timeouts)}"
        evidence.append(line)
    if resent:
        times = ", ".join(duration(t.connect_ms(s)) for s in resent[-3:])
        evidence.append(f"{share(len(resent), len(t.tcp) + len(t.http) + len(t.tls))} connects took over 1 s "
                        f"({times}): SYNs lost and resent")
    if t.http_connect_timeouts:
        evidence.append(f"http: {share(len(t.http_connect_timeouts), len(t.http))} requests hit the connect "
                        f"timeout: {_last_message(t.http_connect_timeouts)}")
    if t.resets:
        tcp_resets, http_resets = t.tcp_errors("reset"), t.http_resets
        if tcp_resets:
            evidence.append(f"tcp: {share(len(tcp_resets), len(t.tcp))} connections reset: "
                            f"{_last_message(tcp_resets)}")
        if http_resets:
            evidence.append(f"http: {share(len(http_resets), len(t.http))} requests reset: "
                            f"{_last_message(http_resets)}")
    ok_rtt = _ok_rtt(t.tcp)
    if ok_rtt:
        evidence.append(f"tcp: connects that got through took {ok_rtt} (median)")
    toward = ", ".join(sorted(ev.addresses())) or ev.name
    if clean:
        title = f"{ev.target}: {what} only toward this target; {', '.join(clean)} from {ev.host} clean"
        evidence.append(f"clean from {ev.host} over the same {ev.window_s:.0f} s: {', '.join(clean)}")
        cause = (f"the path toward {toward} is the suspect, not this host: an egress NAT gateway, a firewall or "
                 "a proxy on the way out to it")
        next_step = ("compare the route to this target with the clean ones (ip route get, traceroute -T); check "
                     "the NAT gateway's or egress firewall's drop and connection-limit counters")
    else:
        title = f"{ev.target}: {what} on the path: {_rate_words(t)}"
        cause = "a lossy or congested link, an overloaded middlebox (NAT, firewall), or a peer too busy to answer"
        next_step = ("look for loss hop by hop (mtr -T / traceroute -T to the port), interface errors and drops "
                     "(ip -s link), and a NAT or firewall dropping under load; --capture shows retransmissions")
    chain = (f"{what} toward {ev.target}",
             "echoes lost, SYNs unanswered or resent" if lost else "connections reset mid-way",
             cause)
    return Finding(
        rule="path_quality", layer="path", severity="critical" if heavy else "warning",
        confidence=0.8 if clean else 0.65, title=title, evidence=tuple(evidence), chain=chain,
        ruled_out=ev.ruled_out("path", "tcp"), target=ev.target, host=ev.host, window_s=ev.window_s,
        series=tuple(ev.series), next_step=next_step)


def _rate_words(t: Transport) -> str:
    parts = []
    if t.icmp and not t.icmp_filtered and t.icmp_lost:
        parts.append(f"{len(t.icmp_lost) / len(t.icmp):.0%} of echoes lost")
    connects = len(t.tcp) + len(t.http)
    slow = len(t.tcp_errors("timeout")) + len(t.http_connect_timeouts) + len(t.resent())
    if connects and slow:
        parts.append(f"{slow} of {connects} connects timed out or resent")
    if t.resets:
        parts.append(_noun(len(t.resets), "reset"))
    return ", ".join(parts) or "sporadic"
