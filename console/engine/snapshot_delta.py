"""Snapshot kinds in a recording: each written as the changes since the last one of its series.

The encoding (delta lines, row matching by identity, exact decoding) is documented and
implemented in probes/snapshot_delta.py, where the SSH agent uses it too. This module holds
the recording's policy: which kinds are written as deltas, how often a full snapshot (a key
frame) is written, and how often the socket table is recorded at all (replay shows the table
as it was at most ``RECORD_EVERY_S`` before the position). A delta line that arrives without
its base (its segment was dropped, a line before it was damaged) cannot be decoded and is
counted as a bad line.
"""

from __future__ import annotations

# The encoding lives in probes/ so the SSH agent can use it too; the recording policy stays here.
from probes.snapshot_delta import (
    DICT_ROW_KEYS,
    KEY_COLUMNS,
    DeltaError,
    decode_delta,
    encode_delta,
    same,
)

__all__ = ["DELTA_KINDS", "DICT_ROW_KEYS", "KEYFRAME_S", "KEY_COLUMNS", "RECORD_EVERY_S", "DeltaError",
           "decode_delta", "encode_delta", "same"]

#: Kinds written as deltas (they are large and change a little at a time).
DELTA_KINDS = frozenset({"conns_table", "pools"})
#: A full snapshot at least this often per series, so decoding never walks far back. The socket
#: table is rebuilt on every replay seek: a full one every 30 s keeps a seek to a few deltas.
KEYFRAME_S: dict[str, float] = {"conns_table": 30.0, "pools": 60.0}
#: Kinds recorded at most this often (seconds). Every socket's timers change every second, so a
#: socket-table delta is still ~35 bytes a socket; one table in 5 s keeps a 10,000-socket host to
#: about 10 kB/s on disk. The ``conns`` summary (counts by state, ports, fds) is recorded every time.
RECORD_EVERY_S: dict[str, float] = {"conns_table": 5.0}
