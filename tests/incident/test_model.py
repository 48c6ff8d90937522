"""The checklist, timeline and folder as plain data: ticks and runs timestamped, any order, resume loses nothing."""

from __future__ import annotations

import time

import pytest

from console.incident.checklist import STEP_IDS, Checklist, ChecklistError
from console.incident.folder import IncidentError, IncidentFolder, list_incidents
from console.incident.redaction import Redactor, redactor_for
from console.incident.timeline import Timeline
from console.incident.validate import judge, validate, window_stats
from probes.samples import Sample


def test_steps_can_be_done_in_any_order_and_every_tick_is_timestamped() -> None:
    checklist = Checklist()
    assert checklist.current_step() == "gather"
    checklist.tick("rules_deployed", 100.0)  # step 5 first
    assert checklist.items["rules_deployed"].done and checklist.items["rules_deployed"].done_at == 100.0
    checklist.tick("rules_deployed", 101.0)  # and untick it
    assert not checklist.items["rules_deployed"].done
    assert [(t.ts, t.done) for t in checklist.items["rules_deployed"].ticks] == [(100.0, True), (101.0, False)]
    run = checklist.start_run("versions", 102.0)
    assert not checklist.items["versions"].done and checklist.items["versions"].running
    run.ended = 103.0
    assert checklist.items["versions"].done_at == 103.0
    assert checklist.progress("gather") == (1, 5)
    with pytest.raises(ChecklistError):
        checklist.tick("versions", 104.0)  # automatic items run; they are not ticked
    checklist.selected_step = "monitor"
    assert checklist.current_step() == "monitor"


def test_checklist_round_trips_through_its_json() -> None:
    checklist = Checklist()
    checklist.tick("request_context", 1.0)
    run = checklist.start_run("reproduce", 2.0)
    run.samples = [Sample("tcp", "127.0.0.1:1", 2.5, {}, error="refused", message="no").to_dict()]
    run.lines, run.summary, run.ended = ["1 of 1 failed"], {"failures": 1}, 3.0
    checklist.set_note("gather", "first", 4.0)
    checklist.set_note("gather", "second", 5.0)
    checklist.decide("tcp_unreachable/local/127.0.0.1:1", "confirmed", "refused", 6.0)
    checklist.mark_fix(7.0)
    again = Checklist.from_dict(checklist.to_dict())
    assert again.to_dict() == checklist.to_dict()
    assert again.items["reproduce"].runs[0].sample_objects()[0].error == "refused"
    assert (again.notes["gather"].text, again.notes["gather"].created, again.notes["gather"].edited) == \
        ("second", 4.0, 5.0)
    assert again.fix_at == 7.0 and again.items["fix_applied"].done
    with pytest.raises(ChecklistError):
        Checklist.from_dict({"version": 99, "steps": []})


def test_a_note_is_one_timeline_entry_edited_in_place() -> None:
    timeline = Timeline()
    timeline.add(10.0, "tick", "ticked")
    first = timeline.note(11.0, "gather", "Gather: api 502s since 12:00")
    timeline.note(12.0, "gather", "Gather: api 502s since 11:55")
    assert [e.kind for e in timeline.events] == ["tick", "note"]
    assert first.text.endswith("11:55") and first.edited == 12.0 and first.ts == 11.0
    assert Timeline.from_list(timeline.to_list()).to_list() == timeline.to_list()


def test_folder_keeps_everything_across_a_resume() -> None:
    folder = IncidentFolder.open("db-outage")
    meta, resumed = folder.start(["127.0.0.1:5432"], [], 1000.0)
    assert not resumed and meta["targets"] == ["127.0.0.1:5432"]
    checklist = Checklist()
    checklist.tick("request_context", 1001.0)
    folder.save_checklist(checklist)
    timeline = Timeline()
    timeline.add(1001.0, "tick", "ticked: request context")
    folder.save_timeline(timeline)
    again = IncidentFolder.open("db-outage")
    meta, resumed = again.start(["127.0.0.1:6379"], [], 2000.0)
    assert resumed and meta["targets"] == ["127.0.0.1:5432", "127.0.0.1:6379"] and len(meta["sessions"]) == 2
    assert again.load_checklist().items["request_context"].done
    assert again.load_timeline().events[0].text == "ticked: request context"
    listed = list_incidents()
    assert [s.name for s in listed] == ["db-outage"] and listed[0].done == 1
    with pytest.raises(IncidentError):
        IncidentFolder.open("../escape")
    with pytest.raises(IncidentError):
        IncidentFolder.open("missing", create=False)


def _series(target: str, start: float, n: int, ok_every: int, rtt: float) -> list[Sample]:
    out = []
    for i in range(n):
        if ok_every and i % ok_every == 0:
            out.append(Sample("tcp", target, start + i, {"rtt_ms": rtt}))
        else:
            out.append(Sample("tcp", target, start + i, {}, error="refused", message="refused"))
    return out


