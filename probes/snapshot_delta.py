"""Snapshot Samples as the changes since the last one of their series: encode and decode.

Shared by the recorder (console/engine/recorder.py, which decides when to write
a delta line: console/engine/snapshot_delta.py) and the SSH agent, which sends
its socket tables and pool groups this way instead of whole snapshots every
second. Pure functions over JSON-safe Samples, so they run on a host's own
Python inside the agent.

Snapshot kinds in a recording: each written as the changes since the last one of its series.

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
- ``{"k": [i, n]}``: rows ``i`` to ``i + n - 1`` of the previous list, unchanged (a run of
  unchanged rows in their old order: most of a socket table from one second to the next; sent as
  single indices they cost ~5 bytes a socket every second: 21 KB/s against 5.6 KB/s with runs, at
  3,260 sockets and 50 new connections a second);
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

import math
import operator
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from probes.samples import JSONValue, Sample

#: The columns that name a socket in a ``conns_table`` row (probes/conns.py COLUMNS).
KEY_COLUMNS = ("proto", "local", "remote", "ino")
#: Dict rows are matched by the first of these keys they have.
DICT_ROW_KEYS = ("label", "name", "id")


class DeltaError(ValueError):
    """A delta line that does not fit the snapshot it claims to change."""


def same(a: Any, b: Any) -> bool:
    """JSON-exact equality: 1, 1.0 and True differ, so do 0.0 and -0.0; key order counts."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        # Plain == first (C speed; exact equality implies it), then what == cannot tell: the types
        # of equal values (1 == 1.0 == True) and the sign of a zero; nested lists and objects recurse.
        if len(a) != len(b) or a != b:
            return False
        types = list(map(type, a))
        if types != list(map(type, b)):
            return False
        if float in types or list in types or dict in types or not _PLAIN.issuperset(types):
            return all(same(x, y) for x, y in zip(a, b, strict=True))
        return True
    if isinstance(a, dict):
        return list(a) == list(b) and a == b and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


#: Types whose equal values of the same type are the same JSON (after the type check in same()).
_PLAIN = frozenset({str, int, bool, type(None)})


def _hashable(value: Any) -> Hashable:
    if isinstance(value, (list, dict)):
        return repr(value)
    return (type(value).__name__, value)


def _row_key(row: Any, key_index: Sequence[int]) -> Hashable:
    if isinstance(row, list) and key_index:
        return tuple(_hashable(row[i]) if i < len(row) else None for i in key_index)
    if isinstance(row, dict):
        for name in DICT_ROW_KEYS:
            if name in row:
                return ("key", _hashable(row[name]))
    return ("row", _hashable(row))


def _row_keyer(key_index: Sequence[int]) -> Callable[[Any], Hashable]:
    """_row_key for one list of rows, faster for list rows: their key cells as they are.

    The key only pairs a new row with an old one to compare against; same() and _patch()
    decide what is sent, so a pairing of 1 with True (equal hashes) costs a patch, never a
    wrong snapshot. A row the plain key cannot serve (short, unhashable cells) takes _row_key.
    """
    if not key_index:
        return lambda row: _row_key(row, key_index)
    cells = itemgetter(*key_index) if len(key_index) > 1 else (lambda row: (row[key_index[0]],))

    def key(row: Any) -> Hashable:
        if isinstance(row, list):
            try:
                plain = cells(row)
                hash(plain)
            except (IndexError, TypeError):
                pass
            else:
                return ("cells", plain)
        return _row_key(row, key_index)

    return key


def _key_index(fields: dict[str, JSONValue]) -> list[int]:
    columns = fields.get("columns")
    if isinstance(columns, list) and all(name in columns for name in KEY_COLUMNS):
        return [columns.index(name) for name in KEY_COLUMNS]
    return []


def _patch(old: Any, new: Any) -> dict[str, JSONValue] | None:
    """The changed cells of ``new`` against ``old``, or None when a full row is shorter or needed."""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changed = {str(i): v for i, (o, v) in enumerate(zip(old, new, strict=True)) if not same(o, v)}
        return changed if len(changed) * 2 <= len(new) else None
    if isinstance(old, dict) and isinstance(new, dict) and list(old) == list(new):
        changed = {k: v for k, v in new.items() if not same(old[k], v)}
        return changed if len(changed) * 2 <= len(new) else None
    return None


