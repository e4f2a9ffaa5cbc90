"""Parsers for every backend (server → client) message.

``parse_message(type_byte, payload)`` turns one framed message into a frozen value, laid
out as ``protocol-message-formats.html`` describes. DataRow is the exception: it stays
the raw payload (``bytes``) so that result sets are split into columns only by the code
that decodes them (:func:`split_data_row`), without building an object per row first.

Every parser checks that the payload is exactly consumed; anything malformed raises
:class:`~trio_pg.errors.ProtocolError`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from trio_pg.errors import ProtocolError

__all__ = [
    "AuthenticationCleartextPassword",
    "AuthenticationGSS",
    "AuthenticationGSSContinue",
    "AuthenticationKerberosV5",
    "AuthenticationMD5Password",
    "AuthenticationOk",
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "AuthenticationSSPI",
    "BackendKeyData",
    "BackendMessage",
    "BindComplete",
    "CloseComplete",
    "Column",
    "CommandComplete",
    "CopyBothResponse",
    "CopyData",
    "CopyDone",
    "CopyInResponse",
    "CopyOutResponse",
    "EmptyQueryResponse",
    "ErrorResponse",
    "FunctionCallResponse",
    "NegotiateProtocolVersion",
    "NoData",
    "NoticeResponse",
    "NotificationResponse",
    "ParameterDescription",
    "ParameterStatus",
    "ParseComplete",
    "PortalSuspended",
    "ReadyForQuery",
    "RowDescription",
    "TransactionStatus",
    "parse_message",
    "split_data_row",
]


class TransactionStatus(enum.Enum):
    """Transaction status reported by every ReadyForQuery."""

    #: Not in a transaction block.
    IDLE = "I"
    #: In a transaction block.
    IN_TRANSACTION = "T"
    #: In a failed transaction block: statements are refused until it ends.
    FAILED = "E"


# --- message values -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthenticationOk:
    """Authentication succeeded."""


@dataclass(frozen=True, slots=True)
class AuthenticationKerberosV5:
    """Kerberos V5 requested (unsupported by every modern server and by trio_pg)."""


@dataclass(frozen=True, slots=True)
class AuthenticationCleartextPassword:
    """The server asks for the password in clear text."""


@dataclass(frozen=True, slots=True)
class AuthenticationMD5Password:
    """The server asks for an MD5-hashed password with this salt."""

    salt: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationGSS:
    """GSSAPI requested (unsupported by trio_pg)."""


@dataclass(frozen=True, slots=True)
class AuthenticationGSSContinue:
    """GSSAPI or SSPI continuation data."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSSPI:
    """SSPI requested (unsupported by trio_pg)."""


@dataclass(frozen=True, slots=True)
class AuthenticationSASL:
    """SASL requested; ``mechanisms`` in the server's order of preference."""

    mechanisms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthenticationSASLContinue:
    """A SASL challenge (server-first message for SCRAM)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASLFinal:
    """SASL outcome data (server-final message for SCRAM)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BackendKeyData:
    """Process ID and secret key for CancelRequest (4 bytes in 3.0, up to 256 in 3.2)."""

    process_id: int
    secret_key: bytes


