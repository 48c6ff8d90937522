"""The timeline pane: every timestamped thing of the incident, newest at the bottom."""

from __future__ import annotations

from collections.abc import Callable

from textual.containers import VerticalScroll
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from widgets.visibility import every

#: () -> (version, [(utc time, kind, text)]).
EventSource = Callable[[], tuple[int, list[tuple[str, str, str]]]]
KIND_STYLE = {"finding": "$warning", "fix": "$success", "host": "$accent", "note": "$primary", "error": "$error"}
#: Entries drawn at most (the newest); the report has them all.
SHOWN = 200


class TimelinePane(VerticalScroll):
    """Draws the incident's timeline; follows the newest entry."""

    DEFAULT_CSS = """
    TimelinePane {
        border: round $accent;
        border-title-color: $accent;
        padding: 0 1;
        height: 9;
    }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, source: EventSource, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.lines: list[str] = []
        self._seen_version = -1
        self._body = Static("")
        self.border_title = "Timeline (UTC)"

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def on_mount(self) -> None:
        every(self, 1.0, self.refresh_events)
        self.call_after_refresh(self.refresh_events)

    def refresh_now(self) -> None:
        self.refresh_events()

    def refresh_events(self) -> None:
        if self.paused:
            return
        version, events = self.source()
        if version == self._seen_version:
            return
        self._seen_version = version
        self.lines = [f"{when[11:]} {kind:<8} {text}" for when, kind, text in events[-SHOWN:]]
        marked = [f"[dim]{escape(when[11:])}[/] [b {KIND_STYLE.get(kind, '$foreground')}]{escape(kind):<8}[/] "
                  f"{escape(text)}" for when, kind, text in events[-SHOWN:]]
        self._body.update("\n".join(marked) or "[dim]nothing yet: ticks, runs, findings, host changes and notes "
                                                "land here[/]")
        self.border_title = f"Timeline (UTC, {len(events)})"
        self.call_after_refresh(self.scroll_end, animate=False)
