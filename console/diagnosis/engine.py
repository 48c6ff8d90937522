"""The findings engine: every rule, at a fixed rate, over the store; one result everyone reads.

The console and the headless commands both run one ``FindingsEngine`` beside
the store. It keeps the current ranked findings and, for each, when it first
appeared, when it was last seen and when it cleared, so the Findings pane, the
JSON stream, the timeline and the report all read the same thing. Each change
(a finding appearing or clearing) is also published as a ``finding`` Sample,
so recordings and ``--json`` carry it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from console.diagnosis.finding import SEVERITIES, Finding
from console.diagnosis.registry import Rule, diagnose
from console.engine.store import Store
from probes.samples import JSONValue, Sample

#: Seconds between two runs of the rules.
DEFAULT_INTERVAL_S = 1.0
#: The Sample kind of a finding appearing or clearing.
KIND_FINDING = "finding"
#: Cleared findings kept for the timeline and the report.
MAX_HISTORY = 2000


@dataclass
class FindingState:
    """One finding's life: what it says now and when it came and went."""

    finding: Finding
    first_seen: float
    last_seen: float
    cleared: float | None = None
    """None while the finding holds."""
    worst: str = "info"
    """The most severe it has been (a finding can ease from critical to warning and stay the same finding)."""

    def saw(self, finding: Finding) -> None:
        self.finding = finding
        if SEVERITIES.index(finding.severity) > SEVERITIES.index(self.worst):
            self.worst = finding.severity


class FindingsEngine:
    """Runs the rules over ``store`` (call ``run_once`` at a fixed rate) and keeps what they found."""

    def __init__(self, store: Store, *, publish: Callable[[Sample], None] | None = None,
                 rules: dict[str, Rule] | None = None, interval: float = DEFAULT_INTERVAL_S) -> None:
        self.store = store
        self.publish = publish
        """Where appear/clear Samples go (the hub's publish); None keeps them to this object."""
        self.rules = rules
        self.interval = interval
        self.current: list[Finding] = []
        """The findings that hold now, ranked: about the targets first (most severe and most certain first),
        then those about this host (``target`` "")."""
        self.states: dict[tuple[str, ...], FindingState] = {}
        """Every finding seen, open or cleared, by ``Finding.key``."""
        self.history: list[FindingState] = []
        """Cleared findings, oldest first (bounded by MAX_HISTORY)."""
        self.version = 0
        """Bumped when ``current`` changes in any way: panes redraw only then."""
        self.runs = 0
        self._seen_store_version = -1

    def run_once(self, now: float | None = None) -> list[Finding]:
        """Run every rule now (skipped when the store has not changed) and update the states."""
        if self.store.version == self._seen_store_version:
            return self.current
        self._seen_store_version = self.store.version
        now = self.store.clock() if now is None else now
        found = diagnose(self.store, self.rules)
        self.runs += 1
        seen: set[tuple[str, ...]] = set()
        for finding in found:
            key = finding.key
            if key in seen:  # two rules may name the same key; the first (ranked higher) stands
                continue
            seen.add(key)
            state = self.states.get(key)
            if state is None or state.cleared is not None:
                state = self.states[key] = FindingState(finding, first_seen=now, last_seen=now)
                state.saw(finding)
                self._announce(state, "appeared", now)
            else:
                state.saw(finding)
                state.last_seen = now
        for key, state in list(self.states.items()):
            if key not in seen and state.cleared is None:
                state.cleared = now
                self._announce(state, "cleared", now)
                self.history.append(state)
                del self.states[key]
        del self.history[:-MAX_HISTORY]
        if found != self.current:
            self.current = [f for f in found if f.key in seen]
            self.version += 1
        return self.current

    def reset(self) -> None:
        """Forget every finding (a replay seeking elsewhere: what held then is worked out afresh)."""
        self.current = []
        self.states.clear()
        self.history.clear()
        self.version += 1
        self._seen_store_version = -1

    def state_of(self, finding: Finding) -> FindingState | None:
        return self.states.get(finding.key)

    @property
    def about_targets(self) -> list[Finding]:
        """Current findings about the targets (and host findings that explain one), ranked."""
        return [f for f in self.current if f.about_target]

    @property
    def about_this_host(self) -> list[Finding]:
        """Current findings about the hosts themselves, explaining no target: listed below the targets."""
        return [f for f in self.current if not f.about_target]

    def record(self, finding: Finding) -> dict[str, JSONValue]:
        """The finding as JSON-safe data with when it was first and last seen (``warroom diagnose --json``)."""
        state = self.states.get(finding.key)
        return {**finding.to_dict(), "first_seen": state.first_seen if state else None,
                "last_seen": state.last_seen if state else None,
                "worst_severity": state.worst if state else finding.severity}

    def _announce(self, state: FindingState, change: str, now: float) -> None:
        if self.publish is None:
            return
        finding = state.finding
        fields = {key: value for key, value in finding.to_dict().items() if key not in ("target", "host")}
        # Series (finding.host, "finding", finding.target): a host finding's target is "".
        self.publish(Sample(KIND_FINDING, finding.target, now, {
            "change": change, **fields, "first_seen": state.first_seen, "last_seen": state.last_seen,
            "cleared": state.cleared,
        }, host=finding.host))
