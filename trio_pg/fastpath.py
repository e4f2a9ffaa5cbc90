"""``call_function``: the FunctionCall message (protocol-flow.html#PROTOCOL-FLOW-FUNCTION-CALL).

FunctionCall names a function by OID and carries its arguments in the formats their
types' codecs produce; the server answers FunctionCallResponse (or ErrorResponse) and
ReadyForQuery. Argument and result types come from ``pg_proc``, looked up once per
connection and cached:

* an OID is looked up directly;
* a name with an argument list (``"sqrt(float8)"``) is resolved with ``regprocedure``;
* a bare or schema-qualified name with ``to_regproc``; when that name is overloaded, the
  candidates taking as many arguments as given are listed, and if several remain the one
  PostgreSQL's parser picks for ``name($1, ...)`` with untyped arguments wins (its
  ParameterDescription gives the argument types), as ``SELECT sqrt('9')`` picks
  ``sqrt(double precision)`` (typeconv-func.html).

A function dropped and created again gets a new OID: a call by name that fails with
"function ... does not exist" outside a transaction block resolves the name again once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from trio_pg.errors import InterfaceError, PostgresError
from trio_pg.protocol import TransactionStatus
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import ErrorResponse, FunctionCallResponse

if TYPE_CHECKING:
    from trio_pg.codecs import CodecRegistry
    from trio_pg.streaming import StreamHost

__all__ = ["ServerFunction", "call_function", "resolve_function"]

_VOID_OID: Final = 2278
_UNDEFINED_FUNCTION: Final = "42883"
_COLUMNS: Final = (
    "SELECT p.oid, p.oid::pg_catalog.regprocedure::text, p.proargtypes::pg_catalog.oid[], "
    "p.prorettype FROM pg_catalog.pg_proc p "
)
_BY_OID: Final = _COLUMNS + "WHERE p.oid = $1::pg_catalog.oid"
_BY_SIGNATURE: Final = _COLUMNS + "WHERE p.oid = $1::text::pg_catalog.regprocedure"
_BY_NAME: Final = _COLUMNS + "WHERE p.oid = pg_catalog.to_regproc($1::text)"
# Overloads of a (possibly qualified) name taking $2 arguments, visible as the parser
# would see them, with the name as written, quoted, for the parser probe.
_CANDIDATES: Final = """
SELECT p.oid, p.oid::pg_catalog.regprocedure::text, p.proargtypes::pg_catalog.oid[],
       p.prorettype,
       pg_catalog.array_to_string(
           ARRAY(SELECT pg_catalog.quote_ident(part) FROM pg_catalog.unnest(id) AS part), '.')
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace,
     pg_catalog.parse_ident($1::text) AS id
WHERE p.pronargs = $2::int2 AND p.proname = id[pg_catalog.cardinality(id)]
  AND CASE pg_catalog.cardinality(id)
        WHEN 1 THEN pg_catalog.pg_function_is_visible(p.oid)
        WHEN 2 THEN n.nspname = id[1]
        ELSE false
      END
