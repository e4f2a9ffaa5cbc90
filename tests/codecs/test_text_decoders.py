"""Text-format decoders: the output functions' spellings (DateStyle ISO, IntervalStyle
postgres, bytea_output hex or escape), as simple-query results carry them."""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from trio_pg.codecs import CodecRegistry, Interval
from trio_pg.codecs import oids as o

REGISTRY = CodecRegistry.builtin()
SAMPLE_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")

CASES = [
    (o.BOOL, b"t", True),
    (o.BOOL, b"f", False),
    (o.INT2, b"-32768", -32768),
    (o.INT8, b"9223372036854775807", 2**63 - 1),
    (o.OID, b"4294967295", 4294967295),
    (o.FLOAT8, b"1.5", 1.5),
    (o.FLOAT8, b"-Infinity", -math.inf),
    (o.FLOAT4, b"Infinity", math.inf),
    (o.NUMERIC, b"-12.340", Decimal("-12.340")),
    (o.NUMERIC, b"Infinity", Decimal("Infinity")),
    (o.TEXT, "héllo".encode(), "héllo"),
    (o.NAME, b"pg_class", "pg_class"),
    (o.CHAR, b"a", "a"),
    (o.CHAR, b"", ""),
    (o.CHAR, b"\\351", "\xe9"),  # charout, PostgreSQL 15+: high-bit bytes as octal
    (o.BYTEA, b"\\x00ff41", b"\x00\xffA"),
    (o.BYTEA, b"\\000\\377ab\\\\", b"\x00\xffab\\"),  # bytea_output = escape
    (o.BYTEA, b"", b""),
    (o.UUID, b"12345678-1234-5678-1234-567812345678", SAMPLE_UUID),
    (o.JSON, b'{"a": [1, null]}', {"a": [1, None]}),
    (o.JSONB, b'{"a": true}', {"a": True}),
    (o.DATE, b"2024-02-29", date(2024, 2, 29)),
    (o.DATE, b"infinity", date.max),
    (o.DATE, b"-infinity", date.min),
    (o.TIME, b"01:02:03.5", time(1, 2, 3, 500000)),
    (o.TIMETZ, b"01:02:03+05", time(1, 2, 3, tzinfo=timezone(timedelta(hours=5)))),
    (o.TIMESTAMP, b"2000-01-01 00:00:01.5", datetime(2000, 1, 1, 0, 0, 1, 500000)),
    (o.TIMESTAMP, b"infinity", datetime.max),
    (o.TIMESTAMPTZ, b"2000-01-01 01:00:00+01", datetime(2000, 1, 1, tzinfo=UTC)),
    (
        o.TIMESTAMPTZ,  # a zone whose offset has seconds (local mean time)
        b"2000-01-01 05:53:28.25+05:53:28",
        datetime(2000, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
    ),
    (o.TIMESTAMPTZ, b"-infinity", datetime.min.replace(tzinfo=UTC)),
    (o.INTERVAL, b"00:00:00", timedelta(0)),
    (o.INTERVAL, b"1 year 2 mons 3 days 04:05:06", Interval(14, 3, 14_706_000_000)),
    (o.INTERVAL, b"-1 days +02:03:00.25", timedelta(days=-1, hours=2, minutes=3, seconds=0.25)),
    (o.INTERVAL, b"3 days", timedelta(days=3)),
    (o.INTERVAL, b"-00:00:00.000001", timedelta(microseconds=-1)),
    (o.INTERVAL, b"-1 mons", Interval(-1, 0, 0)),
    (o.INTERVAL, b"100:00:00", timedelta(hours=100)),
    (o.INTERVAL, b"infinity", Interval(2**31 - 1, 2**31 - 1, 2**63 - 1)),
    (o.INET, b"192.168.0.1", ipaddress.ip_interface("192.168.0.1/32")),
    (o.INET, b"192.168.0.1/24", ipaddress.ip_interface("192.168.0.1/24")),
    (o.CIDR, b"2001:db8::/32", ipaddress.ip_network("2001:db8::/32")),
    (o.MACADDR, b"08:00:2b:01:02:03", "08:00:2b:01:02:03"),
    (o.INT4_ARRAY, b"{1,NULL}", [1, None]),
    (o.DATE_ARRAY, b"{2000-01-01,infinity}", [date(2000, 1, 1), date.max]),
    (99_999, b"whatever", "whatever"),
]


@pytest.mark.parametrize(("oid", "data", "value"), CASES)
def test_text_decoder_reads_output_function_spelling(oid: int, data: bytes, value: object) -> None:
    decoded = REGISTRY.text_decoder(oid)(data)
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(
    ("oid", "data"),
    [
        (o.DATE, b"0044-03-15 BC"),
        (o.DATE, b"10000-01-01"),
        (o.TIMESTAMP, b"10000-01-01 00:00:00"),
        (o.TIME, b"24:00:00"),
        (o.INTERVAL, b"@ 1 day"),
        (o.INTERVAL, b"P1D"),
    ],
)
def test_text_decoder_rejects_unrepresentable_values_clearly(oid: int, data: bytes) -> None:
    with pytest.raises(ValueError, match=r"PostgreSQL|IntervalStyle"):
        REGISTRY.text_decoder(oid)(data)
