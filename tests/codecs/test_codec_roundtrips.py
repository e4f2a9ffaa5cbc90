"""Property tests: every binary codec decodes what it encodes."""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trio_pg.codecs import CodecRegistry, Format, Interval
from trio_pg.codecs import oids as o

REGISTRY = CodecRegistry.builtin()


def round_trip(oid: int, value: object) -> object:
    encode_format, encoder = REGISTRY.param_encoder(oid)
    decode_format, decoder = REGISTRY.result_decoder(oid)
    assert encode_format is decode_format is Format.BINARY
    return decoder(encoder(value))


def int_range(bits: int) -> st.SearchStrategy[int]:
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


# Text PostgreSQL can store: no NUL, no lone surrogates (not encodable as UTF-8).
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
FIXED_OFFSETS = st.integers(-15 * 3600 - 3599, 15 * 3600 + 3599).map(
    lambda seconds: timezone(timedelta(seconds=seconds))
)


@given(st.booleans())
def test_bool_round_trips(value: bool) -> None:
    assert round_trip(o.BOOL, value) is value


@given(int_range(16), int_range(32), int_range(64), st.integers(0, 2**32 - 1))
def test_integers_round_trip(int2: int, int4: int, int8: int, oid: int) -> None:
    assert round_trip(o.INT2, int2) == int2
    assert round_trip(o.INT4, int4) == int4
    assert round_trip(o.INT8, int8) == int8
    assert round_trip(o.OID, oid) == oid


@given(st.floats(), st.floats(width=32))
def test_floats_round_trip_including_inf_and_nan(float8: float, float4: float) -> None:
    for oid, value in [(o.FLOAT8, float8), (o.FLOAT4, float4)]:
        decoded = round_trip(oid, value)
        assert isinstance(decoded, float)
        if math.isnan(value):
            assert math.isnan(decoded)
        else:
            assert decoded == value
            assert math.copysign(1, decoded) == math.copysign(1, value)


def _decimal(sign: int, coefficient: int, exponent: int) -> Decimal:
    return Decimal((sign, tuple(map(int, str(coefficient))), exponent))


# Large and small exponents up to numeric's limits (dscale <= 16383).
FINITE_DECIMALS = st.builds(
    _decimal,
    st.integers(0, 1),
    st.integers(0, 10**60) | st.integers(0, 10**600),
    st.integers(-16383, 2000),
)


@given(FINITE_DECIMALS | st.decimals(allow_nan=True, allow_infinity=True))
def test_numeric_round_trips_value_and_scale(value: Decimal) -> None:
    decoded = round_trip(o.NUMERIC, value)
    assert isinstance(decoded, Decimal)
    if value.is_nan():
        assert decoded.is_nan()
        return
    assert decoded == value
    if value.is_finite():
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        assert decoded.as_tuple().exponent == min(exponent, 0)


@given(st.integers(-(10**200), 10**200))
def test_numeric_round_trips_int_exactly(value: int) -> None:
    assert round_trip(o.NUMERIC, value) == value


@given(st.floats(allow_nan=False))
def test_numeric_round_trips_float_through_its_shortest_decimal(value: float) -> None:
    decoded = round_trip(o.NUMERIC, value)
    assert isinstance(decoded, Decimal)
    assert float(decoded) == value


@given(TEXT)
def test_text_family_round_trips(value: str) -> None:
    for oid in (o.TEXT, o.VARCHAR, o.BPCHAR, o.NAME, o.UNKNOWN):
        assert round_trip(oid, value) == value


@given(st.characters(min_codepoint=1, max_codepoint=0xFF) | st.just(""))
def test_char_round_trips(value: str) -> None:
    assert round_trip(o.CHAR, value) == value


@given(st.binary())
def test_bytea_round_trips(value: bytes) -> None:
    assert round_trip(o.BYTEA, value) == value


@given(st.uuids())
def test_uuid_round_trips(value: object) -> None:
    assert round_trip(o.UUID, value) == value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children) | st.dictionaries(TEXT, children),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_json_and_jsonb_round_trip(value: object) -> None:
    assert round_trip(o.JSON, value) == value
    assert round_trip(o.JSONB, value) == value


