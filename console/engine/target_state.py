"""One state per (host, target), computed in one place from the store, for every pane to show.

The Overview's rows, the Layers tab's rows and the Hosts tab's vantage table
used to judge a target each their own way, so one target could read
"✖ FAIL ... READ TIMEOUT" on one tab and "✓ ok" on another. Now
``TargetStates`` computes a ``TargetState`` per (host, target) once per change
of the store, and every pane shows its word.

The words, worst first (each has a symbol too, so it reads without colour):

- ``FAIL`` ✖: the target does not work now: a layer's latest attempt failed
  (the lowest such layer is named, with its failure kind), the HTTP status is
  5xx, or every attempt in the window failed.
- ``LOSS`` ▲: it works now, but attempts failed within the window, or the
  HTTP status is 4xx.
- ``SLOW`` ~: it works, but a layer took longer than its threshold.
- ``OK`` ●: every layer probed worked in time, and none failed in the window.
- ``WAIT`` ○: no Sample yet.

The figures (p50/p95/p99, jitter, loss) come from the target's primary series:
the highest layer probed (HTTP total time for a URL, else the TCP connect
RTT, else ICMP echo RTT), over the window (60 s).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from console.engine.store import SeriesStats, Store
from console.engine.units import ms
from probes.samples import LOCAL_HOST, Sample
from probes.targets import TargetError, parse_target

#: The layers a target's row shows, bottom up.
LAYERS = ("dns", "tcp", "tls", "http")
#: Every kind that speaks for a target (ICMP is graphed for a host without a port).
TARGET_KINDS = ("dns", "icmp", "tcp", "tls", "http")
#: The series a target's figures come from, best first: the layer closest to what the user asked for.
PRIMARY_SERIES: tuple[tuple[str, str], ...] = (("http", "total_ms"), ("tcp", "rtt_ms"), ("icmp", "rtt_ms"))
#: Above these a working layer is "slow". Generous: a cold DNS cache or a TLS handshake over a long
#: path is not a fault, an HTTP answer slower than a second usually is noticed by users.
DEFAULT_SLOW_MS = {"dns": 200.0, "tcp": 200.0, "tls": 500.0, "http": 1000.0}
#: The field each layer's probe puts its time in (probes.dns time_ms, probes.tcp rtt_ms, probes.tls
#: handshake_ms, probes.http total_ms); other names are tried after it for probes that differ.
LAYER_TIME_FIELD = {"dns": "time_ms", "tcp": "rtt_ms", "tls": "handshake_ms", "http": "total_ms"}
TIME_FIELDS = ("rtt_ms", "time_ms", "total_ms", "handshake_ms", "elapsed_ms", "duration_ms")
WINDOW_S = 60.0

FAIL, LOSS, SLOW, OK, WAIT = "FAIL", "LOSS", "SLOW", "OK", "WAIT"
#: The symbol that carries each word without colour.
SYMBOLS = {FAIL: "✖", LOSS: "▲", SLOW: "~", OK: "●", WAIT: "○"}
#: Words that mean "something is wrong with this target" (the vantage table's "only HOST fails").
FAILING_WORDS = frozenset({FAIL, LOSS})


@dataclass(frozen=True)
class LayerState:
    layer: str
    state: str
    """"ok", "slow", "failing" or "not probed"."""
    reason: str
    """Short: the time, the failure kind, or how to get data."""
    time_ms: float | None = None
    """The layer's latest time, when it worked."""


def sample_time_ms(sample: Sample, layer: str = "") -> float | None:
    preferred = LAYER_TIME_FIELD.get(layer)
    for name in ((preferred,) if preferred else ()) + TIME_FIELDS:
        value = sample.fields.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def not_applicable(layer: str, target_text: str) -> str | None:
    """Why ``layer`` does not apply to the target (None if it does), as probes.layers decides."""
    try:
        target = parse_target(target_text)
    except TargetError:
        return None
    try:
        ipaddress.ip_address(target.host)
        literal = True
    except ValueError:
        literal = False
    if layer == "dns" and literal:
        return "n/a: IP address"
    if layer == "tcp" and target.tcp_port is None:
        return "n/a: no port"
    if layer == "tls" and target.scheme != "https":
        return "n/a: not https"
    if layer == "http" and not target.is_url:
        return "n/a: not a URL"
    return None


def layer_state(layer: str, sample: Sample | None, slow_ms: float) -> LayerState:
    """The state of one layer from its latest Sample (pure: unit-testable without a screen)."""
    if sample is None:
        return LayerState(layer, "not probed", "no probe")
    if not sample.ok:
        return LayerState(layer, "failing", sample.error or "failed")
    elapsed = sample_time_ms(sample, layer)
    if elapsed is None:
        return LayerState(layer, "ok", "ok")
    reason = f"{ms(elapsed)} ms"
    if elapsed > slow_ms:
        return LayerState(layer, "slow", f"{reason} > {slow_ms:.0f}", elapsed)
    return LayerState(layer, "ok", reason, elapsed)


def row_states(samples: Mapping[str, Sample | None], slow_ms: Mapping[str, float],
               target: str) -> dict[str, LayerState]:
    """Every layer's state for one target, from each layer's latest Sample.

    The layered check stops at the first broken layer, so the layers above it
    keep their last (older) Samples: those are shown as not reached rather
    than as a stale "ok".
    """
    out: dict[str, LayerState] = {}
    broken: tuple[str, float] | None = None
    for layer in LAYERS:
        sample = samples.get(layer)
        if sample is None:
            out[layer] = LayerState(layer, "not probed", not_applicable(layer, target) or "no probe")
            continue
        if broken is not None and sample.ts < broken[1]:
            out[layer] = LayerState(layer, "not probed", f"not reached: {broken[0].upper()} failing")
            continue
        out[layer] = state = layer_state(layer, sample, slow_ms.get(layer, DEFAULT_SLOW_MS.get(layer, 1000.0)))
        if state.state == "failing" and broken is None:
            broken = (layer, sample.ts)
    return out


