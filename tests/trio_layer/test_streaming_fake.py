"""COPY and cursors against the scripted fake server: the wire, backpressure, refusals.

What a real server cannot show: the exact messages a cursor sends, the reader stopping
while a COPY TO STDOUT consumer is slow, the producer stopping while the network is
stalled, and COPY BOTH (replication) being refused without losing step.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_pg
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    FakeSession,
    isolate_environment,
    open_fake_server,
    open_memory_connection,
)
from tests.trio_layer.fakestreaming import (
    GatedStream,
    copy_both_response,
    copy_data,
    copy_done,
    copy_in_response,
    copy_out_response,
    open_gated_connection,
    portal_suspended,
)
from tests.trio_layer.fakewire import (
    INT4,
    bind_complete,
    cancel_error,
    close_complete,
    command_complete,
    data_row,
    error_response,
    ready_for_query,
)
from trio_pg.copy import CHUNK_SIZE, OUTPUT_LIMIT
from trio_pg.errors import InterfaceError

TIMEOUT = 10
TWO = FakeQuery("SELECT 2", columns=[("two", INT4)], rows=[[2]])
FIVE = FakeQuery("SELECT n FROM five", columns=[("n", INT4)])
BLOCK = b"x" * 65536


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


async def _receive_copy(session: FakeSession) -> tuple[int, bytes]:
    """Read CopyData up to CopyDone or CopyFail: (bytes of data, the final message type)."""
    total = 0
    while True:
        msg = await session.receive()
        assert msg is not None
        if msg.type == b"d":
            total += len(msg.body)
        else:
            assert msg.type in (b"c", b"f"), msg
            return total, msg.type


async def _serve_dropping_copy_data(session: FakeSession) -> None:
    """The default script, dropping copy messages that arrive after COPY IN ended.

    PostgreSQL accepts and ignores CopyData, CopyDone and CopyFail outside COPY IN.
    """
    while group := await session.receive_group():
        await session.answer([m for m in group if m.type not in (b"d", b"c", b"f")])


# -- COPY TO STDOUT -----------------------------------------------------------------------


async def test_copy_out_reader_waits_for_a_slow_consumer() -> None:
    async def script(session: FakeSession) -> None:
        await session.expect(b"Q")
        chunks = [copy_data(BLOCK) for _ in range(200)]  # 13 MB, all sent at once
        await session.send(copy_out_response(), *chunks, copy_done(), command_complete("COPY 200"))
        await session.send(ready_for_query())
        await session.serve()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=script, queries=[TWO]) as server,
            open_memory_connection(server) as conn,
        ):
            async with conn.copy_out("COPY big TO STDOUT") as chunks:
                total = len(await chunks.__anext__())
                await trio.testing.wait_all_tasks_blocked()
                # The reader stopped: at most a batch waiting and one being read.
                assert conn.statistics().bytes_received < 1_000_000
                async for chunk in chunks:
                    total += len(chunk)
                assert chunks.row_count == 200
            assert total == 200 * len(BLOCK)
            assert await conn.fetchval("SELECT 2") == 2


async def test_leaving_copy_out_early_cancels_and_discards_the_rest() -> None:
    async def script(session: FakeSession) -> None:
        await session.expect(b"Q")
        await session.send(copy_out_response(), *[copy_data(BLOCK) for _ in range(20)])
        await session._interrupt.wait()
        await session._react_to_cancel()
        await session.send(cancel_error(), ready_for_query())
        await session.serve()

    with trio.fail_after(TIMEOUT):
        async with open_fake_server(script=script, queries=[TWO]) as server:
            async with open_memory_connection(server) as conn:
                async with conn.copy_out("COPY big TO STDOUT") as chunks:
                    async for _ in chunks:
                        break
                assert await conn.fetchval("SELECT 2") == 2
            (cancel,) = server.cancels
            assert cancel.matched
            assert cancel.outstanding == 1


# -- COPY FROM STDIN -------------------------------------------------------------------------


def _copy_in_script(rows_tag: bool = True) -> object:
    async def script(session: FakeSession) -> None:
        while group := await session.receive_group():
            if group[0].type != b"Q" or group[0].sql != "COPY t FROM STDIN":
                await session.answer(group)
                continue
            await session.send(copy_in_response())
            total, end = await _receive_copy(session)
            if end == b"c":
                await session.send(command_complete(f"COPY {total}"), ready_for_query())
            else:
                failed = error_response("57014", "COPY from stdin failed")
                await session.send(failed, ready_for_query())

    return script


def _stalling_source(gate: GatedStream, blocks: int, produced: list[int]) -> Iterator[bytes]:
    """Data that stalls the network once the server asked for it (the first block)."""
    gate.close_gate()
    for _ in range(blocks):
        produced[0] += len(BLOCK)
        yield BLOCK


async def test_copy_in_producer_waits_while_the_network_is_stalled() -> None:
    produced = [0]
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=_copy_in_script()) as server,
            open_gated_connection(server) as (conn, gate),
        ):
            result: list[int] = []
            source = _stalling_source(gate, 100, produced)

            async def copy() -> None:
                result.append(await conn.copy_in("COPY t FROM STDIN", source))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(copy)
                await server.wait_until(lambda: server.count(b"Q") == 1)
                await trio.testing.wait_all_tasks_blocked()
                # Writer stuck in a write, producer waiting for room in the buffer.
                assert not gate.open.is_set()
                assert conn._core.output_buffered <= OUTPUT_LIMIT + CHUNK_SIZE + 5
                # One write in flight and the bounded buffer: far from the 6.5 MB.
                assert produced[0] <= OUTPUT_LIMIT + 3 * CHUNK_SIZE
                gate.open.set()
            assert result == [100 * len(BLOCK)]


async def test_cancelled_while_the_network_is_stalled_sends_copy_fail_after_the_data() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=_copy_in_script(), queries=[TWO]) as server,
            open_gated_connection(server) as (conn, gate),
        ):
            source = _stalling_source(gate, 1000, [0])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.copy_in, "COPY t FROM STDIN", source)
                await server.wait_until(lambda: server.count(b"Q") == 1)
                await trio.testing.wait_all_tasks_blocked()
                assert not gate.open.is_set()
                nursery.cancel_scope.cancel()
            gate.open.set()
            assert await conn.fetchval("SELECT 2") == 2
            session = server.sessions[0]
            types = [m.type for m in session.received if m.type in (b"d", b"c", b"f")]
            assert types[-1] == b"f"
            assert set(types[:-1]) == {b"d"}
            assert not server.cancels


async def test_copy_in_stops_producing_once_the_server_reports_an_error() -> None:
    pulled = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield BLOCK

    async def script(session: FakeSession) -> None:
        await session.expect(b"Q")
        await session.send(copy_in_response())
        await session.expect(b"d")
        bad = error_response("22P02", "invalid input syntax", W="COPY t, line 1")
        await session.send(bad, ready_for_query())
        await _serve_dropping_copy_data(session)

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=script, queries=[TWO]) as server,
            open_memory_connection(server) as conn,
        ):
            with pytest.raises(trio_pg.errors.InvalidTextRepresentationError) as info:
                await conn.copy_in("COPY t FROM STDIN", source())
            assert info.value.where == "COPY t, line 1"
            assert pulled < 100
            assert await conn.fetchval("SELECT 2") == 2


# -- COPY BOTH ------------------------------------------------------------------------------


async def test_copy_both_is_refused_and_the_connection_stays_in_step() -> None:
    async def script(session: FakeSession) -> None:
        await session.expect(b"Q")
        await session.send(copy_both_response(), copy_data(b"w" + bytes(24)))
        await session.expect(b"c")  # the client ends the stream
        await session.send(copy_done(), command_complete("START_STREAMING"), ready_for_query())
        await session.serve()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=script, queries=[TWO]) as server,
            open_memory_connection(server) as conn,
        ):
            with pytest.raises(InterfaceError, match=r"COPY BOTH.*replication"):
                await conn.execute("START_REPLICATION SLOT s LOGICAL 0/0")
            assert await conn.fetchval("SELECT 2") == 2


# -- cursors ----------------------------------------------------------------------------


def _rows(*values: int) -> list[bytes]:
    return [data_row([struct.pack("!i", v)]) for v in values]


async def test_cursor_sends_execute_with_row_limit_and_flush_then_close_and_sync() -> None:
    async def script(session: FakeSession) -> None:
        await session.answer(await session.receive_group())  # Parse, Describe, Sync
        for batch in ([1, 2], [3, 4]):
            if batch[0] == 1:
                await session.expect(b"B")
            execute = await session.expect(b"E")
            assert execute.body == b"\x00" + struct.pack("!i", 2)  # unnamed portal, 2 rows
            await session.expect(b"H")
            first = [bind_complete()] if batch[0] == 1 else []
            await session.send(*first, *_rows(*batch), portal_suspended())
        await session.expect(b"E")
        await session.expect(b"H")
        await session.send(*_rows(5), command_complete("SELECT 5"))
        close = await session.expect(b"C")
        assert close.body == b"P\x00"
        await session.expect(b"S")
        await session.send(close_complete(), ready_for_query())
        await session.serve()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=script, queries=[FIVE, TWO]) as server,
            open_memory_connection(server) as conn,
        ):
            async with conn.cursor("SELECT n FROM five", prefetch=2) as rows:
                assert [r[0] async for r in rows] == [1, 2, 3, 4, 5]
            assert await conn.fetchval("SELECT 2") == 2


async def test_cursor_error_in_a_flushed_execute_is_followed_by_sync() -> None:
    async def script(session: FakeSession) -> None:
        await session.answer(await session.receive_group())
        await session.expect(b"B")
        await session.expect(b"E")
        await session.expect(b"H")
        await session.send(bind_complete(), *_rows(1), portal_suspended())
        await session.expect(b"E")
        await session.expect(b"H")
        await session.send(error_response("22012", "division by zero"))
        await session.expect(b"S")  # the server discards everything until Sync
        await session.send(ready_for_query())
        await session.serve()

    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(script=script, queries=[FIVE, TWO]) as server,
            open_memory_connection(server) as conn,
        ):
            seen: list[int] = []

            async def read_all() -> None:
                async with conn.cursor("SELECT n FROM five", prefetch=1) as rows:
                    async for row in rows:
                        seen.append(row[0])

            with pytest.raises(trio_pg.errors.DivisionByZeroError):
                await read_all()
            assert seen == [1]
            assert await conn.fetchval("SELECT 2") == 2
