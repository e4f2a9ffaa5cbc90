"""Requests on an idle connection are written by the calling task (Connection._write_now).

What the socket does not take at once is left to the writer task, ahead of anything
queued later, so large requests and requests that follow them arrive whole and in order.
"""

from __future__ import annotations

import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT


async def test_request_larger_than_the_socket_buffer_arrives_whole(
    conn: trio_pg.Connection,
) -> None:
    big = "x" * (8 * 1024 * 1024)
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchval("SELECT length($1::text)", big) == len(big)
        assert await conn.fetchval("SELECT $1::int4", 5) == 5


async def test_requests_queued_behind_a_partial_write_keep_their_order(
    conn: trio_pg.Connection,
) -> None:
    big = "y" * (8 * 1024 * 1024)
    results: dict[int, object] = {}

    async def small(i: int) -> None:
        results[i] = await conn.fetchval("SELECT $1::int4", i)

    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(small, 0)
            await trio.lowlevel.checkpoint()
            for i in range(1, 20):
                nursery.start_soon(small, i)
            results[-1] = await conn.fetchval("SELECT length($1::text)", big)
        assert results == {-1: len(big), **{i: i for i in range(20)}}
        assert conn.statistics().pending_requests == 0
