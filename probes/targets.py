"""Parse what the user typed as a target: host, host:port, [v6]:port or a URL."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from probes.redact import redact_url

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
# A string re compiles on first use, and urllib.parse imported where a URL is parsed: an SSH agent for
# IP-address targets needs neither, and they were ~2 ms of its start (probes.redact says the same).
_HOSTNAME = rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Targets longer than this are shortened in messages, so the reason is never cut off the screen.
_SHOWN_MAX = 60
#: Longer than any real URL a probe needs; refused before any other parsing.
MAX_TARGET_LENGTH = 2048
_WHITESPACE_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "spaces"}


class TargetError(ValueError):
    """The text is not a target; the message says what is wrong with it."""


@dataclass(frozen=True)
class Target:
    """A parsed target. ``text`` is kept as the user wrote it: it names the series."""

    text: str
    host: str
    port: int | None
    scheme: str | None = None
    path: str = "/"

    @property
    def is_url(self) -> bool:
        return self.scheme is not None

    @property
    def tcp_port(self) -> int | None:
        """The port a TCP probe should connect to (a URL's default port included)."""
        if self.port is not None:
            return self.port
        return _DEFAULT_PORTS.get(self.scheme or "")

    @property
    def endpoint(self) -> str:
        """host:port with IPv6 literals bracketed, for display and for TCP probes."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self.tcp_port
        return host if port is None else f"{host}:{port}"


def shown(text: str) -> str:
    """``text`` as a message may show it: secrets masked, control characters escaped, long ones shortened."""
    masked = redact_url(text)
    quoted = repr(masked if len(masked) <= _SHOWN_MAX else masked[:_SHOWN_MAX - 1] + "…")
    return quoted


def _check_host(host: str, original: str) -> str:
    if not host:
        raise TargetError(f"{shown(original)}: no host name")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host.isascii():
        # An internationalised name is looked up in its ASCII (punycode) form.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TargetError(f"{shown(original)}: {host!r} is not a valid internationalised host name; "
                              "give it in its ASCII form (xn--...)") from None
    if not re.match(_HOSTNAME, host) or host.replace(".", "").isdigit():
        raise TargetError(f"{shown(original)}: {host!r} is not a host name or IP address")
    return host


def _check_port(port_text: str, original: str) -> int:
    if not port_text.isdigit() or not port_text.isascii():
        raise TargetError(f"{shown(original)}: port {port_text[:12]!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise TargetError(f"{shown(original)}: port {port if port < 10**9 else port_text[:12]} is outside 1-65535")
    return port


def is_ip_literal(host: str) -> bool:
    """True for an IP address written out (no DNS lookup applies to it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_target(text: str) -> Target:
    """Parse one target or raise TargetError with a one-line reason; no input makes it raise anything else."""
    if not isinstance(text, str):
        raise TargetError(f"a target must be text, not {type(text).__name__}")
    return _parse_text(text)


@lru_cache(maxsize=256)  # the probes parse their own target at each tick; a Target is frozen
def _parse_text(text: str) -> Target:
    raw = text.strip()
    if not raw:
        raise TargetError("empty target: give a host, host:port or URL")
    if len(raw) > MAX_TARGET_LENGTH:
        raise TargetError(f"{shown(raw)}: longer than {MAX_TARGET_LENGTH} characters")
    blank = next((ch for ch in raw if ch.isspace()), None)
    if blank is not None:
        what = _WHITESPACE_NAMES.get(blank, f"a blank character (U+{ord(blank):04X})")
        raise TargetError(f"{shown(raw)}: a target cannot contain {what}")
    control = next((ch for ch in raw if ord(ch) < 32 or ord(ch) == 127), None)
    if control is not None:
        raise TargetError(f"{shown(raw)}: a target cannot contain the control character U+{ord(control):04X}")
    if "://" in raw:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(raw)
            hostname = parts.hostname or ""
        except ValueError as exc:  # e.g. "Invalid IPv6 URL" for a bracket that never closes
            raise TargetError(f"{shown(raw)}: not a URL ({exc})") from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise TargetError(f"{shown(raw)}: only http:// and https:// URLs are probed")
        try:
            port = parts.port
        except ValueError:
            raise TargetError(f"{shown(raw)}: the port is not a number in 1-65535") from None
        if port == 0:
            raise TargetError(f"{shown(raw)}: port 0 is outside 1-65535")
        if "[" in parts.netloc and ":" not in hostname:
            raise TargetError(f"{shown(raw)}: brackets are for IPv6 addresses only")
        host = _check_host(hostname, raw)
        return Target(text=raw, host=host, port=port, scheme=parts.scheme, path=parts.path or "/")
    if "/" in raw:
        raise TargetError(f"{shown(raw)}: looks like a URL without '://' (write http://HOST/...)")
    if raw.startswith("["):
        host_part, sep, port_part = raw[1:].partition("]")
        if not sep:
            raise TargetError(f"{shown(raw)}: missing ']' after the IPv6 address")
        if port_part and not port_part.startswith(":"):
            raise TargetError(f"{shown(raw)}: expected ':PORT' after ']'")
        if ":" not in host_part:
            raise TargetError(f"{shown(raw)}: brackets are for IPv6 addresses only")
        port = _check_port(port_part[1:], raw) if port_part else None
        return Target(text=raw, host=_check_host(host_part, raw), port=port)
    if raw.count(":") > 1:  # a bare IPv6 address, no port
        return Target(text=raw, host=_check_host(raw, raw), port=None)
    host_part, sep, port_part = raw.partition(":")
    port = _check_port(port_part, raw) if sep else None
    return Target(text=raw, host=_check_host(host_part, raw), port=port)
