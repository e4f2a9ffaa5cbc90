"""Server-side cursors: a portal fetched ``prefetch`` rows at a time.

Theory of operation
-------------------
Entering ``conn.cursor(sql, *args, prefetch=n)`` takes the connection's gate, describes
the statement (through the statement cache) and sends Bind + Execute(portal, n) + Flush
as one FLUSH request (protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY): the server runs the
portal until it has sent n rows and answers PortalSuspended, leaving the extended query
open. Each later batch is Execute(portal, n) + Flush, sent only once the previous batch
has been consumed, so at most n rows are held. CommandComplete means the portal is
exhausted.

Outside a transaction block the portal is the unnamed one, alive because no Sync is
sent (a Sync would end the implicit transaction that holds it, and any Bind would
replace it): the connection refuses other statements until the cursor closes. Inside a
transaction block the portal is named and lives until the transaction ends, so other
statements may run between batches.

Closing sends Close(portal) + Sync. An error ends the extended query at once (the core
sends the Sync the server waits for), which also drops an unnamed portal. A block left
by an exception or cancellation sends the closing request without waiting for it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Final

import trio

from trio_pg.errors import InterfaceError, PostgresError, ProtocolError
from trio_pg.protocol import Boundary, TransactionStatus
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import (
    CommandComplete,
    EmptyQueryResponse,
    ErrorResponse,
    PortalSuspended,
)

if TYPE_CHECKING:
    from trio_pg.record import Record
    from trio_pg.statement import ColumnInfo, StatementInfo
    from trio_pg.streaming import StreamHost

__all__ = ["Cursor", "hold_connection", "open_cursor"]

_FLUSH: Final = f.flush()
_SYNC: Final = f.sync()


def hold_connection(conn: StreamHost) -> AbstractAsyncContextManager[object]:
    """Hold ``conn``'s gate for a block; a view (no gate) is already inside one."""
    gate = conn._gate
    return gate.hold() if gate is not None else nullcontext()


class _State(enum.Enum):
    #: A batch is being fetched (or was cut short): the portal may exist.
    FETCHING = "fetching"
    #: PortalSuspended: more rows may follow.
    SUSPENDED = "suspended"
    #: CommandComplete: no more rows; the portal exists until closed.
    EXHAUSTED = "exhausted"
    #: An error ended the extended query; an unnamed portal is gone.
    FAILED = "failed"
    #: The block ended.
    CLOSED = "closed"


