"""Byte-exact tests for every backend parser, fed through the Framer three ways.

Each case is a whole message as the server sends it, written out by hand from
protocol-message-formats.html, and the value ``parse_message`` must make of it. Every case
goes through the Framer whole, byte by byte, and followed by another message (h11's
"trailing data" check), so framing and parsing are tested together.
"""

from __future__ import annotations

import pytest

from trio_pg.errors import ProtocolError
from trio_pg.protocol import Framer, TransactionStatus, parse_message, split_data_row
from trio_pg.protocol import backend as b

_KEY_32 = bytes(range(32))
_KEY_256 = bytes(range(256))
_MANY_OIDS = 40_000  # over 32,767: the Int16 count must be read unsigned

CASES: list[tuple[str, bytes, object]] = [
    ("AuthenticationOk", b"R\x00\x00\x00\x08\x00\x00\x00\x00", b.AuthenticationOk()),
    (
        "AuthenticationKerberosV5",
        b"R\x00\x00\x00\x08\x00\x00\x00\x02",
        b.AuthenticationKerberosV5(),
    ),
    (
        "AuthenticationCleartextPassword",
        b"R\x00\x00\x00\x08\x00\x00\x00\x03",
        b.AuthenticationCleartextPassword(),
    ),
    (
        "AuthenticationMD5Password",
        b"R\x00\x00\x00\x0c\x00\x00\x00\x05\x93\x12\xab\x4c",
        b.AuthenticationMD5Password(b"\x93\x12\xab\x4c"),
    ),
    ("AuthenticationGSS", b"R\x00\x00\x00\x08\x00\x00\x00\x07", b.AuthenticationGSS()),
    (
        "AuthenticationGSSContinue",
        b"R\x00\x00\x00\x0b\x00\x00\x00\x08tok",
        b.AuthenticationGSSContinue(b"tok"),
    ),
    ("AuthenticationSSPI", b"R\x00\x00\x00\x08\x00\x00\x00\x09", b.AuthenticationSSPI()),
    (
        "AuthenticationSASL",
        b"R\x00\x00\x00\x2a\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00",
        b.AuthenticationSASL(("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")),
    ),
    (
        "AuthenticationSASLContinue",
        b"R\x00\x00\x00\x11\x00\x00\x00\x0br=abc,i=9",
        b.AuthenticationSASLContinue(b"r=abc,i=9"),
    ),
    (
        "AuthenticationSASLFinal",
        b"R\x00\x00\x00\x0d\x00\x00\x00\x0cv=xyz",
        b.AuthenticationSASLFinal(b"v=xyz"),
    ),
    (
        "BackendKeyData 3.0",
        b"K\x00\x00\x00\x0c\x00\x00\x30\x39\xde\xad\xbe\xef",
        b.BackendKeyData(12345, b"\xde\xad\xbe\xef"),
    ),
    (
        "BackendKeyData 3.2 32-byte key",
        b"K\x00\x00\x00\x28\xff\xff\xff\xff" + _KEY_32,
        b.BackendKeyData(0xFFFFFFFF, _KEY_32),
    ),
    (
        "BackendKeyData 3.2 256-byte key",
        b"K\x00\x00\x01\x08\x00\x00\x00\x01" + _KEY_256,
        b.BackendKeyData(1, _KEY_256),
    ),
    (
        "ParameterStatus",
        b"S\x00\x00\x00\x19client_encoding\x00UTF8\x00",
        b.ParameterStatus("client_encoding", "UTF8"),
    ),
    (
        "ParameterStatus empty value",
        b"S\x00\x00\x00\x09app\x00\x00",
        b.ParameterStatus("app", ""),
    ),
    ("ReadyForQuery idle", b"Z\x00\x00\x00\x05I", b.ReadyForQuery(TransactionStatus.IDLE)),
    (
        "ReadyForQuery in transaction",
        b"Z\x00\x00\x00\x05T",
        b.ReadyForQuery(TransactionStatus.IN_TRANSACTION),
    ),
    ("ReadyForQuery failed", b"Z\x00\x00\x00\x05E", b.ReadyForQuery(TransactionStatus.FAILED)),
    (
        "RowDescription",
        b"T\x00\x00\x00\x32\x00\x02"
        b"id\x00\x00\x00\x40\x00\x00\x01\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x01"
        b"name\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\xff\xff\x00\x00\x00\x44\x00\x00",
        b.RowDescription(
            (
                b.Column("id", 16384, 1, 23, 4, -1, 1),
                b.Column("name", 0, 0, 25, -1, 68, 0),
            )
        ),
    ),
    ("RowDescription no columns", b"T\x00\x00\x00\x06\x00\x00", b.RowDescription(())),
    (
        "DataRow",
        b"D\x00\x00\x00\x13\x00\x03\x00\x00\x00\x011\xff\xff\xff\xff\x00\x00\x00\x00",
        b"\x00\x03\x00\x00\x00\x011\xff\xff\xff\xff\x00\x00\x00\x00",
    ),
    ("DataRow no columns", b"D\x00\x00\x00\x06\x00\x00", b"\x00\x00"),
    (
        "CommandComplete",
        b"C\x00\x00\x00\x0fINSERT 0 1\x00",
        b.CommandComplete("INSERT 0 1"),
    ),
    ("EmptyQueryResponse", b"I\x00\x00\x00\x04", b.EmptyQueryResponse()),
    (
        "ErrorResponse",
        b"E\x00\x00\x00\x28SERROR\x00VERROR\x00C42601\x00Msyntax error\x00\x00",
        b.ErrorResponse({"S": "ERROR", "V": "ERROR", "C": "42601", "M": "syntax error"}),
    ),
    (
        "NoticeResponse",
        b"N\x00\x00\x00\x1bSNOTICE\x00C00000\x00Mhello\x00\x00",
        b.NoticeResponse({"S": "NOTICE", "C": "00000", "M": "hello"}),
    ),
    (
        "NotificationResponse",
        b"A\x00\x00\x00\x15\x00\x00\x04\xd2chan\x00payload\x00",
        b.NotificationResponse(1234, "chan", "payload"),
    ),
    (
        "NotificationResponse empty payload",
        b"A\x00\x00\x00\x0c\x00\x00\x00\x01ch\x00\x00",
        b.NotificationResponse(1, "ch", ""),
    ),
    ("ParseComplete", b"1\x00\x00\x00\x04", b.ParseComplete()),
    ("BindComplete", b"2\x00\x00\x00\x04", b.BindComplete()),
    ("CloseComplete", b"3\x00\x00\x00\x04", b.CloseComplete()),
    ("NoData", b"n\x00\x00\x00\x04", b.NoData()),
    (
        "ParameterDescription",
        b"t\x00\x00\x00\x0e\x00\x02\x00\x00\x00\x17\x00\x00\x00\x19",
        b.ParameterDescription((23, 25)),
    ),
    ("ParameterDescription none", b"t\x00\x00\x00\x06\x00\x00", b.ParameterDescription(())),
    (
        "ParameterDescription over 32767",
        b"t" + (4 + 2 + 4 * _MANY_OIDS).to_bytes(4, "big") + b"\x9c\x40"
        + b"\x00\x00\x00\x17" * _MANY_OIDS,
        b.ParameterDescription((23,) * _MANY_OIDS),
    ),
    ("PortalSuspended", b"s\x00\x00\x00\x04", b.PortalSuspended()),
    (
        "CopyInResponse",
        b"G\x00\x00\x00\x0b\x00\x00\x02\x00\x00\x00\x00",
        b.CopyInResponse(0, (0, 0)),
    ),
    (
        "CopyOutResponse",
        b"H\x00\x00\x00\x09\x01\x00\x01\x00\x01",
        b.CopyOutResponse(1, (1,)),
    ),
    ("CopyBothResponse", b"W\x00\x00\x00\x07\x00\x00\x00", b.CopyBothResponse(0, ())),
    ("CopyData", b"d\x00\x00\x00\x07abc", b.CopyData(b"abc")),
    ("CopyData empty", b"d\x00\x00\x00\x04", b.CopyData(b"")),
    ("CopyDone", b"c\x00\x00\x00\x04", b.CopyDone()),
    (
        "FunctionCallResponse NULL",
        b"V\x00\x00\x00\x08\xff\xff\xff\xff",
        b.FunctionCallResponse(None),
    ),
    (
        "FunctionCallResponse value",
        b"V\x00\x00\x00\x0a\x00\x00\x00\x02hi",
        b.FunctionCallResponse(b"hi"),
    ),
    (
        "FunctionCallResponse empty value",
        b"V\x00\x00\x00\x08\x00\x00\x00\x00",
        b.FunctionCallResponse(b""),
    ),
    (
        "NegotiateProtocolVersion",
        b"v\x00\x00\x00\x15\x00\x03\x00\x00\x00\x00\x00\x01_pq_.foo\x00",
        b.NegotiateProtocolVersion(0x00030000, ("_pq_.foo",)),
    ),
    (
        "NegotiateProtocolVersion no options",
        b"v\x00\x00\x00\x0c\x00\x03\x00\x00\x00\x00\x00\x00",
        b.NegotiateProtocolVersion(0x00030000, ()),
    ),
]

