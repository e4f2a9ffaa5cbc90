"""A scripted PostgreSQL server for Trio-layer tests (no PostgreSQL needed).

Theory of operation
-------------------
:class:`FakeServer` takes connections on a loopback TCP listener (tests then go through
``trio_pg.open_connection``, see :meth:`FakeServer.connect_kwargs`) or on in-memory
streams (:func:`open_memory_connection`, for tests under a mock clock). The first packet
of a connection says what it is (protocol-message-formats.html):

* a StartupMessage starts a :class:`FakeSession`: trust authentication
  (AuthenticationOk), ParameterStatus, BackendKeyData, ReadyForQuery, after a
  NegotiateProtocolVersion when the client asks for a newer minor version than the
  server's ``protocol`` (protocol-flow.html#PROTOCOL-FLOW-START-UP). Then the server's
  *script* runs with the session; the default script, :meth:`FakeSession.serve`, answers
  every Sync group or Query from the table of :class:`FakeQuery` the server was given;
* a CancelRequest is recorded (:class:`CancelRecord`), checked against the sessions'
  keys, interrupts the session it names, and its connection is closed, as PostgreSQL does
  (protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS);
* an SSLRequest or GSSENCRequest is declined with ``N``.

Each session has a pump task that reads frontend messages as they arrive and checks them
against what the server has done by then: the client's cancellation discipline. Requests
are counted as Sync groups (a simple Query is a group of its own). When a cancel
connection opens, at most ``max_groups_per_cancel`` groups may be outstanding, and no
group sent after it may start before the cancel connection was closed and ReadyForQuery
was sent for every group sent before it. In memory the fake knows exactly what the client
had written when it opened the cancel connection (:class:`~fakewire.TappedStream`); over
TCP it knows what had arrived, and takes one request arriving while the cancel connection
is still open to be the cancelled one, late. To give a client that breaks these rules
every chance to show it, the fake closes a cancel connection, and answers a cancelled
request, only once every other task is blocked. Breaches are collected in
:attr:`FakeServer.violations`; :func:`open_fake_server` fails the test with them.

Backend messages are built by the encoders of ``fakewire.py``, written from
protocol-message-formats.html and independent of ``trio_pg.protocol``; what the default
script answers is in ``fakequeries.py``.
"""

from __future__ import annotations

import math
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import pytest
import trio
import trio.testing

import trio_pg
from tests.trio_layer.fakequeries import FakeQuery, Portal, QueryResponder
from tests.trio_layer.fakewire import (
    CONTINUATIONS,
    ByteReader,
    FrontendMessage,
    TappedStream,
    auth_ok,
    backend_key_data,
    negotiate_protocol_version,
    parameter_status,
    ready_for_query,
)
from trio_pg.codecs import CodecRegistry
from trio_pg.connect import _run_startup
from trio_pg.conninfo import make_params
from trio_pg.protocol import DEFAULT_MAX_MESSAGE_SIZE, ClientConnection, StartupOptions

_SSL_REQUEST: Final = 80877103
_GSSENC_REQUEST: Final = 80877104
_CANCEL_REQUEST: Final = 80877102
_TIMEOUT_KWARGS: Final = {"connect_timeout": 10}


@dataclass(frozen=True, slots=True)
class CancelRecord:
    """A CancelRequest the server received.

    Attributes:
        pid: The process ID it named.
        key: The secret key it carried.
        outstanding: Sync groups of that session the client had sent (over TCP: that had
            arrived) and the server not yet answered with ReadyForQuery when the cancel
            connection opened.
        matched: It named a session with exactly that key.
        interrupted: It arrived while the session had a request outstanding, which it
            then stopped (unless the server ignores cancels).
    """

    pid: int
    key: bytes
    outstanding: int
    matched: bool
    interrupted: bool


# -- the server ---------------------------------------------------------------------------

Script = Callable[["FakeSession"], Awaitable[None]]


