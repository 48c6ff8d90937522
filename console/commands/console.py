"""Plain `warroom [TARGET...]`: the live console, or the JSON stream with --json."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, TextIO

from console.engine.collector import collector_paused
from console.engine.hub import Hub
from console.engine.probe_plan import host_specs, specs_for_target
from console.engine.recorder import Recorder, RecordingError, open_recorder
from console.engine.store import Store
from console.settings.arguments import console_parser
from console.settings.errors import EXIT_FAILED, EXIT_OK, UsageError
from console.settings.pools import PoolsConfig
from console.settings.settings import Settings, build_settings
from probes.runtime import ProbeSpec
from probes.samples import Sample
from probes.targets import TargetError

if TYPE_CHECKING:
    from console.incident.folder import IncidentFolder
    from console.ui.app import WarroomApp


def plan(targets: list[str], interval: float, pools: PoolsConfig | None = None) -> list[ProbeSpec]:
    """All probes for the command line, or a UsageError naming the first bad target."""
    specs = host_specs(interval, pools)
    for text in targets:
        try:
            specs += specs_for_target(text, interval)
        except TargetError as exc:
            raise UsageError(f"bad target: {exc}") from None
    return specs


async def stream_json(specs: list[ProbeSpec], duration: float | None, recorder: Recorder | None,
                      interval: float = 1.0) -> int:
    """Print every Sample as one JSON line until ``duration`` passes (or forever).

    The findings engine runs beside the store as in the console, so findings appearing and clearing
    (kind "finding") are in the stream too; the store keeps the rules' window and no more.
    """
    from console.diagnosis.engine import FindingsEngine
    from console.diagnosis.evidence import WINDOW_S

    # The window at the fastest probe's rate, with a margin; older samples are never read here.
    fastest = min([spec.interval for spec in specs if spec.interval > 0] or [interval])
    hub = Hub(Store(per_series=int(WINDOW_S / max(fastest, 0.05)) + 16))
    findings = FindingsEngine(hub.store, publish=hub.publish)
    out = sys.stdout

    def emit(sample: Sample) -> None:
        out.write(sample.to_json() + "\n")
        out.flush()

    hub.listeners.append(emit)
    if recorder is not None:
        hub.listeners.append(recorder)
    for spec in specs:
        hub.start_probe(spec)

    async def diagnose_every_second() -> None:
        while True:
            await asyncio.sleep(findings.interval)
            findings.run_once()

    rules = asyncio.get_running_loop().create_task(diagnose_every_second(), name="warroom:findings")
    try:
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        rules.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rules
        await hub.stop()
    return 0


def say(message: str) -> None:
    """One line on stderr (the recorder's writer thread calls this once per problem)."""
    print(f"warroom: {message}", file=sys.stderr, flush=True)


async def stream_remote_json(settings: Settings, out: TextIO | None = None, recorder: Recorder | None = None) -> int:
    """`warroom --host H --json`: that host's Samples, one JSON line each; exit 1 when a host is unusable."""
    # Only now: asyncssh costs ~150 ms of start-up that a local console need not pay.
    from console.engine.probe_plan import remote_specs
    from console.remote.host import KIND_STATUS, TERMINAL_STATES
    from console.remote.stream import stream_remote

    out = out or sys.stdout
    specs = remote_specs(settings.targets, settings.interval)
    status = EXIT_OK
    connected: set[str] = set()
    async for sample in stream_remote(settings.hosts, specs, settings=settings.ssh, duration=settings.duration):
        if sample.kind == KIND_STATUS and sample.fields.get("state") == "connected":
            connected.add(sample.host)
        if recorder is not None:
            recorder(sample)
        try:
            out.write(sample.to_json() + "\n")
            out.flush()
        except BrokenPipeError:
            return EXIT_OK
        if sample.kind == KIND_STATUS and sample.fields.get("state") in TERMINAL_STATES:
            # The one line a person reads when a host could not be used at all.
            print(f"warroom: {sample.host}: {sample.message}", file=sys.stderr)
            status = EXIT_FAILED
    never = [h.name for h in settings.hosts if h.name not in connected]
    if never and status == EXIT_OK:
        print(f"warroom: never connected to {', '.join(never)} (see the host_status samples for why)",
              file=sys.stderr)
        status = EXIT_FAILED
    return status


def open_incident(settings: Settings) -> IncidentFolder | None:
    """--incident NAME: its folder (created or resumed); a resume with no target probes the saved ones."""
    if settings.incident is None:
        return None
    if settings.json:
        raise UsageError("--incident opens the console (the checklist needs a screen); it does not go with --json")
    from console.incident.folder import IncidentError, IncidentFolder

    try:
        folder = IncidentFolder.open(settings.incident)
    except IncidentError as exc:
        raise UsageError(str(exc)) from None
    if not settings.targets:
        # Saved targets are redacted labels: one whose password was masked cannot be probed as it is.
        saved = [t for t in folder.meta().get("targets", []) if "***" not in t]
        settings.targets = saved
    return folder


def prune_recordings(settings: Settings) -> None:
    """Retention at start (console/engine/retention.py): the line saying what went, on stderr.

    A run with a screen prunes once its first frame is up instead (WarroomApp.prune_recordings)."""
    from console.engine.retention import prune_at_start

    line = prune_at_start(settings.retention)
    if line is not None:
        say(line)


def run_screen(app: WarroomApp) -> int:
    """Run the console's screen; then print what its retention removed, as a headless run does at start."""
    status = int(app.run() or 0)
    for line in app.retention_lines:
        say(line)
    return status


def run(settings: Settings) -> int:
    """Run the console (or the JSON stream) as ``settings`` say."""
    if settings.duration is not None and not settings.json:
        raise UsageError("--duration goes with --json")
    if not settings.json:
        from console.ui.app import require_terminal

        require_terminal("--json (the Sample stream)")
    incident = open_incident(settings)
    specs = plan(settings.targets, settings.interval, settings.pools)
    if settings.capture is not None:
        specs.append(settings.capture)
    if settings.json:
        prune_recordings(settings)
    try:
        # The recorder's notices (disk full ...) go to stderr in a headless run; the console shows them itself.
        # An incident records into its own folder (console/incident/recording.py): no second, per-run recording.
        recorder = None if incident is not None and not settings.record else open_recorder(
            settings, on_error=say if settings.json else None)
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    if settings.hosts and settings.json:
        try:
            return asyncio.run(stream_remote_json(settings, recorder=recorder))  # ctrl+c, signals: console/cli.py
        finally:
            if recorder is not None:
                recorder.close()
    try:
        if settings.json:
            try:
                return asyncio.run(stream_json(specs, settings.duration, recorder, settings.interval))
            except BrokenPipeError:
                return 0  # the reader (head, jq) went away: that is a normal end
        with collector_paused():  # the screen's ~150 ms of imports (console/engine/collector.py)
            from console.ui.app import app_config, create_app, require_terminal

        return run_screen(create_app(app_config(settings, record=recorder, incident=incident, prune=True)))
    finally:
        if recorder is not None:
            recorder.close()


def main(argv: list[str]) -> int:
    return run(build_settings(console_parser().parse_args(argv)))
