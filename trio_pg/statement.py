"""Described statements: their parameter encoders, row decoders, and the LRU cache.

A statement is described once (Parse + Describe, protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY):
the server says which types its parameters have and what its rows look like. From that
this module precomputes everything a later execution needs, so executing costs only
encoding the arguments and building one Bind message: the per-parameter encoders and
formats, the per-column result formats and decoders, and the Record class.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from trio_pg.bindencoder import BindEncoder, compile_bind_encoder
from trio_pg.codecs import CodecRegistry, DecodeFn, EncodeFn
from trio_pg.errors import InterfaceError, ProtocolError
from trio_pg.protocol import frontend as f
from trio_pg.protocol import may_copy_in
from trio_pg.protocol.backend import Column
from trio_pg.record import Record, record_class
from trio_pg.rowdecoder import RowDecoder, compile_row_decoder

__all__ = ["ColumnInfo", "StatementCache", "StatementInfo", "describe_statement"]

_I16: Final = struct.Struct("!h")
_I32: Final = struct.Struct("!i")


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """A result column: its name, type OID and type name."""

    name: str
    type_oid: int
    type_name: str


class StatementInfo:
    """Everything needed to execute one described statement and decode its rows.

    ``name`` is the server-side prepared statement name; ``""`` means the statement is
    not kept on the server and is parsed again (unnamed) with every execution, for
    poolers in transaction mode.
    """

    __slots__ = (
        "_bind_encoder",
        "_decoders",
        "_encoders",
        "_param_formats",
        "_result_formats",
        "_row_decoder",
        "closed",
        "columns",
        "may_copy_in",
        "name",
        "param_oids",
        "param_type_names",
        "record_class",
        "sql",
    )

    def __init__(
        self,
        sql: str,
        name: str,
        param_oids: Sequence[int],
        columns: Sequence[Column] | None,
        registry: CodecRegistry,
    ) -> None:
        self.sql = sql
        self.name = name
        self.closed = False
        # Whether executing it could start COPY FROM STDIN (its request is then a write
        # barrier); looked at once here rather than at every execution.
        self.may_copy_in = may_copy_in(sql)
        self.param_oids = tuple(param_oids)
        encoders = [registry.param_encoder(oid) for oid in self.param_oids]
        self._param_formats = tuple(int(fmt) for fmt, _ in encoders)
        self._encoders: tuple[EncodeFn, ...] = tuple(enc for _, enc in encoders)
        self.param_type_names = tuple(
            registry.type_name(oid) or str(oid) for oid in self.param_oids
        )
        cols = tuple(columns or ())
        decoders = [registry.result_decoder(c.type_oid) for c in cols]
        self._result_formats = tuple(int(fmt) for fmt, _ in decoders)
        self._decoders: tuple[DecodeFn, ...] = tuple(dec for _, dec in decoders)
        # Compiled on first use: many described statements never return a row, and
        # some are never executed on the unnamed portal.
        self._row_decoder: RowDecoder | None = None
        self._bind_encoder: BindEncoder | None = None
        self.columns = tuple(
            ColumnInfo(c.name, c.type_oid, registry.type_name(c.type_oid) or str(c.type_oid))
            for c in cols
        )
        self.record_class = record_class([c.name for c in cols])

    @property
    def returns_rows(self) -> bool:
        """Whether the statement has a RowDescription (it may still return zero rows)."""
        return bool(self.columns)

    # -- encoding ------------------------------------------------------------------------

    def encode_args(self, args: Sequence[object]) -> list[bytes | None]:
        """Encode arguments for Bind, checking their count and values.

        Raises:
            InterfaceError: Wrong number of arguments, or a value its parameter's type
                cannot take (the message names the parameter and its type).
        """
        if len(args) != len(self._encoders):
            raise InterfaceError(
                f"the statement expects {len(self._encoders)} argument(s), got {len(args)}"
            )
        out: list[bytes | None] = []
        append = out.append
        for i, (value, encode) in enumerate(zip(args, self._encoders, strict=True)):
            if value is None:
                append(None)
                continue
            try:
                append(encode(value))
            except (TypeError, ValueError, OverflowError) as exc:
                raise InterfaceError(
                    f"invalid argument ${i + 1} for parameter of type "
                    f"{self.param_type_names[i]}: {exc}"
                ) from exc
        return out

    def execute_message(self, args: Sequence[object], max_rows: int = 0, portal: str = "") -> bytes:
        """Messages that bind ``args`` to ``portal`` (unnamed by default) and execute it.

        No Sync: the caller ends the unit (Sync, or Flush for a cursor's first fetch).

        Raises:
            InterfaceError: See :meth:`encode_args`.
        """
        if not max_rows and not portal:
            encode = self._bind_encoder
            if encode is None:
                encode = self._bind_encoder = self._compile_bind_encoder()
            try:
                return encode(args)
            except (TypeError, ValueError, OverflowError, struct.error):
                pass  # encoded again below, to report which argument failed
        return self._build_execute(args, max_rows, portal)

    def _build_execute(self, args: Sequence[object], max_rows: int, portal: str) -> bytes:
        """:meth:`execute_message` the general way, one argument at a time."""
        parts = []
        if not self.name:
            parts.append(f.parse("", self.sql, self.param_oids))
        encoded = self.encode_args(args)
        parts.append(
            f.bind(portal, self.name, encoded, self._param_formats, self._result_formats)
        )
        parts.append(f.execute(portal, max_rows))
        return b"".join(parts)

    def execute_many_message(self, batches: Sequence[Sequence[object]]) -> bytes:
        """:meth:`execute_message` for each argument sequence, joined.

        Raises:
            InterfaceError: See :meth:`encode_args`.
        """
        encode = self._bind_encoder
        if encode is None:
            encode = self._bind_encoder = self._compile_bind_encoder()
        try:
            return b"".join(map(encode, batches))
        except (TypeError, ValueError, OverflowError, struct.error):
            # Encode again one by one: the failing sequence raises with its reason.
            return b"".join([self.execute_message(args) for args in batches])

    def _compile_bind_encoder(self) -> BindEncoder:
        """Bind + Execute on the unnamed portal, with everything but the values prepacked."""
        encoders = self._encoders
        before = b"" if self.name else f.parse("", self.sql, self.param_oids)
        head, tail = f.bind_parts(
            "", self.name, len(encoders), self._param_formats, self._result_formats
        )
        return compile_bind_encoder(encoders, before, head, tail, f.execute("", 0))

    # -- decoding ------------------------------------------------------------------------

    def _compile_row_decoder(self) -> RowDecoder:
        # Compiled on first use: many described statements never return a row.
        self._row_decoder = compile_row_decoder(self._decoders)
        return self._row_decoder

    def decode_rows(
        self, messages: Iterable[object], out: list[Record], others: list[object]
    ) -> None:
        """Decode the DataRow bodies among ``messages`` into records appended to ``out``.

        Messages that are not rows are appended to ``others``, in order.

        Raises:
            ProtocolError: A row's layout does not match the statement's columns.
            InterfaceError: A value could not be decoded (the message names the column).
        """
        decode_row = self._row_decoder or self._compile_row_decoder()
        new = tuple.__new__
        cls = self.record_class
        append = out.append
        data: object = None
        try:
            for data in messages:
                if data.__class__ is bytes:
                    append(new(cls, decode_row(data)))
                else:
                    others.append(data)
        except Exception as exc:
            assert isinstance(data, bytes)
            raise self._explain_failure(data, exc) from exc

    def decode_one(self, data: bytes) -> Record:
        """Decode one DataRow body into a record (:meth:`decode_rows` for a single row).

        Raises:
            ProtocolError: The row's layout does not match the statement's columns.
            InterfaceError: A value could not be decoded (the message names the column).
        """
        decode_row = self._row_decoder or self._compile_row_decoder()
        try:
            values = decode_row(data)
        except Exception as exc:
            raise self._explain_failure(data, exc) from exc
        row: Record = tuple.__new__(self.record_class, values)
        return row

    def _explain_failure(self, data: bytes, exc: Exception) -> Exception:
        """Decode a failed row again, column by column, to say what was wrong with it."""
        if isinstance(exc, ProtocolError):
            return exc
        if isinstance(exc, struct.error):
            return ProtocolError(f"malformed DataRow: {exc}")
        pos = 2
        for index, decode in enumerate(self._decoders):
            (size,) = _I32.unpack_from(data, pos)
            pos += 4
            if size < 0:
                continue
            try:
                decode(data[pos : pos + size])
            except Exception as column_exc:  # noqa: BLE001 - reported with the column named
                return self._decode_error(index, column_exc)
            pos += size
        return self._decode_error(0, exc)

    def _decode_error(self, index: int, exc: Exception) -> Exception:
        if isinstance(exc, ProtocolError):
            return exc
        column = self.columns[index]
        return InterfaceError(
            f"could not decode column {column.name!r} of type {column.type_name}: {exc} "
            "(register a codec with set_type_codec if the type is custom)"
        )


def describe_statement(
    sql: str,
    name: str,
    param_oids: Sequence[int],
    columns: Sequence[Column] | None,
    registry: CodecRegistry,
) -> StatementInfo:
    """Build a :class:`StatementInfo` from a ParameterDescription and RowDescription."""
    return StatementInfo(sql, name, param_oids, columns, registry)


class StatementCache:
    """A per-connection LRU of described statements, keyed by SQL text.

    ``on_evict`` is called with each statement pushed out, so the connection can close
    it on the server.
    """

    def __init__(self, size: int, on_evict: Callable[[StatementInfo], None]) -> None:
        self.size = size
        self._entries: OrderedDict[str, StatementInfo] = OrderedDict()
        self._on_evict = on_evict
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sql: str) -> StatementInfo | None:
        """The cached statement for ``sql``, marking it most recently used."""
        info = self._entries.get(sql)
        if info is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(sql)
        return info

    def put(self, info: StatementInfo) -> None:
        """Add ``info``; evict the least recently used beyond ``size``."""
        if self.size <= 0:
            return
        old = self._entries.pop(info.sql, None)
        if old is not None and old is not info:
            self._on_evict(old)
        self._entries[info.sql] = info
        while len(self._entries) > self.size:
            _, evicted = self._entries.popitem(last=False)
            self._on_evict(evicted)

    def discard(self, info: StatementInfo) -> None:
        """Forget ``info`` (the server no longer has it, or it is stale)."""
        if self._entries.get(info.sql) is info:
            del self._entries[info.sql]

    def clear(self) -> None:
        """Forget everything, without closing (after DISCARD ALL / DEALLOCATE ALL)."""
        self._entries.clear()
