"""Every target rule over stored Samples: the right cause on the right layer, counted over the window.

The Samples carry the probe fields of the contract (resolve_ms, error "dns" with
dns_error, tls defects) and, where older probes differ, the old ones: both must
give the same findings.
"""

from __future__ import annotations

import random

import pytest

from console.diagnosis.finding import ALARMS, Finding
from console.diagnosis.registry import diagnose
from console.engine.store import Store
from probes.samples import Sample
from tests.diagnosis.builders import (
    NXDOMAIN_GAI,
    T0,
    Timeline,
    dns_answer,
    dns_rcode,
    http_fail,
    http_ok,
    icmp_lost,
    icmp_ok,
    tcp_fail,
    tcp_ok,
)

API = "http://api.lab:8080/orders"
DB = "10.0.0.5:5432"


def findings_of(*samples: Sample, now: float | None = None) -> list[Finding]:
    latest = max(s.ts for s in samples)
    store = Store(clock=lambda: latest if now is None else now)
    for sample in samples:
        store.add(sample)
    return diagnose(store)


def about(findings: list[Finding], target: str) -> list[Finding]:
    return [f for f in findings if f.target == target]


# ------------------------------------------------------------------------------------- DNS


@pytest.mark.parametrize("style", ["contract", "old"])
def test_nxdomain_is_one_dns_finding_carrying_the_other_probes_failures(style: str) -> None:
    samples: list[Sample] = []
    for i in range(10):
        ts = T0 + i
        extra = {"dns_error": "nxdomain", "resolve_ms": 1.1} if style == "contract" else {}
        samples += [
            tcp_fail(API, ts, "dns", NXDOMAIN_GAI, **extra),
            Sample("icmp", API, ts, dict(extra), error="dns", message=NXDOMAIN_GAI),
            http_fail(API, ts, "dns", f"api.lab: {NXDOMAIN_GAI}", "dns", **extra),
        ]
        if i % 5 == 0:
            samples.append(dns_rcode(API, ts, "127.0.0.53:53", "NXDOMAIN"))
    found = findings_of(*samples)
    assert len(found) == 1, [f.title for f in found]  # one cause, one finding: not four
    [finding] = found
    assert finding.layer == "dns" and finding.target == API and finding.severity == "critical"
    assert "NXDOMAIN" in finding.title and "api.lab" in finding.title
    text = "\n".join(finding.evidence)
    for kind, noun in (("tcp", "connects"), ("icmp", "echoes"), ("http", "requests")):
        assert f"{kind}: 10 of 10 (100%) {noun} got no address" in text
    assert NXDOMAIN_GAI in text  # the original words, not rewritten
    assert "127.0.0.53:53 (system): NXDOMAIN" in text
    assert finding.chain[0].startswith("connects and requests fail") and "does not exist" in finding.chain[-1]
    assert finding.window_s == 60.0


def test_slow_resolver_is_a_dns_finding_not_a_connect_timeout() -> None:
    samples: list[Sample] = []
    for i in range(6):
        ts = T0 + i
        samples.append(tcp_fail(API, ts, "dns", "no address for api.lab within 1 s", dns_error="timeout",
                                resolve_ms=1000.0))
        samples.append(http_fail(API, ts, "dns", "no address for api.lab within 1 s", "dns"))
    samples.append(dns_answer(API, T0 + 2, "127.0.0.53:53", ["10.0.0.5"], time_ms=2010.0))
    [finding] = findings_of(*samples)
    assert finding.layer == "dns" and finding.rule == "dns_slow"
    assert "slow" in finding.title and "2.0 s" in finding.title and "127.0.0.53:53" in finding.title
    assert finding.severity == "critical"  # lookups give up: callers fail
    assert any("no address for api.lab within 1 s" in e for e in finding.evidence)
    assert not [f for f in findings_of(*samples) if f.layer == "tcp"]


def test_resolvers_disagree() -> None:
    a = dns_answer(API, T0, "127.0.0.1:53", ["10.0.0.5"], disagrees_with=["127.0.0.2:53"])
    b = dns_answer(API, T0, "127.0.0.2:53", ["10.0.0.99"], disagrees_with=["127.0.0.1:53"])
    [finding] = findings_of(a, b, tcp_ok(API, T0), http_ok(API, T0))
    assert finding.layer == "dns" and "disagree" in finding.title
    assert "10.0.0.5" in finding.title and "10.0.0.99" in finding.title
    assert "TCP ok 0.2 ms" in finding.ruled_out