class Cursor:
    """The rows of a ``conn.cursor()`` block: an async iterator of :class:`Record`.

    Iterating fetches the next batch when the current one is used up; at most
    ``prefetch`` rows are held.
    """

    def __init__(
        self,
        conn: StreamHost,
        sql: str,
        statement: StatementInfo | None,
        args: tuple[object, ...],
        prefetch: int,
    ) -> None:
        self._conn = conn
        self._sql = sql
        self._statement = statement
        self._info = statement
        self._args = args
        self._prefetch = prefetch
        self._portal = ""
        self._guarded = False
        self._state = _State.FETCHING
        self._rows: list[Record] = []
        self._index = 0

    @property
    def columns(self) -> tuple[ColumnInfo, ...]:
        """The result columns: ``ColumnInfo(name, type_oid, type_name)`` each."""
        return self._info.columns if self._info is not None else ()

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> Record:
        """The next row; fetches a batch when the held ones are used up.

        Rows already held are returned without a schedule point (only a cancellation
        check), so iterating costs little per row; each fetch is a full checkpoint.

        Raises:
            PostgresError: Fetching the next batch failed.
            InterfaceError: The cursor's block has ended.
        """
        while True:
            rows = self._rows
            index = self._index
            if index < len(rows):
                await trio.lowlevel.checkpoint_if_cancelled()
                self._index = index + 1
                return rows[index]
            if self._state is not _State.SUSPENDED:
                if self._state is _State.CLOSED:
                    raise InterfaceError("the cursor's block has ended; open a new cursor")
                await trio.lowlevel.checkpoint()
                raise StopAsyncIteration
            self._rows = []  # let the used batch go before the next one arrives
            self._index = 0
            await self._fetch(f.execute(self._portal, self._prefetch) + _FLUSH)

    # -- the block ------------------------------------------------------------------------

    async def _start(self) -> None:
        conn = self._conn
        for attempt in range(2):
            info = self._statement
            if info is None:
                info = await conn._statement(self._sql)
            # Named portal inside a transaction block (it outlives Syncs there); the
            # unnamed portal of an unsynced extended query outside one.
            in_block = conn.transaction_status is not TransactionStatus.IDLE
            portal = conn._next_statement_name() if in_block else ""
            data = info.execute_message(self._args, self._prefetch, portal) + _FLUSH
            self._info = info
            self._portal = portal
            if not in_block:
                conn._open_portal(self)
                self._guarded = True
            try:
                await self._fetch(data)
                return
            except PostgresError as error:
                stale = attempt == 0 and self._statement is None
                if stale and conn._retry_stale(info, error):
                    continue
                raise

    async def _fetch(self, data: bytes) -> None:
        """Send one FLUSH request and take its rows as the current batch."""
        conn = self._conn
        info = self._info
        assert info is not None
        self._state = _State.FETCHING
        pending = conn._submit_stream(data, boundary=Boundary.FLUSH, owner=self)
        rows: list[Record] = []
        others: list[object] = []
        try:
            while batch := await pending.next_batch():
                try:
                    info.decode_rows(batch, rows, others)
                except ProtocolError as exc:
                    conn._shutdown(exc)  # rows that do not fit their description
                    raise
        finally:
            # Cancelled, or a decoding error: the core discards the rest of the batch.
            pending.abandon()
        error: PostgresError | None = None
        for msg in others:
            cls = msg.__class__
            if cls is PortalSuspended:
                self._state = _State.SUSPENDED
            elif cls is CommandComplete or cls is EmptyQueryResponse:
                self._state = _State.EXHAUSTED
            elif cls is ErrorResponse and error is None:
                assert isinstance(msg, ErrorResponse)
                error = PostgresError.from_fields(msg.fields)
        if error is not None:
            self._state = _State.FAILED
            self._release_guard()
            raise error
        self._rows = rows
        self._index = 0

    def _release_guard(self) -> None:
        # The error's Sync ended the extended query: nothing is left open to protect.
        if self._guarded and not self._portal:
            self._guarded = False
            self._conn._close_portal()

    def _closing_request(self) -> bytes:
        if self._state is _State.FAILED and not self._portal:
            return b""  # the unnamed portal went with the error's Sync
        return f.close("P", self._portal) + _SYNC

    async def _close(self) -> None:
        """Close the portal and wait for the server (the block ended normally).

        The wait is shielded, bounded by the connection's ``cleanup_grace``: the Sync may
        commit an implicit transaction, whose error must not be lost, and a closing
        request must not be dropped by a cancellation before it is written.
        """
        conn = self._conn
        closing = self._closing_request()
        self._state = _State.CLOSED
        self._rows = []
        if self._guarded:
            self._guarded = False
            pending = conn._close_portal(closing, attend=bool(closing))
        elif closing:
            pending = conn._submit(closing)
        else:
            pending = None
        error: PostgresError | None = None
        if pending is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(conn._cleanup_grace):
                try:
                    while batch := await pending.next_batch():
                        for msg in batch:
                            if isinstance(msg, ErrorResponse) and error is None:
                                error = PostgresError.from_fields(msg.fields)
                finally:
                    pending.abandon()
        await trio.lowlevel.checkpoint()
        if error is not None:
            raise error

    def _abort(self) -> None:
        """The block is left by an exception: close without waiting for anything."""
        if self._state is _State.CLOSED:
            return
        closing = self._closing_request()
        self._state = _State.CLOSED
        self._rows = []
        conn = self._conn
        if self._guarded:
            self._guarded = False
            conn._close_portal(closing, attend=False)
        elif closing:
            conn._submit_unattended(closing)

    def __repr__(self) -> str:
        sql = self._info.sql if self._info is not None else self._sql
        return f"<trio_pg.Cursor {sql!r} {self._state.value} prefetch={self._prefetch}>"


def open_cursor(
    conn: StreamHost,
    sql: str,
    statement: StatementInfo | None,
    args: Sequence[object],
    prefetch: int,
) -> AbstractAsyncContextManager[Cursor]:
    """The block of ``conn.cursor()`` / ``PreparedStatement.cursor()``; checks arguments first.

    Raises:
        InterfaceError: ``prefetch`` is not a positive int, or too many arguments.
    """
    if prefetch.__class__ is not int or prefetch < 1:
        raise InterfaceError(f"prefetch must be a positive int (rows per fetch), got {prefetch!r}")
    if len(args) > f.MAX_PARAMETERS:
        raise InterfaceError(
            f"a statement can have at most {f.MAX_PARAMETERS} parameters, got {len(args)}"
        )
    return _cursor_block(conn, Cursor(conn, sql, statement, tuple(args), prefetch))


@asynccontextmanager
async def _cursor_block(conn: StreamHost, cursor: Cursor) -> AsyncIterator[Cursor]:
    async with hold_connection(conn):
        try:
            await cursor._start()
            yield cursor
        except BaseException:
            cursor._abort()
            raise
        await cursor._close()
