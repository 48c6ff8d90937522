"""ConnTable and PoolGauges in a real Textual app at 80x24, driven by the keyboard."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Static

from bench.socket_farm import farm
from console.engine.store import Store
from probes import conns
from probes.conns import COLUMNS
from probes.pools import gauge
from probes.samples import Sample, error_sample
from widgets.conn_table import ConnGrid, ConnTable
from widgets.pool_gauges import PoolGauges


class Host(App[None]):
    def __init__(self, store: Store, widget: str) -> None:
        super().__init__()
        self.store = store
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield ConnTable(self.store) if self.widget == "conns" else PoolGauges(self.store)


def _text(app: App[Any], selector: str) -> str:
    return str(app.query_one(selector, Static).content)


async def test_conn_table_without_data_says_how_to_get_it() -> None:
    app = Host(Store(), "conns")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "start the conns probe" in _text(app, "#conn-empty")


def _row(state: str, local: str, remote: str, pid: int | None, name: str | None, uid: int = 0,
         hidden: bool = False, rtt: float | None = None) -> list[Any]:
    return ["tcp", state, local, remote, 0, 0, pid, name, uid, 1000 + hash(local + remote) % 1000, rtt,
            0 if rtt is not None else None, 10 if rtt is not None else None, 10 if rtt is not None else None,
            0, 0, hidden]


async def test_hidden_sockets_are_rows_and_the_pane_says_root_shows_more() -> None:
    store = Store()
    now = time.time()
    rows = [_row("ESTAB", "127.0.0.1:40000", "127.0.0.1:5432", 42, "api[x]", rtt=0.05),
            _row("LISTEN", "127.0.0.1:6379", "0.0.0.0:*", None, None, uid=1000, hidden=True)]
    store.add(Sample(kind="conns", target="", ts=now, fields={"total": 2, "by_state": {"tcp:ESTAB": 1,
              "tcp:LISTEN": 1}, "listen_ports": [6379], "listen_missing": [], "hidden_sockets": 1,
              "hidden_uids": [1000], "euid": 65534, "unreadable_processes": 3}))
    store.add(Sample(kind="conns_table", target="", ts=now, fields={"columns": list(COLUMNS), "rows": rows}))
    app = Host(store, "conns")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        summary = _text(app, "#conn-summary")
        assert "1 hidden socket (uid 1000): processes this user cannot read" in summary
        assert "root would show more" in summary
        table = app.query_one(ConnGrid)
        cells = {str(table.get_row_at(i)[4]) for i in range(table.row_count)}
        assert cells == {"api[x][42]", "? uid 1000 (hidden)"}  # "[x]" shown as text, not read as markup


async def test_ten_thousand_sockets_stay_responsive() -> None:
    store = Store()
    with farm(5000) as port:
        await asyncio.sleep(1.2)  # past the first idle step, so the next refreshes see the same rows
        for sample in await conns.measure(table=True):
            store.add(sample)
        app = Host(store, "conns")
        async with app.run_test(size=(80, 24)) as pilot:
            start = time.perf_counter()
            await pilot.pause()
            ct = app.query_one(ConnTable)
            ct.refresh_from_store()
            first = time.perf_counter() - start
            table = app.query_one(ConnGrid)
            assert table.row_count >= 10000
            # The same sockets again: nothing added or removed, only changed cells touched.
            for sample in await conns.measure(table=True):
                store.add(sample)
            start = time.perf_counter()
            ct.refresh_from_store()
            await pilot.pause()
            second = time.perf_counter() - start
            added, removed, updated = ct.last_changes
            # Other processes' sockets may come and go; the farm's 10,000 rows are neither re-added
            # nor rewritten: the farm is idle and idle time is shown in steps (1 s, 5 s, ...).
            assert added < 500 and removed < 500 and updated < 500, ct.last_changes
            assert ct.redraws <= 2
            # Keys answer while 10,000 rows are loaded: filter to the farm's port, then group.
            start = time.perf_counter()
            await pilot.press("slash", *f"port:{port}", "enter")
            await pilot.pause()
            filtered = table.row_count
            await pilot.press("escape", "g")
            await pilot.pause()
            keys = time.perf_counter() - start
            grouped = [table.get_row_at(i) for i in range(table.row_count)]
    assert filtered == 10001  # both ends of 5,000 connections and the listener
    top = grouped[0]
    assert str(top[0]) == f"127.0.0.1:{port}" and top[1] == 5000  # grouped and sorted by socket count
    assert first < 10.0, f"first fill of 10,000 rows took {first:.1f} s"
    assert second < 3.0, f"a refresh with 10,000 rows took {second:.1f} s"
    assert keys < 10.0, f"filter and group took {keys:.1f} s"


async def test_sort_keys_order_rows() -> None:
    store = Store()
    now = time.time()
    rows = [_row("ESTAB", f"127.0.0.1:{40000 + i}", "127.0.0.1:5432", 7, "api", rtt=rtt)
            for i, rtt in enumerate([0.5, 3.25, 1.0])]
    store.add(Sample(kind="conns", target="", ts=now, fields={"total": 3}))
    store.add(Sample(kind="conns_table", target="", ts=now, fields={"columns": list(COLUMNS), "rows": rows}))
    app = Host(store, "conns")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(ConnGrid)
        await pilot.press("s", "s", "s", "s")  # from state: local, remote, process, rtt (largest first)
        await pilot.pause()
        assert "sort rtt ↓" in _text(app, "#conn-status")
        assert [table.get_row_at(i)[5] for i in range(3)] == [3.25, 1.0, 0.5]
        await pilot.press("r")
        await pilot.pause()
        assert [table.get_row_at(i)[5] for i in range(3)] == [0.5, 1.0, 3.25]


async def test_pool_gauges_show_levels_time_at_max_and_errors() -> None:
    store = Store()
    now = time.time()
    store.add(Sample(kind="pools", target="", ts=now, fields={
        "gauges": [gauge("orders-db", "sockets", 20, 20, at_max_s=125.0, active=20, idle=0),
                   gauge("audit-db", "sockets", 17, 20, active=3, idle=14),
                   gauge("cache", "sockets", 2, 20, active=1, idle=1)],
        "groups": [{"label": "api[7] → 10.0.0.5:5432", "open": 20, "active": 20, "idle": 0, "close_wait": 3,
                    "growth": 4}],
        "groups_total": 1, "active_ms": 5000, "growth_window_s": 300}))
    store.add(error_sample("pg_pool", "postgresql://app@127.0.0.1:5432/orders", "auth",
                           'FATAL:  password authentication failed for user "app"'))
    app = Host(store, "pools")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        widget = app.query_one(PoolGauges)
        lines = widget.lines
        orders = next(line for line in lines if "orders-db" in line)
        assert "100%" in orders and "at 100% for 2m05s" in orders and "$error" in orders
        assert "$warning" in next(line for line in lines if "audit-db" in line)  # 85% >= 80% warning
        assert "$success" in next(line for line in lines if "cache" in line)
        assert any("password authentication failed" in line and "$error" in line for line in lines)
        groups = _text(app, "#pool-groups")
        assert "CLOSE-WAIT 3" in groups and "+4" in groups


async def test_pool_gauges_without_data_say_what_to_configure() -> None:
    app = Host(Store(), "pools")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "[[pools]]" in app.query_one(PoolGauges).lines[0]


async def test_live_hub_feeds_both_panes() -> None:
    """The real path: Hub runs the conns and pools probes, the panes read the store on their timers."""
    from console.engine.hub import Hub
    from probes.runtime import ProbeSpec
    from tests.host.host_helpers import listener

    class Both(App[None]):
        def compose(self) -> ComposeResult:
            yield ConnTable(store, refresh_hz=2.0)
            yield PoolGauges(store, refresh_hz=2.0)

    store = Store()
    hub = Hub(store)
    with listener() as lsock:
        port = lsock.getsockname()[1]
        app = Both()
        async with app.run_test(size=(80, 24)) as pilot:
            hub.start_probe(ProbeSpec("conns", interval=0.5))
            hub.start_probe(ProbeSpec("pools", interval=0.5, options={"pools": [
                {"name": "test-listener", "remote": str(port), "max": 2}]}))
            try:
                grid = app.query_one(ConnGrid)
                for _ in range(40):
                    await pilot.pause(0.1)
                    if any(str(r[2]) == f"127.0.0.1:{port}" for r in grid.rows) and app.query_one(PoolGauges).lines:
                        break
                grid.focus()  # as showing the Conns tab does in the console
                await pilot.press("slash", *f"port:{port}", "enter")
                await pilot.pause(0.6)
                rows = [grid.get_row_at(i) for i in range(grid.row_count)]
                gauges = app.query_one(PoolGauges).lines
            finally:
                await hub.stop()
    assert [(r[1], r[2]) for r in rows] == [("LISTEN", f"127.0.0.1:{port}")]
    assert any("test-listener" in line and "0/2" in line for line in gauges)
