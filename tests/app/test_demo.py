"""`warroom demo`'s servers misbehave as advertised, and the live console shows it."""

from __future__ import annotations

import asyncio
import statistics
import time

from textual.widgets import Static

from console.engine.demo_lab import DemoLab
from console.ui.app import AppConfig, create_app
from probes import tcp
from probes.targets import parse_target
from widgets.findings_pane import FindingsPane
from widgets.target_row import TargetRow


async def _http_get(target: str, timeout: float) -> tuple[float, bytes]:
    parsed = parse_target(target)
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(parsed.host, parsed.tcp_port)
    try:
        writer.write(f"GET {parsed.path} HTTP/1.1\r\nHost: demo\r\n\r\n".encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.read(1), timeout)
        return time.perf_counter() - start, first
    finally:
        writer.close()


async def test_demo_servers_behave_like_their_stories() -> None:
    lab = await DemoLab.start()
    try:
        targets = {t.name: t.target for t in lab.targets}
        assert all(parse_target(t).host == "127.0.0.1" for t in targets.values())  # loopback only
        assert (await tcp.measure(targets["api"], 1)).ok
        assert (await tcp.measure(targets["refused"], 1)).error == "refused"
        outcomes = [(await tcp.measure(targets["backlog"], 0.3)).error for _ in range(4)]
        assert outcomes[-1] == "timeout"
        try:
            await _http_get(targets["stall"], timeout=0.5)
            raise AssertionError("the stall server answered")
        except asyncio.TimeoutError:
            pass
        slow = [(await _http_get(targets["slow"], timeout=2))[0] * 1000 for _ in range(12)]
        fast = [(await _http_get(targets["api"], timeout=2))[0] * 1000 for _ in range(5)]
        assert statistics.mean(slow) > 60 and statistics.pstdev(slow) > 5
        assert statistics.mean(fast) < 50
    finally:
        await lab.stop()


async def test_live_demo_shows_failures_within_seconds() -> None:
    app = create_app(AppConfig(demo=True, hostname="h"))
    async with app.run_test(size=(80, 24)) as pilot:
        rows: dict[str, str] = {}
        for _ in range(20):
            await pilot.pause(0.25)
            rows = {row.label.split(":")[0]: row.text for row in app.query(TargetRow)}
            if "REFUSED" in rows.get("refused", "") and "TIMEOUT" in rows.get("backlog", ""):
                break
        assert set(rows) == {"api", "slow", "refused", "stall", "backlog"}
        assert "REFUSED" in rows["refused"]
        assert "TIMEOUT" in rows["backlog"]
        assert "OK" in rows["api"]
        # The Findings tab names the demo's targets as the Overview does, beside their addresses.
        await pilot.press("3")
        pane = app.query_one(FindingsPane)
        refused = next(t for t in app.config.labels if app.config.labels[t].startswith("refused:"))
        for _ in range(40):
            await pilot.pause(0.25)
            if any(f.target == refused for f in pane.findings):
                break
        assert f"{app.config.labels[refused]} · {refused} from local" in pane.text()
        shown = " ".join(str(w.render()) for w in pane.query(Static))  # what the pane draws, not only its text()
        assert f"{app.config.labels[refused]} · {refused} from local" in shown


async def test_every_tab_key_shows_its_tab_from_every_side_and_focuses_inside_it() -> None:
    """1..8 then 8..1 on the live demo at 80x24. The Checklist's timeline takes the focus once it has
    events enough to scroll: Textual handed it the focus of the pane being hidden, and TabbedContent,
    which follows the focus, went straight back to the Checklist (8 then 7 stayed on 8)."""
    from textual.widgets import Tab, TabbedContent

    app = create_app(AppConfig(demo=True, hostname="h"))
    order = ["overview", "layers", "findings", "conns", "pools", "capture", "hosts", "checklist"]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(3.0)  # findings and timeline events come in: the timeline can scroll
        tabs = app.query_one(TabbedContent)
        for number in [*range(1, 9), *range(8, 0, -1)]:
            # Every tab's title in view at 80 columns, whichever tab is shown (the strip scrolled, and
            # cut the Overview's or the Checklist's title off).
            titles = [tab.region for tab in app.query(Tab)]
            assert len(titles) == 8 and all(r.width and r.x >= 0 and r.right <= 80 for r in titles), titles
            await pilot.press(str(number))
            expected = order[number - 1]
            for _ in range(40):
                await pilot.pause(0.05)
                focused = app.focused
                if tabs.active == expected and focused is not None and tabs.get_pane(expected) in focused.ancestors:
                    break
            assert tabs.active == expected, (number, tabs.active)
            await pilot.pause(0.3)  # a bounce back would come by now
            assert tabs.active == expected, (number, tabs.active)
            focused = app.focused
            assert focused is not None and tabs.get_pane(expected) in focused.ancestors, (number, focused)
