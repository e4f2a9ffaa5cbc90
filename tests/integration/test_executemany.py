"""executemany and fetchmany on a real server: long batches are sent in chunks while
later rows are still being encoded, and that must never weaken their all-or-nothing rule."""

from __future__ import annotations

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from tests.integration.cancel_sweep import sweep
from trio_pg.testing import PostgresServer

INSERT = "INSERT INTO t_batch VALUES ($1, $2)"
#: Long enough to be sent in several chunks (the first chunk is 128 executions).
LONG = 5000


def _rows(n: int, start: int = 0) -> list[tuple[int, str]]:
    return [(i, f"row {i}") for i in range(start, start + n)]


async def _table(conn: trio_pg.Connection) -> None:
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS t_batch (a int PRIMARY KEY, b text)")
    await conn.execute("TRUNCATE t_batch")


async def _count(conn: trio_pg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM t_batch"))


async def test_long_batch_arrives_whole_in_one_request(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        await conn.executemany(INSERT, _rows(1))  # describe the statement first
        before = conn.statistics()
        await conn.executemany(INSERT, _rows(LONG, start=1))
        after = conn.statistics()
        assert after.requests - before.requests == 1
        assert await _count(conn) == LONG + 1
        assert await conn.fetchval("SELECT sum(a) FROM t_batch") == LONG * (LONG + 1) // 2


async def test_bad_argument_late_in_a_long_batch_leaves_nothing_behind(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        rows: list[tuple[object, ...]] = [*_rows(LONG)]
        rows[LONG - 10] = ("not an int", "x")
        before = conn.statistics()
        with pytest.raises(trio_pg.InterfaceError, match="int4"):
            await conn.executemany(INSERT, rows)
        # The first chunks had gone out: what they ran was rolled back.
        assert conn.statistics().bytes_sent - before.bytes_sent > 1000
        assert await _count(conn) == 0
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
        await conn.executemany(INSERT, _rows(LONG))
        assert await _count(conn) == LONG


async def test_bad_argument_inside_a_transaction_block_keeps_the_transaction_usable(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        rows: list[tuple[object, ...]] = [*_rows(LONG, start=1)]
        rows[-1] = ("not an int", "x")
        async with conn.transaction():
            await conn.execute(INSERT, 0, "kept")
            with pytest.raises(trio_pg.InterfaceError, match="int4"):
                await conn.executemany(INSERT, rows)
            # Nothing of the batch ran, and the block's own work goes on.
            assert await _count(conn) == 1
            await conn.execute(INSERT, -1, "also kept")
        assert await _count(conn) == 2


async def test_server_error_late_in_a_long_batch_rolls_all_of_it_back(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        rows = _rows(LONG)
        rows[-1] = (0, "duplicate of the first row")
        with pytest.raises(trio_pg.UniqueViolationError):
            await conn.executemany(INSERT, rows)
        assert await _count(conn) == 0


async def test_cancelling_a_long_batch_at_any_checkpoint_runs_all_or_nothing(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        await conn.executemany(INSERT, _rows(1))

        async def operation() -> None:
            await conn.executemany(INSERT, _rows(LONG, start=1))

        left_nothing = 0

        async def check(finished: bool) -> None:
            nonlocal left_nothing
            count = await _count(conn)
            left_nothing += count == 1
            if finished:
                assert count == LONG + 1
            else:
                # Cancelled once its Sync was sent, the batch may have run (like any
                # statement cancelled after sending); never a part of it.
                assert count in (1, LONG + 1)
            assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
            await conn.execute("DELETE FROM t_batch WHERE a > 0")

        await sweep(operation, check, every_task=True)
        # Cancelled between chunks (before the Sync went out), the batch never ran.
        assert left_nothing >= 3


async def test_fetchmany_returns_every_executions_rows_in_order(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        rows = await conn.fetchmany("SELECT $1::int4 * 2 AS twice", [(1,), (2,), (3,)])
        assert rows == [(2,), (4,), (6,)]
        assert rows[0]["twice"] == 2
        many = await conn.fetchmany(
            "SELECT g FROM generate_series(1, $1::int4) g", [(i % 3,) for i in range(LONG)]
        )
        assert len(many) == sum(i % 3 for i in range(LONG))
        assert await conn.fetchmany("SELECT $1::int4", []) == []


async def test_fetchmany_error_raises_and_returns_nothing(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.errors.DivisionByZeroError):
            await conn.fetchmany("SELECT 10 / $1::int4", [(i % 1000,) for i in range(1, 2000)])
        assert await conn.fetchval("SELECT 1") == 1


async def test_pool_fetchmany(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_pool(**postgres_server.connect_params(), max_size=2) as pool:
            assert await pool.fetchmany("SELECT $1::text", [("a",), ("b",)]) == [("a",), ("b",)]


async def test_long_batch_inside_a_pipeline_block_with_a_helper_sending_segments(
    conn: trio_pg.Connection,
) -> None:
    # The block's helper sends unfinished segments (awaiting a ticket) while the holder
    # runs a long executemany. Only one request can be sent in parts at a time, so a
    # batch inside a block is never streamed; both go through, in order.
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        await conn.executemany(INSERT, _rows(1))
        async with conn.pipeline() as pipe:

            async def helper() -> None:
                for i in range(20):
                    assert await pipe.fetchval("SELECT $1::int4", i) == i

            async with trio.open_nursery() as nursery:
                nursery.start_soon(helper)
                await conn.executemany(INSERT, _rows(LONG, start=1))
        assert await _count(conn) == LONG + 1
