"""The ``numeric`` codec: ``decimal.Decimal`` both ways, exactly.

Binary layout (``numeric_send``/``numeric_recv`` in ``src/backend/utils/adt/numeric.c``):
four big-endian 16-bit fields ``ndigits``, ``weight`` (signed), ``sign`` and
``dscale``, then ``ndigits`` base-10000 digits, most significant first. The value is
``sum(digit[i] * 10000 ** (weight - i))``; ``dscale`` is the number of decimal
digits after the point (so ``1.50`` keeps its trailing zero). ``sign`` is 0x0000
(positive), 0x4000 (negative), 0xC000 (NaN), 0xD000 (+Infinity) or 0xF000
(-Infinity, PostgreSQL 14 and later).

Decoding keeps the scale: ``1.50`` decodes to ``Decimal("1.50")``. Parameters may be
``Decimal`` (sent exactly, NaN and ±Infinity included), ``int`` (exact), or ``float``
(sent as ``Decimal(repr(value))``: the shortest decimal that reads back as that
float, so ``0.1`` is sent as ``0.1``, not as its 55-digit binary expansion).
PostgreSQL cannot store signalling NaNs or negative zero: both are sent as their
plain counterparts (NaN and 0).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Final

from trio_pg.codecs import oids
from trio_pg.codecs.base import Codec, DecodeFn, Format, wrong_type

__all__ = ["CODECS", "IN_PLACE_DECODERS", "TEXT_DECODERS", "decode_numeric_at"]

_POS: Final = 0x0000
_NEG: Final = 0x4000
_NAN: Final = 0xC000
_PINF: Final = 0xD000
_NINF: Final = 0xF000

# Limits from numeric.c: the weight is an int16 (NUMERIC_WEIGHT_MAX), and the display
# scale must fit NUMERIC_DSCALE_MASK (numeric_recv rejects larger ones).
_MAX_WEIGHT: Final = 0x7FFF
_MAX_DSCALE: Final = 0x3FFF

_HEADER = struct.Struct("!HhHH")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
# Most values have few base-10000 digits: precompile their layouts.
_DIGIT_STRUCTS: Final = tuple(struct.Struct(f"!{n}H") for n in range(33))
# Decimal arithmetic rounds to its context's precision, so scaling a decoded
# coefficient uses a context that can hold any numeric exactly, never the caller's.
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

_SPECIAL_DECODED: Final[Mapping[int, Decimal]] = {
    _NAN: Decimal("NaN"),
    _PINF: Decimal("Infinity"),
    _NINF: Decimal("-Infinity"),
}


def _scaled(coefficient: int, shift: int, dscale: int, sign: int) -> Decimal:
    """The value of the digits read as the int ``coefficient``, given its ``shift``.

    ``shift`` moves the coefficient's last digit to 10 ** -dscale (see _decode_numeric).
    """
    if shift > 0:
        coefficient *= 10**shift
    elif shift < 0:
        coefficient //= 10**-shift
    number = Decimal(coefficient).scaleb(-dscale, _EXACT)
    return number.copy_negate() if sign == _NEG else number


def _decode_numeric(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = _unpack_header(data)
    if sign & 0x8000:
        # numeric_send reports a meaningless dscale for infinities (32): ignore it.
        return _SPECIAL_DECODED[sign]
    if ndigits == 0:
        return Decimal(f"0E-{dscale}")
    # The last base-10000 digit sits at 10 ** (4 * (weight - ndigits + 1)); scale the
    # coefficient so that its last decimal digit sits at 10 ** -dscale instead (the
    # digits cut are zeros: numeric_recv truncates anything beyond dscale).
    shift = 4 * (weight - ndigits + 1) + dscale
    if ndigits < 33:
        # An int coefficient and an exact scaling are faster than Decimal parsing a
        # string, and ints this small are cheap.
        coefficient = 0
        for digit in _DIGIT_STRUCTS[ndigits].unpack_from(data, 8):
            coefficient = coefficient * 10000 + digit
        return _scaled(coefficient, shift, dscale, sign)
    text = ("%04d" * ndigits) % struct.unpack_from(f"!{ndigits}H", data, 8)
    if shift > 0:
        text += "0" * shift
    elif shift < 0:
        text = text[:shift] or "0"
    return Decimal(f"-{text}E-{dscale}" if sign == _NEG else f"{text}E-{dscale}")


# Header plus 1 to 4 base-10000 digits, each layout read with one unpack: numeric(p, s)
# with p up to 12 or so, the everyday money and quantity columns.
_N1: Final = struct.Struct("!HhHHH").unpack_from
_N2: Final = struct.Struct("!HhHHHH").unpack_from
_N3: Final = struct.Struct("!HhHHHHH").unpack_from
_N4: Final = struct.Struct("!HhHHHHHH").unpack_from


def decode_numeric_at(data: bytes, pos: int, size: int) -> Decimal:
    """Decode the ``size``-byte numeric value at ``data[pos:]`` (for row decoders).

    Values of one to four base-10000 digits are read in place with one unpack and no
    loop; any other value (or one that does not look right) goes to the general
    decoder, which also raises for a malformed one.
    """
    # The length gives the digit count; the header's own count must agree.
    if size == 14:
        ndigits, weight, sign, dscale, a, b, c = _N3(data, pos)
        coefficient = (a * 10000 + b) * 10000 + c
        valid = ndigits == 3
    elif size == 12:
        ndigits, weight, sign, dscale, a, b = _N2(data, pos)
        coefficient = a * 10000 + b
        valid = ndigits == 2
    elif size == 10:
        ndigits, weight, sign, dscale, coefficient = _N1(data, pos)
        valid = ndigits == 1
    elif size == 16:
        ndigits, weight, sign, dscale, a, b, c, d = _N4(data, pos)
        coefficient = ((a * 10000 + b) * 10000 + c) * 10000 + d
        valid = ndigits == 4
    else:
        valid = False
    if valid and sign in (_POS, _NEG):
        return _scaled(coefficient, 4 * (weight - ndigits + 1) + dscale, dscale, sign)
    return _decode_numeric(data[pos : pos + size])


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise wrong_type("numeric", "Decimal, int or float (bool is not accepted)", value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    raise wrong_type("numeric", "Decimal, int or float", value)


def _encode_numeric(value: object) -> bytes:
    number = _as_decimal(value)
    if not number.is_finite():
        if number.is_nan():
            return _pack_header(0, 0, _NAN, 0)
        return _pack_header(0, 0, _NINF if number.is_signed() else _PINF, 0)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    dscale = max(0, -exponent)
    if dscale > _MAX_DSCALE:
        raise OverflowError(
            f"numeric value has {dscale} digits after the decimal point; PostgreSQL "
            f"accepts at most {_MAX_DSCALE} (round it, e.g. with Decimal.quantize)"
        )
    if number.is_zero():
        return _pack_header(0, 0, _POS, dscale)
    if number.adjusted() // 4 > _MAX_WEIGHT:
        raise OverflowError(
            f"numeric value has {number.adjusted() + 1} digits before the decimal point; "
            f"PostgreSQL accepts at most {4 * (_MAX_WEIGHT + 1)}"
        )
    # Exact fixed-point text (format() without a precision never rounds), split at
    # the point and padded to whole base-10000 digits on both sides.
    whole, _, fraction = format(number.copy_abs(), "f").partition(".")
    whole = whole.lstrip("0")
    whole = "0" * (-len(whole) % 4) + whole
    fraction += "0" * (-len(fraction) % 4)
    text = whole + fraction
    digits = [int(text[i : i + 4]) for i in range(0, len(text), 4)]
    weight = len(whole) // 4 - 1
    start = 0
    while digits[start] == 0:  # the number is not zero, so this stops
        start += 1
    end = len(digits)
    while digits[end - 1] == 0:
        end -= 1
    digits = digits[start:end]
    header = _pack_header(len(digits), weight - start, _NEG if number.is_signed() else _POS, dscale)
    return header + struct.pack(f"!{len(digits)}H", *digits)


def _decode_numeric_text(data: bytes) -> Decimal:
    # numeric_out writes plain notation, "NaN", "Infinity" or "-Infinity", all of
    # which Decimal parses exactly.
    return Decimal(data.decode("ascii"))


#: Binary codecs defined by this module.
CODECS: Final[tuple[Codec, ...]] = (
    Codec(oids.NUMERIC, "numeric", Format.BINARY, _encode_numeric, _decode_numeric),
)

#: Decoders that read a value in place, ``(data, pos, size)``, for the row decoders.
IN_PLACE_DECODERS: Final[Mapping[DecodeFn, Callable[[bytes, int, int], object]]] = {
    _decode_numeric: decode_numeric_at,
}

#: Text-format decoders defined by this module.
TEXT_DECODERS: Final[Mapping[int, DecodeFn]] = {oids.NUMERIC: _decode_numeric_text}
