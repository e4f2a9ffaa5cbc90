"""The connection's reader, writer and query layer against the scripted fake server.

Results routing, the statement cache, stale statements, asynchronous messages in the
middle of a result, undecodable values and aclose(). Cancellation is in
``test_cancellation_fake.py``, failures in ``test_failures_fake.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

import trio_pg
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    FakeSession,
    isolate_environment,
    open_fake_connection,
    open_fake_server,
    open_memory_connection,
)
from tests.trio_layer.fakewire import INT4, TEXT, notice_response, parameter_status
from trio_pg.errors import ConnectionLostError, FeatureNotSupportedError, InterfaceError

TIMEOUT = 10


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


def _echo_int(params: Sequence[bytes | None]) -> list[list[object]]:
    assert params[0] is not None
    return [[struct.unpack("!i", params[0])[0]]]


ECHO = FakeQuery("SELECT $1::int4", columns=[("v", INT4)], param_oids=[INT4], rows=_echo_int)
PEOPLE = FakeQuery(
    "SELECT id, name FROM people",
    columns=[("id", INT4), ("name", TEXT)],
    rows=[[i, f"person {i}" if i % 3 else None] for i in range(40)],
)
EXPECTED_PEOPLE = [(i, f"person {i}" if i % 3 else None) for i in range(40)]


# -- routing ----------------------------------------------------------------------------


async def test_concurrent_callers_get_their_own_results_in_fifo_order() -> None:
    callers = 50

    async def answer_all_at_once(s: FakeSession) -> None:
        await s.answer(await s.receive_group())  # the one shared Parse/Describe
        # Every caller's Bind/Execute/Sync is on the wire before any is answered, and all
        # answers (rows, tags, ReadyForQuery) go back in a single segment.
        groups = [await s.receive_group() for _ in range(callers)]
        await s.send(*[m for g in groups for m in s.respond(g)])
        await s.serve()

    results: dict[int, object] = {}

    async def caller(conn: trio_pg.Connection, i: int) -> None:
        results[i] = await conn.fetchval("SELECT $1::int4", i * 7)

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[ECHO], script=answer_all_at_once) as fake,
            open_fake_connection(fake) as conn,
        ):
            async with trio.open_nursery() as nursery:
                for i in range(callers):
                    nursery.start_soon(caller, conn, i)
            assert results == {i: i * 7 for i in range(callers)}
            assert fake.count(b"P") == 1
            assert conn.statistics().pending_requests == 0


async def test_rows_sent_one_byte_per_segment_are_reassembled() -> None:
    bytewise = FakeQuery(PEOPLE.sql, columns=PEOPLE.columns, rows=PEOPLE.rows, bytewise=True)
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[bytewise]) as fake, open_fake_connection(fake) as conn:
            rows = await conn.fetch(PEOPLE.sql)
            assert rows == EXPECTED_PEOPLE
            assert rows[1]["name"] == "person 1"


async def test_rows_split_byte_by_byte_are_each_received_separately() -> None:
    bytewise = FakeQuery(PEOPLE.sql, columns=PEOPLE.columns, rows=PEOPLE.rows, bytewise=True)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[bytewise]) as fake,
            open_memory_connection(fake) as conn,
        ):
            await conn.fetch(PEOPLE.sql)  # describe and cache it first
            before = conn.statistics()
            assert await conn.fetch(PEOPLE.sql) == EXPECTED_PEOPLE
            after = conn.statistics()
            # Every byte of the Bind/Execute answer came in its own receive_some().
            received = after.bytes_received - before.bytes_received
            assert received > 40 * 10
            assert after.receives - before.receives == received


async def test_two_results_and_async_messages_in_one_segment_are_routed() -> None:
    async def warm_up_then_answer_two_in_one_write(s: FakeSession) -> None:
        for _ in range(4):  # describe + execute, for each statement
            await s.answer(await s.receive_group())
        first, second = await s.receive_group(), await s.receive_group()
        await s.send(
            notice_response("before everything"),
            *s.respond(first),
            parameter_status("TimeZone", "Europe/Paris"),
            *s.respond(second),
        )
        await s.serve()

    script = warm_up_then_answer_two_in_one_write
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PEOPLE, ECHO], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            assert await conn.fetch(PEOPLE.sql) == EXPECTED_PEOPLE
            assert await conn.fetchval(ECHO.sql, 1) == 1
            got: dict[str, object] = {}

            async def people() -> None:
                got["people"] = await conn.fetch(PEOPLE.sql)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(people)
                await fake.wait_until(lambda: fake.count(b"E") == 3)
                got["echo"] = await conn.fetchval(ECHO.sql, 5)
            assert got == {"people": EXPECTED_PEOPLE, "echo": 5}
            assert conn.parameters["TimeZone"] == "Europe/Paris"
            assert conn.statistics().pending_requests == 0


# -- statement cache -----------------------------------------------------------------------


async def test_second_fetch_of_the_same_sql_sends_no_parse() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[ECHO]) as fake, open_fake_connection(fake) as conn:
            assert await conn.fetchval(ECHO.sql, 1) == 1
            assert await conn.fetchval(ECHO.sql, 2) == 2
            assert fake.count(b"P") == 1
            assert fake.count(b"B") == 2
            stats = conn.statistics()
            assert (stats.statement_cache_hits, stats.statement_cache_misses) == (1, 1)


async def test_concurrent_first_fetches_of_one_sql_describe_it_once() -> None:
    results: dict[int, object] = {}

    async def caller(conn: trio_pg.Connection, i: int) -> None:
        results[i] = await conn.fetchval(ECHO.sql, i)

    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[ECHO]) as fake, open_fake_connection(fake) as conn:
            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(caller, conn, i)
            assert results == {i: i for i in range(100)}
            assert fake.count(b"P") == 1
            assert fake.count(b"D") == 1
            assert fake.count(b"E") == 100


STALE = ("0A000", "cached plan must not change result type")


async def test_stale_cached_plan_is_described_again_and_retried_when_idle() -> None:
    echo = dataclasses.replace(ECHO)
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[echo]) as fake, open_fake_connection(fake) as conn:
            assert await conn.fetchval(ECHO.sql, 1) == 1
            echo.fail_executions, echo.error = 1, STALE  # as after ALTER TABLE
            assert await conn.fetchval(ECHO.sql, 2) == 2
            session = await fake.session()
            parses = [m.parse()[0] for m in session.received if m.type == b"P"]
            assert len(parses) == 2
            assert parses[0] != parses[1]
            # The stale statement was closed on the server.
            closes = [m.name for m in session.received if m.type == b"C"]
            assert closes == [parses[0]]
            assert await conn.fetchval(ECHO.sql, 3) == 3
            assert fake.count(b"P") == 2


@pytest.mark.parametrize("status_after_error", ["T", "E"])
async def test_stale_cached_plan_inside_a_transaction_is_raised(status_after_error: str) -> None:
    echo = dataclasses.replace(ECHO)
    queries = [
        echo,
        FakeQuery("BEGIN", status_after="T"),
        FakeQuery("ROLLBACK", status_after="I"),
    ]
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=queries) as fake, open_fake_connection(fake) as conn:
            assert await conn.fetchval(ECHO.sql, 1) == 1
            await conn.execute("BEGIN")
            assert conn.in_transaction
            echo.fail_executions, echo.error = 1, STALE
            echo.error_status = status_after_error
            with pytest.raises(FeatureNotSupportedError, match="cached plan"):
                await conn.fetchval(ECHO.sql, 2)
            assert fake.count(b"P") == 1  # not retried inside the transaction
            await conn.execute("ROLLBACK")
            # The next call outside the transaction describes the statement again.
            assert await conn.fetchval(ECHO.sql, 3) == 3
            assert fake.count(b"P") == 2


# -- asynchronous messages in the middle of a result -----------------------------------------


async def test_notice_without_subscriber_is_logged_and_result_is_intact(
    caplog: pytest.LogCaptureFixture,
) -> None:
    noisy = FakeQuery(
        PEOPLE.sql,
        columns=PEOPLE.columns,
        rows=PEOPLE.rows,
        inject={5: [notice_response("relation is getting big", severity="WARNING")]},
    )
    caplog.set_level(logging.INFO, logger="trio_pg")
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[noisy]) as fake, open_fake_connection(fake) as conn:
            assert await conn.fetch(PEOPLE.sql) == EXPECTED_PEOPLE
    logged = [r for r in caplog.records if r.name == "trio_pg"]
    assert any("relation is getting big" in r.getMessage() for r in logged)
    assert any("WARNING" in r.getMessage() for r in logged)


async def test_parameter_status_in_the_middle_of_a_result_updates_parameters() -> None:
    changing = FakeQuery(
        PEOPLE.sql,
        columns=PEOPLE.columns,
        rows=PEOPLE.rows,
        inject={20: [parameter_status("application_name", "renamed")]},
    )
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[changing]) as fake, open_fake_connection(fake) as conn:
            assert conn.parameters["application_name"] != "renamed"
            assert await conn.fetch(PEOPLE.sql) == EXPECTED_PEOPLE
            assert conn.parameters["application_name"] == "renamed"


# -- values the codec cannot decode ----------------------------------------------------------


async def test_undecodable_value_raises_interface_error_naming_the_column() -> None:
    broken = FakeQuery(
        "SELECT id, name FROM broken",
        columns=[("id", INT4), ("name", TEXT)],
        rows=[[1, "fine"], [2, b"\xff\xfe not utf-8"], [3, "after"]],
    )
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[broken, ECHO]) as fake,
            open_fake_connection(fake) as conn,
        ):
            with pytest.raises(InterfaceError, match="'name'") as info:
                await conn.fetch(broken.sql)
            assert "text" in str(info.value)
            # The rest of that request was discarded; the connection is in step.
            assert await conn.fetchval(ECHO.sql, 9) == 9
            assert not conn.is_closed
            assert conn.statistics().pending_requests == 0


# -- aclose ------------------------------------------------------------------------------------


async def test_aclose_sends_terminate_and_is_idempotent() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[ECHO]) as fake, open_fake_connection(fake) as conn:
            assert await conn.fetchval(ECHO.sql, 1) == 1
            await conn.aclose()
            assert conn.is_closed
            session = await fake.session()
            await session.terminated.wait()
            assert session.received[-1].type == b"X"
            await conn.aclose()
            assert fake.count(b"X") == 1
            with pytest.raises(ConnectionLostError, match="aclose"):
                await conn.fetchval(ECHO.sql, 1)


async def test_aclose_fails_pending_requests_with_connection_lost() -> None:
    hanging = FakeQuery("SELECT hang()", columns=[("v", INT4)], hang=True)
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[hanging]) as fake, open_fake_connection(fake) as conn:
            errors: list[BaseException] = []

            async def waiter() -> None:
                try:
                    await conn.fetch(hanging.sql)
                except ConnectionLostError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                nursery.start_soon(waiter)
                await fake.wait_until(lambda: fake.count(b"E") == 2)
                await conn.aclose()
            assert len(errors) == 2
            session = await fake.session()
            await session.terminated.wait()


async def test_aclose_from_an_already_cancelled_task_still_closes() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[ECHO]) as fake, open_fake_connection(fake) as conn:
            assert await conn.fetchval(ECHO.sql, 1) == 1
            with trio.CancelScope() as scope:
                scope.cancel()
                await conn.aclose()
            assert scope.cancelled_caught
            assert conn.is_closed
            session = await fake.session()
            await session.terminated.wait()
