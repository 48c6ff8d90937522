"""Keep credentials off the screen and out of Samples: redact DSNs, URLs and messages.

Used by every probe that is handed a connection string. The label a probe
reports (its Sample ``target``) is always the redacted form; the secret stays
in the ProbeSpec's options and in memory.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
_KV_SECRET = re.compile(r"(?i)\b(password|passwd|pwd|sslpassword|token|secret)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]*):([^/@\s]*)@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd|token|secret)=)[^&#\s]*")


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with passwords in URLs, key=value DSNs and query strings replaced by ***.

    ``secrets`` are literal strings (a password from an environment variable)
    removed wherever they appear, for messages a driver wrote.
    """
    out = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", text)
    out = _KV_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", out)
    out = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", out)
    for secret in secrets:
        if secret and len(secret) >= 3:  # a 1-2 character "secret" would shred ordinary words
            out = out.replace(secret, REDACTED)
    return out


def url_label(url: str) -> str:
    """scheme://user@host:port/path of a URL, without password, query or fragment."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return redact(url)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{parts.username}@" if parts.username else ""
    netloc += host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def one_line(message: str, limit: int = 300) -> str:
    """The first non-empty line of a driver's message, bounded, for a pane's one-line error."""
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return message.strip()[:limit]
