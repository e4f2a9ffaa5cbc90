"""Cursors, COPY and function calls (mixed into Connection).

The work happens in role modules: :mod:`trio_pg.cursor` (portals fetched a batch at a
time), :mod:`trio_pg.copy` (COPY FROM STDIN and TO STDOUT), :mod:`trio_pg.copy_binary`
(the binary COPY tuple format and table introspection) and :mod:`trio_pg.fastpath`
(the FunctionCall message). This module is the public face, and :class:`StreamHost`
names what those modules use of a connection (or of the view a block yields).

Cursors and COPY hold the connection for their block (see :mod:`trio_pg.gate`): other
tasks' calls wait until the block ends; inside a transaction block they run in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, cast

from trio_pg.copy import CopyOutStream, CopySource, copy_in, open_copy_out
from trio_pg.copy_binary import copy_records
from trio_pg.cursor import Cursor, open_cursor
from trio_pg.fastpath import call_function
from trio_pg.gate import takes_turn

if TYPE_CHECKING:
    from trio_pg.codecs import CodecRegistry
    from trio_pg.errors import Error, PostgresError
    from trio_pg.gate import Gate
    from trio_pg.pending import PendingRequest, WakeSignal
    from trio_pg.protocol import Boundary, ClientConnection, TransactionStatus
    from trio_pg.queries import _Result
    from trio_pg.statement import StatementInfo

__all__ = ["CopyOutStream", "CopySource", "Cursor", "StreamHost", "StreamingMixin"]


class StreamHost(Protocol):
    """What the streaming modules use of a Connection or ConnectionView."""

    _codecs: CodecRegistry
    _core: ClientConnection
    _writer_signal: WakeSignal
    _functions: dict[object, object]
    _cleanup_grace: float

    @property
    def _gate(self) -> Gate | None: ...

    @property
    def transaction_status(self) -> TransactionStatus: ...

    def _check_usable(self) -> None: ...

    def _submit(
        self, data: bytes, *, boundaries: int = 1, simple: bool = False, barrier: bool = False
    ) -> PendingRequest: ...

    def _submit_stream(
        self,
        data: bytes,
        *,
        boundary: Boundary = ...,
        simple: bool = False,
        copy_in: bool = False,
        barrier: bool = False,
        owner: object = None,
    ) -> PendingRequest: ...

    def _submit_unattended(self, data: bytes) -> None: ...

    def _open_portal(self, owner: object) -> None: ...

    def _close_portal(
        self, closing: bytes = b"", *, attend: bool = False
    ) -> PendingRequest | None: ...

    def _set_throttled(self, pending: PendingRequest | None) -> None: ...

    async def _wait_for_output_room(self, limit: int) -> None: ...

    def _next_statement_name(self) -> str: ...

    def _shutdown(self, reason: Error) -> None: ...

    async def _statement(self, sql: str) -> StatementInfo: ...

    async def _describe(self, sql: str, name: str) -> StatementInfo: ...

    async def _execute_cached(self, sql: str, args: Sequence[object]) -> _Result: ...

    def _retry_stale(self, info: StatementInfo, error: PostgresError) -> bool: ...


def _host(obj: object) -> StreamHost:
    return cast("StreamHost", obj)


class StreamingMixin:
    """Cursors, COPY and function calls, mixed into :class:`~trio_pg.Connection`."""

    if TYPE_CHECKING:
        _gate: Gate | None

    def cursor(
        self, sql: str, *args: object, prefetch: int = 1000
    ) -> AbstractAsyncContextManager[Cursor]:
        """Stream a query's rows through a portal, ``prefetch`` rows at a time.

        ``async with conn.cursor(sql, *args) as rows: async for row in rows: ...``.
        Entering binds the portal and fetches the first batch (query errors are raised
        there); each later batch is one Execute with a row limit, so at most
        ``prefetch`` rows are held. The block holds the connection.

        Outside a transaction block the cursor uses the unnamed portal of an extended
        query left open (no BEGIN is sent): until the block ends, other statements on
        this connection raise :class:`~trio_pg.errors.InterfaceError`. Inside a
        transaction block it uses a named portal, so the block may run other statements.

        Args:
            sql: The query; ``$1, $2, ...`` placeholders take ``args``.
            *args: Parameter values, encoded by the type the server gives each one.
            prefetch: Rows fetched per round trip (at least 1).

        Raises:
            PostgresError: The query failed (on entering, or while fetching).
            InterfaceError: Wrong arguments, or ``prefetch`` below 1.

        Leaving the block early, or by an exception or cancellation, closes the portal;
        the connection stays usable.
        """
        return open_cursor(_host(self), sql, None, args, prefetch)

    async def copy_in(
        self, sql: str, source: bytes | Iterable[bytes] | AsyncIterable[bytes]
    ) -> int:
        """Run ``COPY ... FROM STDIN`` with data from ``source``; return the rows copied.

        The data is in the format the statement names (text, CSV or binary). It is sent
        as produced, with the connection's bounded write buffer pushing back on the
        producer. The call holds the connection.

        Args:
            sql: One ``COPY table [(columns)] FROM STDIN [WITH (...)]`` statement.
            source: ``bytes``, or an iterable or async iterable of ``bytes`` chunks (any
                size; chunks need not end at row boundaries).

        Returns:
            The row count the server reports.

        Raises:
            PostgresError: The server rejected the data (a bad row, a constraint): the
                COPY is rolled back; ``where`` names the input line.
            InterfaceError: ``sql`` is not a COPY FROM STDIN, or a chunk is not bytes.

        An exception from ``source``, or cancellation while data is being sent, sends
        CopyFail: the table is left unchanged, the connection stays usable, and the
        exception propagates. Cancelled after the last data went out, the call sends a
        CancelRequest; the COPY then either completed or left the table unchanged.
        """
        return await copy_in(_host(self), sql, source)

    async def copy_records_to_table(
        self,
        table: str,
        *,
        records: Iterable[Sequence[object]] | AsyncIterable[Sequence[object]],
        columns: Sequence[str] | None = None,
        schema: str | None = None,
    ) -> int:
        """Copy Python tuples into a table with binary COPY; return the rows copied.

        Column types come from the table (introspected); each value is encoded by the
        connection's codec for its column's type. Identifiers are quoted, so names are
        taken exactly as written (``"Orders"`` is not ``orders``).

        Args:
            table: The table name.
            records: Rows as sequences of values, one per column (None for NULL).
            columns: The columns the rows fill, in order; default all columns that can
                be written (not generated ones), in table order.
            schema: The table's schema; default the search path.

        Raises:
            PostgresError: The table does not exist, or the server rejected a row.
            InterfaceError: A row has the wrong length, a value does not fit its
                column's type, or a column's type has no binary codec.

        Failure or cancellation while records are being sent leaves the table unchanged,
        as for :meth:`copy_in`.
        """
        return await copy_records(_host(self), table, records, columns, schema)

    def copy_out(self, sql: str) -> AbstractAsyncContextManager[CopyOutStream]:
        """Run ``COPY ... TO STDOUT`` and stream its data as ``bytes`` chunks.

        ``async with conn.copy_out(sql) as chunks: async for chunk in chunks: ...``.
        Chunks hold whole rows as PostgreSQL sends them, several per chunk; they are
        read as consumed, so memory stays bounded (the connection stops reading until
        the consumer takes the last chunk). The block holds the connection.

        Raises:
            PostgresError: The statement failed (on entering) or the COPY failed while
                streaming (raised by the iteration).
            InterfaceError: ``sql`` is not a COPY TO STDOUT.

        Leaving the block before the end stops the transfer (a CancelRequest, then the
        rest is discarded); the connection stays usable. Inside a transaction block that
        cancellation fails the transaction, as any cancelled statement does.
        """
        return open_copy_out(_host(self), sql)

    @takes_turn
    async def call_function(self, function: int | str, *args: object) -> Any:
        """Call a server function with the FunctionCall message; return its result.

        Args:
            function: The function's OID, or its name as ``regproc`` accepts it
                (``"sqrt"``, ``"pg_catalog.sqrt"``) or with argument types as
                ``regprocedure`` accepts it (``"sqrt(float8)"``). A name is resolved
                once per connection; an overloaded name is resolved as PostgreSQL
                resolves ``name($1, ...)`` with untyped arguments.
            *args: The arguments, encoded by the codec of each declared argument type.

        Returns:
            The result decoded by the codec of the function's result type (None for
            NULL or ``void``).

        Raises:
            PostgresError: The function does not exist or failed.
            InterfaceError: Wrong argument count or an unencodable argument, or an
                overloaded name PostgreSQL cannot resolve without types.
        """
        return await call_function(_host(self), function, args)
