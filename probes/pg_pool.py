"""PostgreSQL's own view of its connections: pg_stat_activity against max_connections.

Optional extra (``warroom[postgres]``, psycopg 3). One ``pg_pool`` Sample per
refresh: client backends grouped by (application_name, client address) with
their states - active, idle, idle in transaction, waiting (on a lock) - and a
gauge of all client backends against the slots applications may use
(max_connections minus superuser_reserved_connections).

Credentials: the DSN lives in ``options.dsn`` (and the password, preferably,
in the environment variable named by ``options.password_env`` or in
~/.pgpass). The Sample's ``target`` is the DSN's redacted label, and every
error message is scrubbed of the DSN's password before it becomes evidence.

One connection is kept open between refreshes (and reopened after a failure)
so the probe does not add connection churn to a server that is already short
of slots; it counts itself and says so (``ours``).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from probes.pools import AtMaxClock, gauge
from probes.redact import one_line, redact
from probes.runtime import ProbeSpec, watched
from probes.samples import ERROR_EXCEPTION, ERROR_REFUSED, ERROR_TIMEOUT, LOCAL_HOST, JSONValue, Sample, error_sample

KIND = "pg_pool"
MAX_GROUPS = 50

_ACTIVITY = """
SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'), state,
       coalesce(wait_event_type, ''), (pid = pg_backend_pid()) AS ours, count(*)
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3, 4, 5
"""
_SETTINGS = ("SELECT current_setting('max_connections')::int, "
             "current_setting('superuser_reserved_connections')::int")


def label_of(dsn: str) -> str:
    """postgresql://user@host:port/db for any DSN form, never with its password."""
    try:
        from psycopg.conninfo import conninfo_to_dict  # optional extra: imported when used

        info = conninfo_to_dict(dsn)
    except Exception:  # a DSN libpq cannot parse is still labelled, redacted
        return redact(dsn)
    host = str(info.get("host") or "localhost")
    if ":" in host and not host.startswith("/"):
        host = f"[{host}]"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    db = f"/{info['dbname']}" if info.get("dbname") else ""
    return f"postgresql://{user}{host}{port}{db}"


def classify(exc: BaseException) -> str:
    text = str(exc).lower()
    if "password authentication failed" in text or "authentication failed" in text or "no password" in text:
        return "auth"
    if "does not exist" in text and "database" in text:
        return "no-database"
    if "refused" in text:
        return ERROR_REFUSED
    if "timeout" in text or "timed out" in text:
        return ERROR_TIMEOUT
    if "remaining connection slots" in text or "too many clients" in text:
        return "server-full"
    return ERROR_EXCEPTION


def state_class(state: str | None, wait_event_type: str) -> str:
    if state is None:
        return "hidden"  # another role's session, not visible without pg_read_all_stats
    if state == "active":
        return "waiting" if wait_event_type == "Lock" else "active"
    if state.startswith("idle in transaction"):
        return "idle_in_tx"
    if state == "idle":
        return "idle"
    return "other"


@dataclass
class PgWatch:
    dsn: str
    label: str
    password: str | None = None
    connect_timeout: float = 3.0
    conn: Any = None
    clock: AtMaxClock = field(default_factory=AtMaxClock)

    @property
    def secrets(self) -> tuple[str, ...]:
        found: list[str] = [self.password] if self.password else []
        try:
            from psycopg.conninfo import conninfo_to_dict

            pw = conninfo_to_dict(self.dsn).get("password")
            if pw:
                found.append(str(pw))
        except Exception:  # unparsable DSN: the regex redaction still applies
            pass
        return tuple(found)

    async def _connect(self) -> Any:
        import psycopg  # optional extra: imported when used

        kwargs: dict[str, Any] = {"connect_timeout": max(1, int(self.connect_timeout)),
                                  "application_name": "warroom", "autocommit": True}
        if self.password:
            kwargs["password"] = self.password
        return await psycopg.AsyncConnection.connect(self.dsn, **kwargs)

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                await conn.close()
            except Exception:  # closing a broken connection may fail; nothing to keep
                pass

    async def measure(self, host: str = LOCAL_HOST) -> Sample:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = await self._connect()
            async with self.conn.cursor() as cur:
                await cur.execute(_SETTINGS)
                row = await cur.fetchone()
                max_connections, reserved = int(row[0]), int(row[1])
                await cur.execute(_ACTIVITY)
                activity = await cur.fetchall()
        except ImportError:
            return error_sample(KIND, self.label, "missing-extra",
                                "psycopg is not installed: pip install 'warroom[postgres]'", host=host)
        except Exception as exc:  # every failure is one clear line, then a reconnect next tick
            await self.close()
            kind = classify(exc)
            message = redact(one_line(f"{type(exc).__name__}: {exc}"), self.secrets)
            return error_sample(KIND, self.label, kind, message, host=host)
        return self._sample(activity, max_connections, reserved, host)

    def _sample(self, activity: list[tuple[Any, ...]], max_connections: int, reserved: int, host: str) -> Sample:
        totals = {"active": 0, "idle": 0, "idle_in_tx": 0, "waiting": 0, "other": 0, "hidden": 0}
        groups: dict[tuple[str, str], dict[str, JSONValue]] = {}
        used = 0
        for app, client, state, wait_type, ours, count in activity:
            used += int(count)
            if ours:
                continue  # our own probe connection: counted in `used`, not shown as a client
            cls = state_class(state, wait_type)
            totals[cls] += int(count)
            grp = groups.setdefault((app, client), {"application": app or "(none)", "client": client, "total": 0,
                                                    **{k: 0 for k in totals}})
            grp[cls] = int(grp[cls]) + int(count)  # type: ignore[arg-type]
            grp["total"] = int(grp["total"]) + int(count)  # type: ignore[arg-type]
        usable = max(1, max_connections - reserved)
        now = time.time()
        at_max = self.clock.update(self.label, used >= usable, now)
        ordered = sorted(groups.values(), key=lambda g: int(g["total"]), reverse=True)  # type: ignore[arg-type]
        fields: dict[str, JSONValue] = {
            "max_connections": max_connections,
            "reserved": reserved,
            "used": used,
            "ours": 1,
            **totals,
            "groups": ordered[:MAX_GROUPS],  # type: ignore[dict-item]
            "gauges": [gauge(f"postgres {self.label}", "postgres", used, usable, at_max_s=at_max,
                             active=totals["active"], idle=totals["idle"], idle_in_tx=totals["idle_in_tx"],
                             waiting=totals["waiting"])],
        }
        return Sample(kind=KIND, target=self.label, ts=now, host=host, fields=fields)


def watch_from_spec(spec: ProbeSpec) -> PgWatch:
    dsn = spec.options.get("dsn") or spec.target
    if not isinstance(dsn, str) or not dsn:
        raise ValueError("pg_pool needs options.dsn (a libpq connection string or postgresql:// URL)")
    env = spec.options.get("password_env")
    password = os.environ.get(env) if isinstance(env, str) and env else None
    label = redact(spec.target) if spec.target else label_of(dsn)
    timeout = spec.options.get("connect_timeout", min(3.0, spec.timeout))
    return PgWatch(dsn=dsn, label=label, password=password,
                   connect_timeout=float(timeout) if isinstance(timeout, (int, float)) else 3.0)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    return watched(spec, host, KIND, watch_from_spec)
