"""Connection pools: :func:`open_pool` and :class:`Pool`.

Open a pool for the duration of a block; borrow a connection with ``acquire()`` or run
one statement with the conveniences::

    async with trio_pg.open_pool("postgresql://app@db/app", max_size=10) as pool:
        async with pool.acquire() as conn:
            async with conn.transaction():
                ...
        rows = await pool.fetch("SELECT id FROM users WHERE active = $1", True)

How lending, sharing, cleaning and growing work is in :mod:`trio_pg.pool_lending`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any

import trio

from trio_pg.connect import connect
from trio_pg.connection import Connection
from trio_pg.errors import InterfaceError
from trio_pg.nursery import open_owned_nursery
from trio_pg.pool_lending import ConnectionHook, Lender, Member
from trio_pg.pool_sharing import may_share
from trio_pg.pool_stats import PoolStatistics
from trio_pg.pool_supply import Opener
from trio_pg.record import Record

__all__ = ["Pool", "PoolStatistics", "open_pool"]


class _Lease:
    """What :meth:`Pool.acquire` returns: lends one connection for an ``async with``."""

    __slots__ = ("_lender", "_member")

    def __init__(self, lender: Lender) -> None:
        self._lender = lender
        self._member: Member | None = None

    async def __aenter__(self) -> Connection:
        if self._member is not None:
            raise InterfaceError("this acquire() is already in use; call acquire() again")
        self._member = await self._lender.acquire(shareable=False)
        return self._member.conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        member, self._member = self._member, None
        if member is not None:
            self._lender.release(member)


class Pool(trio.abc.AsyncResource):
    """Connections lent to tasks. Made by :func:`open_pool`, never directly.

    Waiters are served first come, first served. A connection lent by :meth:`acquire`
    is open, outside any transaction, has nothing in flight, and is the borrower's alone.
    """

    def __init__(self, lender: Lender) -> None:
        self._lender = lender

    @property
    def min_size(self) -> int:
        """Connections the pool keeps open."""
        return self._lender.min_size

    @property
    def max_size(self) -> int:
        """Most connections the pool opens at once."""
        return self._lender.max_size

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called (or the ``open_pool`` block ended)."""
        return self._lender.closing

    def acquire(self) -> AbstractAsyncContextManager[Connection]:
        """Borrow a connection for the duration of an ``async with`` block.

        ``async with pool.acquire() as conn:`` waits for a connection (first come, first
        served), lends it to the block alone, and takes it back when the block ends. Do
        not use ``conn`` after the block. A connection given back inside a transaction,
        with work in flight or with a block still open is rolled back before anyone else
        gets it; a broken one is replaced.

        Raises:
            InterfaceError: The pool is closed.
            ConnectionFailedError: The pool has no open connection and opening one
                failed (the cause is chained).

        Cancelling a task that waits here takes it out of the queue, with nothing.
        """
        return _Lease(self._lender)

    async def execute(self, sql: str, *args: object) -> str:
        """:meth:`Connection.execute` on a connection lent for the call.

        With arguments it may share a busy connection, like :meth:`fetch`; without, the
        statement is sent alone (its text may hold several statements).
        """
        shareable = bool(args) and may_share(sql)
        return await self._lender.call(shareable, Connection.execute, sql, *args)

    async def fetch(self, sql: str, *args: object) -> list[Record]:
        """:meth:`Connection.fetch` on a connection lent for the call.

        When every connection is busy and the pool is at ``max_size``, a query or
        data-modifying statement (``SELECT``, ``INSERT``, ``WITH``...) may be sent
        through a connection other such calls are using rather than wait for one: the
        results stay apart, and the statements share round trips. It then also waits
        for the statements ahead of it on that connection, and if cancelled, its
        statement is abandoned but not cancelled on the server. Use :meth:`acquire` for
        statements that must have a connection to themselves.

        Raises:
            PostgresError: The server reported an error.
            InterfaceError: The pool is closed, or the arguments do not fit.
            ConnectionLostError: The connection broke during the call.
            ConnectionFailedError: The pool has no open connection and opening one
                failed.
        """
        return await self._lender.call(may_share(sql), Connection.fetch, sql, *args)

    async def fetchrow(self, sql: str, *args: object) -> Record | None:
        """:meth:`Connection.fetchrow` on a connection lent for the call (see :meth:`fetch`)."""
        return await self._lender.call(may_share(sql), Connection.fetchrow, sql, *args)

    async def fetchval(self, sql: str, *args: object, column: int | str = 0) -> Any:
        """:meth:`Connection.fetchval` on a connection lent for the call (see :meth:`fetch`)."""
        return await self._lender.call(
            may_share(sql), Connection.fetchval, sql, *args, column=column
        )

    async def executemany(self, sql: str, args: Iterable[Sequence[object]]) -> None:
        """:meth:`Connection.executemany` on a connection lent for the call (see :meth:`fetch`)."""
        await self._lender.call(may_share(sql), Connection.executemany, sql, args)

    async def fetchmany(self, sql: str, args: Iterable[Sequence[object]]) -> list[Record]:
        """:meth:`Connection.fetchmany` on a connection lent for the call (see :meth:`fetch`)."""
        return await self._lender.call(may_share(sql), Connection.fetchmany, sql, args)

    def statistics(self) -> PoolStatistics:
        """Sizes and counters for monitoring and tests; see :class:`PoolStatistics`."""
        return self._lender.statistics()

    async def aclose(self) -> None:
        """Close the pool and every connection in it. Idempotent.

        Waiting tasks fail with :class:`~trio_pg.errors.InterfaceError`. Idle
        connections are closed at once; lent ones are waited for up to
        ``cleanup_grace`` seconds, then closed under their borrowers (whose calls then
        fail with :class:`~trio_pg.errors.ConnectionLostError`). Runs shielded, so the
        pool is closed even when the calling task is cancelled.
        """
        await self._lender.close()

    def __repr__(self) -> str:
        s = self.statistics()
        state = "closed" if self.is_closed else f"size={s.size} idle={s.idle} waiting={s.waiting}"
        return f"<trio_pg.Pool {state} max_size={s.max_size}>"


