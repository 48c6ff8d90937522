"""Server and metrics views: real PostgreSQL, Redis and a /metrics page; bad input is one line."""

from __future__ import annotations

import asyncio

import pytest

from console.engine.hub import Hub
from console.engine.store import Store
from probes.runtime import ProbeSpec
from tests.host.conftest import PG_PASSWORD, REDIS_MAXCLIENTS, REDIS_PASSWORD, MetricsServer, PgServer, RedisServer
from tests.host.host_helpers import listener, run_probe, wait_until

pytestmark = pytest.mark.system

HIKARI_PAGE = """\
# HELP hikaricp_connections_active Active connections
# TYPE hikaricp_connections_active gauge
hikaricp_connections_active{pool="orders"} 10.0
hikaricp_connections_active{pool="audit"} 2.0
# HELP hikaricp_connections_max Max connections
# TYPE hikaricp_connections_max gauge
hikaricp_connections_max{pool="orders"} 10.0
hikaricp_connections_max{pool="audit"} 8.0
# HELP hikaricp_connections_idle Idle connections
# TYPE hikaricp_connections_idle gauge
hikaricp_connections_idle{pool="orders"} 0.0
hikaricp_connections_idle{pool="audit"} 6.0
# HELP hikaricp_connections_pending Pending threads
# TYPE hikaricp_connections_pending gauge
hikaricp_connections_pending{pool="orders"} 7.0
hikaricp_connections_pending{pool="audit"} 0.0
"""

HIKARI = {"used": "hikaricp_connections_active", "max": "hikaricp_connections_max",
          "idle": "hikaricp_connections_idle", "waiting": "hikaricp_connections_pending", "label": "pool"}


def _one_line_without(sample, *secrets: str) -> None:  # type: ignore[no-untyped-def]
    assert sample.message and "\n" not in sample.message
    text = sample.to_json()
    for secret in secrets:
        assert secret not in text


async def test_pg_wrong_password_is_one_line_without_the_password(pg_server: PgServer) -> None:
    wrong = "Wrong-Pass-9931"
    dsn = f"postgresql://app:{wrong}@127.0.0.1:{pg_server.port}/postgres"
    [sample] = await run_probe(ProbeSpec("pg_pool", options={"dsn": dsn}))
    assert sample.error == "auth"
    assert "password authentication failed" in sample.message
    assert sample.target == f"postgresql://app@127.0.0.1:{pg_server.port}/postgres"
    _one_line_without(sample, wrong, PG_PASSWORD)


async def test_pg_right_password_in_the_dsn_never_reaches_the_sample(pg_server: PgServer) -> None:
    [sample] = await run_probe(ProbeSpec("pg_pool", options={"dsn": pg_server.dsn_with_password}))
    assert sample.ok, sample.message
    assert PG_PASSWORD not in sample.to_json()
    assert sample.fields["max_connections"] == 20


async def test_pg_unreachable_is_refused() -> None:
    with listener() as lsock:
        port = lsock.getsockname()[1]
    [sample] = await run_probe(ProbeSpec("pg_pool", options={"dsn": f"postgresql://app@127.0.0.1:{port}/x"}))
    assert sample.error == "refused"
    _one_line_without(sample)