class FakeServer:
    """A scripted PostgreSQL server; see the module docstring.

    Args:
        queries: What the default script answers.
        script: Runs with each session after startup; :meth:`FakeSession.serve` by default.
        protocol: The newest protocol version the server speaks: ``(3, 0)`` (4-byte
            cancel key) or ``(3, 2)`` (32-byte key).
        ignore_cancel: CancelRequests are recorded and their connection closed, but
            nothing they name is interrupted.
        max_groups_per_cancel: Sync groups that may be outstanding when a CancelRequest
            arrives (1: a cancel can never reach a second request).
    """

    def __init__(
        self,
        *,
        queries: Sequence[FakeQuery] = (),
        script: Script | None = None,
        protocol: tuple[int, int] = (3, 0),
        ignore_cancel: bool = False,
        max_groups_per_cancel: int = 1,
    ) -> None:
        self.queries = {q.sql: q for q in queries}
        self.script: Script = script or FakeSession.serve
        self.protocol = protocol
        self.ignore_cancel = ignore_cancel
        self.max_groups_per_cancel = max_groups_per_cancel
        self.parameters = {
            "server_version": "18.0 (trio_pg fake)",
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "TimeZone": "UTC",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
            "application_name": "",
        }
        self.sessions: list[FakeSession] = []
        self.cancels: list[CancelRecord] = []
        self.violations: list[str] = []
        self.port = 0
        self._next_pid = 4242
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    # -- for tests --------------------------------------------------------------------

    def connect_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ``trio_pg.open_connection`` that reach this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": "fake",
            "dbname": "fake",
            "sslmode": "disable",
            **_TIMEOUT_KWARGS,
            **extra,
        }

    def count(self, type_byte: bytes) -> int:
        """How many frontend messages of this type all sessions received."""
        return sum(1 for s in self.sessions for m in s.received if m.type == type_byte)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; re-checked whenever the server sees something."""
        while not predicate():
            await self._changed.wait()

    async def session(self, index: int = 0) -> FakeSession:
        """The ``index``-th session, once it has finished startup."""
        await self.wait_until(lambda: len(self.sessions) > index)
        return self.sessions[index]

    def check(self) -> None:
        """Fail if the client broke a rule the fake checks."""
        if self.violations:
            raise AssertionError("fake server saw: " + "; ".join(self.violations))

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _violation(self, text: str) -> None:
        self.violations.append(text)
        self._poke()

    # -- connections ------------------------------------------------------------------

    async def handle_connection(
        self, stream: trio.abc.Stream, *, cancel_for: FakeSession | None = None
    ) -> None:
        """Serve one client connection (TCP or in-memory) from its first packet on.

        ``cancel_for``: the connection is an in-memory cancel connection that session's
        client opened (:meth:`open_memory_cancel_stream`), already counted as open.
        """
        reader = ByteReader(stream)
        open_for = cancel_for
        try:
            async with stream:
                while True:
                    (length,) = struct.unpack("!i", await reader.read(4))
                    packet = await reader.read(length - 4)
                    (code,) = struct.unpack_from("!i", packet)
                    if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                        await stream.send_all(b"N")
                        continue
                    if code == _CANCEL_REQUEST:
                        session = self._on_cancel(packet, cancel_for)
                        # Let the client run before closing: one that writes before the
                        # cancel connection ends is caught writing while it is open.
                        await trio.testing.wait_all_tasks_blocked()
                        # Closed from here on: the client may write again once it sees EOF.
                        if open_for is not None:
                            open_for._cancel_closed()
                            open_for = None
                        if session is not None and cancel_for is None:
                            session._cancel_closed()
                        self._poke()
                        return
                    await self._run_session(stream, reader, packet)
                    return
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if open_for is not None:
                open_for._cancel_closed()
                self._poke()

    def _on_cancel(self, packet: bytes, opened_for: FakeSession | None) -> FakeSession | None:
        """Record and check a CancelRequest; interrupt the session it names."""
        (pid,) = struct.unpack_from("!I", packet, 4)
        key = packet[8:]
        session = next((s for s in self.sessions if s.pid == pid), None)
        matched = session is not None and session.secret_key == key
        if session is not None and opened_for is None:
            # Over TCP the fake learns of the cancel only now; what the client wrote
            # before it may still be in flight (see FakeSession._cancel_opened).
            session._cancel_opened()
        outstanding = session.outstanding_at_cancel if session is not None else 0
        if session is None or not matched or (opened_for not in (None, session)):
            self.cancels.append(CancelRecord(pid, key, outstanding, matched, False))
            self._violation(f"CancelRequest with unknown pid {pid} or wrong key {key.hex()}")
            return None
        interrupts = not self.ignore_cancel and session.outstanding > 0
        self.cancels.append(CancelRecord(pid, key, outstanding, matched, interrupts))
        if outstanding > self.max_groups_per_cancel:
            self._violation(
                f"CancelRequest sent with {outstanding} requests outstanding; it could "
                "cancel one the client did not abandon"
            )
        if interrupts:
            session._interrupt.set()
        self._poke()
        return session

    async def _run_session(
        self, stream: trio.abc.Stream, reader: ByteReader, packet: bytes
    ) -> None:
        (code,) = struct.unpack_from("!i", packet)
        asked = (code >> 16, code & 0xFFFF)
        items = packet[4:].split(b"\x00")
        startup = {
            k.decode(): v.decode() for k, v in zip(items[0:-2:2], items[1:-2:2], strict=True)
        }
        version = min(asked, self.protocol)
        pid = self._next_pid
        self._next_pid += 1
        key = bytes((pid + i) % 256 for i in range(32 if version >= (3, 2) else 4))
        session = FakeSession(self, stream, reader, pid, key, version, startup)
        out = [negotiate_protocol_version(self.protocol)] if asked > self.protocol else []
        out.append(auth_ok())
        params = {**self.parameters, "application_name": startup.get("application_name", "")}
        out.extend(parameter_status(k, v) for k, v in params.items())
        out += [backend_key_data(pid, key), ready_for_query()]
        self.sessions.append(session)
        self._poke()
        await stream.send_all(b"".join(out))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session._pump)
            await self.script(session)
            nursery.cancel_scope.cancel()

    async def open_memory_cancel_stream(self, session: FakeSession) -> trio.abc.Stream:
        """An in-memory cancel connection for ``session``'s client, open from now on."""
        assert self._nursery is not None
        await trio.lowlevel.checkpoint()
        session._cancel_opened()
        client, server = trio.testing.memory_stream_pair()
        self._nursery.start_soon(partial(self.handle_connection, server, cancel_for=session))
        return client


