"""Pools configuration parsing and the host-limit rules (no servers: config dicts and Samples)."""

from __future__ import annotations

import time

import pytest

from console.diagnosis.pools import close_wait_piling, host_limits_near, pool_at_max
from console.engine.store import Store
from console.settings.pools import PoolsConfigError, parse, pool_from_cli
from probes.pools import DeclaredPool, gauge
from probes.redact import redact
from probes.samples import Sample


def test_full_config_becomes_probe_specs_without_secrets() -> None:
    config = parse({
        "pools": [{"name": "orders-db", "process": "api", "remote": "127.0.0.1:5432", "max": 20}],
        "postgres": [{"dsn": "postgresql://app:S3cret-pw@127.0.0.1:5432/orders", "interval": 2}],
        "redis": {"url": "redis://:R3dis-pw@127.0.0.1:6379/0", "password_env": "REDIS_PW"},
        "metrics": [{"url": "http://127.0.0.1:8080/metrics?token=T0ken-xyz", "used": "hikaricp_connections_active",
                     "max": "hikaricp_connections_max"}],
        "thresholds": {"warning": 70, "critical": 90},
        "conns": {"expect_listen": [8080], "interval": 2},
    })
    specs = config.specs()
    assert [s.kind for s in specs] == ["conns", "pools", "pg_pool", "redis_pool", "metrics_pool"]
    assert specs[0].options["expect_listen"] == [8080] and specs[0].interval == 2
    assert specs[1].options["pools"][0] == {"name": "orders-db", "process": "api", "remote": "127.0.0.1:5432",
                                            "max": 20}
    targets = " ".join(s.target for s in specs)
    for secret in ("S3cret-pw", "R3dis-pw", "T0ken-xyz"):
        assert secret not in targets
    assert specs[2].target == "postgresql://app@127.0.0.1:5432/orders"
    assert specs[3].target == "redis://127.0.0.1:6379/0"
    assert specs[3].options["password_env"] == "REDIS_PW"
    assert (config.thresholds.warning, config.thresholds.critical) == (70, 90)


def test_empty_config_still_watches_the_host() -> None:
    assert [s.kind for s in parse({}).specs()] == ["conns", "pools"]
    assert [s.kind for s in parse(None).specs()] == ["conns", "pools"]


@pytest.mark.parametrize(("data", "words"), [
    ({"pools": [{"name": "a", "max": 0}]}, "max must be a whole number"),
    ({"pools": [{"max": 3}]}, "needs a name"),
    ({"pools": [{"name": "a", "max": 3}, {"name": "a", "max": 4}]}, "same name"),
    ({"postgres": [{"interval": 1}]}, "missing dsn"),
    ({"redis": [{"url": "http://127.0.0.1:6379"}]}, "must start with redis://"),
    ({"metrics": [{"url": "http://127.0.0.1/metrics", "used": "x"}]}, "missing max"),
    ({"thresholds": {"warning": 99, "critical": 90}}, "warning must not be above critical"),
    ({"conns": {"expect_listen": ["http"]}}, "list of port numbers"),
    ({"pools": "orders"}, "must be a table or a list"),
])
def test_bad_config_is_one_line(data: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PoolsConfigError) as info:
        parse(data)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_redis_url_error_does_not_echo_its_password() -> None:
    with pytest.raises(PoolsConfigError) as info:
        parse({"redis": [{"url": "http://user:Leak-pw-77@127.0.0.1:6379"}]})
    assert "Leak-pw-77" not in str(info.value)


@pytest.mark.parametrize(("text", "secret"), [
    ("postgresql://app:pw-Secret-1@db:5432/x", "pw-Secret-1"),
    ("host=db user=app password=pw-Secret-2 dbname=x", "pw-Secret-2"),
    ("host=db password='pw Secret 3' dbname=x", "pw Secret 3"),
    ("http://127.0.0.1/metrics?token=tok-Secret-4&x=1", "tok-Secret-4"),
])
def test_redact(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_declared_pool_matching() -> None:
    pool = DeclaredPool(name="db", max=5, process="api", remote=":5432")
    assert pool.matches(10, "java-api", "10.0.0.5:5432")
    assert not pool.matches(10, "worker", "10.0.0.5:5432")
    assert not pool.matches(10, "api", "10.0.0.5:6379")
    assert DeclaredPool(name="db", max=5, process="77").matches(77, "x", "h:1")
    assert DeclaredPool(name="db", max=5, remote="10.0.0.5").matches(1, "x", "10.0.0.5:5432")
    assert DeclaredPool(name="db", max=5, remote="[::1]:5432").matches(1, "x", "[::1]:5432")


def _conns(**fields: object) -> Sample:
    base = {"ephemeral_pct": 1.0, "conntrack_pct": 0.0, "fd_top": [], "listen_missing": []}
    base.update(fields)
    return Sample(kind="conns", target="", ts=time.time(), fields=base)  # type: ignore[arg-type]


def test_host_limits_near() -> None:
    store = Store()
    store.add(_conns(ephemeral_pct=96.0, ephemeral_top_remote="10.0.0.5:443", ephemeral_top_count=27100,
                     conntrack_pct=85.0, conntrack_count=222822, conntrack_max=262144,
                     fd_top=[{"pid": 42, "name": "java", "fds": 1000, "limit": 1024, "pct": 97.7},
                             {"pid": 43, "name": "nginx", "fds": 10, "limit": 1024, "pct": 1.0}],
                     listen_missing=[8080]))
    found = {f.rule: f for f in host_limits_near(store)}
    assert found["ephemeral_ports"].severity == "critical" and "10.0.0.5:443" in found["ephemeral_ports"].title
    assert found["conntrack_full"].severity == "warning"
    assert found["fd_exhaustion"].severity == "critical" and "java[42]" in found["fd_exhaustion"].title
    assert "8080" in found["listener_missing"].title
    quiet = Store()
    quiet.add(_conns())
    assert list(host_limits_near(quiet)) == []


def test_pool_at_max_needs_time_at_max() -> None:
    store = Store()
    fresh = gauge("orders", "metrics", 10, 10, at_max_s=1.0)
    store.add(Sample(kind="metrics_pool", target="m", ts=time.time(), fields={"gauges": [fresh]}))
    assert list(pool_at_max(store)) == []
    lasting = gauge("orders", "metrics", 10, 10, at_max_s=30.0, waiting=4)
    store.add(Sample(kind="metrics_pool", target="m", ts=time.time(), fields={"gauges": [lasting]}))
    [finding] = list(pool_at_max(store))
    assert "orders" in finding.title and "4 waiting" in finding.evidence


def test_close_wait_below_threshold_is_quiet() -> None:
    store = Store()
    store.add(Sample(kind="pools", target="", ts=time.time(), fields={"groups": [
        {"label": "api[1] → 10.0.0.5:5432", "open": 10, "close_wait": 2, "close_wait_growth": 0}]}))
    assert list(close_wait_piling(store)) == []


def test_pool_from_the_command_line() -> None:
    pool = pool_from_cli("orders-db=20,process=api,remote=10.0.0.5:5432")
    assert pool == DeclaredPool(name="orders-db", max=20, process="api", remote="10.0.0.5:5432")
    assert pool_from_cli("cache=8") == DeclaredPool(name="cache", max=8)
    for bad in ("orders-db", "orders-db=lots", "=5", "x=5,owner=me", "x=0"):
        with pytest.raises(PoolsConfigError) as info:
            pool_from_cli(bad)
        assert "--pool" in str(info.value) and "\n" not in str(info.value)
