"""`warroom replay FILE|DIR`: play a recording in the console (or print it with --json).

A recording is what the flight recorder writes (a folder of compressed
segments, or one file), or any file of Sample JSON lines (`warroom --json`,
the SSH agent's output). Replay feeds it through the same hub and store as a
live run, with the store's clock at the replay position: pause, speed 1x..60x,
seek (keys, or a click on the scrubber), and `--follow` for a recording that is
still being written. Bad lines are skipped and counted, in one line on stderr.

Exit status: 0 played (or printed); 2 bad input (not a recording, a newer
schema, nothing in it, a bad --at or --speed).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console.engine.recorder import RecordingError
from console.engine.replay import Recording, parse_seek_time, settle, watched
from console.settings.arguments import Parser
from console.settings.errors import EXIT_OK, UsageError
from console.settings.settings import Settings, build_settings

if TYPE_CHECKING:
    from console.ui.app import AppConfig

#: How often --follow --json looks for new lines.
FOLLOW_POLL_S = 0.5
MAX_SPEED = 60.0


def parser() -> Parser:
    parser = Parser(prog="warroom replay", description="Play a recording: a recording folder, a --record FILE, "
                                                       "or JSON lines of Samples.")
    parser.add_argument("file", metavar="FILE|DIR")
    parser.add_argument("--json", action="store_true",
                        help="print the recording's Samples as JSON lines instead of opening the console")
    parser.add_argument("--at", metavar="TIME",
                        help="start here: start, end, +MM:SS from the start, -MM:SS from the end, HH:MM[:SS]")
    parser.add_argument("--speed", type=float, default=1.0, metavar="N", help="playback speed, 1 to 60 (default 1)")
    parser.add_argument("--paused", action="store_true", help="open paused (space plays)")
    parser.add_argument("--follow", action="store_true",
                        help="keep reading a recording that is still being written (starts at its end)")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = build_settings(args, use_config=False)
    settings.source = args.file
    if not (math.isfinite(args.speed) and 1.0 <= args.speed <= MAX_SPEED):
        raise UsageError(f"--speed must be between 1 and {MAX_SPEED:g}, not {args.speed:g}")
    return run(settings, at=args.at, speed=args.speed, paused=args.paused, follow=args.follow)


def load(path: Path, *, follow: bool = False) -> Recording:
    """The recording at ``path``, or a UsageError with the one-line reason."""
    try:
        recording = Recording.load(path, follow=follow)
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    if not len(recording) and not follow:
        skipped = recording.problems.describe()
        raise UsageError(f"{path} holds no Samples" + (f" ({skipped})" if skipped else "")
                         + ": record one with warroom --record FILE, or give a recording folder")
    settle()
    return recording


def report_problems(recording: Recording, already: int = 0) -> None:
    summary = recording.problems.summary(recording.path)
    if summary and recording.problems.total > already:
        print(f"warroom: {summary}", file=sys.stderr)


def run(settings: Settings, *, at: str | None = None, speed: float = 1.0, paused: bool = False,
        follow: bool = False) -> int:
    path = Path(settings.source or "")
    recording = load(path, follow=follow)
    start: float | None = None
    if at is not None:
        try:
            start = parse_seek_time(at, recording.start, recording.end)
        except ValueError as exc:
            raise UsageError(f"--at: {exc}") from None
    if settings.json:
        return print_json(recording, follow=follow, since=start)
    from console.ui.app import create_app, require_terminal  # only the screen needs Textual

    require_terminal("warroom replay FILE --json")
    app = create_app(replay_config(recording, at=recording.end if start is None and follow else start,
                                   speed=speed, follow=follow))
    if paused and app.replay is not None:
        app.replay.paused = True
    status = int(app.run() or 0)
    recording.close()
    report_problems(recording)  # after the screen: Textual draws over stderr while it runs
    return status


def replay_config(recording: Recording, *, at: float | None = None, speed: float = 1.0,
                  follow: bool = False) -> AppConfig:
    """The replay's console as the recorded one was: its targets, labels, SSH hosts and demo flag (from the
    recording's headers, and what its Samples show), on the recording's clock, probing nothing."""
    from console.settings.hosts import HostConfig
    from console.ui.app import AppConfig

    state = watched(recording)
    config = AppConfig(targets=state.targets, labels=state.labels, live=False, demo=state.demo,
                       remote_hosts=[HostConfig(name) for name in state.remote_hosts], replay=recording,
                       replay_at=at, replay_speed=speed, replay_follow=follow)
    if state.hostname:
        config.hostname = state.hostname
    return config


def print_json(recording: Recording, *, follow: bool, since: float | None) -> int:
    """Every Sample as one JSON line (from ``since``); with ``follow``, then what is appended, until ^C."""
    out = sys.stdout
    try:
        for sample in recording.all_samples():
            if since is None or sample.ts >= since:
                out.write(sample.to_json() + "\n")
        out.flush()
        report_problems(recording)
        reported = recording.problems.total
        printed_upto = recording.end
        while follow:
            time.sleep(FOLLOW_POLL_S)
            if recording.poll():
                for sample in recording.samples_after(printed_upto):
                    out.write(sample.to_json() + "\n")
                printed_upto = recording.end
                out.flush()
            if recording.problems.total > reported:
                report_problems(recording, reported)
                reported = recording.problems.total
    except (BrokenPipeError, KeyboardInterrupt):  # the reader went away, or ^C ended --follow
        pass
    finally:
        recording.close()
    return EXIT_OK
