"""The host panes' configuration: declared pools, server views, metrics pages, gauge thresholds.

console/settings/config_file.py loads the TOML file and hands each section here
as a plain dict; this module checks it and turns it into ProbeSpecs. Shape
(every section optional)::

    [[pools]]                        # socket view: declared maxima
    name = "orders-db"
    process = "api"                  # process name substring or pid; omit for any
    remote = "10.0.0.5:5432"         # host:port, :port or host; omit for any
    max = 20

    [[postgres]]
    dsn = "postgresql://app@127.0.0.1:5432/orders"
    password_env = "ORDERS_PGPASSWORD"   # keep the password out of the file

    [[redis]]
    url = "redis://127.0.0.1:6379/0"
    password_env = "REDIS_PASSWORD"

    [[metrics]]
    url = "http://127.0.0.1:8080/metrics"
    used = "hikaricp_connections_active"
    max = "hikaricp_connections_max"
    idle = "hikaricp_connections_idle"
    waiting = "hikaricp_connections_pending"
    label = "pool"

    [thresholds]
    warning = 80
    critical = 95

    [conns]
    expect_listen = [8080]
    interval = 1.0

Credentials: a password may sit in a DSN/URL (discouraged) or, better, in an
environment variable named by ``password_env``. ProbeSpec targets are always
the redacted labels, so they are safe to show and to record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probes.redact import redact, url_label
from probes.runtime import ProbeSpec

if TYPE_CHECKING:  # probes.pools imports probes.conns: not needed before the first frame
    from probes.pools import DeclaredPool


class PoolsConfigError(ValueError):
    """A section that cannot be used; the message is one line naming the key and the fix."""


@dataclass(frozen=True)
class Thresholds:
    warning: float = 80.0
    critical: float = 95.0


@dataclass
class PoolsConfig:
    pools: list[DeclaredPool] = field(default_factory=list)
    postgres: list[dict[str, Any]] = field(default_factory=list)
    redis: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    expect_listen: list[int] = field(default_factory=list)
    interval: float = 1.0

    def specs(self) -> list[ProbeSpec]:
        """Every probe these sections ask for: conns and pools always, server views when configured."""
        out = [
            ProbeSpec("conns", interval=self.interval, timeout=max(2.0, self.interval * 2),
                      options={"expect_listen": list(self.expect_listen)}),
            ProbeSpec("pools", interval=self.interval, timeout=max(2.0, self.interval * 2),
                      options={"pools": [_pool_dict(p) for p in self.pools]}),
        ]
        for entry in self.postgres:
            label = entry.get("name") or _pg_label(entry["dsn"])
            out.append(ProbeSpec("pg_pool", target=redact(label), interval=entry.get("interval", 2.0),
                                 timeout=entry.get("timeout", 5.0), options=_options(entry, ("dsn", "password_env"))))
        for entry in self.redis:
            label = entry.get("name") or url_label(entry["url"])
            out.append(ProbeSpec("redis_pool", target=redact(label), interval=entry.get("interval", 2.0),
                                 timeout=entry.get("timeout", 5.0), options=_options(entry, ("url", "password_env"))))
        for entry in self.metrics:
            label = entry.get("name") or url_label(entry["url"])
            out.append(ProbeSpec("metrics_pool", target=redact(label), interval=entry.get("interval", 5.0),
                                 timeout=entry.get("timeout", 5.0),
                                 options=_options(entry, ("url", "used", "max", "idle", "waiting", "label"))))
        return out


def _pool_dict(pool: DeclaredPool) -> dict[str, Any]:
    return {"name": pool.name, "process": pool.process, "remote": pool.remote, "max": pool.max}


def _options(entry: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: entry[k] for k in keys if entry.get(k) is not None}


def _pg_label(dsn: str) -> str:
    from probes.pg_pool import label_of  # imports psycopg only when postgres is configured

    return label_of(dsn)


def _entries(data: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    value = data.get(section)
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise PoolsConfigError(f"[{section}] must be a table or a list of tables ([[{section}]])")
    return list(value)


def _number(entry: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise PoolsConfigError(f"{where}: {key} must be a positive number of seconds, not {value!r}")
    return float(value)


def _checked(entry: Mapping[str, Any], where: str, required: str, schemes: tuple[str, ...] | None) -> dict[str, Any]:
    out = dict(entry)
    value = out.get(required)
    if required not in out:
        raise PoolsConfigError(f"{where}: missing {required}")
    if not isinstance(value, str):
        raise PoolsConfigError(f"{where}: {required} must be a string (in quotes), not {_toml_type(value)}")
    if not value:
        raise PoolsConfigError(f"{where}: {required} is empty")
    if schemes is not None and not value.startswith(schemes):
        raise PoolsConfigError(f"{where}: {required} must start with {' or '.join(schemes)} "
                               f"(got {redact(value)!r})")
    env = out.get("password_env")
    if env is not None and (not isinstance(env, str) or not env):
        raise PoolsConfigError(f"{where}: password_env must be the name of an environment variable")
    for key in ("interval", "timeout"):
        if key in out:
            out[key] = _number(out, key, where, 1.0)
    return out


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {int: "a number", float: "a number", list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def check_remote(remote: str | None, where: str) -> None:
    """A pool's remote: "host:port", ":port", "port", "host", "[v6]:port" or "[v6]"; PoolsConfigError otherwise."""
    if remote is None:
        return
    text = remote.strip()
    if text.lstrip(":").isdigit():
        if not 1 <= int(text.lstrip(":")) <= 65535:
            raise PoolsConfigError(f"{where}: remote port {text.lstrip(':')} is outside 1-65535")
        return
    from probes.targets import TargetError, parse_target

    try:
        parse_target(text)
    except TargetError as exc:
        raise PoolsConfigError(f"{where}: remote {exc}; write HOST:PORT, :PORT or HOST") from None


