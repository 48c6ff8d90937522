"""Small helpers shared by the layer tests."""

from __future__ import annotations

import socket


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` where nothing listens (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
