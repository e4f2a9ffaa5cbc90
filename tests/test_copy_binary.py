"""The binary COPY tuple encoding of copy_records_to_table, byte for byte.

Expected bytes are built here from sql-copy.html ("Binary Format"): signature, flags,
header extension, then per tuple an Int16 field count and per field an Int32 length (-1
for NULL) and the value's binary representation, then an Int16 -1 trailer.
"""

from __future__ import annotations

import enum
import struct
import uuid

import pytest

from trio_pg.codecs import CodecRegistry, oids
from trio_pg.copy import CHUNK_SIZE
from trio_pg.copy_binary import (
    TableColumn,
    column_encoders,
    encode_records,
)
from trio_pg.errors import InterfaceError
from trio_pg.sql import quote_ident

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
REGISTRY = CodecRegistry.builtin()


def _column(name: str, oid: int, typtype: str = "b", base: int | None = None) -> TableColumn:
    return TableColumn(name, oid, f"type {oid}", base if base is not None else oid, typtype)


def _field(data: bytes | None) -> bytes:
    return b"\xff\xff\xff\xff" if data is None else struct.pack("!i", len(data)) + data


def _copy(*tuples: list[bytes | None]) -> bytes:
    out = SIGNATURE + struct.pack("!ii", 0, 0)
    for fields in tuples:
        out += struct.pack("!h", len(fields)) + b"".join(_field(f) for f in fields)
    return out + b"\xff\xff"


def _encode(columns: list[TableColumn], records: list[tuple[object, ...]]) -> bytes:
    fields = column_encoders(REGISTRY, columns)
    return b"".join(encode_records(records, fields, [c.name for c in columns]))


INT_TEXT_FLOAT = [_column("i", oids.INT4), _column("t", oids.TEXT), _column("f", oids.FLOAT8)]


def test_tuples_with_nulls_are_encoded_as_the_format_says() -> None:
    data = _encode(INT_TEXT_FLOAT, [(1, "één", 0.5), (None, None, None), (-2, "", -1e300)])
    assert data == _copy(
        [struct.pack("!i", 1), "één".encode(), struct.pack("!d", 0.5)],
        [None, None, None],
        [struct.pack("!i", -2), b"", struct.pack("!d", -1e300)],
    )


def test_no_records_is_header_and_trailer() -> None:
    assert _encode(INT_TEXT_FLOAT, []) == _copy()


@pytest.mark.parametrize("width", [1, 2, 40])
def test_any_table_width(width: int) -> None:
    columns = [_column(f"c{i}", oids.INT8) for i in range(width)]
    record = tuple(range(width))
    assert _encode(columns, [record]) == _copy([struct.pack("!q", v) for v in record])


def test_every_builtin_fixed_width_and_text_type() -> None:
    columns = [
        _column("a", oids.INT2),
        _column("b", oids.OID),
        _column("c", oids.FLOAT4),
        _column("d", oids.VARCHAR),
        _column("e", oids.BOOL),
        _column("f", oids.UUID),
        _column("g", oids.BYTEA),
    ]
    u = uuid.UUID(int=7)
    data = _encode(columns, [(-3, 2**32 - 1, 1.5, "v", True, u, b"\x00\x01")])
    assert data == _copy(
        [
            struct.pack("!h", -3),
            struct.pack("!I", 2**32 - 1),
            struct.pack("!f", 1.5),
            b"v",
            b"\x01",
            u.bytes,
            b"\x00\x01",
        ]
    )


def test_values_of_other_python_types_go_through_the_codec() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    data = _encode(INT_TEXT_FLOAT, [(Level.HIGH, "x", 2)])  # IntEnum, int for float8
    assert data == _copy([struct.pack("!i", 3), b"x", struct.pack("!d", 2.0)])


def test_domain_takes_its_base_type_and_enum_its_label() -> None:
    columns = [_column("d", 90001, "b", base=oids.INT4), _column("m", 90002, "e", base=90002)]
    assert _encode(columns, [(5, "happy")]) == _copy([struct.pack("!i", 5), b"happy"])


def test_large_input_is_chunked_and_chunks_join_to_the_whole() -> None:
    records = [(i, "x" * 50, float(i)) for i in range(10_000)]
    fields = column_encoders(REGISTRY, INT_TEXT_FLOAT)
    chunks = list(encode_records(records, fields, ["i", "t", "f"]))
    assert len(chunks) > 5
    assert all(len(c) < 2 * CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == _encode(INT_TEXT_FLOAT, records)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ((1, "a"), "record 1 has 2 values for 3 columns"),
        ((1, "a", 1.0, 2), "record 1 has 4 values for 3 columns"),
        (7, "record 1 is a int"),
        ((True, "a", 1.0), "record 1, column 'i'.*bool"),
        ((2**31, "a", 1.0), "record 1, column 'i'.*out of range"),
        ((1, "a\x00b", 1.0), "record 1, column 't'.*NUL"),
        ((1, b"bytes", 1.0), "record 1, column 't'.*str"),
        ((1, "a", "1.0"), "record 1, column 'f'"),
    ],
)
def test_bad_record_is_named_with_its_column(record: object, message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        _encode(INT_TEXT_FLOAT, [(0, "fine", 0.0), record])  # type: ignore[list-item]


def test_type_without_binary_codec_is_refused() -> None:
    with pytest.raises(InterfaceError, match="no binary codec"):
        column_encoders(REGISTRY, [_column("m", 790)])  # money


@pytest.mark.parametrize(
    ("name", "quoted"),
    [("t", '"t"'), ("My Table", '"My Table"'), ('we"ird', '"we""ird"'), ("ü", '"ü"')],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_quote_ident_refuses_impossible_names(name: str) -> None:
    with pytest.raises(InterfaceError, match="identifier"):
        quote_ident(name)
