"""CodecRegistry: builtin table, copies, overrides, arrays, unknown-type fallbacks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trio_pg.codecs import Codec, CodecRegistry, Format
from trio_pg.codecs import oids as o

MOOD = 70_000  # a type created at run time (e.g. an enum), unknown to the builtins
MOOD_ARRAY = 70_001


def _mood_codec(fmt: Format) -> Codec:
    return Codec(
        MOOD,
        "mood",
        fmt,
        lambda value: str(value).upper().encode(),
        lambda data: ("mood", data.decode()),
    )


def test_builtin_covers_every_documented_type() -> None:
    registry = CodecRegistry.builtin()
    for oid, name in [
        (o.BOOL, "bool"), (o.INT2, "int2"), (o.INT4, "int4"), (o.INT8, "int8"),
        (o.OID, "oid"), (o.FLOAT4, "float4"), (o.FLOAT8, "float8"),
        (o.NUMERIC, "numeric"), (o.TEXT, "text"), (o.VARCHAR, "varchar"),
        (o.BPCHAR, "bpchar"), (o.NAME, "name"), (o.CHAR, "char"),
        (o.UNKNOWN, "unknown"), (o.BYTEA, "bytea"), (o.DATE, "date"), (o.TIME, "time"),
        (o.TIMETZ, "timetz"), (o.TIMESTAMP, "timestamp"), (o.TIMESTAMPTZ, "timestamptz"),
        (o.INTERVAL, "interval"), (o.UUID, "uuid"), (o.JSON, "json"), (o.JSONB, "jsonb"),
        (o.INET, "inet"), (o.CIDR, "cidr"), (o.MACADDR, "macaddr"),
        (o.MACADDR8, "macaddr8"),
    ]:  # fmt: skip
        assert registry.type_name(oid) == name
        assert registry.result_decoder(oid)[0] is Format.BINARY
        assert registry.param_encoder(oid)[0] is Format.BINARY
    for array_oid, element_oid in o.BUILTIN_ARRAYS:
        assert registry.type_name(array_oid) == "_" + str(registry.type_name(element_oid))
        assert registry.result_decoder(array_oid)[0] is Format.BINARY
        assert registry.param_encoder(array_oid)[0] is Format.BINARY


def test_builtin_returns_independent_registries() -> None:
    first = CodecRegistry.builtin()
    first.add(_mood_codec(Format.TEXT))
    assert CodecRegistry.builtin().type_name(MOOD) is None


def test_adding_to_a_copy_leaves_the_original_unchanged() -> None:
    original = CodecRegistry.builtin()
    original_decoder = original.result_decoder(o.INT4)
    copy = original.copy()
    copy.add(Codec(o.INT4, "int4", Format.TEXT, None, lambda data: "overridden"))
    copy.add_array(MOOD_ARRAY, MOOD, "_mood")
    assert copy.result_decoder(o.INT4)[1](b"1") == "overridden"
    assert original.result_decoder(o.INT4) == original_decoder
    assert original.result_decoder(o.INT4)[1](b"\x00\x00\x00\x01") == 1
    assert original.type_name(MOOD_ARRAY) is None


def test_add_overrides_builtin_codec_and_its_text_decoder() -> None:
    registry = CodecRegistry.builtin()
    registry.result_decoder(o.NUMERIC)  # warm the cache: add() must drop it
    registry.add(Codec(o.NUMERIC, "numeric", Format.TEXT, lambda v: str(v).encode(), float))
    fmt, decoder = registry.result_decoder(o.NUMERIC)
    assert fmt is Format.TEXT
    assert decoder(b"1.5") == 1.5
    assert registry.text_decoder(o.NUMERIC)(b"1.5") == 1.5
    fmt, encoder = registry.param_encoder(o.NUMERIC)
    assert fmt is Format.TEXT
    assert encoder(Decimal("2.5")) == b"2.5"


def test_binary_override_makes_text_results_plain_str() -> None:
    registry = CodecRegistry.builtin()
    registry.add(Codec(o.JSONB, "jsonb", Format.BINARY, None, lambda data: data))
    assert registry.result_decoder(o.JSONB) == (Format.BINARY, registry.result_decoder(o.JSONB)[1])
    assert registry.text_decoder(o.JSONB)(b'{"a": 1}') == '{"a": 1}'


def test_codec_without_encoder_falls_back_to_text_parameters() -> None:
    registry = CodecRegistry.builtin()
    registry.add(Codec(MOOD, "mood", Format.BINARY, None, lambda data: data))
    fmt, encoder = registry.param_encoder(MOOD)
    assert fmt is Format.TEXT
    assert encoder("happy") == b"happy"
    with pytest.raises(TypeError, match="mood"):
        encoder(1)


def test_codec_without_decoder_falls_back_to_str_results() -> None:
    registry = CodecRegistry.builtin()
    registry.add(Codec(MOOD, "mood", Format.BINARY, lambda value: b"x", None))
    assert registry.result_decoder(MOOD)[0] is Format.TEXT
    assert registry.result_decoder(MOOD)[1](b"happy") == "happy"


def test_override_applies_to_arrays_of_the_type() -> None:
    registry = CodecRegistry.builtin()
    assert registry.result_decoder(o.NUMERIC_ARRAY)[0] is Format.BINARY
    registry.add(Codec(o.NUMERIC, "numeric", Format.TEXT, lambda v: str(v).encode(), float))
    fmt, decoder = registry.result_decoder(o.NUMERIC_ARRAY)
    assert fmt is Format.TEXT
    assert decoder(b"{1.5,NULL}") == [1.5, None]
    fmt, encoder = registry.param_encoder(o.NUMERIC_ARRAY)
    assert fmt is Format.TEXT
    assert encoder([1.5, None]) == b'{"1.5",NULL}'


def test_unknown_oid_decodes_results_to_str() -> None:
    registry = CodecRegistry.builtin()
    fmt, decoder = registry.result_decoder(99_999)
    assert fmt is Format.TEXT
    assert decoder("héllo".encode()) == "héllo"
    assert registry.text_decoder(99_999)(b"x") == "x"
    assert registry.type_name(99_999) is None


def test_unknown_oid_encodes_str_parameters_as_text() -> None:
    fmt, encoder = CodecRegistry.builtin().param_encoder(99_999)
    assert fmt is Format.TEXT
    assert encoder("héllo") == "héllo".encode()


def test_unknown_oid_rejects_non_str_naming_the_oid_and_python_type() -> None:
    _, encoder = CodecRegistry.builtin().param_encoder(99_999)
    with pytest.raises(TypeError, match=r"cannot encode int as PostgreSQL type OID 99999"):
        encoder(1)


def test_unknown_oid_rejects_nul() -> None:
    _, encoder = CodecRegistry.builtin().param_encoder(99_999)
    with pytest.raises(ValueError, match=r"^text values cannot contain NUL \(\\x00\) characters$"):
        encoder("a\x00")


def test_array_of_unknown_element_uses_text_format() -> None:
    registry = CodecRegistry.builtin()
    registry.add_array(MOOD_ARRAY, MOOD, "_mood")
    assert registry.type_name(MOOD_ARRAY) == "_mood"
    fmt, decoder = registry.result_decoder(MOOD_ARRAY)
    assert fmt is Format.TEXT
    assert decoder(b'{happy,"very sad",NULL}') == ["happy", "very sad", None]
    fmt, encoder = registry.param_encoder(MOOD_ARRAY)
    assert fmt is Format.TEXT
    assert encoder([["a\\b", 'q"'], [None, "x"]]) == b'{{"a\\\\b","q\\""},{NULL,"x"}}'
    with pytest.raises(TypeError, match="cannot encode int as PostgreSQL type OID 70000"):
        encoder([1])


def test_array_registered_before_its_element_codec_uses_it_once_added() -> None:
    registry = CodecRegistry.builtin()
    registry.add_array(MOOD_ARRAY, MOOD, "_mood")
    registry.result_decoder(MOOD_ARRAY)  # cached text decoder must be dropped by add()
    registry.add(_mood_codec(Format.BINARY))
    fmt, decoder = registry.result_decoder(MOOD_ARRAY)
    assert fmt is Format.BINARY
    data = bytes.fromhex("00000001" "00000000" "00011170" "00000001" "00000001" "00000002")
    assert decoder(data + b"ok") == [("mood", "ok")]
    fmt, encoder = registry.param_encoder(MOOD_ARRAY)
    assert fmt is Format.BINARY
    assert encoder(["ok"]) == data + b"OK"


def test_array_of_text_format_element_codec_uses_text_arrays() -> None:
    registry = CodecRegistry.builtin()
    registry.add(_mood_codec(Format.TEXT))
    registry.add_array(MOOD_ARRAY, MOOD, "_mood")
    assert registry.result_decoder(MOOD_ARRAY)[1](b"{a}") == [("mood", "a")]
    assert registry.text_decoder(MOOD_ARRAY)(b"{a}") == [("mood", "a")]
    assert registry.param_encoder(MOOD_ARRAY)[1](["a"]) == b'{"A"}'


def test_add_array_replaces_a_codec_for_that_oid_and_add_replaces_an_array() -> None:
    registry = CodecRegistry.builtin()
    registry.add(Codec(MOOD_ARRAY, "weird", Format.TEXT, None, None))
    registry.add_array(MOOD_ARRAY, o.INT4, "_int4_alias")
    assert registry.type_name(MOOD_ARRAY) == "_int4_alias"
    assert registry.result_decoder(MOOD_ARRAY)[0] is Format.BINARY
    registry.add(Codec(MOOD_ARRAY, "plain", Format.TEXT, None, bytes))
    assert registry.type_name(MOOD_ARRAY) == "plain"
    assert registry.result_decoder(MOOD_ARRAY) == (Format.TEXT, bytes)


def test_result_decoder_is_cached_per_oid() -> None:
    registry = CodecRegistry.builtin()
    assert registry.result_decoder(o.INT4_ARRAY) is registry.result_decoder(o.INT4_ARRAY)
