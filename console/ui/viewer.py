"""A read-only viewer of the running console: what each browser of `warroom serve` gets.

It is the same App, over a store filled from the console's live feed
(console/engine/live_feed.py) instead of probes: it starts no probe and no
capture, and the keys that would (add or remove a target, the capture pane's
interface, filter and export) are not bound here, so nobody in a browser can
change what the responder runs. The targets follow the console's: one the
responder adds appears here within a second. Share mode is on unless the
responder served with --no-redact, and then the viewer cannot turn it off; the
aliases are the console's (the incident's alias file).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import work
from textual.binding import Binding

from console.diagnosis.engine import KIND_FINDING
from console.engine.live_feed import FeedError, FeedState, follow, running_feeds
from console.ui.app import AppConfig, WarroomApp
from console.ui.share import ShareMode
from widgets.hosts_view import HostsView
from widgets.system_pane import SystemPane
from widgets.targets_pane import TargetsPane

#: App actions a viewer may not run: they start or stop probes, or change share mode under a forced redaction.
VIEWER_REFUSED = frozenset({"add_target", "remove_target"})
#: The capture pane's actions that (re)start a capture or write a file on the console's host.
CAPTURE_REFUSED = frozenset({"edit_interface", "edit_filter", "export"})
RETRY_S = 1.0


class ViewerApp(WarroomApp):
    """The console's screens, fed by its live feed; read-only."""

    def __init__(self, config: AppConfig, *, feed: Path | None = None, redact: bool = True) -> None:
        config.live = False
        config.live_feed = False
        config.share = redact
        super().__init__(config)
        self.feed_path = feed
        """The console to follow; None: the newest running console (looked up again on each reconnect)."""
        self.redact = redact
        self.following: Path | None = None
        """The feed being followed now, or None while waiting for a console."""
        self.console_state: FeedState | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in VIEWER_REFUSED or (action == "toggle_share" and self.redact):
            return False  # unbound here: not run, not shown in the footer
        return super().check_action(action, parameters)

    def help_rows(self) -> list[tuple[str, str]]:
        refused = {b.key_display or b.key for b in self.BINDINGS
                   if isinstance(b, Binding) and (b.action in VIEWER_REFUSED or
                                                  (b.action == "toggle_share" and self.redact))}
        return [row for row in super().help_rows() if row[0] not in refused]

    def on_mount(self) -> None:
        # Textual calls every class's on_mount, this one first: WarroomApp.on_mount runs next by
        # itself (calling it here too ran it twice: two diagnosis timers, two alias followers).
        self.capture_refused_actions = CAPTURE_REFUSED  # before the Capture tab is mounted

    async def after_first_frame(self) -> None:
        await super().after_first_frame()
        self.follow_console()  # once every tab is mounted: the feed adds targets and hosts to them

    def _base_subtitle(self) -> str:
        state = self.console_state
        source = f"VIEWER of {state.hostname}" if state else "VIEWER: waiting for the console (start warroom)"
        return f"{source}, read-only" + ("  SHARE MODE (names hidden)" if self.share.on else "")

    @work(exclusive=True, group="feed", exit_on_error=False)
    async def follow_console(self) -> None:
        """Follow the console's feed for as long as the viewer runs; reconnect when it goes away."""
        while True:
            path = self.feed_path or next(iter(running_feeds()), None)
            if path is not None:
                try:
                    await self._follow(path)
                except FeedError as exc:
                    self.notify(str(exc), severity="warning", timeout=3)
                except (OSError, ValueError):
                    pass  # the console went away mid-line (or sent a line past the limit): reconnect
            self.following = None
            self.sub_title = self._base_subtitle()
            await asyncio.sleep(RETRY_S)

    async def _follow(self, path: Path) -> None:
        count = 0
        async for item in follow(path):
            if isinstance(item, FeedState):
                self._apply_state(item, path)
            elif item.kind != KIND_FINDING:  # this viewer's own engine finds them from the same evidence
                self.hub.publish(item)
            count += 1
            if count % 500 == 0:
                await asyncio.sleep(0)  # a long backlog must not freeze the screen

    def _apply_state(self, state: FeedState, path: Path) -> None:
        first = self.following != path
        self.following = path
        self.console_state = state
        if first and state.aliases and self.share.redactor.aliases.path != Path(state.aliases):
            # Share the console's aliases: the same host is the same alias on every screen of the incident.
            on = self.share.on
            self.share = ShareMode.at(Path(state.aliases), on=on)
            self._learn_config_names()
        self.config.hostname = state.hostname
        self.share.redactor.learn("host", [state.hostname, *state.remote_hosts])
        self.config.labels.update(state.labels)
        for target in state.targets:
            if target not in self.config.targets:
                self.add_target(target)
        for target in [t for t in self.config.targets if t not in state.targets]:
            self.config.targets.remove(target)
            self.query_one(TargetsPane).remove_target(target)
            self.layers_pane.remove_target(target)
        self._follow_hosts(state.remote_hosts)
        self.sub_title = self._base_subtitle()
        self._redraw_everything()

    def add_target(self, target: str) -> None:
        if target in self.config.targets:
            return
        self.config.targets.append(target)
        self.share.redactor.learn_target(target)
        self.query_one(TargetsPane).add_target(target, self.config.labels.get(target))
        self.layers_pane.add_target(target, self.config.labels.get(target))

    def _follow_hosts(self, hosts: list[str]) -> None:
        """The Hosts tab gets a status line and a system pane per SSH host of the console."""
        view = self.query_one(HostsView)
        new = [h for h in hosts if h not in view.hosts]
        if not new:
            return
        view.hosts.extend(new)
        pane = self.query_one("#hosts")
        for host in new:
            pane.mount(SystemPane(self.store, host=host))
        view.refresh_now()
