"""Pipelines against the scripted fake server: cancellation, batching, failures.

The fake answers Flush as well as Sync (``fakepipeline.serve_pipelined``), checks the
client's cancellation discipline (``fakeserver.py``), and counts how many Execute
messages arrived before it answered any of them.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

import trio_pg
from tests.trio_layer.fakepipeline import STATS, serve_pipelined
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    FakeSession,
    isolate_environment,
    open_fake_connection,
    open_fake_server,
    open_memory_connection,
)
from tests.trio_layer.fakewire import INT4, TEXT, parameter_description
from trio_pg.errors import ConnectionLostError, PipelineAbortedError, ProtocolError
from trio_pg.ticket import Ticket

TIMEOUT = 20


def _echo(params: Sequence[bytes | None]) -> list[list[object]]:
    value = params[0]
    assert value is not None
    return [[struct.unpack("!i", value)[0]]]


ECHO = FakeQuery("SELECT $1::int4", columns=[("int4", INT4)], param_oids=[INT4], rows=_echo)
INSERT = FakeQuery("INSERT INTO t VALUES ($1)", param_oids=[INT4], tag="INSERT 0 1")
SLOW = FakeQuery(
    "SELECT n, label FROM slow",
    columns=[("n", INT4), ("label", TEXT)],
    rows=[[i, f"row {i}"] for i in range(12)],
    segments=4,
)
TWO = FakeQuery("SELECT 2", columns=[("two", INT4)], rows=[[2]])
FAILS = FakeQuery("SELECT fails()", columns=[("v", INT4)], fail_executions=10**9)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


def _queries(*extra: FakeQuery) -> list[FakeQuery]:
    return [dataclasses.replace(q) for q in (ECHO, INSERT, SLOW, TWO, *extra)]


async def _mixed_pipeline(conn: trio_pg.Connection) -> tuple[object, ...]:
    """Statements of every kind, two segments, awaits before and after sync()."""
    async with conn.pipeline() as p:
        inserted = p.execute(INSERT.sql, 1)
        rows = p.fetch(SLOW.sql)
        p.sync()
        value = p.fetchval(ECHO.sql, 5)
        first = await rows
        echoed = await value
        # A statement queued after results came back, in the same (open) segment.
        two = await p.fetchrow(TWO.sql)
        many = p.executemany(INSERT.sql, [(2,), (3,)])
    return await inserted, first, echoed, two, await many


async def _cancelled_after(conn: trio_pg.Connection, checkpoints: int) -> tuple[object, ...] | None:
    result: tuple[object, ...] | None = None
    with trio.CancelScope() as scope:

        async def cancel_later() -> None:
            for _ in range(checkpoints):
                await trio.lowlevel.checkpoint()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_later)
            result = await _mixed_pipeline(conn)
            nursery.cancel_scope.cancel()
    return result


@pytest.mark.parametrize("cache_size", [100, 1, 0], ids=["cached", "evicting", "unnamed"])
@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_pipeline_cancelled_at_every_checkpoint_leaves_connection_usable(
    transport: str, cache_size: int
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=serve_pipelined) as fake,
            open_fake_connection(fake, transport, statement_cache_size=cache_size) as conn,
        ):
            for k in range(3000):
                result = await _cancelled_after(conn, k)
                # Whatever was cancelled where, the connection answers the next query.
                assert await conn.fetchval(TWO.sql) == 2
                assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
                assert conn.statistics().pending_requests == 0
                fake.check()
                if result is not None:
                    break
            else:
                pytest.fail("the pipeline never completed")
            assert k > 5
            # Every statement the server still has is one the client knows about.
            session = await fake.session()
            named = [name for name in session.named_statements() if name]
            assert len(named) <= conn.statistics().statement_cache_size
            assert result == (
                "INSERT 0 1",
                [(i, f"row {i}") for i in range(12)],
                5,
                (2,),
                None,
            )


async def test_thousand_pipelined_statements_reach_the_server_in_one_write() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=serve_pipelined) as fake,
            open_memory_connection(fake) as conn,
        ):
            assert await conn.fetchval(ECHO.sql, 0) == 0  # described and cached
            session = await fake.session()
            before = conn.statistics()
            async with conn.pipeline() as p:
                tickets = [p.fetchval(ECHO.sql, i) for i in range(1000)]
            after = conn.statistics()
            assert [await t for t in tickets] == list(range(1000))
            assert after.writes - before.writes == 1
            assert after.requests - before.requests == 1
            assert STATS[session.pid].max_executes_per_read == 1000


async def test_unknown_statements_cost_one_round_trip_for_the_whole_batch() -> None:
    names = [f"SELECT $1::int4 + {n}" for n in range(5)]
    plus = [
        FakeQuery(
            sql,
            columns=[("v", INT4)],
            param_oids=[INT4],
            rows=lambda params, n=n: [[_echo(params)[0][0] + n]],
        )
        for n, sql in enumerate(names)
    ]
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(*plus), script=serve_pipelined) as fake,
            open_memory_connection(fake) as conn,
        ):
            before = conn.statistics()
            async with conn.pipeline() as p:
                tickets = []
                for i in range(1000):
                    tickets.append(p.fetchval(names[i % 5], i))
                    if i % 100 == 99:
                        p.sync()
            after = conn.statistics()
            assert [await t for t in tickets] == [i + i % 5 for i in range(1000)]
            # One request describing the five statements, then ten segments: two writes.
            assert after.writes - before.writes == 2
            assert after.requests - before.requests == 11
            session = await fake.session()
            assert sum(1 for m in session.received if m.type == b"P") == 5


async def test_connection_lost_in_a_pipeline_fails_every_ticket() -> None:
    async def vanish(s: FakeSession) -> None:
        await s.receive_group()
        await s.close()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=vanish) as fake,
            open_memory_connection(fake, statement_cache_size=0) as conn,
        ):
            tickets: list[Ticket[int]] = []

            async def run() -> None:
                async with conn.pipeline() as p:
                    tickets.extend(p.fetchval(ECHO.sql, i) for i in range(3))
                    await tickets[0]

            with pytest.raises(ConnectionLostError):
                await run()
            assert len(tickets) == 3
            for ticket in tickets:
                with pytest.raises((ConnectionLostError, PipelineAbortedError)):
                    await ticket
            assert conn.is_closed


async def test_answers_out_of_step_with_the_pipeline_close_the_connection() -> None:
    async def extra_answer(s: FakeSession) -> None:
        await s.answer(await s.receive_group())  # the describe request
        group = await s.receive_group()  # the segment
        out = s.respond(group)
        # A ParameterDescription among an execution's answers: the server is out of step.
        await s.send(*out[:2], parameter_description([INT4]), *out[2:])
        await s.serve()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(), script=extra_answer) as fake,
            open_memory_connection(fake, statement_cache_size=0) as conn,
        ):
            ticket = None
            # Nobody awaited the failed ticket: leaving the block raises its error.
            with pytest.raises(ProtocolError, match="do not match"):
                async with conn.pipeline() as p:
                    ticket = p.fetchval(TWO.sql)
            assert ticket is not None
            with pytest.raises(ProtocolError):
                await ticket
            assert conn.is_closed
            with pytest.raises(ProtocolError):
                await conn.fetchval(TWO.sql)


async def test_failing_statement_aborts_the_rest_of_its_segment_only() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=_queries(FAILS), script=serve_pipelined) as fake,
            open_memory_connection(fake) as conn,
        ):
            async with conn.pipeline() as p:
                before = p.fetchval(ECHO.sql, 1)
                failing = p.fetchval(FAILS.sql)
                skipped = p.fetchval(ECHO.sql, 2)
                p.sync()
                later = p.fetchval(ECHO.sql, 3)
                assert await before == 1
                with pytest.raises(trio_pg.PostgresError, match="scripted failure"):
                    await failing
                with pytest.raises(PipelineAbortedError, match="scripted failure"):
                    await skipped
                assert await later == 3
            assert await conn.fetchval(TWO.sql) == 2
