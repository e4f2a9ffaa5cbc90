"""Codecs for bool, integers, floats, the text family, bytea, uuid and json.

Binary formats follow the types' send/receive functions in the PostgreSQL sources:
``boolsend`` (one byte), ``int2send``/``int4send``/``int8send`` (big-endian two's
complement), ``oidsend`` (big-endian unsigned 32-bit), ``float4send``/``float8send``
(big-endian IEEE 754), ``textsend`` and friends (the characters in the client
encoding, which trio_pg sets to UTF-8), ``charsend`` (one byte), ``byteasend``
(the bytes), ``uuid_send`` (16 bytes), ``json_send`` (the JSON text) and
``jsonb_send`` (a version byte, 1, then the JSON text).

Choices worth knowing:

* ``bool`` is not accepted for integer, float or numeric parameters (Python's
  ``True`` is an ``int``, but sending it as ``1`` usually hides a bug), and integers
  are range-checked against the parameter type (``OverflowError`` names the type).
  Any object implementing ``__index__`` (e.g. NumPy integers) is accepted as an int.
* ``"char"`` (OID 18) is one byte; bytes 0x01-0xFF map to U+0001-U+00FF and the NUL
  byte, which PostgreSQL uses for the empty value, maps to ``""``.
* ``json``/``jsonb`` parameters are Python values serialised with ``json.dumps``
  (so a ``str`` parameter becomes a JSON string, symmetric with decoding); NaN and
  infinite floats are rejected because JSON has no spelling for them.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Final

from trio_pg.codecs import oids
from trio_pg.codecs.base import Codec, DecodeFn, EncodeFn, Format, text_nul_error, wrong_type

__all__ = ["CODECS", "FIXED_WIDTH_FORMATS", "INLINE_ENCODERS", "TEXT_DECODERS", "encode_str"]


# -- bool -------------------------------------------------------------------------

# boolrecv treats any non-zero byte as true; boolsend sends 1 or 0.
_decode_bool: DecodeFn = b"\x00".__ne__


def _encode_bool(value: object) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise wrong_type("bool", "bool", value)


# -- integers and floats --------------------------------------------------------------


def _fixed_decoder(fmt: str) -> DecodeFn:
    unpack = struct.Struct(fmt).unpack

    def decode(data: bytes) -> object:
        return unpack(data)[0]

    return decode


def _as_int(value: object, pg_type: str) -> int:
    if isinstance(value, bool):
        raise wrong_type(pg_type, "int (bool is not accepted; use int(value))", value)
    index = getattr(type(value), "__index__", None)
    if index is None:
        raise wrong_type(pg_type, "int", value)
    result: int = index(value)
    return result


def _int_encoder(pg_type: str, fmt: str) -> EncodeFn:
    packer = struct.Struct(fmt)
    pack = packer.pack
    bits = packer.size * 8
    unsigned = fmt.endswith("I")
    low = 0 if unsigned else -(2 ** (bits - 1))
    high = 2**bits - 1 if unsigned else 2 ** (bits - 1) - 1

    def encode(value: object) -> bytes:
        number = value if value.__class__ is int else _as_int(value, pg_type)
        try:
            return pack(number)
        except struct.error:
            raise OverflowError(
                f"integer out of range for PostgreSQL {pg_type} ({low} to {high})"
            ) from None

    return encode


def _float_encoder(pg_type: str, fmt: str) -> EncodeFn:
    pack = struct.Struct(fmt).pack

    def encode(value: object) -> bytes:
        if value.__class__ is not float:
            if isinstance(value, bool) or not hasattr(type(value), "__float__"):
                raise wrong_type(pg_type, "float or int", value)
            try:
                value = float(value)  # type: ignore[arg-type]
            except OverflowError:
                raise OverflowError(f"number too large for PostgreSQL {pg_type}") from None
        try:
            return pack(value)
        except OverflowError:
            raise OverflowError(f"{value!r} is out of range for PostgreSQL {pg_type}") from None

    return encode


# -- text family ---------------------------------------------------------------------

# The text family's binary form is the string in the client encoding (textsend,
# varcharsend, bpcharsend, namesend, unknownsend), so binary and text decode alike.
_decode_utf8: DecodeFn = bytes.decode


def encode_str(value: object, pg_type: str) -> bytes:
    """Encode a ``str`` parameter as UTF-8 text, the form every text type accepts.

    Args:
        value: The parameter value; must be a ``str`` without NUL characters.
        pg_type: The PostgreSQL type name, for error messages.

    Returns:
        The UTF-8 bytes.

    Raises:
        TypeError: ``value`` is not a ``str``.
        ValueError: ``value`` contains ``"\\x00"``, which PostgreSQL text cannot hold.
    """
    if not isinstance(value, str):
        raise wrong_type(pg_type, "str", value)
    if "\x00" in value:
        raise text_nul_error()
    return value.encode()


def _text_encoder(pg_type: str) -> EncodeFn:
    def encode(value: object) -> bytes:
        return encode_str(value, pg_type)

    return encode


def _decode_char(data: bytes) -> str:
    # charsend sends the raw byte; NUL stands for the empty "char".
    return chr(data[0]) if data != b"\x00" else ""


def _encode_char(value: object) -> bytes:
    if not isinstance(value, str):
        raise wrong_type("char", "str of length 0 or 1", value)
    if value == "":
        return b"\x00"
    if value == "\x00":
        raise text_nul_error()
    if len(value) != 1 or ord(value) > 0xFF:
        raise ValueError(
            f'PostgreSQL "char" holds one byte: expected a str of length 0 or 1 '
            f"in U+0000-U+00FF, got {value[:20]!r}"
        )
    return bytes((ord(value),))


_CHAR_OCTAL = re.compile(rb"\\([0-3][0-7]{2})")


def _decode_char_text(data: bytes) -> str:
    # charout (PostgreSQL 15+) writes bytes with the high bit set as \ooo.
    match = _CHAR_OCTAL.fullmatch(data)
    if match is not None:
        return chr(int(match.group(1), 8))
    return data.decode("utf-8") if len(data) != 1 else chr(data[0])


# -- bytea ---------------------------------------------------------------------------


def _encode_bytea(value: object) -> bytes:
    if value.__class__ is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise wrong_type("bytea", "bytes, bytearray or memoryview", value)


_BYTEA_ESCAPE = re.compile(rb"\\(\\|[0-3][0-7]{2})")


def _unescape_bytea(match: re.Match[bytes]) -> bytes:
    token = match.group(1)
    return b"\\" if token == b"\\" else bytes((int(token, 8),))


def _decode_bytea_text(data: bytes) -> bytes:
    # byteaout writes "\x" + hex (bytea_output = hex, the default) or the escape
    # format, see datatype-binary.html#DATATYPE-BINARY-BYTEA-ESCAPE-FORMAT.
    if data[:2] == b"\\x":
        return bytes.fromhex(data[2:].decode("ascii"))
    return _BYTEA_ESCAPE.sub(_unescape_bytea, data)


# -- uuid ----------------------------------------------------------------------------


def _decode_uuid(data: bytes) -> uuid.UUID:
    return uuid.UUID(int=int.from_bytes(data))


def _decode_uuid_text(data: bytes) -> uuid.UUID:
    return uuid.UUID(data.decode("ascii"))


def _encode_uuid(value: object) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, str):
        try:
            return uuid.UUID(value).bytes
        except ValueError:
            raise ValueError(f"invalid UUID string for PostgreSQL uuid: {value[:60]!r}") from None
    raise wrong_type("uuid", "uuid.UUID or str", value)


# -- json and jsonb -------------------------------------------------------------------

_json_loads: Callable[[str], object] = json.JSONDecoder().decode
_json_dumps: Callable[[object], str] = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_JSONB_VERSION: Final = 1  # jsonb_send / jsonb_recv format version


def _decode_json(data: bytes) -> object:
    return _json_loads(data.decode())


def _decode_jsonb(data: bytes) -> object:
    if data[0] != _JSONB_VERSION:
        raise ValueError(f"unsupported jsonb binary format version {data[0]}")
    return _json_loads(data[1:].decode())


def _dumps(value: object, pg_type: str) -> bytes:
    try:
        return _json_dumps(value).encode()
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"cannot encode value as PostgreSQL {pg_type}: {exc}") from exc


def _encode_json(value: object) -> bytes:
    return _dumps(value, "json")


def _encode_jsonb(value: object) -> bytes:
    return b"\x01" + _dumps(value, "jsonb")


# -- tables --------------------------------------------------------------------------


def _binary(oid: int, name: str, encode: EncodeFn, decode: DecodeFn) -> Codec:
    return Codec(oid, name, Format.BINARY, encode, decode)


_TEXT_FAMILY: Final = (
    (oids.TEXT, "text"),
    (oids.VARCHAR, "varchar"),
    (oids.BPCHAR, "bpchar"),
    (oids.NAME, "name"),
    (oids.UNKNOWN, "unknown"),
)

_decode_int2 = _fixed_decoder("!h")
_encode_int2 = _int_encoder("int2", "!h")
_encode_int4 = _int_encoder("int4", "!i")
_encode_int8 = _int_encoder("int8", "!q")
_encode_oid = _int_encoder("oid", "!I")
_encode_float4 = _float_encoder("float4", "!f")
_encode_float8 = _float_encoder("float8", "!d")
_TEXT_ENCODERS: Final = {oid: _text_encoder(name) for oid, name in _TEXT_FAMILY}
_decode_int4 = _fixed_decoder("!i")
_decode_int8 = _fixed_decoder("!q")
_decode_oid = _fixed_decoder("!I")
_decode_float4 = _fixed_decoder("!f")
_decode_float8 = _fixed_decoder("!d")

#: Binary codecs defined by this module.
CODECS: Final[tuple[Codec, ...]] = (
    _binary(oids.BOOL, "bool", _encode_bool, _decode_bool),
    _binary(oids.INT2, "int2", _encode_int2, _decode_int2),
    _binary(oids.INT4, "int4", _encode_int4, _decode_int4),
    _binary(oids.INT8, "int8", _encode_int8, _decode_int8),
    _binary(oids.OID, "oid", _encode_oid, _decode_oid),
    _binary(oids.FLOAT4, "float4", _encode_float4, _decode_float4),
    _binary(oids.FLOAT8, "float8", _encode_float8, _decode_float8),
    *(_binary(oid, name, _TEXT_ENCODERS[oid], _decode_utf8) for oid, name in _TEXT_FAMILY),
    _binary(oids.CHAR, "char", _encode_char, _decode_char),
    _binary(oids.BYTEA, "bytea", _encode_bytea, bytes),
    _binary(oids.UUID, "uuid", _encode_uuid, _decode_uuid),
    _binary(oids.JSON, "json", _encode_json, _decode_json),
    _binary(oids.JSONB, "jsonb", _encode_jsonb, _decode_jsonb),
)

#: The struct format character of each builtin fixed-width decoder above, so that
#: arrays without NULLs can be decoded in one ``struct`` pass (see arrays.py).
FIXED_WIDTH_FORMATS: Final[Mapping[DecodeFn, str]] = {
    _decode_bool: "?",
    _decode_int2: "h",
    _decode_int4: "i",
    _decode_int8: "q",
    _decode_oid: "I",
    _decode_float4: "f",
    _decode_float8: "d",
}

#: The builtin encoders whose work a generated Bind encoder may do inline, for a value
#: of exactly the given Python class: fixed-width types by their ``struct`` format
#: character, the text family by ``""`` (the value's UTF-8, when it holds no NUL). Any
#: other value still goes through the encoder, which also produces the errors.
INLINE_ENCODERS: Final[Mapping[EncodeFn, tuple[type, str]]] = {
    _encode_int2: (int, "h"),
    _encode_int4: (int, "i"),
    _encode_int8: (int, "q"),
    _encode_oid: (int, "I"),
    _encode_float4: (float, "f"),
    _encode_float8: (float, "d"),
    **dict.fromkeys(_TEXT_ENCODERS.values(), (str, "")),
}

#: Text-format decoders (for simple-query results and text fallbacks).
TEXT_DECODERS: Final[Mapping[int, DecodeFn]] = {
    oids.BOOL: b"t".__eq__,
    oids.INT2: int,
    oids.INT4: int,
    oids.INT8: int,
    oids.OID: int,
    oids.FLOAT4: float,
    oids.FLOAT8: float,
    **{oid: _decode_utf8 for oid, _ in _TEXT_FAMILY},
    oids.CHAR: _decode_char_text,
    oids.BYTEA: _decode_bytea_text,
    oids.UUID: _decode_uuid_text,
    oids.JSON: _decode_json,
    oids.JSONB: _decode_json,
}
