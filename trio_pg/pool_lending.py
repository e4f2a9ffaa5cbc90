"""The engine of a connection pool: lending, sharing, cleaning, growing, expiry.

Theory of operation
-------------------
A :class:`Lender` owns the pool's connections: their reader and writer tasks run in the
nursery of the ``open_pool`` block, next to the pool's background work: connection
attempts (:mod:`trio_pg.pool_supply`) and the expiry timer. Every open connection is a
*member*, in one of three places: idle (a stack, so the most recently used member is
reused first and the others can age out), lent, or being cleaned after a dirty release.

**Lending.** A task takes an idle member when nobody is waiting; otherwise it joins a
FIFO of waiters and parks. A member that comes back goes straight to the first waiter,
never through the idle stack, so no newcomer overtakes a waiter. A waiter cancelled
before it was handed a member just leaves the queue: with Trio's abort protocol a task
is either still parked (and can be cancelled out of the queue) or has been handed its
member (and can no longer be cancelled out of the hand-over), so nothing leaks.

**Sharing.** When the pool is at ``max_size`` with no member idle and nobody waiting,
the single-statement conveniences (``pool.fetch`` and friends) send their statement
through a member that other conveniences are using (the least busy one, up to
:data:`MAX_SHARES` calls) instead of queueing: the connection's FIFO keeps the calls'
results apart, and their requests share round trips. Only statements that cannot change
what the others run inside may share (:func:`~trio_pg.pool_sharing.may_share`); a
member whose call was cancelled takes no new sharers; a member handed to a waiting
convenience also takes the conveniences queued right behind it. A pool with a ``reset``
never shares, so every borrower sees a reset session.

**Releasing** is synchronous and never blocks the borrower:

* a closed (lost, terminated) connection is discarded and replaced when needed;
* a clean one (:meth:`Connection._reusable`) goes to the next waiter or the stack;
* a dirty one (inside a transaction, failed or not; with a request still in flight, such
  as an abandoned query or pipeline or an unfinished COPY; with a block still holding
  it) is cleaned in the background before anyone sees it again: a no-op statement
  queued behind whatever is in flight, then ROLLBACK. When that fails or takes longer
  than ``cleanup_grace``, the connection is closed and replaced instead.

Session state (``SET``, advisory locks, ``LISTEN``, temporary tables) is kept across
borrowers, as in psycopg's pool: resetting it costs a round trip per release, so it is
asked for with ``reset``, run after the rollback on every release.

**Growing.** Attempts are started for the waiters that no member being cleaned or being
opened will serve, and to keep ``min_size``. Only when the pool has no open connection
and no attempt under way do waiters fail, with
:class:`~trio_pg.errors.ConnectionFailedError`; otherwise they wait while attempts are
retried with backoff. Members idle for ``max_idle`` (beyond ``min_size``) or older than
``max_lifetime`` are closed by the expiry timer; lent ones past their lifetime are
closed when they come back.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Concatenate, Final, ParamSpec, TypeVar

import trio

from trio_pg.connection import Connection
from trio_pg.errors import ConnectionFailedError, Error, InterfaceError
from trio_pg.pool_stats import PoolStatistics
from trio_pg.pool_supply import Opener, Supply

__all__ = ["MAX_SHARES", "ConnectionHook", "Lender", "Member"]

logger = logging.getLogger("trio_pg")

#: Most convenience calls in flight on one shared connection.
MAX_SHARES: Final = 8
#: Lifetimes are shortened by up to this fraction, so members opened together do not all
#: expire (and reconnect) at the same moment.
_LIFETIME_JITTER: Final = 0.1

#: Runs on a connection: ``setup`` after it opens, ``reset`` after each release.
ConnectionHook = Callable[[Connection], Awaitable[object]]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Member:
    """One open connection of the pool."""

    __slots__ = ("conn", "expires", "idle_since", "joinable", "shares")

    def __init__(self, conn: Connection, expires: float) -> None:
        self.conn = conn
        self.expires = expires
        self.idle_since = 0.0
        self.shares = 0  # convenience calls using it while it is shared; 0 otherwise
        self.joinable = False  # shared, and more calls may join


class _Waiter:
    """A task parked for a connection; handed a member or an error."""

    __slots__ = ("error", "member", "shareable", "task")

    def __init__(self, task: trio.lowlevel.Task, shareable: bool) -> None:
        self.task = task
        self.shareable = shareable
        self.member: Member | None = None
        self.error: BaseException | None = None


class Lender:
    """A pool's members and waiters; see the module docstring.

    :class:`trio_pg.pool.Pool` is its public face. Settings are checked there.
    """

    def __init__(
        self,
        *,
        nursery: trio.Nursery,
        opener: Opener,
        min_size: int,
        max_size: int,
        max_idle: float,
        max_lifetime: float,
        cleanup_grace: float,
        reset: ConnectionHook | None,
    ) -> None:
        self._nursery = nursery
        self.min_size = min_size
        self.max_size = max_size
        self._max_idle = max_idle
        self._max_lifetime = max_lifetime
        self._grace = cleanup_grace
        self._reset = reset
        self._members: set[Member] = set()
        self._idle: list[Member] = []
        self._sharing: list[Member] = []
        self._waiters: deque[_Waiter] = deque()
        self._borrowed = 0
        self._resetting = 0
        self._supply = Supply(
            opener=opener,
            nursery=nursery,
            wanted=self._wanted,
            opened=self._opened,
            failed=self._connect_failed,
        )
        self._expiry_scope = trio.CancelScope()
        self._timer: trio.CancelScope | None = None
        self.closing = False
        self._closed = trio.Event()
        self._returned = trio.Event()
        self._acquisitions = 0
        self._shared = 0
        self._resets = 0
        self._discarded = 0
        self._retired = 0

    def statistics(self) -> PoolStatistics:
        """A snapshot of the sizes and counters."""
        supply = self._supply
        return PoolStatistics(
            size=len(self._members),
            idle=len(self._idle),
            borrowed=self._borrowed,
            resetting=self._resetting,
            connecting=supply.connecting,
            waiting=len(self._waiters),
            min_size=self.min_size,
            max_size=self.max_size,
            acquisitions=self._acquisitions,
            shared=self._shared,
            connects=supply.connects,
            connect_failures=supply.failures,
            resets=self._resets,
            discarded=self._discarded,
            retired=self._retired,
        )

    async def close(self) -> None:
        """Close everything; see :meth:`trio_pg.pool.Pool.aclose`."""
        if self.closing:
            with trio.CancelScope(shield=True):
                await self._closed.wait()
            await trio.lowlevel.checkpoint()
            return
        self.closing = True
        self._supply.close()
        self._expiry_scope.cancel()
        self._fail_waiters(InterfaceError("the pool was closed while waiting for a connection"))
        with trio.CancelScope(shield=True):
            idle, self._idle = self._idle, []
            async with trio.open_nursery() as nursery:
                for member in idle:
                    self._members.discard(member)
                    nursery.start_soon(member.conn.aclose)
            if self._members:
                with trio.move_on_after(self._grace):
                    await self._returned.wait()
            # Past the grace: close what is still lent under its borrowers.
            members, self._members = self._members, set()
            async with trio.open_nursery() as nursery:
                for member in members:
                    nursery.start_soon(member.conn.aclose)
            self._closed.set()
        await trio.lowlevel.checkpoint()

    # -- lending ---------------------------------------------------------------------------

    async def call(
        self,
        shareable: bool,
        method: Callable[Concatenate[Connection, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run one connection method on a member lent (or shared) for the call."""
        member = None
        if shareable and self._reset is None:
            # No checkpoint here: the call below is one, and gives the member back.
            member = self._join()
        if member is None:
            member = await self.acquire(shareable=shareable)
        try:
            return await method(member.conn, *args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, Error):
                # Cancelled with its request in flight: let the connection drain before
                # anyone new is sent through it.
                member.joinable = False
            raise
        finally:
            self._give_back(member)

    async def acquire(self, *, shareable: bool) -> Member:
        """Wait for a member (FIFO); see :meth:`trio_pg.pool.Pool.acquire`."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.closing:
            raise InterfaceError("the pool is closed")
        if not self._waiters:
            member = self._take_idle()
            if member is not None:
                if shareable and self._reset is None:
                    self._share(member)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return member
        waiter = _Waiter(trio.lowlevel.current_task(), shareable and self._reset is None)
        self._waiters.append(waiter)
        self._grow()

        def abort(_: object) -> trio.lowlevel.Abort:
            # Only reached before a member or an error was handed over.
            self._waiters.remove(waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.member is not None
        return waiter.member

    def _join(self) -> Member | None:
        """A shared member for one more convenience call, when the pool is saturated."""
        if (
            self._waiters
            or self._idle
            or self.closing
            or len(self._members) + self._supply.connecting < self.max_size
        ):
            return None
        best: Member | None = None
        for member in self._sharing:
            if member.joinable and member.shares < MAX_SHARES:
                if member.conn.is_closed or member.conn.in_transaction:
                    member.joinable = False
                elif best is None or member.shares < best.shares:
                    best = member
        if best is not None:
            best.shares += 1
            self._acquisitions += 1
            self._shared += 1
        return best

    def _share(self, member: Member) -> None:
        member.shares = 1
        member.joinable = True
        self._sharing.append(member)

    def _take_idle(self) -> Member | None:
        """Pop the most recently used idle member that is still good, counting it lent."""
        idle = self._idle
        if not idle:
            return None
        now = trio.current_time()
        found: Member | None = None
        dropped = False
        while idle:
            member = idle.pop()
            if member.conn.is_closed:
                self._drop(member)
                self._discarded += 1
            elif member.expires <= now:
                self._drop(member)
                self._retired += 1
            else:
                self._borrowed += 1
                self._acquisitions += 1
                found = member
                break
            dropped = True
        if dropped:
            self._grow()
        return found

    def _give_back(self, member: Member) -> None:
        """One convenience call is done with ``member``; release it when it was the last."""
        if member.shares:
            member.shares -= 1
            if member.shares:
                return
            self._sharing.remove(member)
            member.joinable = False
        self.release(member)

    def release(self, member: Member) -> None:
        """Take a member back from its borrower (synchronous: never blocks the borrower)."""
        self._borrowed -= 1
        conn = member.conn
        if conn.is_closed:
            self._drop(member)
            self._discarded += 1
            self._grow()
        elif self.closing:
            self._drop(member)
        elif not conn._reusable() or self._reset is not None:
            self._resetting += 1
            self._nursery.start_soon(self._clean, member)
        elif member.expires <= trio.current_time():
            self._drop(member)
            self._retired += 1
            self._grow()
        else:
            self._put_back(member)
        self._check_returned()

    def _put_back(self, member: Member) -> None:
        """Hand a clean member to the first waiter (and its sharing followers), or idle it."""
        waiters = self._waiters
        if waiters:
            waiter = waiters.popleft()
            self._borrowed += 1
            self._hand(waiter, member)
            if waiter.shareable:
                self._share(member)
                if len(self._members) + self._supply.connecting >= self.max_size:
                    while waiters and waiters[0].shareable and member.shares < MAX_SHARES:
                        member.shares += 1
                        self._shared += 1
                        self._hand(waiters.popleft(), member)
            return
        now = trio.current_time()
        member.idle_since = now
        self._idle.append(member)
        timer = self._timer
        if timer is not None:
            due = min(member.expires, now + self._max_idle)
            if due < timer.deadline:
                timer.deadline = due

    def _hand(self, waiter: _Waiter, member: Member) -> None:
        waiter.member = member
        self._acquisitions += 1
        trio.lowlevel.reschedule(waiter.task)

    def _drop(self, member: Member) -> None:
        """Forget a member and close its connection in the background."""
        self._members.discard(member)
        if not member.conn.is_closed:
            self._nursery.start_soon(member.conn.aclose)

    def _fail_waiters(self, error: Error) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            # A fresh exception per task: one object raised in many tasks would collect
            # all their tracebacks.
            waiter.error = type(error)(*error.args)
            waiter.error.__cause__ = error.__cause__
            trio.lowlevel.reschedule(waiter.task)

    def _check_returned(self) -> None:
        if self.closing and not (self._borrowed or self._resetting):
            self._returned.set()

    async def _clean(self, member: Member) -> None:
        """Make a dirty member fit to lend again, or close it (runs in the pool's nursery)."""
        try:
            clean = await self._cleaned(member.conn)
        finally:
            self._resetting -= 1
        if not clean or self.closing:
            self._drop(member)
            if not self.closing:
                self._discarded += 1
                self._grow()
        elif member.expires <= trio.current_time():
            self._drop(member)
            self._retired += 1
            self._grow()
        else:
            self._resets += 1
            self._put_back(member)
        self._check_returned()

    async def _cleaned(self, conn: Connection) -> bool:
        """Drain, roll back and reset ``conn`` within ``cleanup_grace``; True when clean."""
        with trio.move_on_after(self._grace):
            try:
                if not conn._reusable():
                    # Queued behind whatever is in flight (FIFO): once it completes, so
                    # has everything before it, and the transaction status is current.
                    await conn.execute("")
                    if conn.in_transaction:
                        await conn.execute("ROLLBACK")
            except Error as exc:
                logger.debug("pool: could not clean a released connection: %r", exc)
                return False
            if self._reset is not None:
                try:
                    await self._reset(conn)
                except Exception:  # reset is user code: report it, then close
                    logger.warning("pool: reset failed; closing the connection", exc_info=True)
                    return False
            return conn._reusable()
        return False

    # -- growing ----------------------------------------------------------------------------

    async def start(self, *, first: bool) -> None:
        """Start the background work; with ``first``, open one connection in this task."""
        await self._nursery.start(self._supply.run)
        self._nursery.start_soon(self._expire_forever)
        if first:
            self._add(await self._supply.open_now())
        self._grow()

    def _add(self, conn: Connection) -> None:
        lifetime = self._max_lifetime * (1.0 - random.random() * _LIFETIME_JITTER)
        member = Member(conn, trio.current_time() + lifetime)
        self._members.add(member)
        self._put_back(member)

    def _grow(self) -> None:
        """Start the connection attempts wanted now (see the module docstring)."""
        if not self.closing:
            self._supply.start(self._wanted())

    def _wanted(self) -> int:
        opening = len(self._members) + self._supply.connecting
        short = self.min_size - opening
        unserved = len(self._waiters) - self._supply.connecting - self._resetting
        return min(max(short, unserved), self.max_size - opening)

    def _opened(self, conn: Connection) -> None:
        if self.closing:
            self._nursery.start_soon(conn.aclose)
            return
        self._add(conn)
        self._grow()

    def _connect_failed(self, exc: Exception, delay: float) -> None:
        if isinstance(exc, Error):
            logger.warning("pool: could not open a connection (retry in %.1fs): %s", delay, exc)
        else:
            logger.warning("pool: setup failed (retry in %.1fs)", delay, exc_info=exc)
        if not self._members and not self._supply.dialing and self._waiters:
            error = ConnectionFailedError(f"the pool could not open a connection: {exc}")
            error.__cause__ = exc
            self._fail_waiters(error)
        self._grow()

    # -- expiry ----------------------------------------------------------------------------

    async def _expire_forever(self) -> None:
        """Close members past ``max_lifetime``, or idle ``max_idle`` beyond ``min_size``."""
        with self._expiry_scope:
            while True:
                with trio.CancelScope(deadline=self._next_expiry()) as timer:
                    self._timer = timer
                    await trio.sleep_forever()
                self._timer = None
                self._expire(trio.current_time())

    def _next_expiry(self) -> float:
        idle = self._idle
        due = min((member.expires for member in idle), default=math.inf)
        if idle and len(self._members) > self.min_size:
            # The stack's bottom has been idle longest.
            due = min(due, idle[0].idle_since + self._max_idle)
        return due

    def _expire(self, now: float) -> None:
        keep: list[Member] = []
        excess = len(self._members) - self.min_size
        for member in self._idle:  # longest idle first
            idle_out = excess > 0 and member.idle_since + self._max_idle <= now
            if member.expires <= now or idle_out:
                self._drop(member)
                self._retired += 1
                excess -= 1
            else:
                keep.append(member)
        self._idle = keep
        self._grow()
