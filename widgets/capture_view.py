"""The capture pane: what the packets say, over a window the user picks, and how healthy the capture is.

Needs the capture probe running: ``probes.capture.capture_spec(interface, bpf)``
started on the hub (kind "capture", target = the interface). The pane reads
the store's "capture" samples of its host on a 2 Hz timer, redraws only when
the store changed, and does no I/O: changing the interface or filter, and
exporting the header ring, are messages the app acts on
(``CaptureView.CaptureChanged`` and ``CaptureView.ExportRequested``).

Keys: w cycles the window (10 s, 1 min, 5 min, 15 min, all kept), i edits the
interface, f edits the BPF filter (Enter applies, Escape goes back), x asks for
the last packets' headers to be written to a pcap file, h switches to the next
host (this one, then the SSH hosts given as ``hosts``: the app runs a capture
on each; CaptureChanged carries the host it is for). Arrows and PgUp/PgDn
scroll the sections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from console.engine.store import SeriesKey, Store
from probes.samples import LOCAL_HOST, Sample
from widgets.format import ms
from widgets.visibility import every

#: (label, seconds) the w key cycles through; None keeps every sample the store holds.
WINDOWS: tuple[tuple[str, float | None], ...] = (("10 s", 10.0), ("1 min", 60.0), ("5 min", 300.0),
                                                   ("15 min", 900.0), ("all", None))
_SPARK = "▁▂▃▄▅▆▇█"


def _num(n: float) -> str:
    """1234 -> 1.2k: short, width-stable counts."""
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def sparkline(values: list[float], width: int = 30) -> str:
    values = values[-width:]
    top = max(values, default=0.0)
    if top <= 0:
        return _SPARK[0] * len(values)
    return "".join(_SPARK[min(7, int(v / top * 7.999))] for v in values)


def render_summary(s: dict[str, Any], width: int = 78) -> str:
    """The pane's sections as Textual markup (pure: tests call it too)."""
    lines: list[str] = []
    rates = s.get("rates") or []
    pps = [r[1] for r in rates]
    bps = [r[2] for r in rates]
    if pps:
        lines.append(f"[b]Rate[/]  {sparkline(pps, max(10, width - 34))}  {_num(pps[-1])} pkt/s "
                     f"{_num(bps[-1])}B/s  peak {_num(max(pps))}")
    lines.append(f"[b]Traffic[/]  {_num(s['packets'])} packets, {_num(s['bytes'])}B, {s['flow_count']} flows")
    total = sum(v[0] for v in s["proto"].values()) or 1
    if s["proto"]:
        lines.append("[b]Protocols[/]  " + " · ".join(
            f"{escape(name)} {100 * v[0] / total:.0f}%" for name, v in list(s["proto"].items())[:6]))
    tcp = s["tcp"]
    lines.append("")
    lines.append(f"[b]TCP handshakes[/]  [dim]{tcp['data_segments']} data segments, {tcp['retrans']} retransmitted, "
                 f"{tcp['zero_window']} zero windows, {tcp['rst']} resets[/]")
    if tcp["dest"]:
        lines.append(f"[dim]  {'destination':<24}{'SYN':>6}{'ACKed':>6}{'RST':>5}{'none':>5}{'reSYN':>6}"
                     f"{'rst s/c':>8}{'retr':>6}{'0win':>5}[/]")
        for dest, d in list(tcp["dest"].items())[:12]:
            style = "$error" if d["unanswered"] or d["refused"] else "$warning" if d["rst_server"] else ""
            # The mark says it without colour: ✖ refused or unanswered SYNs, ▲ resets from the server.
            mark = "✖" if style == "$error" else "▲" if style else " "
            row = (f"{mark} {escape(_cut(dest, 23)):<24}{d['syn']:>6}{d['synack']:>6}{d['refused']:>5}"
                   f"{d['unanswered']:>5}"
                   f"{d['syn_retrans']:>6}{str(d['rst_server']) + '/' + str(d['rst_client']):>8}{d['retrans']:>6}"
                   f"{d['zero_window']:>5}")
            lines.append(f"[{style}]{row}[/]" if style else row)
    else:
        lines.append("[dim]no TCP handshakes in this window[/]")
    dns = s["dns"]
    lines.append("")
    rcodes = ", ".join(f"{escape(k)} {v}" for k, v in sorted(dns["rcodes"].items())) or "-"
    lat = dns["latency_ms"]
    lat_text = f"; p50/p95 {ms(lat['p50'])}/{ms(lat['p95'])} ms" if lat["count"] else ""
    unanswered = f"{dns['unanswered']} unanswered"
    if dns["unanswered"]:
        unanswered = f"[$error]{unanswered}[/]"
    lines.append(f"[b]DNS[/]  {dns['queries']} queries, {dns['responses']} answers, {unanswered}{lat_text}")
    if dns["rcodes"]:
        lines.append("      " + rcodes)
    for qname, qtype, outcome, server, count, avg_ms, _max in dns["names"][:8]:
        style = "$error" if outcome in ("unanswered", "SERVFAIL", "REFUSED") else \
            "$warning" if outcome == "NXDOMAIN" else ""
        avg = f"{ms(avg_ms)} ms" if avg_ms is not None else "-"
        row = (f"  {escape(_cut(qname, 22)):<22} {escape(qtype):<5} {escape(outcome):<10} x{count:<4} {avg:>8} "
               f"{escape(_cut(server, 17))}")
        lines.append(f"[{style}]{row}[/]" if style else row)
    tls = s["tls"]
    lines.append("")
    hellos = ", ".join(f"{escape(sni or '(no SNI)')} {escape(ver)} x{c}" for sni, ver, c in tls["hellos"][:4]) or "-"
    lines.append(f"[b]TLS[/]  ClientHello: {hellos}")
    if tls["alerts"] or tls["encrypted_alerts"]:
        alerts = ", ".join(f"[{'$error' if lv == 'fatal' else '$warning'}]{escape(d)}[/] ({escape(lv)}, "
                           f"from {escape(side)}) x{c}" for d, lv, side, c in tls["alerts"][:4])
        enc = f"; {tls['encrypted_alerts']} encrypted" if tls["encrypted_alerts"] else ""
        lines.append(f"      alerts: {alerts or '-'}{enc}")
    if s["http"]:
        lines.append("")
        by_host: dict[str, list[str]] = {}
        for host, code, count in s["http"]:
            style = "$error" if code >= 500 else "$warning" if code >= 400 else "$success"
            by_host.setdefault(host, []).append(f"[{style}]{code}[/] x{count}")
        lines.append("[b]HTTP/1[/]  " + "; ".join(f"{escape(_cut(h, 30))}: {', '.join(c)}"
                                                  for h, c in list(by_host.items())[:6]))
    if s["flows"]:
        lines.append("")
        lines.append("[b]Top flows[/] [dim](by bytes)[/]")
        for proto, a, b, pkts, nbytes in s["flows"][:8]:
            lines.append(f"  {escape(proto):<5} {escape(_cut(a, 21)):<21} → {escape(_cut(b, 21)):<21} "
                         f"{_num(pkts):>5} pkts {_num(nbytes):>5}B")
    if s.get("samples"):
        lines.append("")
        lines.append("[b]Sampled packets[/]")
        lines.extend(f"  [dim]{escape(_cut(str(t), width - 2))}[/]" for t in s["samples"][-3:])
    return "\n".join(lines)