class FakeSession(QueryResponder):
    """One client session on the fake server.

    Scripts read with :meth:`receive`, :meth:`expect` and :meth:`receive_group`, and
    answer with :meth:`send` (or let :meth:`answer`/:meth:`respond` do it from the
    server's :class:`FakeQuery` table). ``status`` is the transaction status the next
    ReadyForQuery sent by :meth:`answer` reports.
    """

    def __init__(
        self,
        server: FakeServer,
        stream: trio.abc.Stream,
        reader: ByteReader,
        pid: int,
        secret_key: bytes,
        protocol_version: tuple[int, int],
        startup_parameters: dict[str, str],
    ) -> None:
        self.server = server
        self.stream = stream
        self.pid = pid
        self.secret_key = secret_key
        self.protocol_version = protocol_version
        self.startup_parameters = startup_parameters
        self.status = "I"
        self.received: list[FrontendMessage] = []
        self.terminated = trio.Event()
        self.groups_started = 0
        self.rfq_sent = 0
        self._reader = reader
        self._in_group = False
        #: Sync groups the client has written (in memory only; see TappedStream).
        self.groups_written: int | None = None
        self.cancels_open = 0
        self.outstanding_at_cancel = 0
        self._hold_group = 0
        self._in_flight_allowed = False
        self._interrupt = trio.Event()
        self._statements: dict[str, FakeQuery] = {}
        self._portals: dict[str, Portal] = {}
        self._inbox_send, self._inbox = trio.open_memory_channel[FrontendMessage](math.inf)

    @property
    def outstanding(self) -> int:
        """Sync groups received and not yet answered with ReadyForQuery."""
        return self.groups_started - self.rfq_sent

    def named_statements(self) -> list[str]:
        """The prepared statements that exist in this session now (``""`` is the unnamed one)."""
        return list(self._statements)

    # -- receiving ------------------------------------------------------------------

    async def _pump(self) -> None:
        reader = self._reader
        try:
            while True:
                while len(reader.buffer) >= 5:
                    (length,) = struct.unpack_from("!i", reader.buffer, 1)
                    if length < 4:
                        self.server._violation(f"frontend message with length {length}")
                        return
                    if len(reader.buffer) < length + 1:
                        break
                    msg = FrontendMessage(
                        bytes(reader.buffer[:1]), bytes(reader.buffer[5 : length + 1])
                    )
                    del reader.buffer[: length + 1]
                    self._arrived(msg)
                if not await reader.fill():
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._inbox_send.close()
            self.server._poke()

    def _arrived(self, msg: FrontendMessage) -> None:
        if not self._in_group and msg.type not in CONTINUATIONS:
            # A new request: the write hold after a CancelRequest must be over.
            index = self.groups_started + 1
            if index > self._hold_group and self.cancels_open and self._in_flight_allowed:
                # Over TCP: the cancelled request, sent before the cancel, arriving late.
                self._in_flight_allowed = False
                self._hold_group = index
            elif index > self._hold_group:
                if self.cancels_open:
                    self.server._violation(
                        f"{msg.type!r} started a request while a cancel connection was open"
                    )
                if self.rfq_sent < self._hold_group:
                    self.server._violation(
                        f"{msg.type!r} started a request before ReadyForQuery of the "
                        "request a CancelRequest was sent for"
                    )
            self.groups_started += 1
            self._in_group = True
        if msg.type in (b"S", b"Q"):
            self._in_group = False
        elif msg.type == b"X":
            self.terminated.set()
        self.received.append(msg)
        self._inbox_send.send_nowait(msg)
        self.server._poke()

    def _cancel_opened(self) -> None:
        """A cancel connection for this session opened: hold later requests behind it."""
        if self.groups_written is not None:
            # In memory, the tap on the client's stream says exactly what was written.
            target = self.groups_written
        else:
            # Over TCP only what arrived is known. With nothing outstanding here, the
            # request the cancel is for may still be in flight: one request arriving while
            # the cancel connection is open is taken to be it (see _arrived).
            target = self.groups_started
            self._in_flight_allowed = not self.outstanding
        self.outstanding_at_cancel = target - self.rfq_sent
        self._hold_group = max(self._hold_group, target)
        self.cancels_open += 1

    def _request_written(self) -> None:
        assert self.groups_written is not None
        self.groups_written += 1

    def _cancel_closed(self) -> None:
        self.cancels_open -= 1
        self._in_flight_allowed = False

    async def receive(self) -> FrontendMessage | None:
        """The next frontend message, or None at end of stream."""
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            return None

    async def expect(self, type_byte: bytes) -> FrontendMessage:
        """The next message, which must be of type ``type_byte``."""
        msg = await self.receive()
        assert msg is not None, f"expected {type_byte!r}, got end of stream"
        assert msg.type == type_byte, f"expected {type_byte!r}, got {msg.type!r}"
        return msg

    async def receive_group(self) -> list[FrontendMessage]:
        """Messages up to and including the next Sync or Query; ``[]`` at Terminate/EOF."""
        group: list[FrontendMessage] = []
        while True:
            msg = await self.receive()
            if msg is None or msg.type == b"X":
                return []
            group.append(msg)
            if msg.type in (b"S", b"Q"):
                return group

    # -- sending ------------------------------------------------------------------------

    async def send(self, *messages: bytes, bytewise: bool = False) -> None:
        """Send complete backend messages (ReadyForQuery among them is counted).

        ``bytewise`` writes one byte at a time and lets every other task run between
        bytes, so the client receives them one by one.
        """
        rfq = sum(1 for m in messages if m[:1] == b"Z")
        if rfq:
            self.rfq_sent += rfq
            self._interrupt = trio.Event()
        data = b"".join(messages)
        if not bytewise:
            await self.stream.send_all(data)
            return
        for i in range(len(data)):
            await self.stream.send_all(data[i : i + 1])
            await trio.testing.wait_all_tasks_blocked()

    async def send_raw(self, data: bytes) -> None:
        """Send bytes that need not be well-formed (nothing is counted)."""
        await self.stream.send_all(data)

    async def close(self, *, reset: bool = False) -> None:
        """Close the connection; ``reset`` aborts a TCP connection with RST."""
        sock = getattr(self.stream, "socket", None)
        if reset and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()


