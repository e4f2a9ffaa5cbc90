"""``conn.transaction()``: the mixin that opens transaction blocks (mixed into Connection).

The block itself, :class:`~trio_pg.transaction_block.Transaction`, is what the ``async
with`` yields: a :class:`~trio_pg.view.ConnectionView`, so helper tasks can run inside
it. It lives in its own module because :mod:`trio_pg.view` mixes this one in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from trio_pg.errors import InterfaceError

if TYPE_CHECKING:
    from trio_pg.connection import Connection
    from trio_pg.gate import Gate
    from trio_pg.transaction_block import Transaction

__all__ = ["ISOLATION_LEVELS", "TransactionMixin"]

#: The ``isolation`` argument's values and the SQL they stand for
#: (sql-set-transaction.html).
ISOLATION_LEVELS: Final = {
    "read_committed": "READ COMMITTED",
    "read_uncommitted": "READ UNCOMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


def begin_statement(isolation: str | None, readonly: bool, deferrable: bool) -> str:
    """The BEGIN statement for the options, checking them first.

    Raises:
        InterfaceError: An unknown isolation level, or a flag that is not a bool.
    """
    if isolation is not None and isolation not in ISOLATION_LEVELS:
        valid = ", ".join(repr(name) for name in ISOLATION_LEVELS)
        raise InterfaceError(
            f"unknown isolation level {isolation!r}; use one of {valid}, or None for the "
            "server's default (default_transaction_isolation)"
        )
    for name, value in (("readonly", readonly), ("deferrable", deferrable)):
        if not isinstance(value, bool):
            raise InterfaceError(f"{name} must be True or False, got {value!r}")
    parts = ["BEGIN"]
    if isolation is not None:
        parts.append(f"ISOLATION LEVEL {ISOLATION_LEVELS[isolation]}")
    if readonly:
        parts.append("READ ONLY")
    if deferrable:
        parts.append("DEFERRABLE")
    return " ".join(parts)


class TransactionMixin:
    """``transaction()``, mixed into Connection and ConnectionView."""

    if TYPE_CHECKING:
        _gate: Gate | None

        @property
        def _conn(self) -> Connection: ...

    def transaction(
        self, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """A transaction block: ``async with conn.transaction() as tx: ...``.

        Entering sends BEGIN (with the options); leaving normally sends COMMIT; leaving
        by an exception or cancellation rolls back and lets the exception through.
        Inside another ``transaction()`` block the block is a SAVEPOINT instead: leaving
        it normally releases the savepoint, an exception rolls back to it.

        The block holds the connection (see "Sharing one connection between tasks"): other
        tasks' calls on ``conn`` wait until it ends. The owning task goes on using
        ``conn``; helper tasks that must run inside the transaction use ``tx``, the
        :class:`~trio_pg.transaction_block.Transaction` yielded.

        Args:
            isolation: ``"serializable"``, ``"repeatable_read"``, ``"read_committed"``,
                ``"read_uncommitted"``, or None for the server's default.
            readonly: Start a READ ONLY transaction.
            deferrable: Start a DEFERRABLE transaction (has an effect for
                ``serializable`` read-only ones).

        Returns:
            The block, an async context manager yielding itself.

        Raises:
            InterfaceError: An unknown isolation level or a non-bool flag (raised here),
                options given to a nested block, or a transaction already opened with
                plain SQL (``BEGIN``) (raised when entering).
            PostgresError: BEGIN or COMMIT failed; a failed COMMIT (serialization failure,
                deferred constraint) leaves the connection outside any transaction.
            InFailedSqlTransactionError: The block ended normally but an error inside it
                had failed the transaction (the error was caught): COMMIT rolled back.

        Cancelling the task inside the block or while it is being entered or left never
        leaves the connection in the transaction: the rollback runs shielded, bounded by
        the connection's ``cleanup_grace``, after which the connection is closed instead.
        """
        begin = begin_statement(isolation, readonly, deferrable)
        # Imported here: the block is a ConnectionView, and trio_pg.view imports this module.
        from trio_pg.transaction_block import Transaction

        return Transaction(
            self._conn,
            self._gate,
            begin=begin,
            options=isolation is not None or readonly or deferrable,
        )
