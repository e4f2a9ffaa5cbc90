"""transaction() blocks against a real server: commit, rollback, savepoints, options, failures."""

from __future__ import annotations

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from tests.integration.cancel_sweep import sweep
from trio_pg.errors import (
    InFailedSqlTransactionError,
    InterfaceError,
    SerializationFailureError,
    UniqueViolationError,
)
from trio_pg.testing import PostgresServer

IDLE = trio_pg.TransactionStatus.IDLE


async def _table(conn: trio_pg.Connection) -> None:
    await conn.execute("DROP TABLE IF EXISTS items; CREATE TABLE items (n int4 PRIMARY KEY)")


async def _items(conn: trio_pg.Connection) -> list[int]:
    return [r[0] for r in await conn.fetch("SELECT n FROM items ORDER BY n")]


async def test_block_commits_when_it_ends_normally(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.transaction() as tx:
            assert conn.transaction_status is trio_pg.TransactionStatus.IN_TRANSACTION
            assert not tx.nested
            await conn.execute("INSERT INTO items VALUES ($1)", 1)
            assert await _items(other_conn) == []  # not visible before COMMIT
        assert await _items(other_conn) == [1]
        assert conn.transaction_status is IDLE


async def test_exception_in_block_rolls_back_and_propagates(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)

        async def failing_block() -> None:
            async with conn.transaction():
                await conn.execute("INSERT INTO items VALUES ($1)", 1)
                raise KeyError("boom")

        with pytest.raises(KeyError):
            await failing_block()
        assert await _items(conn) == []
        assert conn.transaction_status is IDLE


async def test_nested_blocks_are_savepoints_rolled_back_alone(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.transaction():
            await conn.execute("INSERT INTO items VALUES (1)")
            async with conn.transaction() as kept:
                assert kept.nested
                await conn.execute("INSERT INTO items VALUES (2)")

            async def failing_savepoint() -> None:
                async with conn.transaction():
                    await conn.execute("INSERT INTO items VALUES (3)")
                    await conn.execute("INSERT INTO items VALUES (1)")  # fails the savepoint

            with pytest.raises(UniqueViolationError):
                await failing_savepoint()
            # The failed savepoint was rolled back; the transaction goes on.
            await conn.execute("INSERT INTO items VALUES (4)")
        assert await _items(conn) == [1, 2, 4]


async def test_options_reach_the_server(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.transaction(isolation="serializable", readonly=True, deferrable=True):
            row = await conn.fetchrow(
                "SELECT current_setting('transaction_isolation'),"
                " current_setting('transaction_read_only'),"
                " current_setting('transaction_deferrable')"
            )
        assert row == ("serializable", "on", "on")
        for isolation, shown in [
            ("repeatable_read", "repeatable read"),
            ("read_committed", "read committed"),
            ("read_uncommitted", "read uncommitted"),
        ]:
            async with conn.transaction(isolation=isolation):
                assert await conn.fetchval("SHOW transaction_isolation") == shown

        async def write_in_readonly() -> None:
            async with conn.transaction(readonly=True):
                await conn.execute("CREATE TEMP TABLE nope (a int)")

        with pytest.raises(trio_pg.errors.ReadOnlySqlTransactionError):
            await write_in_readonly()
        assert conn.transaction_status is IDLE


async def test_bad_options_are_refused_with_the_valid_ones_named(conn: trio_pg.Connection) -> None:
    with pytest.raises(InterfaceError, match=r"'read_committed'.*'serializable'"):
        conn.transaction(isolation="SERIALIZABLE ")
    with pytest.raises(InterfaceError, match="readonly must be True or False"):
        conn.transaction(readonly="yes")  # type: ignore[arg-type]
    with pytest.raises(InterfaceError, match="deferrable"):
        conn.transaction(deferrable=1)  # type: ignore[arg-type]
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchval("SELECT 1") == 1


async def test_options_on_a_nested_block_are_refused(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.transaction():
            for options in (
                {"readonly": True},
                {"deferrable": True},
                {"isolation": "serializable"},
            ):
                with pytest.raises(InterfaceError, match="savepoint"):
                    async with conn.transaction(**options):  # type: ignore[arg-type]
                        pytest.fail("a refused block must not run")  # pragma: no cover
            # Nothing was sent: the transaction is intact.
            assert await conn.fetchval("SELECT 1") == 1
        assert conn.transaction_status is IDLE


async def test_block_inside_a_transaction_begun_with_sql_is_refused(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("BEGIN")
        with pytest.raises(InterfaceError, match="plain SQL"):
            async with conn.transaction():
                pytest.fail("a refused block must not run")  # pragma: no cover
        assert conn.in_transaction
        await conn.execute("ROLLBACK")


async def test_block_can_be_entered_once(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        block = conn.transaction()
        async with block:
            pass
        with pytest.raises(InterfaceError, match="entered once"):
            async with block:
                pass  # pragma: no cover


async def test_failed_commit_raises_and_leaves_connection_idle(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute(
            "DROP TABLE IF EXISTS deferred;"
            " CREATE TABLE deferred (n int4 UNIQUE DEFERRABLE INITIALLY DEFERRED)"
        )
        with pytest.raises(UniqueViolationError):
            async with conn.transaction():
                await conn.execute("INSERT INTO deferred VALUES (1), (1)")  # checked at COMMIT
        assert conn.transaction_status is IDLE
        assert await conn.fetchval("SELECT count(*) FROM deferred") == 0


async def test_serialization_failure_at_commit_is_raised(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    # Write skew (transaction-iso.html#XACT-SERIALIZABLE): each reads what the other writes.
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute(
            "DROP TABLE IF EXISTS skew; CREATE TABLE skew (class int4, value int4);"
            " INSERT INTO skew VALUES (1, 10), (2, 100)"
        )
        first = conn.transaction(isolation="serializable")
        second = other_conn.transaction(isolation="serializable")
        await first.__aenter__()
        await second.__aenter__()
        await conn.fetchval("SELECT sum(value) FROM skew WHERE class = 1")
        await other_conn.fetchval("SELECT sum(value) FROM skew WHERE class = 2")
        await conn.execute("INSERT INTO skew VALUES (2, 1)")
        await other_conn.execute("INSERT INTO skew VALUES (1, 1)")
        await first.__aexit__(None, None, None)
        with pytest.raises(SerializationFailureError):
            await second.__aexit__(None, None, None)
        assert other_conn.transaction_status is IDLE
        assert await other_conn.fetchval("SELECT count(*) FROM skew") == 3


async def test_error_caught_inside_the_block_makes_leaving_it_raise(
    conn: trio_pg.Connection,
) -> None:
    async def caught_inside() -> None:
        async with conn.transaction():
            await conn.execute("INSERT INTO items VALUES (1)")
            with pytest.raises(trio_pg.errors.DivisionByZeroError):
                await conn.fetchval("SELECT 1 / 0")

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        # COMMIT of a failed transaction rolls it back; the block says so.
        with pytest.raises(InFailedSqlTransactionError, match="rolled back"):
            await caught_inside()
        assert conn.transaction_status is IDLE
        assert await _items(conn) == []


async def test_cancelled_block_rolls_back_and_the_server_stops_the_statement(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        with trio.move_on_after(0.3) as scope:
            async with conn.transaction():
                await conn.execute("INSERT INTO items VALUES (1)")
                await conn.execute("SELECT pg_sleep(30)")
        assert scope.cancelled_caught
        assert conn.transaction_status is IDLE
        assert await _items(conn) == []


async def test_rollback_not_finished_within_cleanup_grace_closes_the_connection(
    postgres_server: PostgresServer,
) -> None:
    # The statement ignores cancellation (it catches query_canceled and sleeps again),
    # so the ROLLBACK behind it cannot run within cleanup_grace.
    stubborn = """
        DO $$ BEGIN
            PERFORM pg_sleep(3);
        EXCEPTION WHEN query_canceled THEN
            PERFORM pg_sleep(3);
        END $$
    """
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn(), cleanup_grace=0.5) as conn:
            with trio.move_on_after(0.3):
                async with conn.transaction():
                    await conn.execute(stubborn)
            assert conn.is_closed
            with pytest.raises(trio_pg.ConnectionLostError, match="cleanup_grace"):
                await conn.fetchval("SELECT 1")


async def test_transaction_cancelled_at_every_checkpoint_commits_all_or_nothing(
    conn: trio_pg.Connection,
) -> None:
    async def operation() -> None:
        async with conn.transaction() as tx:
            await conn.execute("INSERT INTO items VALUES ($1)", 1)
            await tx.fetch("SELECT n FROM items")
            async with conn.transaction():
                await conn.execute("INSERT INTO items VALUES ($1)", 2)

    async def check(finished: bool) -> None:
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert conn.transaction_status is IDLE
        items = await _items(conn)
        if finished:
            assert items == [1, 2]
        else:
            # Cancelled while COMMIT was on its way, it may have committed; never half.
            assert items in ([], [1, 2])
            await conn.execute("DELETE FROM items")

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        cancelled = await sweep(operation, check, limit=2000, every_task=True)
        assert cancelled > 5


async def test_helper_tasks_run_inside_the_transaction_through_the_block(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.transaction() as tx:
            await conn.execute("INSERT INTO items VALUES (1)")
            own = await conn.fetchval("SELECT txid_current_if_assigned()")
            seen: list[object] = []

            async def helper(n: int) -> None:
                seen.append(await tx.fetchval("SELECT txid_current_if_assigned()"))
                await tx.execute("INSERT INTO items VALUES ($1)", n)

            async with trio.open_nursery() as nursery:
                for n in (2, 3, 4):
                    nursery.start_soon(helper, n)
            assert seen == [own] * 3
        assert await _items(conn) == [1, 2, 3, 4]
