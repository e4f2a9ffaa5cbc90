"""Per-statement DataRow decoders, generated once from the statement's columns.

Decoding rows is the hottest loop of a pure-Python driver. A generic loop over a tuple
of decoders pays, per column, for the loop itself, a list append and — for fixed-width
types like int4 or float8 — a call plus a ``bytes`` slice only to unpack a few bytes.
So when a statement is described, this module writes a small function for exactly its
columns: straight-line code, one ``struct`` unpack per fixed-width value read in place
from the DataRow body, a slice plus one decoder call for the others, and the record
built from a tuple display.

Only the built-in binary decoders of :data:`trio_pg.codecs.scalars.FIXED_WIDTH_FORMATS`
are inlined, and those of :data:`trio_pg.codecs.numeric.IN_PLACE_DECODERS` read their
value in place instead of from a slice; any other decoder (a user's ``set_type_codec``
included) is called as is.
Errors take the slow path: the row is decoded again column by column so the error names
the column that failed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Final

from trio_pg.codecs import DecodeFn
from trio_pg.codecs.numeric import IN_PLACE_DECODERS
from trio_pg.codecs.scalars import FIXED_WIDTH_FORMATS
from trio_pg.codecs.timecodecs import EPOCH_OFFSET_DECODERS
from trio_pg.codegen import compile_function
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


def _general_decoder(decoders: Sequence[DecodeFn]) -> RowDecoder:
    """The decoder that checks everything as it goes and raises for what does not fit."""
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
    return _compile(body, env, f"<row decoder for {n} columns>")


class _Segment:
    """One ``struct`` read of the fast decoder: fixed-width values, then maybe a length.

    Its format holds, for each fixed-width column, the value's length and the value;
    then, when a variable-width column follows, that column's length.
    """

    def __init__(self, first: bool) -> None:
        self.format = "!h" if first else "!"
        self.names = ["n"] if first else []
        self.checks = ["n != N"] if first else []
        self.after: list[str] = []

    def code(self, k: int, env: dict[str, Any]) -> list[str]:
        packer = struct.Struct(self.format)
        env[f"S{k}"] = packer.unpack_from
        lines = [
            f"        ({', '.join(self.names)},) = S{k}(data, p)",
            f"        p += {packer.size}",
        ]
        if self.checks:
            lines.append(f"        if {' or '.join(self.checks)}:")
            lines.append("            return SLOW(data)")
        return lines + self.after


def _fast_decoder(decoders: Sequence[DecodeFn], slow: RowDecoder) -> RowDecoder:
    """The decoder for rows whose fixed-width values are all present (not NULL).

    Runs of fixed-width columns, with the length of the variable-width column after
    them, are read with one ``struct`` call each; any row this does not fit (a NULL
    fixed-width value, a malformed row, a timestamp beyond ``datetime``) is handed to
    ``slow``, which decodes it or raises.
    """
    n = len(decoders)
    env: dict[str, Any] = {"SLOW": slow, "N": n, "TD": timedelta}
    body = ["    p = 0", "    try:"]
    segment = _Segment(first=True)
    k = 0
    for i, decode in enumerate(decoders):
        fmt = FIXED_WIDTH_FORMATS.get(decode)
        epoch = EPOCH_OFFSET_DECODERS.get(decode)
        if epoch is not None:
            fmt = "q"
            env[f"T{i}"] = epoch
            segment.after.append(f"        v{i} = T{i} + TD(0, 0, v{i})")
        if fmt is not None:
            segment.format += "i" + fmt
            segment.names += [f"l{i}", f"v{i}"]
            segment.checks.append(f"l{i} != {struct.calcsize('!' + fmt)}")
            continue
        segment.format += "i"
        segment.names.append(f"l{i}")
        body.extend(segment.code(k, env))
        k += 1
        segment = _Segment(first=False)
        env[f"D{i}"] = decode
        in_place = IN_PLACE_DECODERS.get(decode)
        if in_place is not None:
            env[f"D{i}"] = in_place
        value = f"D{i}(data, p, l{i})" if in_place is not None else f"D{i}(data[p : p + l{i}])"
        body.extend(
            [
                f"        if l{i} >= 0:",
                f"            v{i} = {value}",
                f"            p += l{i}",
                f"        elif l{i} == -1:",
                f"            v{i} = None",
                "        else:",
                "            return SLOW(data)",
            ]
        )
    if segment.names:
        body.extend(segment.code(k, env))
    body.extend(
        [
            "        if p != len(data):",
            "            return SLOW(data)",
            "    except (struct_error, OverflowError):",
            "        return SLOW(data)",
        ]
    )
    env["struct_error"] = struct.error
    values = ", ".join(f"v{i}" for i in range(n))
    body.append(f"    return ({values}{',' if n == 1 else ''})")
    return _compile(body, env, f"<fast row decoder for {n} columns>")


def _compile(body: list[str], env: dict[str, Any], filename: str) -> RowDecoder:
    decoder: RowDecoder = compile_function("decode_row", "data", body, env, filename)
    return decoder


def compile_row_decoder(decoders: Sequence[DecodeFn]) -> RowDecoder:
    """A function decoding a DataRow body with exactly these column decoders.

    The function raises :class:`ProtocolError` (or ``struct.error``) for a body that
    does not match, and whatever a decoder raises for a value it cannot decode.
    """
    slow = _general_decoder(decoders)
    if not decoders:
        return slow
    return _fast_decoder(decoders, slow)
