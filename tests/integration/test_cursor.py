"""Server-side cursors against a real server: batches, memory, errors, exclusivity."""

from __future__ import annotations

import os
import tracemalloc

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from tests.integration.cancel_sweep import sweep
from trio_pg.errors import InterfaceError
from trio_pg.testing import PostgresServer

MILLION = 1_000_000
SERIES = "SELECT g, 'row ' || g AS label FROM generate_series(1, $1::int4) AS g"


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _portals(conn: trio_pg.Connection) -> int:
    """Named portals open in ``conn``'s session (the query's own portal is unnamed)."""
    return int(await conn.fetchval("SELECT count(*) FROM pg_cursors WHERE name <> ''"))


async def test_cursor_over_a_million_rows_keeps_memory_flat_and_sees_every_row(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        count = 0
        total = 0
        start_rss = _rss()
        highest_rss = start_rss
        steady_peak = 0
        async with conn.cursor(SERIES, MILLION, prefetch=1000) as rows:
            async for row in rows:
                count += 1
                total += row[0]
                if count % 50_000 == 0:
                    highest_rss = max(highest_rss, _rss())
                if count == 800_000:
                    # Steady state: trace every allocation over the last 200,000 rows.
                    # Rows kept anywhere would add up to tens of megabytes here.
                    tracemalloc.start()
            _, steady_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert count == MILLION
        assert total == MILLION * (MILLION + 1) // 2
        assert steady_peak < 2_000_000, steady_peak
        # All million rows held at once take about 200 MB.
        assert highest_rss - start_rss < 40_000_000
        assert await conn.fetchval("SELECT 1") == 1


async def test_cursor_left_early_closes_its_portal(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        seen = []
        async with conn.cursor(SERIES, MILLION, prefetch=100) as rows:
            async for row in rows:
                seen.append(row["g"])
                if len(seen) == 250:
                    break
        assert seen == list(range(1, 251))
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
        assert await conn.fetchval("SELECT $1::int4 + 1", 1) == 2
        # Only three batches were fetched, not the million rows.
        assert conn.statistics().bytes_received < 1_000_000
        state = await other_conn.fetchval(
            "SELECT state FROM pg_stat_activity WHERE pid = $1::int4", conn.backend_pid
        )
        assert state == "idle"


async def test_cursor_fetches_in_batches_of_prefetch(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        for total, prefetch in [(0, 10), (1, 1), (10, 10), (25, 10), (7, 1000)]:
            async with conn.cursor(SERIES, total, prefetch=prefetch) as rows:
                got = [(r[0], r[1]) async for r in rows]
                assert [c.name for c in rows.columns] == ["g", "label"]
            assert got == [(g, f"row {g}") for g in range(1, total + 1)]
        assert await conn.fetchval("SELECT 1") == 1


async def test_cursor_outside_a_transaction_refuses_other_statements_on_the_connection(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.cursor(SERIES, 10, prefetch=2) as rows:
            first = await rows.__anext__()
            with pytest.raises(InterfaceError, match="cursor is open outside a transaction"):
                await conn.fetchval("SELECT 1")
            rest = [r async for r in rows]
        assert [first, *rest] == [(g, f"row {g}") for g in range(1, 11)]
        assert await conn.fetchval("SELECT 2") == 2


async def test_cursor_inside_a_transaction_lets_the_block_run_other_statements(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE copied (g int4, label text)")
        await conn.execute("BEGIN")
        async with conn.cursor(SERIES, 50, prefetch=7) as rows:
            async for row in rows:
                await conn.execute("INSERT INTO copied VALUES ($1, $2)", row[0], row[1])
        assert await conn.fetchval("SELECT count(*) FROM copied") == 50
        assert await _portals(conn) == 0
        await conn.execute("COMMIT")
        assert await conn.fetchval("SELECT sum(g) FROM copied") == sum(range(1, 51))


async def test_cursor_and_copy_inside_transaction_block_and_through_its_view(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE items (n int4)")
        async with conn.transaction() as tx:
            await tx.copy_records_to_table("items", records=[(i,) for i in range(100)])

            async def helper() -> None:
                async with tx.cursor("SELECT n FROM items ORDER BY n", prefetch=30) as rows:
                    assert [r[0] async for r in rows] == list(range(100))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(helper)
            async with conn.cursor("SELECT count(*) FROM items") as rows:
                assert [r[0] async for r in rows] == [100]
        assert await conn.fetchval("SELECT count(*) FROM items") == 100


async def test_cursor_error_on_entering_is_raised_by_async_with(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.errors.UndefinedTableError):
            async with conn.cursor("SELECT * FROM no_such_table"):
                pass
        with pytest.raises(InterfaceError, match="expects 1 argument"):
            async with conn.cursor(SERIES):
                pass
        assert await conn.fetchval("SELECT 1") == 1


async def test_cursor_error_midway_is_raised_by_iteration(conn: trio_pg.Connection) -> None:
    sql = "SELECT 10 / (2500 - g) FROM generate_series(1, 5000) AS g"
    seen: list[int] = []

    async def read_all() -> None:
        async with conn.cursor(sql, prefetch=1000) as rows:
            async for row in rows:
                seen.append(row[0])

    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.errors.DivisionByZeroError):
            await read_all()
        assert len(seen) == 2000
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
        assert await conn.fetchval("SELECT 1") == 1


async def test_cursor_error_caught_inside_the_block(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        sql = "SELECT 1 / (3 - g) FROM generate_series(1, 9) g"
        async with conn.cursor(sql, prefetch=2) as rows:
            with pytest.raises(trio_pg.errors.DivisionByZeroError):
                async for _ in rows:
                    pass
            # The failure ended the portal: the connection is free again inside the block.
            assert await conn.fetchval("SELECT 5") == 5
        assert await conn.fetchval("SELECT 6") == 6


async def test_cursor_in_a_failed_transaction_raises_and_rollback_recovers(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("BEGIN")
        with pytest.raises(trio_pg.errors.DivisionByZeroError):
            await conn.execute("SELECT 1 / 0")
        with pytest.raises(trio_pg.errors.InFailedSqlTransactionError):
            async with conn.cursor(SERIES, 3):
                pass
        await conn.execute("ROLLBACK")
        async with conn.cursor(SERIES, 3) as rows:
            assert len([r async for r in rows]) == 3


async def test_iterating_a_cursor_after_its_block_is_an_error(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.cursor(SERIES, 5, prefetch=2) as rows:
            await rows.__anext__()
        with pytest.raises(InterfaceError, match="block has ended"):
            await rows.__anext__()


@pytest.mark.parametrize("prefetch", [0, -1, 1.5, True])
async def test_prefetch_must_be_a_positive_int(conn: trio_pg.Connection, prefetch: object) -> None:
    with pytest.raises(InterfaceError, match="prefetch"):
        conn.cursor("SELECT 1", prefetch=prefetch)  # type: ignore[arg-type]


async def test_prepared_statement_cursor(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        stmt = await conn.prepare(SERIES)
        async with stmt.cursor(20, prefetch=6) as rows:
            assert [r[0] async for r in rows] == list(range(1, 21))
        async with stmt.cursor(3) as rows:
            assert len([r async for r in rows]) == 3
        await stmt.close()
        with pytest.raises(InterfaceError, match="closed"):
            stmt.cursor(3)


async def test_cursor_without_named_statements(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn(), statement_cache_size=0) as c:
            async with c.cursor(SERIES, 30, prefetch=4) as rows:
                assert len([r async for r in rows]) == 30
            await c.execute("BEGIN")
            async with c.cursor(SERIES, 30, prefetch=4) as rows:
                async for row in rows:
                    assert await c.fetchval("SELECT $1::int4", row[0]) == row[0]
            await c.execute("COMMIT")


async def test_cursor_re_describes_a_statement_gone_stale(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE shape (a int4)")
        await conn.execute("INSERT INTO shape VALUES (1)")
        async with conn.cursor("SELECT * FROM shape") as rows:
            assert [tuple(r) async for r in rows] == [(1,)]
        await conn.execute("ALTER TABLE shape ADD COLUMN b text DEFAULT 'new'")
        async with conn.cursor("SELECT * FROM shape") as rows:
            assert [tuple(r) async for r in rows] == [(1, "new")]


async def test_cursor_holds_the_connection_for_its_block(conn: trio_pg.Connection) -> None:
    order: list[str] = []
    inside = trio.Event()

    async def other() -> None:
        await inside.wait()
        await conn.fetchval("SELECT 1")
        order.append("other task")

    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            async with conn.cursor(SERIES, 30, prefetch=5) as rows:
                inside.set()
                async for row in rows:
                    await trio.lowlevel.checkpoint()
                    order.append(f"row {row[0]}")
        assert order == [*(f"row {g}" for g in range(1, 31)), "other task"]


async def test_cursor_over_an_update_returning_commits_when_the_block_ends(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TABLE counters (n int4)")
        try:
            await conn.execute("INSERT INTO counters SELECT generate_series(1, 10)")
            sql = "UPDATE counters SET n = n * 10 RETURNING n"
            async with conn.cursor(sql, prefetch=3) as rows:
                assert sorted([r[0] async for r in rows]) == [n * 10 for n in range(1, 11)]
            assert await other_conn.fetchval("SELECT sum(n) FROM counters") == 550
        finally:
            await conn.execute("DROP TABLE counters")


async def test_cancellation_sweep_over_a_cursor(conn: trio_pg.Connection) -> None:
    async def operation() -> None:
        async with conn.cursor(SERIES, 3000, prefetch=500) as rows:
            assert [r[0] async for r in rows] == list(range(1, 3001))

    async def check(finished: bool) -> None:
        assert await conn.fetchval("SELECT $1::int4 * 2", 21) == 42
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE

    with trio.fail_after(TEST_TIMEOUT):
        cancelled = await sweep(operation, check)
        assert cancelled > 6


async def test_cancellation_sweep_over_a_cursor_inside_a_transaction(
    conn: trio_pg.Connection,
) -> None:
    async def operation() -> None:
        async with conn.cursor(SERIES, 1000, prefetch=300) as rows:
            async for row in rows:
                if row[0] % 250 == 0:
                    assert await conn.fetchval("SELECT $1::int4", row[0]) == row[0]

    async def check(finished: bool) -> None:
        status = conn.transaction_status
        # A cancelled statement fails the transaction; the connection stays in step.
        assert status is not trio_pg.TransactionStatus.IDLE
        await conn.execute("ROLLBACK")
        assert await _portals(conn) == 0
        await conn.execute("BEGIN")

    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("BEGIN")
        cancelled = await sweep(operation, check)
        await conn.execute("ROLLBACK")
        assert cancelled > 6
