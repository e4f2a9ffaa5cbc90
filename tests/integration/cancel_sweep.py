"""Cancel an operation after its k-th checkpoint, for every k until it completes.

A Trio instrument counts the scheduling steps of the task running the operation (each
step ends at a checkpoint where the task yielded); after the k-th one the operation's
cancel scope is cancelled. Running k = 1, 2, ... until a run finishes uncancelled hits
every await the operation passes through, whatever the server's timing.

With ``every_task=True`` the steps of every task are counted (the scheduler's ticks), not
only the operation's. The cancel then also lands while the operation waits and the
connection's own tasks have moved on since its last step (a request written and not yet
answered, say): moments that a sibling task cancelling after k checkpoints of its own hit
only by chance of timing, and that counting the operation's steps alone skips.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


class _CancelAfterSteps(trio.abc.Instrument):
    def __init__(
        self, task: trio.lowlevel.Task | None, steps: int, scope: trio.CancelScope
    ) -> None:
        self.task = task  # None: count the steps of every task
        self.left = steps
        self.scope = scope

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if (self.task is None or task is self.task) and self.left > 0:
            self.left -= 1
            if self.left == 0:
                self.scope.cancel()


async def run_cancelled_after(
    operation: Callable[[], Awaitable[object]], steps: int, *, every_task: bool = False
) -> bool:
    """Run ``operation``, cancelled after ``steps`` of its task's steps; True if it finished.

    With ``every_task`` the steps of all tasks count, not only those of the operation's task.
    """
    finished = False
    with trio.CancelScope() as scope:
        task = None if every_task else trio.lowlevel.current_task()
        instrument = _CancelAfterSteps(task, steps, scope)
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
    every_task: bool = False,
) -> int:
    """Run ``operation`` cancelled after k steps for k = 1, 2, ... until it completes.

    ``check(finished)`` runs after each attempt (outside the cancelled scope) and asserts
    that the connection is in step. Returns how many attempts were cancelled. With
    ``every_task`` the steps of all tasks count (see the module docstring).
    """
    for steps in range(1, limit):
        finished = await run_cancelled_after(operation, steps, every_task=every_task)
        await check(finished)
        if finished:
            return steps - 1
    raise AssertionError(f"the operation did not complete within {limit} steps")
