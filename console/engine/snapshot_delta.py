"""Snapshot kinds in a recording: each written as the changes since the last one of its series.

A ``conns_table`` Sample is the whole socket table (about 1 MB of JSON at 10,000
sockets) and a ``pools`` Sample every connection group; from one second to the
next most of it is the same. The recorder writes the first snapshot of a series
(and one every ``KEYFRAME_S`` seconds, and the first in each segment) as the plain Sample
line, and the others as a *delta line*::

    {"kind": K, "host": H, "target": T, "ts": TS,
     "delta": {"set": {FIELD: VALUE, ...},      # fields that changed or are new
               "del": [FIELD, ...],             # fields that went away
               "keys": [FIELD, ...],            # the field order, only when it is not the old order + new ones
               "rows": {FIELD: [ELEMENT, ...]}}} # list fields, row by row

where each ELEMENT of a list field says how to build that row from the previous
snapshot's list of the same field:

- an integer ``i``: row ``i`` of the previous list, unchanged;
- ``{"i": i, "p": {COLUMN: VALUE}}``: row ``i`` with these cells changed (a list
  row's COLUMN is its index as a string, a dict row's is the key);
- ``{"r": ROW}``: the row in full.

Rows are matched to the previous snapshot by identity, not position: a socket
by (proto, local, remote, inode) when the Sample names its ``columns``, a pool
group by its ``label`` or ``name``, anything else by its whole value. Decoding
applies the delta to the previous snapshot of the same series and gives back
exactly the Sample that was recorded (same values, same types, same key order),
so replay rebuilds the snapshot the console had. The socket table is also
recorded at a lower rate (``RECORD_EVERY_S``): replay shows the table as it
was at most 5 s before the position. A delta line that arrives
without its base (its segment was dropped, a line before it was damaged) cannot
be decoded and is counted as a bad line.
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
