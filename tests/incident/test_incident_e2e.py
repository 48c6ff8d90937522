"""The five steps driven with the Pilot against real loopback faults; the report, rules and secrets checked.

One full incident (module fixture): an HTTP backend that refuses every connect
(nothing listens on its port), plus a PostgreSQL DSN pointing at a port nothing
listens on. The responder gathers, pastes the error, reproduces, confirms the
cause, starts the backend (the fix), presses F, writes the rules and the report.
Secrets are planted in every input: the target URL's password and token, the
DSN's password, a value the config marks secret, Authorization and Cookie
headers and the secret in the pasted text and the note.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.incident.folder import IncidentFolder
from console.settings.pools import PoolsConfig
from tests.incident.scenario import PASTED, Outcome, drive, free_port, make_app, read, screen_text, wait_until
from tests.lab.servers import MisbehavingHTTPServer

SECRETS = {
    "url password": "CANARYurlpass77",
    "url token": "CANARYtoken88",
    "dsn password": "CANARYdsnpass99",
    "config secret": "CANARYcfgsecret66",
    "bearer header": "CANARYbearer55",
    "cookie header": "CANARYcookie44",
}
NOTE = ("NOTE: the api's pool points at the old port; the error text carried Authorization: Bearer "
        f"{SECRETS['bearer header']} and the key {SECRETS['config secret']}")


@dataclass
class Incident:
    outcome: Outcome
    folder: IncidentFolder
    data_home: Path
    target: str
    report: dict[str, Any]
    markdown: str


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incident]:
    data_home = tmp_path_factory.mktemp("incident-data")
    port, pg_port = free_port(), free_port()
    target = f"http://svc:{SECRETS['url password']}@127.0.0.1:{port}/ok?token={SECRETS['url token']}"
    dsn = f"postgresql://app:{SECRETS['dsn password']}@127.0.0.1:{pg_port}/orders"
    pasted = (PASTED.format(url=target, port=port)
              + f"\nrequest headers: Authorization: Bearer {SECRETS['bearer header']}\n"
              f"Cookie: session={SECRETS['cookie header']}; api_key={SECRETS['config secret']}")
    servers: list[MisbehavingHTTPServer] = []

    def fix() -> None:  # the backend comes up on its port: bound only now, so until now connects are refused
        servers.append(MisbehavingHTTPServer("127.0.0.1", port).start())

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(data_home))

        async def scenario() -> Outcome:
            app = make_app("lab-refused", [target], secrets=[SECRETS["config secret"]],
                           pools=PoolsConfig(postgres=[{"dsn": dsn, "interval": 1.0, "timeout": 1.0}]))
            async with app.run_test(size=(100, 32)) as pilot:
                return await drive(pilot, app, pasted=pasted, note=NOTE, remove_fault=fix)

        try:
            outcome = asyncio.run(scenario())
        finally:
            for server in servers:
                server.stop()
        folder = outcome.folder
        yield Incident(outcome, folder, data_home, target, json.loads(read(folder.report_json)),
                       read(folder.report_md))


def _section(markdown: str, title: str) -> str:
    start = markdown.index(f"\n## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end > 0 else None]


def test_every_item_of_the_five_steps_is_done_and_timestamped(incident: Incident) -> None:
    checklist = incident.report["checklist"]
    assert [s["id"] for s in checklist["steps"]] == ["gather", "reproduce", "root_cause", "validate", "monitor"]
    undone = [i["id"] for s in checklist["steps"] for i in s["items"] if not i["done"]]
    assert undone == []
    for step in checklist["steps"]:
        for item in step["items"]:
            assert isinstance(item["done_at"], float)
            if item["kind"] == "auto":
                assert item["last_run"]["ended"] >= item["last_run"]["started"]
                assert item["last_run"]["error"] is None, item


def test_automatic_items_keep_the_samples_they_measured(incident: Incident) -> None:
    checklist = json.loads(read(incident.folder.checklist_path))
    items = {i["id"]: i for s in checklist["steps"] for i in s["items"]}
    reproduce = items["reproduce"]["runs"][-1]
    kinds = {s["kind"] for s in reproduce["samples"]}
    assert {"tcp", "layers"} <= kinds
    assert sum(1 for s in reproduce["samples"] if s["kind"] == "layers") == 8  # eight rounds asked for
    assert all(s.get("error") == "refused" for s in reproduce["samples"] if s["kind"] == "tcp")
    result = reproduce["summary"]["results"][0]
    assert result["failures"] == 8 and result["phases"] == {"tcp": 8}
    assert any(c["by"] == "time" and "steady" in c["text"] for c in result["clusters"])
    snapshot = items["host_snapshot"]["runs"][-1]
    assert {"system", "conns"} <= {s["kind"] for s in snapshot["samples"]}
    assert any(line.startswith("local: load") for line in snapshot["lines"])
    versions = items["versions"]["runs"][-1]
    assert "OpenSSL" in versions["lines"][0] and "Python 3." in versions["lines"][0]


def test_pasted_error_is_classified_as_the_inner_cause_and_linked_to_probe_evidence(incident: Incident) -> None:
    items = {i["id"]: i for s in incident.report["checklist"]["steps"] for i in s["items"]}
    summary = items["paste_error"]["last_run"]["summary"]
    assert (summary["layer"], summary["kind"]) == ("tcp", "refused")
    assert any("downstream timeout" in w for w in summary["wrapped_by"])
    assert any(e["matched"] > 0 and e["target"].startswith("http://***@127.0.0.1") for e in summary["evidence"])


def test_fault_removed_mid_run_is_fixed(incident: Incident) -> None:
    ba = incident.report["before_after"]
    assert ba["verdict"] == "fixed", ba
    row = next(r for r in ba["rows"] if r["host"] == "local" and r["before"]["kind"] == "http")
    assert row["before"]["success_pct"] == 0.0 and row["after"]["success_pct"] == 100.0
    assert row["before"]["errors"].get("http:refused", 0) > 0 and row["after"]["errors"] == {}
    assert row["after"]["p99_ms"] is not None
    assert abs((ba["after_end"] - ba["fix_at"]) - (ba["fix_at"] - ba["before_start"])) < 0.5  # as long as before


def test_report_summary_and_impact(incident: Incident) -> None:
    summary, impact = incident.report["summary"], incident.report["impact"]
    assert summary["status"] == "resolved" and summary["verdict"] == "fixed"
    assert "FIXED" in summary["text"] and summary["checklist_done"] == summary["checklist_total"] == 14
    assert impact["hosts_affected"] == ["local"]
    assert any(t.startswith("http://***@127.0.0.1") for t in impact["targets_affected"])
    row = next(r for r in impact["rows"] if r["layer"] == "http")
    assert 0 < row["failure_pct"] < 100 and row["failed"] > 0  # refused before the fix, fine after
    assert impact["failing_s"] > 0
    md = incident.markdown
    assert md.startswith("# Incident report: lab-refused")
    assert "status: **resolved**" in _section(md, "Summary")
    assert "targets affected: http://***@127.0.0.1" in _section(md, "Impact")


def test_report_timeline_is_in_utc_and_holds_every_kind_of_event(incident: Incident) -> None:
    events = incident.report["timeline"]
    kinds = {e["kind"] for e in events}
    assert {"incident", "finding", "tick", "run", "fix", "note", "decision"} <= kinds
    assert all(e["utc"].endswith("Z") for e in events)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    note = next(e for e in events if e["kind"] == "note")
    assert "first draft" not in note["text"] and note["edited"] is not None  # edited in place, not appended
    section = _section(incident.markdown, "Timeline (UTC)")
    assert "**fix** fix applied" in section and "(edited " in section


def test_report_findings_ruled_out_and_decisions(incident: Incident) -> None:
    findings = incident.report["findings"]
    assert findings and findings[0]["severity"] in ("warning", "critical")
    top = findings[0]
    assert top["evidence"] and top["first_seen"] is not None
    confirmed = [f for f in findings if f.get("decision")]
    assert confirmed and confirmed[0]["decision"]["verdict"] == "confirmed"
    section = _section(incident.markdown, "Findings")
    assert "Evidence:" in section and "**confirmed** by the responder" in section
    ruled = _section(incident.markdown, "Ruled out")
    assert ruled.strip()
    for f in findings:
        for text in f.get("ruled_out", []):
            assert text in ruled


def test_report_checklist_before_after_rules_and_notes_sections(incident: Incident) -> None:
    md = incident.markdown
    checklist = _section(md, "Checklist")
    assert checklist.count("- [x]") == 14 and "- [ ]" not in checklist
    ba = _section(md, "Before and after the fix")
    assert "**Verdict: FIXED**" in ba and "| 0.0% | 100.0% |" in ba
    rules = _section(md, "Alert rules")
    assert "WarroomTargetErrorRate" in rules and "```yaml" in rules and "Prevention:" in rules
    assert "connect" in rules and "keep-alive" in rules
    notes = _section(md, "Notes")
    assert "old port" in notes


def test_report_json_is_versioned_and_carries_every_section(incident: Incident) -> None:
    data = incident.report
    assert data["schema"] == "warroom.report" and data["version"] == 1
    from console.incident.report import SECTIONS

    for key in SECTIONS:
        assert key in data, key
    doc = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text()
    for key in [*SECTIONS, "schema", "version"]:
        assert f"`{key}`" in doc, f"docs/report.md does not document {key}"


def test_generated_rules_pass_promtool_check_and_fire_only_on_the_measured_series(incident: Incident) -> None:
    folder = incident.folder.path
    rules = read(folder / "alerts.yml")
    assert "probe_success" in rules
    check = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=folder, capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=folder, capture_output=True,
                          text=True, timeout=60, check=False)
    assert test.returncode == 0, test.stdout + test.stderr
    tests = read(folder / "alerts.test.yml")
    assert tests.count("exp_alerts: []") == tests.count("- eval_time:") // 2  # one quiet (healthy) case per rule
    # The test can fail: swap a healthy series for an all-failing one and promtool must object.
    broken = tests.replace('values: "1x', 'values: "0x', 1)
    (folder / "broken.test.yml").write_text(broken)
    failed = subprocess.run(["promtool", "test", "rules", "broken.test.yml"], cwd=folder, capture_output=True,
                            text=True, timeout=60, check=False)
    assert failed.returncode != 0


def test_no_planted_secret_reaches_any_output(incident: Incident) -> None:
    folder = incident.folder.path
    outputs = {path.name: read(path) for path in folder.iterdir() if path.is_file()}
    assert {"recording.jsonl.zst", "timeline.json", "checklist.json", "report.md", "report.json", "alerts.yml",
            "alerts.test.yml", "findings.json", "meta.json"} <= set(outputs)
    assert '"kind":"tcp"' in outputs["recording.jsonl.zst"]  # decompressed: the search sees the Samples
    outputs["screens"] = "\n".join(incident.outcome.screens)
    assert "Checklist" in outputs["screens"] and "127.0.0.1" in outputs["screens"]
    for what, secret in SECRETS.items():
        leaks = [name for name, text in outputs.items() if secret in text]
        assert leaks == [], f"the {what} leaked into {leaks}"
    # ... and the inputs did reach the outputs (masked), so the search was not vacuous
    assert "***" in outputs["report.md"] and "Authorization: ***" in outputs["checklist.json"]


def test_cli_report_and_incidents_list(incident: Incident, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from console.cli import main

    monkeypatch.setenv("XDG_DATA_HOME", str(incident.data_home))
    assert main(["incidents"]) == 0
    listing = capsys.readouterr().out
    assert "lab-refused" in listing and "14/14" in listing
    assert main(["report", "lab-refused", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["before_after"]["verdict"] == "fixed" and data["incident"] == "lab-refused"
    out = tmp_path / "r.md"
    assert main(["report", str(incident.folder.path), "-o", str(out)]) == 0
    assert out.read_text().startswith("# Incident report: lab-refused")
    assert main(["report", str(incident.folder.recording_path)]) == 0  # a bare recording
    bare = capsys.readouterr().out
    assert "from recording" in bare and "No checklist" in bare
    for secret in SECRETS.values():
        assert secret not in bare and secret not in out.read_text()
    assert main(["report", "no-such-incident"]) == 2
    assert "no incident called" in capsys.readouterr().err


async def test_resume_loses_nothing(incident: Incident, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(incident.data_home))
    before = json.loads(read(incident.folder.checklist_path))
    app = make_app("lab-refused", [])  # no target given: the saved ones are probed (this one has a password: not)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        session = app.incident
        assert session.resumed
        assert session.checklist.progress() == (14, 14)
        assert session.checklist.notes["root_cause"].text.startswith("NOTE")
        # Findings about this host (another process's sockets on a shared machine) may land after it.
        own = [e for e in session.timeline.events if not e.kind.startswith("finding")]
        assert own[-1].text.startswith("incident lab-refused resumed")
        saved = next(i for s in before["steps"] for i in s["items"] if i["id"] == "reproduce")
        assert len(session.checklist.items["reproduce"].runs[-1].samples) == len(saved["runs"][-1]["samples"])
        await pilot.press("1")
        await wait_until(pilot, "the strip", lambda: "step 5/5" in screen_text(app), 3)
