"""Pipeline blocks: statements queued without waiting, resolved as tickets.

Theory of operation
-------------------
``async with conn.pipeline() as p`` holds the connection (:mod:`trio_pg.gate`) and
yields a :class:`Pipeline`. Its queue methods are synchronous: each encodes its
arguments (when the statement's parameter types are known) and appends a
:class:`~trio_pg.ticket.Ticket` to the *unsent* queue; ``p.sync()`` appends a segment
boundary. Nothing is written until something needs it, and then everything queued goes
in one write (protocol-flow.html#PROTOCOL-FLOW-PIPELINING):

* each finished segment (ended by ``sync()``) is one request on the connection, its
  statements' Bind/Execute messages and one Sync;
* the unfinished last segment is sent as an *open* request ending with Flush instead
  of Sync, so the server returns results without ending the segment's implicit
  transaction; later parts of it are appended to that request, the last with the Sync.
  While it is open nothing else is written on the connection (the core holds it back).

What needs it: awaiting a ticket not yet sent, ``sync()`` when all it ends is encoded,
leaving the block (which ends the last segment), and a statement the block's own task
runs through ``conn`` (a gate hook: it ends the current segment first, so program order
is wire order).

Statements whose parameter types are unknown (not in the statement cache) are
described before their executions are encoded: for new segments in one request of
Parse/Describe for each and one Sync (one round trip for the whole batch; should one
fail, those after it are described again); for the open segment inside it (Parse/Describe/Flush, see
:class:`~trio_pg.ticket.Probe`), as a Sync there would end the segment. A statement
that cannot be described or encoded is sent as a poison message so its segment fails
at that point, just as if the server had refused it (:data:`~trio_pg.ticket.POISON`).

Leaving normally ends the last segment, waits for every segment, and raises the first
error no task awaited. Leaving by an exception or cancellation abandons the rest:
unsent statements are dropped, sent segments' results are discarded by the connection
(an open segment is ended with an error, so its unfinished implicit transaction rolls
back), and the connection stays usable.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Final

import trio

from trio_pg.errors import (
    Error,
    InterfaceError,
    PipelineAbortedError,
    PostgresError,
    ProtocolError,
)
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import ErrorResponse, NoData, ParameterDescription, RowDescription
from trio_pg.queries import _check_arg_count
from trio_pg.statement import StatementInfo
from trio_pg.ticket import (
    EXECUTE,
    FETCH,
    FETCHROW,
    FETCHVAL,
    MANY,
    POISON,
    Probe,
    Segment,
    Ticket,
    fresh_error,
)

if TYPE_CHECKING:
    from trio_pg.connection import Connection
    from trio_pg.gate import Gate
    from trio_pg.record import Record

__all__ = ["Pipeline", "PipelineMixin"]

_SYNC: Final = f.sync()
_FLUSH: Final = f.flush()
_COPY: Final = re.compile(r"copy", re.IGNORECASE)
_STDIN: Final = re.compile(r"stdin", re.IGNORECASE)
_OPEN: Final = "open"
_ENDING: Final = "ending"
_CLOSED: Final = "closed"

Queued = Ticket[Any] | None  # None: a segment boundary (sync())


def _check_sql(sql: object) -> None:
    if not isinstance(sql, str):
        raise InterfaceError(f"the SQL must be a str, got {type(sql).__name__}")
    if "\x00" in sql:
        raise InterfaceError("the SQL contains a NUL character, which PostgreSQL cannot take")
    if _COPY.search(sql) and _STDIN.search(sql):
        # The server would wait for COPY data inside the segment; copy_in() provides it.
        raise InterfaceError(
            "COPY ... FROM STDIN cannot be pipelined; use conn.copy_in() outside the pipeline"
        )


def _encode(info: StatementInfo, kind: int, args: Any) -> bytes:
    if kind == MANY:
        return b"".join([info.execute_message(batch) for batch in args])
    return info.execute_message(args)


class Pipeline:
    """Statements sent without waiting for each other's results; see :meth:`Connection.pipeline`.

    The queue methods (``execute``, ``fetch``, ``fetchrow``, ``fetchval``,
    ``executemany``) are synchronous and return a :class:`~trio_pg.ticket.Ticket`. They
    may be called from any task while the block is open.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._state = _OPEN
        self._unsent: list[Queued] = []
        self._open: Segment | None = None  # the segment sent in parts, not yet ended
        self._probes: dict[str, Probe] = {}  # statements described inside it
        self._segments: list[Segment] = []
        self._tickets: list[Ticket[Any]] = []
        self._described: dict[str, StatementInfo] = {}
        self._waiting: set[str] = set()  # SQL queued before its description is known
        self._checked: set[str] = set()  # SQL that passed _check_sql
        self._new: list[StatementInfo] = []  # for the statement cache, once all is sent
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"<trio_pg.Pipeline {self._state} tickets={len(self._tickets)}>"

    # -- queueing ---------------------------------------------------------------------------

    def execute(self, sql: str, *args: object) -> Ticket[str]:
        """Queue a statement; its ticket gives the command tag, such as ``"INSERT 0 1"``.

        Unlike ``conn.execute``, one statement per call even without arguments (the
        extended protocol is used for every pipelined statement).

        Raises:
            InterfaceError: Wrong argument count or an unencodable value (raised here
                when the statement's parameter types are known, else by its ticket),
                COPY FROM STDIN, or the block has ended.
        """
        return self._queue(sql, args, EXECUTE)

    def fetch(self, sql: str, *args: object) -> Ticket[list[Record]]:
        """Queue a query; its ticket gives all its rows. Raises as :meth:`execute`."""
        return self._queue(sql, args, FETCH)

    def fetchrow(self, sql: str, *args: object) -> Ticket[Record | None]:
        """Queue a query; its ticket gives its first row, or None. Raises as :meth:`execute`."""
        return self._queue(sql, args, FETCHROW)

    def fetchval(self, sql: str, *args: object, column: int | str = 0) -> Ticket[Any]:
        """Queue a query; its ticket gives one value of its first row (None if no rows)."""
        return self._queue(sql, args, FETCHVAL, column)

    def executemany(self, sql: str, args: Iterable[Sequence[object]]) -> Ticket[None]:
        """Queue one execution per argument sequence, in the current segment.

        The ticket gives None, or the first execution's error (the segment then fails).
        """
        batches = [tuple(batch) for batch in args]
        return self._queue(sql, batches, MANY)

    def sync(self) -> None:
        """End the current segment (a Sync): what follows runs even if it failed.

        The statements of one segment share an implicit transaction (or run in the
        enclosing transaction block): after an error, the rest of the segment is skipped.
        An empty segment sends nothing.
        """
        self._check_open()
        unsent = self._unsent
        if (unsent and unsent[-1] is not None) or (not unsent and self._open is not None):
            unsent.append(None)
            self._send_if_ready()

    def _queue(self, sql: str, args: Any, kind: int, column: int | str = 0) -> Ticket[Any]:
        conn = self._conn
        # _check_open, inlined: this runs once per statement of batches of thousands.
        if self._state is not _OPEN or conn._close_reason is not None or conn._closing:
            self._check_open()
        if sql.__class__ is not str or sql not in self._checked:
            _check_sql(sql)
            self._checked.add(sql)
        if kind == MANY:
            for batch in args:
                _check_arg_count(batch)
        else:
            _check_arg_count(args)
        ticket: Ticket[Any] = Ticket(self, sql, kind, column)
        info = self._described.get(sql)
        if info is None or info.closed:
            # Queued before and still undescribed: no need to look in the cache again.
            info = None if sql in self._waiting else self._lookup(sql)
        if info is None:
            self._waiting.add(sql)
            ticket._args = args  # encoded once the server has described the statement
        else:
            ticket._data = _encode(info, kind, args)  # InterfaceError before queueing
            ticket._info = info
        self._tickets.append(ticket)
        if kind == MANY:
            if not args:
                ticket._sent = True
                ticket._finish()
                return ticket
            ticket._remaining = len(args)
        self._unsent.append(ticket)
        return ticket

    def _check_open(self) -> None:
        if self._state is not _OPEN:
            raise InterfaceError(
                "the pipeline block has ended: queue statements inside "
                "`async with conn.pipeline() as p:`"
            )
        self._conn._check_usable()

    def _lookup(self, sql: str) -> StatementInfo | None:
        info = self._described.get(sql)
        if info is None or info.closed:
            info = self._conn._cache.get(sql)
        return info if info is not None and not info.closed else None

    # -- sending ----------------------------------------------------------------------------

    async def _flush(self, *, close: bool = False) -> None:
        """Send everything queued; ``close`` ends the current segment first."""
        async with self._lock:
            if close and self._state is not _CLOSED:
                unsent = self._unsent
                if (unsent and unsent[-1] is not None) or (not unsent and self._open is not None):
                    unsent.append(None)
            try:
                while self._unsent and self._state is not _CLOSED:
                    if self._open is not None:
                        await self._send_open_part()
                    else:
                        await self._send_segments()
            except Error as exc:
                self._fail_unsent(exc)
                raise
            if not self._unsent:
                self._cache_statements()

    def _fail_unsent(self, error: Error) -> None:
        """Sending failed (the connection is lost, say): nothing unsent will ever run."""
        for ticket in self._tickets:
            if not ticket._sent and not ticket._done:
                ticket._fail(fresh_error(error), root=True)
        self._unsent.clear()

    def _send_if_ready(self) -> None:
        """Send what is queued now, when that needs no round trip first."""
        if self._lock.locked():
            return  # a task is sending: it sends this too, in order
        unsent = self._unsent
        try:
            if self._open is not None:
                cut = unsent.index(None) + 1 if None in unsent else len(unsent)
                if self._open.failed is not None or not self._missing(unsent[:cut]):
                    self._emit_open(cut)
                if self._open is not None:
                    return
            if not self._missing(self._unsent):
                items, self._unsent = self._unsent, []
                self._emit_segments(items, {})
        except Error as exc:
            self._fail_unsent(exc)
            raise

    def _missing(self, items: Iterable[Queued], skip: Iterable[str] = ()) -> list[str]:
        """The SQL of queued statements whose parameter types are unknown, once each."""
        found: dict[str, None] = {}
        known: set[str] = set()
        for ticket in items:
            if ticket is None or ticket._data is not None:
                continue
            sql = ticket._sql
            if sql in found or sql in known or sql in skip:
                continue
            if self._lookup(sql) is None:
                found[sql] = None
            else:
                known.add(sql)
        return list(found)

    def _prepare(
        self, ticket: Ticket[Any], errors: dict[str, Error], info: StatementInfo | None = None
    ) -> None:
        """Encode a ticket queued before its statement was described (or poison it).

        ``info``, when given, is the statement's current description (saves a lookup).
        """
        if ticket._data is not None:
            return
        error = errors.get(ticket._sql)
        if error is None:
            if info is None:
                info = self._lookup(ticket._sql)
            assert info is not None
            try:
                kind, args = ticket._kind, ticket._args
                data = info.execute_message(args) if kind != MANY else _encode(info, kind, args)
                ticket._data = data
                ticket._info = info
            except InterfaceError as exc:
                error = exc
        if error is not None:
            ticket._local = error
            ticket._data = POISON
            ticket._remaining = 1
        ticket._args = None

    async def _send_segments(self) -> None:
        """Describe what is unknown (one round trip), then send every queued segment."""
        errors: dict[str, Error] = {}
        while missing := self._missing(self._unsent, errors):
            errors.update(await self._describe(missing))
            if self._state is _CLOSED:
                return
        items, self._unsent = self._unsent, []
        self._emit_segments(items, errors)

    def _emit_segments(self, items: list[Queued], errors: dict[str, Error]) -> None:
        self._waiting.clear()
        group: list[Ticket[Any]] = []
        parts: list[bytes] = []
        # The last statement looked up: a batch usually repeats one statement many times.
        last_sql: str | None = None
        last_info: StatementInfo | None = None
        for ticket in items:
            if ticket is None:
                if group:
                    self._submit(group, parts, more=False)
                group, parts = [], []
                continue
            data = ticket._data
            if data is None:
                sql = ticket._sql
                if sql != last_sql and sql not in errors:
                    last_sql, last_info = sql, self._lookup(sql)
                self._prepare(ticket, errors, last_info if sql == last_sql else None)
                data = ticket._data
                assert data is not None
            group.append(ticket)
            parts.append(data)
        if group:
            self._submit(group, parts, more=True)

    def _submit(self, group: list[Ticket[Any]], parts: list[bytes], *, more: bool) -> None:
        conn = self._conn
        segment = Segment(conn._abandon, group, self._statements_dropped)
        parts.append(_FLUSH if more else _SYNC)
        conn._submit_segment(segment, b"".join(parts), more=more)
        for ticket in group:
            ticket._sent = True
        self._segments.append(segment)
        if more:
            self._open = segment

    async def _send_open_part(self) -> None:
        """Send the queued part of the open segment, describing unknown statements in it."""
        segment = self._open
        assert segment is not None
        unsent = self._unsent
        cut = unsent.index(None) + 1 if None in unsent else len(unsent)
        missing = self._missing(unsent[:cut]) if segment.failed is None else []
        if missing:
            conn = self._conn
            new: list[Probe] = []
            for sql in missing:
                if sql not in self._probes:
                    name = conn._next_statement_name() if conn._cache.size > 0 else ""
                    self._probes[sql] = probe = Probe(sql, name)
                    new.append(probe)
            if new:
                data = b"".join([probe.message() for probe in new])
                conn._continue_segment(segment, data + _FLUSH, last=False)
                segment.add(new)
            for sql in missing:
                probe = self._probes[sql]
                await probe.event.wait()
                if probe.error is None and self._probes.get(sql) is probe:
                    # Used once: should the statement be evicted later, it is described anew.
                    del self._probes[sql]
                    info = StatementInfo(
                        sql, probe.name, probe.param_oids, probe.columns, conn._codecs
                    )
                    self._described[sql] = info
                    if info.name:
                        self._new.append(info)
            return  # queued meanwhile may have changed the open part: look again
        self._emit_open(cut)

    def _emit_open(self, cut: int) -> None:
        """Send the first ``cut`` queued items, all encodable, as the open segment's next part."""
        segment = self._open
        assert segment is not None
        head = self._unsent[:cut]
        self._waiting.clear()
        tickets = [t for t in head if t is not None]
        closing = bool(head) and head[-1] is None
        parts: list[bytes] = []
        if segment.failed is not None:
            # The server skips everything up to the Sync: send only that.
            for ticket in tickets:
                probe = self._probes.get(ticket._sql)
                error = probe.error if probe is not None and not probe.taken else None
                if ticket._data is None and isinstance(error, Error):
                    # The statement whose description failed the segment reports why.
                    assert probe is not None
                    probe.taken = True
                    ticket._local = error
        else:
            for ticket in tickets:
                self._prepare(ticket, {})
                assert ticket._data is not None
                parts.append(ticket._data)
        if closing:
            parts.append(_SYNC)
        elif parts:
            parts.append(_FLUSH)
        if parts:
            self._conn._continue_segment(segment, b"".join(parts), last=closing)
        del self._unsent[:cut]
        segment.add(tickets)  # after a failure they are aborted now
        for ticket in tickets:
            ticket._sent = True
        if closing:
            self._open = None
            self._probes.clear()

    async def _describe(self, sqls: list[str]) -> dict[str, Error]:
        """Describe statements in one request (Parse/Describe each, one Sync).

        Returns the statement that failed, if one did; the server skips those after it,
        which stay unknown and are described again by the caller.
        """
        conn = self._conn
        named = conn._cache.size > 0
        names = [conn._next_statement_name() if named else "" for _ in sqls]
        parts = [f.parse(n, s) + f.describe("S", n) for n, s in zip(names, sqls, strict=True)]
        pending = conn._submit(b"".join(parts) + _SYNC)
        errors: dict[str, Error] = {}
        done = 0
        oids: tuple[int, ...] = ()
        try:
            while batch := await pending.next_batch():
                for msg in batch:
                    cls = msg.__class__
                    if cls is ParameterDescription:
                        oids = msg.type_oids  # type: ignore[union-attr]
                    elif cls is RowDescription or cls is NoData:
                        sql = sqls[done]
                        columns = msg.columns if cls is RowDescription else None  # type: ignore[union-attr]
                        info = StatementInfo(sql, names[done], oids, columns, conn._codecs)
                        self._described[sql] = info
                        if named:
                            self._new.append(info)
                        done += 1
                        oids = ()
                    elif cls is ErrorResponse:
                        errors[sqls[done]] = PostgresError.from_fields(msg.fields)  # type: ignore[union-attr]
                        done = len(sqls)  # the rest was skipped: nothing was created
        except BaseException:
            # Cancelled (or lost) after Parse may have run: leave no statement behind.
            for name in names[done:]:
                if name:
                    conn._submit_unattended(f.close("S", name) + _SYNC)
            raise
        finally:
            pending.abandon()
        if done < len(sqls):
            # Every statement is described or one failed: anything else is out of step.
            broken = ProtocolError("the server did not describe every pipelined statement")
            conn._shutdown(broken)
            raise broken
        return errors

    def _cache_statements(self) -> None:
        # Only now: an eviction closes a statement, and that Close must come after every
        # Bind of it already sent.
        new, self._new = self._new, []
        cache = self._conn._cache
        for info in new:
            if not info.closed:
                cache.put(info)

    def _statements_dropped(self) -> None:
        """DISCARD ALL / DEALLOCATE ALL ran: the server has no prepared statement left."""
        self._conn._cache.clear()
        self._described.clear()
        self._new.clear()

    # -- leaving ----------------------------------------------------------------------------

    async def _before_holder_call(self) -> None:
        """Gate hook: a statement through ``conn`` ends the current segment and follows it."""
        if self._state is _OPEN:
            await self._flush(close=True)

    async def _finish(self) -> None:
        """Leave normally: end the last segment, wait for all, raise an unseen error."""
        try:
            self._state = _ENDING
            await self._flush(close=True)
            for segment in self._segments:
                await segment.done_event.wait()  # type: ignore[union-attr]
        except BaseException:
            self._abandon()
            raise
        self._state = _CLOSED
        conn = self._conn
        first: Ticket[Any] | None = None
        for ticket in self._tickets:
            error = ticket._error
            if isinstance(error, PostgresError) and ticket._info is not None:
                conn._retry_stale(ticket._info, error)  # forget statements gone stale
            if first is None and ticket._root and not ticket._observed and error is not None:
                first = ticket
        if first is not None:
            first._observed = True
            assert first._error is not None
            raise fresh_error(first._error)

    def _abandon(self) -> None:
        """Leave by an exception or cancellation: drop what is unsent, discard the rest."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        error = PipelineAbortedError(
            "the pipeline block was left by an exception or a cancellation before this "
            "statement's result arrived"
        )
        for ticket in self._unsent:
            if ticket is not None:
                ticket._fail(error, root=False)
        self._unsent.clear()
        for segment in self._segments:
            if not segment.done:
                segment.drop(error, root=False)
                segment.abandon()
        self._open = None
        # Statements described here exist on the server: keep them (a Close of any the
        # cache evicts comes after the abandoned requests). Those described inside the
        # abandoned segment may exist: close them (closing a missing one is no error).
        self._cache_statements()
        for probe in self._probes.values():
            if probe.name:
                self._conn._submit_unattended(f.close("S", probe.name) + _SYNC)
        self._probes.clear()


@asynccontextmanager
async def _pipeline_block(conn: Connection, gate: Gate | None) -> AsyncIterator[Pipeline]:
    conn._check_usable()
    hold: AbstractAsyncContextManager[None] = gate.hold() if gate is not None else nullcontext()
    async with hold:
        pipeline = Pipeline(conn)
        previous = gate.set_holder_hook(pipeline._before_holder_call) if gate else None
        try:
            try:
                yield pipeline
            except BaseException:
                pipeline._abandon()
                raise
            await pipeline._finish()
        finally:
            if gate is not None:
                gate.set_holder_hook(previous)


class PipelineMixin:
    """``pipeline()``, mixed into Connection and ConnectionView."""

    if TYPE_CHECKING:
        _gate: Gate | None

        @property
        def _conn(self) -> Connection: ...

    def pipeline(self) -> AbstractAsyncContextManager[Pipeline]:
        """A pipeline block: ``async with conn.pipeline() as p: t = p.fetch(...)``.

        Statements queued on ``p`` are sent without waiting for each other's results,
        coalesced into few writes; each queue call returns a
        :class:`~trio_pg.ticket.Ticket` to ``await`` (from any task) for its result.
        ``p.sync()`` ends a segment: the statements of one segment share an implicit
        transaction, so after an error the rest of the segment is skipped
        (:class:`~trio_pg.errors.PipelineAbortedError`) and rolled back, while later
        segments run. Statements whose parameter types are not yet known cost one round
        trip for the whole batch, to describe them.

        The block holds the connection: other tasks' calls on ``conn`` wait until it
        ends. A statement the block's own task runs through ``conn`` ends the current
        segment and runs after everything queued before it.

        Leaving the block normally ends the last segment, waits for every ticket, and
        raises the first error no task awaited, so a rolled-back segment is never
        silent. Leaving it by an exception or cancellation abandons what is
        outstanding: unsent statements never run, sent ones finish on the server and
        their results are discarded (an unfinished segment is rolled back), and the
        connection stays usable.

        Returns:
            The block, an async context manager yielding a :class:`Pipeline`.
        """
        return _pipeline_block(self._conn, self._gate)
