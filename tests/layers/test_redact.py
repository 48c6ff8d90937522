"""Secrets in targets are masked wherever a Sample or a message carries them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.redact import redact_url, scrub, url_secrets


@pytest.mark.parametrize(("raw", "shown"), [
    ("https://svc:hunter2@api.test:8443/x?token=abc&page=2#top", "https://***@api.test:8443/x?token=***&page=2#top"),
    ("http://user@api.test/", "http://***@api.test/"),
    ("https://api.test/cb?code=xyz&state=1&API_KEY=k&sig=s", "https://api.test/cb?code=***&state=1&API_KEY=***&sig=***"),
    ("https://api.test/path?q=password-reset", "https://api.test/path?q=password-reset"),
    ("api.test:443", "api.test:443"),
    ("http://api.test/p@th", "http://api.test/p@th"),
])
def test_redact_url(raw: str, shown: str) -> None:
    assert redact_url(raw) == shown


def test_scrub_removes_every_secret_from_error_text() -> None:
    url = "https://svc:hunter2@api.test/?access_token=abc123"
    message = f"GET {url} failed; retry with password hunter2"
    cleaned = scrub(message, url_secrets(url))
    assert "hunter2" not in cleaned and "abc123" not in cleaned


@given(user=st.text(alphabet="abcdefghij", min_size=1, max_size=8),
       password=st.text(alphabet="KLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=16))
def test_password_never_survives(user: str, password: str) -> None:
    url = f"https://{user}:{password}@api.test:8443/x?token={password}"
    assert password not in redact_url(url)
    assert password not in scrub(f"boom at {url}", url_secrets(url))
