"""The bad-recording corpus: whatever the file holds, replay says what it skipped in one line, never a traceback.

Each case is made here (generated where it can be) and checked the way a user
sees it: `warroom replay FILE --json` as a process - its exit status, the one
line on stderr, no traceback, no hang - and the input unchanged afterwards.
Hypothesis then feeds the reader arbitrary lines and arbitrary cuts.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.engine.recorder import RecordingError
from console.engine.recording import TS_RANGE, read_recording
from probes.samples import Sample
from tests.recording.helpers import fingerprint
from tests.unit.test_cli import warroom

NOW = time.time()
GOOD = Sample("tcp", "127.0.0.1:5432", NOW, {"rtt_ms": 0.25}).to_json()
GOOD2 = Sample("tcp", "127.0.0.1:5432", NOW + 1, {"rtt_ms": 0.5}).to_json()


def line_with(**override: object) -> str:
    base = {"kind": "tcp", "host": "local", "target": "127.0.0.1:5432", "ts": NOW + 2, "fields": {"rtt_ms": 1.0}}
    base.update(override)
    return json.dumps(base)


def raw_line(fields_text: str = '{"rtt_ms":1.0}', ts_text: str = str(NOW + 2)) -> str:
    return f'{{"kind":"tcp","host":"local","target":"127.0.0.1:5432","ts":{ts_text},"fields":{fields_text}}}'


def text_file(*lines: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "rec.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        return path
    return make


def bytes_file(data: bytes, name: str = "rec.jsonl") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def nested(depth: int) -> str:
    return raw_line('{"deep":' + "[" * depth + "]" * depth + "}")


def fifo(tmp: Path) -> Path:
    path = tmp / "rec.fifo"
    os.mkfifo(path)
    return path


def empty_dir(tmp: Path) -> Path:
    path = tmp / "incident"
    path.mkdir()
    (path / "notes.txt").write_text("not a recording")
    return path


def huge_line(tmp: Path) -> Path:
    path = tmp / "rec.jsonl"
    with path.open("w") as fh:
        fh.write(GOOD + "\n")
        fh.write('{"kind":"tcp","target":"' + "x" * (33 * 1024 * 1024) + '"}\n')
        fh.write(GOOD2 + "\n")
    return path


def zstd_then_junk(tmp: Path) -> Path:
    import zstandard

    path = tmp / "rec.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress((GOOD + "\n" + GOOD2 + "\n").encode()) + b"\x00junk" * 50)
    return path


def _ends_mid_line(compressed: bytes) -> bool:
    """Whether what a reader can decompress of ``compressed`` ends inside a line that does not parse."""
    readable = zlib.decompressobj(31).decompress(compressed)
    tail = readable.rpartition(b"\n")[2]
    if not tail:
        return False
    try:
        json.loads(tail)
    except ValueError:
        return True
    return False


def gzip_cut(tmp: Path) -> Path:
    """A gzip recording cut short as a writer killed mid-line leaves it. The bytes depend on NOW, so the
    cut is moved back from two thirds until it lands inside a line: at a line's end the file is only
    shorter, not torn (that made this case fail about once in a hundred runs)."""
    path = tmp / "rec.jsonl.gz"
    data = gzip.compress(("\n".join([GOOD, GOOD2] * 200) + "\n").encode())
    cut = len(data) * 2 // 3
    while not _ends_mid_line(data[:cut]):
        cut -= 1
    path.write_bytes(data[:cut])
    return path


rng = random.Random(1234)
JUNK = bytes(rng.randrange(256) for _ in range(4096))

#: name -> (make the input, exit status, what the one stderr line says)
CORPUS: dict[str, tuple[Callable[[Path], Path], int, str]] = {
    "NaN": (text_file(GOOD, raw_line('{"rtt_ms":NaN}'), GOOD2), 0, "1 non-finite number"),
    "Infinity": (text_file(GOOD, raw_line('{"rtt_ms":Infinity}')), 0, "1 non-finite number"),
    "-Infinity ts": (text_file(GOOD, raw_line(ts_text="-Infinity")), 0, "1 non-finite number"),
    "1e999": (text_file(GOOD, raw_line('{"rtt_ms":1e999}')), 0, "1 non-finite number"),
    "negative ts": (text_file(GOOD, line_with(ts=-1)), 0, "1 timestamp out of range"),
    "ts 1e300": (text_file(GOOD, line_with(ts=1e300)), 0, "1 timestamp out of range"),
    "ts 10**30": (text_file(GOOD, line_with(ts=10**30)), 0, "1 timestamp out of range"),
    "ts zero": (text_file(GOOD, line_with(ts=0)), 0, "1 timestamp out of range"),
    "nested 5000": (text_file(GOOD, nested(5000)), 0, "1 nested too deep to read"),
    "nested 200000": (text_file(GOOD, nested(200_000)), 0, "1 nested too deep to read"),
    "5000-digit int": (text_file(GOOD, raw_line('{"n":' + "9" * 5000 + "}")), 0, "1 not JSON"),
    "binary junk": (bytes_file(GOOD.encode() + b"\n" + JUNK + b"\n" + GOOD2.encode() + b"\n"), 0, "not JSON"),
    "NUL bytes": (bytes_file(GOOD.encode() + b"\n" + b"\0" * 100 + b"\n"), 0, "1 not JSON"),
    "bad UTF-8": (bytes_file(GOOD.encode() + b'\n{"kind":"tcp\xff\xfe","target":"","ts":1}\n'), 0, "1 not JSON"),
    "lone surrogate": (text_file(GOOD, raw_line('{"p":"\\ud800"}')), 0, "1 not JSON"),
    "array line": (text_file(GOOD, "[1, 2, 3]"), 0, "1 not a Sample"),
    "wrong types": (text_file(GOOD, line_with(kind=5)), 0, "1 not a Sample"),
    "delta without base": (text_file(GOOD, json.dumps({"kind": "pools", "host": "local", "target": "",
                                                        "ts": NOW, "delta": {"set": {"a": 1}}})),
                           0, "1 snapshot change without its snapshot"),
    "torn last line": (bytes_file((GOOD + "\n" + GOOD2[:30]).encode()), 0, "1 torn last line"),
    "huge line": (huge_line, 0, "1 line longer than 32 MB"),
    "zstd then junk": (zstd_then_junk, 0, "damaged compressed data"),
    "gzip cut short": (gzip_cut, 0, "skipped"),
    "only junk": (bytes_file(JUNK), 2, "holds no Samples"),
    "empty": (bytes_file(b""), 2, "holds no Samples"),
    "zstd magic, junk": (bytes_file(b"\x28\xb5\x2f\xfd" + JUNK, "x.zst"), 2, "holds no Samples"),
    "header without schema": (text_file('{"recording":"warroom"}', GOOD), 2, "no schema number"),
    "FIFO": (fifo, 2, "it is a FIFO, not a recording file"),
    "/dev/zero": (lambda tmp: Path("/dev/zero"), 2, "it is a device, not a recording file"),
    "/dev/null": (lambda tmp: Path("/dev/null"), 2, "it is a device, not a recording file"),
    "folder without a recording": (empty_dir, 2, "holds no recording"),
    "missing": (lambda tmp: tmp / "nope.jsonl", 2, "no such file or folder"),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_recording_is_one_line_never_a_traceback(tmp_path: Path, case: str) -> None:
    make, status, says = CORPUS[case]
    path = make(tmp_path)
    before = fingerprint(path) if path.exists() else None
    result = warroom("replay", str(path), "--json", timeout=60)
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warroom: ") and says in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    if status == 0:
        printed = [Sample.from_json(line) for line in result.stdout.splitlines()]
        assert printed and all(TS_RANGE[0] <= s.ts <= TS_RANGE[1] for s in printed)
    assert (fingerprint(path) if path.exists() else None) == before


def test_the_good_lines_around_bad_ones_are_kept(tmp_path: Path) -> None:
    path = text_file(GOOD, raw_line('{"rtt_ms":NaN}'), line_with(ts=-5), GOOD2)(tmp_path)
    result = warroom("replay", str(path), "--json")
    assert result.stdout.splitlines() == [GOOD, GOOD2]
    assert "skipped 2 bad lines" in result.stderr


line_kinds = st.one_of(
    st.just(GOOD), st.just(GOOD2),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.text(max_size=200),
    st.builds(lambda ts: line_with(ts=ts), st.floats(allow_nan=False) | st.integers()),
    st.builds(lambda d: nested(d), st.integers(0, 200)),
    st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                 lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children,
                                                                                    max_size=4),
                 max_leaves=20).map(lambda v: json.dumps({"kind": "tcp", "target": "t", "ts": NOW, "fields": v},
                                                         allow_nan=True)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_kinds, max_size=20), cut=st.integers(0, 10_000), compress=st.booleans())
def test_the_reader_never_fails_on_anything(tmp_path: Path, lines: list[str], cut: int, compress: bool) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if compress:
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    data = data[: max(cut, len(data) // 2)]
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        samples, problems = read_recording(path)
    except RecordingError as exc:
        assert str(exc)  # a clear refusal (a header with a bad schema), never another exception
        return
    for sample in samples:
        assert TS_RANGE[0] <= sample.ts <= TS_RANGE[1]
        sample.to_json().encode("utf-8")  # printable, exactly
    assert problems.total >= 0
