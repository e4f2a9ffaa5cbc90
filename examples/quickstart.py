"""Quick start: connect, query, share one connection between tasks, cancel a slow query.

Runs against ``DATABASE_URL`` or the ``PG*`` environment variables when set; otherwise
it starts a throwaway PostgreSQL server (``trio_pg.testing``), uses it, and removes it.

    python examples/quickstart.py
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

import trio_pg

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


async def main() -> None:
    async with database_dsn() as dsn, trio_pg.open_connection(dsn) as conn:
        print(f"connected to PostgreSQL {'.'.join(map(str, conn.server_version))}")

        await conn.execute(
            "CREATE TEMP TABLE users (id int PRIMARY KEY, name text NOT NULL, active bool)"
        )
        await conn.executemany(
            "INSERT INTO users VALUES ($1, $2, $3)",
            [(1, "ada", True), (2, "grace", True), (3, "linus", False)],
        )
        for row in await conn.fetch("SELECT id, name FROM users WHERE active = $1", True):
            print(f"  user {row['id']}: {row['name']}")

        # Many tasks may share one connection: each call is one request in its FIFO.
        async def count_up_to(n: int) -> None:
            total = await conn.fetchval("SELECT sum(g) FROM generate_series(1, $1::int) g", n)
            print(f"  sum 1..{n} = {total}")

        async with trio.open_nursery() as nursery:
            for n in (10, 100, 1000):
                nursery.start_soon(count_up_to, n)

        # Timeouts are cancel scopes; a cancelled query is stopped on the server too.
        with trio.move_on_after(0.5):
            await conn.execute("SELECT pg_sleep(10)")
        answer = await conn.fetchval("SELECT 42")
        print("  slow query cancelled; the connection still works:", answer)

        try:
            await conn.execute("INSERT INTO users VALUES ($1, $2, $3)", 1, "dup", True)
        except trio_pg.UniqueViolationError as exc:
            print(f"  duplicate key refused ({exc.sqlstate}): {exc.constraint_name}")


if __name__ == "__main__":
    trio.run(main)
