"""What a benchmark workload is: its size, setup, expected check value and drivers.

Each driver function takes the server's connection parameters and the workload's size,
runs the workload once on an open connection, and returns ``(check, seconds)``: a value
the harness compares with ``expected(n)`` (so a driver that silently does less work
cannot look fast) and the time of the workload alone, connecting excluded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Params = dict[str, Any]
#: A workload's check value and the seconds it took.
Timed = tuple[int, float]
Driver = Callable[[Params, int], Timed]


@dataclass(frozen=True)
class Workload:
    """One row group of the results table."""

    id: str
    description: str
    size: int
    quick_size: int
    expected: Callable[[int], int]
    drivers: dict[str, Driver]
    #: SQL run once (through trio_pg) before the workload, formatted with ``n``.
    setup_sql: str = ""
    #: Units of ``size`` for the table ("rows", "queries", ...).
    unit: str = "ops"
    notes: list[str] = field(default_factory=list)


def on_uvloop(fn: Callable[[Params, int], Awaitable[Timed]]) -> Driver:
    """Run an asyncio driver coroutine on uvloop."""

    def run(p: Params, n: int) -> Timed:
        import uvloop

        return uvloop.run(fn(p, n))  # type: ignore[no-any-return]

    return run


def on_asyncio(fn: Callable[[Params, int], Awaitable[Timed]]) -> Driver:
    """Run an asyncio driver coroutine on the standard event loop."""

    def run(p: Params, n: int) -> Timed:
        return asyncio.run(fn(p, n))  # type: ignore[arg-type]

    return run


def side_by_side(
    trio_pg: Driver,
    asyncpg: Callable[[Params, int], Awaitable[Timed]],
    psycopg: Callable[[Params, int], Awaitable[Timed]],
    *,
    variants: dict[str, Driver] | None = None,
    psycopg_name: str = "psycopg-async",
) -> dict[str, Driver]:
    """The drivers of one workload, in table order: trio_pg (and its ``variants``),
    asyncpg on uvloop and on asyncio, then psycopg (on asyncio)."""
    return {
        "trio_pg": trio_pg,
        **(variants or {}),
        "asyncpg-uvloop": on_uvloop(asyncpg),
        "asyncpg-asyncio": on_asyncio(asyncpg),
        psycopg_name: on_asyncio(psycopg),
    }


def asyncpg_params(p: Params) -> Params:
    """asyncpg's connect() keywords for the server's parameters."""
    return {"host": p["host"], "port": int(p["port"]), "user": p["user"], "database": p["dbname"]}


def psycopg_dsn(p: Params) -> str:
    """A psycopg conninfo string for the server's parameters."""
    return f"host={p['host']} port={p['port']} user={p['user']} dbname={p['dbname']}"
