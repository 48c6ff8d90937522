"""The warroom App: panes over the store, fed by the hub. Built by `create_app` only."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.driver import Driver
from textual.filter import LineFilter
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Footer, TabbedContent, TabPane

if TYPE_CHECKING:
    from console.engine.live_feed import LiveFeed
    from console.engine.replay import Recording
    from console.incident.folder import IncidentFolder
    from console.incident.session import IncidentSession
    from console.remote.host import RemoteHost
    from widgets.capture_view import CaptureView
    from widgets.checklist_pane import ChecklistPane, ChecklistRow

import themes
from console.diagnosis.engine import FindingsEngine
from console.engine.aliases import aliases_path
from console.engine.hub import Hub, ProbeLoop
from console.engine.probe_plan import host_specs, remote_specs, specs_for_target
from console.engine.recorder import Recorder, console_state
from console.engine.store import Store
from console.engine.target_state import TargetStates
from console.settings.errors import UsageError
from console.settings.hosts import HostConfig, SSHSettings
from console.settings.pools import PoolsConfig
from console.settings.settings import RetentionSettings, Settings
from console.ui.recording_controls import REPLAY_BINDINGS, ReplayControls
from console.ui.share import ShareMode
from probes.redact import redact_url as shown
from probes.runtime import ProbeSpec
from probes.samples import Sample
from themes import DEFAULT_THEME, THEME_NAMES, THEMES
from widgets.grid_header import GridHeader
from widgets.incident_strip import IncidentStrip
from widgets.layers_pane import LayersPane
from widgets.system_pane import SystemPane
from widgets.targets_pane import TargetsPane
from widgets.too_small import TooSmall
from widgets.visibility import every, focus_first_shown, refresh_shown

THEMES_DIR = Path(themes.__file__).resolve().parent
OVERVIEW_TITLE = "1 Overview"
#: Every tab but the Overview, in order: (id, title).
OTHER_TABS = (("layers", "2 Layers"), ("findings", "3 Findings"), ("conns", "4 Conns"), ("pools", "5 Pools"),
              ("capture", "6 Capture"), ("hosts", "7 Hosts"), ("checklist", "8 Checklist"))
#: Columns the tab strip takes with Textual's padding of one cell each side of a title (85): at 80x24 the
#: strip scrolled, and the Overview's or the Checklist's title was cut off. Narrower, the App takes the
#: -narrow class and a tab keeps only its left cell (77 columns): every tab in view.
TAB_STRIP_WIDTH = sum(len(title) + 2 for title in (OVERVIEW_TITLE, *(title for _, title in OTHER_TABS)))


@dataclass
class AppConfig:
    """Everything the app needs to start; the CLI and the tests both build one."""

    targets: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    """Friendly names for targets (the demo's "slow", "refused" ...)."""
    interval: float = 1.0
    demo: bool = False
    live: bool = True
    """False: start no probes and no clock (tests and snapshots fill the store themselves)."""
    theme: str = DEFAULT_THEME
    record: Recorder | None = None
    hostname: str = field(default_factory=socket.gethostname)
    remote_hosts: list[HostConfig] = field(default_factory=list)
    """SSH hosts whose agents run the same probes (the Hosts tab compares them)."""
    ssh_settings: SSHSettings | None = None
    pools: PoolsConfig = field(default_factory=PoolsConfig)
    """Declared pools, server views and thresholds for the Conns and Pools tabs."""
    capture: ProbeSpec | None = None
    """The packet capture to start, when asked for (it needs root or CAP_NET_RAW)."""
    replay_end: float | None = None
    """Replaying a recording: the panes' "now" is its last timestamp."""
    incident: IncidentFolder | None = None
    """`--incident NAME`: the folder its checklist, timeline, recording and report live in."""
    secrets: list[str] = field(default_factory=list)
    """What the config marks secret: masked in everything the incident writes."""
    reproduce_interval: float = 0.5
    """Seconds between the rounds of the reproduce step (and the layered check item)."""
    reproduce_timeout: float = 2.0
    replay: Recording | None = None
    """Replaying a recording with position, speed and seek (`warroom replay`): the panes' "now" is the position."""
    replay_at: float | None = None
    """Where the replay starts (None: the recording's start)."""
    replay_speed: float = 1.0
    replay_follow: bool = False
    """Keep reading the recording while its recorder writes it."""
    share: bool = False
    """Start in share mode (--share): bigger key figures, addresses and names replaced by aliases."""
    aliases: Path | None = None
    """Share mode's alias file (in the incident's folder); None: the default under the data directory."""
    live_feed: bool = False
    """Serve the Sample stream to `warroom serve`'s viewers (console/engine/live_feed.py)."""
    record_incident: bool = True
    """--incident NAME records its Samples in its folder; False with --no-record (the checklist and timeline
    are kept all the same)."""
    retention: RetentionSettings | None = None
    """Prune the automatic recordings with this policy once the first frame is up (None: not at all)."""


#: Seconds Textual gets to end the process after a stop signal, once our own work has stopped.
EXIT_GRACE_S = 5.0


def _exit_later(status: int) -> None:
    time.sleep(EXIT_GRACE_S)
    os._exit(status)  # Textual's shutdown is stuck writing to a terminal that is gone; ours is done


class WarroomApp(ReplayControls, App[int]):
    """The console. Probes feed the hub, the hub the store, the panes read the store."""

    TITLE = "warroom"
    #: Start focused on a target row, never on a widget in another tab: TabbedContent
    #: follows focus, so auto-focusing the first focusable widget opened the Conns tab.
    AUTO_FOCUS = "TargetRow"
    CSS_PATH = str(THEMES_DIR / "warroom.tcss")
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("a", "add_target", "add target"),
        Binding("x", "remove_target", "remove target"),
        Binding("p", "toggle_pause", "pause"),
        Binding("t", "cycle_theme", "theme"),
        Binding("S", "toggle_share", "share mode"),
        Binding("1", "show_tab('overview')", "overview tab", show=False),
        Binding("2", "show_tab('layers')", "layers tab: RTT chart, DNS/TCP/TLS/HTTP per target", show=False),
        Binding("3", "show_tab('findings')", "findings tab", show=False),
        Binding("4", "show_tab('conns')", "connections tab: sockets by process and state", show=False),
        Binding("5", "show_tab('pools')", "pools tab: utilization per client pool", show=False),
        Binding("6", "show_tab('capture')", "capture tab: handshakes, resets, DNS, TLS from packets", show=False),
        Binding("7", "show_tab('hosts')", "hosts tab: SSH hosts and vantage points", show=False),
        Binding("8,c", "show_tab('checklist')", "checklist tab: the five steps and the timeline", show=False,
                key_display="8 / c"),
        Binding("n", "note", "note"),
        Binding("F", "fix_applied", "fix applied", key_display="F"),
        Binding("e", "write_report", "report"),
        *REPLAY_BINDINGS,
    ]
    #: Shown in the help screen beside the bindings above (they belong to Textual itself).
    EXTRA_HELP = [("ctrl+p", "command palette (search every command)"),
                  ("tab / shift+tab", "move focus between panes"),
                  ("up / down", "move between target rows")]

    paused: reactive[bool] = reactive(False)
    """Freezes what the panes show (to read or screenshot); probes keep recording."""

    def get_driver_class(self) -> type[Driver]:
        """Textual's choice, except its Linux terminal driver: ours sleeps between keys (input_driver)."""
        chosen = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        if chosen is LinuxDriver:
            from console.ui.input_driver import QuietLinuxDriver

            return QuietLinuxDriver
        return chosen

    def __init__(self, config: AppConfig) -> None:
        super().__init__()
        self.config = config
        self.store = Store() if config.replay_end is None else Store(clock=lambda: config.replay_end or 0.0)
        # Live probes time connects on a loop of their own, never waiting behind a frame.
        self.probe_loop = ProbeLoop() if config.live else None
        self.hub = Hub(self.store, probe_loop=self.probe_loop)
        if config.replay is not None:
            from console.engine.replay import ReplayPlayer

            self.replay = ReplayPlayer(config.replay, self.store, self.hub.publish, speed=config.replay_speed,
                                       follow=config.replay_follow)
            self.store.clock = self.replay.clock
        replaying = config.replay is not None or config.replay_end is not None
        # A replay carries the recorded finding Samples already: the engine must not add its own.
        self.findings = FindingsEngine(self.store, publish=None if replaying else self.hub.publish)
        """The one diagnosis result every pane reads (run at 1 Hz from mount)."""
        self.target_states = TargetStates(self.store)
        """The one state per (host, target) the Overview, Layers and Hosts tabs all show."""
        self.layers_pane = LayersPane(self.store, [shown(t) for t in config.targets],
                                      {shown(t): label for t, label in config.labels.items()},
                                      states=self.target_states, id="layers-pane")
        """The Layers tab's pane: targets can be added to it before its tab is mounted."""
        self.capture_refused_actions: frozenset[str] = frozenset()
        """Capture pane keys this app does not offer (a viewer refuses those that act on this host)."""
        self.other_tabs_mounted = False
        self._tab_asked: str | None = None
        self.demo_lab: object | None = None
        self._signals: list[int] = []
        self._stop_task: asyncio.Future[None] | None = None
        self._work_stopped = False
        self.remote: dict[str, RemoteHost] = {}
        """Running SSH hosts by name (their streams run in the hub)."""
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = config.theme
        # The aliases belong to the incident: its folder keeps them across restarts.
        self.share = ShareMode.at(config.aliases or (aliases_path(config.incident.path) if config.incident else None),
                                  on=config.share)
        """Share mode: its redactor learns names from the config now and from every Sample (a hub listener)."""
        self._learn_config_names()
        self.hub.listeners.append(self._learn_sample)
        self.feed: LiveFeed | None = None
        """The live feed viewers follow (started on mount when config.live_feed)."""
        if config.record is not None:
            self.hub.listeners.append(config.record)
            self.recorder = config.record
        self._incident: IncidentSession | None = None
        self._incident_attached = False
        self._prune_task: asyncio.Task[None] | None = None
        self.retention_lines: list[str] = []
        """What start-up's retention removed (one line, or none), for the command to print at the end."""

    @property
    def incident(self) -> IncidentSession:
        """The five-step checklist, timeline, fix validation and report of this console's incident.

        Built on first use: its modules (~30 ms of imports) wait until after the first frame
        unless the Overview shows the incident (--incident NAME).
        """
        if self._incident is None:
            from console.ui import incident_actions

            config = self.config
            self._incident = incident_actions.build_session(
                self.hub, self.findings, self.remote, targets=config.targets, pools=config.pools,
                secrets=config.secrets, interval=config.interval, folder=config.incident,
                reproduce_interval=config.reproduce_interval, reproduce_timeout=config.reproduce_timeout,
                record=config.record_incident)
        return self._incident

    def _attach_incident(self) -> None:
        """The incident follows the hub from here on (before any probe starts)."""
        if not self._incident_attached:
            self._incident_attached = True
            self.incident.attach([h.name for h in self.config.remote_hosts])
            self.incident.preload()

    def compose(self) -> ComposeResult:
        yield GridHeader(show_clock=self.config.live, icon="▣")
        with TabbedContent(initial="overview"):
            with TabPane(OVERVIEW_TITLE, id="overview"):
                if self.config.incident is not None:
                    yield IncidentStrip(lambda: _strip_markup(self.incident), id="incident-strip")
                yield TargetsPane(self.store, states=self.target_states, id="targets")
                yield SystemPane(self.store, id="system")
            for tab_id, title in OTHER_TABS:
                yield TabPane(title, id=tab_id)  # filled after the first frame (mount_other_tabs)
        yield from self.compose_scrubber()
        yield TooSmall(id="too-small")
        yield Footer()

    def other_tab_panes(self, tab_id: str) -> list[Widget]:
        """What tab ``tab_id`` holds (every tab but the Overview).

        Their modules are imported here, after the first frame (~20 ms of imports, DataTable's among them,
        that the Overview does not draw with)."""
        if tab_id == "layers":
            return [self.layers_pane]
        if tab_id == "findings":
            from widgets.findings_pane import FindingsPane

            return [FindingsPane(self.findings, labels=self.config.labels, id="findings-pane")]
        if tab_id == "conns":
            from widgets.conn_table import ConnTable

            return [ConnTable(self.store, id="conn-table")]
        if tab_id == "pools":
            from widgets.pool_gauges import PoolGauges

            return [PoolGauges(self.store, warning=self.config.pools.thresholds.warning,
                               critical=self.config.pools.thresholds.critical, id="pool-gauges")]
        if tab_id == "capture":
            from widgets.capture_view import CaptureView

            interface = str(self.config.capture.options.get("interface", "any")) if self.config.capture else "any"
            bpf = str(self.config.capture.options.get("filter", "")) if self.config.capture else ""
            view = CaptureView(self.store, interface=interface, bpf=bpf,
                               hosts=[h.name for h in self.config.remote_hosts], id="capture-view")
            view.refused_actions = self.capture_refused_actions
            return [view]
        if tab_id == "hosts":
            from widgets.hosts_view import HostsView
            from widgets.vantage_table import VantageTable

            return [HostsView(self.store, [h.name for h in self.config.remote_hosts], id="hosts-view"),
                    VantageTable(self.store, states=self.target_states, id="vantage"),
                    # each host's own pressure, as the overview shows ours
                    *(SystemPane(self.store, host=host.name) for host in self.config.remote_hosts)]
        if tab_id == "checklist":
            from widgets.checklist_pane import ChecklistPane
            from widgets.timeline_pane import TimelinePane

            return [ChecklistPane(lambda: _checklist_rows(self.incident), id="checklist-pane"),
                    TimelinePane(lambda: _timeline_events(self.incident), id="timeline")]
        raise ValueError(tab_id)

    async def mount_other_tabs(self) -> None:
        """Tabs 2-8 are mounted after the first frame: mounting and styling their ~100 widgets first
        held the first frame back by a third. Runs before the probes start (see after_first_frame)."""
        for tab_id, _ in OTHER_TABS:
            await self.query_one(f"#{tab_id}", TabPane).mount_all(self.other_tab_panes(tab_id))
        self.other_tabs_mounted = True
        if self._tab_asked is not None:
            # A frame later: focus moving out of the Overview while its rows were still settling
            # bounced TabbedContent (which follows focus) back to it.
            self.call_after_refresh(self.action_show_tab, self._tab_asked)

    def on_resize(self, event: events.Resize) -> None:
        # Below the smallest useful size the panes would shrink to empty borders: say so instead.
        small = self.query_one(TooSmall).fit(event.size.width, event.size.height)
        self.query_one(TabbedContent).display = not small
        self.set_class(event.size.width < TAB_STRIP_WIDTH, "-narrow")

    def on_mount(self) -> None:
        self.sub_title = self._base_subtitle()
        self._catch_stop_signals()
        if self.config.incident is not None:
            self._attach_incident()
        self.announce_state()
        self.set_class(self.share.on, "-share")
        # Viewers and the console share one alias file: take in names the others added.
        every(self, 1.0, self._follow_aliases)
        small = self.query_one(TooSmall).fit(self.size.width, self.size.height)
        self.query_one(TabbedContent).display = not small
        # Diagnosis runs here, beside the store, whichever tab is shown; panes read its result.
        every(self, self.findings.interval, self.run_diagnosis, first=True)
        self.call_after_refresh(self.run_diagnosis)
        pane = self.query_one(TargetsPane)
        for target in self.config.targets:
            pane.add_target(shown(target), self.config.labels.get(target))
        self.start_replay(self.config.replay_at)  # the first frame shows where the replay starts
        # After the first frame: the first paint should not wait for the other tabs or the probes' imports.
        self.call_after_refresh(self.after_first_frame)

    async def after_first_frame(self) -> None:
        self._attach_incident()
        if self.config.retention is not None:
            # Beside the tabs and probes, not before them (asyncio keeps only a weak reference: hold it).
            self._prune_task = asyncio.create_task(self.prune_recordings(self.config.retention))
        await self.mount_other_tabs()
        if self.config.live:
            await self.start_live()
        if self.config.live_feed:
            await self.start_feed()

    async def prune_recordings(self, policy: RetentionSettings) -> None:
        """Retention, in a thread beside the screen: with hundreds of past runs to weigh, scanning
        them before the first frame held it back by tens of ms. This run's own folder is locked,
        so it is never among those removed. The line is shown here and printed when the console ends."""
        from console.engine.retention import prune_at_start

        line = await asyncio.to_thread(prune_at_start, policy)
        if line is not None:
            self.retention_lines.append(line)
            self.notify(line, timeout=10)

    async def start_feed(self) -> None:
        from console.engine.live_feed import LiveFeed

        feed = LiveFeed(self.store, self.feed_state)
        try:
            await feed.start()
        except OSError as exc:
            self.notify(f"no live feed for warroom serve: {exc.strerror or exc}", severity="warning")
            return
        self.feed = feed
        self.hub.listeners.append(feed)

    def watched_state(self) -> dict[str, object]:
        """What the console watches (targets as the panes show them, labels, hosts, the demo flag): for viewers
        and in the recordings' headers, so a replay shows the same rows. A password in a URL never leaves."""
        return console_state(targets=self.config.targets, labels=self.config.labels, hostname=self.config.hostname,
                             remote_hosts=[h.name for h in self.config.remote_hosts], demo=self.config.demo,
                             secrets=self.config.secrets)

    def feed_state(self) -> dict[str, object]:
        """What viewers need besides the Samples: the console's state and the alias file."""
        path = self.share.redactor.aliases.path
        return {**self.watched_state(), "aliases": str(path) if path else None}

    def announce_state(self) -> None:
        """Targets came or went (or the demo's servers are up): tell the viewers and the recordings."""
        if self.feed is not None:
            self.feed.announce()
        state = self.watched_state()
        for recorder in (self.recorder, self._incident.recording if self._incident is not None else None):
            if recorder is not None:
                recorder.set_console(state)

    def run_diagnosis(self) -> None:
        self.findings.run_once()
        self.check_recorder()

    async def start_live(self) -> None:
        if self.config.demo:
            from console.engine.demo_lab import DemoLab

            # The demo's servers run beside the probes, so their timing is not the UI's either.
            lab = await self.hub.run_on_probe_loop(DemoLab.start())
            self.demo_lab = lab
            pane = self.query_one(TargetsPane)
            for demo_target in lab.targets:
                self.config.labels[demo_target.target] = f"{demo_target.name}: {demo_target.story}"
                pane.add_target(demo_target.target, self.config.labels[demo_target.target])
                self.layers_pane.add_target(demo_target.target, self.config.labels[demo_target.target])
                self.config.targets.append(demo_target.target)
            self.announce_state()
        for spec in host_specs(self.config.interval, self.config.pools):
            self.hub.start_probe(spec)
        for target in self.config.targets:
            self.start_target_probes(target)
        if self.config.capture is not None:
            self.hub.start_probe(self.config.capture)
        if self.config.remote_hosts:
            self.start_remote_hosts()

    def start_remote_hosts(self) -> None:
        from console.remote.host import RemoteHost

        specs = remote_specs(self.config.targets, self.config.interval)
        for host in self.config.remote_hosts:
            remote = RemoteHost(host, specs, self.config.ssh_settings)
            self.remote[host.name] = remote
            self.hub.add_stream(f"ssh:{host.name}", remote.stream, kind="host_status")
            if self.config.capture is not None:
                # --host H --capture IFACE: capture on H too (same interface and filter).
                from console.remote.capture import start_remote_capture

                options = self.config.capture.options
                start_remote_capture(self.hub, remote, str(options.get("interface", "any")),
                                     str(options.get("filter") or ""))

    def _update_remote_specs(self) -> None:
        if not self.remote:
            return
        specs = remote_specs(self.config.targets, self.config.interval)
        for remote in self.remote.values():
            self.hub.call_on_probe_loop(functools.partial(remote.set_specs, specs))  # its channel lives there

    def start_target_probes(self, target: str) -> None:
        for spec in specs_for_target(target, self.config.interval):
            self.hub.start_probe(spec)
        self._update_remote_specs()

    def _catch_stop_signals(self) -> None:
        """SIGTERM and SIGHUP (a closed SSH session) quit like q does, so every probe and child is stopped."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread; a test app run elsewhere keeps the defaults
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(signum, self._on_stop_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._signals.append(signum)

    def _on_stop_signal(self, signum: int) -> None:
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop_then_exit(signum))

    async def _stop_then_exit(self, signum: int) -> None:
        """Stop our own work (probes, children, the recording), then quit.

        Textual's shutdown writes to the terminal before it unmounts anything, and once the terminal
        is gone (SIGHUP: the SSH session or tmux pane closed) those writes can block for ever: its
        writer queue is bounded and nothing drains it (Textualize/textual#6692; a killed tmux pane left
        a console hung with its probes running). So the work stops first, and if Textual has not
        ended the process EXIT_GRACE_S later, a watchdog does, with nothing of ours left running.
        """
        try:
            await self._stop_work()
        finally:
            threading.Thread(target=_exit_later, args=(128 + signum,), daemon=True,
                             name="warroom-exit-watchdog").start()
            self.exit()

    async def on_unmount(self) -> None:
        await self._stop_work()

    async def _stop_work(self) -> None:
        if self._work_stopped:
            return
        self._work_stopped = True
        if self.feed is not None:
            await self.feed.stop()
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
        if self._incident is not None:
            self._incident.detach()
        await self.hub.stop()
        if self.demo_lab is not None:
            await self.hub.run_on_probe_loop(self.demo_lab.stop())  # type: ignore[attr-defined]
        if self.probe_loop is not None:
            self.probe_loop.close()
        if self.config.record is not None:
            self.config.record.close()

    def _base_subtitle(self) -> str:
        share = "  SHARE MODE (names hidden)" if self.share.on else ""
        if self.config.replay is not None:
            return f"REPLAY of {self.config.replay.path}" + (" (a demo run)" if self.config.demo else "") + share
        if self.config.replay_end is not None:
            import time

            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.config.replay_end))
            return f"REPLAY of a recording ending {stamp}{share}"
        return (self.config.hostname + ("  demo" if self.config.demo else "")
                + ("  ● REC" if self.config.record is not None or self._incident_records() else "")
                + ("  NOT RECORDING (--no-record)" if self.config.incident is not None and
                   not self.config.record_incident else "") + share)

    def _incident_records(self) -> bool:
        return self.config.incident is not None and self.config.record_incident

    # -- share mode -------------------------------------------------------------

    def get_line_filters(self) -> list[LineFilter]:
        """Textual's filters, and share mode's redaction while it is on: every drawn line passes here."""
        filters = list(super().get_line_filters())
        return [*filters, self.share.filter] if self.share.on else filters

    def _learn_config_names(self) -> None:
        redactor = self.share.redactor
        redactor.learn("host", [self.config.hostname])
        for target in self.config.targets:
            redactor.learn_target(target)
        for host in self.config.remote_hosts:
            redactor.learn("host", [host.name, host.address])
            redactor.learn("user", [host.user])
            for hop in (host.jump or "").split(","):  # ProxyJump "[user@]host[:port]" hops
                user, _, rest = hop.strip().rpartition("@")
                redactor.learn("user", [user])
                redactor.learn_target(rest)

    def _learn_sample(self, sample: Sample) -> None:
        # Learning walks every Sample's fields: a quarter of the UI loop's time at five targets.
        # With share mode off nothing is redacted, so nothing is learned; switching it on first
        # learns from what the store holds (everything the panes can draw comes from there).
        if self.share.on and self.share.redactor.learn_sample(sample):
            self.call_later(self._redraw_everything)

    def _learn_from_store(self) -> None:
        learn = self.share.redactor.learn_sample
        for sample in self.store:
            learn(sample)

    def _follow_aliases(self) -> None:
        if self.share.redactor.follow_file() and self.share.on:
            self._redraw_everything()

    def _redraw_everything(self) -> None:
        """Every widget on every screen draws again (so a changed filter applies to lines drawn before)."""
        for screen in self.screen_stack:
            for widget in screen.walk_children():
                widget.refresh()
            screen.refresh()

    def action_toggle_share(self) -> None:
        self.share.on = not self.share.on
        if self.share.on:
            self._learn_from_store()
        self.set_class(self.share.on, "-share")
        self.query_one(TargetsPane).refit()  # share mode's rows are three lines at least
        self.sub_title = self._base_subtitle() + ("  PAUSED (probes still recording; p resumes)" if self.paused else "")
        self._redraw_everything()
        self.notify("share mode on: addresses and names show as aliases" if self.share.on else "share mode off",
                    timeout=3)

    # -- capture pane requests (the pane does no I/O) ---------------------------

    def on_capture_view_capture_changed(self, message: CaptureView.CaptureChanged) -> None:
        from console.ui.capture_actions import restart_capture

        if not self.config.live:
            self.notify("replay: no live capture", timeout=3)
            return
        remote = self.remote.get(message.host)
        if remote is not None:
            from console.remote.capture import start_remote_capture

            start_remote_capture(self.hub, remote, message.interface, message.bpf)
            self.notify(f"capturing on {message.host}:{message.interface}", timeout=3)
            return
        self.config.capture = restart_capture(self.hub, message.interface, message.bpf)
        self.notify(f"capturing on {message.interface}", timeout=3)

    async def on_capture_view_export_requested(self, message: CaptureView.ExportRequested) -> None:
        from console.ui.capture_actions import export_capture

        try:
            path, count = await export_capture(message.target, host=message.host)
        except KeyError:
            self.notify("no capture is running: press i to choose an interface first", severity="warning")
        except OSError as exc:
            self.notify(f"could not write the pcap: {exc.strerror}", severity="error")
        else:
            self.notify(f"wrote {count} packet headers to {path} (headers only, no payload)", timeout=6)

    # -- the incident (console/ui/incident_actions.py does the work) -------------

    def on_checklist_pane_activate(self, message: ChecklistPane.Activate) -> None:
        from console.ui import incident_actions

        incident_actions.activate(self, self.incident, message.item_id,
                                  live=self.config.live and self.config.replay_end is None)

    def on_checklist_pane_decide(self, message: ChecklistPane.Decide) -> None:
        title = next((f.title for f in self.findings.current if "/".join(f.key) == message.key), message.key)
        self.incident.decide(message.key, message.verdict, title)

    def action_note(self) -> None:
        from widgets.checklist_pane import ChecklistPane

        step = self.query_one(ChecklistPane).current_step() if self.query_one(TabbedContent).active == "checklist" \
            else None
        from console.ui import incident_actions

        incident_actions.edit_note(self, self.incident, step or self.incident.checklist.current_step())

    def action_fix_applied(self) -> None:
        from console.ui import incident_actions

        incident_actions.mark_fix(self, self.incident)

    def action_write_report(self) -> None:
        from console.ui import incident_actions

        incident_actions.write_report(self, self.incident)

    # -- actions ---------------------------------------------------------------

    def help_rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        seen: set[str] = set()
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if self.check_action(binding.action.split("(")[0], ()) is False:
                continue  # the replay keys, outside a replay
            key = binding.key_display or binding.key
            if key not in seen:
                seen.add(key)
                rows.append((key, binding.description or binding.action))
        return rows + self.EXTRA_HELP

    def action_help(self) -> None:
        from console.ui.screens import HelpScreen

        self.push_screen(HelpScreen(self.help_rows()))

    def action_cycle_theme(self) -> None:
        index = THEME_NAMES.index(self.theme) if self.theme in THEME_NAMES else -1
        self.theme = THEME_NAMES[(index + 1) % len(THEME_NAMES)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused

    def watch_paused(self, paused: bool) -> None:
        for widget in self.query("*"):
            if isinstance(getattr(type(widget), "paused", None), reactive):
                widget.paused = paused  # type: ignore[attr-defined]
        self.sub_title = self._base_subtitle() + ("  PAUSED (probes still recording; p resumes)" if paused else "")

    def action_add_target(self) -> None:
        from console.ui.screens import AddTargetScreen

        def added(target: str | None) -> None:
            if target:
                self.add_target(target)

        self.push_screen(AddTargetScreen(), added)

    def add_target(self, target: str) -> None:
        if target in self.config.targets:
            self.notify(f"{shown(target)} is already probed", timeout=3)
            return
        self.config.targets.append(target)
        self.share.redactor.learn_target(target)
        self.query_one(TargetsPane).add_target(shown(target))
        self.layers_pane.add_target(shown(target))
        if self.config.live:
            self.start_target_probes(target)
        self.announce_state()

    def action_remove_target(self) -> None:
        pane = self.query_one(TargetsPane)
        label = pane.focused_target()
        if label is None:
            self.notify("focus a target row first (up/down), then press x", timeout=3)
            return
        # Panes know the target by its shown (redacted) text; the probes by what was typed.
        target = next((t for t in self.config.targets if shown(t) == label), label)
        self.hub.remove_target(target)
        if target in self.config.targets:
            self.config.targets.remove(target)
        self._update_remote_specs()
        pane.remove_target(label)
        self.layers_pane.remove_target(label)
        self.announce_state()
        self.notify(f"stopped probing {label}", timeout=2)

    def action_show_tab(self, tab: str) -> None:
        if not self.other_tabs_mounted:  # a key in the first frame's ~0.1 s: shown once the tabs are in
            self._tab_asked = tab
            return
        tabs = self.query_one(TabbedContent)
        if tabs.active != tab:
            # Take the focus out of the tab being left first. Textual hands a widget hidden with the
            # focus to a sibling that can take it (the Checklist's timeline once it scrolls), and
            # TabbedContent, which follows the focus, switched straight back: 8 then 7 stayed on 8.
            self.set_focus(None)
        tabs.active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane, tabs = event.pane, event.tabbed_content
        # Panes in hidden tabs skip their timers; draw this one's now, not a second later.
        self.call_after_refresh(refresh_shown, pane)

        def focus_in_pane() -> None:
            focused = self.focused
            if tabs.active_pane is pane and (focused is None or pane not in focused.ancestors):
                # Keys like the connection table's / s r g work at once, without tabbing into it.
                focus_first_shown(pane)

        focus_in_pane()
        # Again after the redraw: a table a pane shows once it has rows (the Hosts tab's) cannot take
        # the focus before.
        self.call_after_refresh(focus_in_pane)


# The incident's views, imported with the incident (see WarroomApp.incident), not before the first frame.

def _strip_markup(session: IncidentSession) -> tuple[int, str]:
    from console.ui.incident_view import strip_markup

    return strip_markup(session)


def _checklist_rows(session: IncidentSession) -> tuple[int, list[ChecklistRow]]:
    from console.ui.incident_view import checklist_rows

    return checklist_rows(session)


def _timeline_events(session: IncidentSession) -> tuple[int, list[tuple[str, str, str]]]:
    from console.ui.incident_view import timeline_events

    return timeline_events(session)


def app_config(settings: Settings, *, record: Recorder | None = None,
               incident: IncidentFolder | None = None, prune: bool = False) -> AppConfig:
    """The app's start-up from the command's Settings (the tests build AppConfig themselves).

    ``prune``: run retention on the automatic recordings once the screen is up."""
    return AppConfig(targets=list(settings.targets), interval=settings.interval, demo=settings.demo,
                     theme=settings.theme or DEFAULT_THEME, record=record, remote_hosts=list(settings.hosts),
                     ssh_settings=settings.ssh, pools=settings.pools, capture=settings.capture,
                     incident=incident, secrets=list(settings.secrets),
                     share=settings.share, live_feed=True, record_incident=not settings.no_record,
                     retention=settings.retention if prune else None)


def require_terminal(json_hint: str = "--json") -> None:
    """The screen needs a terminal on stdout; into a pipe it would write escape codes (UsageError instead)."""
    if not sys.stdout.isatty():
        raise UsageError(f"stdout is not a terminal, so no screen can open: run it in a terminal, or use "
                         f"{json_hint} for output a pipe or file can take")


def create_app(config: AppConfig | None = None) -> WarroomApp:
    """The one way to build the app: the CLI and the tests both call this."""
    if gc.get_freeze_count() == 0:
        # What the imports built (~40k objects the collector tracks: modules, classes, functions, CSS) lives
        # as long as the process: out of the collector's sight, its full passes while the first frame is built,
        # and every one after, no longer walk them. CPU to the first frame: 395 -> 356 ms (medians of
        # 12 interleaved starts of `warroom demo` at 120x40). Once per process: a test that builds many
        # apps must not freeze the garbage of the ones before. (A start through console/cli.py has frozen
        # them already, as its imports ended: console/engine/collector.py.)
        gc.freeze()
    return WarroomApp(config or AppConfig())
