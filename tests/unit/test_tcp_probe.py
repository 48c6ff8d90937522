"""The tcp probe against real loopback sockets: ok, refused, timed out."""

from __future__ import annotations

import socket

from probes import tcp


async def test_connect_to_listener_measures_rtt() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sample = await tcp.measure(f"127.0.0.1:{listener.getsockname()[1]}", timeout=2)
    assert sample.ok and sample.kind == "tcp"
    assert 0 < sample.fields["rtt_ms"] < 1000  # type: ignore[operator]


async def test_closed_port_is_refused_with_original_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sample = await tcp.measure(f"127.0.0.1:{port}", timeout=2)
    assert sample.error == "refused"
    assert "Connect call failed" in (sample.message or "")


async def test_full_backlog_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # never accepted: once full, the kernel drops SYNs
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the accept queue
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            sample = await tcp.measure(f"127.0.0.1:{port}", timeout=0.5)
        finally:
            for filler in fillers:
                filler.close()
    assert sample.error == "timeout"


async def test_port_less_target_is_an_error_sample_not_an_exception() -> None:
    sample = await tcp.measure("localhost", timeout=1)
    assert sample.error == "exception" and "no port" in (sample.message or "")


def test_kernel_rtt_does_not_include_the_time_we_took_to_look() -> None:
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        with socket.create_connection(listener.getsockname(), timeout=2) as client:
            time.sleep(0.2)  # a busy event loop or a thread waiting for the GIL
            rtt = tcp.kernel_rtt_ms(client)
    assert rtt is not None and 0 < rtt < 5  # loopback SYN to SYN-ACK, not the 200 ms we dawdled


async def test_sample_keeps_both_kernel_rtt_and_connect_time() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sample = await tcp.measure(f"127.0.0.1:{listener.getsockname()[1]}", timeout=2)
    fields = sample.fields
    assert fields["rtt_source"] == "kernel"
    assert fields["rtt_ms"] <= fields["connect_ms"]  # type: ignore[operator]
