"""Server-side cursors: walk a big result in bounded memory, stop early, call functions.

Runs against ``DATABASE_URL`` or the ``PG*`` environment variables when set; otherwise
it starts a throwaway PostgreSQL server (``trio_pg.testing``), uses it, and removes it.

    python examples/cursor.py
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
        # A million rows, 1000 at a time: memory holds one batch, not the result.
        total = 0
        async with conn.cursor(
            "SELECT g FROM generate_series(1, $1::int4) AS g", 1_000_000, prefetch=1000
        ) as rows:
            async for row in rows:
                total += row["g"]
        print(f"sum over a million streamed rows: {total:,}")

        # Leave early: the portal is closed and the connection is ready at once. (The
        # set-returning function sits in the select list, where the server produces its
        # rows as they are fetched; in FROM it would compute all of them first.)
        async with conn.cursor("SELECT generate_series(1, 1000000000) AS g") as rows:
            async for row in rows:
                if row[0] == 3:
                    break
        answer = await conn.fetchval("SELECT 1")
        print("left a billion-row cursor after 3 rows; the next query answers", answer)

        # Inside a transaction the cursor's block may run other statements as it goes.
        await conn.execute("CREATE TEMP TABLE squares (n int4, square int8)")
        series = "SELECT g FROM generate_series(1, 5) AS g"
        async with conn.transaction(), conn.cursor(series, prefetch=2) as rows:
            async for row in rows:
                await conn.execute("INSERT INTO squares VALUES ($1, $2)", row[0], row[0] ** 2)
        print("squares:", [tuple(r) for r in await conn.fetch("SELECT * FROM squares")])

        # A prepared statement streams the same way.
        stmt = await conn.prepare("SELECT n, square FROM squares WHERE n > $1 ORDER BY n")
        async with stmt.cursor(2, prefetch=10) as rows:
            print("n > 2:", [row["square"] async for row in rows])
        await stmt.close()

        # The FunctionCall message: by name (resolved once per connection) or by OID.
        print("sqrt(9.0) =", await conn.call_function("sqrt", 9.0))
        oid = await conn.fetchval("SELECT 'pg_catalog.int4pl'::regproc::oid")
        print(f"int4pl (OID {oid})(40, 2) =", await conn.call_function(oid, 40, 2))


if __name__ == "__main__":
    trio.run(main)
