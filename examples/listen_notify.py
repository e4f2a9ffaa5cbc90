"""LISTEN/NOTIFY: a producer and a consumer in one nursery, then a listener that reconnects.

Runs against ``DATABASE_URL`` or the ``PG*`` environment variables when set; otherwise
it starts a throwaway PostgreSQL server (``trio_pg.testing``), uses it, and removes it.

    python examples/listen_notify.py
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

import trio_pg
from trio_pg.channels import Notification, Subscription
from trio_pg.listener import ListenerReconnected, open_listener

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


async def consume(orders: Subscription[Notification]) -> None:
    """Print orders until the producer says it is done."""
    async for n in orders:
        if n.payload == "done":
            return
        order = json.loads(n.payload)
        print(f"  consumer: order {order['id']} for {order['item']!r} (from backend {n.pid})")


async def produce(conn: trio_pg.Connection) -> None:
    for i, item in enumerate(["tea", "scones", "jam"]):
        await conn.notify("orders", json.dumps({"id": i, "item": item}))
    # Inside a transaction, notifications are delivered when it commits.
    await conn.execute("BEGIN")
    await conn.notify("orders", json.dumps({"id": 3, "item": "cream"}))
    await conn.execute("COMMIT")
    await conn.notify("orders", "done")


async def next_payload(stream: Subscription[Notification | ListenerReconnected]) -> str:
    item = await stream.receive()
    assert isinstance(item, Notification), f"expected a notification, got {item!r}"
    return item.payload


async def main() -> None:
    async with (
        database_dsn() as dsn,
        trio_pg.open_connection(dsn) as consumer_conn,
        trio_pg.open_connection(dsn) as producer_conn,
    ):
        print("listen() on one connection, notify() from another:")
        # Entering listen() returns once the server confirmed the LISTEN, so nothing the
        # producer sends afterwards can be missed.
        async with consumer_conn.listen("orders") as orders, trio.open_nursery() as nursery:
            nursery.start_soon(consume, orders)
            nursery.start_soon(produce, producer_conn)

        print("open_listener(): a dedicated connection that comes back after a loss:")
        async with open_listener(dsn, "orders", application_name="example-listener") as stream:
            await producer_conn.notify("orders", "first")
            print("  listener got:", await next_payload(stream))
            # Simulate an outage: an administrator terminates the listener's backend.
            await producer_conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'example-listener'"
            )
            marker = await stream.receive()
            assert isinstance(marker, ListenerReconnected)
            print(f"  listener reconnected (backend {marker.backend_pid}): resynchronise here")
            await producer_conn.notify("orders", "after the outage")
            print("  listener got:", await next_payload(stream))


if __name__ == "__main__":
    # The listener logs its reconnections to the "trio_pg" logger.
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    trio.run(main)