@dataclass(frozen=True)
class TargetState:
    """How one target is doing from one host: the word every pane shows, and why."""

    host: str
    target: str
    word: str
    """FAIL, LOSS, SLOW, OK or WAIT (see the module docstring)."""
    layer: str | None = None
    """The layer the figures come from ("http", "tcp", "icmp"); None while waiting."""
    value_field: str | None = None
    """The field of that layer's Samples the figures are of ("total_ms", "rtt_ms")."""
    stats: SeriesStats | None = None
    """The primary series over the window."""
    status: int | None = None
    """The last HTTP status, when the target is a URL that answered."""
    failure: str | None = None
    """The failure kind behind FAIL or LOSS ("read-timeout", "refused", "http 503"), else None."""
    failure_layer: str | None = None
    """The layer that failure came from."""
    message: str | None = None
    """The original error text of that failure."""
    failure_age_s: float | None = None
    """Seconds since that failure."""
    layers: dict[str, LayerState] = field(default_factory=dict)
    """DNS / TCP / TLS / HTTP, as the Layers tab shows them."""

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.word]

    @property
    def failing(self) -> bool:
        return self.word in FAILING_WORDS


def compute_state(store: Store, host: str, target: str, *, window: float = WINDOW_S,
                  slow_ms: Mapping[str, float] | None = None, now: float | None = None) -> TargetState:
    """The state of ``target`` seen from ``host``, from what the store holds now."""
    now = store.clock() if now is None else now
    thresholds = {**DEFAULT_SLOW_MS, **(slow_ms or {})}
    latest = {kind: store.last((host, kind, target)) for kind in TARGET_KINDS}
    if all(sample is None for sample in latest.values()):
        return TargetState(host, target, WAIT, layers=row_states({}, thresholds, target))
    layers = row_states(latest, thresholds, target)
    layer, field_name = next(((k, f) for k, f in PRIMARY_SERIES if latest[k] is not None), PRIMARY_SERIES[-1])
    stats = store.stats((host, layer, target), field=field_name, seconds=window, now=now)
    http = latest["http"]
    status = http.fields.get("status") if http is not None and http.ok else None
    status = status if isinstance(status, int) and not isinstance(status, bool) else None

    failure: tuple[str, str, Sample] | None = None  # (layer, kind, sample)
    failing_layer = next((s for s in layers.values() if s.state == "failing"), None)
    if failing_layer is not None:
        sample = latest[failing_layer.layer]
        assert sample is not None
        failure = (failing_layer.layer, sample.error or "failed", sample)
    elif layer == "icmp" and latest["icmp"] is not None and not latest["icmp"].ok:
        failure = ("icmp", latest["icmp"].error or "failed", latest["icmp"])
    word = OK
    if failure is not None or (status or 0) >= 500 or (stats.loss_pct or 0) >= 100:
        word = FAIL
    elif (stats.loss_pct or 0) > 0 or (status or 0) >= 400:
        word = LOSS
    elif any(s.state == "slow" for s in layers.values()):
        word = SLOW
    if failure is None and stats.last_error:  # failed earlier in the window (LOSS), or every time (FAIL)
        failed = next((s for s in reversed(store.window((host, layer, target), window, now)) if not s.ok), None)
        if failed is not None:
            failure = (layer, failed.error or "failed", failed)
    if failure is not None:
        failed_layer, kind, sample = failure
        return TargetState(host, target, word, layer, field_name, stats, status, kind, failed_layer,
                           sample.message, max(0.0, now - sample.ts), layers)
    if (status or 0) >= 400:
        assert http is not None
        return TargetState(host, target, word, layer, field_name, stats, status, f"http {status}", "http",
                           str(http.fields.get("reason") or ""), max(0.0, now - http.ts), layers)
    return TargetState(host, target, word, layer, field_name, stats, status, layers=layers)


class TargetStates:
    """Every (host, target)'s state, computed once per change of the store and shared by every pane.

    ``get`` and ``all`` recompute only when the store's version moved since the
    last computation, so panes that redraw at the same moment read the very
    same states; a pane never judges a target by itself.
    """

    def __init__(self, store: Store, *, window: float = WINDOW_S,
                 slow_ms: Mapping[str, float] | None = None) -> None:
        self.store = store
        self.window = window
        self.slow_ms = dict(slow_ms or {})
        self._version = -1
        self._states: dict[tuple[str, str], TargetState] = {}
        self.computations = 0
        """How many times the states were computed (tests check it follows the store, not the callers)."""

    def all(self) -> dict[tuple[str, str], TargetState]:
        """(host, target) -> state, for every target any host has Samples of."""
        if self.store.version != self._version:
            self._version = self.store.version
            self.computations += 1
            now = self.store.clock()
            pairs = dict.fromkeys((host, target) for host, kind, target in self.store.keys(kind=None)
                                  if kind in TARGET_KINDS)
            self._states = {(host, target): compute_state(self.store, host, target, window=self.window,
                                                          slow_ms=self.slow_ms, now=now)
                            for host, target in pairs}
        return self._states

    def get(self, target: str, host: str = LOCAL_HOST) -> TargetState:
        state = self.all().get((host, target))
        if state is None:
            return TargetState(host, target, WAIT, layers=row_states({}, {**DEFAULT_SLOW_MS, **self.slow_ms}, target))
        return state
