"""Generated per-statement code agrees with the general paths, errors included.

The fast row decoder (one ``struct`` read per run of fixed-width columns) must decode
exactly what the general one does and hand every row it cannot read to it; the
generated Bind + Execute encoder must produce the bytes of ``frontend.bind`` and,
for arguments it cannot encode, the same errors naming the parameter.
"""

from __future__ import annotations

import decimal
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_pg.bindencoder import MAX_INLINE_PARAMETERS
from trio_pg.codecs import CodecRegistry, oids
from trio_pg.errors import InterfaceError, ProtocolError
from trio_pg.protocol import frontend as f
from trio_pg.rowdecoder import _general_decoder, compile_row_decoder
from trio_pg.statement import StatementInfo

REGISTRY = CodecRegistry.builtin()
ROW_OIDS = (
    oids.INT4,
    oids.INT8,
    oids.FLOAT8,
    oids.TEXT,
    oids.TIMESTAMPTZ,
    oids.BOOL,
    oids.NUMERIC,
    oids.TIMESTAMP,
    oids.INT2,
)


def _decoders(*type_oids: int) -> list:
    return [REGISTRY.result_decoder(oid)[1] for oid in type_oids]


def _row(values: list[bytes | None]) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        out += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return out


def _encode(oid: int, value: object) -> bytes:
    return REGISTRY.param_encoder(oid)[1](value)


_VALUE = {
    oids.INT4: st.integers(-(2**31), 2**31 - 1),
    oids.INT8: st.integers(-(2**63), 2**63 - 1),
    oids.FLOAT8: st.floats(allow_nan=False),
    oids.TEXT: st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    oids.TIMESTAMPTZ: st.datetimes(timezones=st.just(UTC)),
    oids.BOOL: st.booleans(),
    oids.NUMERIC: st.decimals(allow_nan=False, allow_infinity=False, places=3),
    oids.TIMESTAMP: st.datetimes(),
    oids.INT2: st.integers(-(2**15), 2**15 - 1),
}


@st.composite
def _rows(draw: st.DrawFn) -> tuple[tuple[int, ...], list[bytes | None]]:
    type_oids = tuple(draw(st.lists(st.sampled_from(ROW_OIDS), min_size=1, max_size=8)))
    values: list[bytes | None] = []
    for oid in type_oids:
        if draw(st.booleans()) and draw(st.booleans()):
            values.append(None)
        else:
            values.append(_encode(oid, draw(_VALUE[oid])))
    return type_oids, values


@given(_rows())
def test_fast_row_decoder_agrees_with_general_decoder_nulls_included(
    case: tuple[tuple[int, ...], list[bytes | None]],
) -> None:
    type_oids, values = case
    decoders = _decoders(*type_oids)
    body = _row(values)
    assert compile_row_decoder(decoders)(body) == _general_decoder(decoders)(body)


@pytest.mark.parametrize(
    ("micros", "expected"),
    [
        (2**63 - 1, datetime.max.replace(tzinfo=UTC)),
        (-(2**63), datetime.min.replace(tzinfo=UTC)),
    ],
)
def test_fast_row_decoder_hands_infinite_timestamps_to_the_codec(
    micros: int, expected: datetime
) -> None:
    decode = compile_row_decoder(_decoders(oids.INT4, oids.TIMESTAMPTZ, oids.TEXT))
    row = _row([struct.pack("!i", 1), struct.pack("!q", micros), b"x"])
    assert decode(row) == (1, expected, "x")


@pytest.mark.parametrize(
    "body",
    [
        _row([struct.pack("!i", 1), b"abc"])[:-1],  # truncated text
        _row([struct.pack("!i", 1), b"abc"]) + b"!",  # trailing byte
        _row([struct.pack("!h", 1), b"abc"]),  # int4 value of 2 bytes
        _row([struct.pack("!i", 1)]),  # one column of two
        struct.pack("!hiii", 2, 4, 1, -2),  # negative length other than -1
    ],
)
def test_fast_row_decoder_reports_malformed_rows_like_the_general_one(body: bytes) -> None:
    decoders = _decoders(oids.INT4, oids.TEXT)
    with pytest.raises((ProtocolError, struct.error)) as general:
        _general_decoder(decoders)(body)
    with pytest.raises(general.type):
        compile_row_decoder(decoders)(body)


