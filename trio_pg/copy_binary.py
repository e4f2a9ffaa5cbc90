"""``copy_records_to_table``: Python tuples into a table through binary COPY.

The binary COPY format (sql-copy.html#id-1.9.3.55.9.4): an 11-byte signature, an Int32
flags field and an Int32 header-extension length; then per tuple an Int16 field count
and, per field, an Int32 length (-1 for NULL) followed by the value in its type's binary
(send/receive) representation, the same bytes a binary Bind parameter carries; then an
Int16 -1 trailer. So each value is encoded by the connection's codec for its column's
type, found by introspecting the table: a domain column takes its base type's codec, an
enum column its label's text (enum_recv reads the label).

Speed: each column gets a *field encoder* returning the length prefix and the value in
one bytes object. For the builtin codecs of fixed-width types and text, a value of the
exact Python type takes a fused path (one ``struct`` call, or one ``str.encode``); any
other value goes through the codec itself, which also produces the errors.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from trio_pg.codecs import CodecRegistry, EncodeFn, Format, oids
from trio_pg.copy import CHUNK_SIZE, copy_in
from trio_pg.cursor import hold_connection
from trio_pg.errors import InterfaceError
from trio_pg.sql import quote_ident

if TYPE_CHECKING:
    from trio_pg.streaming import StreamHost

__all__ = [
    "COPY_HEADER",
    "COPY_TRAILER",
    "TableColumn",
    "column_encoders",
    "copy_records",
    "encode_records",
    "encode_records_async",
    "field_encoder",
]

#: Signature, flags (no OIDs) and an empty header extension.
COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: The end-of-data marker: a field count of -1.
COPY_TRAILER: Final = b"\xff\xff"
_NULL: Final = b"\xff\xff\xff\xff"
_I32: Final = struct.Struct("!i")
_BUILTIN: Final = CodecRegistry.builtin()
#: Builtin fixed-width types: (Python class of the fast path, struct of length + value).
_FIXED: Final = {
    oids.INT2: (int, struct.Struct("!ih")),
    oids.INT4: (int, struct.Struct("!ii")),
    oids.INT8: (int, struct.Struct("!iq")),
    oids.OID: (int, struct.Struct("!iI")),
    oids.FLOAT4: (float, struct.Struct("!if")),
    oids.FLOAT8: (float, struct.Struct("!id")),
}
_TEXT_TYPES: Final = frozenset((oids.TEXT, oids.VARCHAR, oids.BPCHAR, oids.NAME))
#: Turns one value (None included) into its field: length prefix and bytes.
FieldFn = Callable[[object], bytes]
#: Columns that take data, in table order, each with the type its values are encoded
#: as: the column's own type, or for a domain the base type at the end of its chain.
_COLUMNS_SQL: Final = """
WITH RECURSIVE chain(attnum, name, type_oid, base_oid) AS (
    SELECT a.attnum, a.attname::text, a.atttypid, a.atttypid
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attgenerated = ''
  UNION ALL
    SELECT c.attnum, c.name, c.type_oid, t.typbasetype
    FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.base_oid
    WHERE t.typtype = 'd'
)
SELECT c.name, c.type_oid, pg_catalog.format_type(c.type_oid, NULL), c.base_oid,
       t.typtype::text
FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.base_oid
WHERE t.typtype <> 'd'
ORDER BY c.attnum
"""


@dataclass(frozen=True, slots=True)
class TableColumn:
    """A column ``copy_records_to_table`` can fill, as the server describes it."""

    name: str
    type_oid: int
    type_name: str
    base_oid: int
    base_typtype: str


def _encode_text(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("text values cannot contain NUL (\\x00) characters")
    return value.encode()


def column_encoders(registry: CodecRegistry, columns: Sequence[TableColumn]) -> list[FieldFn]:
    """The field encoder of each column, from the binary codec of its type.

    Raises:
        InterfaceError: A column's type has no binary encoder.
    """
    fields: list[FieldFn] = []
    for column in columns:
        oid = column.type_oid
        fmt, encode = registry.param_encoder(oid)
        if fmt != Format.BINARY:
            oid = column.base_oid
            fmt, encode = registry.param_encoder(oid)
        if fmt == Format.BINARY:
            fields.append(field_encoder(oid, encode))
        elif column.base_typtype == "e":
            fields.append(_general_field(_encode_text))
        else:
            raise InterfaceError(
                f"column {column.name!r} has type {column.type_name}, which has no binary "
                "codec: register one with set_type_codec(..., format='binary'), or use "
                "copy_in() with text or CSV data"
            )
    return fields


def _general_field(encode: EncodeFn) -> FieldFn:
    pack = _I32.pack

    def field(value: object) -> bytes:
        if value is None:
            return _NULL
        data = encode(value)
        return pack(len(data)) + data

    return field


def _fixed_field(encode: EncodeFn, cls: type, packer: struct.Struct) -> FieldFn:
    pack = packer.pack
    size = packer.size - 4
    general = _general_field(encode)

    def field(value: object) -> bytes:
        if value.__class__ is cls:
            try:
                return pack(size, value)
            except (struct.error, OverflowError):
                pass  # out of range: the codec says so
        return general(value)

    return field


def _text_field(encode: EncodeFn) -> FieldFn:
    pack = _I32.pack
    general = _general_field(encode)

    def field(value: object) -> bytes:
        if value.__class__ is str and "\x00" not in value:
            data = value.encode()
            return pack(len(data)) + data
        return general(value)

    return field


def field_encoder(oid: int, encode: EncodeFn) -> FieldFn:
    """The field encoder for a column whose values ``encode`` turns into type ``oid``."""
    builtin = encode is _BUILTIN.param_encoder(oid)[1]
    if builtin and oid in _FIXED:
        cls, packer = _FIXED[oid]
        return _fixed_field(encode, cls, packer)
    if builtin and oid in _TEXT_TYPES:
        return _text_field(encode)
    return _general_field(encode)


def _row_error(
    index: int, record: object, fields: Sequence[FieldFn], names: Sequence[str]
) -> InterfaceError:
    """Explain why record number ``index`` could not be encoded."""
    if not isinstance(record, Sequence) or isinstance(record, (str, bytes)):
        return InterfaceError(
            f"record {index} is a {type(record).__name__}; records are sequences of values"
        )
    if len(record) != len(fields):
        return InterfaceError(
            f"record {index} has {len(record)} values for {len(fields)} columns "
            f"({', '.join(names)})"
        )
    for value, field, name in zip(record, fields, names, strict=True):
        try:
            field(value)
        except (TypeError, ValueError, OverflowError) as exc:
            return InterfaceError(f"record {index}, column {name!r}: {exc}")
    return InterfaceError(f"record {index} could not be encoded")  # pragma: no cover


#: Filler functions by table width; see :func:`_filler`.
FillFn = Callable[
    [bytearray, Iterator[Sequence[object]], Sequence[FieldFn], Sequence[str], int],
    tuple[int, bool],
]

# The tuple loop, unrolled for the table's width: unpacking a record into locals and
# calling each column's field encoder by name costs a third less per row than a loop
# over the columns (measured with three columns), and this loop is where a large COPY
# spends its time. Only the per-column lines vary; the function is compiled once per
# width, like the classes collections.namedtuple builds.
_FILL_TEMPLATE: Final = """
def fill(buffer, records, fields, names, index):
    ({fields},) = fields
    for record in records:
        try:
            ({values},) = record
            buffer += COUNT
{appends}
        except (TypeError, ValueError, OverflowError) as exc:
            raise row_error(index, record, fields, names) from exc
        index += 1
        if len(buffer) >= CHUNK_SIZE:
            return index, False
    return index, True
