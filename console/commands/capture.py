"""`warroom capture FILE.pcap|FILE.pcapng`: summarise a capture file without a screen.

The file goes through the same parser and summariser as a live capture, so
the numbers match what the capture pane would show for the same packets.

Exit status: 0 summarised the whole file; 1 the file is cut off or corrupt
part-way (what came before is summarised, stderr says where it stopped, as
``tcpdump -r`` does); 2 nothing readable (not a capture, empty, missing).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from typing import Any

from console.engine.units import ms_unit
from console.settings.errors import UsageError, interrupted_status
from console.settings.settings import CaptureFileSettings, Settings, build_capture_settings
from probes.pcapstream import DEFAULT_DNS_PORTS, CaptureSummary, PcapStream, merge
from probes.samples import Sample

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_BAD_INPUT = 2
CHUNK = 1 << 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="warroom capture",
                     description="Summarise a pcap or pcapng file: flows, protocol mix, TCP handshakes, "
                                 "resets, retransmissions, DNS, TLS and HTTP.")
    parser.add_argument("file", metavar="FILE", nargs="?",
                        help="a .pcap or .pcapng file (tcpdump -w, Wireshark, dumpcap); omit it with --interface")
    live = parser.add_argument_group("live capture (instead of a file)")
    live.add_argument("-i", "--interface", metavar="IFACE", help="capture on IFACE (any, lo, eth0, ...) with tcpdump")
    live.add_argument("-f", "--filter", metavar="BPF", dest="bpf",
                      help="BPF filter (default: leave out SSH, this console's own session included)")
    live.add_argument("--duration", type=float, default=10.0, metavar="SECONDS",
                      help="how long to capture before summarising (default 10, at most 3600)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="flows to list (default 10)")
    parser.add_argument("--dns-port", type=int, action="append", metavar="PORT",
                        help=f"UDP port carrying DNS (repeatable; default {', '.join(map(str, DEFAULT_DNS_PORTS))})")
    parser.add_argument("--export-headers", metavar="OUT.pcap",
                        help="also write the last --ring packets' headers (no payload) to OUT.pcap (a new file)")
    parser.add_argument("--force", action="store_true", help="with --export-headers: replace OUT.pcap if it exists")
    parser.add_argument("--ring", type=int, default=1000, metavar="N", help="packets kept for --export-headers")
    parser.add_argument("--pane", action="store_true",
                        help="show the file in the capture pane (w cycles the window, q quits) instead of printing")
    return parser


def file_samples(path: str, *, interval: float = 1.0, dns_ports: tuple[int, ...] = DEFAULT_DNS_PORTS,
                 target: str | None = None) -> tuple[list[Sample], PcapStream]:
    """The file as the capture probe would have reported it live: one Sample per ``interval`` of capture time.

    Raises OSError when the file cannot be read.
    """
    from probes.dissect import ScapyDissector

    summary = CaptureSummary(dns_ports=dns_ports, dissect_budget=None, ring_size=0, dissector=ScapyDissector())
    stream = PcapStream()
    samples: list[Sample] = []
    name = target or os.path.basename(path)
    boundary: float | None = None

    def emit(now: float, final: bool = False) -> None:
        fields = summary.snapshot(now=now, final=final)
        fields["health"] = {"interface": name, "filter": "(file)", "state": "replayed", "seen": summary.packets,
                            "dropped_kernel": None, "stream_error": stream.error}
        samples.append(Sample(kind="capture", target=name, ts=now, fields=fields))

    with open(path, "rb") as fh:
        while stream.error is None:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            packets = stream.feed(chunk)
            start = 0
            for i, packet in enumerate(packets):
                if boundary is None:
                    boundary = packet[0] + interval
                elif packet[0] >= boundary:
                    summary.add_packets(packets[start:i])
                    start = i
                    while packet[0] >= boundary:  # quiet seconds still get a (zero) sample: rates stay honest
                        emit(boundary)
                        boundary += interval
            summary.add_packets(packets[start:])
    stream.close()
    if summary.first_ts is not None:
        emit(summary.last_ts, final=True)
    return samples, stream


def pane_app(path: str, samples: list[Sample]) -> Any:
    """A minimal app around the capture pane, for a file (the console's own app shows live captures)."""
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import Footer

    from console.engine.store import Store
    from widgets.capture_view import WINDOWS, CaptureView

    store = Store(per_series=max(3600, len(samples)))
    for sample in samples:
        store.add(sample)

    class FileCaptureApp(App[None]):
        TITLE = f"warroom capture {os.path.basename(path)}"
        BINDINGS = [Binding("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            view = CaptureView(store, interface=samples[-1].target if samples else "")
            view.window_index = len(WINDOWS) - 1  # the whole file
            yield view
            yield Footer()

        def on_capture_view_export_requested(self, message: CaptureView.ExportRequested) -> None:
            self.notify("this pane shows a file: write its headers with "
                        "warroom capture FILE --export-headers OUT.pcap", severity="warning")

        def on_capture_view_capture_changed(self, message: CaptureView.CaptureChanged) -> None:
            self.notify("this pane shows a file: capture live with "
                        f"warroom capture -i {message.interface} -f '{message.bpf}'", severity="warning")

    return FileCaptureApp()


def summarise_file(path: str, *, dns_ports: tuple[int, ...] = DEFAULT_DNS_PORTS, top: int = 10,
                   ring_size: int = 0) -> tuple[dict[str, Any], PcapStream, CaptureSummary]:
    """Read ``path`` and return (merged summary, the stream with its format and error, the summariser).

    Raises OSError when the file cannot be read at all.
    """
    from probes.dissect import ScapyDissector  # scapy only once a file is really read

    summary = CaptureSummary(dns_ports=dns_ports, dissect_budget=None, ring_size=ring_size, top=top,
                             dissector=ScapyDissector(), sample_every=max(1, 1000))
    stream = PcapStream()
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            summary.add_packets(stream.feed(chunk))
            if stream.error is not None:
                break
    stream.close()
    snap = summary.snapshot(final=True)
    merged = merge([snap], top=top)
    merged["file"] = {"path": path, "format": stream.format, "linktype": stream.linktype,
                      "snaplen": stream.snaplen, "packets": stream.packets,
                      "first_ts": summary.first_ts, "last_ts": summary.last_ts if summary.first_ts else None,
                      "error": stream.error, "error_offset": stream.error_offset,
                      "parse_errors": summary.parse_errors}
    return merged, stream, summary


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def render_text(s: dict[str, Any]) -> str:
    f = s["file"]
    span = (f["last_ts"] - f["first_ts"]) if f["first_ts"] is not None and f["last_ts"] is not None else 0.0
    rate = f" ({s['packets'] / span:.0f} pkt/s)" if span > 0 else ""
    lines = [f"{f['path']}: {f['format']}, link-type {f['linktype']}, {s['packets']} packets, "
             f"{_size(s['bytes'])}, {span:.3f} s{rate}"]
    if s["proto"]:
        lines.append("protocols: " + ", ".join(f"{k} {v[0]}" for k, v in s["proto"].items()))
    if s["flows"]:
        lines.append(f"top flows by bytes ({s['flow_count']} flows):")
        for proto, a, b, pkts, nbytes in s["flows"]:
            lines.append(f"  {proto:<5} {a:<22} -> {b:<22} {pkts:>7} pkts {_size(nbytes):>9}")
    tcp = s["tcp"]
    if tcp["dest"]:
        lines.append("tcp handshakes per destination:")
        lines.append(f"  {'destination':<22} {'syn':>5} {'synack':>6} {'rst':>5} {'noans':>5} {'synre':>5} "
                     f"{'rst s/c':>8} {'retr':>5} {'0win':>5}")
        for dest, d in tcp["dest"].items():
            lines.append(f"  {dest:<22} {d['syn']:>5} {d['synack']:>6} {d['refused']:>5} {d['unanswered']:>5} "
                         f"{d['syn_retrans']:>5} {str(d['rst_server']) + '/' + str(d['rst_client']):>8} "
                         f"{d['retrans']:>5} {d['zero_window']:>5}")
    lines.append(f"tcp: {tcp['data_segments']} data segments, {tcp['retrans']} retransmitted, "
                 f"{tcp['rst']} resets, {tcp['zero_window']} zero windows")
    dns = s["dns"]
    if dns["queries"] or dns["responses"]:
        rcodes = ", ".join(f"{k} {v}" for k, v in sorted(dns["rcodes"].items())) or "none"
        lat = dns["latency_ms"]
        lat_text = f"; latency p50 {ms_unit(lat['p50'])} p95 {ms_unit(lat['p95'])}" if lat["count"] else ""
        lines.append(f"dns: {dns['queries']} queries, {dns['responses']} responses, {dns['unanswered']} unanswered;"
                     f" rcodes {rcodes}{lat_text}")
        for qname, qtype, outcome, server, count, avg_ms, _max_ms in dns["names"][:15]:
            lines.append(f"  {qname:<32} {qtype:<6} {outcome:<10} {server:<21} x{count:<4} {ms_unit(avg_ms)}")
    tls = s["tls"]
    if tls["hellos"] or tls["alerts"] or tls["encrypted_alerts"]:
        lines.append("tls client hellos: " + (", ".join(f"{sni or '(no SNI)'} {ver} x{c}"
                                                         for sni, ver, c in tls["hellos"]) or "none"))
        lines.append("tls alerts: " + (", ".join(f"{d} ({lv}, from {side}) x{c}"
                                                 for d, lv, side, c in tls["alerts"]) or "none")
                     + (f"; {tls['encrypted_alerts']} encrypted" if tls["encrypted_alerts"] else ""))
    if s["http"]:
        lines.append("http status by host: " + ", ".join(f"{h} {code} x{c}" for h, code, c in s["http"]))
    return "\n".join(lines)


def live_main(args: CaptureFileSettings, dns_ports: tuple[int, ...], as_json: bool) -> int:
    """Capture for --duration seconds with the capture probe, then print the summary like a file's."""
    import asyncio

    from probes.capture import CaptureOptions, capture_spec, stream_capture

    spec = capture_spec(args.interface or "any", args.bpf, dns_ports=list(dns_ports))

    async def run() -> list[Sample]:
        samples: list[Sample] = []
        deadline = asyncio.get_running_loop().time() + args.duration
        agen = stream_capture(CaptureOptions.from_spec(spec), spec.target)
        try:
            async for sample in agen:
                samples.append(sample)
                if not sample.ok or asyncio.get_running_loop().time() >= deadline:
                    break
        finally:
            await agen.aclose()
        return samples

    try:
        samples = asyncio.run(run())
    except KeyboardInterrupt as exc:
        return interrupted_status(exc)
    failed = next((s for s in samples if not s.ok), None)
    if failed is not None and not any(s.ok for s in samples):
        print(f"warroom: capture: {failed.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    ok = [s for s in samples if s.ok]
    summary = merge([s.fields for s in ok], top=args.top)
    raw = ok[-1].fields.get("health") if ok else None
    health: dict[str, Any] = raw if isinstance(raw, dict) else {}
    summary["capture"] = health
    if as_json:
        print(json.dumps(summary, allow_nan=False))
    else:
        summary["file"] = {"path": f"{health.get('interface')} (filter: {health.get('filter') or 'none'})",
                           "format": "live", "linktype": health.get("linktype"),
                           "first_ts": ok[0].ts - spec.interval if ok else None, "last_ts": ok[-1].ts if ok else None}
        print(render_text(summary))
        print(f"capture health: seen {health.get('seen')}, captured {health.get('captured')}, "
              f"dropped by kernel {health.get('dropped_kernel')}")
    if failed is not None:
        print(f"warroom: capture: stopped early: {failed.message}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ValueError as exc:
        raise UsageError(f"capture: {exc}") from None
    return run(build_capture_settings(args))


def run(settings: Settings) -> int:
    args = settings.capture_file or CaptureFileSettings()
    dns_ports = args.dns_ports or DEFAULT_DNS_PORTS
    if args.interface is not None or args.bpf is not None:
        if args.file is not None:
            print("warroom: capture: give a FILE or --interface, not both", file=sys.stderr)
            return EXIT_BAD_INPUT
        return live_main(args, dns_ports, settings.json)
    if args.file is None:
        print("warroom: capture: give a .pcap/.pcapng FILE, or --interface IFACE to capture live", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if not stat.S_ISREG(os.stat(args.file).st_mode):
            print(f"warroom: {args.file}: not a regular file (a FIFO, device or directory): give a .pcap or "
                  ".pcapng file", file=sys.stderr)
            return EXIT_BAD_INPUT
        summary, stream, summariser = summarise_file(args.file, dns_ports=dns_ports, top=args.top,
                                                     ring_size=args.ring if args.export_headers else 0)
    except OSError as exc:
        print(f"warroom: {args.file}: {exc.strerror or exc}: give a readable .pcap or .pcapng file",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if stream.error is not None and stream.packets == 0:
        print(f"warroom: {args.file}: {stream.error}; nothing to summarise", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.pane:
        samples, _ = file_samples(args.file, dns_ports=dns_ports)
        pane_app(args.file, samples).run()
        if stream.error is not None:
            print(f"warroom: {args.file}: {stream.error}; showed the {stream.packets} packets before it",
                  file=sys.stderr)
            return EXIT_PARTIAL
        return EXIT_OK
    if args.export_headers:
        try:
            written = summariser.export_ring(args.export_headers)
        except OSError as exc:
            print(f"warroom: {args.export_headers}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        summary["file"]["exported_headers"] = written
    if settings.json:
        print(json.dumps(summary, allow_nan=False))
    else:
        print(render_text(summary))
    if stream.error is not None:
        print(f"warroom: {args.file}: {stream.error}; summarised the {stream.packets} packets before it",
              file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK
