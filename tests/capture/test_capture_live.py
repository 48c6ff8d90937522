"""Real traffic on loopback, captured by the real probe (tcpdump + the header path), counted exactly."""

from __future__ import annotations

import http.client
import socket
import ssl

import pytest

from console.diagnosis import capture as rules_capture
from console.diagnosis.registry import RULES, Finding, diagnose
from console.engine.store import Store
from probes import capture
from probes.samples import Sample

pytestmark = pytest.mark.system

ADDR_REFUSED = "127.83.5.1"
ADDR_DROPPED = "127.83.5.2"
ADDR_DNS_SILENT = "127.83.5.4"
ADDR_RING = "127.83.5.7"
DNS_PORT = 5300

ZERO_DEST = {"syn": 0, "synack": 0, "refused": 0, "unanswered": 0, "syn_retrans": 0, "rst_server": 0,
             "rst_client": 0, "retrans": 0, "zero_window": 0}


def dest_counts(summary: dict, dest: str) -> dict[str, int]:
    row = summary["tcp"]["dest"].get(dest)
    assert row is not None, f"no handshake row for {dest}: {sorted(summary['tcp']['dest'])}"
    return {k: row[k] for k in ZERO_DEST}


def capture_findings(run) -> dict[str, list[Finding]]:
    """What the diagnosis rules conclude from the run's samples, by rule."""
    store = Store()
    for sample in run.samples:
        store.add(sample)
    out: dict[str, list[Finding]] = {}
    assert rules_capture.LAYER == "capture"  # importing the module registers its rules
    for finding in diagnose(store, {n: f for n, f in RULES.items() if n.startswith("capture_")}):
        out.setdefault(finding.rule, []).append(finding)
    return out


def connect(addr: str, port: int, timeout: float) -> str:
    sock = socket.socket()
    sock.settimeout(timeout)
    try:
        sock.connect((addr, port))
        return "connected"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    finally:
        sock.close()


@pytest.mark.parametrize("interface", ["lo", "any"])  # Ethernet and Linux cooked v2 framing; each packet once
async def test_handshakes_refused_by_rst_are_counted_exactly(live_capture, tcpdump_path, interface: str) -> None:
    def traffic() -> None:
        assert [connect(ADDR_REFUSED, 9, 1.0) for _ in range(3)] == ["refused"] * 3

    run = await live_capture(f"host {ADDR_REFUSED}", traffic, interface=interface)
    summary = run.summary
    assert dest_counts(summary, f"{ADDR_REFUSED}:9") == {**ZERO_DEST, "syn": 3, "refused": 3}
    assert summary["tcp"]["rst"] == 3
    assert summary["packets"] == 6  # three SYNs, three RSTs, each seen once on loopback
    health = run.health
    assert health["interface"] == interface and health["filter"] == f"host {ADDR_REFUSED}"
    assert health["dropped_kernel"] == 0
    assert health["seen"] == 6
    assert all(Sample.from_json(s.to_json()) == s for s in run.samples)  # JSON-safe, as recordings need
    found = capture_findings(run)
    assert [f.title for f in found["capture_connections_refused"]] == [
        f"{ADDR_REFUSED}:9 refuses connections: its side answers SYNs with RST"]
    assert "capture_syn_unanswered" not in found


async def test_syns_dropped_by_nftables_are_unanswered(live_capture, nft_drop_syn) -> None:
    nft_drop_syn(ADDR_DROPPED, 8443)

    def traffic() -> None:
        # 0.4 s is shorter than Linux's first SYN retransmission (1 s): one SYN per attempt.
        assert [connect(ADDR_DROPPED, 8443, 0.4) for _ in range(2)] == ["timeout"] * 2

    run = await live_capture(f"host {ADDR_DROPPED}", traffic)
    assert dest_counts(run.summary, f"{ADDR_DROPPED}:8443") == {**ZERO_DEST, "syn": 2, "unanswered": 2}
    found = capture_findings(run)["capture_syn_unanswered"]
    assert [(f.severity, f.title) for f in found] == [
        ("critical", f"SYNs to {ADDR_DROPPED}:8443 get no answer: dropped by a firewall or on the path")]


async def test_a_receiver_that_stops_reading_shows_zero_windows_and_the_client_reset(live_capture) -> None:
    import struct
    import time

    addr = "127.83.5.8"
    ports: list[int] = []

    def traffic() -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few kB
        server.bind((addr, 0))
        server.listen(1)
        ports.append(server.getsockname()[1])
        client = socket.create_connection((addr, ports[0]), timeout=2)
        conn, _ = server.accept()  # ... and never reads
        client.setblocking(False)
        try:
            while True:
                client.send(b"z" * 65536)
        except BlockingIOError:
            pass
        time.sleep(1.0)  # the receiver advertises a zero window, the sender probes it
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # abortive close: one RST from the client side
        conn.close()
        server.close()

    run = await live_capture(f"host {addr}", traffic)
    row = run.summary["tcp"]["dest"][f"{addr}:{ports[0]}"]
    assert (row["syn"], row["synack"], row["rst_client"], row["rst_server"], row["retrans"]) == (1, 1, 1, 0, 0)
    assert row["zero_window"] >= 1  # how many persist probes fit in the second is the kernel's timing


