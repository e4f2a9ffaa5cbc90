"""Transaction blocks against the scripted fake server: cancellation and the cleanup bound.

The fake tracks the transaction status BEGIN, COMMIT, ROLLBACK and savepoint commands
lead to (``fakepipeline.serve_pipelined``), so after every cancellation the test can
check the server side is outside any transaction too, not only the client's view.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_pg
from tests.trio_layer.fakepipeline import serve_pipelined
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    FakeServer,
    isolate_environment,
    open_fake_connection,
    open_fake_server,
    open_memory_connection,
)
from tests.trio_layer.fakewire import INT4, TEXT
from trio_pg.errors import ConnectionLostError, InFailedSqlTransactionError

TIMEOUT = 20

INSERT = FakeQuery("INSERT INTO t VALUES ($1)", param_oids=[INT4], tag="INSERT 0 1")
SLOW = FakeQuery(
    "SELECT n, label FROM slow",
    columns=[("n", INT4), ("label", TEXT)],
    rows=[[i, f"row {i}"] for i in range(12)],
    segments=4,
)
TWO = FakeQuery("SELECT 2", columns=[("two", INT4)], rows=[[2]])
FAILS = FakeQuery("SELECT fails()", columns=[("v", INT4)], fail_executions=10**9)
HANG = FakeQuery("SELECT pg_sleep(3600)", columns=[("v", INT4)], hang=True)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


def _queries() -> list[FakeQuery]:
    return [dataclasses.replace(q) for q in (INSERT, SLOW, TWO, FAILS, HANG)]


async def _transaction(conn: trio_pg.Connection) -> list[trio_pg.Record]:
    async with conn.transaction() as tx:
        await conn.execute(INSERT.sql, 1)
        rows = await tx.fetch(SLOW.sql)
        async with conn.transaction():
            assert await conn.fetchval(TWO.sql) == 2
    return rows


async def _cancelled_after(conn: trio_pg.Connection, checkpoints: int) -> object:
    result: object = None
    with trio.CancelScope() as scope:

        async def cancel_later() -> None:
            for _ in range(checkpoints):
                await trio.lowlevel.checkpoint()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_later)
            result = await _transaction(conn)
            nursery.cancel_scope.cancel()
    return result


def _control_statements(fake: FakeServer) -> list[str]:
    """BEGIN, COMMIT and ROLLBACK (of a whole transaction) the server received, in order."""
    words = [m.sql.upper().split()[:2] for s in fake.sessions for m in s.received if m.type == b"Q"]
    return [w[0] for w in words if w[0] in ("BEGIN", "COMMIT", "ROLLBACK") and w[1:] != ["TO"]]


@pytest.mark.parametrize("cache_size", [100, 0], ids=["cached", "unnamed"])
@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_transaction_cancelled_at_every_checkpoint_never_stays_open(
    transport: str, cache_size: int
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=serve_pipelined) as fake,
            open_fake_connection(fake, transport, statement_cache_size=cache_size) as conn,
        ):
            session = await fake.session()
            for k in range(3000):
                result = await _cancelled_after(conn, k)
                assert await conn.fetchval(TWO.sql) == 2
                assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
                assert session.status == "I"  # the server agrees
                assert conn.statistics().pending_requests == 0
                fake.check()
                if result is not None:
                    break
            else:
                pytest.fail("the transaction never completed")
            assert k > 5
            assert result == [(i, f"row {i}") for i in range(12)]
            # Every BEGIN that reached the server was ended, the last one by COMMIT.
            control = _control_statements(fake)
            assert control.count("BEGIN") == control.count("COMMIT") + control.count("ROLLBACK")
            assert control[-1] == "COMMIT"


async def test_rollback_that_cannot_finish_within_cleanup_grace_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    grace = 3.0
    with trio.fail_after(TIMEOUT * 10):
        async with (
            open_fake_server(
                queries=_queries(), script=serve_pipelined, ignore_cancel=True
            ) as fake,
            open_memory_connection(fake, cleanup_grace=grace) as conn,
        ):
            start = trio.current_time()
            with trio.move_on_after(1) as scope:
                async with conn.transaction():
                    await conn.fetch(HANG.sql)
            assert scope.cancelled_caught
            # The rollback waited behind the statement the server never stops, for
            # cleanup_grace at most; then the connection was closed rather than reused.
            assert 1 + grace <= trio.current_time() - start <= 1 + 2 * grace + 0.5
            assert conn.is_closed
            with pytest.raises(ConnectionLostError, match="cleanup_grace"):
                await conn.fetchval(TWO.sql)


async def test_commit_of_a_transaction_failed_inside_raises_instead_of_passing_as_commit() -> None:
    async def caught_failure(conn: trio_pg.Connection) -> None:
        async with conn.transaction():
            with pytest.raises(trio_pg.PostgresError):
                await conn.fetch(FAILS.sql)

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=serve_pipelined) as fake,
            open_memory_connection(fake) as conn,
        ):
            with pytest.raises(InFailedSqlTransactionError, match="rolled back, not committed"):
                await caught_failure(conn)
            assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
            assert (await fake.session()).status == "I"
            assert await conn.fetchval(TWO.sql) == 2


async def test_savepoint_whose_release_fails_is_rolled_back_and_outer_block_goes_on() -> None:
    async def nested_failure(conn: trio_pg.Connection) -> None:
        async with conn.transaction():
            with pytest.raises(trio_pg.PostgresError):
                await conn.fetch(FAILS.sql)

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=serve_pipelined) as fake,
            open_memory_connection(fake) as conn,
        ):
            async with conn.transaction():
                with pytest.raises(InFailedSqlTransactionError):
                    await nested_failure(conn)
                # Rolled back to the savepoint: the outer transaction is usable again.
                assert conn.transaction_status is trio_pg.TransactionStatus.IN_TRANSACTION
                assert await conn.fetchval(TWO.sql) == 2
            assert _control_statements(fake)[-1] == "COMMIT"