def test_a_fast_clean_lookup_rules_dns_out() -> None:
    samples = [dns_answer(API, T0, "127.0.0.53:53", ["10.0.0.5"], time_ms=1.2)]
    for i in range(5):
        samples += [Sample("tcp", API, T0 + i, {"rtt_ms": 0.2, "resolve_ms": 1.4}), http_ok(API, T0 + i, 504)]
    [finding] = findings_of(*samples)
    assert finding.layer == "http" and "504" in finding.title
    assert finding.ruled_out[0] == "DNS ok 1.4 ms" and "TCP ok 0.2 ms" in finding.ruled_out


# ------------------------------------------------------------------------------------- TCP


def test_refused() -> None:
    samples = [tcp_fail(DB, T0 + i, "refused", "[Errno 111] Connect call failed ('10.0.0.5', 5432)")
               for i in range(3)] + [icmp_ok(DB, T0 + i / 5) for i in range(15)]
    [finding] = findings_of(*samples)
    assert finding.layer == "tcp" and "refused" in finding.title and finding.severity == "critical"
    assert "3 of 3 (100%)" in finding.title
    assert "[Errno 111] Connect call failed ('10.0.0.5', 5432)" in finding.evidence[0]
    assert finding.ruled_out == ("ICMP ok 0.1 ms, 0 of 15 lost",)


def test_two_refused_connects_are_not_yet_a_verdict() -> None:
    samples = [tcp_fail(DB, T0 + i, "refused", "refused") for i in range(1)] + [icmp_ok(DB, T0)]
    assert findings_of(*samples) == []


def test_syn_drop_with_echo_answering_points_at_the_port() -> None:
    samples = [tcp_fail(DB, T0 + i, "timeout", "TimeoutError") for i in range(4)]
    samples += [icmp_ok(DB, T0 + i / 5) for i in range(20)]
    [finding] = findings_of(*samples)
    assert finding.layer == "tcp" and "SYN" in finding.title and finding.rule == "tcp_syn_unanswered"
    assert "the host answers ICMP echo" in finding.chain[-1]
    assert not [f for f in findings_of(*samples) if f.layer == "path"]


def test_backlog_first_connect_works_then_syns_are_dropped() -> None:
    """A listen queue that fills up: one connect works, the rest time out; never read as path loss."""
    store = Store(clock=lambda: T0 + 10)
    for second in range(1, 11):
        ts = T0 + second
        store.add(tcp_ok(DB, ts) if second == 1 else tcp_fail(DB, ts, "timeout", "TimeoutError"))
        for k in range(5):
            store.add(icmp_ok(DB, ts + k / 5))
        store.clock = lambda ts=ts: ts  # type: ignore[misc]
        layers = {f.layer for f in diagnose(store) if f.target == DB}
        assert "path" not in layers, second
    [finding] = about(diagnose(store), DB)
    assert finding.rule == "tcp_syn_unanswered" and "the rest connected" in finding.title


def test_reset_after_connect() -> None:
    samples = [tcp_fail(DB, T0 + i, "reset", "connection reset 0.3 ms after connect: [Errno 104]",
                        connect_ms=0.2) for i in range(4)]
    [finding] = findings_of(*samples)
    assert finding.rule == "tcp_reset_after_connect" and "reset" in finding.title


# ------------------------------------------------------------------------------------- path


def lossy_samples(target: str, seconds: int, loss: float, rng: random.Random, resets: float = 0.0) -> list[Sample]:
    out: list[Sample] = []
    for second in range(seconds):
        ts = T0 + second
        for k in range(5):
            out.append(icmp_lost(target, ts + k / 5) if rng.random() < loss else icmp_ok(target, ts + k / 5))
        roll = rng.random()
        if roll < loss / 2:
            out.append(tcp_fail(target, ts, "timeout", "TimeoutError"))
        elif roll < loss:
            out.append(tcp_ok(target, ts, rtt_ms=0.2, connect_ms=1003.0))  # the SYN was resent after 1 s
        elif roll < loss + resets:
            out.append(tcp_fail(target, ts, "reset", "connection reset 0.4 ms after connect: [Errno 104]"))
        else:
            out.append(tcp_ok(target, ts))
    return out


