"""W7: 100 tasks x 200 ``SELECT $1::int`` through a pool of 10 connections.

Every driver opens its pool with 10 connections, then warms it (all 10 borrowed at
once, the statement run on each) before the clock starts, so the figure is the pool's
steady state: waiting for a turn, the query, giving the connection back. asyncpg's pool
runs its reset query on every release; psycopg's and trio_pg's reset nothing by default.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import trio

from benchmarks.workload import (
    Params,
    Timed,
    Workload,
    asyncpg_params,
    psycopg_dsn,
    side_by_side,
)
from trio_pg.pool import open_pool

TASKS = 100
POOL_SIZE = 10
QUERY = "SELECT $1::int"


def w7_expected(n: int) -> int:
    return n * (n - 1) // 2


def _per_task(n: int) -> int:
    if n % TASKS:
        raise ValueError(f"W7 size must be a multiple of {TASKS}")
    return n // TASKS


# -- trio_pg --------------------------------------------------------------------------


async def _trio_pg_w7(p: Params, n: int, *, borrow: bool) -> Timed:
    """``pool.fetchval`` per query, or with ``borrow`` an ``acquire()`` block per query
    (a connection to itself each time: never shared)."""
    per_task = _per_task(n)
    total = 0
    async with open_pool(**p, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:

        async def warm(ready: trio.Event, release: trio.Event) -> None:
            async with pool.acquire() as conn:
                await conn.fetchval(QUERY, 0)
                ready.set()
                await release.wait()

        release = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(POOL_SIZE):
                ready = trio.Event()
                nursery.start_soon(warm, ready, release)
                await ready.wait()
            release.set()

        async def worker(first: int) -> None:
            nonlocal total
            for value in range(first, first + per_task):
                if borrow:
                    async with pool.acquire() as conn:
                        got = await conn.fetchval(QUERY, value)
                else:
                    got = await pool.fetchval(QUERY, value)
                total += got

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for t in range(TASKS):
                nursery.start_soon(worker, t * per_task)
        return total, time.perf_counter() - start


def trio_pg_w7(p: Params, n: int) -> Timed:
    return trio.run(partial(_trio_pg_w7, borrow=False), p, n)


def trio_pg_w7_acquire(p: Params, n: int) -> Timed:
    return trio.run(partial(_trio_pg_w7, borrow=True), p, n)


# -- asyncpg ------------------------------------------------------------------------------


async def _asyncpg_w7(p: Params, n: int) -> Timed:
    import asyncpg

    per_task = _per_task(n)
    total = 0
    pool: Any = await asyncpg.create_pool(
        **asyncpg_params(p), min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    try:
        await _warm_asyncio([pool.acquire() for _ in range(POOL_SIZE)], _asyncpg_warm)

        async def worker(first: int) -> None:
            nonlocal total
            for value in range(first, first + per_task):
                got = await pool.fetchval(QUERY, value)
                total += got

        start = time.perf_counter()
        await asyncio.gather(*(worker(t * per_task) for t in range(TASKS)))
        return total, time.perf_counter() - start
    finally:
        await pool.close()


async def _asyncpg_warm(conn: Any) -> None:
    await conn.fetchval(QUERY, 0)


async def _warm_asyncio(leases: list[Any], run: Any) -> None:
    """Hold every connection at once and run the statement on each."""
    conns = [await lease.__aenter__() for lease in leases]
    try:
        for conn in conns:
            await run(conn)
    finally:
        for lease in leases:
            await lease.__aexit__(None, None, None)


# -- psycopg_pool (async) -------------------------------------------------------------------


async def _psycopg_w7(p: Params, n: int) -> Timed:
    from psycopg_pool import AsyncConnectionPool

    per_task = _per_task(n)
    total = 0
    pool = AsyncConnectionPool(
        psycopg_dsn(p),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        kwargs={"prepare_threshold": 0},
        open=False,
    )
    await pool.open(wait=True)
    try:
        await _warm_asyncio([pool.connection() for _ in range(POOL_SIZE)], _psycopg_one)

        async def worker(first: int) -> None:
            nonlocal total
            for value in range(first, first + per_task):
                async with pool.connection() as conn:
                    got = await _psycopg_one(conn, value)
                total += got

        start = time.perf_counter()
        await asyncio.gather(*(worker(t * per_task) for t in range(TASKS)))
        return total, time.perf_counter() - start
    finally:
        await pool.close()


async def _psycopg_one(conn: Any, value: int = 0) -> int:
    cur = await conn.execute("SELECT %s::int", (value,), binary=True)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


WORKLOADS = [
    Workload(
        id="W7",
        description=f"{TASKS} tasks x SELECT $1::int through a pool of {POOL_SIZE}",
        size=20_000,
        quick_size=2_000,
        expected=w7_expected,
        unit="queries",
        drivers=side_by_side(
            trio_pg_w7,
            _asyncpg_w7,
            _psycopg_w7,
            variants={"trio_pg-acquire": trio_pg_w7_acquire},
            psycopg_name="psycopg-pool",
        ),
        notes=[
            "trio_pg: pool.fetchval (shares busy connections when the pool is saturated);"
            " trio_pg-acquire: an acquire() block per query (never shared)",
            "psycopg_pool's AsyncConnectionPool with prepare_threshold=0, binary results",
        ],
    ),
]
