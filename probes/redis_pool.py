"""Redis's own view of its clients: connected and blocked clients against maxclients.

Optional extra (``warroom[redis]``). One ``redis_pool`` Sample per refresh
from ``INFO clients`` (maxclients is there since Redis 7; older servers are
asked ``CONFIG GET maxclients``) and ``CLIENT LIST`` grouped by client
address and name, so "which service holds all the connections" is one look.

Credentials: the URL lives in ``options.url`` (password preferably in the
environment variable named by ``options.password_env``); the Sample's target
is the redacted label and error messages are scrubbed.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from probes.pools import AtMaxClock, gauge
from probes.redact import one_line, redact, url_label
from probes.runtime import ProbeSpec, watched
from probes.samples import ERROR_EXCEPTION, ERROR_REFUSED, ERROR_TIMEOUT, LOCAL_HOST, JSONValue, Sample, error_sample

KIND = "redis_pool"
MAX_GROUPS = 50


def classify(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).lower()
    if name in {"AuthenticationError", "AuthenticationWrongNumberOfArgsError"} or "noauth" in text \
            or "wrongpass" in text or "invalid password" in text or "invalid username-password" in text:
        return "auth"
    if "refused" in text:
        return ERROR_REFUSED
    if name == "TimeoutError" or "timeout" in text or "timed out" in text:
        return ERROR_TIMEOUT
    if "max number of clients" in text:
        return "server-full"
    return ERROR_EXCEPTION


@dataclass
class RedisWatch:
    url: str
    label: str
    password: str | None = None
    timeout: float = 3.0
    client: Any = None
    clock: AtMaxClock = field(default_factory=AtMaxClock)

    @property
    def secrets(self) -> tuple[str, ...]:
        from urllib.parse import unquote, urlsplit

        found = [self.password] if self.password else []
        pw = urlsplit(self.url).password
        if pw:
            found.append(unquote(pw))
        return tuple(found)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            try:
                await client.aclose()
            except Exception:  # closing a broken client may fail; nothing to keep
                pass

    async def measure(self, host: str = LOCAL_HOST) -> Sample:
        try:
            import redis.asyncio as aredis
        except ImportError:
            return error_sample(KIND, self.label, "missing-extra",
                                "the redis package is not installed: pip install 'warroom[redis]'", host=host)
        try:
            if self.client is None:
                kwargs: dict[str, Any] = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                                          "client_name": "warroom"}
                if self.password:
                    kwargs["password"] = self.password
                self.client = aredis.from_url(self.url, **kwargs)
            info = await self.client.info("clients")
            maxclients = info.get("maxclients")
            if maxclients is None:
                maxclients = (await self.client.config_get("maxclients")).get("maxclients")
            clients = await self.client.client_list()
        except Exception as exc:  # one clear line, then a reconnect next tick
            await self.close()
            message = redact(one_line(f"{type(exc).__name__}: {exc}"), self.secrets)
            return error_sample(KIND, self.label, classify(exc), message, host=host)
        return self._sample(info, int(maxclients) if maxclients is not None else None, clients, host)

    def _sample(self, info: dict[str, Any], maxclients: int | None, clients: list[dict[str, Any]],
                host: str) -> Sample:
        connected = int(info.get("connected_clients", 0))
        blocked = int(info.get("blocked_clients", 0))
        groups: Counter[tuple[str, str]] = Counter()
        for client in clients:
            addr = str(client.get("addr", "?"))
            ip = addr.rpartition(":")[0] or addr
            groups[(ip, str(client.get("name") or ""))] += 1
        now = time.time()
        at_max = self.clock.update(self.label, maxclients is not None and connected >= maxclients, now)
        fields: dict[str, JSONValue] = {
            "connected_clients": connected,
            "blocked_clients": blocked,
            "maxclients": maxclients,
            "ours": 1,
            "groups": [{"client": ip, "name": name or "(none)", "total": n}
                       for (ip, name), n in groups.most_common(MAX_GROUPS)],
            "gauges": [gauge(f"redis {self.label}", "redis", connected, maxclients, at_max_s=at_max,
                             waiting=blocked)],
        }
        return Sample(kind=KIND, target=self.label, ts=now, host=host, fields=fields)


def watch_from_spec(spec: ProbeSpec) -> RedisWatch:
    url = spec.options.get("url") or spec.target
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("redis_pool needs options.url like redis://127.0.0.1:6379/0")
    env = spec.options.get("password_env")
    password = os.environ.get(env) if isinstance(env, str) and env else None
    label = redact(spec.target) if spec.target else url_label(url)
    return RedisWatch(url=url, label=label, password=password, timeout=min(3.0, spec.timeout))


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    return watched(spec, host, KIND, watch_from_spec)
