"""Before/after figures of two recordings, per target layer and per pool, with the change of each.

The figures come from the same code the console draws with: the recording's
Samples go into a ``Store`` and ``Store.stats`` gives count, loss and the
percentiles (console/engine/stats.py), over the whole recording instead of the
last 60 s. So a p99 here is the p99 the targets row would show over the same
samples.

Per (host, layer, target): samples, success % (a probe that worked, and for
HTTP a status below 400), loss % (the store's: probes that failed), p50/p99 of
the layer's time, and the count of each error kind. Per pool gauge (the pools,
pg_pool, redis_pool and metrics_pool probes): peak and mean utilization, peak
connections in use, the maximum, and the longest time at the maximum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from console.engine.store import SeriesKey, Store
from probes.samples import Sample

#: The time field of each layer's probe (widgets/layer_row.py LAYER_TIME_FIELD, plus ICMP).
LAYER_TIME_FIELD = {"dns": "time_ms", "icmp": "rtt_ms", "tcp": "rtt_ms", "tls": "handshake_ms", "http": "total_ms"}
POOL_KINDS = ("pools", "pg_pool", "redis_pool", "metrics_pool")
#: A store that keeps every Sample of a recording (a day at 1 Hz is 86,400 per series).
WHOLE_RECORDING = 10_000_000


@dataclass
class LayerFigures:
    """One target layer over a recording."""

    host: str
    layer: str
    target: str
    samples: int
    success_pct: float | None
    loss_pct: float | None
    p50_ms: float | None
    p99_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class PoolFigures:
    """One pool gauge over a recording."""

    host: str
    name: str
    source: str
    samples: int
    peak_util_pct: float | None
    mean_util_pct: float | None
    peak_used: int | None
    maximum: int | None
    longest_at_max_s: float


@dataclass
class Figures:
    """Everything ``diff`` compares, for one recording."""

    layers: dict[tuple[str, str, str], LayerFigures]
    pools: dict[tuple[str, str], PoolFigures]
    start: float
    end: float


def _http_ok(sample: Sample) -> bool:
    status = sample.fields.get("status")
    return sample.ok and not (isinstance(status, int) and status >= 400)


def figures(samples: Iterable[Sample]) -> Figures:
    store = Store(per_series=WHOLE_RECORDING, max_series=WHOLE_RECORDING, kind_limits={}, full_detail_s=None)
    gauges: dict[tuple[str, str], list[dict[str, Any]]] = {}
    start, end = float("inf"), float("-inf")
    for sample in samples:
        start, end = min(start, sample.ts), max(end, sample.ts)
        if sample.kind in LAYER_TIME_FIELD:
            store.add(sample)
        elif sample.kind in POOL_KINDS and sample.ok:
            raw = sample.fields.get("gauges")
            for gauge in raw if isinstance(raw, list) else []:
                name = gauge.get("name") if isinstance(gauge, dict) else None
                if isinstance(gauge, dict) and isinstance(name, str):
                    gauges.setdefault((sample.host, name), []).append(gauge)
    layers = {key: _layer(store, key) for key in store.keys(kind=None)}
    pools = {key: _pool(key, entries) for key, entries in gauges.items()}
    return Figures(layers, pools, start if layers or pools else 0.0, end if layers or pools else 0.0)


def _layer(store: Store, key: SeriesKey) -> LayerFigures:
    host, layer, target = key
    stats = store.stats(key, field=LAYER_TIME_FIELD[layer], seconds=None)
    window = store.window(key)
    succeeded = sum(1 for s in window if (_http_ok(s) if layer == "http" else s.ok))
    errors = Counter(s.error for s in window if s.error)
    statuses = Counter(f"HTTP {s.fields['status']}" for s in window
                       if layer == "http" and s.ok and isinstance(s.fields.get("status"), int)
                       and int(s.fields["status"]) >= 400)  # type: ignore[arg-type]
    errors.update(statuses)
    return LayerFigures(host, layer, target, stats.count,
                        100.0 * succeeded / stats.count if stats.count else None,
                        stats.loss_pct, stats.p50, stats.p99, dict(errors.most_common()))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pool(key: tuple[str, str], entries: list[dict[str, Any]]) -> PoolFigures:
    utils = [u for g in entries if (u := _number(g.get("util_pct"))) is not None]
    used = [int(u) for g in entries if (u := _number(g.get("used"))) is not None]
    maxima = [int(m) for g in entries if (m := _number(g.get("max"))) is not None]
    at_max = [a for g in entries if (a := _number(g.get("at_max_s"))) is not None]
    return PoolFigures(key[0], key[1], str(entries[-1].get("source", "")), len(entries),
                       max(utils) if utils else None, sum(utils) / len(utils) if utils else None,
                       max(used) if used else None, maxima[-1] if maxima else None, max(at_max, default=0.0))


def change(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


#: The figures a layer row compares, with the unit of each.
LAYER_METRICS = (("samples", ""), ("success_pct", "%"), ("loss_pct", "%"), ("p50_ms", "ms"), ("p99_ms", "ms"))
POOL_METRICS = (("peak_util_pct", "%"), ("mean_util_pct", "%"), ("peak_used", ""), ("maximum", ""),
                ("longest_at_max_s", "s"))


def compare(before: Figures, after: Figures) -> dict[str, Any]:
    """The diff as plain data: one row per layer and per pool, each metric with before, after and change."""
    rows: list[dict[str, Any]] = []
    for key in sorted(set(before.layers) | set(after.layers), key=lambda k: (k[2], k[0], k[1])):
        b, a = before.layers.get(key), after.layers.get(key)
        rows.append({
            "host": key[0], "layer": key[1], "target": key[2], "in": _presence(b, a),
            "metrics": {name: _triple(getattr(b, name, None), getattr(a, name, None)) for name, _ in LAYER_METRICS},
            "errors": _errors(b.errors if b else {}, a.errors if a else {}),
        })
    pools: list[dict[str, Any]] = []
    for pkey in sorted(set(before.pools) | set(after.pools)):
        pb, pa = before.pools.get(pkey), after.pools.get(pkey)
        either = pa or pb
        pools.append({
            "host": pkey[0], "pool": pkey[1], "in": _presence(pb, pa),
            "source": either.source if either is not None else "",
            "metrics": {name: _triple(getattr(pb, name, None), getattr(pa, name, None)) for name, _ in POOL_METRICS},
        })
    return {"before": {"start": before.start, "end": before.end}, "after": {"start": after.start, "end": after.end},
            "targets": rows, "pools": pools}


def _presence(before: object | None, after: object | None) -> str:
    return "both" if before is not None and after is not None else ("before" if before is not None else "after")


def _triple(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after, "change": change(before, after)}


def _errors(before: dict[str, int], after: dict[str, int]) -> dict[str, dict[str, int]]:
    return {kind: {"before": before.get(kind, 0), "after": after.get(kind, 0),
                   "change": after.get(kind, 0) - before.get(kind, 0)}
            for kind in sorted(set(before) | set(after))}
