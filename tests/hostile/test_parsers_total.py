"""The parsers are total: whatever text arrives, the answer is a value or the module's own one-line error.

Hypothesis generates the text, biased towards the characters that broke parsers before
(brackets, colons, @, %, non-ASCII, control characters).
"""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.settings.config_file import ConfigError, load_config
from console.settings.hosts import HostConfigError, parse_host_arg
from console.settings.pools import PoolsConfigError, pool_from_cli
from probes.targets import TargetError, parse_target

TRICKY = list(":/[]@?#%=,.-_ ") + list(string.ascii_letters[:8] + string.digits) + ["é", "☃", "\x00", "\n", "\t"]
PREFIXES = ["", "http://", "https://", "ftp://", "http://[", "[", "http://u:p@", "[::1]:", "127.0.0.1:"]
texts = st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.text(st.sampled_from(TRICKY), max_size=40))


@settings(max_examples=3000, deadline=None)
@given(texts)
def test_parse_target_answers_or_raises_target_error(text: str) -> None:
    try:
        target = parse_target(text)
    except TargetError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert target.host and (target.port is None or 1 <= target.port <= 65535)


@settings(max_examples=2000, deadline=None)
@given(texts)
def test_parse_host_arg_answers_or_raises_host_config_error(text: str) -> None:
    try:
        parse_host_arg(text)
    except HostConfigError:
        pass


@settings(max_examples=2000, deadline=None)
@given(st.builds(lambda a, b: a + b, st.sampled_from(["db=", "db=3,", "db=3,remote=", "=", ""]), texts))
def test_pool_from_cli_answers_or_raises_pools_config_error(text: str) -> None:
    try:
        pool_from_cli(text)
    except PoolsConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(st.sampled_from(list('[]="=.\n#') + list("abc123")), max_size=80)
       .map(str.encode))
def test_load_config_answers_or_raises_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc)
