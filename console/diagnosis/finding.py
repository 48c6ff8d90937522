"""Finding: one suspected cause, with the evidence that supports it."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.engine.store import SeriesKey
from probes.samples import LOCAL_HOST, JSONValue

SEVERITIES = ("info", "warning", "critical")
#: Severities that mean something is wrong (``warroom diagnose`` exits 1 on one of them).
ALARMS = ("warning", "critical")


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
    target: str = ""
    """The target this finding is about, as the user typed it; "" for a finding about a host itself."""
    host: str = LOCAL_HOST
    """Where it was seen from: "local" (this host) or an SSH host's name."""
    chain: tuple[str, ...] = ()
    """Why-chain from symptom to suspected cause, symptom first ("HTTP 504", "the proxy waited 1.0 s", ...)."""
    ruled_out: tuple[str, ...] = ()
    """Layers the evidence clears ("DNS ok 1.2 ms", "TCP ok 0.2 ms")."""
    window_s: float | None = None
    """The window the rule read, in seconds (None: the latest samples only)."""
    subject: str = ""
    """What within the target or host it is about, when one rule can find several (a pool, a process and its
    peer, a destination): part of the key, so each is a finding of its own whose counts may change."""

    @property
    def about_target(self) -> bool:
        """True for a finding about a target the user named (listed first); False: "this host"."""
        return bool(self.target)

    def to_dict(self) -> dict[str, JSONValue]:
        """The finding as JSON-safe data (``warroom diagnose --json``, finding Samples, reports)."""
        return {"target": self.target, "host": self.host, "severity": self.severity,
                "confidence": round(self.confidence, 2), "layer": self.layer, "rule": self.rule,
                "title": self.title, "evidence": list[JSONValue](self.evidence),
                "chain": list[JSONValue](self.chain), "ruled_out": list[JSONValue](self.ruled_out),
                "window_s": self.window_s, "next_step": self.next_step}

    @property
    def key(self) -> tuple[str, ...]:
        """What makes two runs' findings the same finding: the rule and the series (or title) it is about."""
        if self.target or self.subject:
            return (self.rule, self.host, self.target, *((self.subject,) if self.subject else ()))
        return (self.rule, *("/".join(k) for k in self.series)) if self.series else (self.rule, self.title)


def where(finding: Finding) -> str:
    """Which target from which host, or which host: the line under a finding's title."""
    return f"{finding.target} from {finding.host}" if finding.target else f"this host ({finding.host})"


def describe(finding: Finding) -> list[tuple[str, str]]:
    """(label, text) lines under a finding's title, as every view shows them: plain text, never a repr.

    Evidence first (the original error text kept), then the why-chain from
    symptom to suspected cause, what the evidence rules out, and what to do next.
    """
    lines = [("evidence", line) for line in finding.evidence]
    if finding.chain:
        lines.append(("why", " <- ".join(finding.chain)))
    if finding.ruled_out:
        lines.append(("ruled out", ", ".join(finding.ruled_out)))
    if finding.next_step:
        lines.append(("next", finding.next_step))
    return lines
