"""Fix validation: the same probes before and after the fix, per target and pool, and a verdict.

The "before" window ends at the fix-applied marker; the "after" window starts
there and lasts as long as the before window did. Per (host, target): success
rate, p50/p99 latency, loss and the error kinds of each window; per pool: its
highest use. The verdict, per target and overall:

- fixed: at least 95% of the cases succeed after the fix, and p99 is no more
  than 20% worse than before;
- improved: better than before (success up by 5 points or more, or p99 down
  by 20% or more) without reaching "fixed";
- worse: success down by 5 points or more, or p99 more than 20% worse with
  no gain in success;
- not fixed: anything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.engine.stats import percentile
from probes.samples import Sample

#: At least this share of successes after the fix for "fixed".
FIXED_SUCCESS_PCT = 95.0
#: p99 may grow by at most this factor for "fixed".
FIXED_P99_FACTOR = 1.2
#: Points of success rate that count as a real change.
CHANGE_POINTS = 5.0
#: The probe kinds a target's success is judged on, best first: the highest layer probed speaks for it.
JUDGED_KINDS = ("http", "tcp", "icmp", "dns")
#: Before windows longer than this are cut (an incident started hours before the fix).
MAX_BEFORE_S = 900.0
VERDICTS = ("fixed", "improved", "not fixed", "worse")


@dataclass
class WindowStats:
    """One target (or pool) over one window."""

    count: int = 0
    ok: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    loss_pct: float | None = None
    """ICMP echoes lost (when the target has an ICMP probe), else None."""
    errors: dict[str, int] = field(default_factory=dict)
    """Failure kinds, "kind:error" -> count, across every layer probed."""
    kind: str = ""
    """The layer the success rate is judged on."""

    @property
    def success_pct(self) -> float | None:
        return 100.0 * self.ok / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "ok": self.ok, "success_pct": _round(self.success_pct),
                "p50_ms": _round(self.p50_ms), "p99_ms": _round(self.p99_ms), "loss_pct": _round(self.loss_pct),
                "errors": dict(self.errors)}


@dataclass
class Row:
    """Before/after for one target seen from one host."""

    host: str
    target: str
    before: WindowStats
    after: WindowStats
    verdict: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "target": self.target, "before": self.before.to_dict(),
                "after": self.after.to_dict(), "verdict": self.verdict, "why": self.why}


@dataclass
class PoolRow:
    host: str
    name: str
    before_max_pct: float | None
    after_max_pct: float | None
    before_used: int | None
    after_used: int | None
    maximum: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "name": self.name, "before_max_pct": self.before_max_pct,
                "after_max_pct": self.after_max_pct, "before_used": self.before_used, "after_used": self.after_used,
                "max": self.maximum}


@dataclass
class Validation:
    fix_at: float
    before_start: float
    after_end: float
    rows: list[Row]
    pools: list[PoolRow]
    verdict: str
    why: str

    @property
    def window_s(self) -> float:
        return self.fix_at - self.before_start

    def to_dict(self) -> dict[str, Any]:
        return {"fix_at": self.fix_at, "before_start": self.before_start, "after_end": self.after_end,
                "window_s": round(self.window_s, 1), "verdict": self.verdict, "why": self.why,
                "rows": [r.to_dict() for r in self.rows], "pools": [p.to_dict() for p in self.pools]}

    def lines(self) -> list[str]:
        out = [f"verdict: {self.verdict.upper()} ({self.why}); {self.window_s:.0f} s before vs "
               f"{self.after_end - self.fix_at:.0f} s after"]
        for row in self.rows:
            out.append(f"{row.target} from {row.host}: {_brief(row.before)} -> {_brief(row.after)}: {row.verdict}")
        for pool in self.pools:
            out.append(f"pool {pool.name} ({pool.host}): max use {_pct(pool.before_max_pct)} -> "
                       f"{_pct(pool.after_max_pct)}")
        return out


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _brief(w: WindowStats) -> str:
    return f"{_pct(w.success_pct)} ok, p99 {_ms(w.p99_ms)}"


def latency_ms(sample: Sample) -> float | None:
    """The time a successful Sample measured: HTTP total, else the handshake or echo RTT, else DNS time."""
    for name in ("total_ms", "rtt_ms", "time_ms"):
        value = sample.fields.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def succeeded(sample: Sample) -> bool:
    """A case that worked: no error, and for HTTP an answer below 500 that is not a challenge page."""
    if not sample.ok:
        return False
    if sample.kind == "http":
        status = sample.fields.get("status")
        if isinstance(status, int) and status >= 500:
            return False
        if sample.fields.get("challenge_redirect") or sample.fields.get("waf_hint"):
            return False
    return True


def window_stats(samples: Sequence[Sample]) -> WindowStats:
    """One target's Samples (every kind) over one window."""
    by_kind: dict[str, list[Sample]] = {}
    for sample in samples:
        by_kind.setdefault(sample.kind, []).append(sample)
    kind = next((k for k in JUDGED_KINDS if by_kind.get(k)), "")
    judged = by_kind.get(kind, [])
    values = sorted(v for s in judged if succeeded(s) and (v := latency_ms(s)) is not None)
    icmp = by_kind.get("icmp", [])
    errors: Counter[str] = Counter()
    for sample in samples:
        if sample.kind in JUDGED_KINDS or sample.kind == "tls":
            if sample.error:
                errors[f"{sample.kind}:{sample.error}"] += 1
            elif sample.kind == "http" and not succeeded(sample):
                errors[f"http:{sample.fields.get('status')}"] += 1
    return WindowStats(count=len(judged), ok=sum(1 for s in judged if succeeded(s)), p50_ms=percentile(values, 50),
                       p99_ms=percentile(values, 99),
                       loss_pct=100.0 * sum(1 for s in icmp if not s.ok) / len(icmp) if icmp else None,
                       errors=dict(errors.most_common()), kind=kind)


