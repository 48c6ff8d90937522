"""The panes at 80x24 and 120x40 with Pilot: charts that use the room, one state per target in every pane,
cold starts out of the percentiles, the fd line, the Layers chart's room, and a window too small."""

from __future__ import annotations

import re
import time
from pathlib import Path

from textual.widgets import DataTable, Static, TabbedContent

from console.engine.target_state import FAIL, LOSS, OK
from console.remote.host import status_sample
from console.ui.app import AppConfig, WarroomApp, create_app
from probes.samples import Sample
from tests.conftest import DEMO_TARGETS, fixed_app
from tests.incident.scenario import wait_until
from tests.recording.user_env import UserEnv, automatic_recording
from tests.unit.test_cli import ROOT
from widgets.bars import LOSS_MARK
from widgets.layers_pane import LayersPane
from widgets.system_pane import SystemPane
from widgets.target_row import TargetRow
from widgets.targets_pane import TargetsPane
from widgets.vantage_table import VantageTable

API, SLOW, REFUSED, BACKLOG = list(DEMO_TARGETS)


def rows(app: WarroomApp) -> dict[str, TargetRow]:
    return {row.target: row for row in app.query(TargetRow)}


async def test_at_80x24_each_target_keeps_its_two_lines() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        shown = rows(app)
        assert {row.size.height for row in shown.values()} == {2}
        lines = shown[BACKLOG].text.splitlines()
        assert len(lines) == 2 and "p50" in lines[1] and "loss 67%" in lines[1]
        assert LOSS_MARK in lines[1]  # the failures are marked in the sparkline, not only counted


async def test_at_120x40_the_charts_grow_with_the_pane_with_an_ms_axis_and_loss_where_it_happened() -> None:
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.2)
        pane = app.query_one(TargetsPane)
        shown = rows(app)
        heights = [row.size.height for row in shown.values()]
        assert min(heights) >= 5, heights  # four targets share ~28 lines: a chart each, not two lines
        assert sum(heights) >= pane.content_size.height - 4  # the pane is used, not 70% empty
        slow = shown[SLOW].text.splitlines()
        assert re.match(r"\s*200┤", slow[1])  # 100-160 ms RTTs: a 200 ms top, labelled in ms
        assert slow[-1].strip().startswith("0└")  # the axis line, from 0
        assert "p95" in shown[SLOW].text and "last 110 ms" in shown[SLOW].text
        backlog = shown[BACKLOG].text.splitlines()
        axis = backlog[-1][backlog[-1].index("└") + 1:]
        marks = axis[:axis.index("  ")] if "  " in axis else axis
        # 30 probes, every one not at i % 3 == 0 failed: the marks sit exactly under those, newest at the right.
        newest = marks[-30:]
        assert [c == LOSS_MARK for c in newest] == [i % 3 != 0 for i in range(30)]
        assert "failed" in backlog[-1]
        # Growing the window grows the charts; shrinking it to 80x24 brings back two lines.
        await pilot.resize_terminal(120, 50)
        await pilot.pause(0.3)
        assert min(row.size.height for row in rows(app).values()) > min(heights)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert {row.size.height for row in rows(app).values()} == {2}


def vantage_words(app: WarroomApp) -> dict[tuple[str, str], str]:
    table = app.query_one(VantageTable).query_one(DataTable)
    hosts = [str(c.label) for c in table.columns.values()][1:]
    out = {}
    for key in table.rows:
        cells = table.get_row(key)
        for host, cell in zip(hosts, cells[1:], strict=True):
            match = re.search(r"(FAIL|LOSS|SLOW|OK|WAIT)", str(cell))
            if match:
                out[(host, str(key.value))] = match.group(1)
    return out


async def test_every_pane_shows_the_same_state_for_each_host_and_target() -> None:
    """The demo's stall target: TCP connects, HTTP times out. It used to read FAIL here and "✓ ok" there."""
    stall = "http://127.0.0.1:8004/report"
    targets = [API, stall, REFUSED]
    app = create_app(AppConfig(targets=targets, live=False, hostname="h"))
    now = time.time()
    app.hub.publish(status_sample("prod-2", "connected", "agent running", mode="agent"))
    for i in range(10):
        ts = now - 10 + i
        for host in ("local", "prod-2"):
            app.hub.publish(Sample("tcp", API, ts, {"rtt_ms": 0.2}, host=host))
            app.hub.publish(Sample("http", API, ts, {"status": 200, "total_ms": 4.0}, host=host))
            app.hub.publish(Sample("tcp", stall, ts, {"rtt_ms": 0.1}, host=host))
            app.hub.publish(Sample("http", stall, ts, {"phase": "ttfb"}, host=host, error="read-timeout",
                                   message="ReadTimeout"))
        app.hub.publish(Sample("tcp", REFUSED, ts, {}, error="refused", message="refused"))
        # prod-2 reaches it, but one attempt in ten failed: LOSS there, FAIL here.
        app.hub.publish(Sample("tcp", REFUSED, ts, {"rtt_ms": 30.0}, host="prod-2") if i != 4 else
                        Sample("tcp", REFUSED, ts, {}, host="prod-2", error="timeout", message="timeout"))
    expected = {("local", API): OK, ("local", stall): FAIL, ("local", REFUSED): FAIL,
                ("prod-2", API): OK, ("prod-2", stall): FAIL, ("prod-2", REFUSED): LOSS}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.2)
        overview = {("local", t): row.text.split()[1] for t, row in rows(app).items()}
        await pilot.press("2")
        await pilot.pause(1.2)
        layers = {}
        for target, name in app.query_one(LayersPane)._name_lines.items():
            layers[("local", target)] = str(name.render()).split()[1]
        await pilot.press("7")
        await pilot.pause(1.2)
        vantage = vantage_words(app)
        engine = {key: state.word for key, state in app.target_states.all().items()}
        stall_line = str(app.query_one(LayersPane)._name_lines[stall].render())
    assert {k: v for k, v in engine.items() if k in expected} == expected
    assert overview == {k: v for k, v in expected.items() if k[0] == "local"}
    assert layers == overview
    assert vantage == expected
    assert "HTTP read-timeout" in stall_line


