"""The app's recording side: replay keys and the scrubber's requests, and the recorder's notices.

``ReplayControls`` is mixed into the App. Its bindings exist only in a replay
(``check_action`` hides them otherwise); the player (console/engine/replay.py)
does the work, this only maps keys and ticks to it and keeps the screen in step.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from widgets.visibility import refresh_shown

if TYPE_CHECKING:
    # The player and scrubber are imported where a replay uses them: a live console's first frame does not.
    from console.diagnosis.engine import FindingsEngine
    from console.engine.recorder import Recorder
    from console.engine.replay import ReplayPlayer
    from widgets.replay_scrubber import ReplayScrubber, ScrubberState

#: How often playback moves on (wall seconds): 10 Hz is smooth enough and cheap.
TICK_S = 0.1
#: How often --follow looks for what the recorder appended.
FOLLOW_S = 1.0

REPLAY_BINDINGS = [
    Binding("space", "replay_toggle", "play/pause"),
    Binding("minus", "replay_slower", "slower", key_display="-"),
    Binding("plus,equals_sign", "replay_faster", "faster", key_display="+"),
    Binding("comma", "replay_step(-10)", "back 10 s", key_display=",", show=False),
    Binding("full_stop", "replay_step(10)", "on 10 s", key_display=".", show=False),
    Binding("less_than_sign", "replay_step(-60)", "back 1 min", key_display="<", show=False),
    Binding("greater_than_sign", "replay_step(60)", "on 1 min", key_display=">", show=False),
    Binding("home", "replay_seek_edge('start')", "replay from the start", show=False),
    Binding("end", "replay_seek_edge('end')", "replay: go to the end", show=False),
    Binding("j", "replay_jump", "jump to a time"),
]
REPLAY_ACTIONS = frozenset(b.action.split("(")[0] for b in REPLAY_BINDINGS)


class JumpScreen(ModalScreen[float | None]):
    """Ask for a time in the recording; only one that parses is returned."""

    DEFAULT_CSS = """
    JumpScreen {
        align: center middle;
    }
    JumpScreen > Vertical {
        width: 72;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    JumpScreen #error {
        color: $error;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]
    AUTO_FOCUS = "Input"

    def __init__(self, start: float, end: float) -> None:
        super().__init__()
        self.start = start
        self.end = end

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Jump to: HH:MM[:SS], +MM:SS from the start, -MM:SS from the end, start, end "
                        "(escape cancels)")
            yield Input(placeholder="+10:00", id="when")
            yield Label("", id="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from console.engine.replay import parse_seek_time

        try:
            ts = parse_seek_time(event.value, self.start, self.end)
        except ValueError as exc:
            self.query_one("#error", Label).update(escape(str(exc)))
            return
        self.dismiss(ts)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReplayControls(App[int]):
    """Replay and recorder behaviour of the App (a mixin: WarroomApp derives from it)."""

    replay: ReplayPlayer | None = None
    recorder: Recorder | None = None
    findings: FindingsEngine
    """The app's findings engine (WarroomApp sets it)."""
    _last_tick = 0.0
    _notices_shown: dict[int, int]

    def __init__(self) -> None:
        super().__init__()
        self._notices_shown = {}
        """Per recorder (by id): how many of its notices the screen has shown."""

    def scrubber_state(self) -> ScrubberState:
        from widgets.replay_scrubber import ScrubberState

        player = self.replay
        assert player is not None
        rec = player.recording
        return ScrubberState(start=rec.start, end=rec.end, position=player.position, speed=player.speed,
                             paused=player.paused, following=player.follow,
                             marks=[(m.ts, m.kind) for m in rec.marks])

    def compose_scrubber(self) -> ComposeResult:
        if self.replay is not None:
            from widgets.replay_scrubber import ReplayScrubber

            yield ReplayScrubber(self.scrubber_state, id="scrubber")

    def start_replay(self, at: float | None) -> None:
        """On mount: put the store where the replay starts, then tick."""
        player = self.replay
        if player is None:
            return
        rec = player.recording
        player.on_seek.append(self._after_seek)
        player.seek(rec.start if at is None else at)
        self._last_tick = time.monotonic()
        self.set_interval(TICK_S, self._replay_tick)
        if player.follow:
            self.set_interval(FOLLOW_S, self._follow_tick)
        summary = rec.problems.summary(rec.path)
        if summary:
            self.notify(summary, severity="warning", timeout=10)

    def _replay_tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self.replay is not None:
            self.replay.advance(elapsed)

    def _follow_tick(self) -> None:
        if self.replay is not None:
            self.replay.recording.poll()

    def run_diagnosis(self) -> None:
        """Run the rules now (WarroomApp's own)."""

    def _after_seek(self) -> None:
        self.findings.reset()
        self.run_diagnosis()
        for pane in self.query("TabPane"):
            if pane.display:
                refresh_shown(pane)

    def check_recorder(self) -> None:
        """Show each recorder notice once (disk full, file deleted): called on the app's 1 Hz tick.

        Watches the run's recorder and the incident's (``incident.recording``), whichever there are.
        Only an incident already built: reading ``incident`` would build one, and its ~50 ms of
        imports ran here, in the first frame's callbacks.
        """
        incident = getattr(self, "_incident", None)
        for recorder in (self.recorder, getattr(incident, "recording", None)):
            notices: list[str] = list(getattr(recorder, "notices", None) or [])
            shown = self._notices_shown.get(id(recorder), 0)
            for notice in notices[shown:]:
                self.notify(notice, severity="error", timeout=15)
            if recorder is not None:
                self._notices_shown[id(recorder)] = len(notices)

    # -- keys ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REPLAY_ACTIONS and self.replay is None:
            return False
        return super().check_action(action, parameters)

    def action_replay_toggle(self) -> None:
        if self.replay is not None:
            self.replay.toggle()
            self._last_tick = time.monotonic()

    def action_replay_faster(self) -> None:
        if self.replay is not None:
            self.replay.faster()
            self.notify(f"replay at {self.replay.speed:g}x", timeout=1.5)

    def action_replay_slower(self) -> None:
        if self.replay is not None:
            self.replay.slower()
            self.notify(f"replay at {self.replay.speed:g}x", timeout=1.5)

    def action_replay_step(self, seconds: float) -> None:
        if self.replay is not None:
            self.replay.step(float(seconds))

    def action_replay_seek_edge(self, edge: str) -> None:
        if self.replay is not None:
            rec = self.replay.recording
            self.replay.seek(rec.start if edge == "start" else rec.end)

    def action_replay_jump(self) -> None:
        player = self.replay
        if player is None:
            return

        def jumped(ts: float | None) -> None:
            if ts is not None and self.replay is not None:
                self.replay.seek(ts)

        self.push_screen(JumpScreen(player.recording.start, player.recording.end), jumped)

    def on_replay_scrubber_seek_requested(self, message: ReplayScrubber.SeekRequested) -> None:
        if self.replay is not None:
            self.replay.seek(message.ts)
