"""Each fault of the issue-10 contract, through `warroom diagnose`, must give the right top finding.

The faults are real (tests/lab/faults.py): servers, resolvers and links in
namespaces, and the command runs inside the lab's client namespace, whose
resolv.conf, hosts file and trust store are the lab's. Scenarios of one layer
share one run (`warroom diagnose T1 T2 ... --json --history --duration D`),
each with its own targets; a scenario's top finding is the first finding
printed about its faulty target. The healthy controls of every run must never
raise a warning or critical finding, and the healthy scenarios must raise none
at all, at any moment (the run's history included). Each scenario's time to
its right finding (first_seen minus the run's start) is printed.

After each run its scenarios are healed, so what one fault leaves behind (a
CLOSE_WAIT leak, a full PostgreSQL) does not reach the next run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab import faults
from tests.lab.faults import DURATIONS, RUNS, DiagnoseRun, FaultLab
from tests.lab.netns import Lab

pytestmark = pytest.mark.system

#: The healthy run first: nothing any fault leaves behind may reach it.
ORDER = ("healthy", "dns", "tcp", "tls", "http", "pool", "path")
SCENARIOS = [(run, name) for run in ORDER for name in RUNS[run]]


class Runs:
    """Each group's scenarios, built and diagnosed once, on first use; healed after their run."""

    def __init__(self, lab: FaultLab) -> None:
        self.lab = lab
        self.done: dict[str, DiagnoseRun] = {}

    def get(self, group: str) -> DiagnoseRun:
        if group not in self.done:
            scenarios = [faults.BUILDERS[name](self.lab) for name in RUNS[group]]
            try:
                self.done[group] = faults.diagnose(self.lab, scenarios, DURATIONS[group])
            finally:
                for scenario in scenarios:
                    scenario.heal()
        return self.done[group]


@pytest.fixture(scope="module")
def runs(lab_session: None) -> Iterator[Runs]:
    fault_lab = FaultLab(Lab())
    try:
        yield Runs(fault_lab)
    finally:
        fault_lab.close()


@pytest.mark.parametrize(("group", "name"), SCENARIOS, ids=[name for _group, name in SCENARIOS])
def test_right_top_finding(runs: Runs, group: str, name: str, capsys: pytest.CaptureFixture[str],
                           record_property: object) -> None:
    run = runs.get(group)
    assert run.returncode in (0, 1), f"diagnose exited {run.returncode}: {run.stderr[-2000:]}"
    [scenario] = [s for s in run.scenarios if s.name == name]
    verdict = faults.judge(scenario, run)
    with capsys.disabled():
        when = f"{verdict.seconds:.1f} s" if verdict.seconds is not None else "-"
        print(f"\n  {name}: {'right' if verdict.right else 'WRONG'} after {when} (run {group}, "
              f"{DURATIONS[group]:g} s): {'; '.join(verdict.got) or 'no alarm'}")
    record_property("seconds_to_right_finding", verdict.seconds)  # type: ignore[operator]
    expect = scenario.expect
    if expect.layer is None:
        assert verdict.right, f"a healthy target raised alarms: {verdict.false_alarms}"
        return
    if expect.about_this_host:
        assert verdict.right, f"expected a {expect.layer} finding about this host below the targets'; {verdict.got}"
        assert not verdict.false_alarms, f"the leak no target explains raised alarms on one: {verdict.false_alarms}"
        return
    assert verdict.right, (f"expected a {expect.layer} finding with {expect.words} in its title on top for "
                           f"{scenario.faulty}; got {verdict.got}")
    assert not verdict.false_alarms, f"healthy controls raised alarms: {verdict.false_alarms}"
