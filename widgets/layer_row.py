"""LayerRow: one target's DNS / TCP / TLS / HTTP layers, each ok, slow, failing or not probed.

Needs: the layer probes started for the target, each with the SAME target text
(the row looks up the series ``(host, kind, target)`` for kind in dns, tcp,
tls, http): ``ProbeSpec("dns", T)``, ``ProbeSpec("tcp", T)``, ``ProbeSpec("tls", T)``,
``ProbeSpec("http", T)``. A layer never probed for the target says "not probed"
(a plain host:port target has no TLS or HTTP). If a probe names its series
differently, pass ``layer_targets={"dns": "db.internal"}``.

Each cell reads the layer's latest Sample only:
- failing: the Sample has an error; the reason is its failure kind ("timeout", "refused", "cert-expired" ...).
- slow: it worked but its time is above the layer's threshold (``slow_ms``).
- ok: it worked in time; the reason is the time.
- not probed: no Sample for that layer; the reason says whether it does not apply to the target
  ("n/a: not https"), has no probe, or was not reached because a lower layer is failing.

State is spelled out and marked with a symbol (✓ ~ ✗ ·) as well as coloured,
so it reads without colour and over a screen share.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from console.engine.store import Store
from probes.samples import LOCAL_HOST, Sample
from probes.targets import TargetError, parse_target
from widgets.visibility import when_shown

LAYERS = ("dns", "tcp", "tls", "http")
#: Above these a working layer is "slow". Generous: a cold DNS cache or a TLS handshake over a long
#: path is not a fault, an HTTP answer slower than a second usually is noticed by users.
DEFAULT_SLOW_MS = {"dns": 200.0, "tcp": 200.0, "tls": 500.0, "http": 1000.0}
#: The field each layer's probe puts its time in (probes.dns time_ms, probes.tcp rtt_ms, probes.tls
#: handshake_ms, probes.http total_ms); other names are tried after it for probes that differ.
LAYER_TIME_FIELD = {"dns": "time_ms", "tcp": "rtt_ms", "tls": "handshake_ms", "http": "total_ms"}
TIME_FIELDS = ("rtt_ms", "time_ms", "total_ms", "handshake_ms", "elapsed_ms", "duration_ms")
SYMBOLS = {"ok": "✓", "slow": "~", "failing": "✗", "not probed": "·"}


@dataclass(frozen=True)
class LayerState:
    layer: str
    state: str
    """"ok", "slow", "failing" or "not probed"."""
    reason: str
    """Short: the time, the failure kind, or how to get data."""


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


def row_states(samples: dict[str, Sample | None], slow_ms: dict[str, float], target: str) -> dict[str, LayerState]:
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


def layer_state(layer: str, sample: Sample | None, slow_ms: float) -> LayerState:
    """The state of one layer from its latest Sample (pure: unit-testable without a screen)."""
    if sample is None:
        return LayerState(layer, "not probed", "no probe")
    if not sample.ok:
        return LayerState(layer, "failing", sample.error or "failed")
    elapsed = sample_time_ms(sample, layer)
    if elapsed is None:
        return LayerState(layer, "ok", "ok")
    reason = f"{elapsed:.0f} ms" if elapsed >= 10 else f"{elapsed:.1f} ms"
    if elapsed > slow_ms:
        return LayerState(layer, "slow", f"{reason} > {slow_ms:.0f}")
    return LayerState(layer, "ok", reason)


class LayerRow(Widget):
    """Four cells, DNS / TCP / TLS / HTTP, for one target as seen from one host."""

    DEFAULT_CSS = """
    LayerRow {
        height: 2;
        width: 1fr;
    }
    LayerRow > Horizontal {
        height: 2;
    }
    LayerRow .layer {
        width: 1fr;
        height: 2;
        padding: 0 1;
        background: $panel;
        margin-right: 1;
    }
    LayerRow .layer.-ok { color: $success; }
    LayerRow .layer.-slow { color: $warning; text-style: bold; }
    LayerRow .layer.-failing { color: $error; text-style: bold reverse; }
    LayerRow .layer.-not-probed { color: $text-muted; }
    """

    def __init__(self, store: Store, target: str, *, host: str = LOCAL_HOST,
                 slow_ms: dict[str, float] | None = None, layer_targets: dict[str, str] | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.target = target
        self.host = host
        self.slow_ms = {**DEFAULT_SLOW_MS, **(slow_ms or {})}
        self.layer_targets = layer_targets or {}
        self._seen_version = -1
        self.states: dict[str, LayerState] = {}
        """The states last drawn, by layer (what tests and the app can read)."""

    def compose(self) -> ComposeResult:
        with Horizontal():
            for layer in LAYERS:
                yield Static("", id=f"layer-{layer}", classes="layer")

    def on_mount(self) -> None:
        self.set_interval(0.5, when_shown(self, self._poll))
        self._poll()

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self._poll()

    def _poll(self) -> None:
        if self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        self.redraw()

    def compute(self) -> dict[str, LayerState]:
        latest = {layer: self.store.last((self.host, layer, self.layer_targets.get(layer, self.target)))
                  for layer in LAYERS}
        return row_states(latest, self.slow_ms, self.target)

    def redraw(self) -> None:
        self.states = self.compute()
        for layer, state in self.states.items():
            cell = self.query_one(f"#layer-{layer}", Static)
            for name in SYMBOLS:
                cell.set_class(name == state.state, f"-{name.replace(' ', '-')}")
            cell.update(f"{SYMBOLS[state.state]} {layer.upper()} {state.state}\n  {state.reason}")
