"""The before/after verdict when the fault stays: a proxy that answers 504 before and after F."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.incident.scenario import drive, make_app, read
from tests.lab.servers import MisbehavingHTTPServer


async def test_fault_left_in_place_is_not_fixed(http_server: Callable[..., MisbehavingHTTPServer]) -> None:
    server = http_server()
    target = server.url("/status/504")
    app = make_app("lab-504", [target])
    async with app.run_test(size=(80, 24)) as pilot:
        outcome = await drive(pilot, app, pasted="", note="", remove_fault=None, before_s=2.0, full=False)
        strip = outcome.screens[-2]
    report = json.loads(read(outcome.folder.report_json))
    ba = report["before_after"]
    assert ba["verdict"] == "not fixed", ba
    row = next(r for r in ba["rows"] if r["target"] == target)
    assert row["before"]["success_pct"] == 0.0 and row["after"]["success_pct"] == 0.0
    assert row["after"]["errors"].get("http:504", 0) > 0
    assert report["summary"]["status"] == "fix not fixed"
    assert "fix: NOT FIXED" in strip  # the Overview strip says so
    # the report's rules are built from the before window even when the rules item was never run
    assert "WarroomHTTP5xx" in {r["alert"] for r in report["alert_rules"]["rules"]}
