"""Socket-table changes instead of whole snapshots, for the SSH link.

The conns probe's ``conns_table`` Sample is a full snapshot of every socket,
every second: thousands of rows, nearly all the same as a second ago. Over
SSH the agent sends the first snapshot whole, then only what changed: the
rows that went away (by their index in the previous snapshot), the columns
that changed in rows still there, and the new rows. The console rebuilds the
snapshot from the previous one; rebuilt and original are equal (the tests
check it), because both sides keep the rows in one canonical order: sorted
by ``row_key``.

Pure functions over JSON-safe lists, so the agent (on a host's own Python)
and the console share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

#: The Sample kind sent as changes (probes.conns.TABLE_KIND, named here so the agent need not import conns).
TABLE_KIND = "conns_table"

Row = list[Any]


def row_key(row: Sequence[Any]) -> tuple[str, str, str, int]:
    """What tells one socket from another across snapshots: protocol, local and remote address, inode
    (probes.conns.COLUMNS 0, 2, 3, 9). A TIME-WAIT socket has inode 0, but its address pair is unique."""
    inode = row[9]
    return (str(row[0]), str(row[2]), str(row[3]), inode if isinstance(inode, int) else -1)


def canonical(rows: Sequence[Row]) -> list[Row] | None:
    """The rows in canonical order, or None when two rows share a key (then only whole snapshots work)."""
    keyed = sorted(((row_key(row), row) for row in rows), key=lambda item: item[0])
    if any(a[0] == b[0] for a, b in pairwise(keyed)):
        return None
    return [row for _, row in keyed]


def diff(old: Sequence[Row], new: Sequence[Row]) -> dict[str, Any]:
    """What turns canonical ``old`` into canonical ``new``: removed indices into ``old``, changed
    ``[index, [[column, value], ...]]`` pairs, and added rows."""
    index = {row_key(row): i for i, row in enumerate(old)}
    kept: set[int] = set()
    changed: list[list[Any]] = []
    added: list[Row] = []
    for row in new:
        i = index.get(row_key(row))
        if i is None:
            added.append(list(row))
            continue
        kept.add(i)
        before = old[i]
        if before == row:
            continue  # most rows: the same socket, nothing new
        if len(before) != len(row):  # a different shape: send the row whole
            added.append(list(row))
            kept.discard(i)
            continue
        columns = [[c, value] for c, (was, value) in enumerate(zip(before, row, strict=True))
                   if was != value or type(was) is not type(value)]
        if columns:
            changed.append([i, columns])
    removed = [i for i in range(len(old)) if i not in kept]
    return {"removed": removed, "changed": changed, "added": added}


def apply(old: Sequence[Row], change: dict[str, Any]) -> list[Row]:
    """``old`` (canonical) with ``change`` applied, in canonical order. Rows that did not change are
    the same list objects as in ``old``; changed rows are new lists (``old`` is never modified)."""
    removed = set(change.get("removed") or ())
    rows: dict[int, Row] = {i: row for i, row in enumerate(old) if i not in removed}
    for i, columns in change.get("changed") or ():
        row = list(rows[i])
        for column, value in columns:
            row[column] = value
        rows[i] = row
    out = list(rows.values()) + [list(row) for row in change.get("added") or ()]
    out.sort(key=row_key)
    return out