def _setup(sample: Sample) -> tuple[Any, Any]:
    """(interface, filter) a summary was captured with."""
    health = sample.fields.get("health")
    return (health.get("interface"), health.get("filter")) if isinstance(health, dict) else (None, None)


def render_health(sample: Sample | None, window_label: str) -> str:
    if sample is None:
        return ""
    raw = sample.fields.get("health")
    h: dict[str, Any] = raw if isinstance(raw, dict) else {}
    dropped = h.get("dropped_kernel")
    drops = "-" if dropped is None else str(dropped)
    drop_style = "$error" if isinstance(dropped, int) and dropped > 0 else "$success"
    state = str(h.get("state") or "?")
    state_style = "$success" if state == "listening" else "$warning"
    line = (f"[{state_style}]{escape(state)}[/] on [b]{escape(str(h.get('interface') or sample.target))}[/]"
            f" · filter [b]{escape(str(h.get('filter') or '(none)'))}[/] · seen {_num(float(h.get('seen') or 0))}"
            f" · drops [{drop_style}]{drops}[/] · [b]{window_label}[/]")
    if h.get("dissector"):
        line += f"\n[$warning]{escape(str(h['dissector']))}[/]"
    return line


class CaptureView(Vertical, can_focus=False):
    """Capture pane over the store's "capture" samples of ``host`` (see the module docstring)."""

    DEFAULT_CSS = """
    CaptureView {
        border: round $primary;
        border-title-color: $primary;
        height: 1fr;
    }
    CaptureView #capture-health { height: auto; padding: 0 1; }
    CaptureView #capture-controls { height: 1; padding: 0 1; }
    CaptureView #capture-controls Label { width: auto; color: $text-muted; }
    CaptureView #capture-controls Input { border: none; height: 1; padding: 0; background: $panel; }
    CaptureView #capture-controls Input:focus { background: $surface; }
    CaptureView #capture-iface { width: 12; margin-right: 1; }
    CaptureView #capture-filter { width: 1fr; }
    CaptureView #capture-body { height: 1fr; padding: 0 1; }
    CaptureView #capture-body:focus { background: $surface; }
    CaptureView .capture-error { color: $error; }
    """

    BINDINGS = [
        Binding("w", "cycle_window", "Window"),
        Binding("i", "edit_interface", "Interface"),
        Binding("f", "edit_filter", "Filter"),
        Binding("x", "export", "Export headers"),
        Binding("h", "next_host", "Host"),
        Binding("escape", "leave_input", "Back", show=False),
    ]

    refused_actions: frozenset[str] = frozenset()
    """Actions not bound here (a read-only viewer refuses those that start a capture or write a file)."""

    window_index: reactive[int] = reactive(1)
    """Index into WINDOWS of the window shown (default 1 min)."""

    class CaptureChanged(Message):
        """The user asked to capture on ``interface`` with ``bpf``; the app restarts the capture probe."""

        def __init__(self, interface: str, bpf: str, host: str = LOCAL_HOST) -> None:
            super().__init__()
            self.interface = interface
            self.bpf = bpf
            self.host = host

    class ExportRequested(Message):
        """The user asked for the capture ``target``'s header ring to be written to a pcap file."""

        def __init__(self, host: str, target: str) -> None:
            super().__init__()
            self.host = host
            self.target = target

    def __init__(self, store: Store, host: str = LOCAL_HOST, *, interface: str = "any", bpf: str = "",
                 hosts: Sequence[str] = (), id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.host = host
        self.hosts = list(dict.fromkeys([host, *hosts]))
        """Hosts the h key cycles through (this one first)."""
        self.interface = interface
        self.bpf = bpf
        self._seen: tuple[int, int] | None = None
        self._cache: tuple[Any, dict[str, Any] | None] | None = None
        self.border_title = f"Capture ({host})"

    def compose(self) -> ComposeResult:
        yield Static("", id="capture-health")
        with Horizontal(id="capture-controls"):
            yield Label("iface ")
            iface = Input(self.interface, id="capture-iface", placeholder="any", select_on_focus=False)
            iface.can_focus = False  # focusable only when asked for (i / f): keys reach the pane first
            yield iface
            yield Label("filter ")
            bpf = Input(self.bpf, id="capture-filter", placeholder="BPF, e.g. host 10.0.0.5 and port 5432",
                        select_on_focus=False)
            bpf.can_focus = False
            yield bpf
        with VerticalScroll(id="capture-body"):
            yield Static("", id="capture-summary")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return False if action in self.refused_actions else super().check_action(action, parameters)

    def on_mount(self) -> None:
        every(self, 0.5, self.refresh_figures)
        self.call_after_refresh(self.refresh_figures)

    # -- data --------------------------------------------------------------
    def series_key(self) -> SeriesKey | None:
        keys = self.store.keys(kind="capture", host=self.host)
        return keys[-1] if keys else None  # the most recently updated capture of this host

    def current_summary(self) -> dict[str, Any] | None:
        key = self.series_key()
        if key is None:
            return None
        _label, seconds = WINDOWS[self.window_index]
        last = self.store.last(key)
        # Other probes bump store.version many times a second; merge again only when the capture
        # series itself got a new summary or the window changed (a 15-minute window is 900 merges).
        stamp = (key, last.ts if last is not None else None, len(self.store.series(key)), self.window_index)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        # The window ends at the newest summary, not at the wall clock: a capture read from a file
        # (or replayed) is shown as it was; for a live capture the two are a second apart.
        now = max(last.ts, 0.0) if last is not None else None
        ok = [s for s in self.store.window(key, seconds, now=now) if s.ok]
        # After the interface or filter changed, counts under the old one would mislead: show the current one.
        current = _setup(ok[-1]) if ok else None
        fields = [s.fields for s in ok if _setup(s) == current]
        from probes.pcapstream import merge  # only once a capture has Samples: not before the first frame

        summary = merge(fields) if fields else None
        self._cache = (stamp, summary)
        return summary

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_figures()

    def refresh_figures(self, force: bool = False) -> None:
        state = (self.store.version, self.window_index)
        if state == self._seen and not force:
            return
        self._seen = state
        health = self.query_one("#capture-health", Static)
        body = self.query_one("#capture-summary", Static)
        key = self.series_key()
        label = WINDOWS[self.window_index][0]
        if key is None:
            health.update("[$warning]no capture running[/]")
            body.update("Nothing captured yet. Start the capture probe (warroom --capture IFACE, or set the "
                        "interface with [b]i[/] and a BPF filter with [b]f[/] here and press Enter). It needs "
                        "tcpdump and CAP_NET_RAW: sudo setcap cap_net_raw,cap_net_admin=eip $(which tcpdump).")
            return
        last = self.store.last(key)
        if last is not None and not last.ok:
            health.update(f"[$error]capture stopped: {escape(last.error or '')}[/]")
            body.update(f"[$error]{escape(last.message or '')}[/]\n\nThe rest of the console keeps running. "
                        "Fix the above, then press [b]i[/] or [b]f[/] and Enter to start the capture again.")
            return
        ok_last = next((s for s in reversed(self.store.window(key)) if s.ok), None)
        health.update(render_health(ok_last, label))
        summary = self.current_summary()
        if summary is None:
            body.update(f"No capture summaries in the last {label}: press [b]w[/] for a longer window.")
            return
        if summary["packets"] == 0:
            filt = ok_last.fields.get("health", {}).get("filter") if ok_last else ""  # type: ignore[union-attr]
            body.update(f"Listening, but no packet matched in the last {label}. Filter: "
                        f"{escape(str(filt) or '(none)')} — press [b]f[/] to widen it.")
            return
        body.update(render_summary(summary, max(40, self.size.width - 4)))

    # -- actions -----------------------------------------------------------
    def watch_window_index(self) -> None:
        if self.is_mounted:
            self.refresh_figures(force=True)

    def action_cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(WINDOWS)

    def _edit(self, selector: str) -> None:
        box = self.query_one(selector, Input)
        box.can_focus = True
        box.focus()

    def action_edit_interface(self) -> None:
        self._edit("#capture-iface")

    def action_edit_filter(self) -> None:
        self._edit("#capture-filter")

    def action_leave_input(self) -> None:
        self.query_one("#capture-body", VerticalScroll).focus()
        for box in self.query(Input):
            box.can_focus = False

    def action_export(self) -> None:
        key = self.series_key()
        if key is None:
            self.notify("no capture running: nothing to export", severity="warning")
            return
        self.post_message(self.ExportRequested(key[0], key[2]))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.interface = self.query_one("#capture-iface", Input).value.strip() or "any"
        self.bpf = self.query_one("#capture-filter", Input).value.strip()
        self.post_message(self.CaptureChanged(self.interface, self.bpf, self.host))
        self.action_leave_input()

    def action_next_host(self) -> None:
        if len(self.hosts) < 2:
            self.notify("only this host: start warroom with --host H to capture there too", timeout=3)
            return
        self.host = self.hosts[(self.hosts.index(self.host) + 1) % len(self.hosts)]
        self.border_title = f"Capture ({self.host})"
        self._cache = None
        self.refresh_figures(force=True)