async def test_dns_nxdomain_servfail_and_unanswered(live_capture, dns_server, ask_dns) -> None:
    silent = (ADDR_DNS_SILENT, DNS_PORT)

    def traffic() -> None:
        assert ask_dns(dns_server, "missing.test") == 3
        assert ask_dns(dns_server, "missing.test") == 3
        assert ask_dns(dns_server, "ok.test") == 0
        assert ask_dns(dns_server, "broken.test") == 2
        assert ask_dns(silent, "nobody.test", timeout=0.2) is None
        assert ask_dns(silent, "nobody.test", timeout=0.2) is None

    run = await live_capture(f"host {dns_server[0]} or host {ADDR_DNS_SILENT}", traffic, dns_ports=[DNS_PORT])
    dns = run.summary["dns"]
    assert (dns["queries"], dns["responses"], dns["unanswered"]) == (6, 4, 2)
    assert dns["rcodes"] == {"NXDOMAIN": 2, "NOERROR": 1, "SERVFAIL": 1}
    server = f"{dns_server[0]}:{DNS_PORT}"
    rows = {(q, t, o, s): c for q, t, o, s, c, _avg, _max in dns["names"]}
    assert rows == {
        ("missing.test.", "A", "NXDOMAIN", server): 2,
        ("ok.test.", "A", "NOERROR", server): 1,
        ("broken.test.", "A", "SERVFAIL", server): 1,
        ("nobody.test.", "A", "unanswered", f"{ADDR_DNS_SILENT}:{DNS_PORT}"): 2,
    }
    assert dns["latency_ms"]["count"] == 4 and dns["latency_ms"]["max"] < 500
    assert run.summary["proto"]["icmp"][0] == 2  # the silent port's "port unreachable", one per query
    titles = sorted(f.title for f in capture_findings(run)["capture_dns_failures"])
    assert titles == [f"DNS server {server} answers SERVFAIL (x1)",
                      f"DNS server {ADDR_DNS_SILENT}:{DNS_PORT} does not answer (2 queries unanswered)"]


async def test_tls_handshake_failing_with_an_alert(live_capture, tls13_only_server) -> None:
    addr, port = tls13_only_server

    def traffic() -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((addr, port), timeout=2) as raw:
            try:
                ctx.wrap_socket(raw, server_hostname="api.test")
            except ssl.SSLError as exc:
                assert "PROTOCOL_VERSION" in str(exc).upper()
            else:
                raise AssertionError("a TLS 1.2 client must not get through a TLS 1.3-only server")

    run = await live_capture(f"host {addr}", traffic)
    tls = run.summary["tls"]
    assert tls["hellos"] == [["api.test", "TLS 1.2", 1]]
    assert tls["alerts"] == [["protocol_version", "fatal", "server", 1]]
    assert tls["encrypted_alerts"] == 0
    assert dest_counts(run.summary, f"{addr}:{port}")["synack"] == 1
    found = capture_findings(run)["capture_tls_alerts"]
    assert [f.title for f in found] == ["TLS handshakes end with a fatal protocol_version alert from the server (x1)"]
    assert "TLS version" in found[0].next_step and "api.test TLS 1.2 x1" in found[0].evidence[0]


async def test_http_status_codes_by_host(live_capture, http_server) -> None:
    addr, port = http_server

    def traffic() -> None:
        for path in ("/", "/missing", "/gone"):
            conn = http.client.HTTPConnection(addr, port, timeout=2)
            conn.request("GET", path, headers={"Host": "api.test"})
            conn.getresponse().read()
            conn.close()

    run = await live_capture(f"host {addr}", traffic)
    assert run.summary["http"] == [["api.test", 200, 1], ["api.test", 404, 2]]


async def test_header_ring_exports_a_pcap_that_tcpdump_reads(live_capture, http_server, tmp_path,
                                                             tcpdump_path) -> None:
    import subprocess

    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    addr, port = http_server
    out = tmp_path / "ring.pcap"
    exported: list[int] = []

    def traffic() -> None:
        conn = http.client.HTTPConnection(addr, port, timeout=2)
        conn.request("GET", "/", headers={"Host": "api.test"})
        conn.getresponse().read()
        conn.close()

    def export() -> None:
        # Asked for while the capture still runs, as the pane's export key does.
        exported.append(capture.export_ring("lo", str(out)))

    run = await live_capture(f"host {addr}", traffic, ring_size=1000)
    assert run.health["seen"] > 0
    # The session is gone once the probe stopped: exporting then is a clear KeyError.
    with pytest.raises(KeyError):
        capture.export_ring("lo", str(out))
    run = await live_capture(f"host {addr}", traffic, ring_size=1000, before_stop=export, settle=1.5)
    assert exported and exported[0] > 0
    listed = subprocess.run([tcpdump_path, "-n", "-r", str(out)], capture_output=True, text=True, check=True)
    assert len(listed.stdout.splitlines()) == exported[0]
    packets = rdpcap(str(out))
    assert len(packets) == exported[0]
    assert all(TCP in p for p in packets)
    assert all(len(bytes(p[TCP].payload)) == 0 for p in packets)  # headers only: no payload kept
    assert any(p.wirelen > len(p) for p in packets)  # the original lengths are kept


