"""TooSmall: says the window is too small for the panes, instead of letting them shrink to nothing.

At 40x12 the targets pane got zero lines and the screen showed two empty
borders. Below MIN_WIDTH x MIN_HEIGHT the app hides its tabs and shows this
line instead (probes and recording go on); it goes away as soon as the
window is large enough again.
"""

from __future__ import annotations

from textual.widgets import Static

#: The smallest window in which the Overview shows at least two target rows beside the system pane.
MIN_WIDTH = 60
MIN_HEIGHT = 16


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


def message(width: int, height: int) -> str:
    return (f"Window too small: {width}x{height}. warroom needs at least {MIN_WIDTH}x{MIN_HEIGHT} to show "
            "its panes; enlarge the terminal or zoom out. Probes keep running; q quits.")


class TooSmall(Static):
    """The "window too small" notice; the app shows it in place of the tabs (see ``fit``)."""

    DEFAULT_CSS = """
    TooSmall {
        height: 1fr;
        width: 1fr;
        padding: 1 1;
        color: $warning;
        text-style: bold;
        display: none;
    }
    """

    def fit(self, width: int, height: int) -> bool:
        """Show the notice when the window is too small; True when it is shown."""
        small = too_small(width, height)
        if small:
            self.update(message(width, height))
        self.display = small
        return small
