"""The Sample contract: lossless JSON round trip, and clear errors for bad lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.samples import Sample, SampleDecodeError, error_sample

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)

samples = st.builds(
    Sample,
    kind=st.text(min_size=1, max_size=12),
    target=st.text(max_size=40),
    ts=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    fields=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    host=st.text(min_size=1, max_size=20),
    error=st.none() | st.sampled_from(["timeout", "refused", "unreachable", "reset", "exception"]),
    message=st.none() | st.text(max_size=60),
)


@given(samples)
def test_json_round_trip_is_lossless(sample: Sample) -> None:
    if sample.error is None:
        sample = Sample(sample.kind, sample.target, sample.ts, sample.fields, sample.host)
    line = sample.to_json()
    assert "\n" not in line  # one Sample per line, whatever the strings hold
    assert Sample.from_json(line) == sample


def test_error_sample_keeps_original_message() -> None:
    original = "[Errno 111] Connect call failed ('127.0.0.1', 1)"
    sample = error_sample("tcp", "127.0.0.1:1", "refused", original)
    decoded = Sample.from_json(sample.to_json())
    assert not decoded.ok
    assert decoded.error == "refused"
    assert decoded.message == original


@pytest.mark.parametrize("line, reason", [
    ("not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"kind": "tcp", "ts": 1}', "missing key 'target'"),
    ('{"kind": 1, "target": "", "ts": 1}', "must be strings"),
    ('{"kind": "tcp", "target": "", "ts": "x"}', "ts must be a number"),
    ('{"kind": "tcp", "target": "", "ts": 1, "fields": []}', "fields must be an object"),
])
def test_bad_lines_raise_decode_error(line: str, reason: str) -> None:
    with pytest.raises(SampleDecodeError, match=reason):
        Sample.from_json(line)


def test_non_json_values_are_refused_on_encode() -> None:
    with pytest.raises(ValueError):
        Sample("tcp", "t", 1.0, {"rtt_ms": float("nan")}).to_json()


def test_wire_format_is_plain_json_object() -> None:
    data = json.loads(Sample("tcp", "127.0.0.1:80", 12.5, {"rtt_ms": 0.2}).to_json())
    assert data == {"kind": "tcp", "host": "local", "target": "127.0.0.1:80", "ts": 12.5,
                    "fields": {"rtt_ms": 0.2}}