async def test_redis_clients_against_maxclients_with_a_blocked_client(redis_server: RedisServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import redis.asyncio as aredis

    monkeypatch.setenv("WARROOM_TEST_REDIS_PW", REDIS_PASSWORD)
    blocker = aredis.from_url(redis_server.url, password=REDIS_PASSWORD, client_name="worker")
    extra = [aredis.from_url(redis_server.url, password=REDIS_PASSWORD, client_name="api") for _ in range(3)]
    blpop = asyncio.create_task(blocker.blpop(["warroom-test-queue"], timeout=10))
    try:
        for client in extra:
            await client.ping()
        spec = ProbeSpec("redis_pool", options={"url": redis_server.url, "password_env": "WARROOM_TEST_REDIS_PW"})
        store = Store()
        await wait_until(lambda: not blpop.done(), timeout=2)
        await asyncio.sleep(0.2)  # BLPOP has reached the server
        [sample] = await run_probe(spec, store=store)
    finally:
        blpop.cancel()
        for client in [blocker, *extra]:
            await client.aclose()
    assert sample.ok, sample.message
    assert sample.fields["maxclients"] == REDIS_MAXCLIENTS
    assert sample.fields["blocked_clients"] == 1
    assert sample.fields["connected_clients"] >= 5  # blocker, 3 api clients, the probe
    names = {g["name"]: g["total"] for g in sample.fields["groups"]}
    assert names.get("api") == 3 and names.get("worker") == 1
    gauge = sample.fields["gauges"][0]
    assert gauge["max"] == REDIS_MAXCLIENTS and gauge["waiting"] == 1
    assert REDIS_PASSWORD not in sample.to_json()


async def test_redis_wrong_password(redis_server: RedisServer) -> None:
    wrong = "Nope-Redis-1234"
    url = f"redis://:{wrong}@127.0.0.1:{redis_server.port}/0"
    [sample] = await run_probe(ProbeSpec("redis_pool", options={"url": url}))
    assert sample.error == "auth", sample.message
    assert sample.target == f"redis://127.0.0.1:{redis_server.port}/0"
    _one_line_without(sample, wrong, REDIS_PASSWORD)


async def test_metrics_page_pool_gauges(metrics_server: MetricsServer) -> None:
    metrics_server.page.text = HIKARI_PAGE
    store = Store()
    spec = ProbeSpec("metrics_pool", interval=0.3, options={"url": metrics_server.url, **HIKARI})
    samples = await run_probe(spec, store=store, count=1)
    gauges = {g["name"]: g for g in samples[0].fields["gauges"]}
    orders = gauges[f"orders ({metrics_server.url})"]
    assert (orders["used"], orders["max"], orders["util_pct"], orders["waiting"]) == (10, 10, 100.0, 7)
    audit = gauges[f"audit ({metrics_server.url})"]
    assert (audit["used"], audit["max"], audit["idle"]) == (2, 8, 6)


async def test_metrics_page_that_is_not_prometheus(metrics_server: MetricsServer) -> None:
    metrics_server.page.text = "<html><body><h1>Welcome to nginx!</h1></body></html>\n"
    metrics_server.page.content_type = "text/html"
    [sample] = await run_probe(ProbeSpec("metrics_pool", options={"url": metrics_server.url, **HIKARI}))
    assert sample.error == "not-prometheus"
    assert sample.message.startswith("not Prometheus text")
    _one_line_without(sample)


async def test_metrics_page_without_the_named_metrics(metrics_server: MetricsServer) -> None:
    metrics_server.page.text = "# TYPE up gauge\nup 1\n"
    [sample] = await run_probe(ProbeSpec("metrics_pool", options={"url": metrics_server.url, **HIKARI}))
    assert sample.error == "no-metric"
    assert "hikaricp_connections_active" in sample.message


async def test_bad_sources_do_not_stop_the_good_ones(pg_server: PgServer, redis_server: RedisServer,
                                                     metrics_server: MetricsServer) -> None:
    """Wrong Postgres password, a non-Prometheus page and a working Redis, all at once in one hub."""
    metrics_server.page.text = HIKARI_PAGE
    store = Store()
    hub = Hub(store)
    bad_pg = f"postgresql://app:bad-{PG_PASSWORD}@127.0.0.1:{pg_server.port}/postgres"
    hub.start_probe(ProbeSpec("pg_pool", target="pg", interval=0.3, options={"dsn": bad_pg}))
    hub.start_probe(ProbeSpec("metrics_pool", target="html", interval=0.3,
                              options={"url": metrics_server.url.replace("/metrics", "/nope"), **HIKARI}))
    hub.start_probe(ProbeSpec("redis_pool", target="redis", interval=0.3,
                              options={"url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_server.port}/0"}))
    hub.start_probe(ProbeSpec("metrics_pool", target="hikari", interval=0.3,
                              options={"url": metrics_server.url, **HIKARI}))
    try:
        await wait_until(lambda: len(store.series(("local", "redis_pool", "redis"))) >= 3
                         and len(store.series(("local", "pg_pool", "pg"))) >= 2
                         and len(store.series(("local", "metrics_pool", "hikari"))) >= 3, timeout=15)
    finally:
        await hub.stop()
    assert all(s.error == "auth" for s in store.series(("local", "pg_pool", "pg")))
    assert all(s.error == "http-status" for s in store.series(("local", "metrics_pool", "html")))
    assert all(s.ok for s in store.series(("local", "redis_pool", "redis")))
    assert all(s.ok for s in store.series(("local", "metrics_pool", "hikari")))
    recorded = "\n".join(s.to_json() for s in store)
    assert PG_PASSWORD not in recorded and REDIS_PASSWORD not in recorded
    orders = next(g for g in store.last(("local", "metrics_pool", "hikari")).fields["gauges"]
                  if g["name"].startswith("orders"))
    assert orders["util_pct"] == 100.0
