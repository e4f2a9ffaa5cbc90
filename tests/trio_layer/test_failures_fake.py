"""Connection loss, FATAL errors and malformed server bytes, against the scripted fake.

Every failure becomes the connection's close reason: pending callers and later calls get
ConnectionLostError (or ProtocolError when the server broke the protocol), chained to the
cause, and ``open_connection`` raises only what its body raised.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

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
from tests.trio_layer.fakewire import (
    INT4,
    TEXT,
    command_complete,
    data_row,
    error_response,
    message,
)
from trio_pg.errors import AdminShutdownError, ConnectionLostError, Error, ProtocolError

TIMEOUT = 10

PAIRS = FakeQuery(
    "SELECT id, name FROM pairs",
    columns=[("id", INT4), ("name", TEXT)],
    rows=[[i, f"name {i}"] for i in range(10)],
)
ONE = FakeQuery("SELECT 1", columns=[("one", INT4)], rows=[[1]])
FATAL = error_response(
    "57P01", "terminating connection due to administrator command", severity="FATAL"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


Ending = Callable[[FakeSession, list[bytes]], Awaitable[None]]


def fail_during_result(
    ending: Ending, callers: int = 3
) -> Callable[[FakeSession], Awaitable[None]]:
    """A script: describe PAIRS, wait for every caller's execution, then ``ending``.

    ``ending`` gets the session and the complete answer to the first execution.
    """

    async def script(s: FakeSession) -> None:
        await s.answer(await s.receive_group())
        first = await s.receive_group()
        await s.server.wait_until(lambda: s.server.count(b"E") == callers)
        await ending(s, s.respond(first))
        await trio.sleep_forever()

    return script


async def gather_errors(conn: trio_pg.Connection, callers: int = 3) -> list[BaseException]:
    """Run ``callers`` concurrent fetches of PAIRS; return what each raised."""
    errors: list[BaseException] = []

    async def caller() -> None:
        try:
            await conn.fetch(PAIRS.sql)
        except Error as exc:
            errors.append(exc)
        else:
            pytest.fail("the fetch succeeded")

    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(caller)
    return errors


# -- connection loss -------------------------------------------------------------------


async def _half_a_result_then_close(s: FakeSession, answer: list[bytes]) -> None:
    await s.send(*answer[:5])  # BindComplete and four rows
    await s.close()


async def _half_a_result_then_reset(s: FakeSession, answer: list[bytes]) -> None:
    await s.send(*answer[:5])
    await s.close(reset=True)


async def _fatal_then_close(s: FakeSession, answer: list[bytes]) -> None:
    await s.send(*answer[:5], FATAL)
    await s.close()


async def test_server_closing_mid_result_fails_pending_and_later_calls() -> None:
    script = fail_during_result(_half_a_result_then_close)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            errors = await gather_errors(conn)
            assert len(errors) == 3
            for error in errors:
                assert isinstance(error, ConnectionLostError)
                assert "closed the connection" in str(error)
            assert conn.is_closed
            with pytest.raises(ConnectionLostError, match="closed the connection"):
                await conn.fetch(PAIRS.sql)


async def test_connection_reset_mid_result_is_chained_to_the_transport_error() -> None:
    script = fail_during_result(_half_a_result_then_reset)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            errors = await gather_errors(conn)
            assert len(errors) == 3
            for error in errors:
                assert isinstance(error, ConnectionLostError)
                assert isinstance(error.__cause__, trio.BrokenResourceError)
            with pytest.raises(ConnectionLostError) as info:
                await conn.fetch(PAIRS.sql)
            assert isinstance(info.value.__cause__, trio.BrokenResourceError)
            assert conn.is_closed


async def test_fatal_error_then_close_is_connection_lost_caused_by_the_server_error() -> None:
    script = fail_during_result(_fatal_then_close)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            errors = await gather_errors(conn)
            assert len(errors) == 3
            for error in errors:
                assert isinstance(error, ConnectionLostError)
                assert isinstance(error.__cause__, AdminShutdownError)
                assert "administrator command" in str(error)
            with pytest.raises(ConnectionLostError) as info:
                await conn.fetch(PAIRS.sql)
            assert isinstance(info.value.__cause__, AdminShutdownError)
            assert conn.is_closed


async def test_call_made_between_fatal_error_and_close_gets_connection_lost() -> None:
    closing = trio.Event()

    async def fatal_then_close_later(s: FakeSession) -> None:
        await s.send(FATAL)
        await closing.wait()
        await s.close()

    outcome: list[BaseException] = []

    async def late_caller(conn: trio_pg.Connection) -> None:
        try:
            await conn.fetch(ONE.sql)
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever it is
            outcome.append(exc)

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[ONE], script=fatal_then_close_later) as fake,
            open_memory_connection(fake) as conn,
        ):
            await trio.testing.wait_all_tasks_blocked()  # the FATAL has been read
            async with trio.open_nursery() as nursery:
                nursery.start_soon(late_caller, conn)
                await trio.testing.wait_all_tasks_blocked()
                closing.set()
            (error,) = outcome
            assert isinstance(error, ConnectionLostError), repr(error)
            assert isinstance(error.__cause__, AdminShutdownError)
            assert conn.is_closed


async def test_server_closing_in_the_middle_of_a_message_is_connection_lost() -> None:
    async def half_a_row_then_close(s: FakeSession, answer: list[bytes]) -> None:
        await s.send_raw(b"".join(answer[:3]) + answer[3][:7])
        await s.close()

    script = fail_during_result(half_a_row_then_close, callers=1)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            (error,) = await gather_errors(conn, callers=1)
            # A stream cut short is a lost connection, whatever byte it was cut at.
            assert isinstance(error, ConnectionLostError), repr(error)
            assert conn.is_closed


# -- open_connection raises only what its body raised ---------------------------------------


async def _garbage(s: FakeSession, answer: list[bytes]) -> None:
    await s.send_raw(b"\x00garbage")


ENDINGS = {
    "close": _half_a_result_then_close,
    "reset": _half_a_result_then_reset,
    "fatal": _fatal_then_close,
    "garbage": _garbage,
}


@pytest.mark.parametrize("ending", ENDINGS)
async def test_open_connection_block_ends_quietly_after_background_failure(ending: str) -> None:
    script = fail_during_result(ENDINGS[ending], callers=1)
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[PAIRS], script=script) as fake:
            async with trio_pg.open_connection(**fake.connect_kwargs()) as conn:
                with pytest.raises((ConnectionLostError, ProtocolError)):
                    await conn.fetch(PAIRS.sql)
            assert conn.is_closed


@pytest.mark.parametrize("ending", ENDINGS)
async def test_open_connection_block_raises_exactly_its_body_exception(ending: str) -> None:
    script = fail_during_result(ENDINGS[ending], callers=1)
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[PAIRS], script=script) as fake:

            async def body_raising_its_own_error() -> None:
                async with trio_pg.open_connection(**fake.connect_kwargs()) as conn:
                    try:
                        await conn.fetch(PAIRS.sql)
                    except Error:
                        raise KeyError("the body's own error") from None

            with pytest.raises(KeyError) as info:
                await body_raising_its_own_error()
            assert type(info.value) is KeyError


async def test_open_connection_block_raises_the_connection_error_it_let_through() -> None:
    script = fail_during_result(_fatal_then_close, callers=1)
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=[PAIRS], script=script) as fake:
            with pytest.raises(ConnectionLostError) as info:
                async with trio_pg.open_connection(**fake.connect_kwargs()) as conn:
                    await conn.fetch(PAIRS.sql)
            assert type(info.value) is ConnectionLostError


# -- malformed server bytes ---------------------------------------------------------------


async def _expect_protocol_error(fake: FakeServer, conn: trio_pg.Connection, match: str) -> None:
    errors = await gather_errors(conn)
    assert len(errors) == 3
    for error in errors:
        assert isinstance(error, ProtocolError), repr(error)
        assert match in str(error)
    assert conn.is_closed
    with pytest.raises(ProtocolError):
        await conn.fetch(PAIRS.sql)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (b"D" + struct.pack("!i", 2), "invalid message length"),
        (b"C" + struct.pack("!i", -5), "invalid message length"),
        (message(b"q", b"what is this"), "unknown backend message type"),
        (message(b"C", b"no terminating NUL"), "CommandComplete"),
    ],
    ids=["length-too-small", "length-negative", "unknown-type", "malformed-body"],
)
async def test_malformed_server_bytes_fail_every_waiter_with_protocol_error(
    bad: bytes, match: str
) -> None:
    async def rows_then_bad_bytes(s: FakeSession, answer: list[bytes]) -> None:
        await s.send(*answer[:4])
        await s.send_raw(bad)

    script = fail_during_result(rows_then_bad_bytes)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            await _expect_protocol_error(fake, conn, match)


async def test_data_row_with_wrong_column_count_is_a_protocol_error_closing_the_connection() -> (
    None
):
    async def row_with_three_columns(s: FakeSession, answer: list[bytes]) -> None:
        await s.send(*answer[:3], data_row([b"\x00\x00\x00\x01", b"x", b"extra"]), *answer[3:])

    script = fail_during_result(row_with_three_columns, callers=1)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake) as conn,
        ):
            (error,) = await gather_errors(conn, callers=1)
            assert isinstance(error, ProtocolError), repr(error)
            assert "columns" in str(error)
            # The server broke the protocol: the connection cannot be trusted any more.
            assert conn.is_closed
            with pytest.raises(ProtocolError):
                await conn.fetch(PAIRS.sql)


async def test_message_with_no_request_pending_is_a_protocol_error() -> None:
    async def stray_message_after_the_answer(s: FakeSession) -> None:
        await s.send(*s.respond(await s.receive_group()))  # describe
        await s.send(*s.respond(await s.receive_group()), command_complete("SELECT 0"))
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[ONE], script=stray_message_after_the_answer) as fake,
            open_memory_connection(fake) as conn,
        ):
            assert await conn.fetchval(ONE.sql) == 1
            await trio.testing.wait_all_tasks_blocked()
            assert conn.is_closed
            with pytest.raises(ProtocolError, match="no request pending"):
                await conn.fetchval(ONE.sql)


async def test_message_over_max_message_size_fails_before_its_body_arrives() -> None:
    async def huge_row_header(s: FakeSession, answer: list[bytes]) -> None:
        # Only the header of a 1 MB DataRow: a client waiting for the body would hang.
        await s.send(*answer[:2])
        await s.send_raw(b"D" + struct.pack("!i", 1_000_000))

    script = fail_during_result(huge_row_header)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[PAIRS], script=script) as fake,
            open_fake_connection(fake, max_message_size=4096) as conn,
        ):
            await _expect_protocol_error(fake, conn, "max_message_size")
