"""Subscriber channels and the values they carry: notifications, notices, parameter changes.

A :class:`Subscription` is a Trio receive channel over a bounded buffer that the
connection's reader fills without waiting (see :mod:`trio_pg.subscriptions`). It
behaves like a memory channel's receiving end, and adds *why* the stream ended: the
reader ends delivery when the subscription overflows or the connection ends, the
subscriber drains what was buffered, and then gets the reason — a
NotificationOverflowError, a ConnectionLostError — or, after a local ``aclose()``, the
plain end of iteration.

It is not a memory channel because a notification burst is thousands of values: a
deque plus Trio's low-level park/reschedule for the one task that usually waits (as in
:mod:`trio_pg.pending`) costs a fraction of a memory channel's hand-over per value.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias, TypeVar

import trio

from trio_pg.errors import (
    ConnectionLostError,
    InterfaceError,
    NotificationOverflowError,
    ProtocolError,
)
from trio_pg.protocol.notification import Notification

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "STREAK",
    "Notice",
    "Notification",
    "OverflowPolicy",
    "ParameterChange",
    "Subscription",
    "block_policy",
]

T = TypeVar("T")

#: What a subscription does when its buffer is full.
OverflowPolicy = Literal["error", "block"]
#: Items a subscription holds before it overflows, unless told otherwise.
DEFAULT_MAX_BUFFER: Final = 10_000
#: Values a subscriber takes from its buffer before :meth:`Subscription.receive` yields.
#: The reader hands subscribers as many before it yields (``subscriptions.BURST``), so a
#: subscriber that is always ready keeps up with a listener's stream: were it fewer,
#: the buffer would grow by the difference each round and overflow. 256 values are a
#: fraction of a millisecond of work on either side.
STREAK: Final = 256
_ABORT_OK: Final = trio.lowlevel.Abort.SUCCEEDED
#: Tasks parked on a subscription, in arrival order (a dict: an abort removes one in O(1)).
_Parked: TypeAlias = dict[trio.lowlevel.Task, None]


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice from the server: a warning or information, not an error.

    The fields are those of an ErrorResponse (protocol-error-fields.html).

    Attributes:
        severity: ``WARNING``, ``NOTICE``, ``INFO``, ``LOG`` or ``DEBUG``, never translated.
        sqlstate: The SQLSTATE code (``00000`` for ``RAISE NOTICE``, ``01xxx`` warnings).
        message: The primary message.
        detail: A secondary message with more detail, if any.
        hint: A suggestion of what to do, if any.
        where: The call stack context (``PL/pgSQL function ... line 3 at RAISE``), if any.
        fields: Every field as received, keyed by its one-letter code.
    """

    severity: str
    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    where: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Notice:
        """Build a notice from NoticeResponse fields."""
        return cls(
            # ``V`` is not translated (PostgreSQL >= 9.6); ``S`` may be.
            severity=fields.get("V") or fields.get("S") or "NOTICE",
            sqlstate=fields.get("C", "00000"),
            message=fields.get("M", ""),
            detail=fields.get("D"),
            hint=fields.get("H"),
            where=fields.get("W"),
            fields=dict(fields),
        )


@dataclass(frozen=True, slots=True)
class ParameterChange:
    """A server parameter took a new value (``SET TimeZone``, ``SET application_name``...).

    Only parameters the server reports are announced (protocol-flow.html#PROTOCOL-ASYNC).

    Attributes:
        name: The parameter's name.
        value: Its new value.
    """

    name: str
    value: str


def block_policy(max_buffer: int, on_overflow: str) -> bool:
    """Check subscription options; True for ``on_overflow="block"``.

    Raises:
        InterfaceError: ``max_buffer`` is not a positive integer, or the policy is unknown.
    """
    if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
        raise InterfaceError(f"max_buffer must be a positive integer, got {max_buffer!r}")
    if on_overflow not in ("error", "block"):
        raise InterfaceError(f'on_overflow must be "error" or "block", got {on_overflow!r}')
    return on_overflow == "block"


def _fresh(reason: BaseException) -> BaseException:
    # One exception object raised in several tasks would collect all their tracebacks.
    # trio_pg's own errors are rebuilt from their args; anything else is a bug, kept as is.
    if not isinstance(reason, (ConnectionLostError, ProtocolError)):
        return reason
    error = type(reason)(*reason.args)
    error.__cause__ = reason.__cause__
    return error


async def _park(parked: _Parked) -> None:
    """Wait, registered in ``parked`` (arrival order), until someone reschedules us."""
    task = trio.lowlevel.current_task()
    parked[task] = None

    def abort(_: object) -> trio.lowlevel.Abort:
        parked.pop(task, None)
        return _ABORT_OK

    await trio.lowlevel.wait_task_rescheduled(abort)