@dataclass(frozen=True, slots=True)
class ParameterStatus:
    """A server parameter's current value (sent at startup and whenever it changes)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ReadyForQuery:
    """The server is ready for a new query cycle."""

    status: TransactionStatus


@dataclass(frozen=True, slots=True)
class Column:
    """One field of a RowDescription."""

    name: str
    table_oid: int
    column_number: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int


@dataclass(frozen=True, slots=True)
class RowDescription:
    """The shape of the rows that follow."""

    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class CommandComplete:
    """A statement finished; ``tag`` is the command tag such as ``"INSERT 0 1"``."""

    tag: str


@dataclass(frozen=True, slots=True)
class EmptyQueryResponse:
    """The query string was empty."""


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """An error, as one-letter field codes (protocol-error-fields.html) mapped to values."""

    fields: dict[str, str]

    @property
    def severity(self) -> str:
        """Non-localized severity when the server sends it (9.6+), else the localized one."""
        return self.fields.get("V") or self.fields.get("S", "ERROR")

    @property
    def is_fatal(self) -> bool:
        """FATAL and PANIC errors end the session."""
        return self.severity in ("FATAL", "PANIC")


@dataclass(frozen=True, slots=True)
class NoticeResponse:
    """A notice (warning or information), with the same fields as an error."""

    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class NotificationResponse:
    """A NOTIFY delivered to this session."""

    process_id: int
    channel: str
    payload: str


@dataclass(frozen=True, slots=True)
class ParseComplete:
    """Parse succeeded."""


@dataclass(frozen=True, slots=True)
class BindComplete:
    """Bind succeeded."""


@dataclass(frozen=True, slots=True)
class CloseComplete:
    """Close succeeded."""


@dataclass(frozen=True, slots=True)
class NoData:
    """The described statement or portal returns no rows."""


@dataclass(frozen=True, slots=True)
class ParameterDescription:
    """The parameter type OIDs of a described statement."""

    type_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PortalSuspended:
    """Execute reached its row limit; the portal can be executed again."""


@dataclass(frozen=True, slots=True)
class CopyInResponse:
    """The server is ready to receive COPY FROM STDIN data."""

    format: int
    column_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyOutResponse:
    """COPY TO STDOUT data follows."""

    format: int
    column_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyBothResponse:
    """Bidirectional COPY (streaming replication) begins."""

    format: int
    column_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyData:
    """A chunk of COPY data."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CopyDone:
    """The server's COPY data is complete."""


@dataclass(frozen=True, slots=True)
class FunctionCallResponse:
    """The result of a FunctionCall; ``None`` for NULL."""

    value: bytes | None


@dataclass(frozen=True, slots=True)
class NegotiateProtocolVersion:
    """The server supports an older minor version and/or not all requested ``_pq_`` options.

    ``newest_minor_version`` is the Int32 as sent: servers put the whole version number
    there (``major << 16 | minor``, e.g. ``0x00030000`` for 3.0), not the bare minor.
    """

    newest_minor_version: int
    unrecognized_options: tuple[str, ...]


#: A parsed backend message. DataRow is delivered as its raw payload (``bytes``).
BackendMessage: TypeAlias = (
    AuthenticationOk
    | AuthenticationKerberosV5
    | AuthenticationCleartextPassword
    | AuthenticationMD5Password
    | AuthenticationGSS
    | AuthenticationGSSContinue
    | AuthenticationSSPI
    | AuthenticationSASL
    | AuthenticationSASLContinue
    | AuthenticationSASLFinal
    | BackendKeyData
    | ParameterStatus
    | ReadyForQuery
    | RowDescription
    | bytes
    | CommandComplete
    | EmptyQueryResponse
    | ErrorResponse
    | NoticeResponse
    | NotificationResponse
    | ParseComplete
    | BindComplete
    | CloseComplete
    | NoData
    | ParameterDescription
    | PortalSuspended
    | CopyInResponse
    | CopyOutResponse
    | CopyBothResponse
    | CopyData
    | CopyDone
    | FunctionCallResponse
    | NegotiateProtocolVersion
)

# --- parsing helpers ----------------------------------------------------------------

_I32: Final = struct.Struct("!i")
_U32: Final = struct.Struct("!I")
_I16: Final = struct.Struct("!h")
_COLUMN_TAIL: Final = struct.Struct("!IhIhih")


def _bad(type_byte: bytes, why: str) -> ProtocolError:
    return ProtocolError(f"malformed {_NAMES.get(type_byte, repr(type_byte))} message: {why}")


