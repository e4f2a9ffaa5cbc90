"""COPY FROM STDIN and COPY TO STDOUT (protocol-flow.html#PROTOCOL-COPY).

Theory of operation
-------------------
``copy_in``: the statement goes as a simple Query registered with ``copy_in=True`` (a
barrier: nothing is written behind it). Once CopyInResponse arrives, the producer's
chunks are coalesced into CopyData messages of about 64 KiB and queued as control data
for the writer task. When more than 1 MiB waits for the writer, the producer waits until
the writer takes it: the connection's bounded write buffer. Then CopyDone, and the
server's ``COPY n``. A server error ends COPY IN on the server's side; the core then
takes no more data and the producer is not asked for more. An exception or cancellation
in the producer sends CopyFail, so the server rolls the COPY back.

``copy_out``: the statement goes as a simple Query, and the reader task is *throttled*
on its request: after delivering a batch it waits until the consumer has taken it, so at
most about two receive buffers are held and TCP pushes back on the server. Leaving the
block early abandons the request: the core offers it for a CancelRequest and discards
the rest of its messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Final, TypeAlias

import trio

from trio_pg.cursor import hold_connection
from trio_pg.errors import InterfaceError, PostgresError
from trio_pg.protocol import Request, may_copy_in
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import (
    BackendMessage,
    CommandComplete,
    CopyData,
    CopyInResponse,
    CopyOutResponse,
    ErrorResponse,
)

if TYPE_CHECKING:
    from trio_pg.pending import PendingRequest
    from trio_pg.streaming import StreamHost

__all__ = ["CopyOutStream", "CopySource", "copy_in", "open_copy_out"]

#: What ``copy_in`` reads: one bytes object, or chunks from an (async) iterable.
CopySource: TypeAlias = bytes | bytearray | memoryview | Iterable[bytes] | AsyncIterable[bytes]

#: CopyData messages are about this size (small chunks are coalesced).
CHUNK_SIZE: Final = 64 * 1024
#: COPY data queued for the writer beyond this makes the producer wait.
OUTPUT_LIMIT: Final = 1024 * 1024
_BYTES_TYPES: Final = (bytes, bytearray, memoryview)


def _error_in(messages: Iterable[object]) -> PostgresError | None:
    for msg in messages:
        if isinstance(msg, ErrorResponse):
            return PostgresError.from_fields(msg.fields)
    return None


def _row_count(messages: Iterable[object]) -> int:
    count = 0
    for msg in messages:
        if isinstance(msg, CommandComplete) and msg.tag.startswith("COPY"):
            count = int(msg.tag.rpartition(" ")[2] or 0)
    return count


# -- COPY FROM STDIN -----------------------------------------------------------------------


def _sync_chunks(source: CopySource) -> Iterator[object] | None:
    """The chunks of a bytes-like or synchronous source; None for an async one."""
    if isinstance(source, _BYTES_TYPES):
        view = memoryview(source).cast("B")
        return (view[i : i + CHUNK_SIZE] for i in range(0, len(view), CHUNK_SIZE))
    if isinstance(source, str):
        raise InterfaceError("copy_in() takes bytes, not str: encode the text first")
    if isinstance(source, AsyncIterable):
        return None
    if isinstance(source, Iterable):
        return iter(source)
    raise InterfaceError(
        f"copy_in() takes bytes or an iterable or async iterable of bytes, "
        f"not {type(source).__name__}"
    )


class _CopyWriter:
    """Coalesces a producer's chunks into CopyData messages, with backpressure."""

    __slots__ = ("_buffer", "_conn", "_request")

    def __init__(self, conn: StreamHost, request: Request) -> None:
        self._conn = conn
        self._request = request
        self._buffer = bytearray()

    async def write(self, chunk: object) -> bool:
        """Queue ``chunk``; False when the server takes no more data (it reported an error)."""
        if not isinstance(chunk, _BYTES_TYPES):
            raise InterfaceError(f"copy_in() data chunks must be bytes, not {type(chunk).__name__}")
        buffer = self._buffer
        if buffer or len(chunk) < CHUNK_SIZE:
            buffer += chunk
            if len(buffer) < CHUNK_SIZE:
                return True
            chunk = bytes(buffer)
            buffer.clear()
        return await self._send(chunk)

    async def flush(self) -> bool:
        """Send what is buffered."""
        if not self._buffer:
            return True
        data = bytes(self._buffer)
        self._buffer.clear()
        return await self._send(data)

    async def _send(self, data: bytes | bytearray | memoryview) -> bool:
        conn = self._conn
        core = conn._core
        if not core.send_copy_data(self._request, data):
            return False
        conn._writer_signal.set()
        if core.output_buffered > OUTPUT_LIMIT:
            await conn._wait_for_output_room(OUTPUT_LIMIT)
        else:
            # A schedule point per CopyData: the writer runs, and a synchronous producer
            # cannot starve the other tasks.
            await trio.lowlevel.checkpoint()
        return True


