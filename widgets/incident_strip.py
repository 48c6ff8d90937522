"""The Overview's one-line incident strip: which incident, the current step and its progress."""

from __future__ import annotations

from collections.abc import Callable

from textual.reactive import reactive
from textual.widgets import Static

from widgets.visibility import every

#: () -> (version, markup of the line).
StripSource = Callable[[], tuple[int, str]]


class IncidentStrip(Static):
    """One line: incident name, step N/5 and its title, items done, the fix being validated."""

    DEFAULT_CSS = """
    IncidentStrip {
        height: 1;
        background: $boost;
        padding: 0 1;
    }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, source: StripSource, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.source = source
        self.text = ""
        self._seen_version = -1

    def on_mount(self) -> None:
        every(self, 1.0, self.refresh_strip)
        self.call_after_refresh(self.refresh_strip)

    def refresh_now(self) -> None:
        self.refresh_strip()

    def refresh_strip(self) -> None:
        if self.paused:
            return
        version, markup = self.source()
        if version == self._seen_version:
            return
        self._seen_version = version
        self.text = markup
        self.update(markup)