async def test_the_first_measurement_stays_out_of_the_percentiles_on_screen() -> None:
    for size in ((80, 24), (120, 40)):
        app = create_app(AppConfig(targets=[API], live=False, hostname="h"))
        now = time.time()
        app.hub.publish(Sample("http", API, now - 20, {"status": 200, "total_ms": 192.0, "cold": True}))
        for i in range(1, 20):
            app.hub.publish(Sample("http", API, now - 20 + i, {"status": 200, "total_ms": 4.0 + (i % 4) * 0.5}))
        async with app.run_test(size=size) as pilot:
            await pilot.pause(1.2)
            numbers = rows(app)[API].text
            p95 = float(re.search(r"p95 ([\d.]+)", numbers).group(1))  # type: ignore[union-attr]
            p99 = float(re.search(r"p99 ([\d.]+)", numbers).group(1))  # type: ignore[union-attr]
            assert p95 <= 5.5 and p99 <= 5.5, numbers
            assert "1st 192 ms: not counted" in numbers  # one target: its row is tall at both sizes


async def test_a_target_whose_latest_probe_failed_shows_no_older_rtt_as_its_last() -> None:
    """The demo's backlog target: one early connect answered (0.005 ms), every one since timed out.
    "last 0.005 ms" beside "FAIL ... last: TIMEOUT" read as if it had just answered."""
    for size in ((80, 24), (120, 40)):
        app = create_app(AppConfig(targets=[REFUSED], live=False, hostname="h"))
        now = time.time()
        app.hub.publish(Sample("tcp", REFUSED, now - 12, {"rtt_ms": 0.005}))
        for i in range(1, 12):
            app.hub.publish(Sample("tcp", REFUSED, now - 12 + i, {}, error="timeout", message="timed out"))
        async with app.run_test(size=size) as pilot:
            await pilot.pause(1.2)
            text = rows(app)[REFUSED].text
        assert "FAIL" in text and "last ✖ failed" in text and "last 0.005" not in text, (size, text)


