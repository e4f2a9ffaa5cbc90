"""date, time, timetz, timestamp, timestamptz, interval: vectors, infinities, errors.

Layouts from src/backend/utils/adt/date.c and timestamp.c (integer datetimes):
date_send int32 days since 2000-01-01 (DATEVAL_NOBEGIN/NOEND = INT32 min/max for
-infinity/infinity); time_send int64 microseconds since midnight; timetz_send that
int64 plus an int32 zone in seconds west of UTC; timestamp_send/timestamptz_send int64
microseconds since 2000-01-01 00:00 (DT_NOBEGIN/DT_NOEND = INT64 min/max);
interval_send int64 microseconds, int32 days, int32 months.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from trio_pg.codecs import CodecRegistry, Format, Interval
from trio_pg.codecs import oids as o

REGISTRY = CodecRegistry.builtin()
PLUS5 = timezone(timedelta(hours=5))
MINUS0330 = timezone(timedelta(hours=-3, minutes=-30))


def encode(oid: int, value: object) -> bytes:
    fmt, encoder = REGISTRY.param_encoder(oid)
    assert fmt is Format.BINARY
    return encoder(value)


def decode(oid: int, data: bytes) -> object:
    fmt, decoder = REGISTRY.result_decoder(oid)
    assert fmt is Format.BINARY
    return decoder(data)


VECTORS = [
    (o.DATE, date(2000, 1, 1), "00000000"),
    (o.DATE, date(1999, 12, 31), "ffffffff"),
    (o.DATE, date(2024, 2, 29), "00002279"),  # 8825 days
    (o.DATE, date.max, "7fffffff"),
    (o.DATE, date.min, "80000000"),
    (o.TIME, time(1, 2, 3, 500000), "00000000ddf019e0"),
    (o.TIME, time(23, 59, 59, 999999), "000000141dd75fff"),
    (o.TIMETZ, time(1, 2, 3, tzinfo=PLUS5), "00000000dde878c0ffffb9b0"),
    (o.TIMETZ, time(0, 0, tzinfo=MINUS0330), "0000000000000000" "00003138"),
    (o.TIMESTAMP, datetime(2000, 1, 1, 0, 0, 1, 500000), "000000000016e360"),
    (o.TIMESTAMP, datetime(1999, 12, 31, 23, 59, 59, 999999), "ffffffffffffffff"),
    (o.TIMESTAMP, datetime.max, "7fffffffffffffff"),
    (o.TIMESTAMP, datetime.min, "8000000000000000"),
    (o.TIMESTAMPTZ, datetime(2000, 1, 1, tzinfo=UTC), "0000000000000000"),
    (o.TIMESTAMPTZ, datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), "00000000000f4240"),
    (o.TIMESTAMPTZ, datetime.max.replace(tzinfo=UTC), "7fffffffffffffff"),
    (o.TIMESTAMPTZ, datetime.min.replace(tzinfo=UTC), "8000000000000000"),
    (o.INTERVAL, Interval(14, 3, 14_706_000_000), "000000036c8bc080" "00000003" "0000000e"),
    (o.INTERVAL, timedelta(days=1, seconds=1), "00000000000f4240" "00000001" "00000000"),
    (o.INTERVAL, timedelta(microseconds=-1), "00000014" "1dd75fff" "ffffffff" "00000000"),
    (o.INTERVAL, Interval(2**31 - 1, 2**31 - 1, 2**63 - 1), "7fffffffffffffff7fffffff7fffffff"),
    (o.INTERVAL, Interval(-(2**31), -(2**31), -(2**63)), "80000000000000008000000080000000"),
]


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_datetime_encodes_to_send_format(oid: int, value: object, hexdata: str) -> None:
    assert encode(oid, value).hex() == hexdata


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_datetime_decodes_send_format(oid: int, value: object, hexdata: str) -> None:
    decoded = decode(oid, bytes.fromhex(hexdata))
    assert decoded == value
    assert type(decoded) is type(value)


def test_timestamptz_decodes_to_utc() -> None:
    decoded = decode(o.TIMESTAMPTZ, bytes.fromhex("00000000000f4240"))
    assert isinstance(decoded, datetime)
    assert decoded.tzinfo is UTC
    infinity = decode(o.TIMESTAMPTZ, bytes.fromhex("7fffffffffffffff"))
    assert infinity == datetime.max.replace(tzinfo=UTC)
    assert infinity.tzinfo is UTC  # type: ignore[attr-defined]


def test_timestamptz_converts_other_offsets_to_the_same_instant() -> None:
    value = datetime(2000, 1, 1, 5, 0, 1, tzinfo=PLUS5)
    assert encode(o.TIMESTAMPTZ, value).hex() == "00000000000f4240"


def test_timestamptz_treats_naive_datetime_as_utc() -> None:
    assert encode(o.TIMESTAMPTZ, datetime(2000, 1, 1, 0, 0, 1)).hex() == "00000000000f4240"
    assert encode(o.TIMESTAMPTZ, datetime.max).hex() == "7fffffffffffffff"


def test_timetz_treats_naive_time_as_utc() -> None:
    assert encode(o.TIMETZ, time(0, 0, 1)).hex() == "00000000000f4240" "00000000"


def test_timetz_decodes_zone_west_as_negative_offset() -> None:
    decoded = decode(o.TIMETZ, bytes.fromhex("00000000dde878c0ffffb9b0"))
    assert isinstance(decoded, time)
    assert decoded.utcoffset() == timedelta(hours=5)


def test_interval_without_months_decodes_to_timedelta() -> None:
    assert decode(o.INTERVAL, bytes.fromhex("00000000000f4240" "00000002" "00000000")) == (
        timedelta(days=2, seconds=1)
    )


def test_interval_too_large_for_timedelta_decodes_to_interval() -> None:
    assert decode(o.INTERVAL, bytes.fromhex("0000000000000000" "7fffffff" "00000000")) == (
        Interval(0, 2**31 - 1, 0)
    )


@pytest.mark.parametrize(
    ("oid", "hexdata"),
    [
        (o.DATE, "7ffffffe"),
        (o.DATE, "fff00000"),
        (o.TIMESTAMP, "7ffffffffffffffe"),
        (o.TIMESTAMPTZ, "8000000000000001"),
        (o.TIME, "000000141dd76000"),  # 24:00:00, allowed by time_recv
    ],
)
def test_values_outside_python_range_raise_value_error(oid: int, hexdata: str) -> None:
    with pytest.raises(ValueError, match="text"):
        decode(oid, bytes.fromhex(hexdata))


def test_aware_datetime_rejected_for_timestamp() -> None:
    with pytest.raises(ValueError, match="timestamptz"):
        encode(o.TIMESTAMP, datetime(2000, 1, 1, tzinfo=UTC))


def test_aware_time_rejected_for_time() -> None:
    with pytest.raises(ValueError, match="timetz"):
        encode(o.TIME, time(1, tzinfo=UTC))


def test_datetime_rejected_for_date() -> None:
    with pytest.raises(TypeError, match=r"value\.date\(\)"):
        encode(o.DATE, datetime(2000, 1, 1))


def test_interval_fields_out_of_range_raise_overflow() -> None:
    with pytest.raises(OverflowError, match="interval"):
        encode(o.INTERVAL, Interval(2**31, 0, 0))
    with pytest.raises(OverflowError, match="interval"):
        encode(o.INTERVAL, Interval(0, 0, 2**63))


@pytest.mark.parametrize(
    ("oid", "value", "pg_type", "py_type"),
    [
        (o.DATE, "2000-01-01", "date", "str"),
        (o.TIME, 5, "time", "int"),
        (o.TIMETZ, datetime(2000, 1, 1), "timetz", "datetime"),
        (o.TIMESTAMP, date(2000, 1, 1), "timestamp", "date"),
        (o.TIMESTAMPTZ, 0, "timestamptz", "int"),
        (o.INTERVAL, 5, "interval", "int"),
    ],
)
def test_wrong_python_type_names_both_types(
    oid: int, value: object, pg_type: str, py_type: str
) -> None:
    with pytest.raises(TypeError) as info:
        encode(oid, value)
    assert pg_type in str(info.value)
    assert py_type in str(info.value)
