"""A connection pool: many tasks, a few connections, transactions, timeouts, statistics.

Runs against ``DATABASE_URL`` or the ``PG*`` environment variables when set; otherwise
it starts a throwaway PostgreSQL server (``trio_pg.testing``), uses it, and removes it.
It creates (and drops) a table named ``example_accounts``.

    python examples/pool.py
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

import trio_pg
from trio_pg.pool import Pool, open_pool

_PG_SETTINGS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")


@asynccontextmanager
async def database_dsn() -> AsyncIterator[str | None]:
    """The DSN to use: the environment's, or a throwaway server's."""
    if os.environ.get("DATABASE_URL") or any(os.environ.get(k) for k in _PG_SETTINGS):
        yield os.environ.get("DATABASE_URL")
        return
    from trio_pg.testing import open_postgres

    print("No DATABASE_URL or PG* settings: starting a throwaway PostgreSQL server...")
    async with open_postgres() as server:
        yield server.dsn()


async def setup(conn: trio_pg.Connection) -> None:
    """Runs once on every new connection of the pool."""
    await conn.execute("SET application_name = 'trio_pg pool example'")


async def main() -> None:
    async with database_dsn() as dsn, open_pool(dsn, min_size=2, max_size=5, setup=setup) as pool:
        print("pool open:", pool)
        # A regular table: a temporary one would exist on one of the connections only.
        await pool.execute(
            "DROP TABLE IF EXISTS example_accounts;"
            " CREATE TABLE example_accounts (id int PRIMARY KEY, balance int)"
        )
        try:
            await tour(pool)
        finally:
            await pool.execute("DROP TABLE example_accounts")


async def tour(pool: Pool) -> None:
    """What a pool does, step by step."""
    # One statement: the pool lends a connection for the call.
    print("  the server says:", await pool.fetchval("SELECT 'hello from ' || version()"))

    # A hundred tasks, five connections: waiters are served first come, first served;
    # when every connection is busy, single statements share them (pipelined).
    squares: dict[int, int] = {}

    async def square(n: int) -> None:
        squares[n] = await pool.fetchval("SELECT $1::int * $1::int", n)

    async with trio.open_nursery() as nursery:
        for n in range(100):
            nursery.start_soon(square, n)
    assert squares == {n: n * n for n in range(100)}
    print(f"  100 tasks done; {pool.statistics().shared} calls shared a busy connection")

    # A block that needs one connection throughout (a transaction) borrows one.
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany("INSERT INTO example_accounts VALUES ($1, $2)", [(1, 100), (2, 50)])
        await conn.execute("UPDATE example_accounts SET balance = balance - 30 WHERE id = 1")
        await conn.execute("UPDATE example_accounts SET balance = balance + 30 WHERE id = 2")
    rows = await pool.fetch("SELECT id, balance FROM example_accounts ORDER BY id")
    print("  balances after a transfer:", [tuple(r) for r in rows])

    # A connection given back inside a transaction is rolled back before reuse.
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("UPDATE example_accounts SET balance = 0")
    total = await pool.fetchval("SELECT sum(balance) FROM example_accounts")
    print("  total after a forgotten BEGIN was rolled back:", total)

    # Timeouts are cancel scopes: a cancelled call gives its connection back.
    with trio.move_on_after(0.5):
        await pool.execute("SELECT pg_sleep(10)")
    print("  slow query cancelled; the pool still works:", await pool.fetchval("SELECT 42"))

    stats = pool.statistics()
    print(
        f"  statistics: size={stats.size} idle={stats.idle} connects={stats.connects}"
        f" acquisitions={stats.acquisitions} resets={stats.resets}"
    )


if __name__ == "__main__":
    trio.run(main)
