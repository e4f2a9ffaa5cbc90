"""One implementation of each workload per driver, behind the same small interface.

Each driver function takes the server's connection parameters and the workload's size,
runs the workload once on an open connection, and returns ``(check, seconds)``: a value
the harness checks (so a driver that silently does less work cannot look fast) and the
time of the workload alone, connecting excluded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import trio_pg

Params = dict[str, Any]
#: A workload's check value and the seconds it took.
Timed = tuple[int, float]

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


def _asyncpg_params(p: Params) -> Params:
    return {"host": p["host"], "port": int(p["port"]), "user": p["user"], "database": p["dbname"]}


async def _asyncpg_w1(p: Params, n: int) -> Timed:
    import asyncpg

    conn = await asyncpg.connect(**_asyncpg_params(p))
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

    conn = await asyncpg.connect(**_asyncpg_params(p))
    try:
        start = time.perf_counter()
        rows = await conn.fetch(W3_QUERY)
        return _w3_check(rows), time.perf_counter() - start
    finally:
        await conn.close()


def _on_uvloop(fn: Callable[[Params, int], Awaitable[Timed]]) -> Callable[[Params, int], Timed]:
    def run(p: Params, n: int) -> Timed:
        import uvloop

        return uvloop.run(fn(p, n))  # type: ignore[no-any-return]

    return run


def _on_asyncio(fn: Callable[[Params, int], Awaitable[Timed]]) -> Callable[[Params, int], Timed]:
    def run(p: Params, n: int) -> Timed:
        return asyncio.run(fn(p, n))  # type: ignore[arg-type]

    return run


# -- psycopg (async) -----------------------------------------------------------------------


def _psycopg_dsn(p: Params) -> str:
    return f"host={p['host']} port={p['port']} user={p['user']} dbname={p['dbname']}"


async def _psycopg_w1(p: Params, n: int) -> Timed:
    import psycopg

    async with await psycopg.AsyncConnection.connect(_psycopg_dsn(p), prepare_threshold=0) as conn:
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

    async with await psycopg.AsyncConnection.connect(_psycopg_dsn(p)) as conn:
        start = time.perf_counter()
        cur = await conn.execute(W3_QUERY, binary=True)
        rows = await cur.fetchall()
        return _w3_check(rows), time.perf_counter() - start


DRIVERS: dict[str, dict[str, Callable[[Params, int], Timed]]] = {
    "trio_pg": {"W1": trio_pg_w1, "W3": trio_pg_w3},
    "asyncpg-uvloop": {"W1": _on_uvloop(_asyncpg_w1), "W3": _on_uvloop(_asyncpg_w3)},
    "asyncpg-asyncio": {"W1": _on_asyncio(_asyncpg_w1), "W3": _on_asyncio(_asyncpg_w3)},
    "psycopg-async": {"W1": _on_asyncio(_psycopg_w1), "W3": _on_asyncio(_psycopg_w3)},
}