async def test_the_fd_line_leads_with_the_process_nearest_its_own_limit() -> None:
    app = fixed_app()
    app.hub.publish(Sample("conns", "", time.time(), {"fd_top": [
        {"pid": 4242, "name": "java", "fds": 900, "limit": 1024, "pct": 87.9},
        {"pid": 77, "name": "postgres", "fds": 120, "limit": 65536, "pct": 0.2}]}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        pane = app.query_one(SystemPane)
        fd_line = next(line for line in pane._shown.splitlines() if line.startswith("FDs"))
        assert "java(4242) 900/1024 (88%)" in fd_line and "nearest its limit" in fd_line
        assert "host 2048/65536" in fd_line
        assert all(len(re.sub(r"\[[^\]]*\]", "", line)) <= 76 for line in pane._shown.splitlines())  # fits 80


async def test_a_window_too_small_says_so_and_the_panes_come_back() -> None:
    app = fixed_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause(0.3)
        notice = app.query_one("#too-small", Static)
        assert notice.display and "too small: 40x12" in str(notice.render()) and "60x16" in str(notice.render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert not notice.display
        assert all(row.size.height == 2 for row in rows(app).values())


async def test_the_empty_layers_tab_says_how_to_get_data_not_how_the_code_works() -> None:
    app = create_app(AppConfig(live=False, hostname="h"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.5)
        text = " ".join(str(w.render()) for w in app.query_one(LayersPane).query(Static) if w.display)
        assert "ProbeSpec" not in text
        assert "press a" in text.lower() or "Press a" in text


async def test_the_layers_chart_is_hidden_at_80x24_with_a_way_to_see_it() -> None:
    from widgets.rtt_chart import RttChart

    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, "the Layers pane", lambda: bool(app.query(LayersPane)), timeout=10.0)
        pane = app.query_one(LayersPane)
        await wait_until(pilot, "the chart hint", lambda: bool(pane.query("#chart-hint"))
                           and pane.query_one("#chart-hint").display, timeout=10.0)
        hint = pane.query_one("#chart-hint", Static)
        assert "press v" in str(hint.render())
        assert not pane.query_one("#chart-slot").display
        await pilot.press("v")
        await wait_until(pilot, "the chart, shown by v", lambda: bool(pane.query(RttChart))
                         and pane.query_one("#chart-slot").display and pane.query_one(RttChart).size.height >= 15,
                         timeout=10.0)
        assert not pane.query_one("#layer-rows").display
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, "the Layers pane", lambda: bool(app.query(LayersPane)), timeout=10.0)
        pane = app.query_one(LayersPane)

        def chart_labels() -> list[float]:
            plots = pane.query("#rtt-combined")
            if not plots:
                return []
            return [float(m.group(1)) for line in plots.first().render().plain.splitlines()  # type: ignore[union-attr]
                    if (m := re.match(r"\s*([\d.]+)┤", line))]

        await wait_until(pilot, "the chart's y labels", lambda: len(chart_labels()) >= 3, timeout=10.0)
        assert not pane.query_one("#chart-hint", Static).display and pane.query_one("#layer-rows").display
        labels = chart_labels()
        assert labels == sorted(labels, reverse=True), labels  # largest at the top
        # The window shrinks with the chart focused: hiding it must not take the focus, and v, with it.
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, "the chart hidden at 80x24", lambda: pane.query_one("#layer-rows").display
                           and not pane.query_one("#chart-slot").display, timeout=10.0)
        for chart_shown in (True, False):
            await pilot.press("v")
            await wait_until(pilot, f"v to {'show' if chart_shown else 'hide'} the chart",
                               lambda shown=chart_shown: pane.query_one("#chart-slot").display is shown  # type: ignore[misc]
                               and pane.query_one("#layer-rows").display is not shown, timeout=10.0)
        assert app.query_one(TabbedContent).active == "layers"


async def test_kernel_rtts_of_microseconds_do_not_read_as_zero_in_the_layer_rows() -> None:
    app = create_app(AppConfig(targets=["127.0.0.1:5432"], live=False, hostname="h"))
    app.hub.publish(Sample("tcp", "127.0.0.1:5432", time.time(), {"rtt_ms": 0.004}))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.pause(1.0)
        cell = str(app.query_one("#layer-tcp", Static).render())
        assert "0.004 ms" in cell and "0.0 ms" not in cell


#: What the Overview's first frame does without: the incident (~50 ms of imports), the other tabs' widgets
#: (DataTable's among them), the replay's player and scrubber, the live feed, and retention, which runs
#: beside the screen (with hundreds of past runs to weigh, it held the first frame back by tens of ms).
NOT_BEFORE_THE_FIRST_FRAME = (
    "console.ui.incident_actions", "widgets.conn_table", "widgets.vantage_table", "widgets.capture_view",
    "widgets.checklist_pane", "widgets.findings_pane", "widgets.hosts_view", "widgets.pool_gauges",
    "textual.widgets._data_table", "console.engine.replay", "widgets.replay_scrubber", "console.engine.live_feed",
    "console.engine.retention")


def test_the_first_frame_does_not_wait_for_what_it_does_not_draw() -> None:
    """A fresh interpreter, as a start is, running the demo's own start (its settings, with retention):
    which of those modules were imported by the time the first frame's own callbacks run, and whether
    retention then runs all the same (it removes an old automatic recording of a user's own)."""
    import subprocess
    import sys
    import tempfile

    code = (
        "import asyncio, sys, os\n"
        "from console.settings.settings import RetentionSettings\n"
        "from console.ui.app import AppConfig, WarroomApp, create_app\n"
        "seen = []\n"
        "first = WarroomApp.after_first_frame\n"
        f"names = {NOT_BEFORE_THE_FIRST_FRAME!r}\n"
        "async def after_first_frame(self):\n"
        "    seen.extend(n for n in names if n in sys.modules)\n"
        "    await first(self)\n"
        "WarroomApp.after_first_frame = after_first_frame\n"
        "async def main():\n"
        "    app = create_app(AppConfig(live=False, retention=RetentionSettings(keep_days=30)))\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        for _ in range(50):\n"
        "            await pilot.pause(0.1)\n"
        "            if app.retention_lines:\n"
        "                break\n"
        "    print(app.retention_lines)\n"
        "asyncio.run(main())\n"
        "print(seen)\n"
    )
    with tempfile.TemporaryDirectory() as home:
        env = UserEnv(Path(home))
        old = automatic_recording(env, "2021-03-04_10-00-00", age_days=45)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env=env.env(), cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        removed, imported = out.stdout.strip().splitlines()[-2:]
        assert imported == "[]", imported
        assert "removed 1 automatic recording" in removed and not old.exists()
