"""W6: notifications received per second on one connection.

One connection LISTENs; another sends ``n`` notifications in one statement (one
transaction, so the server delivers them as fast as it can). The clock runs from just
before the NOTIFY statement until the listener has received the last notification, so
the number is the receiving side's throughput (the sender's single round trip is in it
for every driver alike). Every driver checks that all ``n`` payloads arrived, in order.

* trio_pg: ``async with conn.listen(...)``, read by a consumer task (default buffer).
* asyncpg: ``add_listener`` with a callback, on uvloop and on asyncio.
* psycopg: the ``notifies()`` generator of an autocommit ``AsyncConnection``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

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

CHANNEL = "bench_w6"
#: Sends notifications "0", "1", ..., "n-1" on CHANNEL in one transaction.
W6_NOTIFY = "SELECT count(pg_notify('bench_w6', g::text)) FROM generate_series(0, {n} - 1) g"


def w6_expected(n: int) -> int:
    return n * (n - 1) // 2


def _check(payloads: Sequence[str]) -> int:
    """The sum of the payloads when all arrived in order; -1 otherwise."""
    if list(payloads) != [str(i) for i in range(len(payloads))]:
        return -1
    return sum(range(len(payloads)))


# -- trio_pg --------------------------------------------------------------------------


async def _trio_pg_w6(p: Params, n: int) -> Timed:
    payloads: list[str] = []
    async with (
        trio_pg.open_connection(**p) as listener,
        trio_pg.open_connection(**p) as sender,
        listener.listen(CHANNEL) as notifications,
    ):

        async def consume() -> None:
            async for notification in notifications:
                payloads.append(notification.payload)
                if len(payloads) == n:
                    return

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await sender.execute(W6_NOTIFY.format(n=n))
        elapsed = time.perf_counter() - start
    return _check(payloads), elapsed


def trio_pg_w6(p: Params, n: int) -> Timed:
    return trio.run(_trio_pg_w6, p, n)


# -- asyncpg ------------------------------------------------------------------------------


async def _asyncpg_w6(p: Params, n: int) -> Timed:
    import asyncpg

    listener = await asyncpg.connect(**asyncpg_params(p))
    sender = await asyncpg.connect(**asyncpg_params(p))
    try:
        payloads: list[str] = []
        done = asyncio.get_running_loop().create_future()

        def on_notification(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            payloads.append(payload)
            if len(payloads) == n:
                done.set_result(None)

        await listener.add_listener(CHANNEL, on_notification)
        start = time.perf_counter()
        await sender.execute(W6_NOTIFY.format(n=n))
        await done
        elapsed = time.perf_counter() - start
        return _check(payloads), elapsed
    finally:
        await listener.close()
        await sender.close()


# -- psycopg (async) -----------------------------------------------------------------------


async def _psycopg_w6(p: Params, n: int) -> Timed:
    import psycopg

    dsn = psycopg_dsn(p)
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as sender,
    ):
        await listener.execute(f"LISTEN {CHANNEL}")
        payloads: list[str] = []

        async def consume() -> None:
            async for notification in listener.notifies(stop_after=n):
                payloads.append(notification.payload)

        start = time.perf_counter()
        consumer = asyncio.create_task(consume())
        await sender.execute(W6_NOTIFY.format(n=n))  # type: ignore[arg-type]
        await consumer
        elapsed = time.perf_counter() - start
        return _check(payloads), elapsed


WORKLOADS = [
    Workload(
        id="W6",
        description="NOTIFY x n from one connection (one statement), received on another",
        size=20_000,
        quick_size=2_000,
        expected=w6_expected,
        unit="notifs",
        drivers=side_by_side(trio_pg_w6, _asyncpg_w6, _psycopg_w6),
    ),
]
