"""Byte-exact tests for every frontend encoder.

Expected bytes are written out by hand from protocol-message-formats.html: type byte,
Int32 length counting itself (not the type byte), then the body.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trio_pg.errors import InterfaceError
from trio_pg.protocol import frontend as f


def test_startup_message_3_0_lists_parameters_and_ends_with_nul() -> None:
    encoded = f.startup_message((3, 0), {"user": "bob", "database": "db"})
    assert encoded == (
        b"\x00\x00\x00\x1e"  # 30 bytes, counting the length itself
        b"\x00\x03\x00\x00"  # protocol 3.0
        b"user\x00bob\x00database\x00db\x00"
        b"\x00"
    )


def test_startup_message_3_2_carries_minor_version_in_low_16_bits() -> None:
    assert f.startup_message((3, 2), {"user": "u"}) == (
        b"\x00\x00\x00\x10\x00\x03\x00\x02user\x00u\x00\x00"
    )


def test_protocol_version_code() -> None:
    assert f.protocol_version_code((3, 0)) == 196608
    assert f.protocol_version_code((3, 2)) == 196610
    assert f.protocol_version_code((1234, 5679)) == f.SSL_REQUEST_CODE


def test_ssl_request() -> None:
    assert f.ssl_request() == b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # 80877103


def test_gssenc_request() -> None:
    assert f.gssenc_request() == b"\x00\x00\x00\x08\x04\xd2\x16\x30"  # 80877104


def test_cancel_request_with_protocol_3_0_four_byte_key() -> None:
    assert f.cancel_request(1234, b"\xde\xad\xbe\xef") == (
        b"\x00\x00\x00\x10"  # 16
        b"\x04\xd2\x16\x2e"  # 80877102
        b"\x00\x00\x04\xd2"  # pid 1234
        b"\xde\xad\xbe\xef"
    )


def test_cancel_request_with_protocol_3_2_32_byte_key() -> None:
    key = bytes(range(32))
    assert f.cancel_request(0xFFFFFFFE, key) == (
        b"\x00\x00\x00\x2c\x04\xd2\x16\x2e\xff\xff\xff\xfe" + key
    )


def test_cancel_request_accepts_256_byte_key() -> None:
    key = b"k" * 256
    assert f.cancel_request(7, key) == b"\x00\x00\x01\x0c\x04\xd2\x16\x2e\x00\x00\x00\x07" + key


@pytest.mark.parametrize("size", [0, 3, 257])
def test_cancel_request_rejects_key_outside_4_to_256_bytes(size: int) -> None:
    with pytest.raises(InterfaceError, match="4 to 256"):
        f.cancel_request(1, b"k" * size)


def test_password_message_from_str() -> None:
    assert f.password_message("secret") == b"p\x00\x00\x00\x0bsecret\x00"


def test_password_message_from_bytes() -> None:
    assert f.password_message(b"md5abc") == b"p\x00\x00\x00\x0bmd5abc\x00"


def test_password_message_encodes_utf8() -> None:
    assert f.password_message("pä") == b"p\x00\x00\x00\x08p\xc3\xa4\x00"


def test_sasl_initial_response_with_data() -> None:
    assert f.sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc") == (
        b"p\x00\x00\x00\x21SCRAM-SHA-256\x00\x00\x00\x00\x0bn,,n=,r=abc"
    )


def test_sasl_initial_response_without_data_sends_length_minus_one() -> None:
    assert f.sasl_initial_response("SCRAM-SHA-256", None) == (
        b"p\x00\x00\x00\x16SCRAM-SHA-256\x00\xff\xff\xff\xff"
    )


def test_sasl_initial_response_with_empty_data_is_not_null() -> None:
    assert f.sasl_initial_response("X", b"") == b"p\x00\x00\x00\x0aX\x00\x00\x00\x00\x00"


def test_sasl_response_is_raw_data() -> None:
    assert f.sasl_response(b"c=biws") == b"p\x00\x00\x00\x0ac=biws"


def test_query() -> None:
    assert f.query("SELECT 1") == b"Q\x00\x00\x00\x0dSELECT 1\x00"


def test_query_encodes_utf8() -> None:
    assert f.query("é") == b"Q\x00\x00\x00\x07\xc3\xa9\x00"


def test_parse_named_with_parameter_types() -> None:
    assert f.parse("s1", "SELECT $1", [23]) == (
        b"P\x00\x00\x00\x17s1\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17"
    )


def test_parse_unnamed_without_types() -> None:
    assert f.parse("", "SELECT 1") == b"P\x00\x00\x00\x10\x00SELECT 1\x00\x00\x00"


def test_parse_type_zero_and_large_oid() -> None:
    assert f.parse("", "q", [0, 4294967295]) == (
        b"P\x00\x00\x00\x11\x00q\x00\x00\x02\x00\x00\x00\x00\xff\xff\xff\xff"
    )


def test_parse_accepts_65535_parameter_types() -> None:
    encoded = f.parse("", "q", [0] * 65535)
    assert encoded[:5] == b"P" + (4 + 1 + 2 + 2 + 4 * 65535).to_bytes(4, "big")
    assert encoded[8:10] == b"\xff\xff"


def test_parse_rejects_65536_parameter_types() -> None:
    with pytest.raises(InterfaceError, match="65535"):
        f.parse("", "q", [0] * 65536)


def test_bind_with_nulls_and_formats() -> None:
    encoded = f.bind("p", "s", [b"1", None, b""], [1], [0, 1])
    assert encoded == (
        b"B\x00\x00\x00\x21"
        b"p\x00"  # portal
        b"s\x00"  # statement
        b"\x00\x01\x00\x01"  # one parameter format code: binary for all
        b"\x00\x03"  # three values
        b"\x00\x00\x00\x011"
        b"\xff\xff\xff\xff"  # NULL
        b"\x00\x00\x00\x00"  # empty, not NULL
        b"\x00\x02\x00\x00\x00\x01"  # result formats: text, binary
    )


def test_bind_without_parameters_or_formats() -> None:
    assert f.bind("", "", []) == b"B\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00"


def test_bind_per_parameter_formats() -> None:
    assert f.bind("", "s", [b"ab", b"\x00\x01"], [0, 1]) == (
        b"B\x00\x00\x00\x1d\x00s\x00\x00\x02\x00\x00\x00\x01\x00\x02"
        b"\x00\x00\x00\x02ab\x00\x00\x00\x02\x00\x01\x00\x00"
    )


def test_bind_accepts_65535_parameters_as_unsigned_count() -> None:
    encoded = f.bind("", "", [None] * 65535)
    assert encoded[:5] == b"B" + (4 + 2 + 2 + 2 + 4 * 65535 + 2).to_bytes(4, "big")
    assert encoded[7:11] == b"\x00\x00\xff\xff"  # no format codes, 65535 values
    assert encoded[11:15] == b"\xff\xff\xff\xff"


def test_bind_rejects_65536_parameters_before_encoding() -> None:
    with pytest.raises(InterfaceError, match="at most 65535 parameters"):
        f.bind("", "", [None] * 65536)


def test_describe_statement_and_portal() -> None:
    assert f.describe("S", "s1") == b"D\x00\x00\x00\x08Ss1\x00"
    assert f.describe("P", "") == b"D\x00\x00\x00\x06P\x00"


def test_describe_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="'S'"):
        f.describe("X", "")


def test_execute_defaults_to_unnamed_portal_and_all_rows() -> None:
    assert f.execute() == b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"


def test_execute_with_row_limit() -> None:
    assert f.execute("p", 100) == b"E\x00\x00\x00\x0ap\x00\x00\x00\x00\x64"


def test_close_statement_and_portal() -> None:
    assert f.close("S", "s1") == b"C\x00\x00\x00\x08Ss1\x00"
    assert f.close("P", "") == b"C\x00\x00\x00\x06P\x00"


def test_close_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="'P'"):
        f.close("s", "x")


def test_messages_without_body() -> None:
    assert f.sync() == b"S\x00\x00\x00\x04"
    assert f.flush() == b"H\x00\x00\x00\x04"
    assert f.copy_done() == b"c\x00\x00\x00\x04"
    assert f.terminate() == b"X\x00\x00\x00\x04"


def test_function_call_with_null_and_binary_formats() -> None:
    assert f.function_call(1598, [b"\x00\x00\x00\x2a", None], [1], 1) == (
        b"F\x00\x00\x00\x1c"
        b"\x00\x00\x06\x3e"  # function OID 1598
        b"\x00\x01\x00\x01"  # one argument format: binary
        b"\x00\x02"  # two arguments
        b"\x00\x00\x00\x04\x00\x00\x00\x2a"
        b"\xff\xff\xff\xff"
        b"\x00\x01"  # binary result
    )


def test_function_call_without_arguments() -> None:
    assert f.function_call(42, []) == b"F\x00\x00\x00\x0e\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00"


def test_function_call_rejects_65536_arguments() -> None:
    with pytest.raises(InterfaceError, match="65535"):
        f.function_call(1, [None] * 65536)


def test_copy_data() -> None:
    assert f.copy_data(b"1\t2\n") == b"d\x00\x00\x00\x081\t2\n"


def test_copy_fail() -> None:
    assert f.copy_fail("boom") == b"f\x00\x00\x00\x09boom\x00"


def test_copy_fail_replaces_nul_in_reason() -> None:
    assert f.copy_fail("a\x00b") == b"f\x00\x00\x00\x08a b\x00"


_NUL_CASES: list[tuple[str, Callable[[], bytes]]] = [
    ("startup name", lambda: f.startup_message((3, 0), {"us\x00er": "x"})),
    ("startup value", lambda: f.startup_message((3, 0), {"user": "x\x00"})),
    ("password", lambda: f.password_message("se\x00cret")),
    ("password bytes", lambda: f.password_message(b"se\x00cret")),
    ("sasl mechanism", lambda: f.sasl_initial_response("SCRAM\x00", b"")),
    ("query", lambda: f.query("SELECT '\x00'")),
    ("parse name", lambda: f.parse("s\x00", "SELECT 1")),
    ("parse sql", lambda: f.parse("", "SELECT '\x00'")),
    ("bind portal", lambda: f.bind("p\x00", "", [])),
    ("bind statement", lambda: f.bind("", "s\x00", [])),
    ("describe name", lambda: f.describe("S", "s\x00")),
    ("execute portal", lambda: f.execute("p\x00")),
    ("close name", lambda: f.close("P", "p\x00")),
]


@pytest.mark.parametrize("encode", [case[1] for case in _NUL_CASES], ids=[c[0] for c in _NUL_CASES])
def test_nul_in_string_raises_interface_error(encode: Callable[[], bytes]) -> None:
    with pytest.raises(InterfaceError, match="NUL"):
        encode()


def test_lone_surrogate_raises_interface_error() -> None:
    with pytest.raises(InterfaceError, match="not valid Unicode"):
        f.query("SELECT '\udcff'")
