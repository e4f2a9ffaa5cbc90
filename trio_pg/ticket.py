"""Pipeline tickets, and the reader of a pipeline segment that resolves them.

Theory of operation
-------------------
A pipeline segment (the statements between two ``sync()`` calls, see
:mod:`trio_pg.pipeline`) is one request on the connection: its messages come back in
the order its statements were sent (protocol-flow.html#PROTOCOL-FLOW-PIPELINING).
:class:`Segment` is that request's result sink. The reader task hands it each batch of
messages, and it splits them between the segment's *items* in order, right there:

* a :class:`Ticket` (one statement, or an ``executemany`` batch of executions) takes
  ParseComplete/BindComplete, its DataRows (kept raw; decoded when awaited) and ends with
  CommandComplete or EmptyQueryResponse, once per execution;
* a :class:`Probe` (a statement described inside the segment, when its parameter types
  were unknown) takes ParseComplete, ParameterDescription, RowDescription or NoData;
* an ErrorResponse ends the current item with the server's error. The server then skips
  the rest of the segment up to its Sync, so every later item is *aborted* at once.

So results resolve in queue order, nothing is parked per statement, and any number of
tasks may await a ticket, any number of times: awaiting only waits for its resolution.
A ticket whose arguments could not be encoded is sent as a *poison* message (see
``POISON``) so the server fails the segment at that point, as if the statement had
failed there; the ticket reports its own error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

import trio

from trio_pg.errors import Error, PipelineAbortedError, PostgresError, ProtocolError
from trio_pg.pending import PendingRequest
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import (
    BindComplete,
    Column,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyOutResponse,
    EmptyQueryResponse,
    ErrorResponse,
    NoData,
    ParameterDescription,
    ParseComplete,
    ReadyForQuery,
    RowDescription,
)

if TYPE_CHECKING:
    from trio_pg.pipeline import Pipeline
    from trio_pg.record import Record
    from trio_pg.statement import StatementInfo

__all__ = ["POISON", "Probe", "Segment", "Ticket"]

T = TypeVar("T")

#: Sent in place of a statement that cannot be sent: Describe of a portal that cannot
#: exist fails on the server, which then aborts the segment there (its implicit
#: transaction rolls back and later statements are skipped), exactly as if the
#: statement itself had failed.
POISON: Final = f.describe("P", "__trio_pg_unsendable")

# What a ticket's result is made of (see Ticket._value).
EXECUTE: Final = 0
FETCH: Final = 1
FETCHROW: Final = 2
FETCHVAL: Final = 3
MANY: Final = 4

#: Awaits of resolved tickets between two scheduling points (see _Pacer).
_SCHEDULE_EVERY: Final = 64
_checkpoint_if_cancelled: Final = trio.lowlevel.checkpoint_if_cancelled
_checkpoint: Final = trio.lowlevel.checkpoint
_tuple_item: Final = tuple.__getitem__
#: Tags after which the server has dropped every prepared statement.
_CLEARING_TAGS: Final = frozenset({"DISCARD ALL", "DEALLOCATE ALL"})
_IGNORED: Final = frozenset({BindComplete, CopyOutResponse, CopyData, CopyDone})


class _Pacer:
    """Awaits of resolved tickets since the last full checkpoint among them.

    Awaiting a resolved ticket is always a cancellation point. A full checkpoint (also a
    scheduling point) costs far more than reading a resolved result, and a loop over
    thousands of tickets would spend most of its time there, so only every
    ``_SCHEDULE_EVERY``-th such await yields to other tasks: they wait no longer than
    that many result reads.
    """

    skipped = 0


def fresh_error(error: BaseException) -> BaseException:
    """A copy of ``error`` to raise: one object raised in many tasks grows its traceback."""
    new = copy.copy(error)
    new.__cause__ = error.__cause__
    new.__suppress_context__ = error.__suppress_context__
    return new


def _aborted(cause: BaseException) -> PipelineAbortedError:
    what = cause.sqlstate + ": " if isinstance(cause, PostgresError) else ""
    error = PipelineAbortedError(
        f"not run: an earlier statement in its pipeline segment failed ({what}{cause}); "
        "statements between two sync() calls succeed or fail together"
    )
    error.__cause__ = cause
    return error


class Ticket(Generic[T]):
    """The result of one pipelined statement, to ``await`` from any task, any number of times.

    ``await ticket`` returns what the matching ``Connection`` method would (rows, a row,
    a value, a command tag, or None for ``executemany``) or raises the statement's
    error: the server's :class:`~trio_pg.errors.PostgresError`,
    :class:`~trio_pg.errors.PipelineAbortedError` when an earlier statement of its
    segment failed, or :class:`~trio_pg.errors.InterfaceError` when its arguments did
    not fit the parameter types the server reported. Tickets resolve in queue order.

    Awaiting a ticket whose statement has not been sent yet sends everything queued
    (without ending the segment). Cancelling a task that awaits a ticket only stops that
    task waiting; the statement goes on. Awaiting a resolved ticket is a cancellation
    point, and a scheduling point at least every 64 such awaits (reading thousands of
    results in a loop would otherwise mostly yield to the scheduler).
    """

    __slots__ = (
        "_args",
        "_column",
        "_data",
        "_done",
        "_error",
        "_event",
        "_info",
        "_kind",
        "_local",
        "_observed",
        "_owner",
        "_raw",
        "_remaining",
        "_root",
        "_rows",
        "_sent",
        "_sql",
        "_tag",
    )

    def __init__(self, owner: Pipeline, sql: str, kind: int, column: int | str) -> None:
        # One reference to the pipeline rather than bound methods: a pipeline queues
        # thousands of tickets, and each bound method would be one more object apiece.
        self._owner = owner
        self._sql = sql
        self._kind = kind
        self._column = column
        self._args: Any = None
        self._info: StatementInfo | None = None
        self._data: bytes | None = None
        self._local: Error | None = None  # an error found before sending (poison)
        self._remaining = 1
        self._sent = False
        self._done = False
        self._event: trio.Event | None = None
        self._raw: list[bytes] = []
        self._rows: list[Record] | None = None
        self._tag = ""
        self._error: BaseException | None = None
        self._root = False
        self._observed = False

    @property
    def sql(self) -> str:
        """The statement's SQL text."""
        return self._sql

    @property
    def done(self) -> bool:
        """Whether the result (or error) has arrived: awaiting returns at once."""
        return self._done

    def __repr__(self) -> str:
        state = "done" if self._done else "sent" if self._sent else "queued"
        return f"<trio_pg.Ticket {self._sql!r} {state}>"

    def __await__(self) -> Generator[Any, None, T]:
        # A generator rather than a coroutine's __await__: awaiting a resolved ticket,
        # the common case in a loop over thousands, then creates no coroutine of its own.
        if not self._done:
            yield from self._wait().__await__()
        elif _Pacer.skipped < _SCHEDULE_EVERY:
            _Pacer.skipped += 1
            yield from _checkpoint_if_cancelled().__await__()
        else:
            _Pacer.skipped = 0
            yield from _checkpoint().__await__()
        self._observed = True
        if self._error is not None:
            raise fresh_error(self._error)
        return self._value()  # type: ignore[no-any-return]

    async def _wait(self) -> None:
        if not self._sent:
            await self._owner._flush()
        if not self._done:
            if self._event is None:
                self._event = trio.Event()
            await self._event.wait()

    def _value(self) -> Any:
        kind = self._kind
        if kind == FETCHVAL:
            raw = self._raw
            if not raw:
                return None
            column = self._column
            row = self._decode_one(raw[0])
            if column.__class__ is int:
                return _tuple_item(row, column)  # what Record does for an int, less a call
            return row[column]
        if kind == EXECUTE:
            return self._tag
        if kind == MANY:
            return None
        if kind == FETCHROW:
            raw = self._raw
            return self._decode_one(raw[0]) if raw else None
        rows = self._rows
        if rows is None:
            rows = []
            info = self._info
            assert info is not None
            try:
                info.decode_rows(self._raw, rows, [])
            except ProtocolError as exc:
                self._out_of_step(exc)
                raise
            self._rows = rows
        return rows

    def _decode_one(self, data: bytes) -> Record:
        info = self._info
        assert info is not None
        try:
            return info.decode_one(data)
        except ProtocolError as exc:
            self._out_of_step(exc)
            raise

    def _out_of_step(self, exc: ProtocolError) -> None:
        # The server's rows do not fit its own description: the session is out of step.
        self._owner._conn._shutdown(exc)

    # -- resolution (called by the segment, or the pipeline for tickets not sent) ---------

    def _finish(self) -> None:
        self._done = True
        event = self._event
        if event is not None:
            event.set()

    def _fail(self, error: BaseException, *, root: bool) -> None:
        self._error = error
        self._root = root
        self._raw = []
        self._finish()

    def _server_error(self, error: PostgresError) -> None:
        # A poison message's error stands for the ticket's own.
        local = self._local
        if local is not None:
            self._fail(local, root=True)
        else:
            self._fail(error, root=True)

    def _abort(self, cause: BaseException) -> None:
        local = self._local
        if local is not None:
            self._fail(local, root=True)
        else:
            self._fail(_aborted(cause), root=False)