#: Shortest run of unchanged rows sent as one {"k": [i, n]} element: shorter runs are shorter as indices.
MIN_RUN = 4


def _runs(elements: list[JSONValue]) -> list[JSONValue]:
    """``elements`` with each run of MIN_RUN or more consecutive old-row indices as one {"k": [i, n]}."""
    out: list[JSONValue] = []
    n = len(elements)
    at = 0
    while at < n:
        first = elements[at]
        if type(first) is not int:
            out.append(first)
            at += 1
            continue
        end = at + 1
        while end < n and type(elements[end]) is int and elements[end] == first + (end - at):
            end += 1
        if end - at >= MIN_RUN:
            out.append({"k": [first, end - at]})
        else:
            out.extend(elements[at:end])
        at = end
    return out


def _encode_rows(old: list[Any], new: list[Any], key_index: Sequence[int]) -> list[JSONValue]:
    return _runs(_encode_row_elements(old, new, key_index))


def _encode_row_elements(old: list[Any], new: list[Any], key_index: Sequence[int]) -> list[JSONValue]:
    if key_index:
        fast = _encode_keyed_rows(old, new, key_index)
        if fast is not None:
            return fast
    unused: dict[Hashable, deque[int]] = defaultdict(deque)
    key = _row_keyer(key_index)
    for i, row in enumerate(old):
        unused[key(row)].append(i)
    out: list[JSONValue] = []
    for row in new:
        candidates = unused.get(key(row))
        if candidates:
            i = candidates.popleft()
            if same(old[i], row):
                out.append(i)
                continue
            patch = _patch(old[i], row)
            if patch is not None:
                out.append({"i": i, "p": patch})
                continue
        out.append({"r": row})
    return out


#: The partner of a new row that has none in the old table (it is sent whole).
_NO_ROW: list[Any] = []


def _cell_types(rows: list[Any]) -> list[tuple[type, ...]]:
    """Each row's tuple of cell types, built in C (map over map): no Python frame per row."""
    return list(map(tuple, map(map, repeat(type), rows)))


def _encode_keyed_rows(old: list[Any], new: list[Any], key_index: Sequence[int]) -> list[JSONValue] | None:
    """_encode_rows for a table of list rows with unique keys, the per-row work done in C where it can be.

    A socket table is mostly the same rows from one second to the next: the keys, the pairing and
    the plain ``==`` of each pair run as C loops (map, zip, dict), and only a pair that == cannot
    settle (unequal, or cells that are floats, lists or objects, whose sign of zero or nesting
    same() must look at) takes the Python path. It gives the elements _encode_rows's general loop
    gives; None (use that loop) when a row is not a list, a key cell is unhashable or a key repeats.
    """
    if set(map(type, old)) - {list} or set(map(type, new)) - {list}:
        return None
    cells = itemgetter(*key_index) if len(key_index) > 1 else (lambda row: (row[key_index[0]],))
    try:
        old_keys = list(map(cells, old))
        new_keys = list(map(cells, new))
        position = dict(zip(old_keys, range(len(old)), strict=True))
        if len(position) != len(old) or len(set(new_keys)) != len(new):
            return None
    except (IndexError, TypeError):  # a short row, an unhashable key cell
        return None
    paired = list(map(position.get, new_keys))
    before = [old[i] if i is not None else _NO_ROW for i in paired]
    equal = list(map(operator.eq, before, new))
    new_types = _cell_types(new)
    old_types = _cell_types(before)
    plain = {types: _PLAIN.issuperset(types) for types in set(new_types)}
    out: list[JSONValue] = []
    append = out.append
    for row, i, was, eq, types, was_types in zip(new, paired, before, equal, new_types, old_types, strict=True):
        if i is None:
            append({"r": row})
            continue
        if eq and ((types == was_types and plain[types]) or same(was, row)):
            append(i)
            continue
        patch = _patch(was, row)
        append({"i": i, "p": patch} if patch is not None else {"r": row})
    return out


