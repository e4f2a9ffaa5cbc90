"""A nursery for the ``open_*`` context managers that own background tasks.

``open_connection``, ``open_listener`` and ``open_pool`` run their tasks in a nursery of
their own while the caller's block runs inside it. With Trio's strict exception groups,
an exception from that block would leave the nursery wrapped in an ExceptionGroup. The
connection layer turns every expected background failure into an error on the
caller's requests, so the only exception worth raising is the block's own: this nursery
catches it inside, and raises it as is once the nursery has closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["open_owned_nursery"]


@asynccontextmanager
async def open_owned_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose block's exception is raised unwrapped, after the nursery closed.

    Clean-up that must happen before the nursery closes (closing a connection, say)
    belongs in a ``try``/``finally`` inside the block. Only a bug in a background task
    can still make the nursery raise an ExceptionGroup.
    """
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            yield nursery
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the nursery
            error = exc
    if error is not None:
        raise error
