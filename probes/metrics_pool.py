"""Pool gauges an application already publishes, scraped from its Prometheus /metrics page.

Optional extra (``warroom[metrics]``). The page is fetched with httpx and
parsed with prometheus_client's own text parser (not ours). Which metrics
mean "in use", "maximum", "idle" and "waiting" is configuration, because
every library names them differently:

- HikariCP: hikaricp_connections_active / _max / _idle / _pending, label "pool"
- Go database/sql exporters: go_sql_stats_connections_in_use /
  _max_open / _idle, wait count as a counter; label "db_name"

``options``: url, used, max (metric names, required), idle, waiting
(optional), label (the label that names a pool; "" for one pool per page).
One ``metrics_pool`` Sample per refresh with one gauge per pool label value.
A page that is not Prometheus text, or lacks the named metrics, is an error
Sample with one line that says so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from probes.pools import AtMaxClock, gauge
from probes.redact import one_line, redact, url_label
from probes.runtime import ProbeSpec, watched
from probes.samples import ERROR_EXCEPTION, LOCAL_HOST, JSONValue, Sample, error_sample
from probes.tls import client_context

KIND = "metrics_pool"
ERROR_NOT_PROMETHEUS = "not-prometheus"
ERROR_NO_METRIC = "no-metric"
ERROR_HTTP = "http-status"
ROLES = ("used", "max", "idle", "waiting")
MAX_PAGE_BYTES = 8 * 1024 * 1024


class PageError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def read_pools(text: str, names: dict[str, str], label: str) -> dict[str, dict[str, float]]:
    """{pool label value: {role: value}} from a Prometheus text page; raises PageError."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        raise PageError("missing-extra", "prometheus_client is not installed: pip install 'warroom[metrics]'") from None

    wanted = {name: role for role, name in names.items() if name}
    pools: dict[str, dict[str, float]] = {}
    samples = 0
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples += 1
                role = wanted.get(sample.name)
                if role is None:
                    continue
                key = sample.labels.get(label, "") if label else ""
                # Several series per pool (other labels): add them up, as a pool total.
                pools.setdefault(key, {})
                pools[key][role] = pools[key].get(role, 0.0) + float(sample.value)
    except ValueError as exc:
        raise PageError(ERROR_NOT_PROMETHEUS, f"not Prometheus text: {one_line(str(exc), 120)}") from None
    if samples == 0:
        raise PageError(ERROR_NOT_PROMETHEUS, "not Prometheus text: the page has no metrics")
    missing = [names[r] for r in ("used", "max") if names.get(r) and not any(r in p for p in pools.values())]
    if missing:
        raise PageError(ERROR_NO_METRIC, f"the page has no {' or '.join(missing)} (check the metric names)")
    return pools


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


@dataclass
class MetricsWatch:
    url: str
    label_name: str
    names: dict[str, str]
    label: str
    timeout: float = 3.0
    clock: AtMaxClock = field(default_factory=AtMaxClock)

    async def measure(self, host: str = LOCAL_HOST) -> Sample:
        import httpx  # imported when used: a console without metrics pages does not pay for it

        try:
            # The trust store comes from the shared context: httpx's default builds one per client,
            # ~20 ms of CPU a scrape. No proxy from the environment, as for the http probe.
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False,
                                         verify=client_context(None, True, ["http/1.1"])) as client:
                response = await client.get(self.url)
            if response.status_code != 200:
                raise PageError(ERROR_HTTP, f"HTTP {response.status_code} from {self.label}")
            if len(response.content) > MAX_PAGE_BYTES:
                raise PageError(ERROR_NOT_PROMETHEUS, f"page larger than {MAX_PAGE_BYTES} bytes")
            pools = read_pools(response.text, self.names, self.label_name)
        except PageError as exc:
            return error_sample(KIND, self.label, exc.kind, str(exc), host=host)
        except Exception as exc:  # connection errors and the like, one line each
            kind = "refused" if "refused" in str(exc).lower() else ERROR_EXCEPTION
            return error_sample(KIND, self.label, kind, redact(one_line(f"{type(exc).__name__}: {exc}")), host=host)
        now = time.time()
        gauges: list[JSONValue] = []
        for key in sorted(pools):
            values = pools[key]
            used, maximum = _int(values.get("used")), _int(values.get("max"))
            name = f"{key} ({self.label})" if key else self.label
            at_max = self.clock.update(name, used is not None and bool(maximum) and used >= (maximum or 0), now)
            gauges.append(gauge(name, "metrics", used, maximum, at_max_s=at_max,
                                idle=_int(values.get("idle")), waiting=_int(values.get("waiting"))))
        fields: dict[str, JSONValue] = {"gauges": gauges, "metrics": dict(self.names)}  # type: ignore[dict-item]
        return Sample(kind=KIND, target=self.label, ts=now, host=host, fields=fields)


def watch_from_spec(spec: ProbeSpec) -> MetricsWatch:
    opts = spec.options
    url = opts.get("url") or spec.target
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("metrics_pool needs options.url, an http(s):// URL of a /metrics page")
    names = {role: str(opts[role]) for role in ROLES if isinstance(opts.get(role), str) and opts[role]}
    if "used" not in names or "max" not in names:
        raise ValueError("metrics_pool needs the metric names for 'used' and 'max' "
                         "(e.g. hikaricp_connections_active and hikaricp_connections_max)")
    label = opts.get("label", "pool")
    return MetricsWatch(url=url, label_name=str(label) if label is not None else "", names=names,
                        label=redact(spec.target) if spec.target else url_label(url),
                        timeout=min(3.0, spec.timeout))


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    return watched(spec, host, KIND, watch_from_spec)
