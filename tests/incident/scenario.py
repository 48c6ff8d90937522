"""Drive an incident through the console with the Pilot, against real loopback faults the test starts.

Used by the incident tests and by bench/incident.py. Everything is bounded: each
wait polls with a deadline and fails with what it was waiting for.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from console.incident.folder import IncidentFolder
from console.ui.app import AppConfig, WarroomApp, create_app
from console.ui.incident_screens import CountScreen, TextScreen
from widgets.checklist_pane import ChecklistPane

#: The error text the responder pastes (with a secret in it when the canary test asks).
PASTED = 'order-api: downstream timeout: Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'


def free_port() -> int:
    """A loopback port nothing listens on (bound once and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(pilot: Pilot[Any], what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> float:
    """Pause the Pilot until ``predicate`` holds; the seconds it took. Fails naming ``what``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        await pilot.pause(0.05)
    return time.monotonic() - start


@dataclass
class Outcome:
    """What the drive left behind and how long the tool made the responder wait."""

    folder: IncidentFolder
    screens: list[str] = field(default_factory=list)
    """Every screen the responder saw along the way, as text (for the canary)."""
    waits: dict[str, float] = field(default_factory=dict)
    """Seconds waited for each step, probe windows included (see ``probe_s``)."""
    probe_s: float = 0.0
    """Seconds of those that were probe windows (the before/after windows of the fix validation)."""
    report_bytes: int = 0


def screen_text(app: WarroomApp) -> str:
    """What is on the screen now, as plain text (Textual has no public call for it: the compositor's strips)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def make_app(name: str, targets: list[str], *, secrets: list[str] | None = None, interval: float = 0.25,
             pools: Any = None) -> WarroomApp:
    config = AppConfig(targets=list(targets), interval=interval, live=True, hostname="lab",
                       incident=IncidentFolder.open(name), secrets=list(secrets or []),
                       reproduce_interval=0.05, reproduce_timeout=1.0)
    if pools is not None:
        config.pools = pools
    return create_app(config)


async def run_item(pilot: Pilot[Any], app: WarroomApp, item_id: str, outcome: Outcome, timeout: float = 20.0) -> None:
    pane = app.query_one(ChecklistPane)
    pane.refresh_now()
    assert pane.select(item_id), f"no {item_id} row in the checklist"
    runs = len(app.incident.checklist.items[item_id].runs)
    started = time.monotonic()
    await pilot.press("enter")
    if isinstance(app.screen, CountScreen):
        app.screen.query_one(Input).value = "8"
        await pilot.press("enter")
    item = app.incident.checklist.items[item_id]
    await wait_until(pilot, f"{item_id} to finish", lambda: len(item.runs) > runs and item.runs[-1].ended is not None,
                     timeout)
    outcome.waits[item_id] = time.monotonic() - started
    outcome.screens.append(screen_text(app))


async def tick(pilot: Pilot[Any], app: WarroomApp, item_id: str) -> None:
    pane = app.query_one(ChecklistPane)
    pane.refresh_now()
    assert pane.select(item_id)
    await pilot.press("enter")
    await pilot.pause()


async def type_into_text_screen(pilot: Pilot[Any], app: WarroomApp, text: str) -> None:
    await wait_until(pilot, "the text screen", lambda: isinstance(app.screen, TextScreen), 5)
    area = app.screen.query_one(TextArea)
    area.text = text
    await pilot.press("ctrl+s")
    await wait_until(pilot, "the text screen to close", lambda: not isinstance(app.screen, TextScreen), 5)


async def drive(pilot: Pilot[Any], app: WarroomApp, *, pasted: str, note: str, remove_fault: Callable[[], None] | None,
                before_s: float = 3.0, full: bool = True) -> Outcome:
    """All five steps (``full``) or only the fix validation, then the report (e)."""
    assert app.config.incident is not None
    outcome = Outcome(app.config.incident)
    app.incident.max_before_s = before_s
    await wait_until(pilot, "the first target samples", lambda: any(
        k[2] and k[1] in ("tcp", "http") for k in app.store.keys(kind=None)), 10)
    await wait_until(pilot, "a finding", lambda: bool(app.findings.current), 10)
    await pilot.press("c")
    await pilot.pause()
    outcome.screens.append(screen_text(app))
    if full:
        # 1. Gather
        for item_id in ("host_snapshot", "layered_check", "versions"):
            await run_item(pilot, app, item_id, outcome)
        pane = app.query_one(ChecklistPane)
        assert pane.select("paste_error")
        await pilot.press("enter")
        await type_into_text_screen(pilot, app, pasted)
        started = time.monotonic()
        item = app.incident.checklist.items["paste_error"]
        await wait_until(pilot, "the pasted error's classification",
                         lambda: bool(item.runs) and item.runs[-1].ended is not None)
        outcome.waits["paste_error"] = time.monotonic() - started
        await tick(pilot, app, "request_context")
        # 2. Reproduce (8 times: the CountScreen is answered in run_item)
        await run_item(pilot, app, "reproduce", outcome, timeout=30)
        await tick(pilot, app, "vary_inputs")
        # 3. Root cause: the ranked findings, then confirm the top one
        await run_item(pilot, app, "findings", outcome)
        await tick(pilot, app, "cause_confirmed")
        pane.refresh_now()
        top = "/".join(app.findings.current[0].key)
        assert pane.select(top), "the top finding is not on the checklist"
        await pilot.press("plus")
        await pilot.pause()
        # a note on the root cause step (n), then edited (n again)
        await pilot.press("n")
        await type_into_text_screen(pilot, app, note.replace("NOTE", "first draft"))
        await pilot.press("n")
        await type_into_text_screen(pilot, app, note)
    # 4. Validate: the fix goes in, F marks it, the same probes run as long again
    if remove_fault is not None:
        remove_fault()
    validation = app.incident.checklist.items["fix_validation"]
    started = time.monotonic()
    await pilot.press("F")
    await wait_until(pilot, "the fix validation", lambda: validation.done, before_s * 4 + 15)
    outcome.waits["fix_validation"] = time.monotonic() - started
    summary = validation.runs[-1].summary
    outcome.probe_s += float(summary["after_end"]) - float(summary["fix_at"])  # measuring, not the tool
    outcome.screens.append(screen_text(app))
    if full:
        # 5. Monitor and prevent
        await run_item(pilot, app, "alert_rules", outcome, timeout=60)
        await run_item(pilot, app, "prevention", outcome)
        await tick(pilot, app, "rules_deployed")
    started = time.monotonic()
    await pilot.press("e")
    await wait_until(pilot, "the report", lambda: outcome.folder.report_md.is_file(), 10)
    outcome.waits["report"] = time.monotonic() - started
    outcome.report_bytes = outcome.folder.report_md.stat().st_size
    await pilot.press("1")
    await pilot.pause(0.3)
    outcome.screens.append(screen_text(app))
    await pilot.press("c")
    await pilot.pause(0.3)
    outcome.screens.append(screen_text(app))
    return outcome


def read(path: Path) -> str:
    """A file's text; a compressed recording decompressed first, so a search for secrets sees what it holds."""
    data = path.read_bytes()
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        import io

        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    elif data.startswith(b"\x1f\x8b"):
        import gzip

        data = gzip.decompress(data)
    return data.decode("utf-8")