def encode_delta(previous: Sample, current: Sample) -> dict[str, JSONValue] | None:
    """The delta line for ``current`` after ``previous`` (same series), or None to write it in full."""
    if not (previous.ok and current.ok) or previous.series != current.series:
        return None
    old, new = previous.fields, current.fields
    key_index = _key_index(new)
    changed: dict[str, JSONValue] = {}
    rows: dict[str, JSONValue] = {}
    for name, value in new.items():
        if name in old and same(old[name], value):
            continue
        before = old.get(name)
        if isinstance(value, list) and isinstance(before, list) and value:
            rows[name] = _encode_rows(before, value, key_index)
        else:
            changed[name] = value
    delta: dict[str, JSONValue] = {}
    if changed:
        delta["set"] = changed
    removed: list[JSONValue] = [name for name in old if name not in new]
    if removed:
        delta["del"] = removed
    if list(new) != [k for k in old if k in new] + [k for k in new if k not in old]:
        delta["keys"] = list(new)
    if rows:
        delta["rows"] = rows
    return {"kind": current.kind, "host": current.host, "target": current.target, "ts": current.ts,
            "delta": delta}


def _decode_rows(old: Any, elements: Any) -> list[JSONValue]:
    if not isinstance(old, list) or not isinstance(elements, list):
        raise DeltaError("row list expected")
    out: list[JSONValue] = []
    for element in elements:
        if isinstance(element, int) and not isinstance(element, bool):
            out.append(_old_row(old, element))
        elif isinstance(element, dict) and "r" in element:
            out.append(element["r"])
        elif isinstance(element, dict) and "k" in element:
            out.extend(_old_run(old, element["k"]))
        elif isinstance(element, dict) and isinstance(element.get("p"), dict):
            base = _old_row(old, element.get("i"))
            out.append(_apply_patch(base, element["p"]))
        else:
            raise DeltaError(f"bad row element {str(element)[:40]}")
    return out


def _old_run(old: list[Any], run: Any) -> list[Any]:
    if not (isinstance(run, list) and len(run) == 2 and all(type(v) is int for v in run)):
        raise DeltaError(f"bad run {str(run)[:40]}")
    first, count = run
    if count < 1 or first < 0 or first + count > len(old):
        raise DeltaError(f"rows {first}..{first + count - 1} are not in the previous snapshot")
    return old[first:first + count]


def _old_row(old: list[Any], index: Any) -> Any:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(old):
        raise DeltaError(f"row {index!r} is not in the previous snapshot")
    return old[index]


def _apply_patch(base: Any, patch: dict[str, Any]) -> JSONValue:
    if isinstance(base, list):
        row = list(base)
        for column, value in patch.items():
            if not column.isdigit() or int(column) >= len(row):
                raise DeltaError(f"column {column!r} is not in the row")
            row[int(column)] = value
        return row
    if isinstance(base, dict):
        if not set(patch) <= set(base):
            raise DeltaError("patch names a key the row does not have")
        return {k: patch.get(k, v) for k, v in base.items()}
    raise DeltaError("patch on a row that is neither a list nor an object")


def decode_delta(previous: Sample, line: dict[str, Any]) -> Sample:
    """The Sample a delta line stands for, given the previous snapshot of its series."""
    delta = line.get("delta")
    if not isinstance(delta, dict):
        raise DeltaError("delta must be an object")
    old = previous.fields
    changed = delta.get("set", {})
    removed = delta.get("del", [])
    rows = delta.get("rows", {})
    if not isinstance(changed, dict) or not isinstance(removed, list) or not isinstance(rows, dict):
        raise DeltaError("set, del and rows have the wrong types")
    fields: dict[str, JSONValue] = {k: v for k, v in old.items() if k not in removed}
    for name, elements in rows.items():
        fields[name] = _decode_rows(old.get(name), elements)
    fields.update(changed)
    keys = delta.get("keys")
    if keys is not None:
        if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(fields):
            raise DeltaError("keys do not name the fields")
        fields = {k: fields[k] for k in keys}
    return Sample(kind=previous.kind, target=previous.target, ts=line["ts"], fields=fields, host=previous.host)