def _statement(name: str, type_oids: tuple[int, ...]) -> StatementInfo:
    return StatementInfo("SELECT", name, type_oids, None, REGISTRY)


def _expected(info: StatementInfo, args: tuple[object, ...]) -> bytes:
    pairs = zip(args, info.param_oids, strict=True)
    encoded = [None if a is None else _encode(o, a) for a, o in pairs]
    formats = [REGISTRY.param_encoder(o)[0] for o in info.param_oids]
    parse = b"" if info.name else f.parse("", info.sql, info.param_oids)
    return parse + f.bind("", info.name, encoded, formats, ()) + f.execute("", 0)


PARAM_OIDS = (oids.INT4, oids.TEXT, oids.FLOAT8, oids.NUMERIC, oids.INT8, oids.BOOL, oids.INT2)


@st.composite
def _args(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[object, ...]]:
    type_oids = tuple(draw(st.lists(st.sampled_from(PARAM_OIDS), max_size=6)))
    args = tuple(
        None if draw(st.integers(0, 4)) == 0 else draw(_VALUE[oid]) for oid in type_oids
    )
    return type_oids, args


@pytest.mark.parametrize("name", ["", "s1"])
@given(case=_args())
def test_bind_encoder_bytes_equal_the_general_bind(
    name: str, case: tuple[tuple[int, ...], tuple[object, ...]]
) -> None:
    type_oids, args = case
    info = _statement(name, type_oids)
    assert info.execute_message(args) == _expected(info, args)
    assert info.execute_many_message([args, args]) == _expected(info, args) * 2


def test_bind_encoder_beyond_inline_limit_encodes_generically() -> None:
    type_oids = (oids.INT4,) * (MAX_INLINE_PARAMETERS + 1)
    info = _statement("s", type_oids)
    args = (*range(len(type_oids) - 1), None)
    assert info.execute_message(args) == _expected(info, args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2**31, "a"), r"\$1 for parameter of type int4: integer out of range"),
        ((True, "a"), r"\$1 .*bool is not accepted"),
        ((1, "a\x00b"), r"\$2 for parameter of type text: .*NUL"),
        ((1, "\udc80"), r"\$2 for parameter of type text"),
        ((1, 2), r"\$2 for parameter of type text: cannot encode int"),
        ((1,), "expects 2 argument"),
        ((1, "a", 3), "expects 2 argument"),
    ],
)
def test_bind_encoder_errors_name_the_parameter(args: tuple[object, ...], message: str) -> None:
    info = _statement("s", (oids.INT4, oids.TEXT))
    with pytest.raises(InterfaceError, match=message):
        info.execute_message(args)
    with pytest.raises(InterfaceError, match=message):
        info.execute_many_message([(1, "fine"), args])


def test_statement_without_parameters_rejects_arguments() -> None:
    info = _statement("", ())
    assert info.execute_message(()) == _expected(info, ())
    with pytest.raises(InterfaceError, match="expects 0 argument"):
        info.execute_message((1,))


def test_numeric_decoding_ignores_the_callers_decimal_context() -> None:
    decode = REGISTRY.result_decoder(oids.NUMERIC)[1]
    value = Decimal("12345678901234567890.1234567890")
    with decimal.localcontext(decimal.Context(prec=3, traps=[decimal.Inexact])):
        decoded = decode(_encode(oids.NUMERIC, value))
        negative = decode(_encode(oids.NUMERIC, value.copy_negate()))
    assert decoded.as_tuple() == value.as_tuple()
    assert negative.as_tuple() == value.copy_negate().as_tuple()