def test_loss_from_probes_alone() -> None:
    samples = lossy_samples(DB, 30, 0.15, random.Random(7))
    [finding] = findings_of(*samples)
    assert finding.layer == "path" and "loss" in finding.title and finding.target == DB
    text = "\n".join(finding.evidence)
    assert "echoes lost" in text and "connects took over 1 s" in text and "SYNs lost and resent" in text
    assert "no echo reply from 10.0.0.5 within 950 ms" in text


def test_egress_loss_and_resets_toward_one_target_while_another_is_clean() -> None:
    external, internal = "203.0.113.9:443", "10.1.0.7:443"
    rng = random.Random(3)
    samples = lossy_samples(external, 30, 0.15, rng, resets=0.15)
    samples += [s for second in range(30) for s in (tcp_ok(internal, T0 + second),
                                                     *(icmp_ok(internal, T0 + second + k / 5, address="10.1.0.7")
                                                       for k in range(5)))]
    found = findings_of(*samples)
    [finding] = about(found, external)
    assert finding.layer == "path" and "resets" in finding.title and "loss" in finding.title
    assert internal in finding.title and "clean" in finding.title
    assert "egress NAT" in finding.chain[-1]
    assert not [f for f in found if f.target == internal]


def test_healthy_jitter_never_warns_at_any_moment() -> None:
    rng = random.Random(11)
    timeline = Timeline()

    def second(now: float) -> list[Sample]:
        out = [icmp_ok(DB, now + k / 5, rtt_ms=4 + rng.uniform(-3, 3)) for k in range(5)]
        out.append(tcp_ok(DB, now, rtt_ms=4 + rng.uniform(-3, 3)))
        out.append(http_ok("http://10.0.0.5:8080/ok", now, ttfb_ms=5 + rng.uniform(-3, 3)))
        out.append(tcp_ok("http://10.0.0.5:8080/ok", now, rtt_ms=4 + rng.uniform(-3, 3)))
        return out

    for moment in timeline.run(90, second):
        assert [f.title for f in moment if f.severity in ALARMS] == []


def test_one_early_timeout_is_no_finding() -> None:
    assert findings_of(tcp_ok(DB, T0), tcp_fail(DB, T0 + 1, "timeout", "TimeoutError"),
                       *[icmp_ok(DB, T0 + i / 5) for i in range(8)]) == []


# ------------------------------------------------------------------------------------- TLS

TLS_TARGET = "https://api.lab:8443/health"


def tls_rejected(ts: float, **fields: object) -> Sample:
    base = {"verdict": "untrusted-ca", "verify_code": 20,
            "chain": [{"subject": "CN=api.lab", "issuer": "CN=Rogue CA", "not_before": "2025-01-01T00:00:00+00:00",
                       "not_after": "2026-11-29T12:00:00+00:00", "is_ca": False, "san": ["api.lab"]}],
            "sni": "api.lab"}
    return Sample("tls", TLS_TARGET, ts, {**base, **fields}, error="untrusted-ca",  # type: ignore[dict-item]
                  message="[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
                          "certificate (_ssl.c:1000)")


def test_every_tls_defect_is_reported_in_plain_words() -> None:
    defects = [{"kind": "expired", "detail": "expired 1.0 day ago (2026-11-30 12:00 UTC)"},
               {"kind": "untrusted-root", "detail": "issued by CN=Rogue CA, which this client does not trust"}]
    [finding] = findings_of(tls_rejected(T0, defects=defects), tcp_ok(TLS_TARGET, T0))
    assert finding.layer == "tls" and "expired" in finding.title and "untrusted" in finding.title
    assert "tls: expired: expired 1.0 day ago (2026-11-30 12:00 UTC)" in finding.evidence
    assert any("unable to get local issuer certificate" in e for e in finding.evidence)  # OpenSSL's own words
    assert "renew" in finding.next_step and "trust store" in finding.next_step


def test_older_tls_samples_still_name_every_problem() -> None:
    [finding] = findings_of(tls_rejected(T0, problems=["untrusted-ca", "expired"]))
    assert "expired" in finding.title and "untrusted root" in finding.title
    assert any(e.startswith("tls: expired: expired ") and "2026-11-29 12:00 UTC" in e for e in finding.evidence)