async def _feed(conn: StreamHost, request: Request, source: CopySource) -> None:
    writer = _CopyWriter(conn, request)
    chunks = _sync_chunks(source)
    if chunks is not None:
        for chunk in chunks:
            if not await writer.write(chunk):
                return
    else:
        assert isinstance(source, AsyncIterable)
        async for chunk in source:
            if not await writer.write(chunk):
                return
    await writer.flush()


async def _until_copy_in(pending: PendingRequest, seen: list[BackendMessage]) -> None:
    """Read until the server asks for data; raise if the request ends without asking."""
    while batch := await pending.next_batch():
        for i, msg in enumerate(batch):
            if msg.__class__ is CopyInResponse:
                seen.extend(batch[i + 1 :])
                return
            seen.append(msg)
    error = _error_in(seen)
    if error is not None:
        raise error
    raise InterfaceError(
        "copy_in() runs one COPY ... FROM STDIN statement; use execute() for others"
    )


def _fail_reason(exc: BaseException) -> str:
    if isinstance(exc, trio.Cancelled):
        return "the copy_in() call was cancelled"
    text = f"the data source raised {type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


async def copy_in(conn: StreamHost, sql: str, source: CopySource) -> int:
    """Run a COPY FROM STDIN fed from ``source``; see ``Connection.copy_in``."""
    _sync_chunks(source)  # reject a wrong source before anything is sent
    async with hold_connection(conn):
        pending = conn._submit_stream(f.query(sql), simple=True, copy_in=True)
        request = pending.request
        assert request is not None
        core = conn._core
        messages: list[BackendMessage] = []
        try:
            await _until_copy_in(pending, messages)
            await _feed(conn, request, source)
            if core.send_copy_done(request):
                conn._writer_signal.set()
            while batch := await pending.next_batch():
                messages.extend(batch)
        except BaseException as exc:
            # The server rolls the COPY back on CopyFail; no CancelRequest is needed.
            if core.send_copy_fail(request, _fail_reason(exc)):
                conn._writer_signal.set()
            raise
        finally:
            pending.abandon()
        error = _error_in(messages)
        if error is not None:
            raise error
        return _row_count(messages)


# -- COPY TO STDOUT ------------------------------------------------------------------------


class CopyOutStream:
    """The data of a ``conn.copy_out()`` block: an async iterator of ``bytes`` chunks.

    Attributes:
        binary: The COPY sends the binary format (else text or CSV).
        row_count: Rows copied, known once the iteration has ended.
    """

    def __init__(self, pending: PendingRequest) -> None:
        self._pending = pending
        self._first: list[bytes] = []
        self._error: PostgresError | None = None
        self._finished = False
        self.binary = False
        self.row_count: int | None = None

    def __aiter__(self) -> CopyOutStream:
        return self

    async def __anext__(self) -> bytes:
        """The next chunk of data.

        Raises:
            PostgresError: The COPY failed on the server while streaming.
            InterfaceError: The block has ended.
        """
        await trio.lowlevel.checkpoint()
        if self._first:
            data, self._first = self._first, []
            return data[0] if len(data) == 1 else b"".join(data)
        while not self._finished:
            batch = await self._pending.next_batch()
            if not batch:
                self._finished = True
                break
            data = self._absorb(batch)
            if data:
                return data[0] if len(data) == 1 else b"".join(data)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        raise StopAsyncIteration

    def _absorb(self, batch: list[BackendMessage]) -> list[bytes]:
        data: list[bytes] = []
        for msg in batch:
            if msg.__class__ is CopyData:
                assert isinstance(msg, CopyData)
                data.append(msg.data)
            elif isinstance(msg, CommandComplete):
                self.row_count = _row_count([msg])
            elif isinstance(msg, ErrorResponse) and self._error is None:
                self._error = PostgresError.from_fields(msg.fields)
        return data

    async def _start(self) -> None:
        """Read until CopyOutResponse; keep data that came with it for the first chunk."""
        seen: list[BackendMessage] = []
        while batch := await self._pending.next_batch():
            for i, msg in enumerate(batch):
                if isinstance(msg, CopyOutResponse):
                    self.binary = msg.format == 1
                    self._first = self._absorb(batch[i + 1 :])
                    return
                seen.append(msg)
        self._finished = True
        error = _error_in(seen)
        if error is not None:
            raise error
        raise InterfaceError(
            "copy_out() runs one COPY ... TO STDOUT statement; use fetch() for queries"
        )

    def __repr__(self) -> str:
        state = "finished" if self._finished else "streaming"
        return f"<trio_pg.CopyOutStream {state} binary={self.binary}>"


def open_copy_out(conn: StreamHost, sql: str) -> AbstractAsyncContextManager[CopyOutStream]:
    """The block of ``conn.copy_out()``."""
    return _copy_out_block(conn, sql)


@asynccontextmanager
async def _copy_out_block(conn: StreamHost, sql: str) -> AsyncIterator[CopyOutStream]:
    async with hold_connection(conn):
        pending = conn._submit_stream(f.query(sql), simple=True, barrier=may_copy_in(sql))
        conn._set_throttled(pending)
        try:
            stream = CopyOutStream(pending)
            await stream._start()
            yield stream
        finally:
            conn._set_throttled(None)
            # Left early: the core cancels the COPY on the server and drains the rest.
            pending.abandon()
