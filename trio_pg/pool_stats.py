"""What :meth:`trio_pg.pool.Pool.statistics` returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolStatistics"]


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of a pool's state and counters (:meth:`Pool.statistics`).

    ``size == idle + borrowed + resetting`` always holds.

    Attributes:
        size: Open connections.
        idle: Open connections ready to be lent.
        borrowed: Connections lent now (one shared by several calls counts once).
        resetting: Connections being cleaned after a dirty release.
        connecting: Connection attempts under way or waiting for their backoff.
        waiting: Tasks waiting for a connection.
        min_size: Connections the pool keeps open.
        max_size: Most connections the pool opens at once.
        acquisitions: Connections lent since the pool opened (shared calls included).
        shared: Calls that shared a connection with other calls.
        connects: Connections opened (``setup`` included) since the pool opened.
        connect_failures: Connection attempts (or ``setup`` calls) that failed.
        resets: Dirty releases that were cleaned and the connection kept.
        discarded: Connections dropped because they broke or could not be cleaned.
        retired: Connections closed for ``max_idle`` or ``max_lifetime``.
    """

    size: int
    idle: int
    borrowed: int
    resetting: int
    connecting: int
    waiting: int
    min_size: int
    max_size: int
    acquisitions: int
    shared: int
    connects: int
    connect_failures: int
    resets: int
    discarded: int
    retired: int

