"""Exclusive blocks on a shared connection.

Any number of tasks may send requests through one connection; their requests queue in
its FIFO. Some blocks need the connection to themselves for a while — a transaction, a
pipeline, a cursor, a COPY — so that no other task's statement lands in the middle.
:class:`Gate` gives them that, first come first served:

* an ordinary call is *counted in* with :meth:`Gate.enter` and out with
  :meth:`Gate.leave`; it goes ahead at once unless a block holds the gate or is waiting
  for it, in which case it queues behind that block;
* ``async with gate.hold():`` waits until no block holds the gate and every ordinary
  call let in before it has finished (a call may take two requests, describe then
  execute, and neither may land inside the block), then makes the calling task the
  *holder* until the block ends. The holder's own calls pass freely.

Other tasks that must work inside someone's block use the object that block yields,
whose calls do not pass the gate (see :mod:`trio_pg.view`).

A block may install a *holder hook* (:meth:`Gate.set_holder_hook`): it is awaited before
each call or nested block the holder starts. A pipeline uses it to send what it has
queued first, so the holder's own statements reach the server in program order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import wraps
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import trio

__all__ = ["Gate", "HolderHook", "takes_turn"]

#: Awaited before each call or nested block of the holder (see the module docstring).
HolderHook = Callable[[], Awaitable[None]]


class _Waiter:
    __slots__ = ("event", "exclusive")

    def __init__(self, exclusive: bool) -> None:
        self.exclusive = exclusive
        self.event = trio.Event()


class Gate:
    """A FIFO gate with an exclusive holder. See the module docstring."""

    __slots__ = ("_active", "_holder", "_hook", "_reserved", "_waiters")

    def __init__(self) -> None:
        self._holder: trio.lowlevel.Task | None = None
        self._hook: HolderHook | None = None
        self._reserved = False  # a block was let in and has not started running yet
        self._active = 0  # ordinary calls counted in
        self._waiters: deque[_Waiter] = deque()

    @property
    def held(self) -> bool:
        """Whether a block holds the gate (or has been let in)."""
        return self._holder is not None or self._reserved

    def set_holder_hook(self, hook: HolderHook | None) -> HolderHook | None:
        """Install ``hook`` (None: none) for the holder's calls; returns the previous one."""
        previous, self._hook = self._hook, hook
        return previous

    async def enter(self) -> bool:
        """Count an ordinary call in, waiting behind blocks. Returns whether to :meth:`leave`.

        The holder's own calls are not counted (False); they never wait.
        """
        holder = self._holder
        if holder is not None and holder is trio.lowlevel.current_task():
            if self._hook is not None:
                await self._hook()
            return False
        if holder is None and not self._reserved and not self._waiters:
            self._active += 1
            return True
        await self._wait(_Waiter(exclusive=False))
        return True

    def leave(self) -> None:
        """An ordinary call counted in by :meth:`enter` has finished."""
        self._active -= 1
        if self._active == 0:
            self._release()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold the gate for the duration of the block (re-entrant for the holder)."""
        me = trio.lowlevel.current_task()
        if self._holder is me:
            if self._hook is not None:
                await self._hook()
            yield  # a nested block: a savepoint, a cursor inside a transaction
            return
        if self._holder is None and not self._reserved and not self._waiters and not self._active:
            self._reserved = True
            try:
                await trio.lowlevel.checkpoint()
            except BaseException:
                self._reserved = False
                self._release()
                raise
        else:
            await self._wait(_Waiter(exclusive=True))
        self._reserved = False
        self._holder = me
        try:
            yield
        finally:
            self._holder = None
            self._release()

    async def _wait(self, waiter: _Waiter) -> None:
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if not waiter.event.is_set():
                self._waiters.remove(waiter)
            elif waiter.exclusive:
                self._reserved = False  # let in just as it was cancelled: pass it on
            else:
                self._active -= 1
            self._release()
            raise

    def _release(self) -> None:
        """Let in waiters from the front: ordinary calls, up to the next block."""
        if self._holder is not None or self._reserved:
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters[0]
            if waiter.exclusive:
                if self._active == 0:
                    waiters.popleft()
                    self._reserved = True
                    waiter.event.set()
                return
            waiters.popleft()
            self._active += 1
            waiter.event.set()


class _HasGate(Protocol):
    @property
    def _gate(self) -> Gate | None: ...


_S = TypeVar("_S", bound=_HasGate)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def takes_turn(
    method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]]:
    """Decorate a public query method: it waits for its turn at the gate.

    Objects without a gate (``_gate is None``: the views that blocks yield) skip it.
    """

    @wraps(method)
    async def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        gate = self._gate
        if gate is None:
            return await method(self, *args, **kwargs)
        counted = await gate.enter()
        try:
            return await method(self, *args, **kwargs)
        finally:
            if counted:
                gate.leave()

    return wrapper
