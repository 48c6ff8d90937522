"""Monitor and prevent: Prometheus alert rules for what was seen, their promtool tests, and prevention advice.

Rules are written against metrics people already scrape: blackbox_exporter
(probe_success, probe_duration_seconds, probe_http_status_code,
probe_ssl_earliest_cert_expiry, probe_dns_lookup_time_seconds), node_exporter
(node_netstat_Tcp_RetransSegs against node_netstat_Tcp_OutSegs,
node_nf_conntrack_entries against its limit) and postgres_exporter
(pg_stat_activity_count against pg_settings_max_connections).

The thresholds start from the usual ones (error rate over 5% for 5 minutes,
latency over 1 s for 10 minutes, resource use over 85% for 5 minutes) and
are moved to what was measured: a fault that failed 3% of requests gets a
threshold it would have crossed, a service whose healthy latency is 800 ms
does not page at 1 s. Only what was seen gets a rule, and every rule comes
with a promtool unit test: it must fire on a series like the one measured
and stay quiet on a healthy one (``promtool test rules``).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.engine.stats import percentile
from console.incident.validate import JUDGED_KINDS, latency_ms, succeeded
from probes.samples import Sample
from probes.targets import TargetError, is_ip_literal, parse_target

DEFAULT_ERROR_RATE = 0.05
DEFAULT_LATENCY_S = 1.0
DEFAULT_RESOURCE = 0.85
DEFAULT_DNS_S = 0.5
DEFAULT_RETRANS = 0.02
CERT_DAYS = 14
#: Below this measured error rate a rule would only page on noise.
MIN_ERROR_RATE = 0.012
#: The promtool test: how long the series run and where the alert is evaluated.
TEST_MINUTES = 20
WINDOW_S = 300


@dataclass
class AlertRule:
    """One alerting rule and the two series its test feeds it."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    measured: str
    """What was measured that this rule is built on, and how the threshold moved."""
    labels: dict[str, str]
    """The labels the alert carries from its series (for the test's expectation)."""
    bad_series: dict[str, list[float]]
    """series selector -> values, like the incident measured them."""
    good_series: dict[str, list[float]]
    interval_s: float = 15.0

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "expr": self.expr, "for": self.for_, "severity": self.severity,
                "summary": self.summary, "measured": self.measured}


@dataclass
class Advice:
    area: str
    """"caller", "server", "proxy", "pool", "dns", "tls", "path", "recovery"."""
    text: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"area": self.area, "text": self.text, "why": self.why}


@dataclass
class RuleSet:
    incident: str
    rules: list[AlertRule] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """What was seen but got no rule, and why."""

    @property
    def group(self) -> str:
        return f"warroom-{slug(self.incident)}"

    def rules_yaml(self) -> str:
        return rules_yaml(self)

    def test_yaml(self, rules_file: str) -> str:
        return test_yaml(self, rules_file)


# ------------------------------------------------------------------ helpers


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "incident"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _label_value(text: str) -> str:
    """A PromQL string literal's inside."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _num(value: float) -> str:
    return format(round(value, 4), "g")


def spread(fraction: float, high: float, low: float, count: int) -> list[float]:
    """``count`` values, ``fraction`` of them ``high``, evenly spread (so every window sees its share)."""
    out: list[float] = []
    for i in range(count):
        out.append(high if math.floor((i + 1) * fraction) > math.floor(i * fraction) else low)
    return out


def _interval_for(fraction: float) -> float:
    """Scrape interval for a test series, fine enough that a 5 m window holds 4+ of the rarer values."""
    points = min(300, max(20, math.ceil(4 / max(fraction, 1e-6))))
    return float(max(1, math.floor(WINDOW_S / points)))  # promtool takes whole seconds here


def _values_text(values: Sequence[float]) -> str:
    """promtool's series notation, run-length encoded ("1x9 0 1x9" = ten 1s, a 0, ten 1s)."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        run = j - i + 1
        parts.append(_num(values[i]) if run == 1 else f"{_num(values[i])}x{run - 1}")
        i = j + 1
    return " ".join(parts)


def _points(interval_s: float) -> int:
    return int(TEST_MINUTES * 60 / interval_s) + 1


def _target_kind(target: str) -> tuple[bool, bool, bool]:
    """(is a URL, is https, has a name to resolve)."""
    try:
        parsed = parse_target(target)
    except TargetError:
        return target.startswith("http"), target.startswith("https"), False
    return parsed.is_url, parsed.scheme == "https", not is_ip_literal(parsed.host)