def test_tls_failure_of_http_is_the_tls_finding_not_another() -> None:
    message = "ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired"
    samples = [tls_rejected(T0, problems=["expired"], verdict="expired")]
    samples += [http_fail(TLS_TARGET, T0 + i, "tls", message, "tls") for i in range(4)]
    [finding] = findings_of(*samples)
    assert finding.layer == "tls" and message in finding.evidence[-1]


# ------------------------------------------------------------------------------------- HTTP


def test_intermittent_challenge_stays_listed_across_the_whole_window() -> None:
    """A third of requests redirected: on top from the first redirect and never cleared while it recurs."""
    target = "http://10.0.0.5:8080/api"
    timeline = Timeline()
    count = 0

    def second(now: float) -> list[Sample]:
        nonlocal count
        count += 1
        if count % 3 == 0:
            sample = http_ok(target, now, 200, challenge_redirect=True,
                             challenge_location="http://10.0.0.5:8080/cdn-cgi/challenge-platform/h/b?x=1",
                             redirects=[{"status": 302, "location": "http://10.0.0.5:8080/cdn-cgi/challenge"}])
        else:
            sample = http_ok(target, now)
        return [sample, tcp_ok(target, now)]

    seen = timeline.run(90, second)
    listed = [any(f.rule == "http_challenge_redirect" for f in moment) for moment in seen]
    assert listed.index(True) == 2  # the first redirect, at the third request
    assert all(listed[2:]), listed
    final = next(f for f in seen[-1] if f.rule == "http_challenge_redirect")
    assert "21 of 61 (34%) requests redirected" in final.title  # counted over the 60 s window, both ends in
    assert "challenge" in final.title and final.severity == "warning"
    assert timeline.engine.history == []  # it never cleared
    appeared = [s for s in timeline.published if s.fields.get("change") == "appeared"]
    assert [s.target for s in appeared] == [target]


def test_504_chain_and_ruled_out_layers() -> None:
    target = "http://10.0.0.5:8080/report"
    samples = [http_ok(target, T0 + i, 504, ttfb_ms=1003.0) for i in range(3)]
    samples += [tcp_ok(target, T0 + i) for i in range(3)]
    [finding] = findings_of(*samples)
    assert "504" in finding.title and "1.0 s" in finding.title
    assert finding.chain == ("HTTP 504 Gateway Timeout", "the proxy waited 1.0 s for its backend",
                             "its backend answers slower than the proxy's upstream timeout, or not at all")
    assert finding.ruled_out == ("TCP ok 0.2 ms",)


def test_stall_evidence_is_words_never_a_repr() -> None:
    target = "http://10.0.0.5:8080/report"
    samples = [http_fail(target, T0 + i, "read-timeout", "ReadTimeout [read timeout 1.6 s ran out during ttfb]",
                         "ttfb") for i in range(3)] + [tcp_ok(target, T0 + i) for i in range(3)]
    [finding] = findings_of(*samples)
    assert "sends no response" in finding.title and finding.layer == "http"
    everything = " ".join((finding.title, *finding.evidence, *finding.chain, *finding.ruled_out))
    assert "{" not in everything and "'" not in everything.replace("server's", "")
    assert "http: limits: connect 1 s, read 1.6 s, write 1 s, pool 0.5 s, total 2 s" in finding.evidence


# ------------------------------------------------------------------------------------- hosts


def pools_sample(ts: float, *groups: dict[str, object]) -> Sample:
    return Sample("pools", "", ts, {"groups": list(groups), "gauges": []})  # type: ignore[arg-type]


def close_wait_group(process: str, pid: int, endpoint: str, count: int) -> dict[str, object]:
    return {"label": f"{process}[{pid}] → {endpoint}", "pid": pid, "process": process, "direction": "out",
            "endpoint": endpoint, "open": count + 2, "active": 1, "idle": count + 1, "close_wait": count,
            "close_wait_growth": 3, "growth_span_s": 30.0}


