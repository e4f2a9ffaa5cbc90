"""Cancelling callers, against the scripted fake server.

The fake server checks the rules of protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
as the client must keep them: a CancelRequest carries the session's process ID and secret
key, reaches the server only while the abandoned request is the only one outstanding, and
no later request is written before the abandoned one's ReadyForQuery and the end of the
cancel connection (see ``fakeserver.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

import trio_pg
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    FakeServer,
    FakeSession,
    isolate_environment,
    open_fake_connection,
    open_fake_server,
    open_memory_connection,
)
from tests.trio_layer.fakewire import INT4, TEXT
from trio_pg.errors import ConnectionLostError

TIMEOUT = 20

SLOW = FakeQuery(
    "SELECT n, label FROM slow",
    columns=[("n", INT4), ("label", TEXT)],
    rows=[[i, f"row {i}"] for i in range(12)],
    segments=4,
)
TWO = FakeQuery("SELECT 2", columns=[("two", INT4)], rows=[[2]])
HANG = FakeQuery("SELECT pg_sleep(3600)", columns=[("v", INT4)], hang=True)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


async def _fetch_cancelled_after(
    conn: trio_pg.Connection, sql: str, checkpoints: int
) -> list[trio_pg.Record] | None:
    """Fetch ``sql``, cancelling the call after ``checkpoints`` scheduler checkpoints.

    Returns the rows, or None when the cancellation came first.
    """
    rows: list[trio_pg.Record] | None = None
    with trio.CancelScope() as scope:

        async def cancel_later() -> None:
            for _ in range(checkpoints):
                await trio.lowlevel.checkpoint()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_later)
            rows = await conn.fetch(sql)
            nursery.cancel_scope.cancel()
    return rows


def _assert_cancels_carry_the_session_key(fake: FakeServer, key_length: int) -> None:
    for record in fake.cancels:
        session = next(s for s in fake.sessions if s.pid == record.pid)
        assert record.key == session.secret_key
        assert len(record.key) == key_length
        assert record.outstanding <= 1


@pytest.mark.parametrize("cache_size", [100, 0], ids=["cached", "unnamed"])
@pytest.mark.parametrize("protocol", [(3, 0), (3, 2)], ids=["3.0", "3.2"])
@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_fetch_cancelled_at_every_checkpoint_leaves_connection_usable(
    transport: str, protocol: tuple[int, int], cache_size: int
) -> None:
    slow = dataclasses.replace(SLOW)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[slow, TWO], protocol=protocol) as fake,
            open_fake_connection(fake, transport, statement_cache_size=cache_size) as conn,
        ):
            assert conn.protocol_version == protocol
            for k in range(2000):
                rows = await _fetch_cancelled_after(conn, slow.sql, k)
                # Whatever was cancelled where, the connection answers the next query.
                assert await conn.fetchval(TWO.sql) == 2
                assert conn.statistics().pending_requests == 0
                fake.check()
                if rows is not None:
                    assert rows == [(i, f"row {i}") for i in range(12)]
                    break
            else:
                pytest.fail("the fetch never completed")
            assert k > 3
            assert conn.statistics().cancels_sent >= 1
            assert len(fake.cancels) == conn.statistics().cancels_sent
            if transport == "memory":
                # Scheduling is deterministic here: some cancels stopped the running query.
                assert any(record.interrupted for record in fake.cancels)
            _assert_cancels_carry_the_session_key(fake, 32 if protocol == (3, 2) else 4)


async def test_cancelled_describes_leave_no_prepared_statement_on_the_server() -> None:
    slow = dataclasses.replace(SLOW)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[slow, TWO]) as fake,
            open_memory_connection(fake) as conn,
        ):
            for k in range(2000):
                rows = await _fetch_cancelled_after(conn, slow.sql, k)
                assert await conn.fetchval(TWO.sql) == 2
                if rows is not None:
                    break
            session = await fake.session()
            # Every Parse of a named statement that reached the server was either cached
            # by the client (and is reused) or closed again; none is forgotten there.
            named = [name for name in session.named_statements() if name]
            assert len(named) == conn.statistics().statement_cache_size


@pytest.mark.parametrize("protocol", [(3, 0), (3, 2)], ids=["3.0", "3.2"])
async def test_cancelled_running_query_is_cancelled_on_the_server(
    protocol: tuple[int, int],
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[HANG, TWO], protocol=protocol) as fake,
            open_fake_connection(fake) as conn,
        ):
            with trio.move_on_after(0.2) as scope:
                await conn.fetch(HANG.sql)
            assert scope.cancelled_caught
            # The next query is answered after the server stopped the hanging one.
            assert await conn.fetchval(TWO.sql) == 2
            assert len(fake.cancels) == 1
            (record,) = fake.cancels
            session = await fake.session()
            assert (record.pid, record.key) == (conn.backend_pid, session.secret_key)
            assert len(record.key) == (32 if protocol == (3, 2) else 4)
            assert record.outstanding == 1


async def test_abandoned_request_followed_by_another_sends_no_cancel() -> None:
    release = trio.Event()

    async def hold_until_released(s: FakeSession) -> None:
        for _ in range(4):  # warm-up: describe + execute of each statement
            await s.answer(await s.receive_group())
        groups = [await s.receive_group() for _ in range(2)]
        await release.wait()
        await s.send(*[m for g in groups for m in s.respond(g)])
        await s.serve()

    abandon = trio.CancelScope()
    got: list[object] = []

    async def abandoned_call(conn: trio_pg.Connection) -> None:
        with abandon:
            await conn.fetch(SLOW.sql)
        assert abandon.cancelled_caught

    async def later_call(conn: trio_pg.Connection) -> None:
        got.append(await conn.fetch(TWO.sql))

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[SLOW, TWO], script=hold_until_released) as fake,
            open_fake_connection(fake) as conn,
        ):
            assert len(await conn.fetch(SLOW.sql)) == 12
            assert await conn.fetchval(TWO.sql) == 2
            async with trio.open_nursery() as nursery:
                nursery.start_soon(abandoned_call, conn)
                await fake.wait_until(lambda: fake.count(b"E") == 3)
                nursery.start_soon(later_call, conn)
                await fake.wait_until(lambda: fake.count(b"E") == 4)
                # Both are on the wire: a cancel could hit the later one, so none is sent.
                abandon.cancel()
                release.set()
            # The abandoned request's rows were discarded; the later caller got its own.
            assert got == [[(2,)]]
            assert await conn.fetchval(TWO.sql) == 2
            assert conn.statistics().cancels_sent == 0
            assert fake.cancels == []


async def test_cleanup_grace_closes_connection_when_server_ignores_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    grace = 3.0
    with trio.fail_after(TIMEOUT * 10):
        async with (
            open_fake_server(queries=[HANG, TWO], ignore_cancel=True) as fake,
            open_memory_connection(fake, cleanup_grace=grace) as conn,
        ):
            with trio.move_on_after(1):
                await conn.fetch(HANG.sql)
            cancelled_at = trio.current_time()
            # Queued behind the abandoned request, which the server never ends.
            with pytest.raises(ConnectionLostError, match="cleanup_grace") as info:
                await conn.fetchval(TWO.sql)
            waited = trio.current_time() - cancelled_at
            assert grace <= waited <= 2 * grace + 0.5
            assert "3.0" in str(info.value)
            assert conn.is_closed
            assert len(fake.cancels) == 1
            with pytest.raises(ConnectionLostError, match="cleanup_grace"):
                await conn.fetchval(TWO.sql)
