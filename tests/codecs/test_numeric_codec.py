"""numeric: byte-exact vectors, exactness, specials and limits.

Layout from numeric_send/numeric_recv (src/backend/utils/adt/numeric.c): uint16
ndigits, int16 weight, uint16 sign (0x0000 +, 0x4000 -, 0xC000 NaN, 0xD000 +Inf,
0xF000 -Inf), uint16 dscale, then ndigits base-10000 digits. Leading and trailing
zero digits are stripped (strip_var), zero has no digits and weight 0.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_pg.codecs import CodecRegistry, Format
from trio_pg.codecs import oids as o
from trio_pg.codecs.numeric import decode_numeric_at

_, ENCODE = CodecRegistry.builtin().param_encoder(o.NUMERIC)
FMT, DECODE = CodecRegistry.builtin().result_decoder(o.NUMERIC)

VECTORS = [
    ("0", "0000 0000 0000 0000"),
    ("0.00", "0000 0000 0000 0002"),
    ("1", "0001 0000 0000 0000 0001"),
    ("-1.5", "0002 0000 4000 0001 0001 1388"),
    ("1.50", "0002 0000 0000 0002 0001 1388"),
    ("1234.5678", "0002 0000 0000 0004 04d2 162e"),
    ("12345678.9", "0003 0001 0000 0001 04d2 162e 2328"),
    ("0.00001", "0001 fffe 0000 0005 03e8"),
    ("100000000", "0001 0002 0000 0000 0001"),
    ("10000", "0001 0001 0000 0000 0001"),
    ("1.10", "0002 0000 0000 0002 0001 03e8"),
    ("-0.0001", "0001 ffff 4000 0004 0001"),
    ("NaN", "0000 0000 c000 0000"),
    ("Infinity", "0000 0000 d000 0000"),
    ("-Infinity", "0000 0000 f000 0000"),
]


@pytest.mark.parametrize(("text", "hexdata"), VECTORS)
def test_numeric_encodes_like_numeric_send(text: str, hexdata: str) -> None:
    assert ENCODE(Decimal(text)).hex() == hexdata.replace(" ", "")


@pytest.mark.parametrize(("text", "hexdata"), VECTORS)
def test_numeric_decodes_numeric_send_output_keeping_scale(text: str, hexdata: str) -> None:
    assert FMT is Format.BINARY
    decoded = DECODE(bytes.fromhex(hexdata))
    assert isinstance(decoded, Decimal)
    assert str(decoded) == str(Decimal(text))


def test_numeric_decodes_infinity_with_server_dscale() -> None:
    # numeric_send reads dscale of a special value from its short header, which
    # yields 32 for +/-Infinity; the decoder must ignore it.
    assert DECODE(bytes.fromhex("00000000d0000020")) == Decimal("Infinity")
    assert DECODE(bytes.fromhex("00000000f0000020")) == Decimal("-Infinity")


def test_numeric_decodes_digits_beyond_dscale_as_truncated() -> None:
    # 1.5000 stored with dscale 1: trailing digit-group zeros beyond dscale.
    assert str(DECODE(bytes.fromhex("00020000000000010001 1388".replace(" ", "")))) == "1.5"


def test_numeric_accepts_int_exactly() -> None:
    assert ENCODE(10**40) == ENCODE(Decimal(10**40))
    assert DECODE(ENCODE(-(10**40) - 7)) == Decimal(-(10**40) - 7)


def test_numeric_sends_float_as_shortest_decimal() -> None:
    assert ENCODE(0.1) == ENCODE(Decimal("0.1"))
    assert ENCODE(float("inf")) == ENCODE(Decimal("Infinity"))
    assert DECODE(ENCODE(float("nan"))).is_nan()  # type: ignore[attr-defined]


def test_numeric_sends_negative_zero_and_snan_as_plain_values() -> None:
    assert ENCODE(Decimal("-0.0")) == ENCODE(Decimal("0.0"))
    assert ENCODE(Decimal("sNaN")) == ENCODE(Decimal("NaN"))


def test_numeric_is_exact_beyond_decimal_context_precision() -> None:
    value = Decimal("1234567890123456789012345678901234567890.0123456789012345678901234567890")
    decoded = DECODE(ENCODE(value))
    assert decoded == value
    assert str(decoded) == str(value)


def test_numeric_rejects_too_many_fraction_digits() -> None:
    with pytest.raises(OverflowError, match="16383"):
        ENCODE(Decimal("1E-16384"))
    assert DECODE(ENCODE(Decimal("1E-16383"))) == Decimal("1E-16383")


def test_numeric_rejects_too_many_integer_digits() -> None:
    with pytest.raises(OverflowError, match="131072"):
        ENCODE(Decimal("1E+131072"))
    assert DECODE(ENCODE(Decimal("1E+131071"))) == Decimal("1E+131071")


def test_numeric_rejects_bool_and_str() -> None:
    with pytest.raises(TypeError, match=r"numeric.*bool|bool.*numeric"):
        ENCODE(True)
    with pytest.raises(TypeError, match="str"):
        ENCODE("1.5")


# -- reading in place (the row decoders' path) -------------------------------------------


def _outcome(fn: Callable[[], Decimal]) -> tuple[str, str]:
    try:
        return ("value", str(fn()))
    except Exception as exc:  # noqa: BLE001 - comparing what each path raises
        return ("error", type(exc).__name__)


@pytest.mark.parametrize(("text", "hexdata"), VECTORS)
def test_in_place_decoding_matches_the_decoder_on_every_vector(text: str, hexdata: str) -> None:
    data = b"\xff\xff" + bytes.fromhex(hexdata) + b"\xee"  # surrounded, as in a DataRow
    assert str(decode_numeric_at(data, 2, len(data) - 3)) == text


@settings(max_examples=500)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_in_place_decoding_matches_the_decoder_for_any_value(value: Decimal) -> None:
    try:
        body = ENCODE(value)
    except OverflowError:
        return  # beyond what PostgreSQL stores
    data = b"ab" + body + b"cd"
    assert str(decode_numeric_at(data, 2, len(body))) == str(DECODE(body))


@settings(max_examples=1000, deadline=None)
@given(
    st.integers(0, 5),
    st.integers(-40, 40),
    st.sampled_from([0x0000, 0x4000, 0xC000, 0xD000, 0xF000]) | st.integers(0, 0xFFFF),
    st.integers(0, 60) | st.integers(0, 0xFFFF),
    st.binary(max_size=10),
)
def test_in_place_decoding_matches_the_decoder_on_arbitrary_bytes(
    ndigits: int, weight: int, sign: int, dscale: int, digits: bytes
) -> None:
    # Plausible headers over digits of any length (the count may disagree with the
    # length, the digits may exceed 9999): both paths agree, down to the error raised.
    body = struct.pack("!HhHH", ndigits, weight, sign, dscale) + digits
    data = b"x" + body
    assert _outcome(lambda: decode_numeric_at(data, 1, len(body))) == _outcome(lambda: DECODE(body))
