"""Parse what the user typed as a target: host, host:port, [v6]:port or a URL."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def _check_host(host: str, original: str) -> str:
    if not host:
        raise TargetError(f"{original!r}: no host name")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
        raise TargetError(f"{original!r}: {host!r} is not a host name or IP address")
    return host


def _check_port(port_text: str, original: str) -> int:
    if not port_text.isdigit():
        raise TargetError(f"{original!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise TargetError(f"{original!r}: port {port} is outside 1-65535")
    return port


def is_ip_literal(host: str) -> bool:
    """True for an IP address written out (no DNS lookup applies to it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_target(text: str) -> Target:
    """Parse one target or raise TargetError with a one-line reason."""
    raw = text.strip()
    if not raw:
        raise TargetError("empty target: give a host, host:port or URL")
    if any(ch.isspace() for ch in raw):
        raise TargetError(f"{raw!r}: a target cannot contain spaces")
    if "://" in raw:
        parts = urlsplit(raw)
        if parts.scheme not in _DEFAULT_PORTS:
            raise TargetError(f"{raw!r}: only http:// and https:// URLs are probed")
        try:
            port = parts.port
        except ValueError:
            raise TargetError(f"{raw!r}: the port is not a number in 1-65535") from None
        if port == 0:
            raise TargetError(f"{raw!r}: port 0 is outside 1-65535")
        host = _check_host(parts.hostname or "", raw)
        return Target(text=raw, host=host, port=port, scheme=parts.scheme, path=parts.path or "/")
    if "/" in raw:
        raise TargetError(f"{raw!r}: looks like a URL without '://' (write http://HOST/...)")
    if raw.startswith("["):
        host_part, sep, port_part = raw[1:].partition("]")
        if not sep:
            raise TargetError(f"{raw!r}: missing ']' after the IPv6 address")
        if port_part and not port_part.startswith(":"):
            raise TargetError(f"{raw!r}: expected ':PORT' after ']'")
        port = _check_port(port_part[1:], raw) if port_part else None
        return Target(text=raw, host=_check_host(host_part, raw), port=port)
    if raw.count(":") > 1:  # a bare IPv6 address, no port
        return Target(text=raw, host=_check_host(raw, raw), port=None)
    host_part, sep, port_part = raw.partition(":")
    port = _check_port(port_part, raw) if sep else None
    return Target(text=raw, host=_check_host(host_part, raw), port=port)
