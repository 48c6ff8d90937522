"""Snapshot kinds are recorded as changes; decoding gives back exactly the Sample that was recorded."""

from __future__ import annotations

import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from console.engine.snapshot_delta import decode_delta, encode_delta, same
from probes.samples import Sample
from tests.recording.helpers import conns_table, pools_sample

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
rows = st.one_of(st.lists(scalars, min_size=0, max_size=6),
                 st.dictionaries(st.sampled_from(["label", "name", "open", "idle", "x"]), scalars, max_size=5),
                 scalars)
fields = st.dictionaries(st.sampled_from(["rows", "groups", "gauges", "truncated", "columns", "n", "note"]),
                         st.one_of(scalars, st.lists(rows, max_size=8)), max_size=6)


def line_of(sample: Sample) -> str:
    return sample.to_json()


@settings(max_examples=300, deadline=None)
@given(before=fields, after=fields)
def test_any_change_between_two_snapshots_decodes_to_the_same_json(before: dict, after: dict) -> None:
    previous = Sample("pools", "", 1.7e9, before)
    current = Sample("pools", "", 1.7e9 + 1, after)
    delta = encode_delta(previous, current)
    assert delta is not None
    # Through JSON, as the file carries it.
    decoded = decode_delta(previous, json.loads(json.dumps(delta)))
    assert line_of(decoded) == line_of(current)


def test_types_that_compare_equal_in_python_stay_apart() -> None:
    assert not same(1, 1.0) and not same(1, True) and not same(0.0, -0.0) and same([1, "a"], [1, "a"])
    previous = Sample("pools", "", 1.7e9, {"rows": [[1, 0.0, True]]})
    current = Sample("pools", "", 1.7e9 + 1, {"rows": [[1.0, -0.0, 1]]})
    decoded = decode_delta(previous, json.loads(json.dumps(encode_delta(previous, current))))
    assert line_of(decoded) == line_of(current)


def test_a_socket_table_delta_is_a_fraction_of_the_snapshot() -> None:
    now = time.time()
    first, second = conns_table(now, 2000, 1), conns_table(now + 1, 2000, 2)
    delta = json.dumps(encode_delta(first, second))
    assert len(delta) < len(second.to_json()) / 2
    assert line_of(decode_delta(first, json.loads(delta))) == line_of(second)


def test_a_table_of_mostly_unchanged_sockets_costs_bytes_for_its_changes_only() -> None:
    """3,000 sockets (TIME-WAIT left by a load) of which a few change, end or begin in a second: the
    delta names the unchanged ones as runs, not one index each (~5 bytes a socket every second)."""
    now = time.time()
    first = conns_table(now, 3000, 1)
    rows = [list(row) for row in first.fields["rows"]]  # type: ignore[union-attr]
    del rows[1000:1010]  # ten sockets gone
    rows[2000][4] = 77  # one socket's receive queue changed
    rows += [["tcp", "TIME-WAIT", f"127.0.0.1:{40000 + i}", "127.0.0.1:80", *row[4:]]
             for i, row in enumerate(rows[:5])]  # five new
    second = Sample("conns_table", "", now + 1, {**first.fields, "rows": rows})
    delta = json.dumps(encode_delta(first, second))
    assert len(delta) < 2000, len(delta)  # the five new rows whole, one patch and a few runs
    assert line_of(decode_delta(first, json.loads(delta))) == line_of(second)


def test_pools_and_failed_snapshots() -> None:
    now = time.time()
    a, b = pools_sample(now, 1), pools_sample(now + 1, 2, used=9)
    assert line_of(decode_delta(a, json.loads(json.dumps(encode_delta(a, b))))) == line_of(b)
    failed = Sample("pools", "", now + 2, {}, error="timeout", message="no answer")
    assert encode_delta(b, failed) is None and encode_delta(failed, b) is None  # written in full


def test_a_long_table_is_written_as_exactly_its_json() -> None:
    from console.engine.recorder import dumps

    table = conns_table(time.time(), 2345, 3)
    assert dumps(table.to_dict()) == table.to_json()
    delta = encode_delta(conns_table(time.time() - 1, 2345, 2), table)
    assert dumps(delta) == json.dumps(delta, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


key_cells = st.one_of(st.sampled_from(["tcp", "udp"]), st.integers(0, 10**6), st.booleans(), st.floats(-1, 1))
same_values = st.sampled_from([0, 0.0, -0.0, False, 1, 1.0, True, None, "", [0], [0.0], {"a": 1}, {"a": True}])
table_rows = st.lists(st.one_of(
    st.tuples(key_cells, key_cells, key_cells, key_cells, scalars, scalars).map(list),
    st.tuples(st.just("tcp"), st.integers(0, 10**6), st.just("*"), st.just(0), same_values, same_values).map(list),
    st.lists(scalars, max_size=3),  # short: the key cells are missing
    st.lists(st.lists(scalars, max_size=2), min_size=4, max_size=4),  # unhashable key cells
), max_size=8)


@settings(max_examples=300, deadline=None)
@given(before=table_rows, after=table_rows, shuffle=st.randoms(use_true_random=False))
def test_a_keyed_table_decodes_to_the_same_json(before: list, after: list, shuffle: object) -> None:
    """Tables whose columns name the key: rows matched by key, duplicates and odd rows included."""
    columns = ["proto", "local", "remote", "ino", "a", "b"]
    kept = [list(row) for row in before]
    shuffle.shuffle(kept)  # type: ignore[attr-defined]
    # The same keys with other cells that == cannot tell apart (1, 1.0, True; 0.0, -0.0): types must survive.
    retyped = [row[:4] + [json.loads(json.dumps(v)) if not isinstance(v, (int, float)) or isinstance(v, bool)
                          else (float(v) if isinstance(v, int) else -v) for v in row[4:]]
               if len(row) == 6 else row for row in kept]
    for new_rows in (after, kept, kept + after, before, retyped):
        previous = Sample("conns_table", "", 1.7e9, {"columns": columns, "rows": before})
        current = Sample("conns_table", "", 1.7e9 + 1, {"columns": columns, "rows": new_rows})
        delta = encode_delta(previous, current)
        assert delta is not None
        decoded = decode_delta(previous, json.loads(json.dumps(delta)))
        assert line_of(decoded) == line_of(current)
