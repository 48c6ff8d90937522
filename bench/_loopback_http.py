"""A small HTTP server on 127.0.0.1 for benchmarks: 200 OK to any path, in a process of its own.

Run as a script it prints its port on stdout and serves until killed, so the
benchmark's targets are answered by a process whose CPU is not warroom's.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"status":"ok"}\n'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode()
            + b"\r\nConnection: close\r\n\r\n" + BODY)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(RESPONSE)
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError, OSError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
