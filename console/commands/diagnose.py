"""`warroom diagnose TARGET...`: run the console's probes and findings engine headless, then print the findings.

The probes are the console's (console/engine/probe_plan.py, this host's own
probes included), run through a Hub into a Store for ``--duration`` seconds
while the same FindingsEngine runs at 1 Hz beside it. Then the findings are
printed ranked: those about the targets first (with the host findings that
explain one), then those about this host. ``--json`` prints one JSON object
per finding instead.

When a finding first reached the top is kept too (``first_top_s``, seconds
after the start), so a script or the benchmark learns how long the right
answer took; ``first_seen`` is when the finding first appeared at all.

Exit status: 0 no warning or critical finding at the end, 1 there is one,
2 bad input (one line on stderr, before anything runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import TextIO

from console.diagnosis.engine import FindingsEngine, FindingState
from console.diagnosis.evidence import WINDOW_S, collect
from console.diagnosis.finding import ALARMS, Finding, describe, where
from console.engine.hub import Hub
from console.engine.probe_plan import host_specs, specs_for_target
from console.engine.store import Store
from console.settings.arguments import diagnose_parser
from console.settings.errors import EXIT_FAILED, EXIT_OK
from console.settings.settings import DIAGNOSE_ECHO_SPEEDUP, DiagnoseSettings, Settings, build_diagnose_settings
from probes.samples import JSONValue

SEVERITY_WORDS = {"critical": "✖ CRITICAL", "warning": "▲ WARNING", "info": "● INFO"}
#: ICMP echoes go this many times faster than the other probes (see the settings' note).
ECHO_SPEEDUP = DIAGNOSE_ECHO_SPEEDUP
#: Ring depth: the window at the fastest interval, with room to spare (samples older than it are not read).
MIN_DEPTH = 600


@dataclass
class Run:
    """One diagnosis run: the engine, when it started, and which finding was on top when."""

    engine: FindingsEngine
    started: float
    first_top: dict[tuple[str, ...], float] = field(default_factory=dict)
    """Finding key -> seconds after the start when it was first the top finding."""
    ended: float = 0.0

    def tick(self, now: float) -> Finding | None:
        """Run the rules once and note the top finding; return it when it is a target's warning or critical.

        A host finding on top means no target has a finding yet (they rank first): not what --until-found
        waits for.
        """
        current = self.engine.run_once(now)
        if not current:
            return None
        top = current[0]
        self.first_top.setdefault(top.key, now - self.started)
        return top if top.severity in ALARMS and top.about_target else None

    def record(self, finding: Finding, state: FindingState | None = None) -> dict[str, JSONValue]:
        data = self.engine.record(finding)
        if state is not None:
            data.update(first_seen=state.first_seen, last_seen=state.last_seen, cleared=state.cleared,
                        worst_severity=state.worst)
        first_seen = data.get("first_seen")
        data["first_seen_s"] = round(first_seen - self.started, 3) if isinstance(first_seen, float) else None
        top = self.first_top.get(finding.key)
        data["first_top_s"] = round(top, 3) if top is not None else None
        return data


async def diagnose(settings: Settings) -> Run:
    """Probe for ``settings.duration`` seconds (or until found) and return the run with its engine."""
    opts = settings.diagnose or DiagnoseSettings()
    interval = max(settings.interval, 0.1)
    store = Store(per_series=max(MIN_DEPTH, int(WINDOW_S / interval) * 2))
    hub = Hub(store)
    engine = FindingsEngine(store, publish=hub.publish)
    specs = host_specs(settings.interval, settings.pools)
    for text in settings.targets:
        specs += specs_for_target(text, settings.interval, echo_interval=settings.interval / ECHO_SPEEDUP)
    if settings.capture is not None:
        specs.append(settings.capture)
    for spec in specs:
        hub.start_probe(spec)
    remote: asyncio.Task[None] | None = None
    if settings.hosts:
        remote = asyncio.get_running_loop().create_task(_pump_remote(settings, hub), name="warroom:diagnose:ssh")
    run = Run(engine, started=time.time())
    deadline = run.started + (settings.duration or 20.0)
    try:
        while True:
            now = time.time()
            if now >= deadline:
                break
            await asyncio.sleep(min(engine.interval, deadline - now))
            found = run.tick(time.time())
            if found is not None and opts.until_found:
                break
    finally:
        if remote is not None:
            remote.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await remote
        await hub.stop()
    run.ended = time.time()
    return run


async def _pump_remote(settings: Settings, hub: Hub) -> None:
    """The SSH hosts' Samples (same probes) into the same hub; their host_status too."""
    from console.engine.probe_plan import remote_specs
    from console.remote.stream import stream_remote

    specs = remote_specs(settings.targets, settings.interval)
    async for sample in stream_remote(settings.hosts, specs, settings=settings.ssh, duration=None):
        hub.publish(sample)


