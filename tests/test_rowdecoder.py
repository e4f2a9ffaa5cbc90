"""Generated DataRow decoders: values, NULLs, malformed rows, and errors naming the column."""

from __future__ import annotations

import struct

import pytest

from trio_pg.codecs import Codec, CodecRegistry, Format
from trio_pg.errors import InterfaceError, ProtocolError
from trio_pg.protocol.backend import Column
from trio_pg.rowdecoder import compile_row_decoder
from trio_pg.statement import StatementInfo

INT4, TEXT, FLOAT8, BOOL, INT8 = 23, 25, 701, 16, 20


def _row(*values: bytes | None) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        out += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return out


def _decoders(*oids: int, registry: CodecRegistry | None = None) -> list:
    registry = registry or CodecRegistry.builtin()
    return [registry.result_decoder(oid)[1] for oid in oids]


def test_decodes_fixed_and_variable_width_columns_and_nulls() -> None:
    decode = compile_row_decoder(_decoders(INT4, TEXT, FLOAT8, BOOL, INT8))
    row = _row(struct.pack("!i", -7), "héllo".encode(), struct.pack("!d", 2.5), b"\x01", None)
    assert decode(row) == (-7, "héllo", 2.5, True, None)
    assert decode(_row(None, None, None, None, None)) == (None,) * 5


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_column_rows_are_tuples(n: int) -> None:
    decode = compile_row_decoder(_decoders(*[INT4] * n))
    assert decode(_row(*[struct.pack("!i", 5)] * n)) == (5,) * n


def test_wrong_column_count_is_a_protocol_error() -> None:
    decode = compile_row_decoder(_decoders(INT4, INT4))
    with pytest.raises(ProtocolError, match="3 columns, expected 2"):
        decode(_row(b"\0\0\0\1", b"\0\0\0\2", b"\0\0\0\3"))


@pytest.mark.parametrize(
    "body",
    [
        struct.pack("!hi", 1, 3) + b"abc",  # int4 value of 3 bytes
        struct.pack("!hi", 1, -2),  # negative length other than -1
        struct.pack("!hi", 1, 4) + b"\0\0\0\1" + b"extra",  # trailing bytes
    ],
)
def test_bad_lengths_are_protocol_errors(body: bytes) -> None:
    decode = compile_row_decoder(_decoders(INT4))
    with pytest.raises(ProtocolError):
        decode(body)


def test_truncated_row_raises_struct_error_turned_into_protocol_error_by_statement() -> None:
    info = StatementInfo(
        "SELECT", "", (), [Column("a", 0, 0, INT4, 4, -1, 1)], CodecRegistry.builtin()
    )
    with pytest.raises(ProtocolError):
        info.decode_rows([struct.pack("!hi", 1, 4) + b"\0"], [], [])


def test_custom_decoder_error_names_the_column() -> None:
    registry = CodecRegistry.builtin()

    def refuse(data: bytes) -> object:
        raise ValueError("nope")

    registry.add(Codec(TEXT, "text", Format.BINARY, None, refuse))
    columns = [Column("ok", 0, 0, INT4, 4, -1, 1), Column("bad", 0, 0, TEXT, -1, -1, 1)]
    info = StatementInfo("SELECT", "", (), columns, registry)
    out: list = []
    with pytest.raises(InterfaceError, match="'bad' of type text: nope"):
        info.decode_rows([_row(struct.pack("!i", 1), b"x")], out, [])


def test_non_row_messages_are_passed_through_in_order() -> None:
    info = StatementInfo(
        "SELECT", "", (), [Column("a", 0, 0, INT4, 4, -1, 1)], CodecRegistry.builtin()
    )
    out: list = []
    others: list = []
    marker = object()
    info.decode_rows([_row(struct.pack("!i", 1)), marker, _row(None)], out, others)
    assert out == [(1,), (None,)]
    assert others == [marker]
    assert out[0]["a"] == 1
