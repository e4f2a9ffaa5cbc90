"""Every built-in codec against a real server: binary round trips and server-side checks."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import uuid
from typing import Any

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from trio_pg.codecs import CodecRegistry, oids

UTC = dt.UTC

# (PostgreSQL type, Python value, the server's own text rendering of that value)
ROUND_TRIPS: list[tuple[str, Any, str]] = [
    ("bool", True, "true"),
    ("int2", -32768, "-32768"),
    ("int4", 2147483647, "2147483647"),
    ("int8", -(2**63), "-9223372036854775808"),
    ("oid", 4294967295, "4294967295"),
    ("float4", 1.5, "1.5"),
    ("float8", -2.25e-300, "-2.25e-300"),
    ("numeric", decimal.Decimal("-123456789.000100"), "-123456789.000100"),
    ("numeric", decimal.Decimal("NaN"), "NaN"),
    ("text", "héllo ✓", "héllo ✓"),
    ("varchar", "v", "v"),
    ("name", "a_name", "a_name"),
    ("bytea", b"\x00\xff\x10", "\\x00ff10"),
    ("date", dt.date(2024, 2, 29), "2024-02-29"),
    ("date", dt.date.max, "infinity"),
    ("time", dt.time(23, 59, 59, 999999), "23:59:59.999999"),
    ("timestamp", dt.datetime(1999, 12, 31, 23, 59, 59, 5), "1999-12-31 23:59:59.000005"),
    ("timestamptz", dt.datetime(2000, 1, 1, tzinfo=UTC), "2000-01-01 00:00:00+00"),
    ("timestamptz", dt.datetime.min.replace(tzinfo=UTC), "-infinity"),
    ("interval", dt.timedelta(days=3, seconds=5, microseconds=7), "3 days 00:00:05.000007"),
    ("interval", trio_pg.Interval(months=14, days=1, microseconds=0), "1 year 2 mons 1 day"),
    (
        "uuid",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "12345678-1234-5678-1234-567812345678",
    ),
    ("jsonb", {"a": [1, 2, None]}, '{"a": [1, 2, null]}'),
    ("json", [1, "x"], '[1, "x"]'),
    ("inet", ipaddress.ip_interface("192.168.0.1/24"), "192.168.0.1/24"),
    ("cidr", ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8"),
    ("macaddr", "08:00:2b:01:02:03", "08:00:2b:01:02:03"),
    ("int4[]", [[1, None], [3, 4]], "{{1,NULL},{3,4}}"),
    ("text[]", ["a", "b c", None], '{a,"b c",NULL}'),
    ("int8[]", [], "{}"),
]


@pytest.mark.parametrize(
    ("pg_type", "value", "text"),
    ROUND_TRIPS,
    ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(ROUND_TRIPS)],
)
async def test_value_round_trips_and_server_agrees_on_its_text(
    conn: trio_pg.Connection, pg_type: str, value: Any, text: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("SET TimeZone = 'UTC'")
        row = await conn.fetchrow(f"SELECT $1::{pg_type} AS v, $1::{pg_type}::text AS t", value)
        assert row is not None
        if pg_type == "json":
            assert json.loads(row["t"]) == value
        else:
            assert row["t"] == text
        if isinstance(value, decimal.Decimal) and value.is_nan():
            assert row["v"].is_nan()
        else:
            assert row["v"] == value


async def test_null_parameters_and_results(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchrow("SELECT $1::int4, $2::text", None, None) == (None, None)


async def test_unknown_types_arrive_as_text(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        assert await conn.fetchval("SELECT '(1,2)'::point") == "(1,2)"
        assert await conn.fetchval("SELECT $1::point::text", "(3,4)") == "(3,4)"


async def test_builtin_oid_table_matches_the_server(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        registry = CodecRegistry.builtin()
        table = {
            getattr(oids, name): name
            for name in dir(oids)
            if name.isupper() and isinstance(getattr(oids, name), int)
        }
        rows = await conn.fetch(
            "SELECT oid::int8, typname FROM pg_type WHERE oid = ANY($1::oid[])", list(table)
        )
        server = {r[0]: r[1] for r in rows}
        assert set(server) == set(table)
        for oid in table:
            assert registry.type_name(oid) == server[oid]
