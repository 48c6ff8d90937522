"""RttChart in a tiny app at 80x24: empty state, combined chart, one chart per target, keys."""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.widgets import Static
from textual_plotext import PlotextPlot

from console.engine.store import Store
from probes.samples import Sample, error_sample
from widgets.rtt_chart import RttChart

TARGETS = ("10.254.0.2:8080", "db.internal:5432")


class ChartApp(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield RttChart(self.store, refresh_hz=2.0)


def fill(store: Store, now: float) -> None:
    for i in range(60):
        ts = now - 60 + i
        store.add(Sample(kind="tcp", target=TARGETS[0], ts=ts, fields={"rtt_ms": 40.0 + (i % 5)}))
        if i % 10 == 9:
            store.add(error_sample("tcp", TARGETS[1], "timeout", "no answer"))
        else:
            store.add(Sample(kind="tcp", target=TARGETS[1], ts=ts, fields={"rtt_ms": 2.0}))


def rendered(plot: PlotextPlot) -> str:
    return plot.render().plain  # type: ignore[union-attr]


async def test_empty_chart_says_how_to_get_data() -> None:
    app = ChartApp(Store())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        empty = app.query_one("#rtt-empty", Static)
        assert empty.display
        assert "No tcp RTT samples yet" in str(empty.render())
        assert not app.query_one("#rtt-combined").display


async def test_combined_chart_shows_every_target_and_summaries() -> None:
    store = Store()
    fill(store, time.time())
    app = ChartApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        chart = app.query_one(RttChart)
        assert not app.query_one("#rtt-empty").display
        plot = app.query_one("#rtt-combined", PlotextPlot)
        assert plot.display and plot.size.height >= 5
        text = rendered(plot)
        assert TARGETS[0] in text and TARGETS[1] in text  # the legend names both
        summary = str(app.query_one("#rtt-summary", Static).render())
        assert "loss 10%" in summary and "✗timeout" in summary and "p95" in summary
        # Redraws follow the store, not the timer: nothing new, no redraw.
        before = chart.redraws
        await pilot.pause(1.2)
        assert chart.redraws == before
        store.add(Sample(kind="tcp", target=TARGETS[0], ts=time.time(), fields={"rtt_ms": 41.0}))
        await pilot.pause(0.8)
        assert chart.redraws == before + 1


async def test_keys_switch_to_one_chart_per_target_and_change_window() -> None:
    store = Store()
    fill(store, time.time())
    app = ChartApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(RttChart)
        chart.focus()
        await pilot.press("m")
        await pilot.pause(0.2)
        assert chart.mode == "per-target"
        small = list(app.query(".rtt-small").results(PlotextPlot))
        assert len(small) == 2 and all(plot.size.height >= 4 for plot in small)
        titles = [str(title.render()) for title in app.query(".rtt-title").results(Static)]
        assert TARGETS[1] in titles[1] and "loss 10%" in titles[1] and "timeout" in titles[1]
        assert not app.query_one("#rtt-combined").display
        await pilot.press("left_square_bracket")
        assert chart.minutes == 2.0
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert chart.minutes == 10.0
        await pilot.press("m")
        assert chart.mode == "combined"


class LabelledChartApp(App[None]):
    def __init__(self, store: Store, labels: dict[str, str]) -> None:
        super().__init__()
        self.store = store
        self.labels = labels

    def compose(self) -> ComposeResult:
        yield RttChart(self.store, refresh_hz=2.0, labels=self.labels)


async def test_targets_go_by_the_names_the_other_panes_give_them_with_room_to_read_them() -> None:
    store = Store()
    fill(store, time.time())
    labels = {TARGETS[1]: "orders-db: primary behind pgbouncer"}
    app = LabelledChartApp(store, labels)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        summary = str(app.query_one("#rtt-summary", Static).render())
        assert "orders-db: primary behind pgbouncer" in summary  # whole: the pane has the room
        assert TARGETS[0] in summary  # a target without a name keeps its address
        assert "orders-db: primary" in rendered(app.query_one("#rtt-combined", PlotextPlot))  # the legend
        labels["10.254.0.2:8080"] = "edge"  # named later (a target added with a name): the next redraw says so
        store.add(Sample(kind="tcp", target=TARGETS[0], ts=time.time(), fields={"rtt_ms": 41.0}))
        await pilot.pause(0.8)
        assert "edge " in str(app.query_one("#rtt-summary", Static).render())
    async with LabelledChartApp(store, dict(labels)).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = str(pilot.app.query_one("#rtt-summary", Static).render()).splitlines()
        assert all(len(line) <= 78 for line in lines), lines  # 80 columns: names are cut, figures stay
        assert any("orders-db: primary be…" in line for line in lines)
