"""Findings: what the findings engine concluded, with the evidence. The pane runs no rule itself."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from console.diagnosis.engine import FindingsEngine
from console.diagnosis.finding import Finding
from widgets.visibility import when_shown

SEVERITY_MARK = {"critical": "[b $error]✖ CRITICAL[/]", "warning": "[b $warning]▲ WARNING[/]",
                 "info": "[b $primary]● INFO[/]"}
EMPTY_TEXT = ("no findings yet: rules look at what the probes gathered (targets, connections, pools, "
              "capture) every second; add targets with a or start warroom with HOST:PORT")


def finding_markup(finding: Finding) -> str:
    """A finding as a responder reads it: severity, layer, title, evidence, what next."""
    lines = [f"{SEVERITY_MARK.get(finding.severity, finding.severity)} [b]{escape(finding.layer)}[/] "
             f"{escape(finding.title)}  [dim]confidence {finding.confidence:.0%}[/]"]
    lines += [f"    [dim]evidence:[/] {escape(line)}" for line in finding.evidence]
    if finding.next_step:
        lines.append(f"    [b]next:[/] {escape(finding.next_step)}")
    return "\n".join(lines)


class FindingsPane(VerticalScroll):
    """Shows the findings engine's current result; redraws only when it changed."""

    DEFAULT_CSS = """
    FindingsPane {
        border: round $accent;
        border-title-color: $accent;
        padding: 0 1;
    }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, engine: FindingsEngine, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.findings: list[Finding] = []
        self._seen_version = -1
        self._body = Static(EMPTY_TEXT)
        self.border_title = "Findings"

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def on_mount(self) -> None:
        self.set_interval(1.0, when_shown(self, self.refresh_findings))
        self.call_after_refresh(self.refresh_findings)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_findings()

    def refresh_findings(self) -> None:
        if self.paused or self.engine.version == self._seen_version:
            return
        self._seen_version = self.engine.version
        self.findings = list(self.engine.current)
        self.border_title = f"Findings ({len(self.findings)})"
        self._body.update("\n".join(finding_markup(f) for f in self.findings) if self.findings else EMPTY_TEXT)
