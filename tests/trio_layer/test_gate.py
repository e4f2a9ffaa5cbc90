"""The gate that gives exclusive blocks a connection to themselves (trio_pg.gate).

No connection here: tasks enter and leave the gate and write what they do into a log,
sequenced with ``trio.testing.wait_all_tasks_blocked``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from trio_pg.gate import Gate, takes_turn


async def _call(gate: Gate, log: list[str], name: str, release: trio.Event | None = None) -> None:
    """An ordinary call: counted in, does its work (until ``release``), counted out."""
    counted = await gate.enter()
    log.append(f"{name} in")
    try:
        if release is not None:
            await release.wait()
    finally:
        log.append(f"{name} out")
        if counted:
            gate.leave()


async def _block(gate: Gate, log: list[str], name: str, release: trio.Event) -> None:
    async with gate.hold():
        log.append(f"{name} in")
        await release.wait()
        log.append(f"{name} out")


async def test_ordinary_calls_pass_a_free_gate_together() -> None:
    gate = Gate()
    log: list[str] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_call, gate, log, "a", release)
        nursery.start_soon(_call, gate, log, "b", release)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(log) == ["a in", "b in"]
        assert not gate.held
        release.set()


async def test_block_waits_for_calls_let_in_before_it_and_later_calls_wait_for_it() -> None:
    gate = Gate()
    log: list[str] = []
    first, block, later = trio.Event(), trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_call, gate, log, "first", first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_block, gate, log, "block", block)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_call, gate, log, "later", later)
        await trio.testing.wait_all_tasks_blocked()
        # The block waits for "first"; "later" queues behind the block, not beside "first".
        assert log == ["first in"]
        first.set()
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["first in", "first out", "block in"]
        assert gate.held
        block.set()
        await trio.testing.wait_all_tasks_blocked()
        assert log[-2:] == ["block out", "later in"]
        later.set()
    assert log == ["first in", "first out", "block in", "block out", "later in", "later out"]
    assert not gate.held


async def test_waiters_are_let_in_first_come_first_served() -> None:
    gate = Gate()
    log: list[str] = []
    events = {name: trio.Event() for name in ("A", "c1", "B", "c2")}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_block, gate, log, "A", events["A"])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_call, gate, log, "c1", events["c1"])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_block, gate, log, "B", events["B"])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_call, gate, log, "c2", events["c2"])
        await trio.testing.wait_all_tasks_blocked()
        for name in ("A", "c1", "B", "c2"):
            events[name].set()
            await trio.testing.wait_all_tasks_blocked()
    assert log == [
        "A in",
        "A out",
        "c1 in",
        "c1 out",
        "B in",
        "B out",
        "c2 in",
        "c2 out",
    ]


async def test_holder_calls_pass_without_being_counted() -> None:
    gate = Gate()
    async with gate.hold():
        assert await gate.enter() is False
        # A nested block of the holder (a savepoint) does not wait for itself.
        async with gate.hold():
            assert gate.held
        assert gate.held
    assert not gate.held
    assert await gate.enter() is True
    gate.leave()


async def test_cancelled_waiting_block_lets_the_calls_behind_it_through() -> None:
    gate = Gate()
    log: list[str] = []
    holder_release, never, later = trio.Event(), trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_block, gate, log, "A", holder_release)
        await trio.testing.wait_all_tasks_blocked()
        waiting = trio.CancelScope()

        async def cancelled_block() -> None:
            with waiting:
                await _block(gate, log, "B", never)

        nursery.start_soon(cancelled_block)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_call, gate, log, "c", later)
        await trio.testing.wait_all_tasks_blocked()
        waiting.cancel()
        await trio.testing.wait_all_tasks_blocked()
        holder_release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["A in", "A out", "c in"]
        later.set()
    assert not gate.held


async def test_block_cancelled_while_entering_a_free_gate_leaves_it_free() -> None:
    gate = Gate()
    with trio.CancelScope() as scope:
        scope.cancel()
        async with gate.hold():
            pytest.fail("a cancelled block must not start")  # pragma: no cover
    assert not gate.held
    assert await gate.enter() is True
    gate.leave()


async def test_cancelled_waiting_call_is_not_counted() -> None:
    gate = Gate()
    log: list[str] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_block, gate, log, "A", release)
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.01):
            await gate.enter()
        release.set()
    # Had the cancelled call been counted, this block would wait for it forever.
    with trio.fail_after(1):
        async with gate.hold():
            pass


async def test_holder_hook_runs_before_each_call_and_nested_block_of_the_holder() -> None:
    gate = Gate()
    log: list[str] = []

    def hook(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            log.append(name)
            await trio.lowlevel.checkpoint()

        return run

    async with gate.hold():
        assert gate.set_holder_hook(hook("first")) is None
        await gate.enter()
        async with gate.hold():
            log.append("nested")
        previous = gate.set_holder_hook(hook("second"))
        await gate.enter()
        gate.set_holder_hook(previous)
        await gate.enter()
        gate.set_holder_hook(None)
        await gate.enter()
    assert log == ["first", "first", "nested", "second", "first"]


async def test_holder_hook_does_not_run_for_other_tasks() -> None:
    gate = Gate()
    log: list[str] = []

    async def hook() -> None:
        log.append("hook")

    release = trio.Event()
    async with trio.open_nursery() as nursery:

        async def block() -> None:
            async with gate.hold():
                gate.set_holder_hook(hook)
                await release.wait()
                gate.set_holder_hook(None)

        nursery.start_soon(block)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_call, gate, log, "other")
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert log == ["other in", "other out"]


class _Thing:
    def __init__(self, gate: Gate | None) -> None:
        self._gate = gate
        self.calls = 0

    @takes_turn
    async def work(self, n: int) -> int:
        self.calls += 1
        await trio.lowlevel.checkpoint()
        return n * 2


async def test_takes_turn_waits_at_the_gate_and_views_without_gate_skip_it() -> None:
    gate = Gate()
    thing, view = _Thing(gate), _Thing(None)
    results: list[int] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:

        async def block() -> None:
            async with gate.hold():
                # Inside the block a gateless view still works; the gated object waits.
                results.append(await view.work(1))
                await release.wait()

        nursery.start_soon(block)
        await trio.testing.wait_all_tasks_blocked()

        async def gated() -> None:
            results.append(await thing.work(2))

        nursery.start_soon(gated)
        await trio.testing.wait_all_tasks_blocked()
        assert results == [2]
        assert thing.calls == 0
        release.set()
    assert results == [2, 4]
    assert not gate.held