_IDS = [case[0] for case in CASES]
_TRAILER = b"Z\x00\x00\x00\x05I"


def _parse_all(framer: Framer) -> list[object]:
    out: list[object] = []
    while (item := framer.next_message()) is not None:
        out.append(parse_message(*item))
    return out


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=_IDS)
def test_parse_whole_message(raw: bytes, expected: object) -> None:
    framer = Framer()
    framer.feed(raw)
    assert _parse_all(framer) == [expected]
    assert framer.buffered == 0


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=_IDS)
def test_parse_byte_by_byte(raw: bytes, expected: object) -> None:
    framer = Framer()
    if len(raw) > 5000:
        raw_chunks = [raw[i : i + 997] for i in range(0, len(raw), 997)]
    else:
        raw_chunks = [raw[i : i + 1] for i in range(len(raw))]
    for chunk in raw_chunks[:-1]:
        framer.feed(chunk)
        assert framer.next_message() is None
    framer.feed(raw_chunks[-1])
    assert _parse_all(framer) == [expected]
    assert framer.buffered == 0


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=_IDS)
def test_parse_with_trailing_data(raw: bytes, expected: object) -> None:
    framer = Framer()
    framer.feed(raw + _TRAILER + _TRAILER[:3])
    assert _parse_all(framer) == [expected, b.ReadyForQuery(TransactionStatus.IDLE)]
    assert framer.buffered == 3


