"""A small application with a real psycopg_pool, driven to its maximum with callers waiting.

Run as ``python3 pool_app.py DSN MAX WAITERS`` with the password in PGPASSWORD.
Opens the pool with MAX connections: one caller holds a transaction-level
advisory lock, one waits for that lock (PostgreSQL shows it "waiting"), the
rest sit idle in a transaction; WAITERS more callers queue for a connection.
Prints ``ready`` when the pool reports them waiting, then holds everything
until its standard input closes.
"""

from __future__ import annotations

import asyncio
import sys

from psycopg_pool import AsyncConnectionPool


async def main(dsn: str, size: int, waiters: int) -> None:
    pool = AsyncConnectionPool(dsn, min_size=size, max_size=size, open=False, timeout=60,
                               kwargs={"application_name": "orders-svc"})
    await pool.open(wait=True, timeout=30)
    release = asyncio.Event()

    async def caller(index: int) -> None:
        async with pool.connection() as conn:
            if index == 0:
                await conn.execute("SELECT pg_advisory_xact_lock(4711)")
            elif index == 1:
                await asyncio.sleep(0.2)  # let caller 0 take the lock first
                await conn.execute("SELECT pg_advisory_xact_lock(4711)")  # blocks: "waiting"
            else:
                await conn.execute("SELECT 1")  # then idle in transaction
            await release.wait()

    tasks = [asyncio.create_task(caller(i)) for i in range(size + waiters)]
    while pool.get_stats().get("requests_waiting", 0) < waiters:
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    release.set()
    await asyncio.wait(tasks, timeout=10)
    await pool.close(timeout=5)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
