"""open_owned_nursery: the block's own exception comes out unwrapped."""

from __future__ import annotations

import pytest
import trio

from trio_pg.nursery import open_owned_nursery


async def test_block_exception_is_raised_unwrapped_after_children_finish() -> None:
    finished = []

    async def child() -> None:
        await trio.sleep(0.01)
        finished.append(True)

    async def block() -> None:
        async with open_owned_nursery() as nursery:
            nursery.start_soon(child)
            raise KeyError("mine")

    with trio.fail_after(5), pytest.raises(KeyError, match="mine"):
        await block()
    assert finished == [True]


async def test_cancellation_of_the_block_propagates_as_cancelled() -> None:
    with trio.fail_after(5), trio.CancelScope() as scope:
        async with open_owned_nursery():
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_a_failing_child_still_surfaces_as_an_exception_group() -> None:
    async def broken() -> None:
        raise RuntimeError("bug in a background task")

    async def block() -> None:
        async with open_owned_nursery() as nursery:
            nursery.start_soon(broken)
            await trio.sleep_forever()

    with trio.fail_after(5), pytest.raises(ExceptionGroup):
        await block()
