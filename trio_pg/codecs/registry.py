"""The per-connection table of codecs, and how a type's codec is chosen.

Theory of operation: a registry holds three tables. ``_codecs`` maps an OID to its
primary :class:`Codec` (the builtin binary codecs, or codecs added with
:meth:`CodecRegistry.add`); ``_text`` maps an OID to its builtin text-format decoder
(used for simple-query results and text fallbacks); ``_arrays`` maps an array
type's OID to its element OID and name. Array codecs are derived from the element's
codec when first asked for, so an array registered before its element type still
works once the element's codec is added. Derived answers are cached per registry
and the cache is dropped whenever a table changes. ``result_decoder`` and
``param_encoder`` run once per prepared statement, not per row; the functions they
return are what runs per value.

Fallbacks: a type without a usable codec travels as text. Its results decode to
``str``; its parameters must be ``str`` (without NUL characters), which the server
parses with the type's input function.
"""

from __future__ import annotations

from typing import Final

from trio_pg.codecs import arrays, network, numeric, oids, scalars, timecodecs
from trio_pg.codecs.base import Codec, DecodeFn, EncodeFn, Format

__all__ = ["CodecRegistry"]

_decode_utf8: DecodeFn = bytes.decode


def _fallback_encoder(oid: int, name: str | None) -> EncodeFn:
    label = name if name is not None else f"type OID {oid}"

    def encode(value: object) -> bytes:
        if not isinstance(value, str):
            raise TypeError(
                f"cannot encode {type(value).__name__} as PostgreSQL {label}: trio_pg "
                f"has no codec for this type, so pass a str in its text input format "
                f"or register a codec with set_type_codec()"
            )
        return scalars.encode_str(value, label)

    return encode


