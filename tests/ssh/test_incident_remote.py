"""The incident's automatic items run from SSH hosts too: the reproduce rounds come from this host and prod-1."""

from __future__ import annotations

from console.incident.folder import IncidentFolder
from console.settings.hosts import parse_host_arg
from console.ui.app import AppConfig, create_app
from tests.incident.scenario import Outcome, free_port, run_item, wait_until
from tests.ssh.sshd_harness import Lab, fast_settings


async def test_reproduce_and_the_layered_check_run_from_every_host(lab: Lab) -> None:
    port = free_port()  # nothing listens: every round fails at tcp, from both vantage points
    target = f"127.0.0.1:{port}"
    config = AppConfig(targets=[target], interval=0.5, hostname="console", remote_hosts=[parse_host_arg("prod-1")],
                       ssh_settings=fast_settings(lab), incident=IncidentFolder.open("remote-repro"),
                       reproduce_interval=0.05, reproduce_timeout=1.0)
    app = create_app(config)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, "prod-1 to connect",
                         lambda: "prod-1" in app.remote and app.remote["prod-1"].state == "connected", 30)
        await pilot.press("c")
        outcome = Outcome(IncidentFolder.open("remote-repro"))
        await run_item(pilot, app, "layered_check", outcome, timeout=40)
        await run_item(pilot, app, "reproduce", outcome, timeout=60)
        checklist = app.incident.checklist
        timeline = [e.text for e in app.incident.timeline.events]
        specs_after = list(app.remote["prod-1"].specs)
    layered = checklist.items["layered_check"].runs[-1]
    assert any(line.startswith("prod-1: 127.0.0.1:") and "FAILED at tcp (refused)" in line for line in layered.lines)
    assert any(line.startswith("local: 127.0.0.1:") for line in layered.lines)
    result = checklist.items["reproduce"].runs[-1].summary["results"][0]
    assert result["per_host"] == {"local": {"failed": 8, "total": 8}, "prod-1": {"failed": 8, "total": 8}}
    assert result["phases"] == {"tcp": 16}
    hosts = {s["host"] for s in checklist.items["reproduce"].runs[-1].samples}
    assert hosts == {"local", "prod-1"}  # the Samples kept came from both vantage points
    assert "prod-1 connected" in timeline
    assert not any(s.kind == "layers" for s in specs_after)  # the extra rounds were taken off the host again
