"""Where a request's results wait for the task that asked for them.

The reader task hands each :class:`PendingRequest` the messages routed to its request;
the asking task takes them in batches. Hand-over uses Trio's low-level park/unpark: a
result costs one reschedule, not a memory channel per request, and the reader never
blocks on a slow consumer. Cancelling a task parked here abandons its request (the
connection then discards the rest of that request's messages).

The one exception is a streaming request (COPY TO STDOUT) whose block holds the
connection: there the reader waits in :meth:`PendingRequest.wait_consumed` until the
consumer has taken what was delivered, so memory stays bounded and TCP pushes back on
the server.

:class:`WakeSignal` is the same idea for the writer: a level-triggered "there may be
work" flag that wakes one parked task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import trio

from trio_pg.protocol import Request
from trio_pg.protocol.backend import BackendMessage

__all__ = ["PendingRequest", "WakeSignal"]

_ABORT_OK: Final = trio.lowlevel.Abort.SUCCEEDED


class WakeSignal:
    """Wake one waiting task; a set before the wait is remembered (level-triggered)."""

    __slots__ = ("_flag", "_task")

    def __init__(self) -> None:
        self._flag = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        """Wake the waiter, or make the next :meth:`wait` return at once."""
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)
        else:
            self._flag = True

    async def wait(self) -> None:
        """Return once :meth:`set` has been called since the last wait."""
        if self._flag:
            self._flag = False
            return
        self._task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._task = None
            return _ABORT_OK

        await trio.lowlevel.wait_task_rescheduled(abort)


class PendingRequest:
    """The result sink of one request.

    Attributes:
        request: The core's request this sink belongs to.
        done: The request's last message has been delivered.
        error: Set when the connection failed before the request completed.
    """

    __slots__ = (
        "_messages",
        "_on_abandon",
        "_reader",
        "_task",
        "done",
        "done_event",
        "error",
        "request",
    )

    def __init__(self, on_abandon: Callable[[PendingRequest], None]) -> None:
        self.request: Request | None = None
        self._messages: list[BackendMessage] = []
        self.done = False
        self.error: BaseException | None = None
        self._task: trio.lowlevel.Task | None = None
        self._reader: trio.lowlevel.Task | None = None
        self._on_abandon = on_abandon
        self.done_event: trio.Event | None = None

    # -- reader side ---------------------------------------------------------------------

    def deliver(self, messages: list[BackendMessage], done: bool) -> None:
        """Add messages for the request (called by the reader)."""
        if self._messages:
            self._messages.extend(messages)
        else:
            self._messages = messages
        if done:
            self._finish()
        self._wake()

    def fail(self, error: BaseException) -> None:
        """The connection failed: the waiter gets ``error`` after what was delivered."""
        if self.done:
            return
        self.error = error
        self._finish()
        self._wake()

    def _finish(self) -> None:
        self.done = True
        if self.done_event is not None:
            self.done_event.set()

    def _wake(self) -> None:
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)

    async def wait_consumed(self) -> None:
        """(Reader) Wait until the consumer took what was delivered, or gave up on it."""
        request = self.request
        while self._messages and not self.done and not (request is not None and request.abandoned):
            self._reader = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_reader)

    def _abort_reader(self, _: object) -> trio.lowlevel.Abort:
        self._reader = None
        return _ABORT_OK

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            trio.lowlevel.reschedule(reader)

    # -- caller side ---------------------------------------------------------------------

    async def next_batch(self) -> list[BackendMessage]:
        """The messages delivered since the last call; ``[]`` once the request is done.

        Raises:
            ConnectionLostError | ProtocolError: The connection failed first.
            trio.Cancelled: The request is abandoned and its results discarded.
        """
        if not self._messages and not self.done:
            self._task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        messages = self._messages
        if messages:
            self._messages = []
            if self._reader is not None:
                self._wake_reader()
            return messages
        if self.error is not None:
            raise self.error
        return messages

    def abandon(self) -> None:
        """The caller stops reading: the connection discards the rest of the results."""
        if not self.done:
            self._on_abandon(self)
            self._messages = []
            self._wake_reader()

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._task = None
        self._on_abandon(self)
        self._messages = []
        self._wake_reader()
        return _ABORT_OK
