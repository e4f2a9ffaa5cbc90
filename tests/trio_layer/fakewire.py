"""Wire format for the fake server: backend encoders, frontend readers, byte streams.

Written from protocol-message-formats.html, independently of ``trio_pg.protocol``, so the
Trio-layer tests never check the client against its own parsers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

# Type OIDs (pg_type.dat) the fake knows how to encode.
BOOL: Final = 16
INT8: Final = 20
INT2: Final = 21
INT4: Final = 23
TEXT: Final = 25
OID: Final = 26

_BINARY_INTS: Final = {INT2: "!h", INT4: "!i", INT8: "!q", OID: "!I"}
#: Frontend messages that continue a request instead of starting one (COPY IN data).
CONTINUATIONS: Final = frozenset((b"d", b"c", b"f", b"X"))

# -- backend message encoders (protocol-message-formats.html) --------------------------


def message(type_byte: bytes, body: bytes = b"") -> bytes:
    """Byte1 type, Int32 length counting itself, body."""
    return type_byte + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def auth_ok() -> bytes:
    return message(b"R", struct.pack("!i", 0))


def negotiate_protocol_version(version: tuple[int, int]) -> bytes:
    """NegotiateProtocolVersion with the server's newest version, no unknown options."""
    return message(b"v", struct.pack("!ii", version[0] << 16 | version[1], 0))


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key_data(pid: int, key: bytes) -> bytes:
    return message(b"K", struct.pack("!I", pid) + key)


def ready_for_query(status: str = "I") -> bytes:
    return message(b"Z", status.encode())


def parse_complete() -> bytes:
    return message(b"1")


def bind_complete() -> bytes:
    return message(b"2")


def close_complete() -> bytes:
    return message(b"3")


def no_data() -> bytes:
    return message(b"n")


def empty_query_response() -> bytes:
    return message(b"I")


def parameter_description(oids: Sequence[int]) -> bytes:
    return message(b"t", struct.pack(f"!h{len(oids)}I", len(oids), *oids))


def row_description(columns: Sequence[tuple[str, int]], formats: Sequence[int] = ()) -> bytes:
    """``columns`` as ``(name, type OID)``; ``formats`` one per column (text if absent)."""
    body = struct.pack("!h", len(columns))
    for i, (name, oid) in enumerate(columns):
        fmt = formats[i] if i < len(formats) else 0
        body += cstr(name) + struct.pack("!IhIhih", 0, 0, oid, -1, -1, fmt)
    return message(b"T", body)


def data_row(values: Sequence[bytes | None]) -> bytes:
    body = struct.pack("!h", len(values))
    for value in values:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return message(b"D", body)


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def _fields(severity: str, sqlstate: str, text: str, extra: Mapping[str, str]) -> bytes:
    parts = [b"S" + cstr(severity), b"V" + cstr(severity), b"C" + cstr(sqlstate)]
    parts.append(b"M" + cstr(text))
    parts.extend(code.encode() + cstr(value) for code, value in extra.items())
    return b"".join(parts) + b"\x00"


def error_response(sqlstate: str, text: str, severity: str = "ERROR", **extra: str) -> bytes:
    """ErrorResponse; ``extra`` maps one-letter field codes (``D``, ``H``...) to values."""
    return message(b"E", _fields(severity, sqlstate, text, extra))


def notice_response(text: str, severity: str = "NOTICE", sqlstate: str = "00000") -> bytes:
    return message(b"N", _fields(severity, sqlstate, text, {}))


def notification_response(pid: int, channel: str, payload: str) -> bytes:
    return message(b"A", struct.pack("!I", pid) + cstr(channel) + cstr(payload))


def cancel_error() -> bytes:
    """What PostgreSQL reports for a statement stopped by a CancelRequest."""
    return error_response("57014", "canceling statement due to user request")


def encode_value(value: object, oid: int, fmt: int) -> bytes | None:
    """A Python value as the server would send it for ``oid`` in format ``fmt``."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return (b"\x01" if value else b"\x00") if fmt else (b"t" if value else b"f")
    if isinstance(value, int):
        return struct.pack(_BINARY_INTS[oid], value) if fmt else str(value).encode()
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"the fake server cannot encode {value!r}")


# -- frontend messages -------------------------------------------------------------------


class _Fields:
    """Reads the fields of one frontend message body in order."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._pos = 0

    def cstring(self) -> str:
        end = self._body.index(b"\x00", self._pos)
        text = self._body[self._pos : end].decode()
        self._pos = end + 1
        return text

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self._body, self._pos)
        self._pos += struct.calcsize(fmt)
        return values

    def int16s(self) -> tuple[int, ...]:
        (n,) = self.unpack("!h")
        return self.unpack(f"!{n}h")

    def values(self) -> list[bytes | None]:
        (n,) = self.unpack("!h")
        out: list[bytes | None] = []
        for _ in range(n):
            (size,) = self.unpack("!i")
            if size < 0:
                out.append(None)
            else:
                out.append(self._body[self._pos : self._pos + size])
                self._pos += size
        return out


@dataclass(frozen=True, slots=True)
class FrontendMessage:
    """One message the client sent: its type byte and body."""

    type: bytes
    body: bytes

    @property
    def sql(self) -> str:
        """The SQL of a Query or Parse message."""
        r = _Fields(self.body)
        if self.type == b"P":
            r.cstring()
        return r.cstring()

    @property
    def name(self) -> str:
        """The statement name of Parse, the portal of Bind/Execute, the name in Describe/Close."""
        if self.type in (b"D", b"C"):
            return _Fields(self.body[1:]).cstring()
        return _Fields(self.body).cstring()

    def parse(self) -> tuple[str, str, tuple[int, ...]]:
        """Parse: statement name, SQL, declared parameter type OIDs."""
        r = _Fields(self.body)
        name, sql = r.cstring(), r.cstring()
        (n,) = r.unpack("!h")
        return name, sql, r.unpack(f"!{n}I")

    def bind(self) -> tuple[str, str, list[bytes | None], tuple[int, ...]]:
        """Bind: portal, statement, parameter values, result format codes."""
        r = _Fields(self.body)
        portal, statement = r.cstring(), r.cstring()
        r.int16s()
        values = r.values()
        return portal, statement, values, r.int16s()


# -- streams ------------------------------------------------------------------------


class TappedStream(trio.abc.Stream):
    """A client's end of an in-memory connection that reports each request it writes.

    ``on_request`` is called when the client hands over the first message of a request
    (a Sync group or a simple Query), before the bytes can reach the server.
    """

    def __init__(self, inner: trio.abc.Stream, on_request: Callable[[], None]) -> None:
        self._inner = inner
        self._on_request = on_request
        self._pending = bytearray()
        self._in_group = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data
        while len(self._pending) >= 5:
            (length,) = struct.unpack_from("!i", self._pending, 1)
            if len(self._pending) < length + 1:
                break
            kind = bytes(self._pending[:1])
            del self._pending[: length + 1]
            if not self._in_group and kind not in CONTINUATIONS:
                self._on_request()
                self._in_group = True
            if kind in (b"S", b"Q"):
                self._in_group = False
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ByteReader:
    """Exact-size reads over a stream, keeping what arrived beyond them."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self.buffer += data
        return bool(data)

    async def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not await self.fill():
                raise EOFError
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data
