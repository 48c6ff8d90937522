"""Keep secrets out of everything a probe reports: URLs, DSNs and drivers' messages.

Two families live here. ``redact_url``/``url_secrets``/``scrub`` serve target
URLs (the http probe); ``redact``/``url_label``/``one_line`` serve connection
strings and driver messages (the pool probes).

Targets are shown on screens, written to recordings and pasted into incident
reports, so a URL such as ``https://svc:hunter2@api/x?token=abc`` must appear
as ``https://***@api/x?token=***`` everywhere a Sample carries it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

MASK = "***"
# The patterns are strings that re compiles (and caches) on first use: compiling the six of them at
# import took ~2 ms of every SSH agent's start, and an agent for TCP targets alone never uses them.
# urllib.parse is imported where a URL is taken apart, for the same reason (~1.5 ms).
#: Query parameter names whose values are credentials often enough to hide.
_SECRET_PARAM = (r"(?i)(token|secret|passw|pwd|pass$|auth|api[-_]?key|^key$|access[-_]?key|sig$|signature|session|"
                 r"credential|^code$|jwt|bearer)")
_QUERY_PAIR = r"(?P<lead>^|&|;)(?P<name>[^=&;#]+)=(?P<value>[^&;#]*)"
_USERINFO = r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@?#]*)@"


@lru_cache(maxsize=256)  # a probe redacts its own target each second
def redact_url(text: str) -> str:
    """``text`` with userinfo replaced by *** and secret-looking query values masked.

    Anything that is not a URL comes back unchanged; the rest of the URL is
    kept byte for byte (no re-encoding), so it still names the same series.
    """
    if "://" not in text:
        return text
    out = re.sub(_USERINFO, lambda m: f"{m.group('scheme')}{MASK}@", text, count=1)
    head, sep, query = out.partition("?")
    if not sep:
        return out
    query, hash_sep, fragment = query.partition("#")

    def mask(match: re.Match[str]) -> str:
        if re.search(_SECRET_PARAM, match.group("name")):
            return f"{match.group('lead')}{match.group('name')}={MASK}"
        return match.group(0)

    return f"{head}?{re.sub(_QUERY_PAIR, mask, query)}{hash_sep}{fragment}"


def url_secrets(text: str) -> list[str]:
    """The secret strings inside a URL (password, user, token values) to scrub from error text."""
    if "://" not in text:
        return []
    from urllib.parse import urlsplit

    found: list[str] = []
    try:
        parts = urlsplit(text)
    except ValueError:
        return []
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        found.append(userinfo)
    if parts.password:
        found.append(parts.password)
    for match in re.finditer(_QUERY_PAIR, parts.query):
        if re.search(_SECRET_PARAM, match.group("name")) and match.group("value"):
            found.append(match.group("value"))
    return found


def scrub(message: str, secrets: Iterable[str]) -> str:
    """``message`` with every occurrence of each secret (longest first) replaced by ***."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, MASK)
    return message


# -- connection strings and driver messages (pool probes) --------------------

REDACTED = MASK
_KV_SECRET = r"(?i)\b(password|passwd|pwd|sslpassword|token|secret)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)"
_URL_USERINFO = r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]*):([^/@\s]*)@"
_QUERY_SECRET = r"(?i)([?&](?:password|passwd|pwd|token|secret)=)[^&#\s]*"


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with passwords in URLs, key=value DSNs and query strings replaced by ***.

    ``secrets`` are literal strings (a password from an environment variable)
    removed wherever they appear, for messages a driver wrote.
    """
    out = re.sub(_URL_USERINFO, lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", text)
    out = re.sub(_KV_SECRET, lambda m: f"{m.group(1)}={REDACTED}", out)
    out = re.sub(_QUERY_SECRET, lambda m: f"{m.group(1)}{REDACTED}", out)
    # A 1-2 character "secret" would shred ordinary words; longer ones go, longest first.
    return scrub(out, [secret for secret in secrets if len(secret) >= 3])


def url_label(url: str) -> str:
    """scheme://user@host:port/path of a URL, without password, query or fragment."""
    from urllib.parse import urlsplit, urlunsplit

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
