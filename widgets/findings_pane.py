"""Findings: what the diagnosis rules conclude from the store, with their evidence."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from console.diagnosis import Finding, diagnose
from console.store import Store
from widgets.visibility import when_shown

SEVERITY_MARK = {"critical": "[b $error]✖ CRITICAL[/]", "warning": "[b $warning]▲ WARNING[/]",
                 "info": "[b $primary]● INFO[/]"}
EMPTY_TEXT = ("no findings yet: rules look at what the probes gathered (targets, connections, pools, "
              "capture) every 2 s; add targets with a or start warroom with HOST:PORT")


def finding_markup(finding: Finding) -> str:
    """A finding as a responder reads it: severity, layer, title, evidence, what next."""
    lines = [f"{SEVERITY_MARK.get(finding.severity, finding.severity)} [b]{escape(finding.layer)}[/] "
             f"{escape(finding.title)}  [dim]confidence {finding.confidence:.0%}[/]"]
    lines += [f"    [dim]evidence:[/] {escape(line)}" for line in finding.evidence]
    if finding.next_step:
        lines.append(f"    [b]next:[/] {escape(finding.next_step)}")
    return "\n".join(lines)


class FindingsPane(VerticalScroll):
    """Runs the diagnosis rules over the store every 2 s (rules are cheap and do no I/O)."""

    DEFAULT_CSS = """
    FindingsPane {
        border: round $accent;
        border-title-color: $accent;
        padding: 0 1;
    }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, store: Store, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.findings: list[Finding] = []
        self._seen_version = -1
        self._body = Static(EMPTY_TEXT)
        self.border_title = "Findings"

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def on_mount(self) -> None:
        self.set_interval(2.0, when_shown(self, self.refresh_findings))
        self.call_after_refresh(self.refresh_findings)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_findings()

    def refresh_findings(self) -> None:
        if self.paused or self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        self.findings = diagnose(self.store)
        self.border_title = f"Findings ({len(self.findings)})"
        self._body.update("\n".join(finding_markup(f) for f in self.findings) if self.findings else EMPTY_TEXT)
