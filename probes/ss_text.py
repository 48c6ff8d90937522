"""Parse `ss -tuanpH` text into conns Samples, for hosts that cannot run the agent (no python3).

Not a probe (it has no stream()): the console runs `ss` over SSH on such a host
and turns the text into the same two Samples the conns probe yields, so the
connections pane and diagnosis need not care where they came from:

- kind ``conns``: a summary (``source`` "ss-remote", ``total``, ``by_state``,
  ``listen_ports``, ``hidden_sockets``);
- kind ``conns_table``: ``{"columns": COLUMNS, "rows": [[...], ...], "truncated": N}``
  with the conns probe's column order. ss without python cannot give tcp_info
  or owner uids, so those cells are None; ``pid``/``process`` are None (and
  ``hidden`` true) for sockets whose owner ss could not see (another user's
  process when not root).

COLUMNS mirrors probes/conns.py's; keep them in step (the lead reconciles).
"""

from __future__ import annotations

import re
import time
from collections import Counter

from probes.samples import JSONValue, Sample

KIND = "conns"
TABLE_KIND = "conns_table"
COLUMNS: tuple[str, ...] = (
    "proto", "state", "local", "remote", "recvq", "sendq", "pid", "process", "uid", "ino",
    "rtt_ms", "retrans", "lastsnd_ms", "lastrcv_ms", "bytes_acked", "bytes_received", "hidden",
)
SS_COMMAND = "ss -tuanpH"
MAX_ROWS = 20000
_NETIDS = {"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl", "sctp", "mptcp"}
_LISTENING = {"LISTEN", "UNCONN"}
_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+)')


def parse_process(text: str) -> tuple[str | None, int | None]:
    """First owner in ss's `users:(("name",pid=1,fd=3),...)`."""
    match = _PROCESS.search(text)
    if not match:
        return None, None
    return match.group(1), int(match.group(2))


def parse_line(line: str, proto: str = "tcp") -> list[JSONValue] | None:
    """One ss socket line as a row in COLUMNS order; None for anything else (blank, header)."""
    parts = line.split(None, 5)
    if parts and parts[0] in _NETIDS:
        proto = parts[0]
        parts = line.split(None, 6)[1:]
    if len(parts) < 5 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    state, recv_q, send_q, local, remote = parts[:5]
    name, pid = parse_process(parts[5]) if len(parts) > 5 else (None, None)
    return [proto, state, local, remote, int(recv_q), int(send_q), pid, name, None, None,
            None, None, None, None, None, None, pid is None]


def _port(endpoint: str) -> int | None:
    text = endpoint.rpartition(":")[2]
    return int(text) if text.isdigit() else None


def parse_ss(text: str, host: str, *, target: str = "", ts: float | None = None,
             max_rows: int = MAX_ROWS) -> list[Sample]:
    """One `ss -tuanpH` run as a conns summary Sample and a conns_table Sample."""
    now = time.time() if ts is None else ts
    rows = [row for row in map(parse_line, text.splitlines()) if row is not None]
    by_state = Counter(str(r[1]) for r in rows)
    ports = {p for r in rows if r[1] in _LISTENING and (p := _port(str(r[2]))) is not None}
    listen_ports: list[JSONValue] = list(sorted(ports))
    summary: dict[str, JSONValue] = {
        "source": "ss-remote", "total": len(rows), "by_state": dict(by_state), "listen_ports": listen_ports,
        "hidden_sockets": sum(1 for r in rows if r[-1]),
    }
    truncated = max(0, len(rows) - max_rows)
    if truncated:
        rows = sorted(rows, key=lambda r: r[1] == "TIME-WAIT")[:max_rows]
    table: dict[str, JSONValue] = {"columns": list(COLUMNS), "rows": rows, "truncated": truncated}  # type: ignore[dict-item]
    return [Sample(kind=KIND, target=target, ts=now, host=host, fields=summary),
            Sample(kind=TABLE_KIND, target=target, ts=now, host=host, fields=table)]
