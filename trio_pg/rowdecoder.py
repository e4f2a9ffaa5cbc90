"""Per-statement DataRow decoders, generated once from the statement's columns.

Decoding rows is the hottest loop of a pure-Python driver. A generic loop over a tuple
of decoders pays, per column, for the loop itself, a list append and — for fixed-width
types like int4 or float8 — a call plus a ``bytes`` slice only to unpack a few bytes.
So when a statement is described, this module writes a small function for exactly its
columns: straight-line code, one ``struct`` unpack per fixed-width value read in place
from the DataRow body, a slice plus one decoder call for the others, and the record
built from a tuple display.

Only the built-in binary decoders of :data:`trio_pg.codecs.scalars.FIXED_WIDTH_FORMATS`
are inlined; any other decoder (a user's ``set_type_codec`` included) is called as is.
Errors take the slow path: the row is decoded again column by column so the error names
the column that failed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, Final

from trio_pg.codecs import DecodeFn
from trio_pg.codecs.scalars import FIXED_WIDTH_FORMATS
from trio_pg.errors import ProtocolError

__all__ = ["RowDecoder", "compile_row_decoder"]

#: Decodes one DataRow body into a tuple of values.
RowDecoder = Callable[[bytes], tuple[Any, ...]]

_I16: Final = struct.Struct("!h")
_I32: Final = struct.Struct("!i")


def _column_code(i: int, decode: DecodeFn, env: dict[str, Any]) -> list[str]:
    fmt = FIXED_WIDTH_FORMATS.get(decode)
    if fmt is not None:
        st = struct.Struct("!" + fmt)
        env[f"F{i}"] = st.unpack_from
        return [
            "    (l,) = U32(data, p)",
            f"    if l == {st.size}:",
            f"        (v{i},) = F{i}(data, p + 4)",
            f"        p += {4 + st.size}",
            "    elif l == -1:",
            f"        v{i} = None",
            "        p += 4",
            "    else:",
            "        raise ProtocolError(BAD)",
        ]
    env[f"D{i}"] = decode
    return [
        "    (l,) = U32(data, p)",
        "    p += 4",
        "    if l >= 0:",
        f"        v{i} = D{i}(data[p : p + l])",
        "        p += l",
        "    elif l == -1:",
        f"        v{i} = None",
        "    else:",
        "        raise ProtocolError(BAD)",
    ]


def compile_row_decoder(decoders: Sequence[DecodeFn]) -> RowDecoder:
    """A function decoding a DataRow body with exactly these column decoders.

    The function raises :class:`ProtocolError` (or ``struct.error``) for a body that
    does not match, and whatever a decoder raises for a value it cannot decode.
    """
    n = len(decoders)
    env: dict[str, Any] = {
        "U16": _I16.unpack_from,
        "U32": _I32.unpack_from,
        "BAD": f"malformed DataRow: column lengths do not fit {n} columns",
        "ProtocolError": ProtocolError,
        "N": n,
    }
    body = [
        "    if U16(data, 0)[0] != N:",
        "        raise ProtocolError(f'DataRow has {U16(data, 0)[0]} columns, expected {N}')",
        "    p = 2",
    ]
    for i, decode in enumerate(decoders):
        body.extend(_column_code(i, decode, env))
    body.append("    if p != len(data):")
    body.append("        raise ProtocolError(BAD)")
    values = ", ".join(f"v{i}" for i in range(n))
    body.append(f"    return ({values}{',' if n == 1 else ''})")
    # Everything the body uses is bound as a default argument: local lookups are the
    # fastest a Python function has.
    defaults = ", ".join(f"{name}={name}" for name in env)
    source = "\n".join([f"def decode_row(data, *, {defaults}):", *body])
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<row decoder for {n} columns>", "exec"), env, namespace)
    decoder: RowDecoder = namespace["decode_row"]
    return decoder