def test_case_table_covers_every_backend_message_type() -> None:
    every_type = {bytes([t]) for t in b"RKSZTDCIEAN123ntsGHWdcVv"}
    assert {raw[:1] for _, raw, _ in CASES} == every_type


def test_split_data_row_with_nulls_and_empty_values() -> None:
    body = b"\x00\x04\x00\x00\x00\x02ab\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x01z"
    assert split_data_row(body) == [b"ab", None, b"", b"z"]


def test_split_data_row_no_columns() -> None:
    assert split_data_row(b"\x00\x00") == []


BAD: list[tuple[str, bytes, bytes]] = [
    ("unknown auth code", b"R", b"\x00\x00\x00\x06"),
    ("auth ok with trailing bytes", b"R", b"\x00\x00\x00\x00\x00"),
    ("auth code truncated", b"R", b"\x00\x00"),
    ("md5 salt too short", b"R", b"\x00\x00\x00\x05\x01\x02\x03"),
    ("md5 salt too long", b"R", b"\x00\x00\x00\x05\x01\x02\x03\x04\x05"),
    ("sasl list not terminated", b"R", b"\x00\x00\x00\x0aSCRAM-SHA-256\x00"),
    ("backend key 3 bytes", b"K", b"\x00\x00\x00\x01\x01\x02\x03"),
    ("backend key 257 bytes", b"K", b"\x00\x00\x00\x01" + b"k" * 257),
    ("backend key no key", b"K", b"\x00\x00\x00\x01"),
    ("parameter status missing value", b"S", b"name\x00"),
    ("parameter status trailing", b"S", b"a\x00b\x00c"),
    ("ready bad status", b"Z", b"X"),
    ("ready empty", b"Z", b""),
    ("ready trailing", b"Z", b"II"),
    ("row description negative count", b"T", b"\xff\xff"),
    ("row description truncated column", b"T", b"\x00\x01id\x00\x00\x00"),
    ("row description trailing", b"T", b"\x00\x00\x00"),
    ("data row truncated", b"D", b"\x00"),
    ("data row negative count", b"D", b"\xff\xff"),
    ("data row length -2", b"D", b"\x00\x01\xff\xff\xff\xfe"),
    ("data row value overruns", b"D", b"\x00\x01\x00\x00\x00\x05abc"),
    ("data row trailing", b"D", b"\x00\x01\x00\x00\x00\x01ab"),
    ("data row missing column", b"D", b"\x00\x02\x00\x00\x00\x01a"),
    ("command complete unterminated", b"C", b"SELECT 1"),
    ("empty query with body", b"I", b"x"),
    ("error response unterminated", b"E", b"SERROR\x00"),
    ("error response empty", b"E", b""),
    ("error response trailing", b"E", b"\x00x"),
    ("notice value unterminated", b"N", b"Mhello"),
    ("notification truncated", b"A", b"\x00\x00\x00\x01ch\x00"),
    ("parse complete with body", b"1", b"\x00"),
    ("parameter description truncated", b"t", b"\x00\x02\x00\x00\x00\x17"),
    ("parameter description trailing", b"t", b"\x00\x00\x00"),
    ("copy in negative count", b"G", b"\x00\xff\xff"),
    ("copy out truncated formats", b"H", b"\x00\x00\x02\x00\x00"),
    ("copy both empty", b"W", b""),
    ("function result length -2", b"V", b"\xff\xff\xff\xfe"),
    ("function result overruns", b"V", b"\x00\x00\x00\x05ab"),
    ("function result trailing", b"V", b"\xff\xff\xff\xff\x00"),
    ("negotiate negative count", b"v", b"\x00\x03\x00\x00\xff\xff\xff\xff"),
    ("negotiate missing option", b"v", b"\x00\x03\x00\x00\x00\x00\x00\x02a\x00"),
    ("unknown message type", b"?", b""),
]