class Subscription(trio.abc.ReceiveChannel[T]):
    """A receive channel of values the connection delivers (see the module docstring).

    Use it with ``async for``, or :meth:`receive`. When it ends, it raises why after the
    values it holds: :class:`~trio_pg.errors.NotificationOverflowError` when its buffer
    overflowed, :class:`~trio_pg.errors.ConnectionLostError` (or ProtocolError) when the
    connection broke; ``async for`` just ends when the connection was closed locally.
    After the block that made it ends, it is closed (``ClosedResourceError``).
    """

    def __init__(self, max_buffer: int, block: bool) -> None:
        self._buffer: deque[T] = deque()
        self._max_buffer = max_buffer
        self._block = block
        self._open = True  # values may still be delivered
        self._closed = False  # the subscriber closed it
        self._receivers: _Parked = {}  # waiting in receive() for a value
        self._putters: _Parked = {}  # waiting in _put() for room
        self._reason: BaseException | None = None
        self._overflowed = False
        self._dropped = 0
        self._reported = False
        self._streak = 0

    # -- subscriber side -----------------------------------------------------------------

    async def receive(self) -> T:
        """The next value; waits for one when none is buffered.

        Each call is a cancellation point. It lets other tasks run whenever it waits and
        at least every 256 values: the reader delivers a whole network read at once,
        and a subscriber taking one value per scheduling round could never catch up.

        Raises:
            NotificationOverflowError: The buffer overflowed; everything delivered
                before the gap has been received.
            ConnectionLostError: The connection broke; likewise after what was buffered.
            trio.EndOfChannel: The connection was closed locally.
            trio.ClosedResourceError: This subscription was closed.
        """
        buffer = self._buffer
        if buffer and self._streak < STREAK:
            # Not cancelled, this does not yield: the value taken next is still there.
            await trio.lowlevel.checkpoint_if_cancelled()
            self._streak += 1
            if self._putters:
                self._wake_all(self._putters)
            return buffer.popleft()
        return await self._wait()

    async def __anext__(self) -> T:
        # The common case of ``async for`` inlined: one coroutine per value, not two.
        buffer = self._buffer
        if buffer and self._streak < STREAK:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._streak += 1
            if self._putters:
                self._wake_all(self._putters)
            return buffer.popleft()
        try:
            return await self._wait()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def _wait(self) -> T:
        """A full checkpoint, then the next value: waiting for one if need be."""
        self._streak = 0
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            if self._closed:
                raise trio.ClosedResourceError("this subscription was closed")
            buffer = self._buffer
            if buffer or not self._open:
                if not waited:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return self.receive_nowait()
            await _park(self._receivers)
            waited = True

    def receive_nowait(self) -> T:
        """The next buffered value, without waiting.

        Raises:
            trio.WouldBlock: Nothing is buffered.
            NotificationOverflowError | ConnectionLostError | trio.EndOfChannel: As for
                :meth:`receive`, once the buffered values are taken.
            trio.ClosedResourceError: This subscription was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("this subscription was closed")
        buffer = self._buffer
        if buffer:
            if self._putters:
                self._wake_all(self._putters)
            return buffer.popleft()
        if self._open:
            raise trio.WouldBlock
        raise self._ending()

    def close(self) -> None:
        """Stop receiving; the connection stops delivering here. Not a checkpoint."""
        if self._closed:
            return
        self._closed = True
        self._open = False
        self._buffer.clear()
        self._wake_all(self._receivers)  # they raise ClosedResourceError
        self._wake_all(self._putters)  # their values are dropped

    async def aclose(self) -> None:
        """Stop receiving; see :meth:`close`."""
        self.close()
        await trio.lowlevel.checkpoint()

    @property
    def dropped(self) -> int:
        """Values dropped since the buffer overflowed (0 while it has not)."""
        return self._dropped

    def _ending(self) -> BaseException:
        if self._overflowed:
            self._reported = True  # the count the subscriber saw stays the count
            return NotificationOverflowError(self._dropped)
        if self._reason is not None:
            return _fresh(self._reason)
        return trio.EndOfChannel()

    @staticmethod
    def _wake_all(tasks: _Parked) -> None:
        # Each woken task looks again at the buffer (another may have taken the value).
        for task in tasks:
            trio.lowlevel.reschedule(task)
        tasks.clear()

    # -- delivering side ------------------------------------------------------------------

    def _offer(self, value: T) -> bool:
        """Deliver without waiting; True when a "block" subscription is full."""
        buffer = self._buffer
        if self._open and len(buffer) < self._max_buffer:
            buffer.append(value)
            if self._receivers:
                self._wake_one()
            return False
        if self._overflowed:
            if not self._reported:
                self._dropped += 1
        elif self._open:  # full
            if self._block:
                return True
            self._overflowed = True
            self._dropped = 1
            self._open = False  # the subscriber drains what it holds, then sees the gap
        return False

    def _offer_run(self, values: list[T], start: int, stop: int) -> int:
        """Deliver ``values[start:stop]`` without waiting, as :meth:`_offer` one by one.

        Returns the index of the first value a full "block" subscription refused
        (``stop`` when it took them all): those wait for room.
        """
        buffer = self._buffer
        if self._open:
            take = min(self._max_buffer - len(buffer), stop - start)
            if take > 0:
                buffer.extend(values[start : start + take])
                start += take
                # One waiting receiver per value, as one by one.
                for _ in range(min(take, len(self._receivers))):
                    self._wake_one()
        for index in range(start, stop):
            if self._offer(values[index]):
                return index
        return stop

    def _room_to_half(self) -> int:
        """Values that fit before the buffer is half full (the reader's pacing)."""
        return (self._max_buffer + 1) // 2 - len(self._buffer)

    def _wake_one(self) -> None:
        receivers = self._receivers
        task = next(iter(receivers))
        del receivers[task]
        trio.lowlevel.reschedule(task)

    async def _put(self, value: T) -> None:
        """Deliver, waiting for room; dropped if the subscription closes meanwhile."""
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while self._open:
            buffer = self._buffer
            if len(buffer) < self._max_buffer:
                buffer.append(value)
                if self._receivers:
                    self._wake_one()
                break
            await _park(self._putters)
            waited = True
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def _finish(self, reason: BaseException | None) -> None:
        """No more values: after what it holds, the subscriber gets ``reason``."""
        if not self._overflowed and self._reason is None:
            self._reason = reason
        self._open = False
        self._wake_all(self._receivers)
        self._wake_all(self._putters)
