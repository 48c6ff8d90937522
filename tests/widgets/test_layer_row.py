"""LayerRow in a tiny app at 80x24: each layer's state comes from the store's latest Sample."""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.widgets import Static

from console.engine.store import Store
from probes.samples import Sample, error_sample
from widgets.layer_row import LayerRow, layer_state, row_states

TARGET = "https://db.internal:8443/health"


class RowApp(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield LayerRow(self.store, TARGET)


def ok(kind: str, **fields: float) -> Sample:
    return Sample(kind=kind, target=TARGET, ts=time.time(), fields=dict(fields))


def cell_text(app: App[None], layer: str) -> str:
    return str(app.query_one(f"#layer-{layer}", Static).render())


async def test_states_symbols_and_reasons_at_80x24() -> None:
    store = Store()
    store.add(ok("dns", time_ms=3.2))
    store.add(ok("tcp", rtt_ms=350.0))  # above the 200 ms default: slow
    store.add(error_sample("tls", TARGET, "cert-expired", "certificate has expired"))
    app = RowApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "✓ DNS ok" in cell_text(app, "dns") and "3.2 ms" in cell_text(app, "dns")
        assert "~ TCP slow" in cell_text(app, "tcp") and "350 ms > 200" in cell_text(app, "tcp")
        assert "✗ TLS failing" in cell_text(app, "tls") and "cert-expired" in cell_text(app, "tls")
        assert "· HTTP not probed" in cell_text(app, "http")
        assert app.query_one("#layer-tls").has_class("-failing")
        assert app.query_one("#layer-dns").has_class("-ok")
        # Every cell fits a quarter of 80 columns: the state word is not cut off.
        for layer in ("dns", "tcp", "tls", "http"):
            assert app.query_one(f"#layer-{layer}").size.width >= 16


async def test_row_follows_the_latest_sample() -> None:
    store = Store()
    store.add(error_sample("tcp", TARGET, "refused", "Connect call failed"))
    app = RowApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "refused" in cell_text(app, "tcp")
        store.add(ok("tcp", rtt_ms=0.4))  # the service came back
        await pilot.pause(0.7)  # one refresh tick (2 Hz)
        assert "✓ TCP ok" in cell_text(app, "tcp") and not app.query_one("#layer-tcp").has_class("-failing")


def test_layer_state_rules() -> None:
    assert layer_state("http", None, 1000).state == "not probed"
    assert layer_state("http", ok("http", total_ms=999.0), 1000).state == "ok"
    assert layer_state("http", ok("http", total_ms=1001.0), 1000).state == "slow"
    failing = layer_state("dns", error_sample("dns", TARGET, "nxdomain", "NXDOMAIN"), 200)
    assert (failing.state, failing.reason) == ("failing", "nxdomain")


def test_layers_above_a_failure_are_not_reached_not_stale_ok() -> None:
    then = time.time() - 10
    samples = {
        "dns": Sample("dns", TARGET, then + 5, {"time_ms": 2.0}),
        "tcp": Sample("tcp", TARGET, then + 5, {}, error="timeout", message="no SYN-ACK"),
        "tls": Sample("tls", TARGET, then, {"handshake_ms": 20.0}),  # from before TCP broke
        "http": None,
    }
    states = row_states(samples, {}, TARGET)
    assert [states[layer].state for layer in ("dns", "tcp", "tls")] == ["ok", "failing", "not probed"]
    assert states["tls"].reason == "not reached: TCP failing"


def test_layers_that_do_not_apply_say_so() -> None:
    states = row_states({}, {}, "10.0.0.5:5432")
    assert states["dns"].reason == "n/a: IP address"
    assert states["tls"].reason == "n/a: not https"
    assert states["http"].reason == "n/a: not a URL"
    assert states["tcp"].reason == "no probe"