def check_dsn(dsn: str, where: str) -> None:
    """A PostgreSQL DSN libpq can parse (checked now, not only inside the stream); needs psycopg to check."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return  # the probe itself reports the missing driver, with what to install
    try:
        conninfo_to_dict(dsn)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PoolsConfigError(f"{where}: dsn does not parse ({redact(reason)}): write "
                               "postgresql://USER@HOST:PORT/DB or 'host=H port=P dbname=D user=U'") from None


THRESHOLD_KEYS = ("warning", "critical")


def parse(data: Mapping[str, Any] | None) -> PoolsConfig:
    """Check the sections and build a PoolsConfig; raises PoolsConfigError with one line."""
    data = data or {}
    if not isinstance(data, Mapping):
        raise PoolsConfigError("the pools configuration must be a table")
    config = PoolsConfig()
    for i, entry in enumerate(_entries(data, "pools")):
        try:
            from probes.pools import DeclaredPool

            config.pools.append(DeclaredPool.from_dict(dict(entry)))
        except ValueError as exc:
            raise PoolsConfigError(f"[[pools]] #{i + 1}: {exc}") from None
    for i, pool in enumerate(config.pools):
        check_remote(pool.remote, f"[[pools]] #{i + 1}")
    names = [p.name for p in config.pools]
    if len(set(names)) != len(names):
        raise PoolsConfigError("[[pools]]: two pools have the same name; names must be unique")
    for i, entry in enumerate(_entries(data, "postgres")):
        checked = _checked(entry, f"[[postgres]] #{i + 1}", "dsn", None)
        check_dsn(checked["dsn"], f"[[postgres]] #{i + 1}")
        config.postgres.append(checked)
    for i, entry in enumerate(_entries(data, "redis")):
        config.redis.append(_checked(entry, f"[[redis]] #{i + 1}", "url", ("redis://", "rediss://", "unix://")))
    for i, entry in enumerate(_entries(data, "metrics")):
        where = f"[[metrics]] #{i + 1}"
        checked = _checked(entry, where, "url", ("http://", "https://"))
        for role in ("used", "max"):
            if not isinstance(checked.get(role), str) or not checked[role]:
                raise PoolsConfigError(f"{where}: missing {role} (the metric name, e.g. hikaricp_connections_"
                                       f"{'active' if role == 'used' else 'max'})")
        config.metrics.append(checked)
    thresholds = data.get("thresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise PoolsConfigError("[thresholds] must be a table with warning and critical percentages")
    unknown = sorted(set(thresholds) - set(THRESHOLD_KEYS))
    if unknown:
        raise PoolsConfigError(f"[thresholds] unknown key {unknown[0]!r} (known: {', '.join(THRESHOLD_KEYS)})")
    warning, critical = thresholds.get("warning", 80), thresholds.get("critical", 95)
    for key, value in (("warning", warning), ("critical", critical)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
            raise PoolsConfigError(f"[thresholds] {key} must be a percentage in 1-100")
    if warning > critical:
        raise PoolsConfigError("[thresholds] warning must not be above critical")
    config.thresholds = Thresholds(float(warning), float(critical))
    section = data.get("conns") or {}
    if not isinstance(section, Mapping):
        raise PoolsConfigError("[conns] must be a table")
    expect = section.get("expect_listen", [])
    if not isinstance(expect, list) or not all(isinstance(p, int) and 0 < p < 65536 for p in expect):
        raise PoolsConfigError("[conns] expect_listen must be a list of port numbers")
    config.expect_listen = list(expect)
    config.interval = _number(section, "interval", "[conns]", 1.0)
    return config


def pool_from_cli(text: str) -> DeclaredPool:
    """A declared pool from the command line: ``NAME=MAX[,process=P][,remote=HOST:PORT]``.

    For example ``--pool orders-db=20,process=api,remote=10.0.0.5:5432``.
    Raises PoolsConfigError with one line saying what is wrong.
    """
    name, sep, rest = text.partition("=")
    parts = rest.split(",") if sep else []
    if not name.strip() or not parts or not parts[0].strip().isdigit():
        raise PoolsConfigError(f"--pool {text!r}: write NAME=MAX[,process=P][,remote=HOST:PORT], "
                               "e.g. orders-db=20,process=api,remote=10.0.0.5:5432")
    data: dict[str, Any] = {"name": name.strip(), "max": int(parts[0])}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in ("process", "remote") or not value.strip():
            raise PoolsConfigError(f"--pool {text!r}: {part!r} is not process=NAME or remote=HOST:PORT")
        data[key] = value.strip()
    try:
        from probes.pools import DeclaredPool

        pool = DeclaredPool.from_dict(data)
    except ValueError as exc:
        raise PoolsConfigError(f"--pool {text!r}: {exc}") from None
    check_remote(pool.remote, f"--pool {text!r}")
    return pool