def judge(before: WindowStats, after: WindowStats) -> tuple[str, str]:
    """The verdict for one target, and why, in words."""
    if not after.count:
        return "not fixed", "no measurement after the fix"
    a_ok = after.success_pct or 0.0
    b_ok = before.success_pct if before.success_pct is not None else 0.0
    p99_ratio = (after.p99_ms / before.p99_ms) if after.p99_ms and before.p99_ms else None
    p99_worse = p99_ratio is not None and p99_ratio > FIXED_P99_FACTOR
    if a_ok >= FIXED_SUCCESS_PCT and not p99_worse:
        return "fixed", f"{a_ok:.0f}% ok after (needs {FIXED_SUCCESS_PCT:.0f}%)" + (
            f", p99 x{p99_ratio:.2f}" if p99_ratio is not None else "")
    if a_ok <= b_ok - CHANGE_POINTS or (p99_worse and a_ok < b_ok + CHANGE_POINTS):
        why = f"{b_ok:.0f}% -> {a_ok:.0f}% ok" + (f", p99 x{p99_ratio:.2f}" if p99_worse else "")
        return "worse", why
    if a_ok >= b_ok + CHANGE_POINTS or (p99_ratio is not None and p99_ratio <= 1 / FIXED_P99_FACTOR):
        why = f"{b_ok:.0f}% -> {a_ok:.0f}% ok" + (f", p99 x{p99_ratio:.2f}" if p99_ratio is not None else "")
        return "improved", why + (f" (p99 {p99_ratio:.2f}x: more than 20% worse)" if p99_worse else "")
    return "not fixed", f"{a_ok:.0f}% ok after, {b_ok:.0f}% before" + (
        f" (p99 x{p99_ratio:.2f}: more than 20% worse)" if p99_worse else "")


def _pool_gauges(samples: Iterable[Sample]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for sample in samples:
        gauges = sample.fields.get("gauges")
        if not isinstance(gauges, list):
            continue
        for gauge in gauges:
            name = gauge.get("name") if isinstance(gauge, dict) else None
            if isinstance(gauge, dict) and isinstance(name, str):
                out.setdefault((sample.host, name), []).append(gauge)
    return out


def _max_util(gauges: list[dict[str, Any]]) -> tuple[float | None, int | None, int | None]:
    utils = [float(g["util_pct"]) for g in gauges if isinstance(g.get("util_pct"), (int, float))]
    used = [int(g["used"]) for g in gauges if isinstance(g.get("used"), int)]
    maxima = [int(g["max"]) for g in gauges if isinstance(g.get("max"), int)]
    return (max(utils) if utils else None, max(used) if used else None, maxima[-1] if maxima else None)


OVERALL_ORDER = {"worse": 0, "not fixed": 1, "improved": 2, "fixed": 3}


def validate(samples: Iterable[Sample], fix_at: float, before_start: float, after_end: float,
             targets: Iterable[str] | None = None) -> Validation:
    """Before/after for every (host, target) and pool in ``samples``, and the overall verdict.

    The overall verdict is the worst of the targets that failed before the fix (a target that was
    healthy throughout says nothing about the fix); when none failed, the worst of all.
    """
    wanted = set(targets) if targets is not None else None
    per_target: dict[tuple[str, str], tuple[list[Sample], list[Sample]]] = {}
    pools_before: list[Sample] = []
    pools_after: list[Sample] = []
    for sample in samples:
        if sample.ts < before_start or sample.ts > after_end:
            continue
        is_after = sample.ts >= fix_at
        if sample.kind in JUDGED_KINDS or sample.kind == "tls":
            if not sample.target or (wanted is not None and sample.target not in wanted):
                continue
            lists = per_target.setdefault((sample.host, sample.target), ([], []))
            lists[1 if is_after else 0].append(sample)
        elif "gauges" in sample.fields:
            (pools_after if is_after else pools_before).append(sample)
    rows: list[Row] = []
    for (host, target), (before_samples, after_samples) in sorted(per_target.items()):
        before, after = window_stats(before_samples), window_stats(after_samples)
        if not before.count and not after.count:
            continue
        verdict, why = judge(before, after)
        rows.append(Row(host, target, before, after, verdict, why))
    gauges_before, gauges_after = _pool_gauges(pools_before), _pool_gauges(pools_after)
    pools: list[PoolRow] = []
    for key in sorted(set(gauges_before) | set(gauges_after)):
        b_pct, b_used, b_max = _max_util(gauges_before.get(key, []))
        a_pct, a_used, a_max = _max_util(gauges_after.get(key, []))
        pools.append(PoolRow(key[0], key[1], b_pct, a_pct, b_used, a_used, a_max or b_max))
    failing = [r for r in rows if (r.before.success_pct or 0.0) < FIXED_SUCCESS_PCT]
    judged = failing or rows
    if not judged:
        return Validation(fix_at, before_start, after_end, rows, pools, "not fixed", "no target was measured")
    worst = min(judged, key=lambda r: OVERALL_ORDER[r.verdict])
    names = ", ".join(f"{r.target} ({r.host})" for r in judged if r.verdict == worst.verdict)
    return Validation(fix_at, before_start, after_end, rows, pools, worst.verdict,
                      f"{names}: {worst.why}" if len(judged) > 1 else worst.why)
