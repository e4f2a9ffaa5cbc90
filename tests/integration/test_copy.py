"""COPY FROM STDIN and TO STDOUT against a real server: data, failures, cancellation."""

from __future__ import annotations

import csv
import decimal
import struct
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from tests.integration.cancel_sweep import sweep
from trio_pg.errors import InterfaceError, PostgresError

MILLION = 1_000_000


async def _count(conn: trio_pg.Connection, table: str = "t") -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def _copied_out(conn: trio_pg.Connection, sql: str) -> bytes:
    async with conn.copy_out(sql) as chunks:
        return b"".join([chunk async for chunk in chunks])


@pytest.fixture
async def table(conn: trio_pg.Connection) -> str:
    await conn.execute("CREATE TEMP TABLE t (i int4 PRIMARY KEY, label text, x float8)")
    return "t"


# -- copy_records_to_table and copy_out: a million rows round trip ----------------------


def _million() -> Iterator[tuple[int, str, float]]:
    # Labels with a tab, a quote, a backslash and a non-ASCII letter.
    return ((i, f"row {i} ü\t'\\", i / 7) for i in range(MILLION))


async def test_million_records_round_trip_through_binary_copy_and_copy_out(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        count = await conn.copy_records_to_table(table, records=_million())
        assert count == MILLION
        data = await _copied_out(conn, "COPY t TO STDOUT (FORMAT csv) ")
        lines = data.decode().splitlines()
        assert len(lines) == MILLION
        for expected, row in zip(_million(), csv.reader(lines), strict=True):
            assert (int(row[0]), row[1], float(row[2])) == expected


async def test_copy_out_of_40_megabytes_holds_bounded_memory(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # Few large rows: tracemalloc makes every allocation slow, rows included.
        sql = "COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g) TO STDOUT"
        total = 0
        chunks_seen = 0
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            async with conn.copy_out(sql) as chunks:
                async for chunk in chunks:
                    total += len(chunk)
                    chunks_seen += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert chunks.row_count == 200_000
        assert total > 40_000_000
        # Read as consumed: a few receive buffers at a time, not the 40 MB stream.
        assert peak < 8_000_000, peak
        assert chunks_seen > 10


# -- copy_in: sources and formats ------------------------------------------------------------


async def test_copy_in_from_bytes(conn: trio_pg.Connection, table: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        n = await conn.copy_in("COPY t FROM STDIN", b"1\tone\t1.5\n2\t\\N\t2.5\n")
        assert n == 2
        rows = await conn.fetch("SELECT * FROM t ORDER BY i")
        assert rows == [(1, "one", 1.5), (2, None, 2.5)]


async def test_copy_in_from_an_iterable_of_chunks_split_mid_row(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        data = b"".join(f"{i},label {i},{i}.25\n".encode() for i in range(5000))
        chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
        assert await conn.copy_in("COPY t FROM STDIN (FORMAT csv)", chunks) == 5000
        assert await conn.fetchval("SELECT sum(x) FROM t") == sum(i + 0.25 for i in range(5000))


async def test_copy_in_from_an_async_generator(conn: trio_pg.Connection, table: str) -> None:
    async def rows() -> AsyncIterator[bytes]:
        for i in range(300):
            await trio.lowlevel.checkpoint()
            yield f"{i}\tasync {i}\t0\n".encode()

    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.copy_in("COPY t FROM STDIN", rows()) == 300
        assert await conn.fetchval("SELECT label FROM t WHERE i = 299") == "async 299"


async def test_copy_in_binary_format_from_copy_out_binary(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.copy_records_to_table(table, records=[(1, "a", 0.5), (2, None, None)])
        data = await _copied_out(conn, "COPY t TO STDOUT (FORMAT binary)")
        assert data.startswith(b"PGCOPY\n\xff\r\n\x00")
        await conn.execute("CREATE TEMP TABLE t2 (LIKE t)")
        assert await conn.copy_in("COPY t2 FROM STDIN (FORMAT binary)", data) == 2
        assert await conn.fetch("SELECT * FROM t2 ORDER BY i") == [(1, "a", 0.5), (2, None, None)]


async def test_copy_out_text_csv_and_binary_formats(conn: trio_pg.Connection, table: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.copy_records_to_table(table, records=[(1, "a,b", 1.5), (2, None, -2.0)])
        text = await _copied_out(conn, "COPY t TO STDOUT")
        assert text == b"1\ta,b\t1.5\n2\t\\N\t-2\n"
        csv_data = await _copied_out(conn, "COPY t TO STDOUT (FORMAT csv, HEADER)")
        assert csv_data == b'i,label,x\n1,"a,b",1.5\n2,,-2\n'
        async with conn.copy_out("COPY t TO STDOUT (FORMAT binary)") as chunks:
            binary = b"".join([c async for c in chunks])
            assert chunks.binary
            assert chunks.row_count == 2
        # Header (11 + 4 + 4), then tuple 1: 3 fields of int4, text "a,b", float8.
        tuple1 = struct.pack("!hi", 3, 4) + struct.pack("!i", 1) + struct.pack("!i", 3) + b"a,b"
        assert binary[19 : 19 + len(tuple1)] == tuple1
        assert binary.endswith(b"\xff\xff")


async def test_copy_out_of_a_query(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        data = await _copied_out(conn, "COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT")
        assert data == b"1\n2\n3\n"


# -- copy_records_to_table ------------------------------------------------------------------


async def test_copy_records_with_columns_schema_and_quoted_names(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute('CREATE SCHEMA "Odd Schema"')
        await conn.execute(
            'CREATE TABLE "Odd Schema"."My ""Table""" ('
            '  id serial, "Label" text, amount numeric, made timestamptz DEFAULT now(),'
            "  doubled int GENERATED ALWAYS AS (id * 2) STORED)"
        )
        n = await conn.copy_records_to_table(
            'My "Table"',
            schema="Odd Schema",
            columns=["Label", "amount"],
            records=[("x", decimal.Decimal("1.50")), ("y", None)],
        )
        assert n == 2
        rows = await conn.fetch(
            'SELECT id, "Label", amount, doubled FROM "Odd Schema"."My ""Table""" ORDER BY id'
        )
        assert rows == [(1, "x", decimal.Decimal("1.50"), 2), (2, "y", None, 4)]


async def test_copy_records_into_domain_and_enum_columns(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute(
            "CREATE DOMAIN positive AS int4 CHECK (VALUE > 0);"
            "CREATE DOMAIN small_positive AS positive CHECK (VALUE < 100);"
            "CREATE TYPE mood AS ENUM ('sad', 'happy');"
            "CREATE TEMP TABLE feelings (n small_positive, m mood, tags text[])"
        )
        n = await conn.copy_records_to_table(
            "feelings", records=[(5, "happy", ["a", None]), (7, "sad", [])]
        )
        assert n == 2
        rows = await conn.fetch("SELECT n, m::text, tags FROM feelings ORDER BY n")
        assert rows == [(5, "happy", ["a", None]), (7, "sad", [])]
        with pytest.raises(trio_pg.errors.CheckViolationError):
            await conn.copy_records_to_table("feelings", records=[(500, "sad", None)])


async def test_copy_records_from_an_async_iterable(conn: trio_pg.Connection, table: str) -> None:
    async def records() -> AsyncIterator[tuple[int, str, float]]:
        for i in range(1000):
            yield (i, str(i), float(i))

    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.copy_records_to_table(table, records=records()) == 1000
        assert await conn.fetchval("SELECT sum(i) FROM t") == sum(range(1000))


async def test_copy_records_bad_value_names_record_and_column_and_copies_nothing(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        records = [(1, "a", 1.0), (2, "b", "not a float")]
        with pytest.raises(InterfaceError, match=r"record 1, column 'x'.*float8"):
            await conn.copy_records_to_table(table, records=records)
        with pytest.raises(InterfaceError, match="record 0 has 2 values for 3 columns"):
            await conn.copy_records_to_table(table, records=[(1, "a")])
        assert await _count(conn) == 0
        assert await conn.fetchval("SELECT 1") == 1


async def test_copy_records_unknown_table_and_column(conn: trio_pg.Connection, table: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.errors.UndefinedTableError):
            await conn.copy_records_to_table("no_such_table", records=[])
        with pytest.raises(InterfaceError, match=r"no column.*'nope'"):
            await conn.copy_records_to_table(table, records=[], columns=["i", "nope"])
        assert await conn.copy_records_to_table(table, records=[]) == 0


async def test_copy_records_type_without_binary_codec_is_refused_clearly(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE money_table (m money)")
        with pytest.raises(InterfaceError, match=r"money.*no binary codec"):
            await conn.copy_records_to_table("money_table", records=[("$1.00",)])


# -- failures ---------------------------------------------------------------------------------


async def test_constraint_violation_mid_copy_raises_unique_violation_with_line(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        data = b"".join(f"{i}\tr\t0\n".encode() for i in range(1, 40001))
        data += b"17\tduplicate\t0\n"
        with pytest.raises(trio_pg.UniqueViolationError) as info:
            await conn.copy_in("COPY t FROM STDIN", data)
        assert info.value.constraint_name == "t_pkey"
        assert info.value.detail == "Key (i)=(17) already exists."
        assert info.value.where is not None
        assert "line 40001" in info.value.where
        assert await _count(conn) == 0
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE


async def test_bad_row_raises_with_detail_and_line(conn: trio_pg.Connection, table: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.errors.InvalidTextRepresentationError) as info:
            await conn.copy_in("COPY t FROM STDIN", b"1\ta\t1\n2\tb\tnot-a-number\n3\tc\t3\n")
        assert info.value.where is not None
        assert "line 2" in info.value.where
        assert await _count(conn) == 0


async def test_producer_that_raises_halfway_leaves_table_empty(
    conn: trio_pg.Connection, table: str
) -> None:
    class ProducerFailed(Exception):
        pass

    def rows() -> Iterator[bytes]:
        for i in range(100_000):
            if i == 50_000:
                raise ProducerFailed("disk on fire")
            yield f"{i}\tx\t0\n".encode()

    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(ProducerFailed):
            await conn.copy_in("COPY t FROM STDIN", rows())
        assert await _count(conn) == 0
        assert await conn.fetchval("SELECT 'answering'") == "answering"


async def test_async_producer_that_raises_halfway_leaves_table_empty(
    conn: trio_pg.Connection, table: str
) -> None:
    async def records() -> AsyncIterator[tuple[int, str, float]]:
        for i in range(100_000):
            if i == 50_000:
                raise KeyError("gone")
            yield (i, "x", 0.0)

    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(KeyError):
            await conn.copy_records_to_table(table, records=records())
        assert await _count(conn) == 0
        assert await conn.fetchval("SELECT 1") == 1


async def test_producer_cancelled_halfway_leaves_table_empty(
    conn: trio_pg.Connection, table: str
) -> None:
    halfway = trio.Event()

    async def rows() -> AsyncIterator[bytes]:
        for i in range(1_000_000):
            if i == 50_000:
                halfway.set()
                await trio.sleep_forever()
            yield f"{i}\tx\t0\n".encode()

    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:

            async def copy() -> None:
                await conn.copy_in("COPY t FROM STDIN", rows())

            nursery.start_soon(copy)
            await halfway.wait()
            nursery.cancel_scope.cancel()
        assert await _count(conn) == 0
        assert await conn.fetchval("SELECT 'answering'") == "answering"
        assert conn.statistics().cancels_sent == 0  # CopyFail ended it, no cancel needed


async def test_copy_in_of_a_non_copy_statement_is_refused(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(InterfaceError, match=r"COPY \.\.\. FROM STDIN"):
            await conn.copy_in("SELECT 1", b"")
        with pytest.raises(trio_pg.errors.UndefinedTableError):
            await conn.copy_in("COPY nope FROM STDIN", b"")
        with pytest.raises(InterfaceError, match="not str"):
            await conn.copy_in("COPY t FROM STDIN", "text")  # type: ignore[arg-type]
        assert await conn.fetchval("SELECT 1") == 1


async def test_copy_in_chunk_that_is_not_bytes_fails_the_copy(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(InterfaceError, match="must be bytes, not str"):
            await conn.copy_in("COPY t FROM STDIN", [b"1\ta\t1\n", "2\tb\t2\n"])  # type: ignore[list-item]
        assert await _count(conn) == 0


async def test_execute_of_copy_from_stdin_is_refused_and_connection_stays_usable(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(PostgresError, match="copy_in"):
            await conn.execute("COPY t FROM STDIN")
        assert await conn.fetchval("SELECT 1") == 1


async def test_copy_out_of_a_non_copy_statement_is_refused(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(InterfaceError, match=r"COPY \.\.\. TO STDOUT"):
            async with conn.copy_out("SELECT 1"):
                pass
        with pytest.raises(trio_pg.errors.UndefinedTableError):
            async with conn.copy_out("COPY nope TO STDOUT"):
                pass
        assert await conn.fetchval("SELECT 1") == 1


async def test_copy_out_error_while_streaming_is_raised_by_iteration(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        sql = "COPY (SELECT 10 / (5000 - g) FROM generate_series(1, 6000) g) TO STDOUT"
        received: list[bytes] = []

        async def read_all() -> None:
            async with conn.copy_out(sql) as chunks:
                async for chunk in chunks:
                    received.append(chunk)

        with pytest.raises(trio_pg.errors.DivisionByZeroError):
            await read_all()
        assert b"".join(received).count(b"\n") < 5000
        assert await conn.fetchval("SELECT 1") == 1


async def test_leaving_copy_out_early_stops_the_transfer(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        sql = "COPY (SELECT g, repeat('y', 100) FROM generate_series(1, 5000000) g) TO STDOUT"
        async with conn.copy_out(sql) as chunks:
            async for _ in chunks:
                break
        assert await conn.fetchval("SELECT 'usable'") == "usable"
        # The server stopped instead of sending the half gigabyte.
        assert conn.statistics().bytes_received < 100_000_000
        assert conn.statistics().cancels_sent == 1


# -- exclusivity and transactions ----------------------------------------------------------


async def test_copy_holds_the_connection_until_done(conn: trio_pg.Connection, table: str) -> None:
    order: list[str] = []
    entered = trio.Event()

    async def rows() -> AsyncIterator[bytes]:
        entered.set()
        for i in range(3):
            await trio.lowlevel.checkpoint()
            order.append(f"row {i}")
            yield f"{i}\tx\t0\n".encode()

    async def other() -> None:
        await entered.wait()
        await conn.fetchval("SELECT 1")
        order.append("other")

    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            await conn.copy_in("COPY t FROM STDIN", rows())
        assert order == ["row 0", "row 1", "row 2", "other"]


async def test_copy_inside_a_transaction_rolls_back_with_it(
    conn: trio_pg.Connection, table: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("BEGIN")
        assert await conn.copy_records_to_table(table, records=[(1, "a", 1.0)]) == 1
        assert await _copied_out(conn, "COPY t TO STDOUT") == b"1\ta\t1\n"
        await conn.execute("ROLLBACK")
        assert await _count(conn) == 0


# -- cancellation sweeps ----------------------------------------------------------------------


async def test_cancellation_sweep_over_copy_in(conn: trio_pg.Connection, table: str) -> None:
    # Three chunks of about 80 KiB: each is sent as its own CopyData.
    chunks = [
        b"".join(f"{c * 2000 + j}\t{'x' * 30}\t0\n".encode() for j in range(2000)) for c in range(3)
    ]

    async def operation() -> None:
        await conn.execute("TRUNCATE t")
        await conn.copy_in("COPY t FROM STDIN", iter(chunks))

    async def check(finished: bool) -> None:
        count = await _count(conn)
        # COPY is atomic: all rows or none (a cancel after CopyDone may come too late).
        assert count == 6000 if finished else count in (0, 6000)
        assert await conn.fetchval("SELECT 'in step'") == "in step"
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE

    with trio.fail_after(TEST_TIMEOUT):
        cancelled = await sweep(operation, check)
        assert cancelled > 5


async def test_cancellation_sweep_over_copy_out(conn: trio_pg.Connection) -> None:
    sql = "COPY (SELECT g, repeat('z', 50) FROM generate_series(1, 20000) g) TO STDOUT"
    expected = b"".join(f"{g}\t{'z' * 50}\n".encode() for g in range(1, 20001))

    async def operation() -> None:
        assert await _copied_out(conn, sql) == expected

    async def check(finished: bool) -> None:
        assert await conn.fetchval("SELECT $1::int4 * 2", 21) == 42
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE

    with trio.fail_after(TEST_TIMEOUT):
        cancelled = await sweep(operation, check)
        assert cancelled > 3
