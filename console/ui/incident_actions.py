"""What the app does for the incident's keys and the Checklist pane's messages.

The panes only post messages and the app's bindings call these; the work
(probes, files) happens in console/incident/session.py, in workers, so the
screen never waits for a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import App

from console.diagnosis.engine import FindingsEngine
from console.engine.hub import Hub
from console.engine.probe_plan import host_specs
from console.incident.checklist import MANUAL
from console.incident.folder import IncidentFolder
from console.incident.redaction import redactor_for
from console.incident.reproduce import DEFAULT_COUNT
from console.incident.session import IncidentSession
from console.settings.pools import PoolsConfig
from console.ui.incident_screens import CountScreen, TextScreen
from probes.redact import redact_url

if TYPE_CHECKING:
    from console.remote.host import RemoteHost  # asyncssh costs start-up time: only when hosts are used


def build_session(hub: Hub, findings: FindingsEngine, remote: dict[str, RemoteHost], *, targets: list[str],
                  pools: PoolsConfig, secrets: list[str], interval: float, folder: IncidentFolder | None,
                  reproduce_interval: float, reproduce_timeout: float, record: bool = True) -> IncidentSession:
    redactor = redactor_for(targets, secrets=secrets,
                            dsns=[str(e.get("dsn", "")) for e in pools.postgres] + [str(e.get("url", ""))
                                                                                   for e in pools.redis],
                            password_envs=[str(e["password_env"]) for e in [*pools.postgres, *pools.redis]
                                           if e.get("password_env")])
    return IncidentSession(hub, findings, folder=folder, targets=targets, remote=remote,
                           host_specs=host_specs(interval, pools), redactor=redactor, clock=hub.store.clock,
                           reproduce_interval=reproduce_interval, reproduce_timeout=reproduce_timeout,
                           record=record)


def run_item(app: App[Any], session: IncidentSession, item_id: str, **options: object) -> None:
    title = session.checklist.items[item_id].label

    async def work() -> None:
        run = await session.run(item_id, **options)
        if run.error:
            app.notify(f"{title}: {run.error}", severity="warning", timeout=6)
        else:
            app.notify(f"{title}: {run.lines[0] if run.lines else 'done'}", timeout=5)

    app.notify(f"running: {title}", timeout=2)
    app.run_worker(work(), group="incident", exit_on_error=False)


def activate(app: App[Any], session: IncidentSession, item_id: str, *, live: bool) -> None:
    """Enter on an item: tick a manual one, run an automatic one (asking first when it needs input).

    ``live`` False (a replay, a console with no probes): items that probe do not run.
    """
    item = session.checklist.items[item_id]
    if item.kind == MANUAL:
        if item_id == "fix_applied":
            mark_fix(app, session)
        else:
            session.tick(item_id)
        return
    if item.running:
        app.notify(f"{item.label} is running", timeout=3)
        return
    if item_id == "fix_validation":
        app.notify("press F when the fix is applied: warroom then measures as long as before and compares",
                   timeout=5)
        return
    if item_id == "paste_error":
        def pasted(text: str | None) -> None:
            if text and text.strip():
                run_item(app, session, "paste_error", text=text)

        app.push_screen(TextScreen("Paste the error your service logged"), pasted)
        return
    if item_id in ("reproduce", "layered_check", "host_snapshot") and not live:
        app.notify("no live probes here (a replay or a test console): nothing to run", severity="warning")
        return
    if item_id == "reproduce":
        targets = session.failing_targets()

        def chosen(count: int | None) -> None:
            if count:
                run_item(app, session, "reproduce", count=count, targets=targets)

        app.push_screen(CountScreen(DEFAULT_COUNT, [redact_url(t) for t in targets]), chosen)
        return
    run_item(app, session, item_id)


def edit_note(app: App[Any], session: IncidentSession, step: str) -> None:
    note = session.checklist.notes[step]

    def saved(text: str | None) -> None:
        if text is not None:
            session.set_note(step, text.strip())
            app.notify(f"note saved: {session.checklist.step_title(step)}", timeout=2)

    app.push_screen(TextScreen(f"Note for step {session.checklist.step_number(step)}, "
                               f"{session.checklist.step_title(step)}", note.text), saved)


def mark_fix(app: App[Any], session: IncidentSession) -> None:
    if session.validating_until is not None:
        app.notify("already measuring after the fix; wait for the verdict", timeout=3)
        return
    ends = session.mark_fix()
    app.notify(f"fix applied: measuring for {ends - session.clock():.0f} s, then the before/after verdict",
               timeout=5)


def write_report(app: App[Any], session: IncidentSession) -> None:
    try:
        md, js, size = session.write_report()
    except OSError as exc:
        app.notify(f"could not write the report: {exc}", severity="error")
        return
    app.notify(f"report written: {md} ({size} bytes) and {js.name}", timeout=8)
