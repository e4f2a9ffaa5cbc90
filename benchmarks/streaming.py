"""W4 (COPY a million Python tuples in) and W5 (COPY a million-row table out).

W4: records ``(int4, text, float8)`` built before the clock starts, copied into an
empty table with each driver's tuple COPY (binary format everywhere): trio_pg's and
asyncpg's ``copy_records_to_table``, psycopg's ``copy.write_row``. The check value is the
row count the server reports.

W5: ``COPY bench_copy TO STDOUT`` (text format) with each driver's copy-out, the bytes
received counted. The check value is that byte count, computed from the table's rows.
"""

from __future__ import annotations

import time
from typing import Any

import trio

import trio_pg
from benchmarks.workload import (
    Params,
    Timed,
    Workload,
    asyncpg_params,
    psycopg_dsn,
    side_by_side,
)

W4_SETUP = """
DROP TABLE IF EXISTS bench_copy_in;
CREATE UNLOGGED TABLE bench_copy_in (i int4, t text, f float8);
"""
W4_TRUNCATE = "TRUNCATE bench_copy_in"

W5_SETUP = """
DROP TABLE IF EXISTS bench_copy;
CREATE TABLE bench_copy AS
SELECT g::int4 AS i, 'row ' || g AS t, g * 0.5::float8 AS f FROM generate_series(1, {n}) AS g;
"""
W5_SQL = "COPY bench_copy TO STDOUT"


def w4_records(n: int) -> list[tuple[int, str, float]]:
    return [(i, f"record number {i}", i * 0.25) for i in range(n)]


def w4_expected(n: int) -> int:
    return n


def w5_expected(n: int) -> int:
    """Bytes of the text COPY of bench_copy: ``g \\t row g \\t g/2 \\n`` per row."""
    total = 0
    for g in range(1, n + 1):
        half = str(g // 2) if g % 2 == 0 else f"{g // 2}.5"
        total += len(str(g)) * 2 + 4 + len(half) + 3
    return total


# -- trio_pg -------------------------------------------------------------------------


async def _trio_pg_w4(p: Params, n: int) -> Timed:
    records = w4_records(n)
    async with trio_pg.open_connection(**p) as conn:
        await conn.execute(W4_TRUNCATE)
        start = time.perf_counter()
        count = await conn.copy_records_to_table("bench_copy_in", records=records)
        return count, time.perf_counter() - start


async def _trio_pg_w5(p: Params, n: int) -> Timed:
    async with trio_pg.open_connection(**p) as conn:
        start = time.perf_counter()
        total = 0
        async with conn.copy_out(W5_SQL) as chunks:
            async for chunk in chunks:
                total += len(chunk)
        return total, time.perf_counter() - start


def trio_pg_w4(p: Params, n: int) -> Timed:
    return trio.run(_trio_pg_w4, p, n)


def trio_pg_w5(p: Params, n: int) -> Timed:
    return trio.run(_trio_pg_w5, p, n)


# -- asyncpg ------------------------------------------------------------------------------


async def _asyncpg_w4(p: Params, n: int) -> Timed:
    import asyncpg

    records = w4_records(n)
    conn = await asyncpg.connect(**asyncpg_params(p))
    try:
        await conn.execute(W4_TRUNCATE)
        start = time.perf_counter()
        status = await conn.copy_records_to_table("bench_copy_in", records=records)
        elapsed = time.perf_counter() - start
        return int(status.split()[-1]), elapsed
    finally:
        await conn.close()


async def _asyncpg_w5(p: Params, n: int) -> Timed:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_params(p))
    try:
        total = 0

        async def count(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)

        start = time.perf_counter()
        await conn.copy_from_table("bench_copy", output=count)
        return total, time.perf_counter() - start
    finally:
        await conn.close()


# -- psycopg (async) -----------------------------------------------------------------------


async def _psycopg_w4(p: Params, n: int) -> Timed:
    import psycopg

    records = w4_records(n)
    async with await psycopg.AsyncConnection.connect(psycopg_dsn(p), autocommit=True) as conn:
        await conn.execute(W4_TRUNCATE)
        cur = conn.cursor()
        start = time.perf_counter()
        sql = "COPY bench_copy_in (i, t, f) FROM STDIN (FORMAT binary)"
        async with cur.copy(sql) as copy:
            copy.set_types(["int4", "text", "float8"])
            for record in records:
                await copy.write_row(record)
        elapsed = time.perf_counter() - start
        return cur.rowcount, elapsed


async def _psycopg_w5(p: Params, n: int) -> Timed:
    import psycopg

    async with await psycopg.AsyncConnection.connect(psycopg_dsn(p), autocommit=True) as conn:
        cur = conn.cursor()
        total = 0
        start = time.perf_counter()
        copy: Any
        async with cur.copy(W5_SQL) as copy:
            async for data in copy:
                total += len(data)
        return total, time.perf_counter() - start


WORKLOADS = [
    Workload(
        id="W4",
        description="COPY 1,000,000 Python tuples (int4, text, float8) into a table",
        size=1_000_000,
        quick_size=20_000,
        expected=w4_expected,
        setup_sql=W4_SETUP,
        unit="rows",
        drivers=side_by_side(trio_pg_w4, _asyncpg_w4, _psycopg_w4),
        notes=["binary COPY for every driver; records built before the clock starts"],
    ),
    Workload(
        id="W5",
        description="COPY a 1,000,000-row table out (text format), bytes counted",
        size=1_000_000,
        quick_size=20_000,
        expected=w5_expected,
        setup_sql=W5_SETUP,
        unit="rows",
        drivers=side_by_side(trio_pg_w5, _asyncpg_w5, _psycopg_w5),
    ),
]
