"""Byte-exact vectors and error cases for bool, integers, floats, text, bytea, uuid, json.

Vectors follow the send/receive functions in the PostgreSQL sources: boolsend/boolrecv
(bool.c), int2send/int4send/int8send (int.c, int8.c: big-endian two's complement),
oidsend (oid.c: unsigned 32-bit), float4send/float8send (float.c: IEEE 754
big-endian), textsend/namesend/bpcharsend/varcharsend (the encoded characters),
charsend (char.c: one byte), byteasend (the bytes), uuid_send (16 bytes),
json_send (the text) and jsonb_send (version byte 1 then the text).
"""

from __future__ import annotations

import math
import uuid

import pytest

from trio_pg.codecs import CodecRegistry, Format
from trio_pg.codecs import oids as o

REGISTRY = CodecRegistry.builtin()


def encode(oid: int, value: object) -> bytes:
    fmt, encoder = REGISTRY.param_encoder(oid)
    assert fmt is Format.BINARY
    return encoder(value)


def decode(oid: int, data: bytes) -> object:
    fmt, decoder = REGISTRY.result_decoder(oid)
    assert fmt is Format.BINARY
    return decoder(data)


VECTORS = [
    (o.BOOL, True, "01"),
    (o.BOOL, False, "00"),
    (o.INT2, 1, "0001"),
    (o.INT2, -2, "fffe"),
    (o.INT2, 32767, "7fff"),
    (o.INT2, -32768, "8000"),
    (o.INT4, -1, "ffffffff"),
    (o.INT4, 2**31 - 1, "7fffffff"),
    (o.INT4, 305419896, "12345678"),
    (o.INT8, 2**63 - 1, "7fffffffffffffff"),
    (o.INT8, -(2**63), "8000000000000000"),
    (o.OID, 4294967295, "ffffffff"),
    (o.OID, 1259, "000004eb"),
    (o.FLOAT4, 1.5, "3fc00000"),
    (o.FLOAT4, -math.inf, "ff800000"),
    (o.FLOAT8, 1.0, "3ff0000000000000"),
    (o.FLOAT8, 0.1, "3fb999999999999a"),
    (o.FLOAT8, math.inf, "7ff0000000000000"),
    (o.TEXT, "héllo", "68c3a96c6c6f"),
    (o.TEXT, "", ""),
    (o.VARCHAR, "€", "e282ac"),
    (o.BPCHAR, "ab  ", "61622020"),
    (o.NAME, "pg_class", "70675f636c617373"),
    (o.UNKNOWN, "x", "78"),
    (o.CHAR, "a", "61"),
    (o.CHAR, "", "00"),
    (o.CHAR, "é", "e9"),
    (o.BYTEA, b"\x00\xffA", "00ff41"),
    (o.BYTEA, b"", ""),
    (o.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678123456781234567812345678"),
    (o.JSON, {"a": [1, None]}, b'{"a": [1, null]}'.hex()),
    (o.JSON, "x", b'"x"'.hex()),
    (o.JSONB, {"a": True}, "01" + b'{"a": true}'.hex()),
]


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_scalar_encodes_to_send_format(oid: int, value: object, hexdata: str) -> None:
    assert encode(oid, value).hex() == hexdata


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_scalar_decodes_send_format(oid: int, value: object, hexdata: str) -> None:
    decoded = decode(oid, bytes.fromhex(hexdata))
    assert decoded == value
    assert type(decoded) is type(value)


def test_float_nan_round_trips_in_both_widths() -> None:
    assert encode(o.FLOAT8, math.nan).hex() == "7ff8000000000000"
    assert math.isnan(decode(o.FLOAT4, bytes.fromhex("7fc00000")))  # type: ignore[arg-type]


def test_bool_decodes_any_nonzero_byte_as_true() -> None:
    # boolrecv: "ext != 0".
    assert decode(o.BOOL, b"\x02") is True


def test_bytea_accepts_bytearray_and_memoryview() -> None:
    assert encode(o.BYTEA, bytearray(b"ab")) == b"ab"
    assert encode(o.BYTEA, memoryview(b"abcd")[1:3]) == b"bc"


def test_uuid_accepts_str() -> None:
    assert encode(o.UUID, "12345678-1234-5678-1234-567812345678").hex() == (
        "12345678123456781234567812345678"
    )


def test_float_accepts_int() -> None:
    assert encode(o.FLOAT8, 2) == encode(o.FLOAT8, 2.0)


def test_int_accepts_objects_with_index() -> None:
    class Index:
        def __index__(self) -> int:
            return 7

    assert encode(o.INT4, Index()).hex() == "00000007"


@pytest.mark.parametrize(
    ("oid", "value", "pg_type"),
    [
        (o.INT2, 32768, "int2"),
        (o.INT2, -32769, "int2"),
        (o.INT4, 2**31, "int4"),
        (o.INT8, 2**63, "int8"),
        pytest.param(o.INT8, 10**5000, "int8", id="int8-huge"),
        (o.OID, -1, "oid"),
        (o.FLOAT4, 1e300, "float4"),
        (o.FLOAT8, 10**400, "float8"),
    ],
)
def test_out_of_range_number_raises_overflow_naming_type(
    oid: int, value: object, pg_type: str
) -> None:
    with pytest.raises(OverflowError, match=pg_type):
        encode(oid, value)


@pytest.mark.parametrize(
    ("oid", "value", "pg_type", "py_type"),
    [
        (o.INT4, "1", "int4", "str"),
        (o.INT4, True, "int4", "bool"),
        (o.INT8, 1.0, "int8", "float"),
        (o.FLOAT8, "1.0", "float8", "str"),
        (o.FLOAT8, False, "float8", "bool"),
        (o.BOOL, 1, "bool", "int"),
        (o.TEXT, 1, "text", "int"),
        (o.TEXT, b"x", "text", "bytes"),
        (o.BYTEA, "x", "bytea", "str"),
        (o.UUID, 5, "uuid", "int"),
        (o.CHAR, 5, "char", "int"),
    ],
)
def test_wrong_python_type_raises_type_error_naming_both_types(
    oid: int, value: object, pg_type: str, py_type: str
) -> None:
    with pytest.raises(TypeError) as info:
        encode(oid, value)
    message = str(info.value)
    assert pg_type in message
    assert py_type in message


@pytest.mark.parametrize("oid", [o.TEXT, o.VARCHAR, o.BPCHAR, o.NAME, o.UNKNOWN, o.CHAR])
def test_text_with_nul_is_rejected(oid: int) -> None:
    with pytest.raises(ValueError, match=r"^text values cannot contain NUL \(\\x00\) characters$"):
        encode(oid, "a\x00b" if oid != o.CHAR else "\x00")


def test_char_rejects_more_than_one_byte() -> None:
    with pytest.raises(ValueError, match="one byte"):
        encode(o.CHAR, "ab")
    with pytest.raises(ValueError, match="one byte"):
        encode(o.CHAR, "€")


def test_uuid_rejects_malformed_string() -> None:
    with pytest.raises(ValueError, match="uuid"):
        encode(o.UUID, "not-a-uuid")


@pytest.mark.parametrize("oid", [o.JSON, o.JSONB])
def test_json_rejects_nan_and_unserialisable_values(oid: int) -> None:
    with pytest.raises(ValueError, match="json"):
        encode(oid, [math.nan])
    with pytest.raises(TypeError, match="json"):
        encode(oid, {1, 2})


def test_jsonb_rejects_unknown_binary_version() -> None:
    with pytest.raises(ValueError, match="version 2"):
        decode(o.JSONB, b"\x02{}")
