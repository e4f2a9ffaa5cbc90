"""Queries against a real server: execute, fetch*, executemany, prepare, the statement cache."""

from __future__ import annotations

import decimal

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from trio_pg.testing import PostgresServer


async def test_execute_without_args_runs_several_statements_and_returns_last_tag(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        tag = await conn.execute(
            "CREATE TEMP TABLE t_multi (a int); INSERT INTO t_multi VALUES (1), (2)"
        )
        assert tag == "INSERT 0 2"
        assert await conn.fetchval("SELECT count(*) FROM t_multi") == 2


async def test_execute_with_args_returns_command_tag(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE t_args (a int, b text)")
        assert await conn.execute("INSERT INTO t_args VALUES ($1, $2)", 1, "x") == "INSERT 0 1"
        assert await conn.execute("UPDATE t_args SET b = $1", "y") == "UPDATE 1"


async def test_fetch_returns_records_with_names_and_types(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        rows = await conn.fetch(
            "SELECT g AS n, g::text AS s, g * 1.5::numeric AS d "
            "FROM generate_series(1, $1::int) AS g",
            3,
        )
        assert [tuple(r) for r in rows] == [
            (1, "1", decimal.Decimal("1.5")),
            (2, "2", decimal.Decimal("3.0")),
            (3, "3", decimal.Decimal("4.5")),
        ]
        assert rows[0]["s"] == "1"
        assert rows[1].keys() == ("n", "s", "d")
        assert rows[2] == (3, "3", decimal.Decimal("4.5"))


async def test_fetchrow_and_fetchval_return_none_without_rows(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchrow("SELECT 1 WHERE false") is None
        assert await conn.fetchval("SELECT 1 WHERE false") is None
        assert await conn.fetchval("SELECT 1 AS a, 2 AS b", column="b") == 2
        assert await conn.fetchval("SELECT 1 AS a, 2 AS b", column=1) == 2


async def test_parameter_types_come_from_the_server(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # An int where the server expects numeric, and where it expects int8.
        assert await conn.fetchval("SELECT $1::numeric + 0.5", 2) == decimal.Decimal("2.5")
        assert await conn.fetchval("SELECT $1::int8 * 2", 2**40) == 2**41
        with pytest.raises(trio_pg.InterfaceError, match=r"\$1.*int4"):
            await conn.fetchval("SELECT $1::int4", "not an int")


async def test_server_error_raises_sqlstate_subclass_and_connection_stays_usable(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE t_uniq (a int PRIMARY KEY)")
        await conn.execute("INSERT INTO t_uniq VALUES ($1)", 1)
        with pytest.raises(trio_pg.UniqueViolationError) as info:
            await conn.execute("INSERT INTO t_uniq VALUES ($1)", 1)
        assert info.value.sqlstate == "23505"
        assert info.value.constraint_name == "t_uniq_pkey"
        assert info.value.table_name == "t_uniq"
        with pytest.raises(trio_pg.errors.PostgresSyntaxError):
            await conn.fetch("SELEC 1")
        with pytest.raises(trio_pg.errors.DivisionByZeroError):
            await conn.execute("SELECT 1/0")
        assert conn.transaction_status is trio_pg.TransactionStatus.IDLE
        assert await conn.fetchval("SELECT 7") == 7


async def test_nul_in_text_argument_raises_before_anything_is_sent(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchval("SELECT $1::text", "ok") == "ok"  # described and cached
        before = conn.statistics()
        with pytest.raises(trio_pg.InterfaceError, match="NUL"):
            await conn.fetchval("SELECT $1::text", "a\x00b")
        with pytest.raises(trio_pg.InterfaceError, match="NUL"):
            await conn.execute("SELECT 'a\x00b'")
        after = conn.statistics()
        assert after.bytes_sent == before.bytes_sent
        assert after.requests == before.requests
        assert await conn.fetchval("SELECT $1::text", "still fine") == "still fine"


async def test_65536_parameters_raise_before_anything_is_sent(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        before = conn.statistics()
        with pytest.raises(trio_pg.InterfaceError, match="65535"):
            await conn.fetch("SELECT 1", *range(65_536))
        with pytest.raises(trio_pg.InterfaceError, match="65535"):
            await conn.executemany("SELECT 1", [tuple(range(65_536))])
        assert conn.statistics().bytes_sent == before.bytes_sent


async def test_wrong_argument_count_is_an_interface_error(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.InterfaceError, match="expects 2 argument"):
            await conn.fetch("SELECT $1::int + $2::int", 1)
        assert await conn.fetchval("SELECT $1::int + $2::int", 1, 2) == 3


async def test_executemany_is_one_round_trip_and_atomic(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE t_many (a int PRIMARY KEY, b text)")
        await conn.executemany("INSERT INTO t_many VALUES ($1, $2)", [(1, "a")])  # describe
        before = conn.statistics()
        await conn.executemany(
            "INSERT INTO t_many VALUES ($1, $2)", [(i, str(i)) for i in range(2, 1002)]
        )
        after = conn.statistics()
        assert after.requests - before.requests == 1
        assert await conn.fetchval("SELECT count(*) FROM t_many") == 1001
        with pytest.raises(trio_pg.UniqueViolationError):
            await conn.executemany("INSERT INTO t_many VALUES ($1, $2)", [(5000, "x"), (1, "dup")])
        # All or nothing: the first row of the failed batch is not there either.
        assert await conn.fetchval("SELECT count(*) FROM t_many WHERE a = 5000") == 0


async def test_prepared_statement_reports_types_and_runs_repeatedly(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        stmt = await conn.prepare("SELECT $1::int4 + 1 AS next, $2::text AS label")
        assert stmt.parameter_types == ("int4", "text")
        assert [(c.name, c.type_name) for c in stmt.columns] == [
            ("next", "int4"),
            ("label", "text"),
        ]
        assert await stmt.fetchval(1, "a") == 2
        assert await stmt.fetchrow(41, "b") == (42, "b")
        await stmt.close()
        with pytest.raises(trio_pg.InterfaceError, match="closed"):
            await stmt.fetch(1, "c")


async def test_cached_statement_is_reprepared_after_schema_change(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE t_schema (a int)")
        await conn.execute("INSERT INTO t_schema VALUES (1)")
        assert await conn.fetch("SELECT * FROM t_schema") == [(1,)]
        await conn.execute("ALTER TABLE t_schema ADD COLUMN b text DEFAULT 'x'")
        rows = await conn.fetch("SELECT * FROM t_schema")
        assert rows == [(1, "x")]
        assert rows[0].keys() == ("a", "b")


async def test_cached_statements_survive_discard_all(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchval("SELECT $1::int4 * 3", 2) == 6
        stmt = await conn.prepare("SELECT $1::int4 * 5")
        await conn.execute("DISCARD ALL")
        assert await conn.fetchval("SELECT $1::int4 * 3", 3) == 9
        assert await stmt.fetchval(2) == 10


async def test_statement_cache_size_zero_uses_only_unnamed_statements(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(
            postgres_server.dsn(), statement_cache_size=0
        ) as conn:
            for i in range(3):
                assert await conn.fetchval("SELECT $1::int4 + 1", i) == i + 1
            stmt = await conn.prepare("SELECT $1::text || '!'")
            assert await stmt.fetchval("hi") == "hi!"
            assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
            assert conn.statistics().statement_cache_size == 0


async def test_statement_cache_evicts_and_closes_least_recently_used(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_pg.open_connection(postgres_server.dsn(), statement_cache_size=2) as conn:
            for i in range(5):
                assert await conn.fetchval(f"SELECT {i} + $1::int4", 1) == i + 1
            assert conn.statistics().statement_cache_size == 2
            # Evicted statements are closed on the server, not leaked.
            assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 2


async def test_empty_query_returns_empty_tag(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.execute("") == ""
        assert await conn.fetch("") == []


async def test_copy_from_stdin_through_execute_is_refused_and_connection_stays_in_step(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("CREATE TEMP TABLE t_copy (a int)")
        with pytest.raises(trio_pg.PostgresError, match="copy_in"):
            await conn.execute("COPY t_copy FROM STDIN")
        with pytest.raises(trio_pg.PostgresError, match="copy_in"):
            await conn.fetch("COPY t_copy FROM STDIN")  # extended protocol
        assert await conn.fetchval("SELECT count(*) FROM t_copy") == 0


async def test_parameters_and_server_version_reflect_the_server(
    conn: trio_pg.Connection, postgres_server: PostgresServer
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert conn.server_version[:1] == postgres_server.version[:1]
        assert conn.parameters["client_encoding"] == "UTF8"
        assert conn.backend_pid == await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("SET application_name = 'trio_pg_test'")
        assert conn.parameters["application_name"] == "trio_pg_test"


async def test_protocol_version_is_3_2_on_postgres_18_and_3_0_before(
    conn: trio_pg.Connection,
) -> None:
    expected = (3, 2) if conn.server_version >= (18,) else (3, 0)
    assert conn.protocol_version == expected