# -- opening servers and connections -----------------------------------------------------


@asynccontextmanager
async def open_fake_server(**options: Any) -> AsyncIterator[FakeServer]:
    """Run a :class:`FakeServer` on a loopback port for the block; then check it.

    Takes :class:`FakeServer`'s arguments. The block's own exception is re-raised as is
    (never wrapped in an exception group); when the block succeeds, violations fail it.
    """
    server = FakeServer(**options)
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        server._nursery = nursery
        listeners = await nursery.start(
            partial(trio.serve_tcp, server.handle_connection, 0, host="127.0.0.1")
        )
        server.port = listeners[0].socket.getsockname()[1]
        try:
            yield server
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the nursery
            error = exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
    server.check()


async def connect_memory(
    server: FakeServer,
    nursery: trio.Nursery,
    *,
    protocol_version: tuple[int, int] = (3, 2),
    statement_cache_size: int = 100,
    cleanup_grace: float = 5.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> trio_pg.Connection:
    """A Connection to ``server`` over an in-memory stream, built as ``connect()`` does.

    Cancel connections are in-memory too (:meth:`FakeServer.open_memory_cancel_stream`),
    so everything runs in virtual time under a mock clock.
    """
    assert server._nursery is not None
    client, server_side = trio.testing.memory_stream_pair()
    server._nursery.start_soon(server.handle_connection, server_side)
    core = ClientConnection(max_message_size=max_message_size)
    core.start(
        StartupOptions(
            user="fake",
            parameters={"database": "fake", "client_encoding": "UTF8"},
            protocol_version=protocol_version,
        )
    )
    await _run_startup(core, client)
    assert core.backend_key is not None
    session = next(s for s in server.sessions if s.pid == core.backend_key.process_id)
    session.groups_written = 0
    params = make_params(
        None,
        {"host": "fake.invalid", "port": 5432, "user": "fake", "dbname": "fake"},
        environ={},
    )
    conn = trio_pg.Connection(
        core=core,
        stream=TappedStream(client, session._request_written),
        params=params,
        host=params.hosts[0],
        codecs=CodecRegistry.builtin().copy(),
        statement_cache_size=statement_cache_size,
        cleanup_grace=cleanup_grace,
        open_cancel_stream=partial(server.open_memory_cancel_stream, session),
    )
    await nursery.start(conn._run)
    return conn


@asynccontextmanager
async def open_memory_connection(
    server: FakeServer, **options: Any
) -> AsyncIterator[trio_pg.Connection]:
    """:func:`connect_memory` for the block, closed after it, like ``open_connection``."""
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        conn = await connect_memory(server, nursery, **options)
        try:
            yield conn
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the nursery
            error = exc
        finally:
            await conn.aclose()
    if error is not None:
        raise error


@asynccontextmanager
async def open_fake_connection(
    server: FakeServer, transport: str = "tcp", **options: Any
) -> AsyncIterator[trio_pg.Connection]:
    """A connection to ``server`` over ``"tcp"`` (``open_connection``) or ``"memory"``."""
    if transport == "tcp":
        async with trio_pg.open_connection(**server.connect_kwargs(**options)) as conn:
            yield conn
    else:
        async with open_memory_connection(server, **options) as conn:
            yield conn


def isolate_environment(monkeypatch: pytest.MonkeyPatch, home: str) -> None:
    """No PG* variables and a fresh HOME, so only the test's settings take part."""
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", home)
