"""Opening a pool's connections in the background, with backoff after failures.

Theory of operation
-------------------
The pool asks :class:`Supply` for connections with :meth:`Supply.start`; each one is an
*attempt*, a task in the supply's own nursery (cancelled by :meth:`Supply.close`), so no
acquiring task ever waits inside a connect and a cancelled waiter cannot cut one short.
A connection that opens (``setup`` included) is handed to the pool's ``opened``
callback; the connection's own tasks run in the pool's nursery, so they outlive the
attempt.

A failed attempt sets the time before which no attempt may start: the backoff, doubled
per failure from :data:`BACKOFF_FIRST` up to :data:`BACKOFF_MAX`, with jitter, and back
to nothing after a success. Attempts that began before the latest failure do not double
it again, so ten attempts failing together count as one failure of the server. An
attempt that waited for the backoff asks the pool whether it is still wanted first.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from trio_pg.connection import Connection

__all__ = ["BACKOFF_FIRST", "BACKOFF_MAX", "Opener", "Supply"]

#: Seconds before the first retry after a failed attempt; doubled per failure.
BACKOFF_FIRST: Final = 0.1
#: Longest wait between attempts, in seconds.
BACKOFF_MAX: Final = 10.0
#: Each wait is scaled by a random factor within this fraction either side.
_JITTER: Final = 0.2

#: Opens one connection whose tasks run in the given nursery (``setup`` included).
Opener = Callable[[trio.Nursery], Awaitable[Connection]]


class Supply:
    """Connection attempts for one pool; see the module docstring.

    Args:
        opener: Opens a connection in the nursery it is given.
        nursery: Where the connections' own tasks run (the pool's nursery).
        wanted: How many more attempts the pool wants now, not counting the caller.
        opened: Takes each connection that opened.
        failed: Told of each failed attempt and the wait before the next may start.

    Attributes:
        connecting: Attempts under way, or waiting for the backoff to pass.
        dialing: Attempts under way.
        connects: Connections opened.
        failures: Attempts that failed.
    """

    def __init__(
        self,
        *,
        opener: Opener,
        nursery: trio.Nursery,
        wanted: Callable[[], int],
        opened: Callable[[Connection], None],
        failed: Callable[[Exception, float], None],
    ) -> None:
        self._opener = opener
        self._nursery = nursery
        self._wanted = wanted
        self._opened = opened
        self._failed = failed
        self.connecting = 0
        self.dialing = 0
        self.connects = 0
        self.failures = 0
        self._backoff = 0.0
        self._backoff_since = -math.inf
        self._retry_at = -math.inf
        self._workers: trio.Nursery | None = None
        self._scope = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the attempts until :meth:`close` (runs in the pool's nursery)."""
        with self._scope:
            async with trio.open_nursery() as workers:
                self._workers = workers
                task_status.started()
                await trio.sleep_forever()
        self._workers = None

    def close(self) -> None:
        """Cancel every attempt; start no more."""
        self._scope.cancel()
        self._workers = None

    async def open_now(self) -> Connection:
        """Open one connection in the calling task, raising what the attempt raises."""
        conn = await self._opener(self._nursery)
        self.connects += 1
        return conn

    def start(self, count: int) -> None:
        """Start ``count`` attempts in the background."""
        workers = self._workers
        if workers is None:
            return
        for _ in range(count):
            self.connecting += 1
            workers.start_soon(self._attempt)

    async def _attempt(self) -> None:
        try:
            if self._retry_at > trio.current_time():
                await trio.sleep_until(self._retry_at)
                self.connecting -= 1  # the pool counts attempts other than this one
                wanted = self._wanted() > 0
                self.connecting += 1
                if not wanted:
                    return
            started = trio.current_time()
            self.dialing += 1
            try:
                conn = await self._opener(self._nursery)
            except Exception as exc:  # noqa: BLE001 - setup is user code; the pool reports it
                failure: Exception | None = exc
            else:
                failure = None
            finally:
                self.dialing -= 1
        finally:
            self.connecting -= 1
        if failure is None:
            self.connects += 1
            self._backoff = 0.0
            self._retry_at = -math.inf
            self._opened(conn)
            return
        self.failures += 1
        now = trio.current_time()
        if started >= self._backoff_since:
            self._backoff = min(BACKOFF_MAX, self._backoff * 2 or BACKOFF_FIRST)
            self._backoff_since = now
        delay = self._backoff * random.uniform(1.0 - _JITTER, 1.0 + _JITTER)
        self._retry_at = now + delay
        self._failed(failure, delay)
