"""A corpus of bad input, as a hostile new user would type it: each is one line, exit 2, no traceback.

Every case runs the real command line (`python3 -m console.cli`) inside a sealed namespace
(loopback only, resolver 127.0.0.1), checks the exit status, that stderr is one line naming
the problem, that nothing reached stdout, and that no input file changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.hostile.conftest import Sealed, one_line

CANARY = "Canary7pw"

CLI_CASES: list[tuple[list[str], str]] = [
    (["bogus"], "is not a sub-command"),
    (["chek", "127.0.0.1:1"], "did you mean 'warroom check'"),
    (["dmeo"], "did you mean 'warroom demo'"),
    (["--bogus-flag"], "unrecognized arguments"),
    (["--interval", "nan", "127.0.0.1:1"], "--interval must be a number of seconds, not nan"),
    (["--interval", "inf", "127.0.0.1:1"], "--interval must be a number of seconds, not inf"),
    (["--interval", "0", "127.0.0.1:1"], "--interval must be at least 0.1"),
    (["--interval", "0.0001", "127.0.0.1:1"], "--interval must be at least 0.1"),
    (["--interval", "-1", "127.0.0.1:1"], "--interval must be at least 0.1"),
    (["--interval", "1e9", "127.0.0.1:1"], "at most 3600 seconds"),
    (["--json", "--duration", "nan"], "--duration must be a number of seconds"),
    (["--json", "--duration", "0"], "--duration must be more than 0"),
    (["--json", "--duration", "1e300"], "at most"),
    (["--duration", "5"], "--duration goes with --json"),
    (["--theme", "nope", "--json"], "unknown theme 'nope'"),
    (["--capture", "nope0", "--json"], "no interface 'nope0'"),
    (["--capture", "lo", "--capture-filter", "tcp prt 80", "--json"], "does not compile"),
    (["--capture-filter", "tcp", "--json"], "--capture-filter goes with --capture"),
    (["--host", "prod-1", "--ssh-config", "/nonexistent/ssh_config", "--json"], "does not exist"),
    (["--pool", "db=3,remote=x:99999"], "outside 1-65535"),
    (["--pool", "db=3,remote=[oops"], "remote"),
    (["--pool", "db=x"], "write NAME=MAX"),
    (["--expect-listen", "0"], "1-65535"),
    (["http://[::1/x"], "not a URL"),
    (["http://[fe80::1/"], "not a URL"),
    (["a\nb:80"], "a newline"),
    (["a\tb:80"], "a tab"),
    (["h" * 3000 + ":1"], "longer than"),
    (["http//x"], "looks like a URL without '://'"),
    (["host:99999"], "outside 1-65535"),
    (["ftp://x/"], "only http:// and https://"),
    (["http://\u2603\u2603..bad:80/"], "not a"),
    (["--json", "--interval", "0.5", *[f"127.0.0.1:{p}" for p in range(1, 200)]], "probes a second"),
    ([], "stdout is not a terminal"),
    (["demo"], "stdout is not a terminal"),
    (["127.0.0.1:1"], "stdout is not a terminal"),
    (["check", "--count", "0", "127.0.0.1:1"], "--count must be 1-"),
    (["check", "http://[::1/"], "not a URL"),
    (["capture", "-i", "lo", "--duration", "0"], "more than 0 and at most 3600 seconds, not 0"),
    (["capture", "-i", "nope0"], "no interface 'nope0'"),
    (["capture", "/dev/null"], "not a regular file"),
]


@pytest.mark.parametrize(("args", "says"), CLI_CASES, ids=[" ".join(a)[:40] or "(none)" for a, _ in CLI_CASES])
def test_bad_command_line_is_one_line_and_exit_2(sealed: Sealed, args: list[str], says: str) -> None:
    result = sealed.warroom(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert says in one_line(result)


def test_a_subcommand_error_points_at_its_own_help(sealed: Sealed) -> None:
    assert "(see warroom check --help)" in one_line(sealed.warroom("check", "--count", "0", "127.0.0.1:1"))
    assert "(see warroom demo --help)" in one_line(sealed.warroom("demo", "--theme", "nope"))


def test_a_long_target_keeps_the_reason_on_one_short_line(sealed: Sealed) -> None:
    line = one_line(sealed.warroom("x" * 500 + ":99999"))
    assert line.endswith("outside 1-65535 (see warroom --help)") and len(line) < 160


@pytest.mark.parametrize("args", [
    ["http://user:{c}@127.0.0.1:99999/"],
    ["http://user:{c}@[::1/"],
    ["https://127.0.0.1:0/?token={c}"],
    ["check", "http://user:{c}@127.0.0.1:99999/"],
])
def test_a_password_in_a_bad_target_never_reaches_the_message(sealed: Sealed, args: list[str]) -> None:
    result = sealed.warroom(*[a.format(c=CANARY) for a in args])
    assert result.returncode == 2
    assert CANARY not in result.stderr + result.stdout
    one_line(result)


def test_a_password_in_a_target_never_reaches_the_json_stream(sealed: Sealed) -> None:
    url = f"http://ops:{CANARY}@127.0.0.1:9/health?token={CANARY}x"
    result = sealed.warroom("--json", "--duration", "2", url)
    assert result.returncode == 0, result.stderr
    assert '"kind":"tcp"' in result.stdout and '"kind":"http"' in result.stdout
    assert CANARY not in result.stdout + result.stderr
    assert "http://***@127.0.0.1:9/health?token=***" in result.stdout


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CONFIG_CASES: list[tuple[bytes, str]] = [
    (b"interval = nan\n", "give a finite number"),
    (b"interval = inf\n", "give a finite number"),
    (b"interval = true\n", "wrong type (true/false)"),
    (b"interval = 0\n", "more than 0 seconds, not 0"),
    (b'[[redis]]\nurl = 7\n', "url must be a string (in quotes), not a number"),
    (b'[[redis]]\nname = "x"\n', "missing url"),
    (b"[thresholds]\nwarnng = 80\n", "unknown key 'warnng'"),
    (b'[[postgres]]\ndsn = "host=\'unterminated"\n', "dsn does not parse"),
    (b'targets = ["a:99999"]\n', "outside 1-65535"),
    (b'targets = "127.0.0.1:1"\n', "wrong type"),
    (b"this is [not toml\n", "is not valid TOML"),
    (b'theme = "caf\xe9"\n', "is not UTF-8 text"),
    (b'bogus = 1\n', "unknown key 'bogus'"),
    (b'[capture]\ninterface = "nope0"\nenabled = true\n', "no interface 'nope0'"),
    (b'[conns]\ninterval = nan\n', "finite number"),
]


@pytest.mark.parametrize(("content", "says"), CONFIG_CASES, ids=[c[:24].decode("latin-1") for c, _ in CONFIG_CASES])
def test_bad_config_file_is_one_line_and_exit_2(sealed: Sealed, tmp_path: Path, content: bytes, says: str) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    before = _digest(config)
    result = sealed.warroom("--config", str(config), "--json", "--duration", "1")
    assert result.returncode == 2, result.stderr
    assert says in one_line(result)
    assert result.stdout == "" and _digest(config) == before


def test_a_config_that_is_not_a_regular_file_is_refused_without_hanging(sealed: Sealed, tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)  # no writer: reading it would block forever
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    for path, says in ((fifo, "is a FIFO"), (tmp_path, "is a directory"), (Path("/dev/zero"), "is a device"),
                       (huge, "bytes, more than")):
        result = sealed.warroom("--config", str(path), "--json", "--duration", "1", timeout=10)
        assert result.returncode == 2 and says in one_line(result), (path, result.stderr)


def test_a_config_saved_with_a_bom_is_read(sealed: Sealed, tmp_path: Path) -> None:
    config = tmp_path / "bom.toml"
    config.write_bytes(b"\xef\xbb\xbf" + b'targets = ["127.0.0.1:9"]\ninterval = 0.5\n')
    result = sealed.warroom("--config", str(config), "--json", "--duration", "1.5")
    assert result.returncode == 0, result.stderr
    assert '"target":"127.0.0.1:9"' in result.stdout


def _pcap(path: Path) -> None:
    """A valid pcap with one packet header (no payload), written byte by byte."""
    import struct

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    frame = bytes(14)
    path.write_bytes(header + struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame)


def test_capture_options_that_make_no_sense_are_refused(sealed: Sealed, tmp_path: Path) -> None:
    pcap = tmp_path / "in.pcap"
    _pcap(pcap)
    before = _digest(pcap)
    existing = tmp_path / "existing.pcap"
    existing.write_bytes(b"keep me")
    cases = [
        (["--top", "-1", str(pcap)], "--top must be 1 or more"),
        (["--dns-port", "0", str(pcap)], "--dns-port must be a port in 1-65535"),
        (["--ring", "0", "--export-headers", str(tmp_path / "out.pcap"), str(pcap)], "--ring must be"),
        (["--export-headers", str(pcap), str(pcap)], "is the capture being read"),
        (["--export-headers", str(existing), str(pcap)], "exists: choose a new file, or add --force"),
    ]
    for args, says in cases:
        result = sealed.warroom("capture", *args)
        assert result.returncode == 2 and says in one_line(result), (args, result.stderr)
    assert _digest(pcap) == before and existing.read_bytes() == b"keep me"
    forced = sealed.warroom("capture", "--export-headers", str(existing), "--force", str(pcap))
    assert forced.returncode == 0, forced.stderr
    assert existing.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")  # replaced by a pcap, as asked


def test_a_fifo_given_as_a_capture_file_is_refused_without_hanging(sealed: Sealed, tmp_path: Path) -> None:
    fifo = tmp_path / "in.pcap"
    os.mkfifo(fifo)
    result = sealed.warroom("capture", str(fifo), timeout=10)
    assert result.returncode == 2 and "not a regular file" in one_line(result)
