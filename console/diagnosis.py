"""Diagnosis: small rules that turn evidence in the store into Findings.

A rule is a plain function ``(store) -> Iterable[Finding]``. Rules are
registered with ``@rule`` and run together by ``diagnose``; they do no I/O and
need no screen, so each is unit-tested by filling a Store with Samples.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from console.store import SeriesKey, Store

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Finding:
    """One suspected cause, with the evidence that supports it."""

    rule: str
    """The rule's name, stable across runs (for reports and tests)."""
    title: str
    """One line a responder reads first: what is wrong, in plain words."""
    severity: str
    """"info", "warning" or "critical"."""
    layer: str
    """Where it was seen: "dns", "tcp", "tls", "http", "pool", "host", "capture" ..."""
    confidence: float
    """0..1: how sure the rule is that this is the cause, not just a symptom."""
    evidence: tuple[str, ...] = ()
    """Raw evidence lines, original error text kept as it came."""
    series: tuple[SeriesKey, ...] = field(default=())
    """The series whose samples prove it."""
    next_step: str = ""
    """The next thing to check or do."""


Rule = Callable[[Store], Iterable[Finding]]
RULES: dict[str, Rule] = {}

#: Modules whose @rule functions join RULES on the first diagnosis (they import this module).
RULE_MODULES = ("console.rules_layers", "console.rules_remote", "console.rules_pools",
                "console.rules_capture")


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
    order = {sev: i for i, sev in enumerate(reversed(SEVERITIES))}
    findings.sort(key=lambda f: (order.get(f.severity, 9), -f.confidence))
    return findings


@rule
def target_unreachable(store: Store) -> Iterable[Finding]:
    """A TCP target whose recent connects all failed, named by how they failed."""
    for key in store.keys(kind="tcp"):
        stats = store.stats(key, seconds=30)
        if stats.count >= 3 and stats.ok == 0:
            host, _, target = key
            advice = {
                "refused": "nothing listens there or a firewall rejects: check the service and its port",
                "timeout": "SYNs get no answer: check firewalls, security groups and the listen backlog",
                "unreachable": "the network has no route: check routing and the interface",
            }.get(stats.last_error or "", "read the original error below")
            yield Finding(
                rule="target_unreachable",
                title=f"{target} unreachable from {host}: every connect {stats.last_error}",
                severity="critical",
                layer="tcp",
                confidence=0.9,
                evidence=(f"{stats.count} of {stats.count} connects failed in 30 s",
                          f"last error: {stats.last_message}"),
                series=(key,),
                next_step=advice,
            )
