"""The rule registry: small rules that turn evidence in the store into Findings.

A rule is a plain function ``(store) -> Iterable[Finding]``. Rules are
registered with ``@rule`` and run together by ``diagnose``; they do no I/O and
need no screen, so each is unit-tested by filling a Store with Samples.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import replace

from console.diagnosis.finding import SEVERITIES, Finding
from console.engine.store import Store

__all__ = ["RULES", "SEVERITIES", "Finding", "Rule", "diagnose", "rule"]

Rule = Callable[[Store], Iterable[Finding]]
RULES: dict[str, Rule] = {}

#: Modules whose @rule functions join RULES on the first diagnosis (they import this module).
RULE_MODULES = ("console.diagnosis.layers", "console.diagnosis.transport", "console.diagnosis.vantage",
                "console.diagnosis.pools", "console.diagnosis.capture")
#: Findings that corroborate another rule's finding about the same target from the same host: they join it
#: as more evidence (one cause, one finding) when it is on one of these layers, and stand alone otherwise.
JOINS: dict[str, tuple[str, ...]] = {
    "capture_syn_unanswered": ("tcp", "path"),
    "capture_connections_refused": ("tcp",),
    "capture_server_resets": ("tcp", "path", "http"),
    "capture_retransmissions": ("path", "tcp"),
}


def rule(func: Rule) -> Rule:
    """Register a diagnosis rule under its function name."""
    RULES[func.__name__] = func
    return func


def diagnose(store: Store, rules: dict[str, Rule] | None = None) -> list[Finding]:
    """Run every rule; a rule that raises is skipped, never the whole diagnosis."""
    if rules is None:
        for module in RULE_MODULES:
            importlib.import_module(module)
    findings: list[Finding] = []
    for name, func in (rules or RULES).items():
        try:
            findings.extend(func(store))
        except Exception as exc:
            findings.append(Finding(rule=name, title=f"rule {name} failed: {exc}", severity="info",
                                    layer="console", confidence=0.0))
    return rank(fold(rank(findings)))


def rank_key(finding: Finding) -> tuple[int, int, float, str, str]:
    """Targets first (host findings that explain a target carry that target), then severity, then certainty."""
    order = {sev: i for i, sev in enumerate(reversed(SEVERITIES))}
    return (0 if finding.about_target else 1, order.get(finding.severity, 9), -finding.confidence,
            finding.target, finding.title)


def rank(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=rank_key)


def fold(findings: list[Finding]) -> list[Finding]:
    """Merge corroborating findings (JOINS) into the highest-ranked finding they corroborate."""
    out: list[Finding] = []
    joining: list[Finding] = []
    for finding in findings:
        (joining if finding.rule in JOINS and finding.target else out).append(finding)
    for extra in joining:
        at = next((i for i, f in enumerate(out) if f.target == extra.target and f.host == extra.host
                   and f.layer in JOINS[extra.rule] and f.rule not in JOINS), None)
        if at is None:
            out.append(extra)
            continue
        base = out[at]
        out[at] = replace(base, evidence=base.evidence + tuple(f"{extra.layer}: {e}" for e in extra.evidence),
                          series=base.series + tuple(k for k in extra.series if k not in base.series),
                          confidence=min(1.0, max(base.confidence, extra.confidence) + 0.05))
    return out
