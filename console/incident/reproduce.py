"""Reproduce: the layered check of one target run N times from each host, and the pattern in the failures.

The Samples are the layered check's (probes/layers.py: dns, tcp, tls, http,
then one "layers" marker per round), from this host and every SSH host. Each
round succeeds or fails at one phase; ``analyse`` gives the failure rate,
which phase fails, the timings of every phase, and whether failures cluster
by host, by the address the resolver answered, or in time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from console.engine.stats import percentile
from console.incident.validate import latency_ms, succeeded
from probes.samples import Sample

DEFAULT_COUNT = 20
#: Seconds between two rounds (a failing target is not hammered, and time patterns can show).
DEFAULT_INTERVAL_S = 0.5
#: Seconds each layer of one round may take.
DEFAULT_TIMEOUT_S = 2.0
LAYER_KINDS = ("dns", "tcp", "tls", "http")
MARKER_KIND = "layers"


@dataclass
class Round:
    host: str
    target: str
    ts: float
    ok: bool
    phase: str
    """The phase that failed ("dns", "tcp", "tls", "http:ttfb" ...); "" when the round succeeded."""
    error: str
    """The failure kind and the original error text; "" when it succeeded."""
    address: str
    """The address the lookup answered (or the literal), "" when unknown."""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "target": self.target, "ts": self.ts, "ok": self.ok, "phase": self.phase,
                "error": self.error, "address": self.address, "timings": self.timings}


def rounds_of(samples: Iterable[Sample]) -> list[Round]:
    """Split a layered-check stream into rounds (a "layers" marker or error Sample ends each)."""
    pending: dict[tuple[str, str], list[Sample]] = {}
    out: list[Round] = []
    for sample in samples:
        key = (sample.host, sample.target)
        if sample.kind == MARKER_KIND:
            layers = pending.pop(key, [])
            if not sample.ok:  # the whole check ran out of time: that is this round's failure
                layers.append(sample)
            out.append(_round(sample.host, sample.target, layers, sample.ts))
        elif sample.kind in LAYER_KINDS:
            pending.setdefault(key, []).append(sample)
    return out


def _round(host: str, target: str, layers: list[Sample], ts: float) -> Round:
    timings: dict[str, float] = {}
    address = ""
    failed: Sample | None = None
    dns_ok = False
    for sample in layers:
        if sample.kind == "dns":
            addresses = sample.fields.get("addresses")
            if isinstance(addresses, list) and addresses and not address:
                address = str(addresses[0])
                dns_ok = True
            took = sample.fields.get("time_ms")
            if isinstance(took, (int, float)) and sample.ok:
                timings["dns"] = min(timings.get("dns", float(took)), float(took))
            continue
        if sample.kind == "tcp" and not address:
            address = str(sample.fields.get("address") or "")
        value = latency_ms(sample)
        if sample.ok and value is not None:
            timings[sample.kind] = value
        if failed is None and not succeeded(sample):
            failed = sample
    dns_samples = [s for s in layers if s.kind == "dns"]
    if failed is None and dns_samples and not dns_ok:
        failed = dns_samples[-1]
    if failed is None and not layers:
        return Round(host, target, ts, False, "none", "the check produced no layer", address, timings)
    if failed is None:
        return Round(host, target, ts, True, "", "", address, timings)
    phase = failed.kind
    if failed.kind == "http":
        detail = failed.fields.get("phase")
        status = failed.fields.get("status")
        phase = f"http:{detail}" if detail else (f"http:{status}" if status else "http")
    error = f"{failed.error}: {failed.message}" if failed.error else f"HTTP {failed.fields.get('status')}"
    return Round(host, target, ts, False, phase, error, address, timings)


@dataclass
class Cluster:
    by: str
    """"host", "address" or "time"."""
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "text": self.text}


@dataclass
class Analysis:
    target: str
    rounds: list[Round]
    failures: int
    phases: dict[str, int]
    timings: dict[str, dict[str, float | None]]
    per_host: dict[str, tuple[int, int]]
    per_address: dict[str, tuple[int, int]]
    clusters: list[Cluster]
    errors: dict[str, int]

    @property
    def failure_pct(self) -> float:
        return 100.0 * self.failures / len(self.rounds) if self.rounds else 0.0

    def lines(self) -> list[str]:
        n = len(self.rounds)
        out = [f"{self.target}: {self.failures} of {n} failed ({self.failure_pct:.0f}%)"]
        if self.phases:
            out.append("failing phase: " + ", ".join(f"{p} {c}x" for p, c in self.phases.items()))
        for phase, stats in self.timings.items():
            out.append(f"  {phase}: p50 {_ms(stats['p50'])}, p99 {_ms(stats['p99'])}, max {_ms(stats['max'])}")
        for host, (bad, total) in self.per_host.items():
            out.append(f"  from {host}: {bad} of {total} failed")
        out += [f"pattern ({c.by}): {c.text}" for c in self.clusters]
        out += [f"error: {text} ({count}x)" for text, count in list(self.errors.items())[:3]]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "rounds": len(self.rounds), "failures": self.failures,
                "failure_pct": round(self.failure_pct, 1), "phases": self.phases, "timings": self.timings,
                "per_host": {h: {"failed": b, "total": t} for h, (b, t) in self.per_host.items()},
                "per_address": {a: {"failed": b, "total": t} for a, (b, t) in self.per_address.items()},
                "clusters": [c.to_dict() for c in self.clusters], "errors": self.errors,
                "round_results": [r.to_dict() for r in self.rounds]}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _rate_table(rounds: list[Round], key: str) -> dict[str, tuple[int, int]]:
    table: dict[str, list[int]] = {}
    for r in rounds:
        name = getattr(r, key) or "?"
        row = table.setdefault(name, [0, 0])
        row[0] += 0 if r.ok else 1
        row[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(table.items())}


def _split_cluster(table: dict[str, tuple[int, int]], by: str, label: str) -> Cluster | None:
    """A cluster when one group fails clearly more often than another (50 points apart, or all vs none)."""
    if len(table) < 2:
        return None
    rates = {k: 100.0 * b / t for k, (b, t) in table.items() if t}
    worst = max(rates, key=lambda k: rates[k])
    best = min(rates, key=lambda k: rates[k])
    if rates[worst] - rates[best] >= 50 or (rates[best] == 0 and rates[worst] > 0 and table[worst][0] >= 2):
        return Cluster(by, f"failures cluster by {label}: {worst} fails {rates[worst]:.0f}%, "
                           f"{best} {rates[best]:.0f}%")
    return None


def _time_cluster(rounds: list[Round]) -> Cluster:
    failures = [r for r in rounds if not r.ok]
    if not failures:
        return Cluster("time", "no failure to place in time")
    if len(failures) == len(rounds):
        return Cluster("time", "every round failed: a steady fault, not an intermittent one")
    start, end = rounds[0].ts, rounds[-1].ts
    span = max(end - start, 1e-6)
    thirds = Counter(min(2, int(3 * (r.ts - start) / span)) for r in failures)
    third, count = thirds.most_common(1)[0]
    if len(failures) >= 3 and count / len(failures) >= 0.6:
        where = ("first", "middle", "last")[third]
        return Cluster("time", f"failures cluster in time: {count} of {len(failures)} in the {where} third "
                               f"of the run (a burst: something changed, or a queue filled)")
    streak = longest = 0
    for r in rounds:
        streak = streak + 1 if not r.ok else 0
        longest = max(longest, streak)
    return Cluster("time", f"failures spread through the run (longest streak {longest}): intermittent, about "
                           f"1 in {len(rounds) / len(failures):.1f}")


def analyse(target: str, rounds: list[Round]) -> Analysis:
    mine = sorted((r for r in rounds if r.target == target), key=lambda r: r.ts)
    failures = [r for r in mine if not r.ok]
    timings: dict[str, dict[str, float | None]] = {}
    for phase in LAYER_KINDS:
        values = sorted(r.timings[phase] for r in mine if phase in r.timings)
        if values:
            timings[phase] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": values[-1]}
    per_host = _rate_table(mine, "host")
    per_address = _rate_table(mine, "address")
    clusters = [c for c in (_split_cluster(per_host, "host", "host"),
                            _split_cluster(per_address, "address", "resolver answer")) if c]
    clusters.append(_time_cluster(mine))
    return Analysis(target=target, rounds=mine, failures=len(failures),
                    phases=dict(Counter(r.phase for r in failures).most_common()), timings=timings,
                    per_host=per_host, per_address=per_address, clusters=clusters,
                    errors=dict(Counter(r.error[:160] for r in failures).most_common()))
