"""The query methods of :class:`~trio_pg.Connection`: execute, fetch and friends.

Each method is one or two requests in the connection's FIFO:

* a statement not yet described costs one round trip for Parse + Describe + Sync
  (its parameter types come from the server's ParameterDescription, never from the
  Python values), cached per connection in an LRU;
* then Bind + Execute + Sync, with arguments encoded by the codec for each parameter's
  type and every result column asked for in binary where a binary decoder exists.

``execute(sql)`` without arguments uses the simple query protocol, so one string may
hold several statements.

A cached statement can go stale: DDL may change its result type ("cached plan must not
change result type") and ``DISCARD ALL``/``DEALLOCATE ALL`` drop it on the server. Both
are repaired transparently — the statement is described again and the call retried
once — when the connection is not inside a transaction block; inside one the error is
raised (the transaction has failed anyway) and the next call re-describes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final, cast

import trio

from trio_pg.cursor import Cursor, open_cursor
from trio_pg.errors import Error, InterfaceError, PostgresError, ProtocolError
from trio_pg.gate import Gate, takes_turn
from trio_pg.protocol import TransactionStatus, may_copy_in
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import (
    BindComplete,
    CommandComplete,
    CopyBothResponse,
    ErrorResponse,
    NoData,
    ParameterDescription,
    ParseComplete,
    RowDescription,
)
from trio_pg.record import Record
from trio_pg.statement import ColumnInfo, StatementInfo

if TYPE_CHECKING:
    from trio_pg.codecs import CodecRegistry
    from trio_pg.pending import PendingRequest
    from trio_pg.statement import StatementCache
    from trio_pg.streaming import StreamHost

__all__ = ["PreparedStatement", "QueryMixin"]

_MAX_ARGS: Final = f.MAX_PARAMETERS
_CLEARING_TAGS: Final = frozenset({"DISCARD ALL", "DEALLOCATE ALL"})
#: executemany streaming: executions in the first chunk, and the most in any chunk.
_FIRST_CHUNK: Final = 128
_MAX_CHUNK: Final = 4096


def _is_stale_statement(error: PostgresError) -> bool:
    if error.sqlstate == "26000":  # invalid_sql_statement_name: statement gone
        return True
    return error.sqlstate == "0A000" and "cached plan must not change result type" in (
        error.message
    )


def _check_arg_count(args: Sequence[object]) -> None:
    if len(args) > _MAX_ARGS:
        raise InterfaceError(
            f"a statement can have at most {_MAX_ARGS} parameters, got {len(args)} arguments; "
            "use an array parameter ($1::int[]) or COPY for large batches"
        )


class _Result:
    """What one executed request produced."""

    __slots__ = ("error", "rows", "tag")

    def __init__(self) -> None:
        self.rows: list[Record] = []
        self.tag = ""
        self.error: PostgresError | None = None


class QueryMixin:
    """Query methods, mixed into :class:`~trio_pg.Connection`."""

    if TYPE_CHECKING:
        _gate: Gate | None
        _codecs: CodecRegistry
        _cache: StatementCache
        _preparing: dict[str, trio.Event]

        @property
        def transaction_status(self) -> TransactionStatus: ...

        def _submit(
            self, data: bytes, *, boundaries: int = 1, simple: bool = False, barrier: bool = False
        ) -> PendingRequest: ...

        def _check_usable(self) -> None: ...

        def _next_statement_name(self) -> str: ...

        def _close_statement_later(self, info: StatementInfo) -> None: ...

        def _submit_unattended(self, data: bytes) -> None: ...

        def _submit_segment(self, sink: PendingRequest, data: bytes, *, more: bool) -> None: ...

        def _continue_segment(self, sink: PendingRequest, data: bytes, *, last: bool) -> None: ...

        def _new_pending(self) -> PendingRequest: ...

        def _core_idle(self) -> bool: ...

        def _shutdown(self, reason: Error) -> None: ...

    # -- public API ---------------------------------------------------------------------------

    @takes_turn
    async def execute(self, sql: str, *args: object) -> str:
        """Run a statement and return its command tag, such as ``"INSERT 0 1"``.

        Without arguments the simple query protocol is used: ``sql`` may hold several
        statements separated by semicolons, and the last command tag is returned.

        Raises:
            PostgresError: The server reported an error (its SQLSTATE subclass).
            InterfaceError: Wrong argument count or a value its parameter cannot take;
                raised before anything is sent.
            ConnectionLostError: The connection broke.

        Cancelling the call abandons the statement (and cancels it on the server when
        it is the only one in flight); the connection stays usable.
        """
        if not args:
            return await self._simple_query(sql)
        result = await self._execute_cached(sql, args)
        return result.tag

    @takes_turn
    async def fetch(self, sql: str, *args: object) -> list[Record]:
        """Run a query and return all its rows.

        Raises:
            PostgresError: The server reported an error.
            InterfaceError: Wrong argument count or an unencodable value.
            ConnectionLostError: The connection broke.
        """
        return (await self._execute_cached(sql, args)).rows

    @takes_turn
    async def fetchrow(self, sql: str, *args: object) -> Record | None:
        """Run a query and return its first row, or None when it returns no rows."""
        rows = (await self._execute_cached(sql, args)).rows
        return rows[0] if rows else None

    @takes_turn
    async def fetchval(self, sql: str, *args: object, column: int | str = 0) -> Any:
        """Run a query and return one value of its first row (None when no rows)."""
        rows = (await self._execute_cached(sql, args)).rows
        return rows[0][column] if rows else None

    @takes_turn
    async def executemany(self, sql: str, args: Iterable[Sequence[object]]) -> None:
        """Run a statement once per argument sequence, all in one pipelined round trip.

        The executions share one Sync: they succeed or fail together (an implicit
        transaction when not already in one). On an otherwise idle connection outside
        a transaction block, a long batch is encoded and sent in growing chunks, so the
        server starts on the first rows while the rest are encoded.

        Raises:
            PostgresError: An execution failed; none of them took effect.
            InterfaceError: An argument sequence did not fit the statement; none of
                them took effect, and an enclosing transaction block is still usable.
        """
        await self._run_many(sql, args)

    @takes_turn
    async def fetchmany(self, sql: str, args: Iterable[Sequence[object]]) -> list[Record]:
        """:meth:`executemany` that returns the rows of every execution, in order.

        As asyncpg's ``fetchmany``: ``await conn.fetchmany("SELECT $1::int * 2",
        [(1,), (2,)])`` returns ``[(2,), (4,)]`` as Records. Raises as :meth:`executemany`.
        """
        return await self._run_many(sql, args)

    @takes_turn
    async def prepare(self, sql: str) -> PreparedStatement:
        """Describe ``sql`` as a named prepared statement owned by the caller.

        The statement lives until :meth:`PreparedStatement.close` or the connection
        closes; it is not part of the statement cache.
        """
        self._check_usable()
        name = self._next_statement_name() if self._cache.size > 0 else ""
        info = await self._describe(sql, name)
        return PreparedStatement(self, info)

    # -- statements ----------------------------------------------------------------------------

    async def _statement(self, sql: str) -> StatementInfo:
        """The described statement for ``sql``: from the cache, or described now."""
        while True:
            info = self._cache.get(sql)
            if info is not None:
                return info
            if self._cache.size <= 0:
                return await self._describe(sql, "")
            busy = self._preparing.get(sql)
            if busy is not None:
                # Another task is describing the same SQL: share its round trip.
                await busy.wait()
                continue
            done = self._preparing[sql] = trio.Event()
            try:
                info = await self._describe(sql, self._next_statement_name())
                self._cache.put(info)
                return info
            finally:
                del self._preparing[sql]
                done.set()

    async def _describe(self, sql: str, name: str) -> StatementInfo:
        """Parse + Describe + Sync: learn parameter types and row shape from the server."""
        data = f.parse(name, sql) + f.describe("S", name) + f.sync()
        pending = self._submit(data)
        try:
            return await self._read_description(pending, sql, name)
        except PostgresError:
            raise  # Parse failed: no statement was created
        except BaseException:
            if name:
                # Cancelled after Parse may have run: do not leave the statement behind.
                self._submit_unattended(f.close("S", name) + f.sync())
            raise

    async def _read_description(
        self, pending: PendingRequest, sql: str, name: str
    ) -> StatementInfo:
        param_oids: tuple[int, ...] = ()
        row_description: RowDescription | None = None
        error: PostgresError | None = None
        try:
            while batch := await pending.next_batch():
                for msg in batch:
                    if isinstance(msg, ParameterDescription):
                        param_oids = msg.type_oids
                    elif isinstance(msg, RowDescription):
                        row_description = msg
                    elif isinstance(msg, ErrorResponse):
                        error = PostgresError.from_fields(msg.fields)
                    elif isinstance(msg, NoData):
                        row_description = None
        finally:
            # Cancelled, or a decoding error: the rest of the results are discarded.
            pending.abandon()
        if error is not None:
            raise error
        columns = row_description.columns if row_description is not None else None
        return StatementInfo(sql, name, param_oids, columns, self._codecs)

    def _retry_stale(self, info: StatementInfo, error: PostgresError) -> bool:
        """Forget a stale cached statement; True when the call may be retried now."""
        if not _is_stale_statement(error):
            return False
        if error.sqlstate == "26000":
            self._cache.clear()
        else:
            self._cache.discard(info)
            self._close_statement_later(info)
        return self.transaction_status is TransactionStatus.IDLE

    # -- execution ------------------------------------------------------------------------------

    async def _execute_cached(self, sql: str, args: Sequence[object]) -> _Result:
        _check_arg_count(args)
        return await self._run_cached(sql, lambda info: self._execute(info, args))

    async def _run_cached(
        self, sql: str, run: Callable[[StatementInfo], Awaitable[_Result]]
    ) -> _Result:
        """``run`` the cached statement for ``sql``; once more if it had gone stale.

        Raises:
            PostgresError: What the server reported (after the one retry, if any).
        """
        for attempt in range(2):
            info = await self._statement(sql)
            result = await run(info)
            if result.error is None:
                return result
            if attempt == 0 and self._retry_stale(info, result.error):
                continue
            raise result.error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _execute(self, info: StatementInfo, args: Sequence[object]) -> _Result:
        data = info.execute_message(args) + f.sync()
        return await self._run_request(info, data)

    async def _run_many(self, sql: str, args: Iterable[Sequence[object]]) -> list[Record]:
        """executemany/fetchmany: the rows of every execution (rows are rarely wanted)."""
        batches = [tuple(a) for a in args]
        if batches and max(map(len, batches)) > _MAX_ARGS:
            _check_arg_count(max(batches, key=len))
        return (await self._run_cached(sql, lambda info: self._execute_many(info, batches))).rows

    async def _execute_many(
        self, info: StatementInfo, batches: list[tuple[object, ...]]
    ) -> _Result:
        if not batches:
            await trio.lowlevel.checkpoint()
            return _Result()
        if len(batches) > _FIRST_CHUNK and self._may_stream(info):
            pending = await self._submit_in_chunks(info, batches)
        else:
            data = info.execute_many_message(batches) + f.sync()
            pending = self._submit(data, barrier=info.may_copy_in)
        return await self._gather(info, pending, many=True)

    def _may_stream(self, info: StatementInfo) -> bool:
        """Whether a batch may be sent before all of it is encoded.

        An argument sequence that fails to encode after the first chunk went out ends
        the batch with a failing message instead, which rolls back the implicit
        transaction. Inside a transaction block that would fail the whole transaction,
        so only an idle connection streams: nothing in flight, no transaction, and no
        block holding it (a pipeline's helper tasks may send segments meanwhile, and
        only one request may be sent in parts at a time). Calls through a block's
        ConnectionView (no gate) never stream.
        """
        gate = self._gate
        return (
            gate is not None
            and not gate.held
            and self._core_idle()
            and self.transaction_status is TransactionStatus.IDLE
            and not info.may_copy_in
        )

    async def _submit_in_chunks(
        self, info: StatementInfo, batches: list[tuple[object, ...]]
    ) -> PendingRequest:
        """Submit the executions as one request sent in growing chunks."""
        pending = self._new_pending()
        self._submit_segment(pending, info.execute_many_message(batches[:_FIRST_CHUNK]), more=True)
        start = size = _FIRST_CHUNK
        try:
            while start < len(batches):
                # The writer sends the last chunk while this task encodes the next.
                await trio.lowlevel.checkpoint()
                size = min(size * 2, _MAX_CHUNK)
                data = info.execute_many_message(batches[start : start + size])
                start += size
                last = start >= len(batches)
                self._continue_segment(pending, data + f.sync() if last else data, last=last)
        except BaseException:
            # Cancelled, or an argument that does not fit: what was sent is rolled back.
            pending.abandon()
            raise
        return pending

    async def _run_request(self, info: StatementInfo, data: bytes) -> _Result:
        """Submit an extended-protocol request and gather its rows, tag and error."""
        return await self._gather(info, self._submit(data, barrier=info.may_copy_in))

    async def _gather(
        self, info: StatementInfo, pending: PendingRequest, *, many: bool = False
    ) -> _Result:
        """Gather a submitted request's rows, tag and error.

        ``many``: the request holds many executions (``executemany``), whose tags are
        not returned, so their BindComplete and ordinary CommandComplete are dropped in
        one pass instead of being absorbed one by one.
        """
        result = _Result()
        rows = result.rows
        others: list[object] = []
        try:
            while batch := await pending.next_batch():
                if many:
                    batch = [
                        m
                        for m in batch
                        if m.__class__ is not BindComplete
                        and m.__class__ is not ParseComplete
                        and (m.__class__ is not CommandComplete or m.tag in _CLEARING_TAGS)
                    ]
                try:
                    info.decode_rows(batch, rows, others)
                except ProtocolError as exc:
                    # The server's rows do not fit its own description: out of step.
                    self._shutdown(exc)
                    raise
                if others:
                    self._absorb(others, result)
                    others.clear()
        finally:
            # Cancelled, or a decoding error: the rest of the results are discarded.
            pending.abandon()
        return result

    def _absorb(self, messages: list[object], result: _Result) -> None:
        for msg in messages:
            if isinstance(msg, CommandComplete):
                result.tag = msg.tag
                if msg.tag in _CLEARING_TAGS:
                    self._cache.clear()
            elif isinstance(msg, ErrorResponse) and result.error is None:
                result.error = PostgresError.from_fields(msg.fields)
            elif isinstance(msg, CopyBothResponse):
                # The core answered with CopyDone; the caller's abandon drains the rest.
                raise InterfaceError(
                    "the server started COPY BOTH (streaming replication), which trio_pg "
                    "does not support; use a replication client for replication commands"
                )

    async def _simple_query(self, sql: str) -> str:
        """Query message: several statements allowed; returns the last command tag."""
        self._check_usable()
        pending = self._submit(f.query(sql), simple=True, barrier=may_copy_in(sql))
        result = _Result()
        try:
            while batch := await pending.next_batch():
                self._absorb([m for m in batch if m.__class__ is not bytes], result)
        finally:
            # Cancelled, or a decoding error: the rest of the results are discarded.
            pending.abandon()
        if result.error is not None:
            raise result.error
        return result.tag


class PreparedStatement:
    """A named prepared statement on one connection (:meth:`Connection.prepare`)."""

    def __init__(self, conn: QueryMixin, info: StatementInfo) -> None:
        self._conn = conn
        self._info = info

    @property
    def _gate(self) -> Gate | None:
        # Executions queue at the gate of whatever made the statement: the connection,
        # or the view a block yielded (which has none).
        return self._conn._gate

    @property
    def sql(self) -> str:
        """The statement's SQL text."""
        return self._info.sql

    @property
    def parameter_types(self) -> tuple[str, ...]:
        """The type names of the statement's parameters, as the server described them."""
        return self._info.param_type_names

    @property
    def parameter_oids(self) -> tuple[int, ...]:
        """The type OIDs of the statement's parameters."""
        return self._info.param_oids

    @property
    def columns(self) -> tuple[ColumnInfo, ...]:
        """Result columns: ``ColumnInfo(name, type_oid, type_name)`` each."""
        return self._info.columns

    async def _run(self, args: Sequence[object]) -> _Result:
        if self._info.closed:
            raise InterfaceError("the prepared statement is closed")
        _check_arg_count(args)
        conn = self._conn
        for attempt in range(2):
            result = await conn._execute(self._info, args)
            if result.error is None:
                return result
            stale = attempt == 0 and _is_stale_statement(result.error)
            if stale and conn.transaction_status is TransactionStatus.IDLE:
                # DISCARD ALL or DDL made it stale: describe it again under a new name.
                name = conn._next_statement_name() if self._info.name else ""
                self._info = await conn._describe(self._info.sql, name)
                continue
            raise result.error
        raise AssertionError("unreachable")  # pragma: no cover

    @takes_turn
    async def fetch(self, *args: object) -> list[Record]:
        """Execute with ``args`` and return all rows."""
        return (await self._run(args)).rows

    @takes_turn
    async def fetchrow(self, *args: object) -> Record | None:
        """Execute with ``args`` and return the first row, or None."""
        rows = (await self._run(args)).rows
        return rows[0] if rows else None

    @takes_turn
    async def fetchval(self, *args: object, column: int | str = 0) -> Any:
        """Execute with ``args`` and return one value of the first row (None if no rows)."""
        rows = (await self._run(args)).rows
        return rows[0][column] if rows else None

    @takes_turn
    async def execute(self, *args: object) -> str:
        """Execute with ``args`` and return the command tag."""
        return (await self._run(args)).tag

    def cursor(
        self, *args: object, prefetch: int = 1000
    ) -> AbstractAsyncContextManager[Cursor]:
        """Stream the statement's rows through a portal (see ``Connection.cursor``).

        Raises:
            InterfaceError: The statement is closed, or ``prefetch`` is not positive.
        """
        if self._info.closed:
            raise InterfaceError("the prepared statement is closed")
        host = cast("StreamHost", self._conn)
        return open_cursor(host, self._info.sql, self._info, args, prefetch)

    async def close(self) -> None:
        """Deallocate the statement on the server. Idempotent."""
        info = self._info
        if not info.closed and info.name:
            self._conn._close_statement_later(info)
        info.closed = True
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<PreparedStatement {self._info.sql!r}>"
