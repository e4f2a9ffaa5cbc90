"""A LISTEN stream that survives losing its connection: :func:`open_listener`.

Theory of operation
-------------------
:func:`open_listener` runs one task in a nursery of its own. The task opens a dedicated
connection, enters ``listen(*channels, on_overflow="block")`` on it and forwards every
notification to the channel the block yields. Nothing is dropped on the way: when the
application reads slowly, the forwarding waits, the subscription fills, and the reader
of the dedicated connection stops reading, which pushes back on the server (whose
notification queue then holds them, sql-notify.html).

When the connection is lost, the subscription first gives up what it had buffered,
which is forwarded; then the task connects again (at once, then after exponentially
growing, jittered delays up to a bound, every wait cancellable), LISTENs again, and
puts a :class:`ListenerReconnected` marker in the stream before any notification of the
new connection. Notifications sent while no connection listened are gone: the marker
is the application's cue to resynchronise from the database.

The first connection is made before the block is entered, so a wrong password or an
unreachable server is raised by ``open_listener`` itself. Failures never come out as an
exception group: the block raises only what its body raised.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import trio

from trio_pg.channels import DEFAULT_MAX_BUFFER, Notification, Subscription, block_policy
from trio_pg.connect import open_connection
from trio_pg.errors import ConnectionLostError, Error, InterfaceError
from trio_pg.nursery import open_owned_nursery
from trio_pg.subscriptions import channel_names

__all__ = ["ListenerReconnected", "open_listener"]

logger = logging.getLogger("trio_pg")

#: Buffer of the dedicated connection's own subscription (the forwarding empties it).
_FORWARD_BUFFER: Final = 256


@dataclass(frozen=True, slots=True)
class ListenerReconnected:
    """Marker in an :func:`open_listener` stream: the listener lost its connection.

    It is listening again on a new connection. Notifications sent between the loss and
    this marker were missed; everything before the marker arrived before the loss.

    Attributes:
        cause: What ended the previous connection.
        attempts: Connection attempts it took to listen again (1: the first succeeded).
        backend_pid: The server process ID of the new connection.
    """

    cause: Error
    attempts: int
    backend_pid: int


class _Listener:
    """The task behind :func:`open_listener`."""

    def __init__(
        self,
        dsn: str | None,
        channels: tuple[str, ...],
        params: dict[str, object],
        out: Subscription[Notification | ListenerReconnected],
        delays: tuple[float, float],
    ) -> None:
        self._dsn = dsn
        self._channels = channels
        self._params = params
        self._out = out
        self._first_delay, self._max_delay = delays
        self._started = False
        self._listening = False
        self._forwarding: trio.CancelScope | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self._run(task_status)
        except Exception as exc:  # a bug: handed to the reader rather than raised in a group
            if not self._started:
                raise
            self._out._finish(exc)

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        cause: Error | None = None
        attempts = 0
        delay = self._first_delay
        while True:
            attempts += 1
            self._listening = False
            try:
                await self._session(cause, attempts, task_status)
                return  # stopped
            except Error as exc:
                if not self._started:
                    raise  # the first connection: open_listener raises it
                if self._listening:
                    # A working connection was lost: try again at once, since the
                    # server is usually still there (an idle timeout, a terminated backend).
                    cause, attempts, delay = exc, 0, self._first_delay
                    logger.warning("listener lost its connection, reconnecting: %s", exc)
                    continue
                logger.warning("listener reconnection attempt %d failed: %s", attempts, exc)
                await trio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._max_delay)

    async def _session(
        self, cause: Error | None, attempts: int, task_status: trio.TaskStatus[None]
    ) -> None:
        """One connection: listen and forward until it is lost (an Error) or stopped."""
        async with open_connection(self._dsn, **self._params) as conn:
            with trio.CancelScope() as forwarding:
                self._forwarding = forwarding
                try:
                    async with conn.listen(
                        *self._channels, max_buffer=_FORWARD_BUFFER, on_overflow="block"
                    ) as sub:
                        self._listening = True
                        if not self._started:
                            self._started = True
                            task_status.started()
                        else:
                            assert cause is not None
                            marker = ListenerReconnected(cause, attempts, conn.backend_pid)
                            await self._out._put(marker)
                        async for notification in sub:
                            await self._out._put(notification)
                finally:
                    self._forwarding = None
            if forwarding.cancelled_caught:
                return  # stopped: the connection is closed politely on the way out
        # Only a local close ends a subscription without an error; nobody closed it.
        raise ConnectionLostError("the listener's connection ended")

    def stop(self) -> bool:
        """End the task; True when it is forwarding and will close its connection itself.

        Otherwise (connecting, or waiting to reconnect) the caller cancels it.
        """
        if self._forwarding is None:
            return False
        self._forwarding.cancel()
        return True


@asynccontextmanager
async def open_listener(
    dsn: str | None = None,
    *channels: str,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    reconnect_delay: float = 0.1,
    max_reconnect_delay: float = 10.0,
    **params: object,
) -> AsyncIterator[Subscription[Notification | ListenerReconnected]]:
    """Listen on ``channels`` through a dedicated connection that reconnects when lost.

    ::

        async with trio_pg.open_listener(dsn, "orders") as stream:
            async for item in stream:
                if isinstance(item, trio_pg.ListenerReconnected):
                    await resynchronise()   # notifications may have been missed
                else:
                    handle(item.payload)

    Args:
        dsn: A libpq URI or keyword/value string, as for :func:`trio_pg.open_connection`.
        channels: Channel names to LISTEN on (at least one).
        max_buffer: Items the yielded channel holds; when it is full the listener's
            connection waits (nothing is dropped).
        reconnect_delay: Seconds before the second reconnection attempt after a loss
            (the first is immediate); doubled after each failure, with jitter.
        max_reconnect_delay: The bound of that delay.
        **params: libpq keywords and trio_pg options, as for ``open_connection``. Set
            ``keepalives_idle`` and friends to notice a silently dead network.

    Yields:
        A receive channel of :class:`~trio_pg.channels.Notification`, with a
        :class:`ListenerReconnected` marker at each gap.

    Raises:
        InterfaceError: Bad arguments.
        PostgresError | ConnectionFailedError | AuthenticationError | TLSError: The first
            connection or its LISTEN failed (later failures are retried).

    Leaving the block closes the connection; the block raises only what its body raised.
    """
    names = channel_names(channels)
    block_policy(max_buffer, "block")
    delays = (reconnect_delay, max_reconnect_delay)
    if not all(isinstance(d, int | float) and 0 < d < math.inf for d in delays):
        raise InterfaceError(
            f"reconnect_delay and max_reconnect_delay must be positive numbers of seconds, "
            f"got {reconnect_delay!r} and {max_reconnect_delay!r}"
        )
    out: Subscription[Notification | ListenerReconnected] = Subscription(max_buffer, True)
    listener = _Listener(dsn, names, dict(params), out, delays)
    async with open_owned_nursery() as nursery:
        await nursery.start(listener.run)
        try:
            yield out
        finally:
            out.close()
            if not listener.stop():
                nursery.cancel_scope.cancel()
