"""Cancel an operation after its k-th checkpoint, for every k until it completes.

A Trio instrument counts the scheduling steps of the task running the operation (each
step ends at a checkpoint where the task yielded); after the k-th one the operation's
cancel scope is cancelled. Running k = 1, 2, ... until a run finishes uncancelled hits
every await the operation passes through, whatever the server's timing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


class _CancelAfterSteps(trio.abc.Instrument):
    def __init__(self, task: trio.lowlevel.Task, steps: int, scope: trio.CancelScope) -> None:
        self.task = task
        self.left = steps
        self.scope = scope

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task and self.left > 0:
            self.left -= 1
            if self.left == 0:
                self.scope.cancel()


async def run_cancelled_after(operation: Callable[[], Awaitable[object]], steps: int) -> bool:
    """Run ``operation``, cancelled after ``steps`` of its task's steps; True if it finished."""
    finished = False
    with trio.CancelScope() as scope:
        instrument = _CancelAfterSteps(trio.lowlevel.current_task(), steps, scope)
        trio.lowlevel.add_instrument(instrument)
        try:
            await operation()
            finished = True
        finally:
            trio.lowlevel.remove_instrument(instrument)
    return finished and not scope.cancelled_caught


async def sweep(
    operation: Callable[[], Awaitable[object]],
    check: Callable[[bool], Awaitable[None]],
    *,
    limit: int = 5000,
) -> int:
    """Run ``operation`` cancelled after k steps for k = 1, 2, ... until it completes.

    ``check(finished)`` runs after each attempt (outside the cancelled scope) and asserts
    that the connection is in step. Returns how many attempts were cancelled.
    """
    for steps in range(1, limit):
        finished = await run_cancelled_after(operation, steps)
        await check(finished)
        if finished:
            return steps - 1
    raise AssertionError(f"the operation did not complete within {limit} steps")