@given(st.dates())
def test_date_round_trips_including_infinity_sentinels(value: object) -> None:
    assert round_trip(o.DATE, value) == value


@given(st.times())
def test_time_round_trips(value: time) -> None:
    assert round_trip(o.TIME, value) == value


@given(st.times(timezones=FIXED_OFFSETS))
def test_timetz_round_trips_with_its_offset(value: time) -> None:
    decoded = round_trip(o.TIMETZ, value)
    assert isinstance(decoded, time)
    assert decoded.replace(tzinfo=None) == value.replace(tzinfo=None)
    assert decoded.utcoffset() == value.utcoffset()


@given(st.datetimes())
def test_timestamp_round_trips_across_the_whole_range(value: datetime) -> None:
    assert round_trip(o.TIMESTAMP, value) == value


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(UTC) | FIXED_OFFSETS,
    )
)
def test_timestamptz_round_trips_as_the_same_instant_in_utc(value: datetime) -> None:
    decoded = round_trip(o.TIMESTAMPTZ, value)
    assert isinstance(decoded, datetime)
    assert decoded == value
    assert decoded.tzinfo is UTC


@given(st.sampled_from([datetime.min, datetime.max]), st.sampled_from([None, UTC]))
def test_timestamptz_infinity_sentinels_round_trip(value: datetime, tz: timezone | None) -> None:
    decoded = round_trip(o.TIMESTAMPTZ, value.replace(tzinfo=tz))
    assert decoded == value.replace(tzinfo=UTC)


@given(st.timedeltas())
def test_interval_round_trips_timedelta(value: timedelta) -> None:
    assert round_trip(o.INTERVAL, value) == value


@given(
    st.builds(
        Interval,
        int_range(32).filter(bool),
        int_range(32),
        int_range(64),
    )
)
def test_interval_round_trips_month_intervals(value: Interval) -> None:
    assert round_trip(o.INTERVAL, value) == value


@given(
    st.ip_addresses().flatmap(
        lambda address: st.integers(0, address.max_prefixlen).map(
            lambda bits: ipaddress.ip_interface((address, bits))
        )
    )
)
def test_inet_round_trips(value: object) -> None:
    assert round_trip(o.INET, value) == value


@given(st.ip_addresses(v=4).map(lambda a: ipaddress.ip_network((a, 20), strict=False)))
def test_cidr_round_trips(value: object) -> None:
    assert round_trip(o.CIDR, value) == value


@given(st.binary(min_size=6, max_size=6), st.binary(min_size=8, max_size=8))
def test_macaddr_round_trips(mac6: bytes, mac8: bytes) -> None:
    assert round_trip(o.MACADDR, mac6.hex(":")) == mac6.hex(":")
    assert round_trip(o.MACADDR8, mac8.hex(":")) == mac8.hex(":")


@st.composite
def rectangular_arrays(draw: st.DrawFn, elements: st.SearchStrategy[object]) -> object:
    dims = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))

    def build(level: int) -> object:
        if level == len(dims):
            return draw(st.none() | elements)
        return [build(level + 1) for _ in range(dims[level])]

    return build(0)


@given(rectangular_arrays(int_range(32)))
def test_int4_arrays_round_trip_with_nulls_and_dimensions(value: object) -> None:
    assert round_trip(o.INT4_ARRAY, value) == value


@given(rectangular_arrays(TEXT))
def test_text_arrays_round_trip_with_nulls_and_dimensions(value: object) -> None:
    assert round_trip(o.TEXT_ARRAY, value) == value


@given(rectangular_arrays(FINITE_DECIMALS))
def test_numeric_arrays_round_trip(value: object) -> None:
    assert round_trip(o.NUMERIC_ARRAY, value) == value


@given(rectangular_arrays(TEXT))
def test_text_array_literals_round_trip_through_the_text_path(value: object) -> None:
    # An element type known only by its (absent) text codec goes through array_in
    # syntax both ways.
    registry = CodecRegistry.builtin()
    registry.add_array(70_001, 70_000, "_x")
    encode_format, encoder = registry.param_encoder(70_001)
    decode_format, decoder = registry.result_decoder(70_001)
    assert encode_format is decode_format is Format.TEXT
    assert decoder(encoder(value)) == value
