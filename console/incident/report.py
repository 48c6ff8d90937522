"""The incident report: one dict (the JSON, schema "warroom.report" version 1) and its Markdown.

Sections, in order: summary; impact (targets and hosts affected, failure
rates, duration); timeline in UTC; findings with evidence and why-chain; what
was ruled out; checklist state; the before/after table; the alert rules;
notes. The JSON carries the same content; docs/report.md documents it. The
whole dict is redacted before anything is rendered, so the Markdown and the
JSON can hold no secret the redactor knows of.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from console import __version__
from console.diagnosis.engine import FindingState
from console.diagnosis.finding import Finding
from console.incident.alerts import RuleSet, build_rules
from console.incident.checklist import STEPS, Checklist
from console.incident.redaction import Redactor
from console.incident.timeline import Timeline, utc
from console.incident.validate import JUDGED_KINDS, succeeded
from probes.samples import Sample

SCHEMA = "warroom.report"
SCHEMA_VERSION = 1
SECTIONS = ("summary", "impact", "timeline", "findings", "ruled_out", "checklist", "before_after", "alert_rules",
            "notes")
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def finding_dict(finding: Finding, state: FindingState | None = None) -> dict[str, Any]:
    """A Finding as the report, findings.json and the timeline keep it."""
    out: dict[str, Any] = {
        "key": "/".join(finding.key), "rule": finding.rule, "title": finding.title, "severity": finding.severity,
        "layer": finding.layer, "confidence": finding.confidence, "target": finding.target, "host": finding.host,
        "evidence": list(finding.evidence), "chain": list(finding.chain), "ruled_out": list(finding.ruled_out),
        "next_step": finding.next_step, "window_s": finding.window_s,
    }
    if state is not None:
        out.update(first_seen=state.first_seen, last_seen=state.last_seen, cleared=state.cleared)
    return out


@dataclass
class ReportInput:
    """Everything a report is made of, from a live session, an incident folder or a bare recording."""

    name: str
    source: str
    """"incident" (a folder or a live session) or "recording"."""
    samples: Sequence[Sample]
    findings: list[dict[str, Any]]
    checklist: Checklist | None = None
    timeline: Timeline = field(default_factory=Timeline)
    meta: dict[str, Any] = field(default_factory=dict)
    rules: RuleSet | None = None
    promtool: list[str] = field(default_factory=list)
    generated_at: float = field(default_factory=time.time)


#: The Sample kinds alert rules are built from.
RULE_KINDS = (*JUDGED_KINDS, "tls", "conns", "pg_pool")


def rule_windows(samples: Sequence[Sample], checklist: Checklist | None) -> tuple[list[Sample], list[Sample]]:
    """(incident samples, healthy samples) for the alert rules.

    With a validated fix: the before window is the incident, and the after window is the healthy
    baseline when the verdict was "fixed". Without one: everything recorded is the incident.
    """
    everything = [s for s in samples if s.kind in RULE_KINDS]
    run = None
    if checklist is not None:
        run = next((r for r in reversed(checklist.items["fix_validation"].runs) if r.ok), None)
    if run is None:
        return everything, []
    fix_at, start, end = run.summary["fix_at"], run.summary["before_start"], run.summary["after_end"]
    bad = [s for s in everything if s.ts < fix_at]
    good = [s for s in everything if fix_at <= s.ts <= end] if run.summary.get("verdict") == "fixed" else []
    return bad or [s for s in everything if s.ts >= start], good


def findings_from_recording(samples: Sequence[Sample], *, steps: int = 120) -> list[dict[str, Any]]:
    """Replay a recording through the rules, ``steps`` times along its span, to get its findings and their times."""
    from console.diagnosis.engine import FindingsEngine
    from console.engine.store import Store

    ordered = sorted((s for s in samples if s.kind != "finding"), key=lambda s: s.ts)
    if not ordered:
        return []
    now = [ordered[0].ts]
    store = Store(clock=lambda: now[0], full_detail_s=None)  # the report reads every detail
    engine = FindingsEngine(store)
    start, end = ordered[0].ts, ordered[-1].ts
    step = max((end - start) / steps, 1.0)
    index = 0
    t = start
    while True:
        t = min(t + step, end)
        while index < len(ordered) and ordered[index].ts <= t:
            store.add(ordered[index])
            index += 1
        now[0] = t
        engine.run_once(now=t)
        if t >= end:
            break
    out = [finding_dict(f, engine.state_of(f)) for f in engine.current]
    return out + [finding_dict(s.finding, s) for s in reversed(engine.history)]


def _impact(samples: Sequence[Sample]) -> dict[str, Any]:
    per: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        if sample.target and sample.kind in JUDGED_KINDS:
            per.setdefault((sample.host, sample.target), []).append(sample)
    rows: list[dict[str, Any]] = []
    for (host, target), all_samples in sorted(per.items()):
        by_kind = {k: [s for s in all_samples if s.kind == k] for k in JUDGED_KINDS}
        kind = next(k for k in JUDGED_KINDS if by_kind[k])
        judged = by_kind[kind]
        failed = [s for s in judged if not succeeded(s)]
        errors = Counter(f"{s.kind}:{s.error}" if s.error else f"http:{s.fields.get('status')}"
                         for s in all_samples if not succeeded(s))
        rows.append({"host": host, "target": target, "layer": kind, "total": len(judged), "failed": len(failed),
                     "failure_pct": round(100.0 * len(failed) / len(judged), 1),
                     "first_failure": failed[0].ts if failed else None,
                     "last_failure": failed[-1].ts if failed else None,
                     "error_kinds": dict(errors.most_common(6))})
    affected = [r for r in rows if r["failed"]]
    times = [s.ts for s in samples]
    first = min((r["first_failure"] for r in affected), default=None)
    last = max((r["last_failure"] for r in affected), default=None)
    return {
        "targets_affected": sorted({r["target"] for r in affected}),
        "hosts_affected": sorted({r["host"] for r in affected}),
        "targets_probed": sorted({r["target"] for r in rows}),
        "hosts": sorted({r["host"] for r in rows}),
        "rows": rows,
        "recorded_from": min(times) if times else None, "recorded_to": max(times) if times else None,
        "failing_from": first, "failing_to": last,
        "failing_s": round(last - first, 1) if first is not None and last is not None else 0.0,
    }


def _validation(checklist: Checklist | None) -> dict[str, Any] | None:
    if checklist is None:
        return None
    run = next((r for r in reversed(checklist.items["fix_validation"].runs) if r.ok), None)
    return dict(run.summary) if run else None


def _ruled_out(findings: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for f in findings:
        for text in f.get("ruled_out", []):
            key = (str(f.get("target", "")), str(text))
            if key not in seen:
                seen.add(key)
                out.append({"target": str(f.get("target", "")), "host": str(f.get("host", "")), "text": str(text),
                            "by": str(f.get("title", ""))})
    return out


def _checklist_section(checklist: Checklist | None) -> dict[str, Any] | None:
    if checklist is None:
        return None
    data = checklist.to_dict()
    for step in data["steps"]:
        for item in step["items"]:
            runs = item.pop("runs")
            last = runs[-1] if runs else None
            item["runs"] = len(runs)
            item["last_run"] = None if last is None else {
                "started": last["started"], "ended": last["ended"], "error": last["error"], "lines": last["lines"],
                "samples": len(last["samples"]), "summary": last["summary"]}
    return data


def build_report(data: ReportInput, redactor: Redactor) -> dict[str, Any]:
    findings = sorted(data.findings, key=lambda f: (f.get("cleared") is not None,
                                                    SEVERITY_ORDER.get(str(f.get("severity")), 9),
                                                    -float(f.get("confidence") or 0)))
    decisions = {d.key: d for d in data.checklist.decisions.values()} if data.checklist else {}
    for f in findings:
        decision = decisions.get(str(f.get("key")))
        f["decision"] = None if decision is None else {"verdict": decision.verdict, "ts": decision.ts}
    impact = _impact(data.samples)
    validation = _validation(data.checklist)
    rules = data.rules
    if rules is None:
        rules = build_rules(data.name, [s for s in data.samples], findings=findings)
    top = next((f for f in findings if f.get("severity") in ("critical", "warning")), None)
    checklist = data.checklist
    done, total = checklist.progress() if checklist else (0, 0)
    if validation:
        status = "resolved" if validation.get("verdict") == "fixed" else f"fix {validation.get('verdict')}"
    else:
        status = "open"
    text = (f"{len(impact['targets_affected'])} of {len(impact['targets_probed'])} targets failed"
            + (f" ({', '.join(impact['targets_affected'])}), seen from {', '.join(impact['hosts_affected'])}. "
               if impact["targets_affected"] else ". "))
    text += f"Top finding: {top['title']} ({top['layer']} layer). " if top else "No warning or critical finding. "
    text += (f"Fix validated: {str(validation.get('verdict', '')).upper()} ({validation.get('why', '')})."
             if validation else "The fix has not been validated (press F after applying it).")
    report: dict[str, Any] = {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "incident": data.name, "source": data.source,
        "generated_at": data.generated_at, "generated_utc": utc(data.generated_at), "warroom": __version__,
        "summary": {"text": text, "status": status, "top_finding": top["title"] if top else None,
                    "verdict": validation.get("verdict") if validation else None,
                    "created": data.meta.get("created"), "checklist_done": done, "checklist_total": total,
                    "current_step": checklist.current_step() if checklist else None},
        "impact": impact,
        "recording": recording_status(data),
        "timeline": data.timeline.to_list(),
        "findings": findings,
        "ruled_out": _ruled_out(findings),
        "checklist": _checklist_section(checklist),
        "before_after": validation,
        "alert_rules": {"group": rules.group, "yaml": rules.rules_yaml(), "rules": [r.to_dict() for r in rules.rules],
                        "skipped": rules.skipped, "prevention": [a.to_dict() for a in rules.advice],
                        "promtool": list(data.promtool)},
        "notes": [{"step": step, "title": title, "text": checklist.notes[step].text,
                   "created": checklist.notes[step].created, "edited": checklist.notes[step].edited}
                  for step, title, _ in STEPS if checklist and checklist.notes[step].text],
    }
    return redactor.value(report)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ Markdown


def _t(ts: Any) -> str:
    return utc(float(ts)) if isinstance(ts, (int, float)) else "-"


def _cell(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}%"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


def recording_status(data: ReportInput) -> dict[str, Any] | None:
    """Which of an incident's sessions recorded their Samples (--no-record ones did not); None for a bare
    recording, which is the recording."""
    if data.source != "incident":
        return None
    sessions = [s for s in data.meta.get("sessions", []) if isinstance(s, dict)]
    unrecorded = sum(1 for s in sessions if s.get("recorded") is False)
    if not sessions or not unrecorded:
        text = "every session recorded its Samples"
    elif unrecorded == len(sessions):
        text = ("no Sample recording: every session ran with --no-record (the checklist, its runs' Samples and "
                "the timeline are kept; there is nothing for warroom replay)")
    else:
        text = (f"{unrecorded} of {len(sessions)} sessions ran with --no-record: their Samples are not in the "
                "recording (the checklist and the timeline are)")
    return {"sessions": len(sessions), "not_recorded": unrecorded, "text": text}


def render_markdown(report: dict[str, Any]) -> str:
    out: list[str] = [f"# Incident report: {report['incident']}", "",
                      f"Generated {report['generated_utc']} by warroom {report['warroom']} "
                      f"(report schema {report['schema']} v{report['version']}, from {report['source']}).", ""]
    summary = report["summary"]
    out += ["## Summary", "", summary["text"], "", f"- status: **{summary['status']}**"]
    if summary.get("checklist_total"):
        out.append(f"- checklist: {summary['checklist_done']} of {summary['checklist_total']} items done, "
                   f"current step: {summary['current_step']}")
    recording = report.get("recording")
    if recording and recording.get("not_recorded"):
        out.append(f"- recording: {recording['text']}")
    impact = report["impact"]
    out += ["", "## Impact", "",
            f"- targets affected: {', '.join(impact['targets_affected']) or 'none'} "
            f"(of {len(impact['targets_probed'])} probed)",
            f"- hosts affected: {', '.join(impact['hosts_affected']) or 'none'} (vantage points: "
            f"{', '.join(impact['hosts']) or 'none'})",
            f"- failing from {_t(impact['failing_from'])} to {_t(impact['failing_to'])} "
            f"({impact['failing_s']:.0f} s); recorded {_t(impact['recorded_from'])} to {_t(impact['recorded_to'])}",
            ""]
    out += _table(("target", "host", "layer", "failed", "of", "failure rate", "error kinds"),
                  [(r["target"], r["host"], r["layer"], r["failed"], r["total"], _pct(r["failure_pct"]),
                    ", ".join(f"{k} {v}" for k, v in r["error_kinds"].items())) for r in impact["rows"]])
    out += ["", "## Timeline (UTC)", ""]
    if report["timeline"]:
        for event in report["timeline"]:
            edited = f" (edited {_t(event['edited'])})" if event.get("edited") else ""
            out.append(f"- {event['utc']} **{event['kind']}** {event['text']}{edited}")
    else:
        out.append("Nothing was recorded on the timeline.")
    out += ["", "## Findings", ""]
    if not report["findings"]:
        out.append("No finding.")
    for i, f in enumerate(report["findings"], start=1):
        where = f"{f['target']} from {f['host']}" if f.get("target") else f"this host ({f.get('host', 'local')})"
        seen = ""
        if f.get("first_seen") is not None:
            seen = f" — first seen {_t(f['first_seen'])}, last seen {_t(f.get('last_seen'))}"
            seen += f", cleared {_t(f['cleared'])}" if f.get("cleared") is not None else ", still holding"
        decision = f" — **{f['decision']['verdict']}** by the responder" if f.get("decision") else ""
        out += [f"### {i}. [{f['severity']}] {f['title']}", "",
                f"{f['layer']} layer, {where}, confidence {float(f.get('confidence') or 0):.0%}{seen}{decision}", ""]
        if f.get("chain"):
            out += ["Why-chain: " + " ← ".join(f["chain"]), ""]
        if f.get("evidence"):
            out += ["Evidence:", "", "```"] + [str(e) for e in f["evidence"]] + ["```", ""]
        if f.get("next_step"):
            out += [f"Next: {f['next_step']}", ""]
    out += ["## Ruled out", ""]
    if report["ruled_out"]:
        out += [f"- {r['text']} ({r['target'] or 'this host'}; from \"{r['by']}\")" for r in report["ruled_out"]]
    else:
        out.append("Nothing was ruled out by the findings.")
    out += ["", "## Checklist", ""]
    checklist = report.get("checklist")
    if checklist is None:
        out.append("No checklist: this report was made from a recording alone.")
    else:
        for step in checklist["steps"]:
            out += [f"### {step['title']} ({step['done']} of {step['total']})", ""]
            for item in step["items"]:
                mark = "x" if item["done"] else " "
                when = f" — {_t(item['done_at'])}" if item.get("done_at") else ""
                runs = f" ({item['runs']} runs)" if item["kind"] == "auto" and item["runs"] else ""
                out.append(f"- [{mark}] {item['title']}{when}{runs}")
                last = item.get("last_run")
                if last:
                    if last.get("error"):
                        out.append(f"  - could not finish: {last['error']}")
                    out += [f"  - {line}" for line in last["lines"][:24]]
            if step["note"]["text"]:
                out += ["", f"Note: {step['note']['text']}"]
            out.append("")
        if checklist["decisions"]:
            out += ["Decisions on findings:", ""]
            out += [f"- {_t(d['ts'])} {d['verdict']}: {d['title']}" for d in checklist["decisions"]]
            out.append("")
    out += ["## Before and after the fix", ""]
    ba = report.get("before_after")
    if not ba:
        out.append("Not validated: press F when the fix is applied; warroom then measures as long as the "
                   "before window and compares.")
    else:
        out += [f"Fix applied {_t(ba['fix_at'])}; {ba['window_s']:.0f} s before vs the same after. "
                f"**Verdict: {str(ba['verdict']).upper()}** ({ba['why']}).", ""]
        out += _table(("target", "host", "success before", "after", "p50 before", "after", "p99 before", "after",
                       "loss before", "after", "errors before", "errors after", "verdict"),
                      [(r["target"], r["host"], _pct(r["before"]["success_pct"]), _pct(r["after"]["success_pct"]),
                        _ms(r["before"]["p50_ms"]), _ms(r["after"]["p50_ms"]), _ms(r["before"]["p99_ms"]),
                        _ms(r["after"]["p99_ms"]), _pct(r["before"]["loss_pct"]), _pct(r["after"]["loss_pct"]),
                        ", ".join(f"{k} {v}" for k, v in r["before"]["errors"].items()),
                        ", ".join(f"{k} {v}" for k, v in r["after"]["errors"].items()), r["verdict"])
                       for r in ba["rows"]])
        if ba.get("pools"):
            out += ["", *_table(("pool", "host", "max use before", "after", "max"),
                                 [(p["name"], p["host"], _pct(p["before_max_pct"]), _pct(p["after_max_pct"]), p["max"])
                                  for p in ba["pools"]])]
    rules = report["alert_rules"]
    out += ["", "## Alert rules", ""]
    if rules["rules"]:
        out += [f"- **{r['alert']}** ({r['severity']}, for {r['for']}): {r['summary']} — measured: {r['measured']}"
                for r in rules["rules"]]
    else:
        out.append("No rule: nothing failed often enough to alert on.")
    out += [f"- no rule: {text}" for text in rules["skipped"]]
    out += [f"- {line}" for line in rules["promtool"]]
    out += ["", "```yaml", rules["yaml"].rstrip(), "```", "", "Prevention:", ""]
    out += [f"- {a['area']}: {a['text']} ({a['why']})" for a in rules["prevention"]]
    out += ["", "## Notes", ""]
    if report["notes"]:
        for note in report["notes"]:
            edited = f", edited {_t(note['edited'])}" if note.get("edited") else ""
            out += [f"### {note['title']} ({_t(note['created'])}{edited})", "", note["text"], ""]
    else:
        out.append("No notes.")
    return "\n".join(out).rstrip() + "\n"