@pytest.mark.parametrize(("type_byte", "payload"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_malformed_message_raises_protocol_error(type_byte: bytes, payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_message(type_byte, payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00",
        b"\xff\xff",
        b"\x00\x01\xff\xff\xff\xfe",
        b"\x00\x01\x00\x00\x00\x05abc",
        b"\x00\x01\x00\x00\x00\x01ab",
        b"\x00\x02\x00\x00\x00\x01a",
    ],
)
def test_split_data_row_rejects_bad_lengths(payload: bytes) -> None:
    with pytest.raises(ProtocolError, match="DataRow"):
        split_data_row(payload)


def test_error_response_severity_prefers_non_localized_field() -> None:
    msg = b.ErrorResponse({"S": "FATAL-localized", "V": "FATAL", "C": "57P01", "M": "bye"})
    assert msg.severity == "FATAL"
    assert msg.is_fatal


def test_error_response_severity_falls_back_to_localized_field() -> None:
    assert b.ErrorResponse({"S": "PANIC", "C": "XX000", "M": "x"}).is_fatal
    assert not b.ErrorResponse({"S": "ERROR", "C": "42601", "M": "x"}).is_fatal
    assert b.ErrorResponse({"C": "42601", "M": "x"}).severity == "ERROR"


def test_parsed_strings_decode_invalid_utf8_without_raising() -> None:
    parsed = parse_message(b"C", b"\xff\xfe\x00")
    assert parsed == b.CommandComplete("\ufffd\ufffd")
