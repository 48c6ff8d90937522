from __future__ import annotations

import pytest

from probes.targets import TargetError, parse_target


@pytest.mark.parametrize("text, host, port, scheme", [
    ("127.0.0.1:5432", "127.0.0.1", 5432, None),
    ("localhost", "localhost", None, None),
    ("[::1]:443", "::1", 443, None),
    ("::1", "::1", None, None),
    ("http://127.0.0.1:8080/health", "127.0.0.1", 8080, "http"),
    ("https://db.internal", "db.internal", None, "https"),
])
def test_good_targets(text: str, host: str, port: int | None, scheme: str | None) -> None:
    target = parse_target(text)
    assert (target.host, target.port, target.scheme) == (host, port, scheme)
    assert target.text == text


def test_url_default_port_and_endpoint() -> None:
    assert parse_target("https://db.internal").tcp_port == 443
    assert parse_target("[::1]:8443").endpoint == "[::1]:8443"


@pytest.mark.parametrize("text, says", [
    ("host:99999", "outside 1-65535"),
    ("host:0", "outside 1-65535"),
    ("host:http", "not a number"),
    ("http//x", "without '://'"),
    ("", "empty target"),
    ("   ", "empty target"),
    ("ftp://x", "only http:// and https://"),
    ("a b:1", "cannot contain spaces"),
    ("bad_host!:80", "not a host name"),
    ("http://x:99999/", "1-65535"),
    ("[::1:80", "missing ']'"),
])
def test_bad_targets_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(TargetError, match=says.replace("(", r"\(")):
        parse_target(text)
