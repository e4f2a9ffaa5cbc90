"""Per-statement Bind + Execute encoders, generated once from the parameter encoders.

Executing a described statement on the unnamed portal sends the same bytes every time
except for the parameter values (protocol-message-formats.html, Bind and Execute): the
portal and statement names, the parameter format codes, the parameter count, the
result format codes and the Execute message are fixed per statement. So they are packed
once, and what remains per execution is each value's length and bytes and the Bind
length. For a statement run thousands of times (``executemany``) even that loop
matters, so like :mod:`trio_pg.rowdecoder` this module writes a straight-line function
for exactly the statement's parameters: an ``int`` for an ``int4`` parameter costs one
``struct`` call packing its length and value together, a ``str`` for a text parameter
one ``str.encode``; any other value is handed to its parameter's encoder.

The generated function does no error reporting of its own: it raises whatever failed
(``ValueError`` for a wrong argument count, ``struct.error`` for an out-of-range
integer, the encoder's own error) and the caller encodes the arguments again the slow
way, which names the parameter that failed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, Final

from trio_pg.codecs import EncodeFn
from trio_pg.codecs.scalars import INLINE_ENCODERS
from trio_pg.codegen import compile_function

__all__ = ["MAX_INLINE_PARAMETERS", "BindEncoder", "compile_bind_encoder"]

#: Turns one argument sequence into the complete Bind + Execute messages.
BindEncoder = Callable[[Sequence[object]], bytes]

#: Statements with more parameters use the generic loop: their source would be large,
#: and per-parameter costs dominate anyway.
MAX_INLINE_PARAMETERS: Final = 64

_I32: Final = struct.Struct("!i")
_NULL: Final = b"\xff\xff\xff\xff"


def _param_code(i: int, encode: EncodeFn, env: dict[str, Any]) -> list[str]:
    env[f"E{i}"] = encode
    general = [
        "    else:",
        f"        p{i} = E{i}(a{i})",
        f"        p{i} = L(len(p{i})) + p{i}",
    ]
    inline = INLINE_ENCODERS.get(encode)
    if inline is None:
        return [
            f"    if a{i} is None:",
            f"        p{i} = NULL",
            *general,
        ]
    cls, fmt = inline
    env[f"C{i}"] = cls
    if fmt:
        packer = struct.Struct("!i" + fmt)
        env[f"P{i}"] = packer.pack
        return [
            f"    if a{i}.__class__ is C{i}:",
            f"        p{i} = P{i}({packer.size - 4}, a{i})",
            f"    elif a{i} is None:",
            f"        p{i} = NULL",
            *general,
        ]
    return [
        f"    if a{i}.__class__ is C{i} and NUL not in a{i}:",
        f"        p{i} = a{i}.encode()",
        f"        p{i} = L(len(p{i})) + p{i}",
        f"    elif a{i} is None:",
        f"        p{i} = NULL",
        *general,
    ]


def _generic_encoder(
    encoders: Sequence[EncodeFn], start: bytes, head: bytes, size: int, end: bytes
) -> BindEncoder:
    pack = _I32.pack
    count = len(encoders)

    def encode(args: Sequence[object]) -> bytes:
        if len(args) != count:
            raise ValueError("wrong argument count")
        parts = []
        for value, encode_value in zip(args, encoders, strict=True):
            if value is None:
                parts.append(_NULL)
            else:
                data = encode_value(value)
                parts.append(pack(len(data)))
                parts.append(data)
        fields = b"".join(parts)
        return b"".join((start, pack(len(fields) + size), head, fields, end))

    return encode


def compile_bind_encoder(
    encoders: Sequence[EncodeFn], before: bytes, head: bytes, tail: bytes, after: bytes
) -> BindEncoder:
    """A function returning ``before``, then a Bind message, then ``after``.

    The Bind message is ``head`` (its body up to the parameter values), one field per
    parameter (Int32 length and bytes, or -1 for ``None``) and ``tail`` (the result
    format codes). The function raises for arguments it cannot encode; see the module
    docstring.
    """
    n = len(encoders)
    start = before + b"B"
    # Bind's length counts itself, the head, the fields and the tail.
    size = 4 + len(head) + len(tail)
    if n == 0:
        data = start + _I32.pack(size) + head + tail + after

        def encode_none(args: Sequence[object]) -> bytes:
            if args:
                raise ValueError("the statement takes no arguments")
            return data

        return encode_none
    if n > MAX_INLINE_PARAMETERS:
        return _generic_encoder(encoders, start, head, size, tail + after)
    env: dict[str, Any] = {
        "L": _I32.pack,
        "NUL": "\x00",
        "NULL": _NULL,
        "START": start,
        "HEAD": head,
        "END": tail + after,
        "SIZE": size,
    }
    body: list[str] = [f"    ({', '.join(f'a{i}' for i in range(n))},) = args"]
    for i, encode in enumerate(encoders):
        body.extend(_param_code(i, encode, env))
    body.append(f"    fields = {' + '.join(f'p{i}' for i in range(n))}")
    body.append("    return b''.join((START, L(len(fields) + SIZE), HEAD, fields, END))")
    filename = f"<bind encoder for {n} parameters>"
    encoder: BindEncoder = compile_function("encode", "args", body, env, filename)
    return encoder