class Probe:
    """A statement described inside a segment: Parse + Describe, answered before its Bind."""

    __slots__ = ("columns", "done", "error", "event", "name", "param_oids", "sql", "taken")

    def __init__(self, sql: str, name: str) -> None:
        self.sql = sql
        self.name = name
        self.param_oids: tuple[int, ...] = ()
        self.columns: tuple[Column, ...] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.taken = False  # its error was handed to a ticket
        self.event = trio.Event()

    def message(self) -> bytes:
        """Its Parse and Describe messages."""
        return f.parse(self.name, self.sql) + f.describe("S", self.name)

    def _finish(self) -> None:
        self.done = True
        self.event.set()

    def _server_error(self, error: PostgresError) -> None:
        self.error = error
        self._finish()

    def _abort(self, cause: BaseException) -> None:
        self.error = _aborted(cause)
        self.taken = True  # nothing of its own to report
        self._finish()

    def _fail(self, error: BaseException, *, root: bool) -> None:
        self.error = error
        self.taken = not root
        self._finish()


Item = Ticket[Any] | Probe


class Segment(PendingRequest):
    """The result sink of one pipeline segment (see the module docstring).

    Attributes:
        items: Tickets and probes in the order their messages were sent.
        failed: The server error that aborted the segment, if one did.
        cleared: Called when a statement dropped every prepared statement (DISCARD ALL).
    """

    __slots__ = ("_index", "cleared", "failed", "items")

    def __init__(
        self,
        on_abandon: Callable[[PendingRequest], None],
        items: Iterable[Item],
        cleared: Callable[[], None],
    ) -> None:
        super().__init__(on_abandon)
        self.items: list[Item] = list(items)
        self._index = 0
        self.failed: PostgresError | None = None
        self.cleared = cleared
        # Set when the segment's ReadyForQuery arrived (or the connection failed).
        self.done_event = trio.Event()

    def add(self, items: Iterable[Item]) -> None:
        """More items, sent after the earlier ones (a segment sent in parts).

        After a failure the server skips them: they are aborted here and now.
        """
        failed = self.failed
        added = list(items)
        if failed is not None:
            for item in added:
                item._abort(failed)
        self.items.extend(added)
        if failed is not None:
            self._index = len(self.items)

    def deliver(self, messages: list[Any], done: bool) -> None:
        """Split the messages between the items (called by the reader task)."""
        items = self.items
        i = self._index
        # The current item's row list, looked up again only when the item changes.
        raw: list[bytes] | None = None
        try:
            for msg in messages:
                cls = msg.__class__
                if cls is bytes:
                    if raw is None:
                        raw = items[i]._raw  # type: ignore[union-attr]
                    raw.append(msg)
                elif cls is BindComplete:
                    pass
                elif cls is CommandComplete or cls is EmptyQueryResponse:
                    ticket: Ticket[Any] = items[i]  # type: ignore[assignment]
                    raw = None
                    if cls is CommandComplete:
                        ticket._tag = msg.tag
                        if msg.tag in _CLEARING_TAGS:
                            self.cleared()
                    ticket._remaining -= 1
                    if ticket._remaining == 0:
                        ticket._finish()
                        i += 1
                elif cls in _IGNORED or cls is ReadyForQuery:
                    pass
                elif cls is ErrorResponse:
                    error = PostgresError.from_fields(msg.fields)
                    items[i]._server_error(error)
                    self.failed = error
                    # The server skips the rest of the segment, up to its Sync.
                    for later in items[i + 1 :]:
                        later._abort(error)
                    i = len(items)
                    raw = None
                elif cls is ParseComplete:
                    pass  # of a probe, or of an unnamed statement's execution
                elif cls is ParameterDescription:
                    cast(Probe, items[i]).param_oids = msg.type_oids
                elif cls is RowDescription or cls is NoData:
                    probe = cast(Probe, items[i])
                    probe.columns = msg.columns if cls is RowDescription else None
                    probe._finish()
                    i += 1
                    raw = None
                else:
                    raise ProtocolError(f"unexpected {cls.__name__} in a pipeline segment")
            if done and i < len(items):
                raise ProtocolError("the server ended a pipeline segment before its last statement")
        except (IndexError, AttributeError, ProtocolError) as exc:
            # A message for no item, or of the wrong kind for the item it reached: the
            # session is out of step. Waiters get the error; the reader closes the connection.
            self._index = i
            if isinstance(exc, ProtocolError):
                broken = exc
            else:
                broken = ProtocolError("the server's answers do not match the pipeline sent")
            self.fail(broken)
            raise broken from None
        self._index = i
        if done:
            self._finish()

    def fail(self, error: BaseException) -> None:
        """The connection failed: every item still waiting gets ``error``."""
        if self.done:
            return
        self.drop(error, root=True)
        self.error = error
        self._finish()

    def drop(self, error: BaseException, *, root: bool) -> None:
        """Resolve every item still waiting with (a copy of) ``error``."""
        for item in self.items[self._index :]:
            if not (item._done if isinstance(item, Ticket) else item.done):
                item._fail(fresh_error(error), root=root)
        self._index = len(self.items)
