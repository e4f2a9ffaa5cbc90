"""Arrays: binary vectors (array_send/array_recv), text literals (array_out), errors.

array_send (src/backend/utils/adt/arrayfuncs.c) writes int32 ndim, int32 flags
(1 if any NULL), the element OID, per dimension int32 length and int32 lower bound,
then each element as int32 length (-1 = NULL) plus its bytes. Empty: ndim 0.
"""

from __future__ import annotations

import pytest

from trio_pg.codecs import Codec, CodecRegistry, Format
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


def words(*items: str) -> str:
    return "".join(items)


VECTORS = [
    (o.INT4_ARRAY, [], words("00000000", "00000000", "00000017")),
    (
        o.INT4_ARRAY,
        [1, 2],
        words("00000001", "00000000", "00000017", "00000002", "00000001")
        + words("00000004", "00000001", "00000004", "00000002"),
    ),
    (
        o.INT4_ARRAY,
        [1, None],
        words("00000001", "00000001", "00000017", "00000002", "00000001")
        + words("00000004", "00000001", "ffffffff"),
    ),
    (
        o.INT2_ARRAY,
        [[1, 2], [3, 4]],
        words("00000002", "00000000", "00000015", "00000002", "00000001", "00000002", "00000001")
        + words("00000002", "0001", "00000002", "0002", "00000002", "0003", "00000002", "0004"),
    ),
    (
        o.TEXT_ARRAY,
        ["a", ""],
        words("00000001", "00000000", "00000019", "00000002", "00000001")
        + words("00000001", "61", "00000000"),
    ),
    (
        o.BOOL_ARRAY,
        [[[True]]],
        words("00000003", "00000000", "00000010")
        + words("00000001", "00000001") * 3
        + words("00000001", "01"),
    ),
]


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_array_encodes_to_array_send_format(oid: int, value: object, hexdata: str) -> None:
    assert encode(oid, value).hex() == hexdata


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_array_decodes_array_send_format(oid: int, value: object, hexdata: str) -> None:
    assert decode(oid, bytes.fromhex(hexdata)) == value


def test_array_decoding_ignores_lower_bounds() -> None:
    # '[0:1]={7,8}'::int4[] as array_send writes it.
    data = words("00000001", "00000000", "00000017", "00000002", "00000000")
    data += words("00000004", "00000007", "00000004", "00000008")
    assert decode(o.INT4_ARRAY, bytes.fromhex(data)) == [7, 8]


def test_array_encodes_tuples_as_dimensions() -> None:
    assert encode(o.INT4_ARRAY, ((1, 2), (3, 4))) == encode(o.INT4_ARRAY, [[1, 2], [3, 4]])


def test_array_with_empty_sublists_encodes_as_empty_array() -> None:
    assert encode(o.INT4_ARRAY, [[], []]).hex() == words("00000000", "00000000", "00000017")


def test_array_of_nulls_decodes_in_every_dimension() -> None:
    data = words("00000002", "00000001", "00000017", "00000002", "00000001", "00000001")
    data += words("00000001", "ffffffff", "ffffffff")
    assert decode(o.INT4_ARRAY, bytes.fromhex(data)) == [[None], [None]]


@pytest.mark.parametrize(
    "value",
    [[[1, 2], [3]], [[1], 2], [1, [2]], [[[1]], [[1, 2]]], [[1, 2], []]],
)
def test_ragged_array_raises_clear_value_error(value: object) -> None:
    with pytest.raises(ValueError, match=r"_int4 is not rectangular"):
        encode(o.INT4_ARRAY, value)


def test_array_with_more_than_six_dimensions_is_rejected() -> None:
    with pytest.raises(ValueError, match="at most 6"):
        encode(o.INT4_ARRAY, [[[[[[[1]]]]]]])


def test_array_parameter_must_be_a_list() -> None:
    with pytest.raises(TypeError, match=r"_int4.*int|int.*_int4"):
        encode(o.INT4_ARRAY, 5)


def test_array_element_errors_propagate() -> None:
    with pytest.raises(OverflowError, match="int2"):
        encode(o.INT2_ARRAY, [1, 2**20])


TEXT_LITERALS = [
    (o.INT4_ARRAY, b"{}", []),
    (o.INT4_ARRAY, b"{1,2,NULL}", [1, 2, None]),
    (o.INT4_ARRAY, b"[0:1]={7,8}", [7, 8]),
    (o.INT4_ARRAY, b"{{1,2},{3,4}}", [[1, 2], [3, 4]]),
    (o.INT4_ARRAY, b"[0:1][5:5]={{1},{2}}", [[1], [2]]),
    (o.TEXT_ARRAY, b'{"a b","q\\"x","back\\\\slash",NULL,"NULL","",plain,"{}",","}',
     ["a b", 'q"x', "back\\slash", None, "NULL", "", "plain", "{}", ","]),
    (o.TEXT_ARRAY, "{héllo,\"wörld \"}".encode(), ["héllo", "wörld "]),
    (o.BOOL_ARRAY, b"{t,f}", [True, False]),
]


@pytest.mark.parametrize(("oid", "literal", "value"), TEXT_LITERALS)
def test_text_array_literal_decodes(oid: int, literal: bytes, value: object) -> None:
    assert REGISTRY.text_decoder(oid)(literal) == value


@pytest.mark.parametrize(
    ("oid", "value"),
    [
        (o.INT2_ARRAY, [[1, -2], [3, 4]]),
        (o.INT8_ARRAY, [2**40, -(2**63)]),
        (o.OID_ARRAY, [0, 2**32 - 1]),
        (o.FLOAT4_ARRAY, [1.5, -0.25]),
        (o.FLOAT8_ARRAY, [[0.1], [1e300]]),
        (o.BOOL_ARRAY, [True, False, True]),
    ],
)
def test_fixed_width_arrays_decode_with_and_without_nulls(oid: int, value: list[object]) -> None:
    assert decode(oid, encode(oid, value)) == value
    first = value[0]
    with_null = [*value, [None] * len(first)] if isinstance(first, list) else [*value, None]
    assert decode(oid, encode(oid, with_null)) == with_null


def test_overridden_element_decoder_is_used_inside_arrays() -> None:
    registry = CodecRegistry.builtin()
    registry.add(Codec(o.INT4, "int4", Format.BINARY, None, lambda data: data.hex()))
    _, decoder = registry.result_decoder(o.INT4_ARRAY)
    assert decoder(encode(o.INT4_ARRAY, [1, 2])) == ["00000001", "00000002"]
