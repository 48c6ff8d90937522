"""The capture pane in a real App: what it shows at 80x24, its window key, its inputs and messages."""

from __future__ import annotations

import io
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter
from textual.app import App, ComposeResult
from textual.content import Content
from textual.widgets import Input, Static

from console.engine.store import Store
from probes.pcapstream import CaptureSummary, PcapStream
from probes.samples import Sample, error_sample
from widgets.capture_view import CaptureView


def refused_sample(n: int, ts: float, port: int = 6379, bpf: str = "not port 22") -> Sample:
    frames = []
    for i in range(n):
        frames += [Ether() / IP(src="127.83.8.1", dst="127.83.8.2") / TCP(sport=40000 + i, dport=port, flags="S"),
                   Ether() / IP(src="127.83.8.2", dst="127.83.8.1") / TCP(sport=port, dport=40000 + i, flags="RA")]
    buf = io.BytesIO()
    writer = PcapWriter(buf, sync=True)
    for frame in frames:
        frame.time = ts
        writer.write(frame)
    summary = CaptureSummary()
    summary.add_packets(PcapStream().feed(buf.getvalue()))
    fields = summary.snapshot(final=True)
    fields["duration"] = 1.0
    fields["health"] = {"interface": "eth0", "filter": bpf, "state": "listening", "seen": 2 * n,
                        "dropped_kernel": 0}
    return Sample(kind="capture", target="eth0", ts=ts, fields=fields)


class PaneApp(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.changes: list[tuple[str, str]] = []
        self.exports: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield CaptureView(self.store, interface="eth0", bpf="not port 22")

    def on_capture_view_capture_changed(self, message: CaptureView.CaptureChanged) -> None:
        self.changes.append((message.interface, message.bpf))

    def on_capture_view_export_requested(self, message: CaptureView.ExportRequested) -> None:
        self.exports.append((message.host, message.target))


def text_of(app: App, selector: str) -> str:
    """The text a reader sees (markup resolved)."""
    return Content.from_markup(str(app.query_one(selector, Static).content)).plain


async def test_empty_store_says_why_and_how_to_get_data() -> None:
    app = PaneApp(Store())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        body = text_of(app, "#capture-summary")
        assert "Nothing captured yet" in body and "setcap cap_net_raw,cap_net_admin=eip" in body
        await pilot.press("x")
        assert app.exports == []


async def test_counts_over_the_selected_window_and_the_w_key() -> None:
    store = Store()
    now = time.time()
    store.add(refused_sample(5, now - 40))  # inside 1 min, outside 10 s
    store.add(refused_sample(2, now - 1))
    app = PaneApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = next(line for line in text_of(app, "#capture-summary").splitlines() if "127.83.8.2:6379" in line)
        assert row.split()[2:6] == ["7", "0", "7", "0"]  # 1 min (default): SYN 7, SYN-ACK 0, RST 7, none 0
        assert row.split()[0] == "✖"  # refused, said without colour
        health = text_of(app, "#capture-health")
        assert "eth0" in health and "not port 22" in health and "drops 0" in health and "1 min" in health
        await pilot.press("w", "w", "w", "w")  # 5 min, 15 min, all, back to 10 s
        await pilot.pause()
        assert "10 s" in text_of(app, "#capture-health")
        row = next(line for line in text_of(app, "#capture-summary").splitlines() if "127.83.8.2:6379" in line)
        assert row.split()[2:6] == ["2", "0", "2", "0"]


async def test_filter_and_interface_from_the_keyboard_post_a_change() -> None:
    store = Store()
    store.add(refused_sample(1, time.time()))
    app = PaneApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f")
        assert app.focused is app.query_one("#capture-filter", Input)
        await pilot.press("ctrl+a", "ctrl+k", *"port 53", "enter")
        await pilot.press("i", "ctrl+a", "ctrl+k", *"lo", "enter")
        await pilot.pause()
        assert app.changes == [("eth0", "port 53"), ("lo", "port 53")]
        await pilot.press("x")
        await pilot.pause()
        assert app.exports == [("local", "eth0")]


async def test_a_capture_without_privilege_shows_what_to_run() -> None:
    store = Store()
    store.add(error_sample("capture", "any", "permission", "packet capture needs CAP_NET_RAW; run one of: "
                           "sudo setcap cap_net_raw,cap_net_admin=eip /usr/bin/tcpdump"))
    app = PaneApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "capture stopped: permission" in text_of(app, "#capture-health")
        assert "sudo setcap cap_net_raw,cap_net_admin=eip /usr/bin/tcpdump" in text_of(app, "#capture-summary")


async def test_after_a_filter_change_only_the_new_filters_counts_are_shown() -> None:
    store = Store()
    now = time.time()
    store.add(refused_sample(5, now - 3, bpf="not port 22"))
    store.add(refused_sample(2, now - 1, bpf="port 6379"))
    app = PaneApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = next(line for line in text_of(app, "#capture-summary").splitlines() if "127.83.8.2:6379" in line)
        assert row.split()[2:6] == ["2", "0", "2", "0"]
        assert "filter port 6379" in text_of(app, "#capture-health")
