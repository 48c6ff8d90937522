"""What the incident widgets show, built from the running IncidentSession (the widgets do no I/O).

The Checklist pane, the Timeline pane and the Overview strip take a callable
that returns (version, data); these build that data from the session's
checklist, timeline and the findings engine.
"""

from __future__ import annotations

import time

from textual.markup import escape

from console.incident.checklist import AUTO, STEPS, Item
from console.incident.session import IncidentSession
from widgets.checklist_pane import ChecklistRow

#: A run's result lines shown under its item (the selected item and the report show them all).
RUN_LINES = 4
#: Symbol and word, so a state survives no colour (NO_COLOR, 8 colours, a colour-blind viewer).
SEVERITY_MARK = {"critical": "[b $error]✖ CRITICAL[/]", "warning": "[b $warning]▲ WARNING[/]",
                 "info": "[b $primary]● INFO[/]"}


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + "Z" if ts else ""


def _item_markup(item: Item) -> str:
    if item.running:
        mark = "[b $warning]… running[/] "
    elif item.done:
        mark = "[b $success]✔ done[/] "
    elif item.kind == AUTO and item.runs and item.runs[-1].error:
        mark = "[b $error]✖ failed[/] "
    else:
        mark = "[dim]○ to do[/] "
    kind = "run" if item.kind == AUTO else "tick"
    when = f"  [dim]{_clock(item.done_at)}[/]" if item.done_at else ""
    return f"{mark}{escape(item.title)}  [dim]({kind})[/]{when}"


def checklist_rows(session: IncidentSession) -> tuple[int, list[ChecklistRow]]:
    """Every step with its items, the last run's result lines, the step's findings and its note."""
    checklist = session.checklist
    current = checklist.current_step()
    rows: list[ChecklistRow] = []
    for number, (step, title, purpose) in enumerate(STEPS, start=1):
        done, total = checklist.progress(step)
        here = " [b $accent]◀ current[/]" if step == current else ""
        rows.append(ChecklistRow("step", "", step, f"[b]{number}. {escape(title)}[/] {done}/{total}  "
                                                   f"[dim]{escape(purpose)}[/]{here}"))
        for item in checklist.step_items(step):
            rows.append(ChecklistRow("item", item.id, step, _item_markup(item)))
            run = item.last_run
            if run is not None and run.ended is not None:
                lines = ([f"could not finish: {run.error}"] if run.error else []) + run.lines
                for line in lines[:RUN_LINES]:
                    rows.append(ChecklistRow("line", "", step, f"    [dim]{escape(line)}[/]"))
                if len(lines) > RUN_LINES:
                    rows.append(ChecklistRow("line", "", step, f"    [dim]… {len(lines) - RUN_LINES} more lines "
                                                               "(in the report: e)[/]"))
            if item.id == "fix_validation" and session.validating_until:
                left = max(0, session.validating_until - session.clock())
                rows.append(ChecklistRow("line", "", step, f"    [b $warning]measuring after the fix: "
                                                           f"{left:.0f} s left[/]"))
        if step == "root_cause":
            for finding in session.findings.current[:8]:
                key = "/".join(finding.key)
                decision = checklist.decisions.get(key)
                verdict = f"  [b]{decision.verdict}[/]" if decision else "  [dim](+ confirm, - reject)[/]"
                where = escape(f"{finding.target} from {finding.host}" if finding.target else "this host")
                rows.append(ChecklistRow("finding", key, step,
                                         f"  {SEVERITY_MARK.get(finding.severity, '')} {escape(finding.title)} "
                                         f"[dim]{where}[/]{verdict}"))
        note = checklist.notes[step]
        if note.text:
            rows.append(ChecklistRow("note", "", step, f"  [b]note:[/] {escape(note.text)}"))
    validating = int(session.validating_until - session.clock()) if session.validating_until else 0
    return session.version * 1000 + session.findings.version * 7 + validating, rows


def timeline_events(session: IncidentSession) -> tuple[int, list[tuple[str, str, str]]]:
    timeline = session.timeline
    events = [(e.to_dict()["utc"], e.kind, e.text + (" (edited)" if e.edited else "")) for e in timeline.events]
    return timeline.version, events


def strip_markup(session: IncidentSession) -> tuple[int, str]:
    checklist = session.checklist
    step = checklist.current_step()
    done, total = checklist.progress()
    step_done, step_total = checklist.progress(step)
    name = escape(session.name or "(no incident: start with --incident NAME to keep it)")
    text = (f"[b]▣ {name}[/]  step {checklist.step_number(step)}/5 [b]{escape(checklist.step_title(step))}[/] "
            f"{step_done}/{step_total}  ·  {done}/{total} done")
    left = 0
    if session.validating_until:
        left = int(max(0, session.validating_until - session.clock()))
        text += f"  ·  [b $warning]validating the fix: {left} s left[/]"
    elif checklist.fix_at:
        run = checklist.items["fix_validation"].last_run
        verdict = run.summary.get("verdict") if run is not None and run.ok else None
        if verdict:
            text += f"  ·  fix: [b]{escape(str(verdict).upper())}[/]"
    text += "  [dim](c checklist)[/]"
    return session.version * 1000 + left, text
