"""Pipelines and transactions: many statements per round trip, and blocks that hold a connection.

Runs against ``DATABASE_URL`` or the ``PG*`` environment variables when set; otherwise
it starts a throwaway PostgreSQL server (``trio_pg.testing``), uses it, and removes it.

    python examples/pipeline.py
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import trio

import trio_pg

_PG_SETTINGS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")


@asynccontextmanager
async def database_dsn() -> AsyncIterator[str | None]:
    """The DSN to use: the environment's, or a throwaway server's."""
    if os.environ.get("DATABASE_URL") or any(os.environ.get(k) for k in _PG_SETTINGS):
        yield os.environ.get("DATABASE_URL")
        return
    from trio_pg.testing import open_postgres

    print("No DATABASE_URL or PG* settings: starting a throwaway PostgreSQL server...")
    async with open_postgres() as server:
        yield server.dsn()


async def report(n: int, ticket: Awaitable[int]) -> None:
    print(f"  helper task: {n} + 1 = {await ticket}")


async def main() -> None:
    async with database_dsn() as dsn, trio_pg.open_connection(dsn) as conn:
        await conn.execute(
            "CREATE TEMP TABLE accounts"
            " (id int PRIMARY KEY, owner text, balance int CHECK (balance >= 0))"
        )

        # A pipeline: queue statements without awaiting each one; they go out together.
        before = conn.statistics()
        async with conn.pipeline() as p:
            p.executemany(
                "INSERT INTO accounts VALUES ($1, $2, $3)",
                [(1, "ada", 100), (2, "grace", 50), (3, "linus", 0)],
            )
            p.sync()  # segment boundary: what follows runs even if the above failed
            total = p.fetchval("SELECT sum(balance) FROM accounts")
            richest = p.fetchrow("SELECT owner, balance FROM accounts ORDER BY balance DESC")
            squares = [p.fetchval("SELECT $1::int * $1::int", n) for n in range(1, 101)]
        after = conn.statistics()
        requests, writes = after.requests - before.requests, after.writes - before.writes
        row = await richest
        assert row is not None
        print(f"total balance {await total}, richest {row['owner']}")
        print(f"sum of 100 squares {sum([await t for t in squares])}")
        print(f"  ...in {requests} requests and {writes} writes")

        # Errors: the failing ticket raises its error, the rest of its segment is
        # skipped (and rolled back), later segments run.
        async with conn.pipeline() as p:
            debit = p.execute("UPDATE accounts SET balance = balance - 500 WHERE id = $1", 3)
            credit = p.execute("UPDATE accounts SET balance = balance + 500 WHERE id = $1", 1)
            p.sync()
            audit = p.fetchval("SELECT count(*) FROM accounts WHERE balance > 0")
            try:
                await debit
            except trio_pg.errors.CheckViolationError:
                print("transfer refused by the CHECK constraint")
            try:
                await credit
            except trio_pg.PipelineAbortedError:
                print("  ...so the credit in the same segment was skipped")
            print(f"  ...and the next segment ran: {await audit} accounts in credit")

        # Tickets may be awaited from any task.
        async with conn.pipeline() as p, trio.open_nursery() as nursery:
            for n in (10, 20, 30):
                nursery.start_soon(report, n, p.fetchval("SELECT $1::int + 1", n))

        # A transaction block holds the connection: other tasks' calls wait for it.
        async def bystander() -> None:
            count = await conn.fetchval("SELECT count(*) FROM accounts")
            print(f"bystander ran after the transaction and saw {count} accounts")

        async with trio.open_nursery() as nursery:
            async with conn.transaction() as tx:
                nursery.start_soon(bystander)
                await conn.execute("INSERT INTO accounts VALUES (4, 'barbara', 10)")
                try:
                    async with conn.transaction():  # nested: a savepoint
                        await tx.execute("INSERT INTO accounts VALUES (4, 'duplicate', 0)")
                except trio_pg.UniqueViolationError:
                    print("duplicate insert rolled back to its savepoint")
            print("transaction committed")


if __name__ == "__main__":
    trio.run(main)