def _duration_s(sample: Sample) -> float | None:
    """What blackbox's probe_duration_seconds would have said: the time taken, a timeout's full limit."""
    value = latency_ms(sample)
    if value is not None and (sample.ok or succeeded(sample)):  # a 504 that came back took its time too
        return value / 1000.0
    elapsed = sample.fields.get("elapsed_ms")
    if isinstance(elapsed, (int, float)):
        return float(elapsed) / 1000.0
    if sample.error and sample.error.endswith("timeout"):
        limits = sample.fields.get("timeouts")
        total = limits.get("total") if isinstance(limits, dict) else None
        return float(total) if isinstance(total, (int, float)) else 2.0
    return None


def _by_target(samples: Iterable[Sample]) -> dict[str, dict[str, list[Sample]]]:
    """target -> kind -> Samples (local host first: blackbox runs from one place; another host if only it saw)."""
    out: dict[str, dict[str, list[Sample]]] = {}
    for sample in samples:
        if sample.target and sample.kind in (*JUDGED_KINDS, "tls"):
            out.setdefault(sample.target, {}).setdefault(sample.kind, []).append(sample)
    return out


def _judged(kinds: dict[str, list[Sample]]) -> list[Sample]:
    kind = next((k for k in JUDGED_KINDS if kinds.get(k)), None)
    return kinds.get(kind, []) if kind else []


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _two_level(values: Sequence[float], threshold: float) -> tuple[float, float, float]:
    """(share above threshold, mean above, mean at or below): a series with that shape has the same mean."""
    above = [v for v in values if v > threshold]
    below = [v for v in values if v <= threshold]
    return (len(above) / len(values) if values else 0.0, _mean(above) or threshold * 2,
            _mean(below) or threshold / 4)


# ------------------------------------------------------------------ the rules


def build_rules(incident: str, bad: Sequence[Sample], good: Sequence[Sample] = (),
                findings: Sequence[dict[str, Any]] = ()) -> RuleSet:
    """Rules for what ``bad`` (the incident's samples) showed, thresholds moved by ``good`` (healthy ones)."""
    ruleset = RuleSet(incident)
    bad_targets, good_targets = _by_target(bad), _by_target(good)
    layers_seen = {str(f.get("layer")) for f in findings if f.get("severity") in ("warning", "critical")}
    for target, kinds in sorted(bad_targets.items()):
        healthy = good_targets.get(target, {})
        is_url, is_https, has_name = _target_kind(target)
        _success_rule(ruleset, target, kinds)
        _latency_rule(ruleset, target, kinds, healthy)
        if is_url:
            _status_rule(ruleset, target, kinds)
        if is_https:
            _cert_rule(ruleset, target, kinds)
        if has_name:
            _dns_rule(ruleset, target, kinds, healthy)
    _retrans_rule(ruleset, bad, "path" in layers_seen)
    _conntrack_rule(ruleset, bad, any("conntrack" in str(f.get("title", "")).lower() for f in findings))
    _postgres_rule(ruleset, bad)
    ruleset.advice = prevention(bad, good, findings)
    return ruleset


def _success_rule(rs: RuleSet, target: str, kinds: dict[str, list[Sample]]) -> None:
    judged = _judged(kinds)
    if not judged:
        return
    failed = sum(1 for s in judged if not succeeded(s))
    rate = failed / len(judged)
    if failed == 0:
        return
    if rate < MIN_ERROR_RATE:
        rs.skipped.append(f"{target}: {failed} of {len(judged)} failed ({rate:.1%}), below {MIN_ERROR_RATE:.1%}: "
                          "a rule would page on noise")
        return
    threshold = DEFAULT_ERROR_RATE if rate >= 2 * DEFAULT_ERROR_RATE else max(0.01, round(rate / 2, 3))
    moved = "" if threshold == DEFAULT_ERROR_RATE else f"; threshold moved from {DEFAULT_ERROR_RATE:.0%} to " \
                                                       f"{threshold:.1%} so the measured rate crosses it"
    interval = _interval_for(rate)
    n = _points(interval)
    instance = _label_value(target)
    rs.rules.append(AlertRule(
        alert="WarroomTargetErrorRate",
        expr=f'1 - avg_over_time(probe_success{{instance="{instance}"}}[5m]) > {_num(threshold)}',
        for_="5m", severity="critical",
        summary=f"{target}: more than {threshold:.1%} of probes failed for 5 minutes",
        measured=f"{failed} of {len(judged)} {judged[0].kind} probes failed ({rate:.1%}){moved}",
        labels={"instance": target},
        bad_series={f'probe_success{{instance="{instance}"}}': spread(rate, 0, 1, n)},
        good_series={f'probe_success{{instance="{instance}"}}': [1.0] * n},
        interval_s=interval))


