"""Benchmark: the connection table with 10,000 open sockets, beside `ss -tanp` in the same run.

    python3 -m bench.conns [--pairs 5000] [--rounds 7] [--cpu-seconds 15]

1. Opens PAIRS loopback connections in a child process (2*PAIRS sockets).
2. Times, alternately and ROUNDS times each, `ss -tanp` (sockets with their
   processes, output captured) and one full refresh of the conns probe
   (sockets + tcp_info + owning processes + the summary), and prints the
   medians and their ratio. Also the parts: the sock_diag dump alone, the
   /proc owner scan alone, and the ss text fallback (ss + parse) alone.
3. Runs the console's ConnTable headless with the conns probe at 1 Hz for
   CPU_SECONDS and prints the CPU it used (this process and any child processes)
   as a share of one core, with the table's own redraw time.

Figures go to stdout; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import time

from bench.socket_farm import farm
from probes import conns, sockdiag


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def _full_refresh() -> int:
    snap = await conns.collect()
    conns.summarize(snap.rows, snap.scan)
    return len(snap.rows)


async def time_refresh(rounds: int) -> None:
    ss_times: list[float] = []
    ours: list[float] = []
    rows = 0
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(["ss", "-tanp"], capture_output=True, check=True)
        ss_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        rows = await _full_refresh()
        ours.append(time.perf_counter() - start)
    ss_med, our_med = statistics.median(ss_times), statistics.median(ours)
    print(f"sockets seen: {rows:,}")
    print(f"ss -tanp:                     median {_ms(ss_med)}  (min {_ms(min(ss_times))})")
    print(f"conns full refresh:           median {_ms(our_med)}  (min {_ms(min(ours))})")
    print(f"ratio (refresh / ss -tanp):   {our_med / ss_med:.2f}x  (target <= 1.5x)")
    parts: dict[str, list[float]] = {"sock_diag dump": [], "/proc owner scan": [], "ss -tuanieOH + parse": []}
    for _ in range(max(3, rounds // 2)):
        start = time.perf_counter()
        sockdiag.dump_all()
        parts["sock_diag dump"].append(time.perf_counter() - start)
        start = time.perf_counter()
        conns.scan_processes()
        parts["/proc owner scan"].append(time.perf_counter() - start)
        start = time.perf_counter()
        conns.read_sockets("ss")
        parts["ss -tuanieOH + parse"].append(time.perf_counter() - start)
    for name, values in parts.items():
        print(f"  part {name:<22} median {_ms(statistics.median(values))}")
    print("  (a refresh runs the dump and the /proc scan in two threads at once; ss + parse is the fallback)")


async def time_console_cpu(seconds: float) -> None:
    from textual.app import App, ComposeResult  # only this part of the benchmark needs Textual

    from console.engine.hub import Hub
    from console.engine.store import Store
    from probes.runtime import ProbeSpec
    from probes.samples import Sample
    from widgets.conn_table import ConnTable

    store = Store()

    class Bench(App[None]):
        def compose(self) -> ComposeResult:
            yield ConnTable(store, refresh_hz=1.0)

    hub = Hub(store)
    app = Bench()
    redraw: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(ConnTable)
        original = table._apply

        def timed_apply(sample: Sample | None = None) -> None:
            start = time.perf_counter()
            original(sample)
            redraw.append(time.perf_counter() - start)

        table._apply = timed_apply  # type: ignore[method-assign,assignment]
        hub.start_probe(ProbeSpec("conns", interval=1.0, timeout=5.0))
        # Let the first fill (10,000 new rows) happen before measuring the steady state.
        while table.total_rows == 0:
            await pilot.pause(0.2)
        await pilot.pause(1.5)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        kids_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        first_fill = redraw[0] if redraw else float("nan")
        redraw.clear()
        start = time.perf_counter()
        await pilot.pause(seconds)
        wall = time.perf_counter() - start
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        kids_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        await hub.stop()
    own = (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    kids = (kids_after.ru_utime - kids_before.ru_utime) + (kids_after.ru_stime - kids_before.ru_stime)
    print(f"console CPU at 1 Hz with {table.total_rows:,} sockets over {wall:.1f} s:")
    print(f"  this process {100 * own / wall:.1f}% of one core, child processes {100 * kids / wall:.1f}%, "
          f"total {100 * (own + kids) / wall:.1f}%")
    if redraw:
        print(f"  table redraws: first fill {_ms(first_fill)}, then median {_ms(statistics.median(redraw))} "
              f"over {len(redraw)} refreshes (max {_ms(max(redraw))}); "
              f"last changes (added, removed, cells) = {table.last_changes}")


async def main_async(args: argparse.Namespace) -> None:
    with farm(args.pairs):
        await asyncio.sleep(1.0)
        await time_refresh(args.rounds)
        if args.cpu_seconds > 0:
            await time_console_cpu(args.cpu_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000, help="loopback connections to hold (2 sockets each)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu-seconds", type=float, default=15.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
