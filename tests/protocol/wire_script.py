"""A scripted PostgreSQL server for the sans-I/O tests: backend messages as bytes.

These builders are written from protocol-message-formats.html, independently of
``trio_pg.protocol.frontend``/``backend``, so the tests never check the core against itself.
"""

from __future__ import annotations

import struct

from trio_pg.protocol import (
    NEED_DATA,
    ClientConnection,
    Event,
    StartupComplete,
    StartupOptions,
)


def message(type_byte: bytes, body: bytes = b"") -> bytes:
    """Byte1 type, Int32 length counting itself, body."""
    return type_byte + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def auth(code: int, extra: bytes = b"") -> bytes:
    return message(b"R", struct.pack("!i", code) + extra)


def auth_ok() -> bytes:
    return auth(0)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key(pid: int, key: bytes) -> bytes:
    return message(b"K", struct.pack("!I", pid) + key)


def ready(status: str = "I") -> bytes:
    return message(b"Z", status.encode())


def row_description(*names: str) -> bytes:
    """Text columns of type text (OID 25)."""
    body = struct.pack("!h", len(names))
    for name in names:
        body += cstr(name) + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
    return message(b"T", body)


def data_row_body(*values: bytes | None) -> bytes:
    body = struct.pack("!h", len(values))
    for value in values:
        body += b"\xff\xff\xff\xff" if value is None else struct.pack("!i", len(value)) + value
    return body


def data_row(*values: bytes | None) -> bytes:
    return message(b"D", data_row_body(*values))


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def fields_body(fields: dict[str, str]) -> bytes:
    return b"".join(code.encode() + cstr(value) for code, value in fields.items()) + b"\x00"


def error(sqlstate: str = "42601", message_text: str = "boom", severity: str = "ERROR") -> bytes:
    fields = {"S": severity, "V": severity, "C": sqlstate, "M": message_text}
    return message(b"E", fields_body(fields))


def notice(message_text: str = "note") -> bytes:
    fields = {"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": message_text}
    return message(b"N", fields_body(fields))


def notification(pid: int, channel: str, payload: str) -> bytes:
    return message(b"A", struct.pack("!I", pid) + cstr(channel) + cstr(payload))


def copy_in_response(columns: int = 1) -> bytes:
    return message(b"G", b"\x00" + struct.pack("!h", columns) + b"\x00\x00" * columns)


def copy_both_response() -> bytes:
    return message(b"W", b"\x00\x00\x00")


def negotiate_protocol_version(version_code: int, *options: str) -> bytes:
    body = struct.pack("!ii", version_code, len(options)) + b"".join(cstr(o) for o in options)
    return message(b"v", body)


def simple_result(tag: str = "SELECT 1", status: str = "I") -> bytes:
    """What a one-row ``SELECT`` sent with Query returns."""
    return (
        row_description("x") + data_row(b"1") + command_complete(tag) + ready(status)
    )


STARTUP_SCRIPT: bytes = (
    auth_ok()
    + parameter_status("server_version", "17.2 (Debian 17.2-1)")
    + parameter_status("client_encoding", "UTF8")
    + backend_key(4242, b"\x01\x02\x03\x04")
    + ready("I")
)


def ready_connection(**kwargs: int) -> ClientConnection:
    """A ClientConnection taken to READY by a scripted trust startup."""
    conn = ClientConnection(**kwargs)
    conn.start(StartupOptions(user="alice", parameters={"database": "app"}))
    conn.data_to_send()
    conn.receive_data(STARTUP_SCRIPT)
    event = conn.next_event()
    assert isinstance(event, StartupComplete), event
    return conn


def drain(conn: ClientConnection, limit: int = 10_000) -> list[Event]:
    """Every event until NEED_DATA (the limit catches a machine that never stops)."""
    events: list[Event] = []
    for _ in range(limit):
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
    raise AssertionError("next_event() never returned NEED_DATA")
