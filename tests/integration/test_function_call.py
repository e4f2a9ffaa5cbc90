"""call_function() through the FunctionCall message, against a real server."""

from __future__ import annotations

import datetime
import decimal

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from trio_pg.errors import InterfaceError


async def test_call_function_by_overloaded_name(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # sqrt(float8) and sqrt(numeric): picked as the parser picks sqrt('9').
        assert await conn.call_function("sqrt", 9.0) == 3.0
        assert await conn.call_function("sqrt", 2) == pytest.approx(1.4142135623730951)


async def test_call_function_by_oid(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        oid = await conn.fetchval("SELECT 'sqrt(numeric)'::regprocedure::oid")
        assert await conn.call_function(oid, decimal.Decimal(16)) == decimal.Decimal(4)


async def test_call_function_by_signature_and_qualified_name(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        root = await conn.call_function("sqrt(numeric)", decimal.Decimal("2.25"))
        assert root == decimal.Decimal("1.5")
        assert await conn.call_function("pg_catalog.octet_length(bytea)", b"abc") == 3
        assert await conn.call_function("pg_catalog.int4pl", 40, 2) == 42
        today = await conn.call_function(
            "date_trunc(text, timestamp)", "day", datetime.datetime(2024, 5, 6, 7, 8)
        )
        assert today == datetime.datetime(2024, 5, 6)


async def test_call_function_null_and_void(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute(
            "CREATE FUNCTION pg_temp.maybe(x int4) RETURNS int4 LANGUAGE sql AS 'SELECT x'"
        )
        assert await conn.call_function("pg_temp.maybe", None) is None
        assert await conn.call_function("pg_temp.maybe", 7) == 7
        assert await conn.call_function("pg_sleep", 0) is None


async def test_function_resolved_once_per_connection(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.call_function("sqrt", 4.0)
        before = conn.statistics().requests
        for value in (1.0, 4.0, 9.0):
            assert await conn.call_function("sqrt", value) == value**0.5
        # One FunctionCall per call, no more lookups.
        assert conn.statistics().requests - before == 3


async def test_function_recreated_under_a_new_oid_is_resolved_again(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        create = "CREATE FUNCTION twice(x int4) RETURNS int4 LANGUAGE sql AS 'SELECT {} * x'"
        await conn.execute(create.format(2))
        try:
            assert await conn.call_function("twice", 5) == 10
            await conn.execute("DROP FUNCTION twice(int4)")
            await conn.execute(create.format(3))
            assert await conn.call_function("twice", 5) == 15
        finally:
            await conn.execute("DROP FUNCTION IF EXISTS twice(int4)")


async def test_call_function_errors(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.errors.UndefinedFunctionError):
            await conn.call_function("no_such_function", 1)
        with pytest.raises(trio_pg.errors.UndefinedFunctionError):
            await conn.call_function("sqrt(text)", "x")
        with pytest.raises(InterfaceError, match=r"takes 2 argument\(s\), got 1"):
            await conn.call_function("int4pl", 1)
        with pytest.raises(InterfaceError, match="no function has OID"):
            await conn.call_function(1, 1)
        with pytest.raises(InterfaceError, match="invalid argument 1"):
            await conn.call_function("sqrt(float8)", "nine")
        with pytest.raises(InterfaceError, match=r"OID \(int\) or a name"):
            await conn.call_function(3.5)  # type: ignore[arg-type]
        with pytest.raises(trio_pg.errors.DivisionByZeroError):
            await conn.call_function("int4div", 1, 0)
        assert await conn.fetchval("SELECT 1") == 1


async def test_ambiguous_overload_asks_for_a_signature(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute(
            "CREATE FUNCTION pg_temp.pick(x int4) RETURNS text LANGUAGE sql AS $$SELECT 'int'$$;"
            "CREATE FUNCTION pg_temp.pick(x bool) RETURNS text LANGUAGE sql AS $$SELECT 'bool'$$"
        )
        with pytest.raises(trio_pg.errors.AmbiguousFunctionError):
            await conn.call_function("pg_temp.pick", 1)
        assert await conn.call_function("pg_temp.pick(bool)", True) == "bool"
        assert await conn.call_function("pg_temp.pick(int4)", 1) == "int"
