"""W1 (sequential ``SELECT $1::int4``) and W3 (``SELECT *`` of 500,000 mixed rows)."""

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

W3_SETUP = """
DROP TABLE IF EXISTS bench_rows;
CREATE TABLE bench_rows AS
SELECT g::int4 AS i4, (g::int8 * 1000003) AS i8, g * 0.5::float8 AS f8,
       lpad(g::text, 20, 'x') AS t, timestamptz '2024-01-01' + g * interval '1 second' AS ts,
       (g % 2 = 0) AS b, (g / 7.0)::numeric(12, 2) AS n
FROM generate_series(1, {n}) AS g;
"""
W3_QUERY = "SELECT i4, i8, f8, t, ts, b, n FROM bench_rows"


def w1_expected(n: int) -> int:
    return n * (n - 1) // 2


def w3_expected(n: int) -> int:
    return n + n // 2 + n * (n + 1) // 2


def _w3_check(rows: Any) -> int:
    """Row count, true booleans, and the int4 column's sum: every row was decoded."""
    return len(rows) + sum(1 for r in rows if r[5]) + sum(r[0] for r in rows)


# -- trio_pg --------------------------------------------------------------------------


async def _trio_pg_w1(p: Params, n: int) -> Timed:
    async with trio_pg.open_connection(**p) as conn:
        start = time.perf_counter()
        total = 0
        for i in range(n):
            total += await conn.fetchval("SELECT $1::int4", i)
        return total, time.perf_counter() - start


async def _trio_pg_w3(p: Params, n: int) -> Timed:
    async with trio_pg.open_connection(**p) as conn:
        start = time.perf_counter()
        rows = await conn.fetch(W3_QUERY)
        return _w3_check(rows), time.perf_counter() - start


def trio_pg_w1(p: Params, n: int) -> Timed:
    return trio.run(_trio_pg_w1, p, n)


def trio_pg_w3(p: Params, n: int) -> Timed:
    return trio.run(_trio_pg_w3, p, n)


# -- asyncpg ------------------------------------------------------------------------------


async def _asyncpg_w1(p: Params, n: int) -> Timed:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_params(p))
    try:
        start = time.perf_counter()
        total = 0
        for i in range(n):
            total += await conn.fetchval("SELECT $1::int4", i)
        return total, time.perf_counter() - start
    finally:
        await conn.close()


async def _asyncpg_w3(p: Params, n: int) -> Timed:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_params(p))
    try:
        start = time.perf_counter()
        rows = await conn.fetch(W3_QUERY)
        return _w3_check(rows), time.perf_counter() - start
    finally:
        await conn.close()


# -- psycopg (async) -----------------------------------------------------------------------


async def _psycopg_w1(p: Params, n: int) -> Timed:
    import psycopg

    async with await psycopg.AsyncConnection.connect(psycopg_dsn(p), prepare_threshold=0) as conn:
        start = time.perf_counter()
        total = 0
        for i in range(n):
            cur = await conn.execute("SELECT %s::int4", (i,), binary=True)
            row = await cur.fetchone()
            assert row is not None
            total += row[0]
        return total, time.perf_counter() - start


async def _psycopg_w3(p: Params, n: int) -> Timed:
    import psycopg

    async with await psycopg.AsyncConnection.connect(psycopg_dsn(p)) as conn:
        start = time.perf_counter()
        cur = await conn.execute(W3_QUERY, binary=True)
        rows = await cur.fetchall()
        return _w3_check(rows), time.perf_counter() - start


WORKLOADS = [
    Workload(
        id="W1",
        description="sequential SELECT $1::int4 on one connection, values summed",
        size=20_000,
        quick_size=2_000,
        expected=w1_expected,
        unit="queries",
        drivers=side_by_side(trio_pg_w1, _asyncpg_w1, _psycopg_w1),
    ),
    Workload(
        id="W3",
        description="SELECT * of rows (int4, int8, float8, text, timestamptz, bool, numeric)",
        size=500_000,
        quick_size=20_000,
        expected=w3_expected,
        setup_sql=W3_SETUP,
        unit="rows",
        drivers=side_by_side(trio_pg_w3, _asyncpg_w3, _psycopg_w3),
    ),
]
