"""Findings: what the findings engine concluded, grouped (the targets, then this host). The pane runs no rule itself.

Each finding shows its severity as a word and a symbol (colour is extra, not
the message), its layer and title, which target from which host, since when,
then its evidence (the original error text), the why-chain, what is ruled
out and the next step. Labels sit in a column of their own, so a long line
wraps under its text and keeps its indent at any width.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from console.diagnosis.engine import FindingsEngine, FindingState
from console.diagnosis.finding import Finding, describe, where
from widgets.visibility import every

SEVERITY_MARK = {"critical": "✖ CRITICAL", "warning": "▲ WARNING", "info": "● INFO"}
EMPTY_TEXT = ("no findings yet: rules look at what the probes gathered (targets, connections, pools, "
              "capture) every second; add targets with a or start warroom with HOST:PORT")
GROUPS = (("Targets", True), ("This host", False))


def since_text(state: FindingState | None, now: float) -> str:
    """ "since 12:00:01 (2 min)": when the finding first appeared and how long it has held."""
    if state is None:
        return ""
    held = max(0.0, now - state.first_seen)
    span = f"{held:.0f} s" if held < 120 else f"{held / 60:.0f} min" if held < 7200 else f"{held / 3600:.0f} h"
    return f"since {time.strftime('%H:%M:%S', time.localtime(state.first_seen))} ({span})"


def finding_text(finding: Finding, state: FindingState | None = None, now: float | None = None,
                 labels: Mapping[str, str] | None = None) -> str:
    """A finding as plain text lines (what the pane shows, without colour), for tests and copying."""
    lines = [f"{SEVERITY_MARK.get(finding.severity, finding.severity)} {finding.layer} {finding.title}",
             f"    {_where_line(finding, state, now, labels)}"]
    lines += [f"    {label}: {text}" for label, text in describe(finding)]
    return "\n".join(lines)


def _where_line(finding: Finding, state: FindingState | None, now: float | None,
                labels: Mapping[str, str] | None = None) -> str:
    # The target's label first, where it has one (the demo's): the Overview and Layers name it so.
    label = (labels or {}).get(finding.target) if finding.target else None
    parts = [f"{label} · {where(finding)}" if label else where(finding)]
    since = since_text(state, time.time() if now is None else now)
    if since:
        parts.append(since)
    if finding.window_s:
        parts.append(f"window {finding.window_s:.0f} s")
    parts.append(f"confidence {finding.confidence:.0%}")
    return " · ".join(parts)


class FindingView(Vertical):
    """One finding: a title row, then one labelled row per line of where, evidence, why, ruled out, next."""

    DEFAULT_CSS = """
    FindingView { height: auto; margin: 0 0 1 0; }
    FindingView > Horizontal { height: auto; }
    FindingView .mark { width: 11; text-style: bold; }
    FindingView .label { width: 11; color: $text-muted; text-align: right; padding: 0 1 0 0; }
    FindingView .text { width: 1fr; height: auto; }
    FindingView .sev-critical { color: $error; }
    FindingView .sev-warning { color: $warning; }
    FindingView .sev-info { color: $primary; }
    """

    def __init__(self, finding: Finding, state: FindingState | None, now: float,
                 labels: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.finding = finding
        self.state = state
        self.now = now
        self.labels = labels

    def compose(self):  # type: ignore[no-untyped-def]
        f = self.finding
        with Horizontal():
            yield Static(SEVERITY_MARK.get(f.severity, f.severity), classes=f"mark sev-{f.severity}", markup=False)
            yield Static(f"[b]{escape(f.layer)}[/] {escape(f.title)}", classes="text")
        rows = [("where", _where_line(f, self.state, self.now, self.labels)), *describe(f)]
        for label, text in rows:
            with Horizontal():
                yield Static(label, classes="label", markup=False)
                yield Static(text, classes="text", markup=False)


class FindingsPane(VerticalScroll):
    """Shows the findings engine's current result, targets first; redraws only when it changed."""

    DEFAULT_CSS = """
    FindingsPane {
        border: round $accent;
        border-title-color: $accent;
        padding: 0 1;
    }
    FindingsPane .group { text-style: bold; color: $accent; margin: 0 0 0 0; }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, engine: FindingsEngine, *, labels: Mapping[str, str] | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.labels = labels if labels is not None else {}
        """Target -> the name the Overview shows for it (the console's own dict: labels added later show)."""
        self.findings: list[Finding] = []
        """What the pane shows, in its order: the targets' findings, then this host's."""
        self._seen_version = -1
        self._empty = Static(EMPTY_TEXT, classes="empty")
        self.border_title = "Findings"

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._empty

    def on_mount(self) -> None:
        every(self, 1.0, self.refresh_findings)
        self.call_after_refresh(self.refresh_findings)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_findings()

    def refresh_findings(self) -> None:
        if self.paused or self.engine.version == self._seen_version:
            return
        self._seen_version = self.engine.version
        groups = [(title, [f for f in self.engine.current if f.about_target == targets]) for title, targets in GROUPS]
        self.findings = [f for _, found in groups for f in found]
        self.border_title = f"Findings ({len(self.findings)})"
        now = self.engine.store.clock()
        with self.app.batch_update():
            self.remove_children(".group, FindingView")
            self._empty.display = not self.findings
            widgets: list[Static | FindingView] = []
            for title, found in groups:
                if found:
                    widgets.append(Static(f"{title} ({len(found)})", classes="group", markup=False))
                    widgets += [FindingView(f, self.engine.state_of(f), now, self.labels) for f in found]
            if widgets:
                self.mount_all(widgets)

    def text(self) -> str:
        """Everything the pane shows, as plain text (group headings included)."""
        if not self.findings:
            return EMPTY_TEXT
        now = self.engine.store.clock()
        out = []
        for title, targets in GROUPS:
            found = [f for f in self.findings if f.about_target == targets]
            if found:
                out.append(f"{title} ({len(found)})")
                out += [finding_text(f, self.engine.state_of(f), now, self.labels) for f in found]
        return "\n".join(out)