def _latency_rule(rs: RuleSet, target: str, kinds: dict[str, list[Sample]],
                  healthy: dict[str, list[Sample]]) -> None:
    judged = _judged(kinds)
    if not judged or judged[0].kind not in ("http", "tcp"):  # an echo's time is the path's, not the service's
        return
    durations = [d for s in judged if (d := _duration_s(s)) is not None]
    if not durations:
        return
    good = sorted(d for s in _judged(healthy) if (d := _duration_s(s)) is not None and succeeded(s))
    good_p99 = percentile(good, 99) if good else None
    good_mean = _mean(good) if good else None
    bad_mean = _mean(durations) or 0.0
    threshold = DEFAULT_LATENCY_S
    why = ""
    if good_p99 is not None and good_p99 * 1.5 > threshold:
        threshold = round(good_p99 * 1.5, 3)
        why = f"; threshold raised to 1.5x the healthy p99 ({good_p99:.3f} s)"
    if bad_mean <= threshold * 1.25:
        base = good_mean if good_mean is not None else min(durations)
        if bad_mean >= 0.1 and bad_mean >= 3 * base:
            threshold = round((bad_mean + base) / 2, 3)
            why = f"; threshold lowered to {threshold:g} s, between healthy ({base:.3f} s) and measured"
        else:
            return
    share, high, low = _two_level(durations, threshold)
    if share == 0:
        share, high, low = 1.0, bad_mean, bad_mean
    interval = _interval_for(min(share, 1 - share) if 0 < share < 1 else 1.0)
    n = _points(interval)
    instance = _label_value(target)
    healthy_value = good_mean if good_mean is not None else min(0.05, threshold / 4)
    rs.rules.append(AlertRule(
        alert="WarroomTargetSlow",
        expr=f'avg_over_time(probe_duration_seconds{{instance="{instance}"}}[5m]) > {_num(threshold)}',
        for_="10m", severity="warning",
        summary=f"{target}: probes took more than {threshold:g} s on average for 10 minutes",
        measured=f"mean {bad_mean:.3f} s over {len(durations)} probes (timeouts count at their limit){why}",
        labels={"instance": target},
        bad_series={f'probe_duration_seconds{{instance="{instance}"}}': spread(share, high, low, n)},
        good_series={f'probe_duration_seconds{{instance="{instance}"}}': [round(healthy_value, 4)] * n},
        interval_s=interval))


def _status_rule(rs: RuleSet, target: str, kinds: dict[str, list[Sample]]) -> None:
    http = kinds.get("http", [])
    statuses = [s.fields.get("status") for s in http]
    high = [st for st in statuses if isinstance(st, int) and st >= 500]
    if not http or not high:
        return
    rate = len(high) / len(http)
    if rate < MIN_ERROR_RATE:
        rs.skipped.append(f"{target}: {len(high)} 5xx of {len(http)} ({rate:.1%}): too few for a rule")
        return
    threshold = DEFAULT_ERROR_RATE if rate >= 2 * DEFAULT_ERROR_RATE else max(0.01, round(rate / 2, 3))
    commonest = max(set(high), key=high.count)
    interval = _interval_for(rate)
    n = _points(interval)
    instance = _label_value(target)
    rs.rules.append(AlertRule(
        alert="WarroomHTTP5xx",
        expr=f'avg_over_time((probe_http_status_code{{instance="{instance}"}} >= bool 500)[5m:{_num(interval)}s])'
             f' > {_num(threshold)}',
        for_="5m", severity="critical",
        summary=f"{target}: more than {threshold:.1%} of probes answered 5xx for 5 minutes",
        measured=f"{len(high)} of {len(http)} answers were 5xx (mostly {commonest})",
        labels={"instance": target},
        bad_series={f'probe_http_status_code{{instance="{instance}"}}': spread(rate, commonest, 200, n)},
        good_series={f'probe_http_status_code{{instance="{instance}"}}': [200.0] * n},
        interval_s=interval))