"""


@functools.cache
def _filler(width: int) -> FillFn:
    """The function appending tuples of ``width`` fields until the buffer holds a chunk.

    ``fill(buffer, records, fields, names, index)`` returns the index of the next record
    and whether ``records`` ran out.
    """
    source = _FILL_TEMPLATE.format(
        fields=", ".join(f"f{i}" for i in range(width)),
        values=", ".join(f"v{i}" for i in range(width)),
        appends="\n".join(f"            buffer += f{i}(v{i})" for i in range(width)),
    )
    namespace: dict[str, object] = {
        "COUNT": struct.pack("!h", width),
        "CHUNK_SIZE": CHUNK_SIZE,
        "row_error": _row_error,
    }
    exec(compile(source, f"<copy tuple filler, {width} columns>", "exec"), namespace)
    return cast(FillFn, namespace["fill"])


def _take(buffer: bytearray) -> bytes:
    data = bytes(buffer)
    buffer.clear()
    return data


def encode_records(
    records: Iterable[Sequence[object]], fields: Sequence[FieldFn], names: Sequence[str]
) -> Iterator[bytes]:
    """Binary COPY data for ``records``, in chunks of about :data:`CHUNK_SIZE` bytes.

    Raises:
        InterfaceError: A record does not fit the columns (its index and column named).
    """
    buffer = bytearray(COPY_HEADER)
    iterator = iter(records)
    fill = _filler(len(fields))
    index = 0
    done = False
    while not done:
        index, done = fill(buffer, iterator, fields, names, index)
        if not done:
            yield _take(buffer)
    buffer += COPY_TRAILER
    yield _take(buffer)


async def encode_records_async(
    records: AsyncIterable[Sequence[object]], fields: Sequence[FieldFn], names: Sequence[str]
) -> AsyncIterator[bytes]:
    """:func:`encode_records` for an async iterable of records."""
    buffer = bytearray(COPY_HEADER)
    fill = _filler(len(fields))
    index = 0
    async for record in records:
        index, _ = fill(buffer, iter((record,)), fields, names, index)
        if len(buffer) >= CHUNK_SIZE:
            yield _take(buffer)
    buffer += COPY_TRAILER
    yield _take(buffer)


async def table_columns(conn: StreamHost, qualified: str) -> list[TableColumn]:
    """The columns of table ``qualified`` (a quoted name) that COPY can fill."""
    rows = (await conn._execute_cached(_COLUMNS_SQL, (qualified,))).rows
    return [TableColumn(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def _select(
    columns: list[TableColumn], wanted: Sequence[str] | None, table: str
) -> list[TableColumn]:
    if wanted is None:
        return columns
    if isinstance(wanted, str):
        raise InterfaceError("columns must be a sequence of column names, not one str")
    by_name = {c.name: c for c in columns}
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise InterfaceError(
            f"table {table} has no column(s) {', '.join(map(repr, missing))} that COPY can "
            f"fill; it has {', '.join(map(repr, by_name))}"
        )
    return [by_name[name] for name in wanted]


async def copy_records(
    conn: StreamHost,
    table: str,
    records: Iterable[Sequence[object]] | AsyncIterable[Sequence[object]],
    columns: Sequence[str] | None,
    schema: str | None,
) -> int:
    """Binary COPY of ``records`` into ``table``; see ``Connection.copy_records_to_table``."""
    qualified = quote_ident(table)
    if schema is not None:
        qualified = f"{quote_ident(schema)}.{qualified}"
    if isinstance(records, (str, bytes)) or not isinstance(records, (Iterable, AsyncIterable)):
        raise InterfaceError("records must be an iterable or async iterable of sequences")
    async with hold_connection(conn):
        found = await table_columns(conn, qualified)
        chosen = _select(found, columns, qualified)
        if not chosen:
            raise InterfaceError(f"table {qualified} has no columns that COPY can fill")
        fields = column_encoders(conn._codecs, chosen)
        names = [c.name for c in chosen]
        column_list = ", ".join(quote_ident(n) for n in names)
        sql = f"COPY {qualified} ({column_list}) FROM STDIN (FORMAT binary)"
        if isinstance(records, AsyncIterable):
            return await copy_in(conn, sql, encode_records_async(records, fields, names))
        return await copy_in(conn, sql, encode_records(records, fields, names))
