"""GridHeader: Textual's Header whose clock ticks on the whole second, with the panes.

Textual's HeaderClock redraws once a second from the moment it mounted, the
panes on the wall clock's whole seconds (widgets/visibility.every):
two frames a second where one does, and the compositor's fixed cost of a
frame paid twice. This clock ticks on the same grid, so its second changes in
the panes' frame.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Mount
from textual.widgets import Header
from textual.widgets._header import HeaderClock, HeaderClockSpace, HeaderIcon, HeaderTitle

from widgets.visibility import every


class GridClock(HeaderClock):
    def _on_mount(self, event: Mount) -> None:
        event.prevent_default()  # Textual calls every class's handler: this stops HeaderClock's own timer
        every(self, 1.0, self.refresh, hidden_too=True)


class GridHeader(Header):
    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield HeaderTitle()
        yield GridClock().data_bind(Header.time_format) if self._show_clock else HeaderClockSpace()
