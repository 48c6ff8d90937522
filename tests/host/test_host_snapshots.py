"""SVG snapshots of the host panes at 80x24, from fixed Samples (so the picture is stable)."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from console.engine.store import Store
from probes.conns import COLUMNS
from probes.pools import gauge
from probes.samples import Sample, error_sample
from widgets.conn_table import ConnTable
from widgets.pool_gauges import PoolGauges

TS = 1_800_000_000.0


def _row(proto: str, state: str, local: str, remote: str, pid: int | None, name: str | None, *,
         rtt: float | None = None, idle_ms: int | None = None, uid: int = 0, hidden: bool = False) -> list[Any]:
    return [proto, state, local, remote, 0, 0, pid, name, uid, 100, rtt, 0 if rtt is not None else None,
            idle_ms, idle_ms, 0, 0, hidden]


def conn_store() -> Store:
    store = Store()
    rows = [
        _row("tcp", "LISTEN", "0.0.0.0:8080", "0.0.0.0:*", 311, "api"),
        _row("tcp", "ESTAB", "10.0.0.7:41822", "10.0.0.5:5432", 311, "api", rtt=0.412, idle_ms=200),
        _row("tcp", "ESTAB", "10.0.0.7:41824", "10.0.0.5:5432", 311, "api", rtt=0.398, idle_ms=40000),
        _row("tcp", "CLOSE-WAIT", "10.0.0.7:52210", "10.0.0.9:6379", 311, "api", rtt=1.2, idle_ms=90000),
        _row("tcp", "TIME-WAIT", "10.0.0.7:33001", "10.0.0.5:5432", None, None),
        _row("tcp", "LISTEN", "127.0.0.1:9100", "0.0.0.0:*", None, None, uid=1000, hidden=True),
        _row("udp", "UNCONN", "127.0.0.53:53", "0.0.0.0:*", 120, "resolved"),
    ]
    store.add(Sample(kind="conns", target="", ts=TS, fields={
        "total": len(rows), "by_state": {"tcp:LISTEN": 2, "tcp:ESTAB": 2, "tcp:CLOSE-WAIT": 1, "tcp:TIME-WAIT": 1,
                                         "udp:UNCONN": 1},
        "listen_ports": [53, 8080, 9100], "listen_missing": [8443], "ephemeral_size": 28232, "ephemeral_used": 3,
        "ephemeral_top_count": 2, "ephemeral_pct": 0.0, "conntrack_count": 120, "conntrack_max": 262144,
        "fd_top": [{"pid": 311, "name": "api", "fds": 980, "limit": 1024, "pct": 95.7}],
        "hidden_sockets": 1, "hidden_uids": [1000], "euid": 1000, "unreadable_processes": 4}))
    store.add(Sample(kind="conns_table", target="", ts=TS, fields={"columns": list(COLUMNS), "rows": rows}))
    return store


def pool_store() -> Store:
    store = Store()
    store.add(Sample(kind="pools", target="", ts=TS, fields={
        "gauges": [gauge("orders-db", "sockets", 20, 20, at_max_s=125.0, active=20, idle=0),
                   gauge("audit-db", "sockets", 17, 20, active=3, idle=14, close_wait=2)],
        "groups": [{"label": "api[311] → 10.0.0.5:5432", "open": 20, "active": 20, "idle": 0, "close_wait": 0,
                    "growth": 4},
                   {"label": "api[311] → 10.0.0.9:6379", "open": 9, "active": 1, "idle": 8, "close_wait": 6,
                    "growth": 0}],
        "groups_total": 2, "active_ms": 5000, "growth_window_s": 300}))
    store.add(Sample(kind="redis_pool", target="redis://10.0.0.9:6379/0", ts=TS, fields={
        "gauges": [gauge("redis redis://10.0.0.9:6379/0", "redis", 41, 10000, waiting=3)]}))
    store.add(error_sample("pg_pool", "postgresql://app@10.0.0.5:5432/orders", "auth",
                           'OperationalError: FATAL:  password authentication failed for user "app"'))
    return store


class Pane(App[None]):
    def __init__(self, store: Store, which: str) -> None:
        super().__init__()
        self.store = store
        self.which = which

    def compose(self) -> ComposeResult:
        yield ConnTable(self.store) if self.which == "conns" else PoolGauges(self.store)


def test_conn_table_80x24(snap_compare: Any) -> None:
    assert snap_compare(Pane(conn_store(), "conns"), terminal_size=(80, 24))


def test_conn_table_grouped_80x24(snap_compare: Any) -> None:
    assert snap_compare(Pane(conn_store(), "conns"), press=["g"], terminal_size=(80, 24))


def test_pool_gauges_80x24(snap_compare: Any) -> None:
    assert snap_compare(Pane(pool_store(), "pools"), terminal_size=(80, 24))
