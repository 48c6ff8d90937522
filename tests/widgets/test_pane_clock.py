"""The panes' shared clock (widgets/visibility.every): shown panes tick, hidden and removed ones do not."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from widgets.visibility import every


class Counting(Static):
    def __init__(self, interval: float, hidden_too: bool = False) -> None:
        super().__init__("")
        self.interval = interval
        self.hidden_too = hidden_too
        self.ticks = 0

    def on_mount(self) -> None:
        every(self, self.interval, self.tick, hidden_too=self.hidden_too)

    def tick(self) -> None:
        self.ticks += 1


class ClockApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Counting(0.5, hidden_too=False)
        yield Counting(1.0)
        with Vertical(id="hidden-tab"):
            yield Counting(0.5)
            yield Counting(0.5, hidden_too=True)

    def on_mount(self) -> None:
        self.query_one("#hidden-tab").display = False


async def test_shown_panes_tick_at_their_rate_hidden_and_removed_ones_do_not() -> None:
    app = ClockApp()
    async with app.run_test(size=(80, 24)) as pilot:
        fast, slow, hidden, always = app.query(Counting).results()
        await pilot.pause(2.6)
        assert fast.ticks >= 4  # every 0.5 s
        assert 2 <= slow.ticks <= fast.ticks // 2 + 1  # every 1 s, on the same beats
        assert hidden.ticks == 0  # in a tab that is not shown
        assert always.ticks >= 4  # asked to tick hidden too (the header's clock)
        await fast.remove()
        before = fast.ticks
        await pilot.pause(1.2)
        assert fast.ticks == before  # unmounted: dropped from the clock
        assert slow.ticks >= 3  # the others keep ticking