def test_verdicts_fixed_improved_not_fixed_worse() -> None:
    def stats(ok: int, n: int, rtt: float) -> object:
        return window_stats(_series("t", 0, n, 0, rtt)[: n - ok] + [Sample("tcp", "t", 1, {"rtt_ms": rtt})] * ok)

    assert judge(stats(0, 20, 1), stats(20, 20, 1.1))[0] == "fixed"  # type: ignore[arg-type]
    assert judge(stats(5, 20, 1), stats(20, 20, 1.3))[0] == "improved"  # type: ignore[arg-type]
    assert judge(stats(0, 20, 1), stats(10, 20, 1))[0] == "improved"  # type: ignore[arg-type]
    assert judge(stats(5, 20, 1), stats(5, 20, 1))[0] == "not fixed"  # type: ignore[arg-type]
    assert judge(stats(20, 20, 1), stats(10, 20, 1))[0] == "worse"  # type: ignore[arg-type]
    assert judge(stats(19, 20, 1), stats(19, 20, 1))[0] == "fixed"  # type: ignore[arg-type]  # 95%


def test_validate_judges_the_targets_that_failed_before() -> None:
    now = time.time()
    before = _series("bad", now - 10, 10, 0, 1.0) + _series("good", now - 10, 10, 1, 1.0)
    after = _series("bad", now, 10, 1, 1.0) + _series("good", now, 10, 1, 1.0)
    result = validate(before + after, fix_at=now, before_start=now - 10, after_end=now + 10)
    assert result.verdict == "fixed"
    rows = {r.target: r for r in result.rows}
    assert rows["bad"].before.success_pct == 0 and rows["bad"].after.success_pct == 100
    assert rows["bad"].before.errors == {"tcp:refused": 10}
    still = validate(before + _series("bad", now, 10, 0, 1.0), fix_at=now, before_start=now - 10, after_end=now + 10)
    assert still.verdict == "not fixed"


def test_redactor_masks_urls_dsns_headers_and_config_secrets() -> None:
    redactor = redactor_for(["https://svc:hunter22@api.lab/x?token=abc123"], secrets=["s3cr3t-value"],
                            dsns=["postgresql://app:pgpass99@127.0.0.1/orders"])
    text = ("GET https://svc:hunter22@api.lab/x?token=abc123 failed; Authorization: Bearer eyJhbGciOi.xyz; "
            "Cookie: session=deadbeef; dsn host=db password=pgpass99; value s3cr3t-value")
    out = redactor.text(text)
    for secret in ("hunter22", "abc123", "eyJhbGciOi", "deadbeef", "pgpass99", "s3cr3t-value"):
        assert secret not in out, out
    assert "api.lab/x" in out and "failed" in out
    assert Redactor().text("plain text") == "plain text"
    nested = redactor.value({"a": ["hunter22", {"k": "x s3cr3t-value"}]})
    assert "hunter22" not in str(nested) and "s3cr3t" not in str(nested)
    assert STEP_IDS[0] == "gather"


def test_pool_use_before_and_after_is_in_the_table() -> None:
    def pools(ts: float, used: int) -> Sample:
        return Sample("pools", "", ts, {"gauges": [{"name": "orders-db", "used": used, "max": 20,
                                                    "util_pct": 100.0 * used / 20}]})

    samples = [pools(i, 20) for i in range(10)] + [pools(10 + i, 6) for i in range(10)]
    samples += _series("db:5432", 0, 10, 0, 1.0) + _series("db:5432", 10, 10, 1, 1.0)
    result = validate(samples, fix_at=10, before_start=0, after_end=20)
    assert [(p.name, p.before_max_pct, p.after_max_pct, p.maximum) for p in result.pools] == \
        [("orders-db", 100.0, 30.0, 20)]
    assert any("pool orders-db (local): max use 100% -> 30%" in line for line in result.lines())


def test_hosts_connecting_and_dropping_make_one_entry_per_change() -> None:
    from console.incident.timeline import from_samples

    def status(ts: float, state: str, message: str = "") -> Sample:
        return Sample("host_status", "", ts, {"state": state}, host="prod-2",
                      error=None if state == "connected" else state, message=message or None)

    timeline = from_samples([status(1, "connecting"), status(2, "connected"), status(3, "connected"),
                             status(4, "reconnecting", "link lost; reconnecting in 1 s"),
                             status(5, "reconnecting", "again"), status(6, "connected")])
    assert [e.text for e in timeline.events] == ["prod-2 connected", "prod-2 dropped: link lost; reconnecting in 1 s",
                                                 "prod-2 connected"]