# ------------------------------------------------------------------------------------------ output


def _wrap(label: str, text: str, width: int, indent: int = 4) -> list[str]:
    head = " " * indent + (f"{label}: " if label else "")
    return textwrap.wrap(text, width=width, initial_indent=head, subsequent_indent=" " * (len(head)),
                         break_long_words=True, break_on_hyphens=False) or [head.rstrip()]


def render_finding(run: Run, finding: Finding, width: int) -> list[str]:
    state = run.engine.state_of(finding)
    lines = textwrap.wrap(f"{SEVERITY_WORDS.get(finding.severity, finding.severity)} {finding.layer}: "
                          f"{finding.title}", width=width, subsequent_indent="    ")
    since = ""
    if state is not None:
        since = (f" · since {time.strftime('%H:%M:%S', time.localtime(state.first_seen))} "
                 f"({state.first_seen - run.started:.1f} s in)")
    window = f" · window {finding.window_s:.0f} s" if finding.window_s else ""
    lines += _wrap("", f"{where(finding)}{since}{window} · confidence {finding.confidence:.0%}", width)
    for label, text in describe(finding):
        lines += _wrap(label, text, width)
    return lines


def render_text(run: Run, settings: Settings, out: TextIO, width: int) -> None:
    engine = run.engine
    alarms = [f for f in engine.current if f.severity in ALARMS]
    took = run.ended - run.started
    print("\n".join(textwrap.wrap(f"warroom diagnose: {len(settings.targets)} target(s) for {took:.0f} s "
                                  f"(window {WINDOW_S:.0f} s): {len(engine.current)} finding(s), {len(alarms)} "
                                  "warning or critical", width=width, subsequent_indent="  ")), file=out)
    groups = (("Targets", engine.about_targets), ("This host", engine.about_this_host))
    for heading, findings in groups:
        if not findings:
            continue
        print(f"\n{heading}", file=out)
        for finding in findings:
            print("\n".join(render_finding(run, finding, width)), file=out)
    named = {f.target for f in engine.about_targets}
    clean = [ev for ev in collect(engine.store).values() if ev.target not in named]
    if clean:
        print("\nNo finding", file=out)
        for ev in sorted(clean, key=lambda e: (e.target, e.host)):
            cleared = ", ".join(ev.ruled_out()) or "too few samples to judge"
            print("\n".join(_wrap("", f"{ev.target} from {ev.host}: {cleared}", width, indent=2)), file=out)
    if settings.diagnose and settings.diagnose.history and engine.history:
        print("\nAppeared and cleared during the run", file=out)
        for state in engine.history:
            f = state.finding
            print("\n".join(_wrap("", f"{SEVERITY_WORDS.get(f.severity, f.severity)} {f.title} "
                                      f"({state.first_seen - run.started:.1f} s to "
                                      f"{(state.cleared or run.ended) - run.started:.1f} s)", width, indent=2)),
                  file=out)


def render_json(run: Run, settings: Settings, out: TextIO) -> None:
    for finding in run.engine.current:
        out.write(json.dumps(run.record(finding), ensure_ascii=False) + "\n")
    if settings.diagnose and settings.diagnose.history:
        for state in run.engine.history:
            out.write(json.dumps(run.record(state.finding, state), ensure_ascii=False) + "\n")
    out.flush()


def run(settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    result = asyncio.run(diagnose(settings))  # ctrl+c and stop signals: console/cli.py
    try:
        if settings.json:
            render_json(result, settings, out)
        else:
            render_text(result, settings, out, max(40, min(shutil.get_terminal_size((100, 24)).columns, 120)))
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_FAILED if any(f.severity in ALARMS for f in result.engine.current) else EXIT_OK


def main(argv: list[str]) -> int:
    return run(build_diagnose_settings(diagnose_parser().parse_args(argv)))
