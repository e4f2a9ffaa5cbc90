"""Transaction blocks: BEGIN/COMMIT/ROLLBACK, and SAVEPOINTs when nested.

Theory of operation
-------------------
``conn.transaction()`` returns a :class:`Transaction`. Entering it holds the connection's
gate (:mod:`trio_pg.gate`), so no other task's statement lands inside the transaction,
then sends BEGIN; leaving sends COMMIT, or ROLLBACK when the block raised. A block
entered while another is open on the connection is a savepoint: SAVEPOINT, then RELEASE
SAVEPOINT or ROLLBACK TO SAVEPOINT + RELEASE SAVEPOINT (sql-savepoint.html).

The control statements go through the simple query protocol, one request each. The rule
that matters is that no way out of the block leaves the session inside a transaction
the caller did not mean to keep:

* rolling back runs shielded from cancellation, bounded by ``cleanup_grace``; when that
  is not enough (the server does not answer), the connection is closed instead;
* a BEGIN or SAVEPOINT abandoned by cancellation may still have run on the server when
  it had been written, so it is undone the same way; one never written never runs;
* a COMMIT or RELEASE abandoned by cancellation after it was written ends the block on
  the server either way; one never written is replaced by a rollback;
* COMMIT of a transaction an earlier (caught) error had failed answers with the tag
  ROLLBACK: the block raises InFailedSqlTransactionError rather than pass it off as a
  commit. A RELEASE that fails rolls back to the savepoint, then raises the error, so
  the enclosing transaction can go on.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Final

import trio

from trio_pg.errors import (
    ConnectionLostError,
    Error,
    InFailedSqlTransactionError,
    InterfaceError,
    PostgresError,
)
from trio_pg.protocol import TransactionStatus
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import CommandComplete, ErrorResponse
from trio_pg.view import ConnectionView

if TYPE_CHECKING:
    from trio_pg.connection import Connection
    from trio_pg.gate import Gate
    from trio_pg.pending import PendingRequest

__all__ = ["Transaction"]

logger = logging.getLogger("trio_pg")

_NEW: Final = "new"
_ACTIVE: Final = "active"
_ENDED: Final = "ended"


async def _read_control(pending: PendingRequest) -> tuple[str, PostgresError | None]:
    """The command tag and error of a simple-protocol request."""
    tag = ""
    error: PostgresError | None = None
    try:
        while batch := await pending.next_batch():
            for msg in batch:
                if isinstance(msg, CommandComplete):
                    tag = msg.tag
                elif isinstance(msg, ErrorResponse) and error is None:
                    error = PostgresError.from_fields(msg.fields)
    finally:
        pending.abandon()  # cancelled: the rest of the results are discarded
    return tag, error


class Transaction(ConnectionView):
    """A transaction block, and the view helper tasks use to run inside it.

    Made by :meth:`Connection.transaction`; enter it with ``async with``. Its query
    methods (``execute``, ``fetch``, ``transaction`` for a savepoint...) go through the
    connection without waiting at its gate, which the block holds.
    """

    def __init__(self, conn: Connection, gate: Gate | None, *, begin: str, options: bool) -> None:
        super().__init__(conn)
        self._outer_gate = gate
        self._begin = begin
        self._options = options
        self._savepoint: str | None = None
        self._state = _NEW
        self._hold: AbstractAsyncContextManager[None] | None = None

    @property
    def nested(self) -> bool:
        """Whether the block is a savepoint inside another transaction block."""
        return self._savepoint is not None

    def __repr__(self) -> str:
        kind = f"savepoint {self._savepoint}" if self._savepoint else self._begin
        return f"<trio_pg.Transaction {kind!r} {self._state}>"

    # -- entering ---------------------------------------------------------------------------

    async def __aenter__(self) -> Transaction:
        if self._state is not _NEW:
            raise InterfaceError(
                "a transaction() block can be entered once; call conn.transaction() again"
            )
        self._state = _ACTIVE
        conn = self._connection
        conn._check_usable()
        if self._outer_gate is not None:
            hold = self._outer_gate.hold()
            await hold.__aenter__()
            self._hold = hold
        try:
            stack = conn._transactions
            if stack:
                if self._options:
                    raise InterfaceError(
                        "a nested transaction() block is a savepoint, which takes no "
                        "isolation, readonly or deferrable options: give them to the "
                        "outermost block"
                    )
                self._savepoint = f"trio_pg_savepoint_{id(self):x}"
                start = f"SAVEPOINT {self._savepoint}"
            elif conn.transaction_status is not TransactionStatus.IDLE:
                raise InterfaceError(
                    "the connection is already inside a transaction started with plain SQL "
                    "(BEGIN); end it with COMMIT or ROLLBACK before using transaction(), "
                    "or use transaction() for the outer transaction too"
                )
            else:
                start = self._begin
            await self._run_or_undo(start)
            stack.append(self)
        except BaseException:
            self._state = _ENDED
            await self._release_gate()
            raise
        return self

    # -- leaving ----------------------------------------------------------------------------

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        conn = self._connection
        try:
            if self in conn._transactions:
                conn._transactions.remove(self)
            if exc_type is None:
                await self._commit()
            else:
                await self._rollback()
        finally:
            self._state = _ENDED
            await self._release_gate()
        return False

    async def _commit(self) -> None:
        if self._savepoint is None:
            tag = await self._run_or_undo("COMMIT")
            if tag == "ROLLBACK":
                # protocol-flow.html: COMMIT in a failed transaction block rolls it back.
                raise InFailedSqlTransactionError(
                    {
                        "S": "ERROR",
                        "C": InFailedSqlTransactionError.sqlstate,
                        "M": "the transaction was rolled back, not committed: a statement "
                        "in the block failed (its error was caught inside the block)",
                    }
                )
            return
        try:
            await self._run_or_undo(f"RELEASE SAVEPOINT {self._savepoint}")
        except PostgresError:
            # The transaction had failed (an error was caught inside the block): undo the
            # savepoint's work so the enclosing block can go on, then report it.
            await self._rollback()
            raise

    async def _rollback(self) -> None:
        """Roll back (to the savepoint), shielded, bounded by ``cleanup_grace``.

        Never raises: a failure is logged, a timeout closes the connection.
        """
        conn = self._connection
        if conn.is_closed:
            return
        if self._savepoint is None:
            sql = "ROLLBACK"
        else:
            sql = f"ROLLBACK TO SAVEPOINT {self._savepoint}; RELEASE SAVEPOINT {self._savepoint}"
        grace = conn._cleanup_grace
        with trio.CancelScope(shield=True):
            with trio.move_on_after(grace):
                try:
                    _, error = await _read_control(conn._submit(f.query(sql), simple=True))
                except Error as exc:  # the connection is gone, and the transaction with it
                    logger.debug("rollback not sent: %r", exc)
                    return
                if error is not None:
                    logger.warning("%s failed: %s", sql, error)
                return
            conn._shutdown(
                ConnectionLostError(
                    f"the transaction could not be rolled back within cleanup_grace={grace}s; "
                    "the connection was closed instead of waited on"
                )
            )

    # -- helpers ----------------------------------------------------------------------------

    async def _run_or_undo(self, sql: str) -> str:
        """Run a control statement and return its tag; raise its error.

        Cancelled after the statement was written, BEGIN or SAVEPOINT may have run, so
        it is rolled back; COMMIT or RELEASE end the block on the server either way.
        Cancelled before it was written, nothing ran: the block is rolled back.
        """
        conn = self._connection
        pending = conn._submit(f.query(sql), simple=True)
        try:
            tag, error = await _read_control(pending)
        except BaseException:
            request = pending.request
            written = request is not None and request.written
            starting = sql.startswith(("BEGIN", "SAVEPOINT"))
            if written == starting and not conn.is_closed:
                await self._rollback()
            raise
        if error is not None:
            raise error
        return tag

    async def _release_gate(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            await hold.__aexit__(None, None, None)
