"""Array codecs, built around the codec of the element type.

Binary layout (``array_send``/``array_recv`` in ``src/backend/utils/adt/arrayfuncs.c``):
int32 number of dimensions, int32 flags (1 when some element is NULL), the element
type OID, then per dimension an int32 length and an int32 lower bound, then each
element in row-major order as an int32 length (-1 for NULL) and the element's own
binary form. An empty array has zero dimensions. ``array_recv`` insists that the
element OID is the array's element type and allows at most 6 dimensions (MAXDIM).

Text layout (``array_out``; ``arrays.html#ARRAYS-IO``): ``{a,b}`` with nested
braces per dimension, an optional ``[lo:hi]...=`` prefix when a lower bound is not
1, ``NULL`` for NULL, and double quotes (with backslash escapes) around elements
that are empty, spell NULL, or contain braces, quotes, backslashes, commas or
whitespace.

Python mapping: arrays decode to nested ``list`` (lower bounds are dropped: the
lists are 0-based), NULL elements to ``None``, an empty array to ``[]``. Parameters
are nested lists or tuples; every sub-list of one level must have the same length.
Lists and tuples always mean dimensions, so a ``json[]`` element cannot itself be a
JSON array (use ``jsonb`` holding an array instead).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import Final

from trio_pg.codecs.base import DecodeFn, EncodeFn, wrong_type

__all__ = [
    "binary_array_decoder",
    "binary_array_encoder",
    "text_array_decoder",
    "text_array_encoder",
]

_MAXDIM: Final = 6  # MAXDIM in src/include/utils/array.h

_unpack_header = struct.Struct("!iiI").unpack_from
_pack_header = struct.Struct("!iiI").pack
_unpack_i32 = struct.Struct("!i").unpack_from
_pack_i32 = struct.Struct("!i").pack
_pack_dim = struct.Struct("!ii").pack
_NULL: Final = b"\xff\xff\xff\xff"


def _reshape(flat: list[object], dims: Sequence[int]) -> list[object]:
    # Group the row-major elements innermost dimension first.
    nested = flat
    for size in reversed(dims[1:]):
        nested = [nested[i : i + size] for i in range(0, len(nested), size)]
    return nested


def binary_array_decoder(decode: DecodeFn, fixed_format: str | None = None) -> DecodeFn:
    """Build a decoder for the binary form of an array of one element type.

    Args:
        decode: The element type's binary decoder.
        fixed_format: For a fixed-width element whose binary form is one big-endian
            ``struct`` value, its format character (e.g. ``"i"`` for int4): arrays
            without NULLs are then unpacked in one pass instead of element by element.

    Returns:
        A decoder producing nested lists (``None`` for NULL elements, ``[]`` for an
        empty array).
    """
    # Each element is its int32 length followed by the value.
    pair = struct.Struct(f"!i{fixed_format}") if fixed_format is not None else None

    def decode_array(data: bytes) -> list[object]:
        ndim, flags, _ = _unpack_header(data)
        if ndim == 0:
            return []
        dims = struct.unpack_from(f"!{2 * ndim}i", data, 12)[::2]
        count = 1
        for size in dims:
            count *= size
        position = 12 + 8 * ndim
        if pair is not None and not flags:
            end = position + count * pair.size
            values = [value for _, value in pair.iter_unpack(data[position:end])]
            return values if ndim == 1 else _reshape(values, dims)
        items: list[object] = []
        append = items.append
        for _ in range(count):
            length = _unpack_i32(data, position)[0]
            position += 4
            if length < 0:
                append(None)
            else:
                end = position + length
                append(decode(data[position:end]))
                position = end
        return items if ndim == 1 else _reshape(items, dims)

    return decode_array


def _dimensions(value: object, type_name: str) -> list[int]:
    if not isinstance(value, list | tuple):
        raise wrong_type(type_name, "list or tuple", value)
    dims: list[int] = []
    level: object = value
    while isinstance(level, list | tuple):
        dims.append(len(level))
        if not level:
            break
        level = level[0]
    if len(dims) > _MAXDIM:
        raise ValueError(
            f"array for PostgreSQL {type_name} has {len(dims)} dimensions; "
            f"PostgreSQL allows at most {_MAXDIM}"
        )
    return dims


def _flatten(value: Sequence[object], dims: list[int], type_name: str) -> list[object]:
    # Walk level by level, checking that every sub-list matches its level's length.
    level: list[object] = [value]
    for depth, size in enumerate(dims):
        below: list[object] = []
        for item in level:
            if not isinstance(item, list | tuple) or len(item) != size:
                raise _ragged(type_name, depth, size, item)
            below.extend(item)
        level = below
    for item in level:
        if isinstance(item, list | tuple):
            raise _ragged(type_name, len(dims), None, item)
    return level


def _ragged(type_name: str, depth: int, size: int | None, item: object) -> ValueError:
    if size is None:
        found = f"a {type(item).__name__} where elements were expected"
    elif isinstance(item, list | tuple):
        found = f"a sub-list of length {len(item)} where length {size} was expected"
    else:
        found = f"a {type(item).__name__} where a list of length {size} was expected"
    return ValueError(
        f"array for PostgreSQL {type_name} is not rectangular: found {found} at "
        f"depth {depth}; every sub-list of one level must have the same length"
    )


def binary_array_encoder(element_oid: int, encode: EncodeFn, type_name: str) -> EncodeFn:
    """Build an encoder producing the binary form of an array.

    Args:
        element_oid: The element type OID, written into the array header.
        encode: The element type's binary encoder.
        type_name: The array type's name, for error messages.

    Returns:
        An encoder taking nested lists or tuples (``None`` elements become NULL).
    """

    def encode_array(value: object) -> bytes:
        dims = _dimensions(value, type_name)
        items = _flatten(value, dims, type_name)  # type: ignore[arg-type]
        if not items:
            return _pack_header(0, 0, element_oid)
        parts: list[bytes] = []
        append = parts.append
        has_null = 0
        for item in items:
            if item is None:
                append(_NULL)
                has_null = 1
            else:
                data = encode(item)
                append(_pack_i32(len(data)))
                append(data)
        header = _pack_header(len(dims), has_null, element_oid)
        bounds = b"".join([_pack_dim(size, 1) for size in dims])
        return header + bounds + b"".join(parts)

    return encode_array


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNQUOTED = re.compile(r"[^,{}]+")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def text_array_decoder(decode: DecodeFn) -> DecodeFn:
    """Build a decoder for the text form of an array.

    Args:
        decode: The element type's text decoder.

    Returns:
        A decoder producing nested lists, like :func:`binary_array_decoder`.
    """

    def decode_array(data: bytes) -> list[object]:
        text = data.decode()
        position = text.index("{")  # skips a "[1:2]=" bounds decoration
        stack: list[list[object]] = []
        result: list[object] = []
        current: list[object] | None = None
        length = len(text)
        while position < length:
            char = text[position]
            if char == "{":
                if current is None:
                    current = result
                else:
                    inner: list[object] = []
                    current.append(inner)
                    stack.append(current)
                    current = inner
                position += 1
            elif char == "}":
                current = stack.pop() if stack else None
                position += 1
            elif current is None:
                raise ValueError(f"malformed array literal: {text[:80]!r}")
            elif char == ",":
                position += 1
            elif char == '"':
                match = _QUOTED.match(text, position)
                if match is None:
                    raise ValueError(f"malformed array literal: {text[:80]!r}")
                element = _ESCAPE.sub(r"\1", match.group(1))
                current.append(decode(element.encode()))
                position = match.end()
            else:
                match = _UNQUOTED.match(text, position)
                if match is None:
                    raise ValueError(f"malformed array literal: {text[:80]!r}")
                token = match.group()
                current.append(None if token == "NULL" else decode(token.encode()))
                position = match.end()
        return result

    return decode_array


def text_array_encoder(encode: EncodeFn, type_name: str) -> EncodeFn:
    """Build an encoder producing the text form of an array (``array_in`` input).

    Used for element types that only have a text encoder. Every element is quoted,
    so any element text is safe.

    Args:
        encode: The element type's text encoder.
        type_name: The array type's name, for error messages.

    Returns:
        An encoder taking nested lists or tuples (``None`` elements become NULL).
    """

    def literal(value: object) -> bytes:
        if isinstance(value, list | tuple):
            return b"{" + b",".join([literal(item) for item in value]) + b"}"
        if value is None:
            return b"NULL"
        text = encode(value).replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + text + b'"'

    def encode_array(value: object) -> bytes:
        dims = _dimensions(value, type_name)
        _flatten(value, dims, type_name)  # type: ignore[arg-type]
        return literal(value)

    return encode_array
