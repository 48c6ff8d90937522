"""A packet capture on an SSH host, as a stream the hub runs: capture Samples with host=<that host>.

tcpdump runs on the host (console/remote/host.py's ``RemoteHost.capture``: bounded,
in its own process group, killed when our channel closes) and its pcap bytes
are summarised here by ``probes.capture.stream_from_reader``, so the capture
pane shows a remote host exactly as it shows this one.

The stream waits for the host's SSH link, then chains bounded tcpdump runs
(each ``RUN_SECONDS`` long) for as long as it is not cancelled. When tcpdump
cannot start (no privilege, bad filter, no such interface) it yields one error
Sample with tcpdump's own message and what to do, and stops: retrying would
only repeat the message. Everything touching the SSH objects runs on the loop
the RemoteHost lives on (the hub's probe loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from console.engine.hub import Hub
from console.remote.host import RemoteHost
from probes import capture
from probes.runtime import ProbeSpec
from probes.samples import Sample, error_sample

#: One tcpdump run on the host lasts at most this long (or RUN_PACKETS packets); the next starts at once.
RUN_SECONDS = 300.0
RUN_PACKETS = 1_000_000
#: How long to wait for the host's SSH link before saying so (and waiting on).
WAIT_NOTICE_S = 10.0


def stream_name(host: str, interface: str) -> str:
    """Hub stream name; the ``host/`` prefix is what console/ui/capture_actions.py:restart_capture looks for."""
    return f"{host}/{capture.KIND}/{interface}"


class _ChunkReader:
    """``await read(n)`` over RemoteHost.capture()'s async iterator of byte chunks (b"" at the end)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def read(self, _n: int) -> bytes:
        try:
            return await self.chunks.__anext__()
        except StopAsyncIteration:
            return b""


def _classify(sample: Sample) -> Sample:
    """The reader reports tcpdump's failure as a generic error; say "permission" when it is one."""
    if sample.ok:
        return sample
    message = (sample.message or "").removeprefix("RemoteCaptureError: ")
    text = message.lower()
    error = capture.ERROR_PERMISSION if "permission" in text or "not permitted" in text or "sudo" in text \
        else sample.error
    return Sample(kind=sample.kind, target=sample.target, ts=sample.ts, fields=sample.fields, host=sample.host,
                  error=error, message=message)


async def remote_capture_stream(remote: RemoteHost, spec: ProbeSpec) -> AsyncIterator[Sample]:
    """Capture Samples of ``spec`` (a probes.capture spec) taken on ``remote``; never raises."""
    opts = capture.CaptureOptions.from_spec(spec)
    target = spec.target or opts.interface
    # The host-side command already leaves out our own SSH session; only the user's filter goes along.
    raw_filter = spec.options.get("filter")
    bpf = raw_filter if isinstance(raw_filter, str) else ""
    # Health shows the user's filter; the host-side command adds "not our own SSH session" to it.
    opts.bpf = bpf
    while True:
        waited_since = time.monotonic()
        noticed = False
        while remote.connection is None:
            if not noticed and time.monotonic() - waited_since >= WAIT_NOTICE_S:
                noticed = True
                yield error_sample(capture.KIND, target, "not-connected",
                                   f"{remote.name} is not connected ({remote.state}); the capture starts when it is",
                                   host=remote.name, fields={"health": {"interface": opts.interface, "filter": bpf,
                                                                        "state": "waiting"}})
            await asyncio.sleep(0.25)
        state = capture.TcpdumpState(state="listening")
        chunks = remote.capture(interface=opts.interface, bpf=bpf, count=RUN_PACKETS, seconds=RUN_SECONDS,
                                snaplen=opts.snaplen)
        reader = _ChunkReader(chunks)
        last: Sample | None = None
        started = time.monotonic()
        try:
            async for sample in capture.stream_from_reader(reader.read, opts, target, remote.name, state):
                last = _classify(sample)
                yield last
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # an async generator; closes the channel: the host-side watcher kills tcpdump's group
        if last is not None and not last.ok and time.monotonic() - started < 5.0:
            return  # tcpdump could not start: its message is on the pane, retrying would repeat it
        await asyncio.sleep(0.5)


def start_remote_capture(hub: Hub, remote: RemoteHost, interface: str, bpf: str | None,
                         **options: object) -> ProbeSpec:
    """Stop ``remote``'s captures on the hub and start one on ``interface`` with ``bpf`` (None/"" = everything
    but our own SSH session). Call on the hub's home loop; the stream runs on the probe loop."""
    for name, running in list(hub.streams.items()):
        if running.kind == capture.KIND and name.startswith(f"{remote.name}/"):
            hub.remove(name)
    spec = capture.capture_spec(interface or capture.DEFAULT_INTERFACE, None, **options)  # type: ignore[arg-type]
    if bpf:
        spec.options["filter"] = bpf
    else:
        spec.options.pop("filter", None)
    running = hub.add_stream(stream_name(remote.name, spec.target or interface),
                             lambda: remote_capture_stream(remote, spec), restart=False, kind=capture.KIND,
                             target=spec.target)
    running.spec = spec
    return spec
