"""Pool utilization from sockets and from PostgreSQL, with a real psycopg_pool at its maximum."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.diagnosis.pools import AT_MAX_MIN_S, close_wait_piling, pool_at_max
from console.diagnosis.registry import diagnose
from console.engine.hub import Hub
from console.engine.store import Store
from probes.pools import PoolWatch
from probes.runtime import ProbeSpec
from tests.host.conftest import PG_PASSWORD, PgServer
from tests.host.host_helpers import close_all, listener, run_probe, wait_until

POOL_APP = Path(__file__).with_name("pool_app.py")
POOL_MAX = 3
WAITERS = 2


@contextlib.contextmanager
def pool_app(pg: PgServer) -> Iterator[subprocess.Popen[str]]:
    env = dict(os.environ, PGPASSWORD=PG_PASSWORD)
    proc = subprocess.Popen([sys.executable, str(POOL_APP), pg.dsn, str(POOL_MAX), str(WAITERS)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "ready", f"pool app did not start: {line!r}"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.system
async def test_full_psycopg_pool_is_seen_at_100_percent_with_a_finding(pg_server: PgServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_TEST_PGPASSWORD", PG_PASSWORD)
    store = Store()
    hub = Hub(store)
    with pool_app(pg_server) as app:
        pools = ProbeSpec("pools", interval=0.5, options={"pools": [
            {"name": "orders-db", "process": str(app.pid), "remote": f"127.0.0.1:{pg_server.port}", "max": POOL_MAX},
        ]})
        pg = ProbeSpec("pg_pool", target="orders postgres", interval=0.5,
                       options={"dsn": pg_server.dsn, "password_env": "WARROOM_TEST_PGPASSWORD"})
        hub.start_probe(pools)
        hub.start_probe(pg)
        try:
            await wait_until(lambda: any(f.rule == "pool_at_max" and "orders-db" in f.title
                                         for f in pool_at_max(store)), timeout=AT_MAX_MIN_S + 10)
        finally:
            await hub.stop()
    gauge = store.last(("local", "pools", "")).fields["gauges"][0]
    assert gauge["name"] == "orders-db"
    assert (gauge["used"], gauge["max"], gauge["util_pct"]) == (POOL_MAX, POOL_MAX, 100.0)
    assert gauge["at_max_s"] >= AT_MAX_MIN_S
    finding = next(f for f in diagnose(store) if f.rule == "pool_at_max" and "orders-db" in f.title)
    assert finding.severity == "critical" and finding.layer == "pool"

    pg_sample = store.last(("local", "pg_pool", "orders postgres"))
    assert pg_sample is not None and pg_sample.ok, pg_sample
    group = next(g for g in pg_sample.fields["groups"] if g["application"] == "orders-svc")
    assert group["client"] == "127.0.0.1"
    assert group["total"] == POOL_MAX
    assert group["waiting"] == 1  # the caller blocked on the advisory lock
    assert group["idle_in_tx"] >= 1
    pg_gauge = pg_sample.fields["gauges"][0]
    assert pg_gauge["max"] == 20 - 2  # max_connections minus superuser_reserved_connections
    assert pg_gauge["used"] >= POOL_MAX + 1  # the pool plus our own probe connection
    assert PG_PASSWORD not in pg_sample.to_json()


@pytest.mark.system
async def test_declared_pool_idle_below_max_is_not_a_finding(pg_server: PgServer) -> None:
    env = dict(os.environ, PGPASSWORD=PG_PASSWORD)
    code = ("import psycopg,sys,time\n"
            "cs=[psycopg.connect(sys.argv[1]) for _ in range(2)]\n"
            "print('ready',flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, pg_server.dsn], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout and proc.stdout.readline().strip() == "ready"
        store = Store()
        spec = ProbeSpec("pools", options={"active_ms": 300, "pools": [
            {"name": "small", "process": str(proc.pid), "remote": str(pg_server.port), "max": 4}]})
        await asyncio.sleep(0.6)  # both connections quiet for longer than active_ms
        await run_probe(spec, store=store)
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)
    gauge = store.last(("local", "pools", "")).fields["gauges"][0]
    assert (gauge["used"], gauge["max"], gauge["util_pct"]) == (2, 4, 50.0)
    assert gauge["idle"] == 2 and gauge["at_max_s"] == 0
    assert list(pool_at_max(store)) == []


async def test_leaked_client_connections_pile_up_in_close_wait() -> None:
    """The server closes (idle timeout); the client never does: its sockets sit in CLOSE-WAIT."""
    store = Store()
    watch = PoolWatch(growth_window=60)
    held: list[socket.socket] = []
    with listener() as lsock:
        port = lsock.getsockname()[1]
        try:
            async def leak(n: int) -> None:
                for _ in range(n):
                    held.append(socket.create_connection(("127.0.0.1", port)))
                    server_side, _ = lsock.accept()
                    server_side.close()  # the server hangs up; our "pool" never closes its end

            from probes import pools as pools_probe

            await leak(6)
            await asyncio.sleep(0.1)
            store.add(await pools_probe.measure(watch))
            await leak(6)
            await asyncio.sleep(0.4)  # past the 0.25 s in which a socket reading is shared between probes
            store.add(await pools_probe.measure(watch))
        finally:
            close_all(held)
    groups = store.last(("local", "pools", "")).fields["groups"]
    mine = next(g for g in groups if g["pid"] == os.getpid() and g["endpoint"] == f"127.0.0.1:{port}")
    assert mine["direction"] == "out"
    assert mine["close_wait"] == 12 and mine["open"] == 12
    assert mine["close_wait_growth"] == 6
    findings = [f for f in close_wait_piling(store) if f"127.0.0.1:{port}" in f.title]
    assert len(findings) == 1
    assert "12 connections stuck in CLOSE_WAIT" in findings[0].title and "growing" in findings[0].title
    assert findings[0].severity == "critical"


async def test_server_that_never_closes_its_side_piles_up_close_wait() -> None:
    """Clients hang up; the server never closes the accepted sockets: CLOSE-WAIT on the server side."""
    accepted: list[socket.socket] = []
    with listener() as lsock:
        port = lsock.getsockname()[1]
        try:
            for _ in range(8):
                client = socket.create_connection(("127.0.0.1", port))
                server_side, _ = lsock.accept()
                accepted.append(server_side)  # never closed by the "server"
                client.close()
            await asyncio.sleep(0.2)
            store = Store()
            await run_probe(ProbeSpec("pools"), store=store)
        finally:
            close_all(accepted)
    groups = store.last(("local", "pools", "")).fields["groups"]
    inbound = next(g for g in groups if g["pid"] == os.getpid() and g["endpoint"] == f":{port}")
    assert inbound["direction"] == "in" and inbound["close_wait"] == 8
    finding = next(f for f in close_wait_piling(store) if f":{port}" in f.title)
    assert finding.severity == "warning"  # 8 and not (yet) growing