class CodecRegistry:
    """Codecs by type OID, with array support and text fallbacks.

    Each connection owns one registry (a :meth:`copy` of :meth:`builtin`), so codecs
    added to one connection never affect another.
    """

    __slots__ = ("_arrays", "_codecs", "_decoders", "_encoders", "_text", "_text_decoders")

    def __init__(self) -> None:
        """Create an empty registry: every type falls back to text."""
        self._codecs: dict[int, Codec] = {}
        self._text: dict[int, DecodeFn] = {}
        self._arrays: dict[int, tuple[int, str]] = {}
        self._decoders: dict[int, tuple[Format, DecodeFn]] = {}
        self._encoders: dict[int, tuple[Format, EncodeFn]] = {}
        self._text_decoders: dict[int, DecodeFn] = {}

    @classmethod
    def builtin(cls) -> CodecRegistry:
        """Return a new registry holding every builtin codec (cheap: copies tables)."""
        return _BUILTIN.copy()

    def copy(self) -> CodecRegistry:
        """Return an independent copy; changing either never changes the other."""
        clone = CodecRegistry()
        clone._codecs.update(self._codecs)
        clone._text.update(self._text)
        clone._arrays.update(self._arrays)
        clone._decoders.update(self._decoders)
        clone._encoders.update(self._encoders)
        clone._text_decoders.update(self._text_decoders)
        return clone

    def add(self, codec: Codec) -> None:
        """Add a codec, replacing whatever this registry had for ``codec.oid``.

        The new codec replaces the builtin text decoder too: a ``Format.TEXT`` codec
        with a decoder serves text results, otherwise text results of the type
        decode to ``str``. Arrays of the type pick up the new codec.

        Args:
            codec: The codec to install.
        """
        self._codecs[codec.oid] = codec
        self._text.pop(codec.oid, None)
        self._arrays.pop(codec.oid, None)
        self._clear_cache()

    def add_array(self, array_oid: int, element_oid: int, name: str) -> None:
        """Register an array type whose elements use the codec of ``element_oid``.

        The element codec is looked up when the array is first used, so it may be
        added before or after this call.

        Args:
            array_oid: The array type's OID (``pg_type.typarray`` of the element).
            element_oid: The element type's OID.
            name: The array type's name, e.g. ``"_mood"``.
        """
        self._arrays[array_oid] = (element_oid, name)
        self._codecs.pop(array_oid, None)
        self._text.pop(array_oid, None)
        self._clear_cache()

    def result_decoder(self, oid: int) -> tuple[Format, DecodeFn]:
        """Choose how to receive results of a type: binary when possible, else text.

        Args:
            oid: The column's type OID (from RowDescription).

        Returns:
            The result format to request in Bind and the decoder for values in that
            format. Unknown types give ``(Format.TEXT, decoder to str)``.
        """
        cached = self._decoders.get(oid)
        if cached is None:
            cached = self._decoders[oid] = self._make_decoder(oid)
        return cached

    def param_encoder(self, oid: int) -> tuple[Format, EncodeFn]:
        """Choose how to send parameters of a type: binary when possible, else text.

        Args:
            oid: The parameter's type OID (from ParameterDescription).

        Returns:
            The parameter format to declare in Bind and the encoder producing it.
            Unknown types give ``Format.TEXT`` and an encoder accepting ``str`` only.
        """
        cached = self._encoders.get(oid)
        if cached is None:
            cached = self._encoders[oid] = self._make_encoder(oid)
        return cached

    def text_decoder(self, oid: int) -> DecodeFn:
        """Return the decoder for text-format values of a type.

        Used for simple-query results, which are always text. Unknown types decode
        to ``str``.

        Args:
            oid: The column's type OID.
        """
        cached = self._text_decoders.get(oid)
        if cached is None:
            cached = self._text_decoders[oid] = self._make_text_decoder(oid)
        return cached

    def type_name(self, oid: int) -> str | None:
        """Return the type name this registry knows for ``oid``, or ``None``."""
        codec = self._codecs.get(oid)
        if codec is not None:
            return codec.name
        array = self._arrays.get(oid)
        return array[1] if array is not None else None

    def _clear_cache(self) -> None:
        self._decoders.clear()
        self._encoders.clear()
        self._text_decoders.clear()

    def _make_decoder(self, oid: int) -> tuple[Format, DecodeFn]:
        codec = self._codecs.get(oid)
        if codec is not None and codec.decode is not None:
            return Format(codec.format), codec.decode
        array = self._arrays.get(oid)
        if array is not None:
            element = self._codecs.get(array[0])
            if element is not None and element.format == Format.BINARY:
                decode = element.decode
                if decode is not None:
                    fixed = scalars.FIXED_WIDTH_FORMATS.get(decode)
                    return Format.BINARY, arrays.binary_array_decoder(decode, fixed)
        return Format.TEXT, self.text_decoder(oid)

    def _make_encoder(self, oid: int) -> tuple[Format, EncodeFn]:
        codec = self._codecs.get(oid)
        if codec is not None and codec.encode is not None:
            return Format(codec.format), codec.encode
        array = self._arrays.get(oid)
        if array is None:
            return Format.TEXT, _fallback_encoder(oid, self.type_name(oid))
        element_oid, name = array
        element_format, element_encode = self.param_encoder(element_oid)
        if element_format == Format.BINARY:
            return Format.BINARY, arrays.binary_array_encoder(element_oid, element_encode, name)
        return Format.TEXT, arrays.text_array_encoder(element_encode, name)

    def _make_text_decoder(self, oid: int) -> DecodeFn:
        codec = self._codecs.get(oid)
        if codec is not None and codec.format == Format.TEXT and codec.decode is not None:
            return codec.decode
        builtin = self._text.get(oid)
        if builtin is not None:
            return builtin
        array = self._arrays.get(oid)
        if array is not None:
            return arrays.text_array_decoder(self.text_decoder(array[0]))
        return _decode_utf8


def _build() -> CodecRegistry:
    registry = CodecRegistry()
    for module in (scalars, numeric, timecodecs, network):
        for codec in module.CODECS:
            registry._codecs[codec.oid] = codec
        registry._text.update(module.TEXT_DECODERS)
    for array_oid, element_oid in oids.BUILTIN_ARRAYS:
        registry._arrays[array_oid] = (element_oid, "_" + registry._codecs[element_oid].name)
    return registry


_BUILTIN: Final = _build()
