"""Cancellation, connection loss and sharing one connection, against a real server."""

from __future__ import annotations

import itertools

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from tests.integration.cancel_sweep import sweep
from trio_pg.testing import PostgresServer


async def _wait_until_idle(observer: trio_pg.Connection, pid: int) -> None:
    """Poll pg_stat_activity until backend ``pid`` runs nothing (bounded by the caller)."""
    while True:
        state = await observer.fetchval(
            "SELECT state FROM pg_stat_activity WHERE pid = $1::int4", pid
        )
        if state == "idle":
            return
        await trio.sleep(0.02)


async def test_move_on_after_returns_at_once_and_server_stops_the_query(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        start = trio.current_time()
        with trio.move_on_after(0.5) as scope:
            await conn.fetch("SELECT pg_sleep(30)")
        assert scope.cancelled_caught
        assert trio.current_time() - start < 5
        # The server stopped working on it: the backend goes idle long before 30 s.
        with trio.fail_after(10):
            await _wait_until_idle(other_conn, conn.backend_pid)
        assert conn.statistics().cancels_sent == 1
        assert await conn.fetchval("SELECT $1::int4 + 1", 41) == 42
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE


async def test_cancel_inside_transaction_leaves_transaction_failed_not_desynchronised(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("BEGIN")
        with trio.move_on_after(0.3):
            await conn.execute("SELECT pg_sleep(30)")
        # The cancelled statement failed the transaction; the session is still in step.
        with pytest.raises(trio_pg.errors.InFailedSqlTransactionError):
            await conn.fetchval("SELECT 1")
        await conn.execute("ROLLBACK")
        assert await conn.fetchval("SELECT 2") == 2


async def test_cancel_request_never_hits_a_later_query(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        for _ in range(20):
            with trio.move_on_after(0.05):
                await conn.fetch("SELECT pg_sleep(0.2)")
            # The next query is written only after the cancel has been delivered, so it
            # must never see QueryCanceledError.
            assert await conn.fetchval("SELECT pg_sleep(0.01)::text || 'ok'") == "ok"


async def test_cancelled_waiter_among_many_does_not_disturb_the_others(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        results: dict[int, int] = {}

        async def ask(i: int) -> None:
            results[i] = await conn.fetchval("SELECT $1::int4 * 10, pg_sleep(0.05)", i)

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(ask, i)
            with trio.move_on_after(0.01):
                await conn.fetch("SELECT pg_sleep(5)")
        assert results == {i: i * 10 for i in range(10)}
        assert await conn.fetchval("SELECT 1") == 1


async def test_cancellation_at_every_checkpoint_leaves_connection_in_step(
    conn: trio_pg.Connection,
) -> None:
    """Cancel a fetch after k scheduler ticks for growing k until it completes."""
    attempts = itertools.count()

    async def operation() -> None:
        await conn.fetch("SELECT g FROM generate_series(1, $1::int) g", 50)

    async def check(finished: bool) -> None:
        attempt = next(attempts)
        assert await conn.fetchval("SELECT $1::int4", attempt) == attempt
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE

    with trio.fail_after(TEST_TIMEOUT):
        await sweep(operation, check, limit=200, every_task=True)


async def test_pg_terminate_backend_fails_pending_and_later_calls(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        pid = conn.backend_pid
        errors: list[BaseException] = []

        async def pending_call() -> None:
            try:
                await conn.fetch("SELECT pg_sleep(30)")
            except trio_pg.ConnectionLostError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pending_call)
            await trio.sleep(0.2)
            assert await other_conn.fetchval("SELECT pg_terminate_backend($1::int4)", pid)
        assert len(errors) == 1
        assert isinstance(errors[0].__cause__, trio_pg.errors.AdminShutdownError)
        assert conn.is_closed
        with pytest.raises(trio_pg.ConnectionLostError):
            await conn.fetchval("SELECT 1")


async def test_open_connection_block_raises_only_the_body_error(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(KeyError):
            async with trio_pg.open_connection(postgres_server.dsn()):
                raise KeyError("mine")


async def test_open_connection_survives_the_server_closing_the_connection(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn()) as conn:
            await other_conn.execute(f"SELECT pg_terminate_backend({conn.backend_pid})")
            with trio.fail_after(10):
                await _wait_closed(conn)
            with pytest.raises(trio_pg.ConnectionLostError):
                await conn.fetchval("SELECT 1")
        # Leaving the block raised nothing: the loss was reported to the caller only.


async def test_aclose_is_idempotent_and_fails_later_calls(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn()) as conn:
            await conn.aclose()
            await conn.aclose()
            assert conn.is_closed
            with pytest.raises(trio_pg.ConnectionLostError, match="aclose"):
                await conn.fetchval("SELECT 1")


async def test_aclose_closes_even_when_cancelled(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            conn = await trio_pg.connect(nursery, postgres_server.dsn())
            with trio.CancelScope() as scope:
                scope.cancel()
                await conn.aclose()
            assert conn.is_closed


async def test_hundred_tasks_sharing_one_connection_get_their_own_results(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        results: dict[int, list[tuple[int, str]]] = {}

        async def worker(i: int) -> None:
            for j in range(5):
                rows = await conn.fetch(
                    "SELECT $1::int4 * 1000 + g, $2::text FROM generate_series(1, $3::int4) g",
                    i,
                    f"task-{i}",
                    j + 1,
                )
                results.setdefault(i, []).extend((r[0], r[1]) for r in rows)

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(worker, i)
        for i in range(100):
            expected = [(i * 1000 + g, f"task-{i}") for j in range(5) for g in range(1, j + 2)]
            assert results[i] == expected
        # Requests from many tasks were coalesced into fewer writes.
        stats = conn.statistics()
        assert stats.writes < stats.requests


async def test_cleanup_grace_closes_connection_when_cancel_cannot_stop_the_query(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn(), cleanup_grace=0.5) as conn:
            # PostgreSQL queries always honour a CancelRequest, so to see the grace at
            # work the cancel path is made to fail: the query then runs on past it.
            conn._open_cancel_stream = _never_connects  # type: ignore[method-assign]
            with trio.move_on_after(0.2):
                await conn.fetch("SELECT pg_sleep(30)")
            with trio.fail_after(10):
                await _wait_closed(conn)
            with pytest.raises(trio_pg.ConnectionLostError, match="cleanup_grace"):
                await conn.fetchval("SELECT 1")


async def _wait_closed(conn: trio_pg.Connection) -> None:
    """Poll until the connection's reader has noticed the end (bounded by the caller)."""
    while not conn.is_closed:  # noqa: ASYNC110 - no event to wait on from outside
        await trio.sleep(0.02)


async def _never_connects() -> trio.abc.Stream:
    raise OSError("cancel path disabled for this test")
