"""Python ⇄ PostgreSQL value conversion, in text and binary formats (pure, stdlib only).

:class:`CodecRegistry` holds the codecs of one connection; :meth:`CodecRegistry.builtin`
covers the builtin types listed in ``API.md`` ("Types"). Each codec module's
docstring states the wire layout it follows and the Python mapping it chose.
"""

from __future__ import annotations

from trio_pg.codecs.base import Codec, DecodeFn, EncodeFn, Format
from trio_pg.codecs.registry import CodecRegistry
from trio_pg.codecs.types import Interval

__all__ = ["Codec", "CodecRegistry", "DecodeFn", "EncodeFn", "Format", "Interval"]
