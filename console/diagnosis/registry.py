"""The rule registry: small rules that turn evidence in the store into Findings.

A rule is a plain function ``(store) -> Iterable[Finding]``. Rules are
registered with ``@rule`` and run together by ``diagnose``; they do no I/O and
need no screen, so each is unit-tested by filling a Store with Samples.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from console.diagnosis.finding import SEVERITIES, Finding
from console.engine.store import Store

__all__ = ["RULES", "SEVERITIES", "Finding", "Rule", "diagnose", "rule"]

Rule = Callable[[Store], Iterable[Finding]]
RULES: dict[str, Rule] = {}

#: Modules whose @rule functions join RULES on the first diagnosis (they import this module).
RULE_MODULES = ("console.diagnosis.layers", "console.diagnosis.vantage", "console.diagnosis.pools",
                "console.diagnosis.capture")


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
