"""Sharing one connection: blocks hold it, other tasks' calls wait for them, in order.

Where a statement ran is read back from the server itself: a ``serializable`` block's
statements see ``transaction_isolation = serializable`` and the block's transaction ID,
statements outside it see the default isolation and no transaction ID, and a sequence
orders everything that ran.
"""

from __future__ import annotations

import trio
import trio.testing

import trio_pg
from tests.conftest import TEST_TIMEOUT

WHERE = (
    "SELECT current_setting('transaction_isolation'), txid_current_if_assigned(),"
    " nextval('seq')::int4, (SELECT count(*)::int4 FROM items) /* $1 */"
)


async def _tables(conn: trio_pg.Connection) -> None:
    await conn.execute(
        "DROP TABLE IF EXISTS items; CREATE TABLE items (n int4);"
        " DROP SEQUENCE IF EXISTS seq; CREATE SEQUENCE seq"
    )


async def _where(conn: trio_pg.Connection, tag: str) -> trio_pg.Record:
    row = await conn.fetchrow(WHERE.replace("$1", tag))
    assert row is not None
    return row


async def test_other_task_call_runs_after_the_transaction_block(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _tables(conn)
        other: list[trio_pg.Record] = []
        async with (
            trio.open_nursery() as nursery,
            conn.transaction(isolation="serializable") as tx,
        ):
            await conn.execute("INSERT INTO items VALUES (1)")
            mine = await _where(conn, "owner")
            nursery.start_soon(lambda: _append(other, conn, "other"))
            await trio.testing.wait_all_tasks_blocked()
            assert other == []  # waiting at the gate, not running
            # Helper tasks run inside through the block's object.
            inside = await _where(tx, "helper")  # type: ignore[arg-type]
            last = await conn.fetchval("SELECT nextval('seq')::int4")
            assert other == []
        (row,) = other
        assert mine[0] == "serializable"
        assert mine[1] is not None
        assert inside[:2] == ("serializable", mine[1])
        # After COMMIT: default isolation, no transaction of the block, sees its row.
        assert row[0] == "read committed"
        assert row[1] is None
        assert row[2] > last
        assert row[3] == 1


async def _append(out: list[trio_pg.Record], conn: trio_pg.Connection, tag: str) -> None:
    out.append(await _where(conn, tag))


async def test_other_task_call_runs_after_the_pipeline_block(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _tables(conn)
        other: list[trio_pg.Record] = []
        async with trio.open_nursery() as nursery, conn.pipeline() as p:
            first = p.fetchval("SELECT nextval('seq')::int4")
            assert await first == 1
            nursery.start_soon(lambda: _append(other, conn, "other"))
            await trio.testing.wait_all_tasks_blocked()
            # The open segment's statements go on; the other task's call waits.
            p.execute("INSERT INTO items VALUES (1)")
            last = p.fetchval("SELECT nextval('seq')::int4")
            assert await last == 2
            assert other == []
        (row,) = other
        assert row[2] == 3
        assert row[3] == 1


async def test_calls_waiting_for_a_block_all_run_after_it(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _tables(conn)
        values: list[int] = []

        async def call() -> None:
            values.append(await conn.fetchval("SELECT nextval('seq')::int4"))

        async with trio.open_nursery() as nursery, conn.transaction():
            for _ in range(10):
                nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            assert values == []
            last = await conn.fetchval("SELECT nextval('seq')::int4")
        assert last == 1
        assert sorted(values) == list(range(2, 12))


async def test_block_waits_for_a_call_let_in_before_it(conn: trio_pg.Connection) -> None:
    # The call is not yet described: it takes two requests (describe, execute), and the
    # block's BEGIN must not land between them.
    with trio.fail_after(TEST_TIMEOUT):
        await _tables(conn)
        other: list[trio_pg.Record] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(other, conn, "first"))
            await trio.testing.wait_all_tasks_blocked()
            async with conn.transaction(isolation="serializable"):
                assert len(other) == 1
                assert await conn.fetchval("SHOW transaction_isolation") == "serializable"
        assert other[0][0] == "read committed"


async def test_two_hundred_tasks_share_one_connection(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _tables(conn)
        results: dict[int, object] = {}

        async def task(i: int) -> None:
            kind = i % 4
            if kind == 0:
                results[i] = await conn.fetchval("SELECT $1::int4 * 2", i)
            elif kind == 1:
                async with conn.transaction() as tx:
                    await conn.execute("INSERT INTO items VALUES ($1)", i)
                    results[i] = await tx.fetchval("SELECT count(*) FROM items WHERE n = $1", i)
            elif kind == 2:
                async with conn.pipeline() as p:
                    tickets = [p.fetchval("SELECT $1::int4 + $2::int4", i, j) for j in range(3)]
                results[i] = [await t for t in tickets]
            else:
                rows = await conn.fetch("SELECT g FROM generate_series(1, $1::int4) g", i % 10)
                results[i] = [r[0] for r in rows]

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(task, i)
        expected: dict[int, object] = {}
        for i in range(200):
            kind = i % 4
            if kind == 0:
                expected[i] = i * 2
            elif kind == 1:
                expected[i] = 1
            elif kind == 2:
                expected[i] = [i, i + 1, i + 2]
            else:
                expected[i] = list(range(1, i % 10 + 1))
        assert results == expected
        inserted = [r[0] for r in await conn.fetch("SELECT n FROM items ORDER BY n")]
        assert inserted == [i for i in range(200) if i % 4 == 1]
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
        assert conn.statistics().pending_requests == 0