@pytest.mark.parametrize(("interface", "bpf", "words"), [
    ("lo", "host and and", "syntax error"),
    ("warroom-nope0", "", "warroom-nope0"),
])
async def test_tcpdump_refusing_to_start_is_an_error_sample_with_its_own_words(interface: str, bpf: str,
                                                                             words: str) -> None:
    samples = []
    agen = capture.stream(capture.capture_spec(interface, bpf))
    try:
        async for sample in agen:
            samples.append(sample)
            if not sample.ok or len(samples) > 10:
                break
    finally:
        await agen.aclose()
    last = samples[-1]
    assert last.error == "tcpdump" and words in (last.message or "")
    assert last.fields["health"]["state"] == "stopped"


def test_cli_live_capture_with_interface_and_filter_from_the_command_line() -> None:
    import json
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    addr = "127.83.5.12"
    proc = subprocess.Popen([sys.executable, "-m", "console", "capture", "-i", "lo", "-f", f"host {addr}",
                             "--duration", "4", "--json"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        import psutil

        deadline = time.monotonic() + 15
        while not any(c.name() == "tcpdump" for c in psutil.Process(proc.pid).children()):
            assert time.monotonic() < deadline, "the CLI never started tcpdump"
            time.sleep(0.05)
        time.sleep(0.5)  # tcpdump opens the interface and attaches the filter
        assert [connect(addr, 7, 1.0) for _ in range(2)] == ["refused"] * 2
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["capture"]["filter"] == f"host {addr}" and summary["capture"]["interface"] == "lo"
    assert dest_counts(summary, f"{addr}:7") == {**ZERO_DEST, "syn": 2, "refused": 2}
    assert summary["capture"]["dropped_kernel"] == 0 and summary["capture"]["captured"] == 4

    bad = subprocess.run([sys.executable, "-m", "console", "capture", "-i", "lo", "-f", "host and", "--duration",
                          "2"], cwd=root, env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("warroom: capture: the BPF filter 'host and' does not compile") \
        and "syntax error" in bad.stderr
    assert bad.stderr.count("\n") == 1


async def test_the_apps_capture_actions_restart_with_a_new_filter_and_export(tmp_path) -> None:
    import asyncio
    import subprocess

    from console.engine.hub import Hub
    from console.ui.capture_actions import export_capture, restart_capture

    store = Store()
    hub = Hub(store)
    try:
        first = restart_capture(hub, "lo", f"host {ADDR_RING}")
        second = restart_capture(hub, "lo", f"host {ADDR_RING} and tcp")
        assert first.options["filter"] != second.options["filter"]
        assert [r.spec for r in hub.streams.values()] == [second]  # one capture per host, the new one
        for _ in range(100):  # until tcpdump listens
            last = store.last(("local", "capture", "lo"))
            if last is not None and last.fields.get("health", {}).get("state") == "listening":
                break
            await asyncio.sleep(0.1)
        assert connect(ADDR_RING, 9, 1.0) == "refused"
        await asyncio.sleep(2.0)  # libpcap's block time-out, then a summary
        path, count = await export_capture("lo", str(tmp_path))
    finally:
        await hub.stop()
    assert count == 2 and path.startswith(str(tmp_path / "warroom-lo-"))
    listed = subprocess.run(["tcpdump", "-n", "-r", path], capture_output=True, text=True, check=True)
    assert "Flags [S]" in listed.stdout and "Flags [R.]" in listed.stdout
    assert store.last(("local", "capture", "lo")).fields["health"]["filter"] == f"host {ADDR_RING} and tcp"


async def test_ipv6_handshakes_refused_on_loopback(live_capture) -> None:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]  # free now, and nothing will listen on it

    def traffic() -> None:
        for _ in range(2):
            sock = socket.socket(socket.AF_INET6)
            sock.settimeout(1.0)
            with pytest.raises(ConnectionRefusedError):
                sock.connect(("::1", port))
            sock.close()

    run = await live_capture(f"ip6 and tcp port {port}", traffic)
    assert dest_counts(run.summary, f"[::1]:{port}") == {**ZERO_DEST, "syn": 2, "refused": 2}
    assert run.summary["proto"] == {"tcp": [4, run.summary["bytes"]]}
