"""HostsView: one status line per SSH host - connected, reconnecting in N s, auth failed, host key unknown.

Needs the hub to run a ``console.remote.host.RemoteHost`` stream per host
(``hub.add_stream(f"ssh:{name}", RemoteHost(host, specs, settings).stream,
kind="host_status")``); it reads their "host_status" Samples from the store,
so a replayed recording shows the same lines. Construct with the Store;
``hosts`` lists the configured names so a host that has not reported yet is
shown as "waiting" instead of missing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content
from textual.markup import escape
from textual.widgets import Static

from console.engine.store import Store
from widgets.visibility import every

KIND_STATUS = "host_status"  # console.remote.host.KIND_STATUS, repeated so widgets need not import asyncssh

_STYLE = {
    "connected": ("●", "$success"),
    "connecting": ("…", "$warning"),
    "reconnecting": ("↻", "$warning"),
    "auth_failed": ("✖", "$error"),
    "host_key_unknown": ("✖", "$error"),
    "host_key_changed": ("✖", "$error"),
    "agent_failed": ("✖", "$error"),
    "config_error": ("✖", "$error"),
}
_LABEL = {
    "auth_failed": "auth failed",
    "host_key_unknown": "host key unknown",
    "host_key_changed": "HOST KEY CHANGED",
    "agent_failed": "agent failed",
    "config_error": "config error",
}


@dataclass(frozen=True)
class HostLine:
    """What one host's line says, computed from the store (no screen needed)."""

    host: str
    state: str
    text: str
    countdown: bool


def host_lines(store: Store, hosts: Sequence[str] = (), now: float | None = None) -> list[HostLine]:
    now = time.time() if now is None else now
    names = list(hosts) + sorted(k[0] for k in store.keys(kind=KIND_STATUS) if k[0] not in hosts)
    lines: list[HostLine] = []
    for name in names:
        status = store.last((name, KIND_STATUS, ""))
        if status is None:
            lines.append(HostLine(name, "waiting", "waiting for the first connection attempt", False))
            continue
        state = str(status.fields.get("state", "?"))
        detail = str(status.fields.get("detail", ""))
        countdown = False
        if state == "reconnecting":
            retry_in = status.fields.get("retry_in")
            left = max(0.0, float(retry_in) - (now - status.ts)) if isinstance(retry_in, (int, float)) else 0.0
            reason = detail.rsplit("; reconnecting in", 1)[0]
            text = f"reconnecting in {left:.0f} s: {reason}" if left > 0 else f"reconnecting now: {reason}"
            countdown = left > 0
        elif state == "connected":
            series = [k for k in store.keys(host=name) if k[1] != KIND_STATUS]
            newest = max((s.ts for k in series if (s := store.last(k)) is not None), default=None)
            age = f", last sample {now - newest:.1f} s ago" if newest is not None else ", no samples yet"
            mode = "ss only (no python3)" if status.fields.get("mode") == "ss" else detail
            text = f"connected: {mode}; {len(series)} series{age}"
        else:
            text = f"{_LABEL.get(state, state)}: {detail}" if detail else _LABEL.get(state, state)
        lines.append(HostLine(name, state, text, countdown))
    return lines


class HostsView(Static):
    """A status line per SSH host, refreshed from the store at 2 Hz."""

    DEFAULT_CSS = """
    HostsView {
        height: auto;
        padding: 0 1;
        background: $surface;
        color: $text;
    }
    """

    def __init__(self, store: Store, hosts: Sequence[str] = (), *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", name=name, id=id, classes=classes)
        self.store = store
        self.hosts = list(hosts)
        self._seen_version = -1
        self._ticking = False

    def on_mount(self) -> None:
        self.refresh_lines()
        every(self, 0.5, self.refresh_lines)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_lines()

    def refresh_lines(self) -> None:
        # Redraw when the store changed, or while a "reconnecting in N s" countdown runs.
        if self.store.version == self._seen_version and not self._ticking:
            return
        self._seen_version = self.store.version
        lines = host_lines(self.store, self.hosts)
        self._ticking = any(line.countdown for line in lines)
        if not lines:
            hint = ("No remote hosts. Start warroom with --host [user@]name[:port] (repeatable) "
                    "or list hosts under [ssh] in the config file.")
            self.update(Content.from_markup(f"[$text-muted]{escape(hint)}[/]"))
            return
        width = max(len(line.host) for line in lines)
        parts = []
        for line in lines:
            icon, style = _STYLE.get(line.state, ("?", "$text-muted"))
            parts.append(f"[{style}]{icon}[/] [b]{escape(line.host.ljust(width))}[/]  "
                         f"[{style}]{escape(line.text)}[/]")
        self.update(Content.from_markup("\n".join(parts)))