def _cert_rule(rs: RuleSet, target: str, kinds: dict[str, list[Sample]]) -> None:
    days = [float(d) for s in kinds.get("tls", []) if isinstance(d := s.fields.get("days_until_expiry"), (int, float))]
    if not days:
        return
    left = min(days)
    if left >= 30:
        return
    threshold_days = CERT_DAYS if left < CERT_DAYS else 30
    eval_s = TEST_MINUTES * 60
    instance = _label_value(target)
    n = _points(60.0)
    state = f"expired {-left:.1f} days ago" if left < 0 else f"expires in {left:.1f} days"
    rs.rules.append(AlertRule(
        alert="WarroomCertExpiry",
        expr=f'probe_ssl_earliest_cert_expiry{{instance="{instance}"}} - time() < 86400 * {threshold_days}',
        for_="10m", severity="critical" if left < 0 else "warning",
        summary=f"{target}: the certificate expires within {threshold_days} days (or has expired)",
        measured=f"the certificate {state}" + ("; threshold 30 days, as it was already inside 14" if
                                               threshold_days == 30 else ""),
        labels={"instance": target},
        bad_series={f'probe_ssl_earliest_cert_expiry{{instance="{instance}"}}': [round(eval_s + left * 86400)] * n},
        good_series={f'probe_ssl_earliest_cert_expiry{{instance="{instance}"}}': [eval_s + 90 * 86400] * n},
        interval_s=60.0))


def _dns_rule(rs: RuleSet, target: str, kinds: dict[str, list[Sample]], healthy: dict[str, list[Sample]]) -> None:
    times = [float(t) / 1000 for s in kinds.get("dns", []) if isinstance(t := s.fields.get("time_ms"), (int, float))]
    if not times:
        return
    good = sorted(float(t) / 1000 for s in healthy.get("dns", []) if s.ok
                  and isinstance(t := s.fields.get("time_ms"), (int, float)))
    threshold = DEFAULT_DNS_S
    good_p99 = percentile(good, 99) if good else None
    why = ""
    if good_p99 is not None and good_p99 * 2 > threshold:
        threshold = round(good_p99 * 2, 3)
        why = f"; threshold raised to twice the healthy p99 ({good_p99:.3f} s)"
    mean = _mean(times) or 0.0
    if mean <= threshold * 1.25:
        return
    share, high, low = _two_level(times, threshold)
    interval = _interval_for(min(share, 1 - share) if 0 < share < 1 else 1.0)
    n = _points(interval)
    instance = _label_value(target)
    rs.rules.append(AlertRule(
        alert="WarroomDNSSlow",
        expr=f'avg_over_time(probe_dns_lookup_time_seconds{{instance="{instance}"}}[5m]) > {_num(threshold)}',
        for_="5m", severity="warning",
        summary=f"{target}: name lookups took more than {threshold:g} s on average for 5 minutes",
        measured=f"mean lookup {mean:.3f} s over {len(times)} answers{why}",
        labels={"instance": target},
        bad_series={f'probe_dns_lookup_time_seconds{{instance="{instance}"}}': spread(share, high, low, n)},
        good_series={f'probe_dns_lookup_time_seconds{{instance="{instance}"}}': [0.005] * n},
        interval_s=interval))


def _retrans_share(samples: Sequence[Sample]) -> tuple[float, str]:
    icmp = [s for s in samples if s.kind == "icmp"]
    lost = sum(1 for s in icmp if not s.ok)
    tcp_times = [float(v) for s in samples if s.kind == "tcp" and s.ok
                 and isinstance(v := s.fields.get("connect_ms", s.fields.get("rtt_ms")), (int, float))]
    rto = sum(1 for v in tcp_times if 900 <= v <= 1300 or 2800 <= v <= 3400)
    icmp_share = lost / len(icmp) if icmp else 0.0
    rto_share = rto / len(tcp_times) if tcp_times else 0.0
    if icmp_share >= rto_share:
        return icmp_share, f"{lost} of {len(icmp)} ICMP echoes lost"
    return rto_share, f"{rto} of {len(tcp_times)} connects took a SYN retransmission timeout (1 s or 3 s)"


