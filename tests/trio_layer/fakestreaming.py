"""Fake-server helpers for COPY and cursor tests: backend COPY messages, a gated stream.

Encoders written from protocol-message-formats.html (see ``fakewire.py``).
:func:`open_gated_connection` connects over an in-memory stream whose writes the test
can hold back, so the client's bounded write buffer can be watched filling up.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio
import trio.testing

import trio_pg
from tests.trio_layer.fakeserver import FakeServer
from tests.trio_layer.fakewire import TappedStream, message
from trio_pg.codecs import CodecRegistry
from trio_pg.connect import _run_startup
from trio_pg.conninfo import make_params
from trio_pg.protocol import ClientConnection, StartupOptions


def _copy_response(type_byte: bytes, columns: int, fmt: int) -> bytes:
    return message(type_byte, struct.pack(f"!bh{columns}h", fmt, columns, *[fmt] * columns))


def copy_in_response(columns: int = 1, fmt: int = 0) -> bytes:
    return _copy_response(b"G", columns, fmt)


def copy_out_response(columns: int = 1, fmt: int = 0) -> bytes:
    return _copy_response(b"H", columns, fmt)


def copy_both_response() -> bytes:
    return _copy_response(b"W", 0, 0)


def copy_data(data: bytes) -> bytes:
    return message(b"d", data)


def copy_done() -> bytes:
    return message(b"c")


def portal_suspended() -> bytes:
    return message(b"s")


class GatedStream(trio.abc.Stream):
    """A stream whose ``send_all`` waits while the gate is closed (a stalled network)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self._inner = inner
        self.open = trio.Event()
        self.open.set()
        self.sent = 0

    def close_gate(self) -> None:
        self.open = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.open.wait()
        await self._inner.send_all(data)
        self.sent += len(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def open_gated_connection(
    server: FakeServer,
) -> AsyncIterator[tuple[trio_pg.Connection, GatedStream]]:
    """A connection to ``server`` in memory (as ``connect_memory``), its writes gated."""
    assert server._nursery is not None
    client, server_side = trio.testing.memory_stream_pair()
    server._nursery.start_soon(server.handle_connection, server_side)
    core = ClientConnection()
    core.start(StartupOptions(user="fake", parameters={"database": "fake"}))
    await _run_startup(core, client)
    assert core.backend_key is not None
    session = next(s for s in server.sessions if s.pid == core.backend_key.process_id)
    session.groups_written = 0
    gated = GatedStream(TappedStream(client, session._request_written))
    params = make_params(None, {"host": "fake.invalid", "user": "fake"}, environ={})
    conn = trio_pg.Connection(
        core=core,
        stream=gated,
        params=params,
        host=params.hosts[0],
        codecs=CodecRegistry.builtin(),
        statement_cache_size=100,
        cleanup_grace=5.0,
        open_cancel_stream=partial(server.open_memory_cancel_stream, session),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(conn._run)
        try:
            yield conn, gated
        finally:
            gated.open.set()
            await conn.aclose()
