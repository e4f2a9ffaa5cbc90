"""The connection pool against a real server: fairness, cleaning, recovery, closing."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

import trio_pg
from tests.conftest import TEST_TIMEOUT
from trio_pg.errors import (
    ConnectionFailedError,
    ConnectionLostError,
    DivisionByZeroError,
    InFailedSqlTransactionError,
    InterfaceError,
    InvalidCatalogNameError,
)
from trio_pg.pool import Pool, PoolStatistics, open_pool
from trio_pg.testing import PostgresServer

IDLE = trio_pg.TransactionStatus.IDLE


def _assert_consistent(stats: PoolStatistics) -> None:
    assert stats.size == stats.idle + stats.borrowed + stats.resetting
    assert 0 <= stats.size <= stats.max_size


async def _assert_all_home(pool: Pool) -> None:
    """Once cleaning is over: nothing lent, nobody waiting, every open connection idle."""
    await _wait_for(lambda: pool.statistics().resetting == 0)
    stats = pool.statistics()
    _assert_consistent(stats)
    assert (stats.borrowed, stats.waiting, stats.resetting) == (0, 0, 0)
    assert stats.idle == stats.size


async def _wait_for(predicate: Callable[[], bool]) -> None:
    """Poll until ``predicate()`` holds (for what only the pool's background work changes)."""
    while not predicate():  # noqa: ASYNC110 - the pool offers no event for this
        await trio.sleep(0.01)


@asynccontextmanager
async def _holding(pool: Pool, count: int) -> AsyncIterator[list[trio_pg.Connection]]:
    """Borrow ``count`` connections at once for the block."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(pool.acquire()) for _ in range(count)]


# -- many tasks ------------------------------------------------------------------------


async def test_two_hundred_tasks_get_their_own_results(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=10) as pool:
            results: dict[int, tuple[int, str]] = {}

            async def worker(t: int) -> None:
                for i in range(50):
                    v = t * 1000 + i
                    if i % 10 == 0:
                        async with pool.acquire() as conn:
                            row = await conn.fetchrow("SELECT $1::int4 * 2, $1::text", v)
                    elif i % 2:
                        row = await pool.fetchrow("SELECT $1::int4 * 2, $1::text", v)
                    else:
                        rows = await pool.fetch("SELECT $1::int4 * 2, $1::text", v)
                        row = rows[0]
                    assert row is not None
                    results[v] = (row[0], row[1])

            async with trio.open_nursery() as nursery:
                for t in range(200):
                    nursery.start_soon(worker, t)
            expected = {t * 1000 + i: (2 * (t * 1000 + i), str(t * 1000 + i)) for t in range(200)
                        for i in range(50)}  # fmt: skip
            assert results == expected
            stats = pool.statistics()
            await _assert_all_home(pool)
            assert stats.size == 10
            assert stats.acquisitions == 200 * 50
            # A saturated pool lets single statements share connections.
            assert stats.shared > 0


async def test_pool_of_two_serves_twenty_waiters_in_arrival_order(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), min_size=2, max_size=2) as pool:
            done = [trio.Event() for _ in range(20)]
            pids: set[int] = set()
            served_send, served = trio.open_memory_channel[int](20)

            async def waiter(i: int) -> None:
                async with pool.acquire() as conn:
                    pids.add(conn.backend_pid)
                    assert await conn.fetchval("SELECT $1::int4", i) == i
                    served_send.send_nowait(i)
                    await done[i].wait()

            rng = random.Random(6)
            async with trio.open_nursery() as nursery:
                async with _holding(pool, 2):
                    for i in range(20):
                        nursery.start_soon(waiter, i)
                        await trio.testing.wait_all_tasks_blocked()
                        assert pool.statistics().waiting == i + 1
                # Both come back at once: the first two waiters get them.
                holding = {await served.receive(), await served.receive()}
                assert holding == {0, 1}
                for following in range(2, 20):
                    # Whichever holder finishes, the next in line gets its connection.
                    done[rng.choice(sorted(holding))].set()
                    got = await served.receive()
                    assert got == following
                    holding = {i for i in holding if not done[i].is_set()} | {got}
                for i in holding:
                    done[i].set()
            assert len(pids) == 2
            await _assert_all_home(pool)


async def test_cancelled_waiters_take_nothing_and_statistics_stay_consistent(
    postgres_server: PostgresServer,
) -> None:
    rng = random.Random(1234)
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), min_size=3, max_size=3) as pool:
            for _round in range(5):
                scopes: dict[int, trio.CancelScope] = {}
                served: list[int] = []

                async def waiter(i: int, scopes: dict[int, trio.CancelScope] = scopes,
                                 served: list[int] = served) -> None:  # fmt: skip
                    with trio.CancelScope() as scope:
                        scopes[i] = scope
                        async with pool.acquire() as conn:
                            served.append(i)
                            assert await conn.fetchval("SELECT $1::int4", i) == i

                async with trio.open_nursery() as nursery:
                    async with _holding(pool, 3):
                        for i in range(30):
                            nursery.start_soon(waiter, i)
                        await trio.testing.wait_all_tasks_blocked()
                        assert pool.statistics().waiting == 30
                        queued_out = rng.sample(range(30), 10)
                        for i in queued_out:
                            scopes[i].cancel()
                        await trio.testing.wait_all_tasks_blocked()
                        stats = pool.statistics()
                        _assert_consistent(stats)
                        assert stats.waiting == 20
                        assert stats.borrowed == 3
                    # Cancel more in the same tick the connections come back: some were
                    # just handed one, some are still queued, some are mid-query later.
                    for i in rng.sample(sorted(set(range(30)) - set(queued_out)), 10):
                        scopes[i].cancel()
                    for _ in range(3):
                        # And some in the middle of their query.
                        await trio.testing.wait_all_tasks_blocked()
                        scopes[rng.choice(served)].cancel()
                assert not set(served) & set(queued_out)
                await _assert_all_home(pool)
                assert pool.statistics().size == 3
                assert await pool.fetchval("SELECT 7") == 7


# -- dirty releases ---------------------------------------------------------------------


async def test_connection_released_inside_a_transaction_is_rolled_back(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            await pool.execute("CREATE TEMP TABLE dirty (v int)")
            async with pool.acquire() as conn:
                pid = conn.backend_pid
                await conn.execute("BEGIN")
                await conn.execute("INSERT INTO dirty VALUES (1)")
            async with pool.acquire() as conn:
                assert conn.backend_pid == pid  # the same session, cleaned
                assert conn.transaction_status is IDLE
                assert await conn.fetchval("SELECT count(*) FROM dirty") == 0
            assert pool.statistics().resets == 1
            await _assert_all_home(pool)


async def test_connection_released_in_a_failed_transaction_is_rolled_back(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            async with pool.acquire() as conn:
                await conn.execute("BEGIN")
                with pytest.raises(DivisionByZeroError):
                    await conn.fetchval("SELECT 1 / 0")
                with pytest.raises(InFailedSqlTransactionError):
                    await conn.fetchval("SELECT 1")
            async with pool.acquire() as conn:
                assert conn.transaction_status is IDLE
                assert await conn.fetchval("SELECT $1::int4", 5) == 5
            assert pool.statistics().resets == 1


async def test_connection_released_with_an_abandoned_query_is_drained_first(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            async with pool.acquire() as conn:
                pid = conn.backend_pid
                await conn.execute("BEGIN")
                with trio.move_on_after(0.2):
                    await conn.fetch("SELECT pg_sleep(30)")
                # Released with the cancelled query still in flight, inside a transaction
                # that the cancellation is about to fail.
                assert conn.statistics().pending_requests == 1
            async with pool.acquire() as conn:
                assert conn.backend_pid == pid
                assert conn.statistics().pending_requests == 0
                assert conn.transaction_status is IDLE
                assert await conn.fetchval("SELECT $1::int4", 3) == 3
            assert pool.statistics().resets == 1


async def test_connection_that_cannot_be_drained_in_time_is_replaced(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1, cleanup_grace=0.5) as pool:
            async with pool.acquire() as conn:
                pid = conn.backend_pid
                await conn.execute("SELECT pg_sleep($1)", 0.0)  # described and cached
                async with trio.open_nursery() as nursery:
                    # Two requests in flight: no CancelRequest can be sent for either, so
                    # the server keeps sleeping after both are abandoned.
                    for _ in range(2):
                        nursery.start_soon(conn.execute, "SELECT pg_sleep($1)", 30.0)
                    await trio.testing.wait_all_tasks_blocked()
                    nursery.cancel_scope.cancel()
            async with pool.acquire() as conn:
                assert conn.backend_pid != pid
                assert await conn.fetchval("SELECT 1") == 1
            stats = pool.statistics()
            assert (stats.discarded, stats.resets, stats.connects) == (1, 0, 2)
        await other_conn.execute("SELECT pg_terminate_backend($1::int4)", pid)


async def test_connection_released_mid_pipeline_is_drained_before_reuse(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            await pool.execute("CREATE TEMP TABLE piped (v int)")
            lent: list[trio_pg.Connection] = []

            async def leave_mid_pipeline() -> None:
                async with pool.acquire() as conn, conn.pipeline() as p:
                    lent.append(conn)
                    first = p.execute("INSERT INTO piped VALUES ($1)", 1)
                    p.sync()
                    p.fetchval("SELECT pg_sleep(0.3)")
                    p.execute("INSERT INTO piped VALUES ($1)", 2)
                    await first  # sends everything queued
                    raise RuntimeError("left mid-pipeline")

            with pytest.raises(RuntimeError, match="left mid-pipeline"):
                await leave_mid_pipeline()
            # Released with the second segment still running on the server.
            pid = lent[0].backend_pid
            assert lent[0].statistics().pending_requests > 0
            async with pool.acquire() as conn:
                assert conn.backend_pid == pid
                assert conn.statistics().pending_requests == 0
                assert conn.transaction_status is IDLE
                # The unfinished segment was rolled back; the synced one committed.
                assert await conn.fetchval("SELECT array_agg(v) FROM piped") == [1]
            assert pool.statistics().resets == 1


async def test_connection_released_with_a_pipelined_begin_is_rolled_back(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            await pool.execute("CREATE TEMP TABLE piped (v int)")
            async with pool.acquire() as conn, conn.pipeline() as p:
                p.execute("BEGIN")
                p.execute("INSERT INTO piped VALUES ($1)", 1)
                p.sync()
            async with pool.acquire() as conn:
                assert conn.transaction_status is IDLE
                assert await conn.fetchval("SELECT count(*) FROM piped") == 0
            assert pool.statistics().resets == 1


@pytest.mark.parametrize("in_transaction", [False, True])
async def test_connection_released_after_a_cancelled_copy_in_is_clean(
    postgres_server: PostgresServer, in_transaction: bool
) -> None:
    async def endless_rows() -> AsyncIterator[bytes]:
        yield b"1\n2\n"
        await trio.sleep_forever()

    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            await pool.execute("CREATE TEMP TABLE copied (v int)")
            async with pool.acquire() as conn:
                if in_transaction:
                    await conn.execute("BEGIN")
                with trio.move_on_after(0.3):
                    await conn.copy_in("COPY copied FROM STDIN", endless_rows())
            async with pool.acquire() as conn:
                assert conn.transaction_status is IDLE
                assert conn.statistics().pending_requests == 0
                assert await conn.fetchval("SELECT count(*) FROM copied") == 0
                assert await conn.copy_in("COPY copied FROM STDIN", b"3\n") == 1


async def test_connection_released_after_leaving_copy_out_early_is_drained(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            async with pool.acquire() as conn:
                pid = conn.backend_pid
                sql = "COPY (SELECT g FROM generate_series(1, 5000000) g) TO STDOUT"
                async with conn.copy_out(sql) as chunks:
                    async for _chunk in chunks:
                        break
            async with pool.acquire() as conn:
                assert conn.backend_pid == pid
                assert conn.statistics().pending_requests == 0
                assert conn.transaction_status is IDLE
                assert await conn.fetchval("SELECT $1::int4", 8) == 8


async def test_connection_released_after_leaving_a_cursor_early_is_clean(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:

            async def leave_cursor_early() -> None:
                sql = "SELECT g FROM generate_series(1, 1000000) g"
                async with pool.acquire() as conn, conn.cursor(sql, prefetch=100) as rows:
                    async for _row in rows:
                        raise RuntimeError("enough rows")

            with pytest.raises(RuntimeError, match="enough rows"):
                await leave_cursor_early()
            async with pool.acquire() as conn:
                assert conn.statistics().pending_requests == 0
                assert conn.transaction_status is IDLE
                assert await conn.fetchval("SELECT $1::int4", 9) == 9


async def test_transaction_statements_from_conveniences_never_reach_other_callers(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await other_conn.execute("DROP TABLE IF EXISTS pool_leak; CREATE TABLE pool_leak (v int)")
        try:
            async with open_pool(postgres_server.dsn(), max_size=3) as pool:

                async def insert(t: int) -> None:
                    for i in range(20):
                        await pool.execute("INSERT INTO pool_leak VALUES ($1)", t * 100 + i)

                async def meddle() -> None:
                    for _ in range(10):
                        await pool.execute("BEGIN")
                        await pool.fetch("BEGIN")
                        await pool.execute("BEGIN; SELECT 1")

                async with trio.open_nursery() as nursery:
                    for t in range(30):
                        nursery.start_soon(insert, t)
                    for _ in range(3):
                        nursery.start_soon(meddle)
                await _assert_all_home(pool)
                stats = pool.statistics()
                assert stats.resets == 3 * 30
                assert stats.shared > 0
            # Every insert committed: none ran inside someone else's open transaction.
            assert await other_conn.fetchval("SELECT count(*) FROM pool_leak") == 600
        finally:
            await other_conn.execute("DROP TABLE pool_leak")


async def test_session_state_is_reset_when_reset_is_given(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            default = await pool.fetchval("SHOW search_path")
            async with pool.acquire() as conn:
                await conn.execute("SET search_path = nowhere")
            # Without reset, session settings stay (as with psycopg's pool).
            assert await pool.fetchval("SHOW search_path") == "nowhere"
        async with open_pool(postgres_server.dsn(), max_size=1, reset="RESET ALL") as pool:
            async with pool.acquire() as conn:
                await conn.execute("SET search_path = nowhere")
            assert await pool.fetchval("SHOW search_path") == default


async def test_connection_whose_reset_fails_is_replaced(postgres_server: PostgresServer) -> None:
    async def refuse_once(conn: trio_pg.Connection) -> None:
        if not refused:
            refused.append(conn.backend_pid)
            raise ValueError("reset refused")
        await conn.execute("RESET ALL")

    refused: list[int] = []
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1, reset=refuse_once) as pool:
            first = await pool.fetchval("SELECT pg_backend_pid()")
            second = await pool.fetchval("SELECT pg_backend_pid()")
            assert refused == [first]
            assert second != first
            stats = pool.statistics()
            assert (stats.discarded, stats.connects, stats.shared) == (1, 2, 0)


# -- failures and recovery -----------------------------------------------------------------


async def test_terminated_connections_are_replaced(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), min_size=3, max_size=3) as pool:
            async with _holding(pool, 3) as conns:
                old = {c.backend_pid for c in conns}
            terminated = await other_conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_activity WHERE pid = ANY($1::int4[])",
                sorted(old),
            )
            assert terminated == 3
            failures = 0
            for i in range(20):
                try:
                    assert await pool.fetchval("SELECT $1::int4", i) == i
                except ConnectionLostError:
                    failures += 1  # the termination had not been read yet
            assert failures <= 3
            async with _holding(pool, 3) as conns:
                new = {c.backend_pid for c in conns}
                assert all([await c.fetchval("SELECT 1") == 1 for c in conns])
            assert not new & old
            stats = pool.statistics()
            assert stats.discarded == 3
            await _assert_all_home(pool)


async def test_connection_terminated_while_borrowed_is_replaced(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1) as pool:
            async with pool.acquire() as conn:
                pid = conn.backend_pid
                await other_conn.execute("SELECT pg_terminate_backend($1::int4)", pid)
                with pytest.raises(ConnectionLostError):
                    await conn.fetchval("SELECT pg_sleep(5)")
            assert await pool.fetchval("SELECT pg_backend_pid()") != pid
            assert pool.statistics().discarded == 1


async def test_failed_connects_are_retried_while_healthy_connections_serve(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    db = "pool_backoff"
    with trio.fail_after(TEST_TIMEOUT):
        await other_conn.execute(f"DROP DATABASE IF EXISTS {db}")
        await other_conn.execute(f"CREATE DATABASE {db}")
        try:
            dsn = postgres_server.dsn(dbname=db)
            async with open_pool(dsn, min_size=1, max_size=2) as pool:
                await other_conn.execute(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
                async with trio.open_nursery() as nursery:
                    second_served = trio.Event()

                    async def second() -> None:
                        async with pool.acquire() as conn:
                            assert await conn.fetchval("SELECT 2") == 2
                        second_served.set()

                    async with pool.acquire() as first:
                        nursery.start_soon(second)
                        # The pool keeps trying for the waiter, backing off.
                        await _wait_for(lambda: pool.statistics().connect_failures >= 2)
                        assert pool.statistics().waiting == 1
                        assert await first.fetchval("SELECT 1") == 1
                    # The healthy connection serves the waiter at once.
                    await second_served.wait()
                await other_conn.execute(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
                async with _holding(pool, 2) as conns:
                    # The second one is new: a retry succeeded.
                    assert len({c.backend_pid for c in conns}) == 2
                stats = pool.statistics()
                assert stats.connects == 2
                assert stats.connect_failures >= 2
        finally:
            await other_conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


async def test_acquire_fails_when_the_pool_can_open_no_connection(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        dsn = postgres_server.dsn(dbname="pool_no_such_db")
        with pytest.raises(InvalidCatalogNameError):
            async with open_pool(dsn):
                pass
        async with open_pool(dsn, min_size=0) as pool:
            with pytest.raises(ConnectionFailedError, match="pool_no_such_db") as info:
                await pool.fetchval("SELECT 1")
            assert isinstance(info.value.__cause__, InvalidCatalogNameError)
            stats = pool.statistics()
            assert (stats.size, stats.waiting, stats.connect_failures) == (0, 0, 1)


async def test_setup_runs_on_every_new_connection(postgres_server: PostgresServer) -> None:
    seen: list[int] = []

    async def setup(conn: trio_pg.Connection) -> None:
        await conn.execute("SET application_name = 'pool-setup'")
        seen.append(conn.backend_pid)

    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_pool(postgres_server.dsn(), min_size=1, max_size=3, setup=setup) as pool,
            _holding(pool, 3) as conns,
        ):
            names = [await c.fetchval("SHOW application_name") for c in conns]
            assert names == ["pool-setup"] * 3
            assert sorted(seen) == sorted(c.backend_pid for c in conns)

        async def broken_setup(conn: trio_pg.Connection) -> None:
            raise ValueError("setup refused")

        with pytest.raises(ValueError, match="setup refused"):
            async with open_pool(postgres_server.dsn(), setup=broken_setup):
                pass


# -- closing ----------------------------------------------------------------------------------


async def test_pool_exit_with_a_borrowed_connection_ends_within_cleanup_grace(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    grace = 1.0
    lost: list[BaseException] = []
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as outside:
            async with open_pool(postgres_server.dsn(), cleanup_grace=grace) as pool:
                lent = trio.Event()

                async def borrower() -> None:
                    async with pool.acquire() as conn:
                        lent.set()
                        try:
                            await conn.fetch("SELECT pg_sleep(60)")
                        except ConnectionLostError as exc:
                            lost.append(exc)

                outside.start_soon(borrower)
                await lent.wait()
                await trio.testing.wait_all_tasks_blocked()
                start = trio.current_time()
            took = trio.current_time() - start
        assert grace <= took < grace + 3.0
        assert len(lost) == 1
        assert pool.is_closed
        _assert_consistent(pool.statistics())
        with pytest.raises(InterfaceError, match="closed"):
            await pool.fetchval("SELECT 1")


async def test_pool_exit_waits_for_a_borrowed_connection_given_back_in_time(
    postgres_server: PostgresServer,
) -> None:
    results: list[int] = []
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            trio.open_nursery() as outside,
            open_pool(postgres_server.dsn(), cleanup_grace=30) as pool,
        ):
            lent = trio.Event()

            async def borrower() -> None:
                async with pool.acquire() as conn:
                    lent.set()
                    results.append(await conn.fetchval("SELECT 1, pg_sleep(0.3)"))

            outside.start_soon(borrower)
            await lent.wait()
        assert results == [1]


async def test_waiters_fail_when_the_pool_closes(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_pool(postgres_server.dsn(), max_size=1, cleanup_grace=0.2) as pool:
            errors: list[BaseException] = []

            async def waiter() -> None:
                try:
                    async with pool.acquire():
                        pass
                except InterfaceError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery, pool.acquire() as conn:
                nursery.start_soon(waiter)
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                # Closing waits cleanup_grace for the connection this task holds.
                await pool.aclose()
                assert conn.is_closed
            assert len(errors) == 2
            assert all("closed" in str(e) for e in errors)
            assert pool.statistics().size == 0
