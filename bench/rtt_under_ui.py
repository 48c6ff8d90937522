"""Does drawing the console inflate the RTTs its probes report?

Runs the demo's targets twice for 12 s each: once inside the live app (headless,
120x40, Layers tab with its chart showing), once with the same probes and no
UI. Prints the TCP RTT each way. Connects to the backlog target that waited on
a SYN retransmit (~1 s) are left out of both.

    python3 bench/rtt_under_ui.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.engine.demo_lab import DemoLab
from console.engine.hub import Hub
from console.engine.store import Store
from console.ui.app import AppConfig, create_app
from probes.runtime import ProbeSpec

SECONDS = 12


def tcp_rtts(store: Store, field: str) -> list[float]:
    values: list[float] = []
    for key in store.keys(kind="tcp"):
        values += store.values(key, field)
    return [v for v in values if v < 900]


async def with_ui() -> Store:
    app = create_app(AppConfig(demo=True, hostname="bench"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.pause(SECONDS)
        return app.store


async def without_ui() -> Store:
    lab = await DemoLab.start()
    store = Store()
    hub = Hub(store)
    for target in lab.targets:
        hub.start_probe(ProbeSpec("tcp", target.target, interval=1.0, timeout=2.0))
    await asyncio.sleep(SECONDS)
    await hub.stop()
    await lab.stop()
    return store


def main() -> int:
    for name, run in (("with UI", with_ui), ("no UI", without_ui)):
        store = asyncio.run(run())
        for field in ("rtt_ms", "connect_ms"):
            values = sorted(tcp_rtts(store, field))
            if values:
                print(f"{name:8} {field:10} n={len(values):3} median {statistics.median(values):8.3f} ms  "
                      f"p95 {values[int(len(values) * 0.95)]:8.3f}  max {values[-1]:8.3f}")
    print("rtt_ms is the kernel's SYN to SYN-ACK time; connect_ms is what the probe's caller waited")
    return 0


if __name__ == "__main__":
    sys.exit(main())
