"""W2 (20,000-row INSERT, batched) and W2b (20,000 pipelined ``SELECT $1::int4``).

Each driver uses its best batching, as its users would:

* W2: trio_pg ``executemany`` and a ``pipeline()`` of ``execute`` calls; asyncpg
  ``executemany``; psycopg ``executemany`` (which runs in pipeline mode).
* W2b: trio_pg ``fetchmany`` and a ``pipeline()`` of ``fetchval`` tickets; asyncpg
  ``fetchmany`` (its pipelined executemany that returns rows; asyncpg has no general
  pipeline, and one connection runs one operation at a time, so ``gather`` is not an
  option); psycopg ``executemany(..., returning=True)`` in pipeline mode, read back set
  by set. The trio_pg row is ``fetchmany``, the same operation as asyncpg's; the
  ``trio_pg-pipeline`` row is the general pipeline, one awaited ticket per statement.
"""

from __future__ import annotations

import time

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

W2_SETUP = "DROP TABLE IF EXISTS bench_insert; CREATE TABLE bench_insert (a int4, b text);"
W2_INSERT = "INSERT INTO bench_insert (a, b) VALUES ($1, $2)"
W2_CHECK = "SELECT count(*) + coalesce(sum(a), 0) FROM bench_insert"
W2B_QUERY = "SELECT $1::int4"


def w2_expected(n: int) -> int:
    return n + n * (n - 1) // 2


def w2b_expected(n: int) -> int:
    return n * (n - 1) // 2


def _rows(n: int) -> list[tuple[int, str]]:
    return [(i, f"row {i}") for i in range(n)]


# -- trio_pg --------------------------------------------------------------------------


async def _trio_pg_w2(p: Params, n: int, *, pipelined: bool) -> Timed:
    rows = _rows(n)
    async with trio_pg.open_connection(**p) as conn:
        await conn.execute("TRUNCATE bench_insert")
        start = time.perf_counter()
        if pipelined:
            async with conn.pipeline() as pipe:
                for a, b in rows:
                    pipe.execute(W2_INSERT, a, b)
        else:
            await conn.executemany(W2_INSERT, rows)
        elapsed = time.perf_counter() - start
        return await conn.fetchval(W2_CHECK), elapsed


async def _trio_pg_w2b(p: Params, n: int, *, pipelined: bool) -> Timed:
    async with trio_pg.open_connection(**p) as conn:
        start = time.perf_counter()
        total = 0
        if pipelined:
            async with conn.pipeline() as pipe:
                tickets = [pipe.fetchval(W2B_QUERY, i) for i in range(n)]
                for ticket in tickets:
                    total += await ticket
        else:
            rows = await conn.fetchmany(W2B_QUERY, [(i,) for i in range(n)])
            total = sum(row[0] for row in rows)
        return total, time.perf_counter() - start


def trio_pg_w2_executemany(p: Params, n: int) -> Timed:
    return trio.run(lambda: _trio_pg_w2(p, n, pipelined=False))


def trio_pg_w2_pipeline(p: Params, n: int) -> Timed:
    return trio.run(lambda: _trio_pg_w2(p, n, pipelined=True))


def trio_pg_w2b_fetchmany(p: Params, n: int) -> Timed:
    return trio.run(lambda: _trio_pg_w2b(p, n, pipelined=False))


def trio_pg_w2b_pipeline(p: Params, n: int) -> Timed:
    return trio.run(lambda: _trio_pg_w2b(p, n, pipelined=True))


# -- asyncpg ------------------------------------------------------------------------------


async def _asyncpg_w2(p: Params, n: int) -> Timed:
    import asyncpg

    rows = _rows(n)
    conn = await asyncpg.connect(**asyncpg_params(p))
    try:
        await conn.execute("TRUNCATE bench_insert")
        start = time.perf_counter()
        await conn.executemany(W2_INSERT, rows)
        elapsed = time.perf_counter() - start
        return await conn.fetchval(W2_CHECK), elapsed
    finally:
        await conn.close()


async def _asyncpg_w2b(p: Params, n: int) -> Timed:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_params(p))
    try:
        start = time.perf_counter()
        rows = await conn.fetchmany(W2B_QUERY, [(i,) for i in range(n)])
        total = sum(row[0] for row in rows)
        return total, time.perf_counter() - start
    finally:
        await conn.close()


# -- psycopg (async) -----------------------------------------------------------------------


async def _psycopg_w2(p: Params, n: int) -> Timed:
    import psycopg

    rows = _rows(n)
    sql = W2_INSERT.replace("$1", "%s").replace("$2", "%s")
    async with await psycopg.AsyncConnection.connect(psycopg_dsn(p), autocommit=True) as conn:
        await conn.execute("TRUNCATE bench_insert")
        start = time.perf_counter()
        async with conn.cursor() as cur:
            await cur.executemany(sql, rows)
        elapsed = time.perf_counter() - start
        cur = await conn.execute(W2_CHECK)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), elapsed


async def _psycopg_w2b(p: Params, n: int) -> Timed:
    import psycopg

    async with await psycopg.AsyncConnection.connect(psycopg_dsn(p), autocommit=True) as conn:
        start = time.perf_counter()
        total = 0
        async with conn.cursor(binary=True) as cur:
            await cur.executemany("SELECT %s::int4", [(i,) for i in range(n)], returning=True)
            while True:
                row = await cur.fetchone()
                assert row is not None
                total += row[0]
                if not cur.nextset():
                    break
        return total, time.perf_counter() - start


WORKLOADS = [
    Workload(
        id="W2",
        description="INSERT INTO t(a int4, b text) VALUES ($1, $2), each driver's best batching",
        size=20_000,
        quick_size=2_000,
        expected=w2_expected,
        setup_sql=W2_SETUP,
        unit="rows",
        drivers=side_by_side(
            trio_pg_w2_executemany,
            _asyncpg_w2,
            _psycopg_w2,
            variants={"trio_pg-pipeline": trio_pg_w2_pipeline},
        ),
    ),
    Workload(
        id="W2b",
        description="independent SELECT $1::int4 pipelined on one connection, all read back",
        size=20_000,
        quick_size=2_000,
        expected=w2b_expected,
        unit="queries",
        drivers=side_by_side(
            trio_pg_w2b_fetchmany,
            _asyncpg_w2b,
            _psycopg_w2b,
            variants={"trio_pg-pipeline": trio_pg_w2b_pipeline},
        ),
        notes=[
            "trio_pg and asyncpg: fetchmany() (pipelined, returns rows); trio_pg-pipeline:"
            " one awaited ticket per statement; psycopg: executemany(returning=True) in"
            " pipeline mode",
        ],
    ),
]
