"""The pool against the scripted fake server, in virtual time.

Connections go over in-memory streams (``connect_memory``), so expiry, backoff and
closing bounds are checked to the virtual second under Trio's autojump clock, and
cancellation can be swept over every checkpoint. Which statements may share a busy
connection is checked here too (pure).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_pg
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    FakeServer,
    FakeSession,
    connect_memory,
    isolate_environment,
)
from tests.trio_layer.fakeserver import open_fake_server as _open_fake_server
from tests.trio_layer.fakewire import INT4
from trio_pg.errors import ConnectionFailedError, ConnectionLostError, InterfaceError
from trio_pg.pool import Pool, PoolStatistics, _open_pool, open_pool
from trio_pg.pool_sharing import may_share
from trio_pg.pool_supply import BACKOFF_FIRST, BACKOFF_MAX

TIMEOUT = 1000  # virtual seconds


def _echo_int(params: Sequence[bytes | None]) -> list[list[object]]:
    assert params[0] is not None
    return [[struct.unpack("!i", params[0])[0]]]


ECHO = FakeQuery("SELECT $1::int4", columns=[("v", INT4)], param_oids=[INT4], rows=_echo_int)
SLOW = FakeQuery(
    "SELECT n FROM slow", columns=[("n", INT4)], rows=[[i] for i in range(40)], segments=20
)
HANG = FakeQuery("SELECT pg_sleep(3600)", columns=[("v", INT4)], hang=True)
QUERIES = [ECHO, SLOW, HANG]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


@asynccontextmanager
async def open_fake_server() -> AsyncIterator[FakeServer]:
    async with _open_fake_server(queries=QUERIES) as server:
        yield server


@asynccontextmanager
async def fake_pool(
    server: FakeServer,
    *,
    opener: Callable[[trio.Nursery], Awaitable[trio_pg.Connection]] | None = None,
    min_size: int = 1,
    max_size: int = 10,
    max_idle: float = 300.0,
    max_lifetime: float = 3600.0,
    cleanup_grace: float = 5.0,
) -> AsyncIterator[Pool]:
    """A pool whose connections go to ``server`` over in-memory streams."""
    async with _open_pool(
        opener or partial(connect_memory, server, cleanup_grace=cleanup_grace),
        min_size=min_size,
        max_size=max_size,
        max_idle=max_idle,
        max_lifetime=max_lifetime,
        cleanup_grace=cleanup_grace,
        reset=None,
    ) as pool:
        yield pool


@asynccontextmanager
async def holding(pool: Pool, count: int) -> AsyncIterator[list[trio_pg.Connection]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(pool.acquire()) for _ in range(count)]


def assert_consistent(stats: PoolStatistics) -> None:
    assert stats.size == stats.idle + stats.borrowed + stats.resetting
    assert 0 <= stats.size <= stats.max_size


async def settle(pool: Pool) -> PoolStatistics:
    """Let background cleaning finish; then nothing may be lent or waiting."""
    await trio.testing.wait_all_tasks_blocked()
    while pool.statistics().resetting:  # noqa: ASYNC110 - no event for this
        # A drain may wait on the fake server's own waits for quiet: give it a moment.
        await trio.sleep(0.001)
    stats = pool.statistics()
    assert_consistent(stats)
    assert (stats.borrowed, stats.waiting, stats.resetting) == (0, 0, 0)
    return stats


# -- which statements share ------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  select $1::int",
        "\n\tWITH x AS (SELECT 1) SELECT * FROM x",
        "(SELECT 1) UNION (SELECT 2)",
        "-- a comment\nSELECT 1",
        "/* app=web */ INSERT INTO t VALUES ($1)",
        "update t set v = 1",
        "DELETE FROM t",
        "VALUES (1), (2)",
        "TABLE t",
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DO NOTHING",
    ],
)
def test_queries_and_data_changes_may_share(sql: str) -> None:
    assert may_share(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "begin isolation level serializable",
        "START TRANSACTION",
        "COMMIT",
        "END",
        "ROLLBACK",
        "ABORT",
        "SAVEPOINT a",
        "RELEASE a",
        "PREPARE TRANSACTION 'x'",
        "SET search_path = x",
        "RESET ALL",
        "LISTEN x",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "CALL proc()",
        "DO $$ BEGIN COMMIT; END $$",
        "COPY t FROM STDIN",
        "LOCK TABLE t",
        "DISCARD ALL",
        "",
        "   ",
        "-- only a comment",
        "/* nested /* SELECT */ BEGIN */ SELECT 1",
        "/* unterminated SELECT 1",
        "$1",
    ],
)
def test_transaction_and_session_statements_never_share(sql: str) -> None:
    assert not may_share(sql)


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_size": -1}, "min_size"),
        ({"max_size": 0}, "max_size"),
        ({"min_size": 3, "max_size": 2}, "must not exceed"),
        ({"max_idle": 0}, "max_idle"),
        ({"max_lifetime": -5.0}, "max_lifetime"),
        ({"max_lifetime": float("nan")}, "max_lifetime"),
        ({"cleanup_grace": 0}, "cleanup_grace"),
    ],
)
async def test_invalid_settings_are_refused_before_connecting(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(InterfaceError, match=message):
        async with open_pool("host=fake.invalid", **settings):
            pass


# -- sizes over time --------------------------------------------------------------------------


async def test_connections_beyond_min_size_close_after_max_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, min_size=1, max_size=3, max_idle=60
        ) as pool:
            async with holding(pool, 3):
                pass
            assert pool.statistics().size == 3
            await trio.sleep(59)
            assert pool.statistics().size == 3
            await trio.sleep(2)
            stats = await settle(pool)
            assert (stats.size, stats.retired) == (1, 2)
            # Never below min_size, however long it stays idle.
            await trio.sleep(600)
            assert pool.statistics().size == 1
            assert await pool.fetchval(ECHO.sql, 5) == 5


async def test_connections_are_replaced_after_max_lifetime(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, min_size=2, max_size=2, max_lifetime=100
        ) as pool:
            async with holding(pool, 2) as conns:
                first = {c.backend_pid for c in conns}
            await trio.sleep(89)  # lifetimes are up to 10% shorter than max_lifetime
            assert pool.statistics().retired == 0
            await trio.sleep(12)
            stats = await settle(pool)
            assert (stats.size, stats.retired, stats.connects) == (2, 2, 4)
            async with holding(pool, 2) as conns:
                assert not first & {c.backend_pid for c in conns}
                # A connection past its lifetime while lent is closed when it comes back.
                await trio.sleep(101)
            stats = await settle(pool)
            assert (stats.size, stats.retired, stats.connects) == (2, 4, 6)


async def test_failed_connects_are_retried_with_exponential_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []

    async def flaky(server: FakeServer, nursery: trio.Nursery) -> trio_pg.Connection:
        attempts.append(trio.current_time())
        if 2 <= len(attempts) <= 7:
            await trio.sleep(0.5)  # the attempt takes a while before it fails
            raise ConnectionFailedError("refused")
        return await connect_memory(server, nursery)

    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, opener=partial(flaky, server), min_size=2, max_size=2
        ) as pool:
            # The healthy connection serves while the second one keeps failing.
            for i in range(5):
                assert await pool.fetchval(ECHO.sql, i) == i
            async with holding(pool, 2):
                pass
            stats = pool.statistics()
            assert (stats.size, stats.connects, stats.connect_failures) == (2, 2, 6)
    # Each wait starts when the previous attempt failed (0.5 s after it began).
    failing = attempts[1:]  # the first attempt opened the first connection
    waits = [b - (a + 0.5) for a, b in itertools.pairwise(failing)]
    assert len(waits) == 6
    for n, wait in enumerate(waits):
        nominal = min(BACKOFF_MAX, BACKOFF_FIRST * 2**n)
        assert nominal * 0.8 - 1e-9 <= wait <= nominal * 1.2 + 1e-9


async def test_waiters_fail_only_when_no_connection_is_open_or_opening(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def refuse(nursery: trio.Nursery) -> trio_pg.Connection:
        await trio.sleep(1)
        raise ConnectionFailedError("server down")

    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, opener=refuse, min_size=0, max_size=4
        ) as pool:
            failures: list[BaseException] = []

            async def ask() -> None:
                with pytest.raises(ConnectionFailedError, match="server down") as info:
                    await pool.fetchval(ECHO.sql, 1)
                failures.append(info.value)

            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(ask)
            assert len(failures) == 6
            # Each task got its own exception, chained to the attempt's error.
            assert len({id(e) for e in failures}) == 6
            assert all(isinstance(e.__cause__, ConnectionFailedError) for e in failures)
            stats = pool.statistics()
            assert (stats.size, stats.waiting) == (0, 0)
            assert stats.connect_failures == 4  # one attempt per connection it could open


# -- cancellation ------------------------------------------------------------------------------


async def test_acquire_cancelled_at_every_checkpoint_takes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, min_size=1, max_size=1
        ) as pool:
            done = False
            k = 0
            while not done:
                async with trio.open_nursery() as nursery:

                    async def hold_briefly() -> None:
                        async with pool.acquire() as conn:
                            await conn.fetchval(ECHO.sql, 1)

                    nursery.start_soon(hold_briefly)
                    with trio.CancelScope() as scope:
                        nursery.start_soon(_cancel_after, scope, k)
                        async with pool.acquire() as conn:
                            assert await conn.fetchval(ECHO.sql, 2) == 2
                        done = True
                    nursery.cancel_scope.cancel()
                stats = await settle(pool)
                assert stats.size == 1
                k += 1
            assert k > 3
            assert await pool.fetchval(ECHO.sql, 3) == 3


async def test_convenience_cancelled_at_every_checkpoint_leaves_the_pool_sound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, min_size=2, max_size=2
        ) as pool:
            done = False
            k = 0
            while not done:
                async with trio.open_nursery() as nursery:
                    # Other callers keep the pool saturated, so the call may be shared.
                    for i in range(4):
                        nursery.start_soon(pool.fetch, SLOW.sql)
                        nursery.start_soon(pool.fetchval, ECHO.sql, i)
                    with trio.CancelScope() as scope:
                        nursery.start_soon(_cancel_after, scope, k)
                        assert await pool.fetch(SLOW.sql) == [(i,) for i in range(40)]
                        done = True
                await settle(pool)
                async with holding(pool, 2) as conns:
                    for c in conns:
                        assert await c.fetchval(ECHO.sql, 7) == 7
                k += 1
            assert k > 3
            assert pool.statistics().shared > 0


async def _cancel_after(scope: trio.CancelScope, checkpoints: int) -> None:
    for _ in range(checkpoints):
        await trio.lowlevel.checkpoint()
    scope.cancel()


# -- sharing ---------------------------------------------------------------------------------


async def test_sharing_starts_only_when_the_pool_is_full_and_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, fake_pool(
            server, min_size=1, max_size=2
        ) as pool:
            # One caller at a time: a connection each time, never shared.
            for i in range(5):
                assert await pool.fetchval(ECHO.sql, i) == i
            assert pool.statistics().shared == 0
            results: dict[int, int] = {}

            async def ask(i: int) -> None:
                results[i] = await pool.fetchval(ECHO.sql, i)

            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(ask, i)
            assert results == {i: i for i in range(20)}
            stats = await settle(pool)
            assert stats.size == 2
            assert stats.shared > 0
            assert len(server.sessions) == 2


@asynccontextmanager
async def open_gated_server(gate: trio.Event) -> AsyncIterator[FakeServer]:
    """A fake server that answers nothing until ``gate`` is set."""

    async def answer_after_gate(session: FakeSession) -> None:
        while group := await session.receive_group():
            await gate.wait()
            await session.answer(group)

    async with _open_fake_server(queries=QUERIES, script=answer_after_gate) as server:
        yield server


async def test_conveniences_never_overtake_a_task_waiting_in_acquire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    with trio.fail_after(TIMEOUT):
        async with open_gated_server(gate) as server, fake_pool(
            server, min_size=1, max_size=1
        ) as pool:
            events: list[str] = []

            async def convenience(name: str) -> None:
                assert await pool.fetchval(ECHO.sql, 1) == 1
                events.append(name)

            async def borrower() -> None:
                async with pool.acquire() as conn:
                    events.append("acquired")
                    assert await conn.fetchval(ECHO.sql, 2) == 2
                    events.append("released")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(convenience, "first")
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(borrower)
                await trio.testing.wait_all_tasks_blocked()
                # Arrives while the borrower waits: queues behind it, does not share.
                nursery.start_soon(convenience, "late")
                await trio.testing.wait_all_tasks_blocked()
                assert pool.statistics().waiting == 2
                gate.set()
            assert events == ["first", "acquired", "released", "late"]
            assert pool.statistics().shared == 0


async def test_shared_connection_with_a_cancelled_call_takes_no_new_callers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    with trio.fail_after(TIMEOUT):
        async with open_gated_server(gate) as server, fake_pool(
            server, min_size=1, max_size=1
        ) as pool:
            results: list[int] = []

            async def ask(i: int) -> None:
                results.append(await pool.fetchval(ECHO.sql, i))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask, 1)  # the connection is lent to this call
                await trio.testing.wait_all_tasks_blocked()
                scope = trio.CancelScope()
                nursery.start_soon(_in_scope, scope, ask, 2)  # shares it
                await trio.testing.wait_all_tasks_blocked()
                assert pool.statistics().shared == 1
                scope.cancel()
                await trio.testing.wait_all_tasks_blocked()
                # The connection carries an abandoned statement now: wait, do not share.
                nursery.start_soon(ask, 3)
                await trio.testing.wait_all_tasks_blocked()
                assert pool.statistics().waiting == 1
                gate.set()
            assert sorted(results) == [1, 3]
            stats = await settle(pool)
            assert (stats.shared, stats.size) == (1, 1)


async def _in_scope(
    scope: trio.CancelScope, fn: Callable[[int], Awaitable[None]], arg: int
) -> None:
    with scope:
        await fn(arg)


# -- closing --------------------------------------------------------------------------------


async def test_pool_exit_closes_a_borrowed_connection_after_exactly_cleanup_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    grace = 7.0
    lost: list[BaseException] = []
    with trio.fail_after(TIMEOUT):
        async with open_fake_server() as server, trio.open_nursery() as outside:
            async with fake_pool(server, cleanup_grace=grace) as pool:

                async def borrower() -> None:
                    async with pool.acquire() as conn:
                        with pytest.raises(ConnectionLostError) as info:
                            await conn.fetch(HANG.sql)
                        lost.append(info.value)

                outside.start_soon(borrower)
                await trio.testing.wait_all_tasks_blocked()
                start = trio.current_time()
            assert trio.current_time() - start == pytest.approx(grace)
    assert len(lost) == 1
    assert_consistent(pool.statistics())