@asynccontextmanager
async def open_pool(
    dsn: str | None = None,
    *,
    min_size: int = 1,
    max_size: int = 10,
    max_idle: float = 300.0,
    max_lifetime: float = 3600.0,
    setup: ConnectionHook | None = None,
    reset: ConnectionHook | str | None = None,
    **params: object,
) -> AsyncIterator[Pool]:
    """Open a connection pool for the duration of an ``async with`` block.

    The pool's connections and background work run in a nursery of its own. Before the
    block starts, one connection is opened (when ``min_size`` > 0), so bad settings, a
    wrong password or an unreachable server raise here; the rest of ``min_size`` opens
    in the background. Leaving the block closes the pool (see :meth:`Pool.aclose`); the
    block raises only what its body raised, never an exception group.

    Args:
        dsn: A libpq URI or keyword/value string, as for :func:`trio_pg.connect`.
        min_size: Connections kept open, even when idle.
        max_size: Most connections open at once; more tasks wait their turn.
        max_idle: Seconds a connection beyond ``min_size`` may stay unused before it
            is closed. ``math.inf`` keeps them.
        max_lifetime: Seconds after which a connection is closed (when idle or when
            given back) and replaced; up to 10% less, so they do not all expire at once.
        setup: ``async def setup(conn)``, run on every new connection before it is
            lent (session settings, ``set_type_codec``...). Its failure counts as a
            failed connection attempt.
        reset: SQL (simple query protocol) or ``async def reset(conn)`` run on every
            release, after any rollback, for pools lending connections to code that
            changes session state: ``"RESET ALL"``, or
            ``"SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL"``.
            Costs a round trip per release and turns sharing off. A failure closes the
            connection.
        **params: Everything :func:`trio_pg.connect` takes (libpq keywords,
            ``server_settings``, ``statement_cache_size``, ``cleanup_grace``...).
            ``cleanup_grace`` also bounds cleaning a released connection and how long
            closing the pool waits for lent connections.

    Raises:
        InterfaceError: Invalid pool settings.
        PostgresError | ConnectionFailedError | TLSError | AuthenticationError: The
            first connection could not be opened (as :func:`trio_pg.connect` raises).
    """
    grace = params.get("cleanup_grace", 5.0)
    _check_settings(min_size, max_size, max_idle, max_lifetime, grace)
    assert isinstance(grace, int | float)
    hook = _sql_hook(reset) if isinstance(reset, str) else reset
    opener = partial(_open_member, dsn, params, setup)
    async with _open_pool(
        opener,
        min_size=min_size,
        max_size=max_size,
        max_idle=float(max_idle),
        max_lifetime=float(max_lifetime),
        cleanup_grace=float(grace),
        reset=hook,
    ) as pool:
        yield pool


@asynccontextmanager
async def _open_pool(
    opener: Opener,
    *,
    min_size: int,
    max_size: int,
    max_idle: float,
    max_lifetime: float,
    cleanup_grace: float,
    reset: ConnectionHook | None,
) -> AsyncIterator[Pool]:
    """:func:`open_pool` for any way of opening connections (settings already checked)."""
    async with open_owned_nursery() as nursery:
        lender = Lender(
            nursery=nursery,
            opener=opener,
            min_size=min_size,
            max_size=max_size,
            max_idle=max_idle,
            max_lifetime=max_lifetime,
            cleanup_grace=cleanup_grace,
            reset=reset,
        )
        try:
            await lender.start(first=min_size > 0)
            yield Pool(lender)
        finally:
            await lender.close()


async def _open_member(
    dsn: str | None,
    params: dict[str, object],
    setup: ConnectionHook | None,
    nursery: trio.Nursery,
) -> Connection:
    conn = await connect(nursery, dsn, **params)  # type: ignore[arg-type]
    if setup is not None:
        try:
            await setup(conn)
        except BaseException:
            await conn.aclose()
            raise
    return conn


def _sql_hook(sql: str) -> ConnectionHook:
    async def run(conn: Connection) -> None:
        await conn.execute(sql)

    return run


def _check_settings(
    min_size: object, max_size: object, max_idle: object, max_lifetime: object, grace: object
) -> None:
    if not isinstance(min_size, int) or min_size < 0:
        raise InterfaceError(f"min_size must be an int of 0 or more, got {min_size!r}")
    if not isinstance(max_size, int) or max_size < 1:
        raise InterfaceError(f"max_size must be an int of 1 or more, got {max_size!r}")
    if min_size > max_size:
        raise InterfaceError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
    for name, value in (("max_idle", max_idle), ("max_lifetime", max_lifetime)):
        if not isinstance(value, int | float) or not value > 0:
            raise InterfaceError(f"{name} must be a positive number of seconds, got {value!r}")
    if not isinstance(grace, int | float) or not grace > 0:
        raise InterfaceError(f"cleanup_grace must be a positive number of seconds, got {grace!r}")