class _Reader:
    """A cursor over one message payload that raises ProtocolError on any overrun."""

    __slots__ = ("data", "pos", "type_byte")

    def __init__(self, type_byte: bytes, data: bytes) -> None:
        self.type_byte = type_byte
        self.data = data
        self.pos = 0

    def fail(self, why: str) -> ProtocolError:
        return _bad(self.type_byte, why)

    def unpack(self, st: struct.Struct) -> tuple[int, ...]:
        if self.pos + st.size > len(self.data):
            raise self.fail("message is truncated")
        values = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return values

    def int32(self) -> int:
        return self.unpack(_I32)[0]

    def uint32(self) -> int:
        return self.unpack(_U32)[0]

    def int16(self) -> int:
        return self.unpack(_I16)[0]

    def byte(self) -> bytes:
        if self.pos >= len(self.data):
            raise self.fail("message is truncated")
        b = self.data[self.pos : self.pos + 1]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("message is truncated")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def rest(self) -> bytes:
        b = self.data[self.pos :]
        self.pos = len(self.data)
        return b

    def cstring(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise self.fail("string is not NUL-terminated")
        s = self.data[self.pos : end].decode("utf-8", "replace")
        self.pos = end + 1
        return s

    def done(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")


def _empty(cls: Callable[[], object]) -> Callable[[_Reader], object]:
    instance = cls()

    def parse(r: _Reader) -> object:
        r.done()
        return instance

    return parse


def _parse_sasl_mechanisms(r: _Reader) -> object:
    mechanisms = []
    while name := r.cstring():
        mechanisms.append(name)
    return AuthenticationSASL(tuple(mechanisms))


# Authentication request codes (protocol-message-formats.html, "Authentication*").
_AUTH_PARSERS: Final[dict[int, Callable[[_Reader], object]]] = {
    0: lambda r: AuthenticationOk(),
    2: lambda r: AuthenticationKerberosV5(),
    3: lambda r: AuthenticationCleartextPassword(),
    5: lambda r: AuthenticationMD5Password(r.take(4)),
    7: lambda r: AuthenticationGSS(),
    8: lambda r: AuthenticationGSSContinue(r.rest()),
    9: lambda r: AuthenticationSSPI(),
    10: _parse_sasl_mechanisms,
    11: lambda r: AuthenticationSASLContinue(r.rest()),
    12: lambda r: AuthenticationSASLFinal(r.rest()),
}


def _parse_authentication(r: _Reader) -> object:
    code = r.int32()
    parser = _AUTH_PARSERS.get(code)
    if parser is None:
        raise r.fail(f"unknown authentication request code {code}")
    result = parser(r)
    r.done()
    return result


def _parse_backend_key_data(r: _Reader) -> object:
    pid = r.uint32()
    key = r.rest()
    # 3.0 keys are 4 bytes; 3.2 allows up to 256 (protocol-message-formats.html).
    if not 4 <= len(key) <= 256:
        raise r.fail(f"secret key must be 4 to 256 bytes, got {len(key)}")
    return BackendKeyData(pid, key)


def _parse_parameter_status(r: _Reader) -> object:
    name = r.cstring()
    value = r.cstring()
    r.done()
    return ParameterStatus(name, value)


_STATUS_BY_BYTE: Final = {s.value.encode(): s for s in TransactionStatus}


def _parse_ready_for_query(r: _Reader) -> object:
    status = _STATUS_BY_BYTE.get(r.byte())
    if status is None:
        raise r.fail("unknown transaction status")
    r.done()
    return ReadyForQuery(status)


def _parse_row_description(r: _Reader) -> object:
    n = r.int16()
    if n < 0:
        raise r.fail("negative field count")
    columns = []
    for _ in range(n):
        name = r.cstring()
        table_oid, attnum, type_oid, size, typmod, fmt = r.unpack(_COLUMN_TAIL)
        columns.append(Column(name, table_oid, attnum, type_oid, size, typmod, fmt))
    r.done()
    return RowDescription(tuple(columns))


def _parse_data_row(r: _Reader) -> object:
    # Validate the layout once; the raw payload is what callers get.
    split_data_row(r.data)
    return r.data


def _parse_command_complete(r: _Reader) -> object:
    tag = r.cstring()
    r.done()
    return CommandComplete(tag)


def _parse_fields(r: _Reader) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        code = r.byte()
        if code == b"\x00":
            break
        fields[code.decode("latin-1")] = r.cstring()
    r.done()
    return fields


def _parse_error_response(r: _Reader) -> object:
    return ErrorResponse(_parse_fields(r))


def _parse_notice_response(r: _Reader) -> object:
    return NoticeResponse(_parse_fields(r))


def _parse_notification_response(r: _Reader) -> object:
    pid = r.uint32()
    channel = r.cstring()
    payload = r.cstring()
    r.done()
    return NotificationResponse(pid, channel, payload)


def _parse_parameter_description(r: _Reader) -> object:
    n = r.int16()
    if n < 0:
        # Int16 on the wire, but a statement may have up to 65,535 parameters: read unsigned.
        n += 0x10000
    oids = r.unpack(struct.Struct(f"!{n}I")) if n else ()
    r.done()
    return ParameterDescription(tuple(oids))


def _copy_response(cls: type[CopyInResponse | CopyOutResponse | CopyBothResponse]) -> Callable[
    [_Reader], object
]:
    def parse(r: _Reader) -> object:
        overall = r.byte()[0]
        n = r.int16()
        if n < 0:
            raise r.fail("negative column count")
        formats = r.unpack(struct.Struct(f"!{n}h")) if n else ()
        r.done()
        return cls(overall, tuple(formats))

    return parse


def _parse_copy_data(r: _Reader) -> object:
    return CopyData(r.rest())


def _parse_function_call_response(r: _Reader) -> object:
    n = r.int32()
    value = None if n == -1 else r.take(n)
    r.done()
    return FunctionCallResponse(value)


def _parse_negotiate_protocol_version(r: _Reader) -> object:
    newest = r.int32()
    n = r.int32()
    if n < 0:
        raise r.fail("negative option count")
    options = tuple(r.cstring() for _ in range(n))
    r.done()
    return NegotiateProtocolVersion(newest, options)


_PARSERS: Final[dict[bytes, Callable[[_Reader], object]]] = {
    b"R": _parse_authentication,
    b"K": _parse_backend_key_data,
    b"S": _parse_parameter_status,
    b"Z": _parse_ready_for_query,
    b"T": _parse_row_description,
    b"D": _parse_data_row,
    b"C": _parse_command_complete,
    b"I": _empty(EmptyQueryResponse),
    b"E": _parse_error_response,
    b"N": _parse_notice_response,
    b"A": _parse_notification_response,
    b"1": _empty(ParseComplete),
    b"2": _empty(BindComplete),
    b"3": _empty(CloseComplete),
    b"n": _empty(NoData),
    b"t": _parse_parameter_description,
    b"s": _empty(PortalSuspended),
    b"G": _copy_response(CopyInResponse),
    b"H": _copy_response(CopyOutResponse),
    b"W": _copy_response(CopyBothResponse),
    b"d": _parse_copy_data,
    b"c": _empty(CopyDone),
    b"V": _parse_function_call_response,
    b"v": _parse_negotiate_protocol_version,
}

_NAMES: Final = {
    b"R": "Authentication",
    b"K": "BackendKeyData",
    b"S": "ParameterStatus",
    b"Z": "ReadyForQuery",
    b"T": "RowDescription",
    b"D": "DataRow",
    b"C": "CommandComplete",
    b"I": "EmptyQueryResponse",
    b"E": "ErrorResponse",
    b"N": "NoticeResponse",
    b"A": "NotificationResponse",
    b"1": "ParseComplete",
    b"2": "BindComplete",
    b"3": "CloseComplete",
    b"n": "NoData",
    b"t": "ParameterDescription",
    b"s": "PortalSuspended",
    b"G": "CopyInResponse",
    b"H": "CopyOutResponse",
    b"W": "CopyBothResponse",
    b"d": "CopyData",
    b"c": "CopyDone",
    b"V": "FunctionCallResponse",
    b"v": "NegotiateProtocolVersion",
}


def parse_message(type_byte: bytes, payload: bytes) -> BackendMessage:
    """Parse one backend message body.

    Args:
        type_byte: The message's one-byte type code.
        payload: The body, without type byte and length.

    Returns:
        The message value; for DataRow (``b"D"``) the validated raw payload.

    Raises:
        ProtocolError: Unknown type byte or malformed body.
    """
    parser = _PARSERS.get(type_byte)
    if parser is None:
        raise ProtocolError(f"unknown backend message type {type_byte!r}")
    return parser(_Reader(type_byte, payload))  # type: ignore[return-value]


def split_data_row(payload: bytes) -> list[bytes | None]:
    """Split a DataRow payload into its column values (``None`` for NULL).

    Raises:
        ProtocolError: The payload's lengths do not add up.
    """
    if len(payload) < 2:
        raise _bad(b"D", "message is truncated")
    (n,) = _I16.unpack_from(payload, 0)
    pos = 2
    end = len(payload)
    out: list[bytes | None] = []
    unpack = _I32.unpack_from
    for _ in range(n):
        if pos + 4 > end:
            raise _bad(b"D", "message is truncated")
        (size,) = unpack(payload, pos)
        pos += 4
        if size < 0:
            if size != -1:
                raise _bad(b"D", f"invalid column length {size}")
            out.append(None)
            continue
        if pos + size > end:
            raise _bad(b"D", "column value overruns the message")
        out.append(payload[pos : pos + size])
        pos += size
    if pos != end or n < 0:
        raise _bad(b"D", "column lengths do not add up to the message length")
    return out
