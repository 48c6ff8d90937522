"""HostsView and VantageTable at 80x24, fed from a Store as the hub would fill it."""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

from console.engine.store import Store
from console.remote.host import status_sample
from probes.samples import Sample
from widgets.hosts_view import HostsView, host_lines
from widgets.vantage_table import VantageTable, vantage_rows

PALETTE = {"error": "red", "warning": "yellow", "success": "green"}


def tcp(host: str, target: str, rtt: float | None, ts: float, error: str | None = None) -> Sample:
    if error:
        return Sample(kind="tcp", target=target, ts=ts, host=host, error=error, message=f"{error} from {host}")
    return Sample(kind="tcp", target=target, ts=ts, host=host, fields={"rtt_ms": rtt})


def filled_store() -> Store:
    """local and prod-1 reach db:5432; prod-2 times out to it. Everyone reaches cache:6379."""
    store = Store()
    now = time.time()
    store.add(status_sample("prod-1", "connected", "agent running (python 3.11.7, pid 10)", mode="agent"))
    store.add(status_sample("prod-2", "connected", "agent running (python 3.11.7, pid 11)", mode="agent"))
    for i in range(10):
        ts = now - 10 + i
        for host in ("local", "prod-1", "prod-2"):
            store.add(tcp(host, "127.0.0.1:6379", 0.5 + i * 0.01, ts))
        store.add(tcp("local", "127.0.0.1:5432", 1.0 + i * 0.1, ts))
        store.add(tcp("prod-1", "127.0.0.1:5432", 2.0 + i * 0.1, ts))
        store.add(tcp("prod-2", "127.0.0.1:5432", None, ts, error="timeout") if i % 2 else
                  tcp("prod-2", "127.0.0.1:5432", 40.0, ts))
    return store


def test_vantage_rows_name_the_only_host_that_fails() -> None:
    hosts, rows = vantage_rows(filled_store())
    assert hosts == ["local", "prod-1", "prod-2"]
    by_target = {r.target: r for r in rows}
    assert by_target["127.0.0.1:5432"].only == ("prod-2",)
    assert by_target["127.0.0.1:6379"].only == ()
    cell = by_target["127.0.0.1:5432"].cells["prod-2"]
    assert cell.loss_pct == 50.0 and cell.last_error == "timeout" and cell.p50 == 40.0
    local = by_target["127.0.0.1:5432"].cells["local"]
    assert local.loss_pct == 0.0 and local.p50 is not None and 1.0 <= local.p50 <= 2.0


def test_host_lines_show_countdown_and_failures() -> None:
    store = Store()
    store.add(status_sample("prod-1", "reconnecting", "ConnectionLost: lost; reconnecting in 8 s", retry_in=8.0))
    store.add(status_sample("prod-2", "host_key_unknown", "host key for prod-2 is unknown: ssh-ed25519 SHA256:abc",
                            fingerprint="SHA256:abc"))
    lines = {line.host: line for line in host_lines(store, ["prod-0"], now=time.time() + 3)}
    assert lines["prod-0"].state == "waiting"
    assert lines["prod-1"].text.startswith("reconnecting in 5 s: ConnectionLost: lost")
    assert lines["prod-1"].countdown
    assert "host key unknown" in lines["prod-2"].text and "SHA256:abc" in lines["prod-2"].text


class Harness(App[None]):
    def __init__(self, store: Store, hosts: list[str] | None = None) -> None:
        super().__init__()
        self.store = store
        self.hosts = hosts or []

    def compose(self) -> ComposeResult:
        yield HostsView(self.store, self.hosts)
        yield VantageTable(self.store)


def screen_text(app: App[None]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_update(full=True).strips)  # type: ignore[attr-defined]


async def test_widgets_render_at_80x24_and_the_table_is_keyboard_usable() -> None:
    store = filled_store()
    app = Harness(store, ["prod-1", "prod-2"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        hosts_text = str(app.query_one(HostsView).render())
        assert "prod-1" in hosts_text and "connected" in hosts_text and "last sample" in hosts_text
        table = app.query_one(DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["target", "local", "prod-1", "prod-2"]
        assert table.row_count == 2
        banner = app.query_one(".vantage-empty", Static)
        assert banner.display and "127.0.0.1:5432: only prod-2 fails" in str(banner.render())
        row = table.get_row("127.0.0.1:5432")
        assert "only prod-2 fails" in str(row[0]) and "✖ FAIL tcp timeout" in str(row[3]) and "50%" in str(row[3])
        table.focus()
        await pilot.press("down")
        assert table.cursor_row == 1
        # New samples arrive: the table redraws and keeps the cursor where it was.
        store.add(tcp("prod-2", "127.0.0.1:6379", None, time.time(), error="refused"))
        await pilot.pause(1.2)
        assert table.cursor_row == 1
        assert "only prod-2 fails" in str(table.get_row("127.0.0.1:6379")[0])


async def test_empty_widgets_say_how_to_get_data() -> None:
    app = Harness(Store())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "--host" in str(app.query_one(HostsView).render())
        empty = app.query_one(".vantage-empty", Static)
        assert empty.display and "No target samples yet" in str(empty.render())
        assert not app.query_one(DataTable).display


def test_rule_names_the_only_failing_vantage_point() -> None:
    from console.diagnosis.vantage import only_some_vantage_points_fail, remote_host_not_probing

    store = filled_store()
    findings = list(only_some_vantage_points_fail(store))
    assert [f.title for f in findings] == ["127.0.0.1:5432 fails only from prod-2; local, prod-1 reach it"]
    assert "timeout" in findings[0].evidence[0]
    assert not list(remote_host_not_probing(store))
    store.add(status_sample("prod-2", "host_key_changed", "host key for prod-2 CHANGED: ..."))
    assert [f.title for f in remote_host_not_probing(store)] == ["prod-2 is not probing: host key changed"]