def _retrans_rule(rs: RuleSet, samples: Sequence[Sample], path_finding: bool) -> None:
    share, what = _retrans_share(samples)
    if share < 0.02 and not (path_finding and share > 0):
        return
    threshold = DEFAULT_RETRANS if share >= 2 * DEFAULT_RETRANS else max(0.005, round(share / 2, 4))
    n = _points(15.0)
    out_per_step = 1000.0
    rs.rules.append(AlertRule(
        alert="WarroomTCPRetransmissions",
        expr="rate(node_netstat_Tcp_RetransSegs[5m]) / rate(node_netstat_Tcp_OutSegs[5m]) > " + _num(threshold),
        for_="10m", severity="warning",
        summary=f"more than {threshold:.1%} of TCP segments retransmitted for 10 minutes: loss on the path",
        measured=f"{what} ({share:.1%})",
        labels={"instance": "node:9100"},
        bad_series={'node_netstat_Tcp_OutSegs{instance="node:9100"}': [i * out_per_step for i in range(n)],
                    'node_netstat_Tcp_RetransSegs{instance="node:9100"}':
                        [round(i * out_per_step * share, 1) for i in range(n)]},
        good_series={'node_netstat_Tcp_OutSegs{instance="node:9100"}': [i * out_per_step for i in range(n)],
                     'node_netstat_Tcp_RetransSegs{instance="node:9100"}': [i * 1.0 for i in range(n)]},
        interval_s=15.0))


def _conntrack_rule(rs: RuleSet, samples: Sequence[Sample], finding: bool) -> None:
    seen = [(int(c), int(m)) for s in samples if s.kind == "conns"
            and isinstance(c := s.fields.get("conntrack_count"), int)
            and isinstance(m := s.fields.get("conntrack_max"), int) and m > 0]
    if not seen:
        return
    count, maximum = max(seen, key=lambda cm: cm[0] / cm[1])
    use = count / maximum
    if use < DEFAULT_RESOURCE * 0.9 and not finding:
        return
    threshold = DEFAULT_RESOURCE if use >= DEFAULT_RESOURCE + 0.05 else round(use * 0.9, 3)
    n = _points(15.0)
    rs.rules.append(AlertRule(
        alert="WarroomConntrackFull",
        expr=f"node_nf_conntrack_entries / node_nf_conntrack_entries_limit > {_num(threshold)}",
        for_="5m", severity="critical",
        summary=f"the conntrack table is over {threshold:.0%} full for 5 minutes: new connections will be dropped",
        measured=f"{count} of {maximum} entries ({use:.0%})",
        labels={"instance": "node:9100"},
        bad_series={'node_nf_conntrack_entries{instance="node:9100"}': [float(count)] * n,
                    'node_nf_conntrack_entries_limit{instance="node:9100"}': [float(maximum)] * n},
        good_series={'node_nf_conntrack_entries{instance="node:9100"}': [round(maximum * 0.3)] * n,
                     'node_nf_conntrack_entries_limit{instance="node:9100"}': [float(maximum)] * n},
        interval_s=15.0))


def _postgres_rule(rs: RuleSet, samples: Sequence[Sample]) -> None:
    seen = [(int(u), int(m)) for s in samples if s.kind == "pg_pool" and isinstance(u := s.fields.get("used"), int)
            and isinstance(m := s.fields.get("max_connections"), int) and m > 0]
    refused = any("too many clients" in (s.message or "") for s in samples)
    if not seen and not refused:
        return
    used, maximum = max(seen, key=lambda um: um[0] / um[1]) if seen else (100, 100)
    use = used / maximum
    if refused:
        use = max(use, 1.0)
        used = max(used, maximum)
    if use < DEFAULT_RESOURCE * 0.9:
        return
    threshold = DEFAULT_RESOURCE if use >= DEFAULT_RESOURCE + 0.05 else round(use * 0.9, 3)
    n = _points(15.0)
    labels = 'instance="postgres:9187"'
    rs.rules.append(AlertRule(
        alert="WarroomPostgresConnections",
        expr="sum by (instance) (pg_stat_activity_count) / on (instance) "
             f"max by (instance) (pg_settings_max_connections) > {_num(threshold)}",
        for_="5m", severity="critical",
        summary=f"PostgreSQL connections over {threshold:.0%} of max_connections for 5 minutes",
        measured=(f"{used} of {maximum} connections in use" if seen else "PostgreSQL refused connections: "
                  "too many clients already") + (" and it refused new ones" if refused and seen else ""),
        labels={"instance": "postgres:9187"},
        bad_series={f'pg_stat_activity_count{{{labels},datname="app",state="active"}}': [float(used)] * n,
                    f"pg_settings_max_connections{{{labels}}}": [float(maximum)] * n},
        good_series={f'pg_stat_activity_count{{{labels},datname="app",state="active"}}': [round(maximum * 0.3)] * n,
                     f"pg_settings_max_connections{{{labels}}}": [float(maximum)] * n},
        interval_s=15.0))


