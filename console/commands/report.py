"""`warroom report INCIDENT|RECORDING [--json] [-o FILE]`: the incident report, Markdown or JSON.

INCIDENT is a name (`warroom incidents` lists them) or an incident folder;
RECORDING is a file of Samples (`warroom --record`, `--json`). From an
incident the report has every section; from a bare recording it has what the
Samples alone can say (findings replayed through the rules, impact, the
timeline of findings and hosts, rules), and says that the checklist is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

from console.engine import paths
from console.incident.folder import NAME, IncidentError, IncidentFolder, write_atomic
from console.incident.recording import RecordingError, read_recording
from console.incident.redaction import redactor_for
from console.incident.report import ReportInput, build_report, findings_from_recording, render_markdown, rule_windows
from console.incident.timeline import from_samples
from console.settings.arguments import Parser
from console.settings.errors import UsageError
from console.settings.settings import Settings, build_settings


def build_parser() -> Parser:
    parser = Parser(prog="warroom report", description="Write an incident's report (Markdown, or JSON with --json).")
    parser.add_argument("source", metavar="INCIDENT|RECORDING",
                        help="an incident name or folder, or a recording file (JSON lines of Samples)")
    parser.add_argument("--json", action="store_true", help="the report as JSON (schema warroom.report v1)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of standard output")
    parser.add_argument("--config", metavar="FILE", help="TOML config: its secrets are masked in the report too")
    return parser


def _input_for(source: str) -> ReportInput:
    path = Path(source)
    if path.is_file():
        try:
            samples, problems = read_recording(path)
        except RecordingError as exc:
            raise UsageError(str(exc)) from None
        for problem in problems[:3]:
            print(f"warroom: skipped {problem}", file=sys.stderr)
        if not samples:
            raise UsageError(f"{path} holds no Samples: record one with warroom --record FILE or --incident NAME")
        return ReportInput(name=path.stem, source="recording", samples=samples,
                           findings=findings_from_recording(samples), timeline=from_samples(samples))
    try:
        if path.is_dir():
            folder = IncidentFolder.at(path)
        elif NAME.fullmatch(source):
            folder = IncidentFolder.open(source, create=False)
        else:
            raise IncidentError(f"{source!r} is neither a recording file nor an incident folder")
        checklist = folder.load_checklist()
        timeline = folder.load_timeline()
        findings = folder.load_findings()
        meta = folder.meta()
        samples, _ = read_recording(folder.recording_path)
    except (IncidentError, RecordingError) as exc:
        raise UsageError(f"{exc} (warroom incidents lists them; they live in {paths.incidents_dir()})") from None
    if not findings and samples:
        findings = findings_from_recording(samples)
    from console.incident.alerts import build_rules

    bad, good = rule_windows(samples, checklist)
    last_rules = checklist.items["alert_rules"].last_run
    promtool = list(last_rules.summary.get("promtool", [])) if last_rules is not None and last_rules.ok else []
    return ReportInput(name=folder.name, source="incident", samples=samples, findings=findings, checklist=checklist,
                       timeline=timeline, meta=meta, rules=build_rules(folder.name, bad, good, findings),
                       promtool=promtool)


def run(settings: Settings, source: str, output: str | None) -> int:
    data = _input_for(source)
    redactor = redactor_for(settings.targets, secrets=settings.secrets,
                            dsns=[str(e.get("dsn", "")) for e in settings.pools.postgres]
                            + [str(e.get("url", "")) for e in settings.pools.redis],
                            password_envs=[str(e["password_env"]) for e in [*settings.pools.postgres,
                                                                            *settings.pools.redis]
                                           if e.get("password_env")])
    report = build_report(data, redactor)
    if settings.json:
        import json

        text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    else:
        text = render_markdown(report)
    if output:
        try:
            write_atomic(Path(output), text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        print(f"wrote {output} ({len(text.encode())} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run(build_settings(args), args.source, args.output)
