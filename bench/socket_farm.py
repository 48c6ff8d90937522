"""Hold many real loopback TCP connections open in a child process, for benchmarks and tests.

``python3 -m bench.socket_farm PAIRS`` opens PAIRS connections to its own
listener on 127.0.0.1 (so 2*PAIRS sockets plus the listener), prints
``ready PORT PID`` and keeps them until its standard input closes. Only
loopback is used, and the count is bounded by the caller and by the
process's file-descriptor limit.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator


def hold(pairs: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * pairs + 64
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"socket_farm: need {needed} fds, the hard limit is {hard} (raise ulimit -n)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    for _ in range(pairs):
        client = socket.create_connection(("127.0.0.1", port))
        server, _addr = listener.accept()
        held.extend((client, server))
    print(f"ready {port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    for sock in held:
        # RST instead of FIN: no TIME-WAIT left behind to skew the next run's counts.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


@contextlib.contextmanager
def farm(pairs: int) -> Iterator[int]:
    """Run a socket farm of ``pairs`` connections; yield its listening port."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.socket_farm", str(pairs)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("ready "):
            raise RuntimeError(f"socket farm did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    hold(int(sys.argv[1]))
