"""What the app does when the capture pane asks: restart the capture, export its header ring.

The pane only posts messages (it does no I/O); the app handles them with these:

    def on_capture_view_capture_changed(self, message):
        restart_capture(self.hub, message.interface, message.bpf)

    async def on_capture_view_export_requested(self, message):
        path, count = await export_capture(message.target, host=message.host)
        self.notify(f"wrote {count} packet headers to {path}")
"""

from __future__ import annotations

import asyncio

from console.engine.hub import Hub
from probes import capture
from probes.runtime import ProbeSpec
from probes.samples import LOCAL_HOST, JSONValue


def restart_capture(hub: Hub, interface: str, bpf: str | None, host: str = LOCAL_HOST,
                    **options: JSONValue) -> ProbeSpec:
    """Stop every capture of ``host`` on the hub and start one on ``interface`` with ``bpf``.

    An empty or None ``bpf`` means the default filter (which leaves out SSH), not "capture everything":
    a console that captures its own SSH session feeds back on itself.
    """
    for name, running in list(hub.streams.items()):
        if running.kind == capture.KIND and name.startswith(f"{host}/"):
            hub.remove(name)
    spec = capture.capture_spec(interface or capture.DEFAULT_INTERFACE, bpf or None, **options)
    hub.start_probe(spec, host)
    return spec


async def export_capture(target: str, directory: str = ".", host: str = LOCAL_HOST) -> tuple[str, int]:
    """Write the running capture's header ring to a new pcap file in ``directory``: (path, packets).

    Raises KeyError when no capture of that target runs, OSError when the file cannot be written.
    """
    path = capture.export_path(target if host == LOCAL_HOST else f"{host}-{target}", directory)
    count = await asyncio.to_thread(capture.export_ring, target, path, host)
    return path, count
