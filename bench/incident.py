"""From `warroom --incident x` to a written report on a lab fault: the tool's own waiting, and the report's size.

A refused HTTP backend (nothing listens on its port) is the fault. The console
is driven with Textual's Pilot through all five steps (as tests/incident does):
gather (host snapshot, layered check, versions, paste the error), reproduce
(8 rounds), root cause, the fix (the backend comes up, F), the rules and the
report (e). Every wait is timed; the probe windows are set aside:

- the after-fix window (as long as the before window: it is measuring, not the tool);
- the reproduce rounds' own spacing (rounds x interval).

What is left is what the tool itself made the responder wait for.

    python3 bench/incident.py [--runs 3] [--before 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.incident.scenario import PASTED, Outcome, drive, free_port, make_app
from tests.lab.servers import MisbehavingHTTPServer

REPRODUCE_ROUNDS = 8
REPRODUCE_INTERVAL_S = 0.05


async def one_run(name: str, before_s: float) -> tuple[Outcome, float, float]:
    port = free_port()
    target = f"http://127.0.0.1:{port}/ok"
    servers: list[MisbehavingHTTPServer] = []
    started = time.monotonic()
    app = make_app(name, [target])
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            outcome = await drive(pilot, app, pasted=PASTED.format(url=target, port=port), note="NOTE: bench",
                                  remove_fault=lambda: servers.append(MisbehavingHTTPServer("127.0.0.1", port).start()),
                                  before_s=before_s)
            total = time.monotonic() - started
    finally:
        for server in servers:
            server.stop()
    return outcome, total, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=float, default=3.0, help="seconds of the before window (default 3)")
    args = parser.parse_args()
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="warroom-bench-")
    rows = []
    for i in range(args.runs):
        outcome, total, _ = asyncio.run(one_run(f"bench-{i}", args.before))
        waits = dict(outcome.waits)
        probe = outcome.probe_s + REPRODUCE_ROUNDS * REPRODUCE_INTERVAL_S
        tool = sum(waits.values()) - probe
        json_bytes = outcome.folder.report_json.stat().st_size
        rows.append((total, tool, waits, outcome.report_bytes, json_bytes, probe))
    print(f"{'step':<16} " + " ".join(f"run {i + 1:>2}" for i in range(len(rows))) + "   (seconds waited)")
    for step in rows[0][2]:
        print(f"{step:<16} " + " ".join(f"{r[2].get(step, 0):6.2f}" for r in rows))
    print(f"{'probe windows':<16} " + " ".join(f"{r[5]:6.2f}" for r in rows)
          + "   (after-fix window + reproduce spacing)")
    print(f"{'tool waits':<16} " + " ".join(f"{r[1]:6.2f}" for r in rows))
    print(f"{'wall, start->report':<16} " + " ".join(f"{r[0]:6.2f}" for r in rows)
          + "   (includes the Pilot's own steps and the before window)")
    print(f"median tool wait: {statistics.median(r[1] for r in rows):.2f} s; report.md "
          f"{statistics.median(r[3] for r in rows) / 1024:.1f} KiB, report.json "
          f"{statistics.median(r[4] for r in rows) / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
