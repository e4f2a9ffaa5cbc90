"""How often a subscriber and the reader's delivery yield to other tasks.

Taking buffered values does not yield each time (that would cost more than the value),
but it must yield regularly, and as often as the reader does: a subscriber that is
always ready must keep up with a reader handing it ``BURST`` values per turn.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_pg.channels import STREAK, Notification, Subscription
from trio_pg.subscriptions import BURST, Router

pytestmark = pytest.mark.trio


def _notifications(n: int) -> list[Notification]:
    return [Notification("jobs", str(i), 1) for i in range(n)]


async def test_a_subscriber_taking_buffered_values_yields_every_streak() -> None:
    sub: Subscription[Notification] = Subscription(100_000, block=False)
    values = _notifications(10 * STREAK)
    assert sub._offer_run(values, 0, len(values)) == len(values)
    sub._finish(None)
    ticks = 0
    taken: list[str] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.lowlevel.checkpoint()
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        ticks = 0
        async for notification in sub:
            taken.append(notification.payload)
        nursery.cancel_scope.cancel()
    assert taken == [str(i) for i in range(len(values))]
    # About once per STREAK values (the round where the subscriber stops may or may not
    # count, depending on the order the two tasks run in): regularly, never per value.
    assert 8 <= ticks <= 12


@pytest.mark.parametrize("max_buffer", [10, 2 * BURST])
async def test_the_reader_waits_after_a_burst_so_a_ready_subscriber_never_overflows(
    max_buffer: int,
) -> None:
    # Each scheduling round the reader adds at most one burst, and no more than fills
    # a buffer halfway; the subscriber takes up to a streak. With STREAK >= BURST the
    # buffer never overflows (whichever of the two runs first in a round). Were STREAK
    # smaller, it would grow by the difference every round, and overflow.
    assert STREAK >= BURST
    router = Router()
    sub: Subscription[Notification] = Subscription(max_buffer, block=False)
    router.add_listener(["jobs"], sub)
    values = _notifications(20 * BURST)
    taken: list[str] = []

    async def consume() -> None:
        async for notification in sub:
            taken.append(notification.payload)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        index = 0
        waits = 0
        while (index := router.notifications(values, index)) >= 0:
            await router.catch_up()
            waits += 1
        await router.catch_up()
        router.close(None)
    assert taken == [str(i) for i in range(len(values))]
    assert waits >= 19  # the reader stopped after each burst, or more often


async def test_a_run_of_values_wakes_as_many_waiting_receivers() -> None:
    sub: Subscription[Notification] = Subscription(100, block=False)
    got: list[str] = []

    async def receive_one() -> None:
        got.append((await sub.receive()).payload)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            nursery.start_soon(receive_one)
            await trio.testing.wait_all_tasks_blocked()
            assert sub._offer_run(_notifications(2), 0, 2) == 2
    assert sorted(got) == ["0", "1"]