"""
# The regproc cast itself: raises the server's error for a name that resolves to nothing.
_BY_NAME_STRICT: Final = _COLUMNS + "WHERE p.oid = $1::text::pg_catalog.regproc"


@dataclass(frozen=True, slots=True)
class ServerFunction:
    """A function as FunctionCall needs it: OID, signature, argument and result types."""

    oid: int
    signature: str
    arg_oids: tuple[int, ...]
    result_oid: int

    def message(self, registry: CodecRegistry, args: Sequence[object]) -> bytes:
        """The FunctionCall message for ``args``.

        Raises:
            InterfaceError: Wrong argument count, or a value its type cannot take.
        """
        if len(args) != len(self.arg_oids):
            raise InterfaceError(
                f"{self.signature} takes {len(self.arg_oids)} argument(s), got {len(args)}"
            )
        values: list[bytes | None] = []
        formats: list[int] = []
        for i, (value, oid) in enumerate(zip(args, self.arg_oids, strict=True)):
            fmt, encode = registry.param_encoder(oid)
            formats.append(int(fmt))
            if value is None:
                values.append(None)
                continue
            try:
                values.append(encode(value))
            except (TypeError, ValueError, OverflowError) as exc:
                raise InterfaceError(
                    f"invalid argument {i + 1} of {self.signature}: {exc}"
                ) from exc
        result_format, _ = registry.result_decoder(self.result_oid)
        return f.function_call(self.oid, values, formats, int(result_format))

    def decode(self, registry: CodecRegistry, value: bytes | None) -> Any:
        """The Python value of a FunctionCallResponse (None for NULL and ``void``)."""
        if value is None or self.result_oid == _VOID_OID:
            return None
        _, decode = registry.result_decoder(self.result_oid)
        try:
            return decode(value)
        except Exception as exc:
            raise InterfaceError(f"could not decode the result of {self.signature}: {exc}") from exc


def _function(row: Sequence[Any]) -> ServerFunction:
    return ServerFunction(int(row[0]), str(row[1]), tuple(int(o) for o in row[2]), int(row[3]))


async def _rows(conn: StreamHost, sql: str, *args: object) -> list[Any]:
    return list((await conn._execute_cached(sql, args)).rows)


async def _by_name(conn: StreamHost, name: str, nargs: int) -> ServerFunction:
    rows = await _rows(conn, _BY_NAME, name)
    if rows:
        return _function(rows[0])
    candidates = await _rows(conn, _CANDIDATES, name, nargs)
    if len(candidates) == 1:
        return _function(candidates[0])
    if not candidates:
        # Let the server say what is wrong (no such function, a bad name); when it
        # resolves after all (with another argument count), the count check says so.
        return _function((await _rows(conn, _BY_NAME_STRICT, name))[0])
    # Overloaded: ask the parser which one name($1, ...) calls with untyped arguments.
    placeholders = ", ".join(f"${i + 1}" for i in range(nargs))
    info = await conn._describe(f"SELECT {candidates[0][4]}({placeholders})", "")
    for row in candidates:
        function = _function(row)
        if function.arg_oids == info.param_oids:
            return function
    signatures = ", ".join(sorted(str(row[1]) for row in candidates))
    raise InterfaceError(
        f"{name!r} is overloaded ({signatures}); pass the signature, e.g. "
        f"{str(candidates[0][1])!r}, or the function's OID"
    )


async def resolve_function(conn: StreamHost, function: int | str, nargs: int) -> ServerFunction:
    """The function ``function`` names, from the connection's cache or ``pg_proc``.

    Raises:
        PostgresError: The server could not resolve the name.
        InterfaceError: No function has that OID, or an overload cannot be chosen.
    """
    key: object = function if isinstance(function, int) else (function, nargs)
    cached = conn._functions.get(key)
    if isinstance(cached, ServerFunction):
        return cached
    if isinstance(function, bool) or not isinstance(function, (int, str)):
        raise InterfaceError(
            f"function must be an OID (int) or a name (str), not {type(function).__name__}"
        )
    if isinstance(function, int):
        rows = await _rows(conn, _BY_OID, function)
        if not rows:
            raise InterfaceError(f"no function has OID {function}")
        resolved = _function(rows[0])
    elif "(" in function:
        resolved = _function((await _rows(conn, _BY_SIGNATURE, function))[0])
    else:
        resolved = await _by_name(conn, function, nargs)
    conn._functions[key] = resolved
    return resolved


async def call_function(conn: StreamHost, function: int | str, args: Sequence[object]) -> Any:
    """Call ``function`` with ``args``; see ``Connection.call_function``."""
    for attempt in range(2):
        resolved = await resolve_function(conn, function, len(args))
        data = resolved.message(conn._codecs, args)
        pending = conn._submit(data, simple=True)
        value: bytes | None = None
        error: PostgresError | None = None
        try:
            while batch := await pending.next_batch():
                for msg in batch:
                    if isinstance(msg, FunctionCallResponse):
                        value = msg.value
                    elif isinstance(msg, ErrorResponse) and error is None:
                        error = PostgresError.from_fields(msg.fields)
        finally:
            pending.abandon()
        if error is None:
            return resolved.decode(conn._codecs, value)
        stale = (
            attempt == 0
            and isinstance(function, str)
            and error.sqlstate == _UNDEFINED_FUNCTION
            and conn.transaction_status is TransactionStatus.IDLE
        )
        if not stale:
            raise error
        # Dropped and created again under a new OID: resolve the name once more.
        conn._functions.pop((function, len(args)), None)
    raise AssertionError("unreachable")  # pragma: no cover