# ------------------------------------------------------------------ prevention


def prevention(bad: Sequence[Sample], good: Sequence[Sample], findings: Sequence[dict[str, Any]]) -> list[Advice]:
    """The client-side (and server, proxy) settings the evidence calls for, with the measured numbers."""
    healthy = good or [s for s in bad if succeeded(s)]
    connects = sorted(float(v) for s in healthy if s.kind == "tcp" and s.ok
                      and isinstance(v := s.fields.get("rtt_ms"), (int, float)))
    answers = sorted(float(v) for s in healthy if s.kind == "http" and succeeded(s)
                     and isinstance(v := s.fields.get("total_ms"), (int, float)))
    connect_p99 = percentile(connects, 99)
    answer_p99 = percentile(answers, 99)
    connect_s = max(0.1, round(3 * (connect_p99 or 30.0) / 1000, 2))
    read_s = max(0.5, round(2 * (answer_p99 or 250.0) / 1000, 2))
    total_s = round(connect_s + read_s + 0.5, 2)
    errors = {f"{s.kind}:{s.error}" for s in bad if s.error}
    statuses = {s.fields.get("status") for s in bad if s.kind == "http"}
    layers = {str(f.get("layer")) for f in findings}
    titles = " ".join(str(f.get("title", "")).lower() for f in findings)
    advice = [Advice("caller", f"set connect, read and total timeouts on the caller: connect {connect_s:g} s, "
                               f"read {read_s:g} s, total {total_s:g} s (below the caller's own deadline), and "
                               "retry only idempotent calls, with backoff and jitter",
                     f"measured healthy p99: connect {_ms(connect_p99)}, answer {_ms(answer_p99)}")]
    slow = any(e.endswith("timeout") for e in errors) or 504 in statuses or "stall" in titles or "response" in titles
    if slow:
        advice.append(Advice("server", f"give the server its own request/statement timeouts, shorter than the "
                                       f"caller's total ({total_s:g} s), so it gives up before the caller does and "
                                       "the error names the slow part instead of a cancelled context",
                             "requests timed out or a proxy answered 504"))
    resets = any(e.endswith(("reset", "protocol")) for e in errors) or 502 in statuses
    advice.append(Advice("proxy", "set the proxy's (and the client pool's) idle timeout shorter than the server's "
                                  "keep-alive timeout, so the side that closes idle connections is the one that "
                                  "reuses them, never the other",
                         "resets or 502s were seen" if resets else "a standing rule: the keep-alive race shows as "
                                                                   "resets and broken pipes"))
    if "pool" in layers or any(s.kind == "pg_pool" and s.error for s in bad):
        advice.append(Advice("pool", "cap each client pool so that pools x instances stays below the server's "
                                     "max_connections, set a pool acquire timeout, and close what you borrow "
                                     "(CLOSE_WAIT piling up is a leak)", "pool findings or pool errors were seen"))
    if "dns" in layers or any(e.startswith("dns:") or e.endswith(":dns") for e in errors):
        advice.append(Advice("dns", "cache lookups (respect the TTL), give the resolver its own short timeout and "
                                    "a second resolver, and fail over instead of waiting",
                             "DNS findings or lookup failures were seen"))
    if "tls" in layers or any(e.startswith("tls:") for e in errors):
        advice.append(Advice("tls", "renew before expiry, serve the full chain, and alert on "
                                    "probe_ssl_earliest_cert_expiry", "TLS findings were seen"))
    if "path" in layers:
        advice.append(Advice("path", "find where on the way out packets are lost (egress NAT gateway, firewall, "
                                     "proxy): compare a target that fails with one that does not, from the same host",
                             "loss or resets toward some destinations only"))
    advice.append(Advice("recovery", "automatic recovery: a health check that takes a failing instance out of "
                                     "rotation (and restarts it), and a circuit breaker on the caller so a dead "
                                     "backend fails fast instead of holding threads and pool slots",
                         "the alert rules above page a person; recovery should not wait for one"))
    return advice


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


