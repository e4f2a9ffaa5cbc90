"""COPY: bulk-load Python tuples, stream a CSV file in and a table out, survive a failure.

Runs against ``DATABASE_URL`` or the ``PG*`` environment variables when set; otherwise
it starts a throwaway PostgreSQL server (``trio_pg.testing``), uses it, and removes it.

    python examples/bulk_copy.py

(Not ``copy.py``: a script of that name in this directory would shadow the standard
library's ``copy`` module for every example here.)
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
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


def measurements(n: int) -> Iterator[tuple[int, str, float]]:
    """Rows generated lazily: copy_records_to_table never holds them all."""
    for i in range(n):
        yield (i, f"sensor-{i % 100}", 20.0 + (i % 37) / 10)


async def csv_lines() -> AsyncIterator[bytes]:
    """An async source of CSV data, as a file or a socket would deliver it."""
    for i in range(300_000, 300_010):
        await trio.lowlevel.checkpoint()
        yield f"{i},from-csv,{i / 100}\n".encode()


async def main() -> None:
    async with database_dsn() as dsn, trio_pg.open_connection(dsn) as conn:
        await conn.execute(
            "CREATE TEMP TABLE readings (id int4 PRIMARY KEY, sensor text, celsius float8)"
        )

        # Binary COPY of Python tuples: types come from the table, values through codecs.
        start = time.perf_counter()
        count = await conn.copy_records_to_table("readings", records=measurements(200_000))
        print(f"copied {count:,} records in {time.perf_counter() - start:.2f} s")

        # COPY FROM STDIN with data in the statement's own format (CSV here).
        count = await conn.copy_in("COPY readings FROM STDIN (FORMAT csv)", csv_lines())
        print(f"copied {count} CSV rows")

        # A failing producer: CopyFail is sent, the COPY rolls back, the error propagates.
        def broken() -> Iterator[bytes]:
            yield b"5000,ok,1.0\n"
            raise ValueError("the upstream file is truncated")

        try:
            await conn.copy_in("COPY readings FROM STDIN (FORMAT csv)", broken())
        except ValueError as exc:
            print(f"producer failed ({exc}); table still has", await conn.fetchval(
                "SELECT count(*) FROM readings"
            ), "rows")

        # A bad row: the server's error names the line.
        try:
            await conn.copy_in("COPY readings FROM STDIN (FORMAT csv)", b"400000,x,1\n400000,y,2\n")
        except trio_pg.UniqueViolationError as exc:
            print(f"duplicate refused: {exc.detail} ({exc.where})")

        # COPY TO STDOUT streams chunks as they are consumed (bounded memory).
        total = 0
        async with conn.copy_out(
            "COPY (SELECT * FROM readings WHERE sensor = 'sensor-7') TO STDOUT (FORMAT csv)"
        ) as chunks:
            async for chunk in chunks:
                total += len(chunk)
        print(f"exported {chunks.row_count:,} rows as {total:,} bytes of CSV")


if __name__ == "__main__":
    trio.run(main)
