"""A viewer follows the console's live feed read-only: the console's targets, no probes, no keys that start any."""

from __future__ import annotations

import time
from pathlib import Path

from console.engine.live_feed import LiveFeed, feed_path, running_feeds
from console.engine.store import Store
from console.ui.app import AppConfig
from console.ui.screens import AddTargetScreen, HelpScreen
from console.ui.viewer import ViewerApp
from probes.samples import Sample
from tests.incident.scenario import wait_until
from widgets.capture_view import CaptureView
from widgets.target_row import TargetRow


class FakeConsoleState:
    """The console side of a feed without a screen: a store, its targets, a LiveFeed on this loop."""

    def __init__(self, aliases: Path) -> None:
        self.store = Store()
        self.targets = ["127.0.0.1:7001"]
        self.aliases = aliases
        self.feed = LiveFeed(self.store, self.state, path=feed_path())

    def state(self) -> dict[str, object]:
        return {"targets": list(self.targets), "labels": {}, "hostname": "responder-host-zeta", "remote_hosts": [],
                "aliases": str(self.aliases)}

    def publish(self, sample: Sample) -> None:
        self.store.add(sample)
        self.feed(sample)


def rows(app: ViewerApp) -> list[str]:
    return [row.target for row in app.query(TargetRow)]


async def test_viewer_mirrors_the_console_and_binds_no_probe_key(tmp_path: Path) -> None:
    console = FakeConsoleState(tmp_path / "aliases.json")
    await console.feed.start()
    try:
        now = time.time()
        for i in range(5):
            console.publish(Sample("tcp", "127.0.0.1:7001", now - 5 + i, {"rtt_ms": 1.5}))
        assert running_feeds() == [console.feed.path]
        app = ViewerApp(AppConfig(hostname=""), redact=True)  # finds the newest running console itself
        async with app.run_test(size=(120, 40)) as pilot:
            # Bounded waits, not fixed pauses: the viewer polls the feed, and a loaded machine (the
            # whole suite at once) took longer than 1.5 s for the first rows once.
            await wait_until(pilot, "the console's target and its backlog", lambda: rows(app) == ["127.0.0.1:7001"]
                             and len(app.store.series(("local", "tcp", "127.0.0.1:7001"))) == 5, 10.0)
            assert "VIEWER of responder-host-zeta" in app.sub_title and app.share.on
            assert len(app.store.series(("local", "tcp", "127.0.0.1:7001"))) == 5  # the backlog came first

            # The responder adds a target after the viewer connected: it appears here, with its samples.
            console.targets.append("127.0.0.1:7002")
            console.feed.announce()
            console.publish(Sample("tcp", "127.0.0.1:7002", time.time(), {"rtt_ms": 2.5}))
            await wait_until(pilot, "the added target", lambda: rows(app) == ["127.0.0.1:7001", "127.0.0.1:7002"]
                             and app.store.last(("local", "tcp", "127.0.0.1:7002")) is not None, 10.0)

            # Keys that start or stop probes do nothing here, and share mode cannot be turned off.
            await pilot.press("a")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, AddTargetScreen)
            await pilot.press("x", "S")
            await pilot.pause(0.2)
            assert rows(app) == ["127.0.0.1:7001", "127.0.0.1:7002"] and app.share.on
            assert console.targets == ["127.0.0.1:7001", "127.0.0.1:7002"]
            footer_keys = {b.binding.key for b in app.screen.active_bindings.values() if b.enabled}
            assert "q" in footer_keys and not footer_keys & {"a", "x", "S"}
            await pilot.press("6")
            await pilot.pause(0.2)
            capture = app.query_one(CaptureView)
            assert capture.check_action("edit_interface", ()) is False
            assert capture.check_action("export", ()) is False
            assert capture.check_action("cycle_window", ()) is not False  # reading is fine
            await pilot.press("i")
            await pilot.pause(0.2)
            assert app.focused is None or app.focused.id != "capture-iface"
            assert not app.hub.streams, "a viewer started a probe"
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            assert isinstance(app.screen, HelpScreen)
            assert ("a", "add target") not in app.help_rows()

            # The responder stops probing one: it goes here too.
            console.targets.remove("127.0.0.1:7001")
            console.feed.announce()
            await pilot.pause(0.5)
            assert rows(app) == ["127.0.0.1:7002"]
    finally:
        await console.feed.stop()
    assert not console.feed.path.exists()


async def test_viewer_waits_for_a_console_and_then_follows_it(tmp_path: Path) -> None:
    app = ViewerApp(AppConfig(hostname=""), redact=False)
    console = FakeConsoleState(tmp_path / "aliases.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert "waiting for the console" in app.sub_title and not app.share.on
        await console.feed.start()
        try:
            console.publish(Sample("tcp", "127.0.0.1:7001", time.time(), {"rtt_ms": 1.0}))
            await pilot.pause(2.0)
            assert rows(app) == ["127.0.0.1:7001"] and "VIEWER of responder-host-zeta" in app.sub_title
        finally:
            await console.feed.stop()