# ------------------------------------------------------------------ YAML


def rules_yaml(rs: RuleSet) -> str:
    lines = [f"# Alert rules written by warroom for incident {rs.incident}: only what was seen, thresholds",
             "# moved to what was measured (see each rule's 'measured' annotation). Check with:",
             "#   promtool check rules THIS_FILE",
             "groups:", f"  - name: {_q(rs.group)}", "    rules:"]
    if not rs.rules:
        lines[-1] = "    rules: []"
    for rule in rs.rules:
        lines += [f"      - alert: {_q(rule.alert)}", f"        expr: {_q(rule.expr)}", f"        for: {rule.for_}",
                  "        labels:", f"          severity: {_q(rule.severity)}",
                  f"          incident: {_q(slug(rs.incident))}", "        annotations:",
                  f"          summary: {_q(rule.summary)}", f"          measured: {_q(rule.measured)}"]
    return "\n".join(lines) + "\n"


def test_yaml(rs: RuleSet, rules_file: str) -> str:
    """promtool unit tests: each rule fires on the measured series and stays quiet on the healthy one."""
    lines = ["# promtool test rules THIS_FILE: every rule fires on a series like the measured one and stays",
             "# quiet on a healthy one.", "rule_files:", f"  - {_q(rules_file)}", "evaluation_interval: 15s",
             "tests:"]
    if not rs.rules:
        lines[-1] = "tests: []"
    eval_time = f"{TEST_MINUTES}m"
    for rule in rs.rules:
        labels = {**rule.labels, "severity": rule.severity, "incident": slug(rs.incident)}
        for name, series, fires in (("measured", rule.bad_series, True), ("healthy", rule.good_series, False)):
            title = f"{rule.alert} {rule.labels.get('instance', '')} {name}"
            lines += [f"  - name: {_q(title)}",
                      f"    interval: {_num(rule.interval_s)}s", "    input_series:"]
            for selector, values in series.items():
                lines += [f"      - series: {_q(selector)}", f"        values: {_q(_values_text(values))}"]
            lines += ["    alert_rule_test:", f"      - eval_time: {eval_time}", f"        alertname: {_q(rule.alert)}"]
            if fires:
                lines += ["        exp_alerts:", "          - exp_labels:"]
                lines += [f"              {key}: {_q(value)}" for key, value in labels.items()]
                lines += ["            exp_annotations:", f"              summary: {_q(rule.summary)}",
                          f"              measured: {_q(rule.measured)}"]
            else:
                lines.append("        exp_alerts: []")
    return "\n".join(lines) + "\n"


@dataclass
class PromtoolResult:
    ran: bool
    ok: bool
    output: str


def promtool(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> PromtoolResult:
    """Run promtool when it is installed (Debian's prometheus package has it)."""
    exe = shutil.which("promtool")
    if exe is None:
        return PromtoolResult(False, False, "promtool is not installed (apt-get install prometheus)")
    try:
        done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return PromtoolResult(True, False, str(exc))
    return PromtoolResult(True, done.returncode == 0, (done.stdout + done.stderr).strip())


def write_and_check(rs: RuleSet, directory: Path, *, check: bool = True) -> tuple[Path, Path, list[str]]:
    """Write alerts.yml and alerts.test.yml to ``directory``; with promtool there, check and test them."""
    rules_path, test_path = directory / "alerts.yml", directory / "alerts.test.yml"
    rules_path.write_text(rs.rules_yaml(), encoding="utf-8")
    test_path.write_text(rs.test_yaml(rules_path.name), encoding="utf-8")
    lines: list[str] = []
    if check:
        checked = promtool("check", "rules", rules_path.name, cwd=directory)
        if checked.ran:
            lines.append(f"promtool check rules: {'ok' if checked.ok else 'FAILED'}"
                         + ("" if checked.ok else f": {checked.output[-300:]}"))
            tested = promtool("test", "rules", test_path.name, cwd=directory)
            lines.append(f"promtool test rules: {'ok' if tested.ok else 'FAILED'}"
                         + ("" if tested.ok else f": {tested.output[-300:]}"))
        else:
            lines.append(checked.output)
    return rules_path, test_path, lines
