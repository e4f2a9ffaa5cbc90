"""The codec vocabulary shared by every codec module: formats, codecs, error helpers.

A codec converts one PostgreSQL type between Python values and the bytes of a
parameter or a result column, in one wire format (text or binary), as described in
``protocol-overview.html#PROTOCOL-FORMAT-CODES``. Decoders receive exactly the
column value bytes (never NULL: the caller maps NULL to ``None``); encoders return
the parameter bytes (the caller maps ``None`` to NULL).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Codec", "DecodeFn", "EncodeFn", "Format", "text_nul_error", "wrong_type"]

DecodeFn: TypeAlias = Callable[[bytes], object]
"""Turns the bytes of one non-NULL column value into a Python value."""

EncodeFn: TypeAlias = Callable[[object], bytes]
"""Turns one non-``None`` Python value into the bytes of a parameter."""


class Format(enum.IntEnum):
    """A wire format code, as sent in Bind and received in RowDescription."""

    #: Human-readable text, as produced by the type's output function.
    TEXT = 0
    #: The type's send/receive binary representation.
    BINARY = 1


@dataclass(frozen=True, slots=True)
class Codec:
    """How one PostgreSQL type travels: its OID, name, wire format and converters.

    Attributes:
        oid: The type's OID (``pg_type.oid``).
        name: The type's name (``pg_type.typname``), e.g. ``"int4"``.
        format: The wire format that ``encode`` produces and ``decode`` reads.
        encode: Python value to parameter bytes, or ``None`` when this codec cannot
            encode (parameters of the type then travel as text from a ``str``).
        decode: Column bytes to Python value, or ``None`` when this codec cannot
            decode (results of the type then arrive as text and decode to ``str``).
    """

    oid: int
    name: str
    format: Format
    encode: EncodeFn | None
    decode: DecodeFn | None


def wrong_type(pg_type: str, expected: str, value: object) -> TypeError:
    """Build the error for a parameter whose Python type a codec cannot encode.

    Args:
        pg_type: The PostgreSQL type name of the parameter, e.g. ``"int4"``.
        expected: The Python types accepted, e.g. ``"int"``.
        value: The rejected value.

    Returns:
        A ``TypeError`` naming both types, for the caller to raise.
    """
    return TypeError(
        f"cannot encode {type(value).__name__} as PostgreSQL {pg_type}: expected {expected}"
    )


def text_nul_error() -> ValueError:
    """Build the error for text containing NUL, which no PostgreSQL text type can store."""
    return ValueError("text values cannot contain NUL (\\x00) characters")
