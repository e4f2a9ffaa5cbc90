"""pipeline() blocks against a real server: results, segments, error rules, cancellation."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from tests.integration.cancel_sweep import sweep
from trio_pg.errors import DivisionByZeroError, InterfaceError, PipelineAbortedError
from trio_pg.testing import PostgresServer
from trio_pg.ticket import Ticket

IDLE = trio_pg.TransactionStatus.IDLE


async def _table(conn: trio_pg.Connection) -> None:
    await conn.execute("DROP TABLE IF EXISTS items; CREATE TABLE items (n int4, label text)")


async def _items(conn: trio_pg.Connection) -> list[int]:
    return [r[0] for r in await conn.fetch("SELECT n FROM items ORDER BY n")]


async def test_tickets_give_what_the_connection_methods_give(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.pipeline() as p:
            inserted = p.execute("INSERT INTO items VALUES ($1, $2)", 1, "one")
            many = p.executemany("INSERT INTO items VALUES ($1, $2)", [(2, "two"), (3, "three")])
            nothing = p.executemany("INSERT INTO items VALUES ($1, $2)", [])
            rows = p.fetch("SELECT n, label FROM items ORDER BY n")
            row = p.fetchrow("SELECT n, label FROM items WHERE n = $1", 2)
            no_row = p.fetchrow("SELECT n FROM items WHERE n = $1", 99)
            value = p.fetchval("SELECT label FROM items WHERE n = $1", 3)
            named = p.fetchval("SELECT n, label FROM items WHERE n = $1", 1, column="label")
            empty = p.execute("")
        assert await inserted == "INSERT 0 1"
        assert await many is None
        assert await nothing is None
        assert await rows == [(1, "one"), (2, "two"), (3, "three")]
        fetched = await row
        assert fetched is not None
        assert fetched["label"] == "two"
        assert await no_row is None
        assert await value == "three"
        assert await named == "one"
        assert await empty == ""
        assert conn.transaction_status is IDLE


async def test_thousand_statements_go_in_one_write_and_one_request(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchval("SELECT $1::int4", 0) == 0  # described and cached
        before = conn.statistics()
        async with conn.pipeline() as p:
            tickets = [p.fetchval("SELECT $1::int4", i) for i in range(1000)]
        after = conn.statistics()
        assert [await t for t in tickets] == list(range(1000))
        assert after.writes - before.writes == 1
        assert after.requests - before.requests == 1


async def test_unknown_statements_cost_one_round_trip_for_the_batch(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        before = conn.statistics()
        async with conn.pipeline() as p:
            tickets = []
            for i in range(1000):
                tickets.append(p.fetchval(f"SELECT $1::int4 + {i % 7}", i))
                if i % 250 == 249:
                    p.sync()
        after = conn.statistics()
        assert [await t for t in tickets] == [i + i % 7 for i in range(1000)]
        # One request describing the seven statements, then four segments.
        assert after.requests - before.requests == 5
        assert after.writes - before.writes == 2
        assert after.statement_cache_size == 7


async def test_tickets_can_be_awaited_from_other_tasks_many_times(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        got: list[tuple[str, int]] = []
        resolved_before: dict[str, bool] = {}

        async def reader(name: str, ticket: Ticket[Any], earlier: Ticket[Any] | None) -> None:
            value = await ticket
            # Results resolve in queue order: the earlier statement's first.
            resolved_before[name] = earlier is None or earlier.done
            got.append((name, value))
            got.append((name, await ticket))

        async with conn.pipeline() as p, trio.open_nursery() as nursery:
            slow = p.fetchval("SELECT $1::int4 FROM pg_sleep(0.05)", 7)
            fast = p.fetchval("SELECT $1::int4", 8)
            nursery.start_soon(reader, "fast", fast, slow)
            nursery.start_soon(reader, "slow", slow, None)
            # Helper tasks queue on the pipeline too.
            nursery.start_soon(reader, "helper", p.fetchval("SELECT $1::int4", 9), fast)
        assert sorted(got) == sorted([("fast", 8), ("slow", 7), ("helper", 9)] * 2)
        assert resolved_before == {"fast": True, "slow": True, "helper": True}
        assert await slow == 7  # after the block, from any task, still


async def test_failed_statement_aborts_its_segment_and_later_segments_run(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.pipeline() as p:
            earlier = p.execute("INSERT INTO items VALUES (1, 'rolled back')")
            failing = p.fetchval("SELECT 1 / $1::int4", 0)
            skipped = p.execute("INSERT INTO items VALUES (2, 'skipped')")
            p.sync()
            later = p.execute("INSERT INTO items VALUES (3, 'kept')")
            # What the server returned for it, though the segment was rolled back.
            assert await earlier == "INSERT 0 1"
            with pytest.raises(DivisionByZeroError):
                await failing
            with pytest.raises(PipelineAbortedError, match="division by zero") as aborted:
                await skipped
            assert isinstance(aborted.value.__cause__, DivisionByZeroError)
            assert await later == "INSERT 0 1"
        assert await _items(conn) == [3]


async def test_block_raises_the_first_error_nobody_awaited(conn: trio_pg.Connection) -> None:
    async def unawaited_failure() -> Ticket[Any]:
        async with conn.pipeline() as p:
            p.execute("INSERT INTO items VALUES (1, 'rolled back')")
            failing = p.fetchval("SELECT 1 / $1::int4", 0)
            p.fetchval("SELECT 'aborted'")
            p.sync()
            p.fetchval("SELECT nope")  # a second error, later: not the one raised
        return failing  # pragma: no cover

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        # The failed segment rolled back an INSERT whose ticket said it worked: the block
        # says so on exit, so the rollback is never silent.
        with pytest.raises(DivisionByZeroError):
            await unawaited_failure()
        assert await _items(conn) == []
        assert conn.transaction_status is IDLE


async def test_error_awaited_inside_the_block_is_not_raised_again(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.pipeline() as p:
            failing = p.fetchval("SELECT 1 / $1::int4", 0)
            p.fetchval("SELECT 'aborted too'")
            with pytest.raises(DivisionByZeroError):
                await failing
        assert await conn.fetchval("SELECT 1") == 1


async def test_unencodable_argument_of_a_known_statement_is_refused_by_the_queue_call(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.fetchval("SELECT $1::int4", 1)
        async with conn.pipeline() as p:
            first = p.fetchval("SELECT $1::int4", 1)
            with pytest.raises(InterfaceError, match=r"\$1"):
                p.fetchval("SELECT $1::int4", "not a number")
            with pytest.raises(InterfaceError, match="expects 1 argument"):
                p.fetchval("SELECT $1::int4", 1, 2)
            last = p.fetchval("SELECT $1::int4", 3)
        # Nothing of the refused calls was queued.
        assert (await first, await last) == (1, 3)


async def test_unencodable_argument_of_a_new_statement_fails_its_ticket_and_segment(
    conn: trio_pg.Connection,
) -> None:
    async def run() -> list[Ticket[Any]]:
        async with conn.pipeline() as p:
            tickets = [
                p.execute("INSERT INTO items VALUES (1, 'rolled back')"),
                p.fetchval("SELECT $1::int4 + 0", "not a number"),
                p.execute("INSERT INTO items VALUES (2, 'skipped')"),
            ]
            p.sync()
            tickets.append(p.execute("INSERT INTO items VALUES (3, 'kept')"))
        return tickets  # pragma: no cover

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        with pytest.raises(InterfaceError, match=r"\$1"):
            await run()
        # The segment failed where the statement was: as if the server had refused it.
        assert await _items(conn) == [3]


async def test_statement_the_server_cannot_describe_fails_its_ticket_and_segment(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.pipeline() as p:
            earlier = p.execute("INSERT INTO items VALUES (1, 'rolled back')")
            broken = p.fetch("SELECT FROM WHERE")
            skipped = p.fetchval("SELECT $1::int4 * 2", 4)
            p.sync()
            later = p.fetchval("SELECT $1::int4 * 3", 4)
            assert await earlier == "INSERT 0 1"
            with pytest.raises(trio_pg.errors.PostgresSyntaxError):
                await broken
            with pytest.raises(PipelineAbortedError):
                await skipped
            assert await later == 12
        assert await _items(conn) == []


async def test_awaiting_inside_a_segment_does_not_end_it(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)

        async def one_segment() -> None:
            async with conn.pipeline() as p:
                assert await p.execute("INSERT INTO items VALUES (1, 'first')") == "INSERT 0 1"
                # A statement not described yet, in the same segment, after an await.
                assert await p.fetchval("SELECT count(*)::int4 + $1 FROM items", 0) == 1
                await p.fetchval("SELECT 1 / $1::int4", 0)

        with pytest.raises(DivisionByZeroError):
            await one_segment()
        # The segment's implicit transaction rolled back the first INSERT too.
        assert await _items(conn) == []
        assert conn.transaction_status is IDLE


async def test_owner_queries_through_conn_end_the_segment_and_keep_program_order(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("DROP SEQUENCE IF EXISTS seq; CREATE SEQUENCE seq")
        async with conn.pipeline() as p:
            queued = p.fetchval("SELECT nextval('seq')::int4")
            direct = await conn.fetchval("SELECT nextval('seq')::int4")
            after = p.fetchval("SELECT nextval('seq')::int4")
            async with conn.transaction():
                inside = await conn.fetchval("SELECT nextval('seq')::int4")
        assert (await queued, direct, await after, inside) == (1, 2, 3, 4)


async def test_pipeline_inside_a_transaction_runs_in_it(conn: trio_pg.Connection) -> None:
    async def failing_transaction() -> None:
        async with conn.transaction(), conn.pipeline() as p:
            p.execute("INSERT INTO items VALUES (1, 'one')")
            p.sync()  # no commit: the transaction block spans the segments
            p.execute("INSERT INTO items VALUES (2, 'two')")
            p.sync()
            p.fetchval("SELECT 1 / $1::int4", 0)

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.transaction(), conn.pipeline() as p:
            p.execute("INSERT INTO items VALUES (1, 'one')")
            p.sync()
            count = p.fetchval("SELECT count(*) FROM items")
            assert conn.transaction_status is not IDLE
        assert await count == 1
        await conn.execute("DELETE FROM items")
        with pytest.raises(DivisionByZeroError):
            await failing_transaction()
        assert await _items(conn) == []
        assert conn.transaction_status is IDLE


async def test_leaving_by_an_exception_abandons_the_rest_and_connection_stays_usable(
    conn: trio_pg.Connection,
) -> None:
    tickets: list[Ticket[Any]] = []

    async def interrupted() -> None:
        async with conn.pipeline() as p:
            tickets.append(p.fetchval("SELECT $1::int4 FROM pg_sleep(0.2)", 1))
            p.sync()
            tickets.append(p.execute("INSERT INTO items VALUES (1, 'open segment')"))
            await tickets[1]  # sent as an unfinished segment
            tickets.append(p.fetchval("SELECT 2"))  # never sent
            raise KeyError("leaving")

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        with pytest.raises(KeyError):
            await interrupted()
        assert await conn.fetchval("SELECT 42") == 42
        assert conn.transaction_status is IDLE
        # The unfinished segment was rolled back, not committed.
        assert await _items(conn) == []
        assert await tickets[0] == 1
        with pytest.raises(PipelineAbortedError, match="left by an exception"):
            await tickets[2]


async def test_queueing_copy_from_stdin_or_after_the_block_is_refused(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.pipeline() as p:
            with pytest.raises(InterfaceError, match="copy_in"):
                p.execute("COPY items FROM STDIN")
            with pytest.raises(InterfaceError, match="NUL"):
                p.execute("SELECT '\x00'")
        with pytest.raises(InterfaceError, match="has ended"):
            p.fetchval("SELECT 1")
        with pytest.raises(InterfaceError, match="has ended"):
            p.sync()


async def test_pipeline_without_a_statement_cache(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn(), statement_cache_size=0) as conn:
            async with conn.pipeline() as p:
                first = p.fetchval("SELECT $1::int4 * 2", 21)
                assert await first == 42
                second = p.fetchval("SELECT $1::text || 'b'", "a")
                p.sync()
                third = p.fetchval("SELECT $1::int4 * 2", 5)
            assert (await second, await third) == ("ab", 10)
            names = await conn.fetch("SELECT name FROM pg_prepared_statements")
            assert names == []


async def test_pipeline_cancelled_at_every_checkpoint_leaves_connection_usable(
    conn: trio_pg.Connection,
) -> None:
    result: object = None

    async def operation() -> None:
        nonlocal result
        result = None
        async with conn.pipeline() as p:
            inserted = p.execute("INSERT INTO items VALUES ($1, $2)", 1, "a")
            rows = p.fetch("SELECT n FROM items, pg_sleep(0.001)")
            p.sync()
            value = p.fetchval("SELECT $1::int4 * 2", 21)
            first = await rows
            doubled = await value
            row = await p.fetchrow("SELECT $1::text AS t", "x")
            p.executemany("INSERT INTO items VALUES ($1, $2)", [(2, "b"), (3, "c")])
        result = (await inserted, first, doubled, row)

    async def check(finished: bool) -> None:
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert conn.transaction_status is IDLE
        # Segments are all-or-nothing: the first, then the second.
        assert await _items(conn) in ([], [1], [1, 2, 3])
        if not finished:
            await conn.execute("DELETE FROM items")

    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        cancelled = await sweep(operation, check, limit=3000, every_task=True)
        assert cancelled > 5
        assert result == ("INSERT 0 1", [(1,)], 42, ("x",))
        assert await _items(conn) == [1, 2, 3]


async def test_statement_that_fails_to_describe_inside_an_open_segment_fails_it(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await _table(conn)
        async with conn.pipeline() as p:
            assert await p.execute("INSERT INTO items VALUES (1, 'rolled back')") == "INSERT 0 1"
            broken = p.fetch("SELECT FROM WHERE")  # described inside the open segment
            skipped = p.fetchval("SELECT $1::int4 * 5", 1)
            with pytest.raises(trio_pg.errors.PostgresSyntaxError):
                await broken
            with pytest.raises(PipelineAbortedError):
                await skipped
            p.sync()
            assert await p.fetchval("SELECT $1::int4 * 5", 2) == 10
        assert await _items(conn) == []


async def test_pipeline_with_more_statements_than_the_cache_holds(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn(), statement_cache_size=2) as conn:
            for _ in range(3):
                async with conn.pipeline() as p:
                    tickets = []
                    for i in range(50):
                        tickets.append(p.fetchval(f"SELECT $1::int4 + {i % 5}", i))
                        if i % 7 == 6:
                            assert await tickets[-1] == i + i % 5
                        if i % 11 == 10:
                            p.sync()
                assert [await t for t in tickets] == [i + i % 5 for i in range(50)]
                assert await conn.fetchval("SELECT $1::int4 + 3", 1) == 4
            # Evicted statements were closed on the server, none forgotten there.
            named = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
            assert named <= conn.statistics().statement_cache_size + 1
