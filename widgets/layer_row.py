"""LayerRow: one target's DNS / TCP / TLS / HTTP layers, each ok, slow, failing or not probed.

Needs: the layer probes started for the target, each with the SAME target text
(the row looks up the series ``(host, kind, target)`` for kind in dns, tcp,
tls, http): ``ProbeSpec("dns", T)``, ``ProbeSpec("tcp", T)``, ``ProbeSpec("tls", T)``,
``ProbeSpec("http", T)``. A layer never probed for the target says "not probed"
(a plain host:port target has no TLS or HTTP). If a probe names its series
differently, pass ``layer_targets={"dns": "db.internal"}``.

The states come from console/engine/target_state.py (the one place a target is
judged, shared with the Overview and the vantage table); each cell reads the
layer's latest Sample only:
- failing: the Sample has an error; the reason is its failure kind ("timeout", "refused", "cert-expired" ...).
- slow: it worked but its time is above the layer's threshold (``slow_ms``).
- ok: it worked in time; the reason is the time.
- not probed: no Sample for that layer; the reason says whether it does not apply to the target
  ("n/a: not https"), has no probe, or was not reached because a lower layer is failing.

State is spelled out and marked with a symbol (✓ ~ ✗ ·) as well as coloured,
so it reads without colour and over a screen share.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from console.engine.store import Store
from console.engine.target_state import (
    DEFAULT_SLOW_MS,
    LAYERS,
    LayerState,
    TargetStates,
    layer_state,
    not_applicable,
    row_states,
    sample_time_ms,
)
from probes.samples import LOCAL_HOST
from widgets.visibility import every

__all__ = ["DEFAULT_SLOW_MS", "LAYERS", "LayerRow", "LayerState", "layer_state", "not_applicable", "row_states",
           "sample_time_ms"]
SYMBOLS = {"ok": "✓", "slow": "~", "failing": "✗", "not probed": "·"}


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
                 states: TargetStates | None = None, timer: bool = True,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.target_states = states if states is not None and not slow_ms else TargetStates(store, slow_ms=slow_ms)
        """Where the states come from: the app's shared TargetStates, or one of its own when standalone."""
        self.target = target
        self.host = host
        self.slow_ms = {**DEFAULT_SLOW_MS, **(slow_ms or {})}
        self.layer_targets = layer_targets or {}
        self.timer = timer
        """Redraw on a timer of its own; False when a pane redraws its rows (one timer, not one per target)."""
        self._seen_version = -1
        self.states: dict[str, LayerState] = {}
        """The states last drawn, by layer (what tests and the app can read)."""

    def compose(self) -> ComposeResult:
        with Horizontal():
            for layer in LAYERS:
                yield Static("", id=f"layer-{layer}", classes="layer")

    def on_mount(self) -> None:
        if self.timer:
            every(self, 0.5, self._poll)
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
        if self.layer_targets:  # series named differently per layer: not a target the engine knows as one
            latest = {layer: self.store.last((self.host, layer, self.layer_targets.get(layer, self.target)))
                      for layer in LAYERS}
            return row_states(latest, self.slow_ms, self.target)
        return self.target_states.get(self.target, self.host).layers

    def redraw(self) -> None:
        self.states = self.compute()
        cells = {cell.id: cell for cell in self.query(".layer").results(Static)}
        if len(cells) < len(LAYERS):  # mounted at run time (the Layers tab after the first frame): its cells
            self._seen_version = -1  # may not be in yet; draw once they are
            self.call_after_refresh(self._poll)
            return
        for layer, state in self.states.items():
            cell = cells[f"layer-{layer}"]
            for name in SYMBOLS:
                cell.set_class(name == state.state, f"-{name.replace(' ', '-')}")
            cell.update(f"{SYMBOLS[state.state]} {layer.upper()} {state.state}\n  {state.reason}", layout=False)
