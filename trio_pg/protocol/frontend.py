"""Encoders for every frontend (client → server) message.

Each function returns the complete message as ``bytes``: type byte, ``Int32`` length
(which counts itself but not the type byte) and body, exactly as
``protocol-message-formats.html`` lays them out. The startup-phase messages
(StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no type byte.

Strings in the protocol are NUL-terminated, so a string that contains ``\\x00`` cannot be
sent: :class:`~trio_pg.errors.InterfaceError` is raised before any byte is produced.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

from trio_pg.errors import InterfaceError

__all__ = [
    "CANCEL_REQUEST_CODE",
    "GSSENC_REQUEST_CODE",
    "MAX_PARAMETERS",
    "SSL_REQUEST_CODE",
    "bind",
    "bind_parts",
    "cancel_request",
    "close",
    "copy_data",
    "copy_done",
    "copy_fail",
    "cstring",
    "describe",
    "execute",
    "flush",
    "function_call",
    "gssenc_request",
    "parse",
    "password_message",
    "protocol_version_code",
    "query",
    "sasl_initial_response",
    "sasl_response",
    "ssl_request",
    "startup_message",
    "sync",
    "terminate",
]

#: Magic protocol numbers of the untyped startup-phase requests
#: (protocol-message-formats.html).
SSL_REQUEST_CODE: Final = 80877103
GSSENC_REQUEST_CODE: Final = 80877104
CANCEL_REQUEST_CODE: Final = 80877102

#: Bind carries parameter counts as Int16: at most 65,535 parameters per statement.
MAX_PARAMETERS: Final = 0xFFFF

_I32: Final = struct.Struct("!i")
_I16: Final = struct.Struct("!h")
_H16: Final = struct.Struct("!H")
_TYPE_LEN: Final = struct.Struct("!ci")
_NULL_PARAM: Final = b"\xff\xff\xff\xff"

# Messages without a body are constant: build them once.
_SYNC: Final = b"S\x00\x00\x00\x04"
_FLUSH: Final = b"H\x00\x00\x00\x04"
_TERMINATE: Final = b"X\x00\x00\x00\x04"
_COPY_DONE: Final = b"c\x00\x00\x00\x04"


def cstring(value: str, what: str = "string") -> bytes:
    """Encode ``value`` as a NUL-terminated UTF-8 protocol string.

    Raises:
        InterfaceError: ``value`` contains a NUL character, which the protocol cannot carry,
            or a lone surrogate, which UTF-8 cannot encode.
    """
    if "\x00" in value:
        raise InterfaceError(
            f"{what} cannot contain NUL (\\x00) characters: the protocol ends strings at NUL"
        )
    try:
        return value.encode() + b"\x00"
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from surrogateescape
        raise InterfaceError(f"{what} is not valid Unicode: {exc}") from exc


def _message(type_byte: bytes, body: bytes) -> bytes:
    return _TYPE_LEN.pack(type_byte, len(body) + 4) + body


def protocol_version_code(version: tuple[int, int]) -> int:
    """The Int32 protocol version number: major in the high 16 bits, minor in the low."""
    major, minor = version
    return (major << 16) | minor


def startup_message(version: tuple[int, int], parameters: Mapping[str, str]) -> bytes:
    """StartupMessage: protocol version and ``name=value`` pairs (user is required).

    Names starting with ``_pq_.`` are protocol extensions; the server answers unknown
    ones with NegotiateProtocolVersion (protocol-flow.html#PROTOCOL-FLOW-START-UP).
    """
    parts = [_I32.pack(protocol_version_code(version))]
    for name, value in parameters.items():
        parts.append(cstring(name, "startup parameter name"))
        parts.append(cstring(value, f"startup parameter {name!r}"))
    parts.append(b"\x00")
    body = b"".join(parts)
    return _I32.pack(len(body) + 4) + body


def ssl_request() -> bytes:
    """SSLRequest: asks the server whether it will speak TLS on this connection."""
    return _I32.pack(8) + _I32.pack(SSL_REQUEST_CODE)


def gssenc_request() -> bytes:
    """GSSENCRequest. trio_pg never sends it (no GSSAPI); the format is here for completeness."""
    return _I32.pack(8) + _I32.pack(GSSENC_REQUEST_CODE)


def cancel_request(process_id: int, secret_key: bytes) -> bytes:
    """CancelRequest, sent on a new connection.

    The key is 4 bytes with protocol 3.0 and up to 256 bytes with protocol 3.2, whose
    BackendKeyData carries a variable-length key.
    """
    if not 4 <= len(secret_key) <= 256:
        raise InterfaceError(f"cancel key must be 4 to 256 bytes long, got {len(secret_key)}")
    body = _I32.pack(CANCEL_REQUEST_CODE) + struct.pack("!I", process_id) + secret_key
    return _I32.pack(len(body) + 4) + body


def password_message(password: str | bytes) -> bytes:
    """PasswordMessage: a cleartext password or an MD5 hash, NUL-terminated."""
    raw = password if isinstance(password, bytes) else cstring(password, "password")[:-1]
    if b"\x00" in raw:
        raise InterfaceError("password cannot contain NUL (\\x00) characters")
    return _message(b"p", raw + b"\x00")


def sasl_initial_response(mechanism: str, data: bytes | None) -> bytes:
    """SASLInitialResponse: the chosen mechanism and its client-first message."""
    body = cstring(mechanism, "SASL mechanism")
    body += _NULL_PARAM if data is None else _I32.pack(len(data)) + data
    return _message(b"p", body)


def sasl_response(data: bytes) -> bytes:
    """SASLResponse: a further SASL message (client-final for SCRAM)."""
    return _message(b"p", data)


def query(sql: str) -> bytes:
    """Query: the simple query protocol; may hold several statements."""
    return _message(b"Q", cstring(sql, "query text"))


def parse(name: str, sql: str, param_types: Sequence[int] = ()) -> bytes:
    """Parse: prepare ``sql`` as statement ``name`` ("" is the unnamed statement).

    ``param_types`` may be shorter than the statement's parameter list, and 0 leaves a
    type for the server to infer.
    """
    if len(param_types) > MAX_PARAMETERS:
        raise InterfaceError(
            f"a statement can have at most {MAX_PARAMETERS} parameters, got {len(param_types)}"
        )
    body = b"".join(
        (
            cstring(name, "statement name"),
            cstring(sql, "query text"),
            # Read as unsigned by the server, like Bind's counts: up to 65,535 types.
            _H16.pack(len(param_types)),
            struct.pack(f"!{len(param_types)}I", *param_types),
        )
    )
    return _message(b"P", body)


def bind_parts(
    portal: str,
    statement: str,
    count: int,
    param_formats: Sequence[int] = (),
    result_formats: Sequence[int] = (),
) -> tuple[bytes, bytes]:
    """The fixed parts of a Bind body: what comes before and after the parameter values.

    A Bind body is the first part, then ``count`` values (each an Int32 length and its
    bytes, or -1 for NULL), then the second part. Both depend only on the statement, so
    a statement executed many times builds them once.

    Raises:
        InterfaceError: More than 65,535 parameters.
    """
    if count > MAX_PARAMETERS:
        raise InterfaceError(
            f"a statement can have at most {MAX_PARAMETERS} parameters, got {count}"
        )
    head = b"".join(
        (
            cstring(portal, "portal name"),
            cstring(statement, "statement name"),
            _H16.pack(len(param_formats)),
            struct.pack(f"!{len(param_formats)}h", *param_formats),
            _H16.pack(count),
        )
    )
    tail = _H16.pack(len(result_formats)) + struct.pack(
        f"!{len(result_formats)}h", *result_formats
    )
    return head, tail


def bind(
    portal: str,
    statement: str,
    params: Sequence[bytes | None],
    param_formats: Sequence[int] = (),
    result_formats: Sequence[int] = (),
) -> bytes:
    """Bind: create ``portal`` from ``statement`` with already-encoded parameter values.

    Args:
        portal: Portal name ("" for the unnamed portal).
        statement: Prepared statement name ("" for the unnamed statement).
        params: Encoded values; ``None`` sends NULL.
        param_formats: Per-parameter format codes, one code for all, or none (text).
        result_formats: Per-column result format codes, one for all, or none (text).

    Raises:
        InterfaceError: More than 65,535 parameters.
    """
    head, tail = bind_parts(portal, statement, len(params), param_formats, result_formats)
    parts = [head]
    append = parts.append
    pack = _I32.pack
    for value in params:
        if value is None:
            append(_NULL_PARAM)
        else:
            append(pack(len(value)))
            append(value)
    append(tail)
    return _message(b"B", b"".join(parts))


def describe(kind: str, name: str) -> bytes:
    """Describe a prepared statement (``kind="S"``) or a portal (``kind="P"``)."""
    if kind not in ("S", "P"):
        raise ValueError("describe kind must be 'S' (statement) or 'P' (portal)")
    return _message(b"D", kind.encode() + cstring(name, "statement or portal name"))


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    """Execute ``portal``; ``max_rows`` > 0 suspends it after that many rows."""
    return _message(b"E", cstring(portal, "portal name") + _I32.pack(max_rows))


def close(kind: str, name: str) -> bytes:
    """Close a prepared statement (``kind="S"``) or a portal (``kind="P"``)."""
    if kind not in ("S", "P"):
        raise ValueError("close kind must be 'S' (statement) or 'P' (portal)")
    return _message(b"C", kind.encode() + cstring(name, "statement or portal name"))


def sync() -> bytes:
    """Sync: ends an extended-query unit; the server answers ReadyForQuery."""
    return _SYNC


def flush() -> bytes:
    """Flush: asks the server to send what it has buffered, without ending the unit."""
    return _FLUSH


def function_call(
    function_oid: int,
    args: Sequence[bytes | None],
    arg_formats: Sequence[int] = (),
    result_format: int = 0,
) -> bytes:
    """FunctionCall: the fast-path call (protocol-flow.html#PROTOCOL-FLOW-FUNCTION-CALL)."""
    if len(args) > MAX_PARAMETERS:
        raise InterfaceError(f"a function call can have at most {MAX_PARAMETERS} arguments")
    parts = [
        struct.pack("!I", function_oid),
        _H16.pack(len(arg_formats)),
        struct.pack(f"!{len(arg_formats)}h", *arg_formats),
        _H16.pack(len(args)),
    ]
    for value in args:
        if value is None:
            parts.append(_NULL_PARAM)
        else:
            parts.append(_I32.pack(len(value)))
            parts.append(value)
    parts.append(_I16.pack(result_format))
    return _message(b"F", b"".join(parts))


def copy_data(data: bytes) -> bytes:
    """CopyData: one chunk of COPY FROM STDIN data."""
    return _message(b"d", data)


def copy_done() -> bytes:
    """CopyDone: the COPY FROM STDIN data is complete."""
    return _COPY_DONE


def copy_fail(reason: str) -> bytes:
    """CopyFail: abort COPY FROM STDIN; the server answers with an ErrorResponse."""
    return _message(b"f", cstring(reason.replace("\x00", " "), "CopyFail reason"))


def terminate() -> bytes:
    """Terminate: a graceful goodbye before closing the socket."""
    return _TERMINATE
