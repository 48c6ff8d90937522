"""Parse `ss -tanpH` text into a "conns" Sample (for hosts without python3).

Not a probe (it has no stream()): the console runs `ss` over SSH on a host
that cannot run the agent and turns the text into the same Sample shape the
conns probe yields, so panes and diagnosis need not care where it came from.

Shape (to reconcile with the conns probe): kind "conns", target "" and
``fields = {"source": "ss", "rows": [{"proto", "local", "remote", "state",
"pid", "process", "recv_q", "send_q"}, ...], "count": N, "by_state": {...}}``.
``state`` is as ss prints it (ESTAB, LISTEN, TIME-WAIT, SYN-SENT, ...);
``pid``/``process`` are None when ss could not see the owner (another user's
socket without root).
"""

from __future__ import annotations

import re
import time

from probes.samples import JSONValue, Sample

KIND = "conns"
_NETIDS = {"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl", "sctp", "mptcp", "tcp6", "udp6"}
_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+)')


def parse_process(text: str) -> tuple[str | None, int | None]:
    """First owner in ss's `users:(("name",pid=1,fd=3),...)`."""
    match = _PROCESS.search(text)
    if not match:
        return None, None
    return match.group(1), int(match.group(2))


def parse_line(line: str, proto: str = "tcp") -> dict[str, JSONValue] | None:
    """One ss socket line as a row; None for a line that is not one (blank, header)."""
    parts = line.split(None, 5)
    if parts and parts[0] in _NETIDS:
        proto = parts[0]
        parts = line.split(None, 6)[1:]
    if len(parts) < 5 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    state, recv_q, send_q, local, remote = parts[:5]
    name, pid = parse_process(parts[5]) if len(parts) > 5 else (None, None)
    return {"proto": proto, "local": local, "remote": remote, "state": state, "pid": pid,
            "process": name, "recv_q": int(recv_q), "send_q": int(send_q)}


def parse_ss(text: str, host: str, *, target: str = "", ts: float | None = None) -> Sample:
    """All socket lines of one `ss -tanpH` run as one conns Sample."""
    rows: list[JSONValue] = []
    by_state: dict[str, JSONValue] = {}
    for line in text.splitlines():
        row = parse_line(line)
        if row is None:
            continue
        rows.append(row)
        state = str(row["state"])
        count = by_state.get(state, 0)
        by_state[state] = (count if isinstance(count, int) else 0) + 1
    return Sample(kind=KIND, target=target, ts=time.time() if ts is None else ts, host=host,
                  fields={"source": "ss", "rows": rows, "count": len(rows), "by_state": by_state})