def test_an_unrelated_host_finding_ranks_below_the_targets_under_this_host() -> None:
    target = "10.0.0.5:8080"
    samples: list[Sample] = [tcp_fail(target, T0 + i, "refused", "[Errno 111] Connect call failed") for i in range(3)]
    samples += [tcp_ok("10.0.0.6:443", T0 + i) for i in range(3)]
    samples.append(pools_sample(T0 + 2, close_wait_group("java", 4242, "10.9.9.9:6379", 80)))
    found = findings_of(*samples)
    assert [f.target for f in found] == [target, ""]
    host = found[1]
    assert host.rule == "close_wait_piling" and host.severity == "critical"  # more severe, still below
    assert not host.about_target and "CLOSE_WAIT" in host.title


def test_a_host_finding_that_explains_a_target_ranks_with_it() -> None:
    target = "10.0.0.5:6379"
    samples: list[Sample] = [tcp_ok(target, T0 + i) for i in range(3)]
    samples.append(pools_sample(T0 + 2, close_wait_group("java", 4242, "10.0.0.5:6379", 12)))
    samples.append(tcp_fail("10.0.0.7:80", T0, "refused", "refused"))
    [finding] = findings_of(*samples)
    assert finding.target == target and finding.layer == "pool"
    assert finding.title.startswith(f"{target}: 12 connections stuck in CLOSE_WAIT in java[4242]")


def test_ephemeral_ports_toward_the_target_explain_it() -> None:
    target = "10.0.0.5:443"
    samples: list[Sample] = [tcp_ok(target, T0 + i) for i in range(3)]
    samples.append(Sample("conns", "", T0 + 2, {"ephemeral_pct": 97.0, "ephemeral_top_remote": "10.0.0.5:443",
                                                 "ephemeral_top_count": 27500, "ephemeral_low": 32768,
                                                 "ephemeral_high": 60999}))
    [finding] = findings_of(*samples)
    assert finding.rule == "ephemeral_ports" and finding.target == target and finding.about_target


# ------------------------------------------------------------------------------------- capture


def test_capture_evidence_joins_the_targets_finding() -> None:
    target = "10.0.0.5:8443"
    samples = [tcp_fail(target, T0 + i, "timeout", "TimeoutError") for i in range(4)]
    samples += [icmp_ok(target, T0 + i / 5) for i in range(20)]
    row = {"syn": 8, "synack": 0, "refused": 0, "unanswered": 4, "syn_retrans": 4, "rst_server": 0,
           "rst_client": 0, "retrans": 0, "zero_window": 0, "connect_ms_sum": 0.0, "connect_ms_max": 0.0}
    samples.append(Sample("capture", "any", T0 + 3, {"health": {}, "tcp": {"dest": {target: row}}}))
    found = findings_of(*samples)
    [finding] = found
    assert finding.rule == "tcp_syn_unanswered"
    assert any(e.startswith("capture: any on local") and "4 unanswered" in e for e in finding.evidence)


def test_a_full_postgres_is_the_finding_of_the_target_it_serves() -> None:
    """The pool probe names the server as its DSN does (a name); the target typed as name:port is the same one."""
    target = "db.lab:5432"
    samples: list[Sample] = [tcp_ok(target, T0 + i) for i in range(3)]
    samples.append(Sample("pg_pool", "postgresql://app@db.lab:5432/postgres", T0 + 2, {}, error="server-full",
                          message='connection failed: FATAL:  sorry, too many clients already'))
    [finding] = findings_of(*samples)
    assert finding.target == target and finding.layer == "pool" and "too many clients" in finding.title
    assert "FATAL:  sorry, too many clients already" in finding.evidence[0]


def test_a_fixed_fault_clears_within_seconds_though_its_failures_are_still_in_the_window() -> None:
    target = "10.0.0.5:8080"
    timeline = Timeline()
    fixed_at = 20

    def second(now: float) -> list[Sample]:
        fixed = now - T0 > fixed_at
        return [tcp_ok(target, now) if fixed else tcp_fail(target, now, "refused", "[Errno 111] refused")]

    seen = timeline.run(40, second)
    assert any(f.rule == "tcp_refused" for f in seen[fixed_at - 1])
    cleared_after = next(i for i in range(fixed_at, 40) if not seen[i]) - fixed_at
    assert cleared_after <= 8, cleared_after  # five good connects, and four times the usual gap (here 1)
    [gone] = timeline.engine.history
    assert gone.finding.rule == "tcp_refused" and gone.cleared is not None
