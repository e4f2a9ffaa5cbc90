"""RawSocket: the reader's and the direct writer's path straight to a socket descriptor."""

from __future__ import annotations

import socket
import struct

import pytest
import trio
import trio.testing

from trio_pg.rawsocket import RawSocket, raw_socket_of

pytestmark = pytest.mark.trio


def _pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def test_plain_socket_streams_get_a_raw_socket_and_others_do_not() -> None:
    a, b = _pair()
    async with a, b:
        raw = raw_socket_of(a, 1024)
        assert raw is not None
        assert raw.fd == a.socket.fileno()
    memory, _ = trio.testing.memory_stream_pair()
    assert raw_socket_of(memory, 1024) is None


async def test_receive_waits_for_data_then_returns_what_arrived() -> None:
    a, b = _pair()
    async with a, b:
        raw = RawSocket(a.socket.fileno(), 1024)
        got: list[bytes] = []

        async def read() -> None:
            got.append(await raw.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # parked until the peer writes
            await b.send_all(b"hello")
        assert got == [b"hello"]


async def test_more_than_one_read_size_arrives_whole_over_several_receives() -> None:
    a, b = _pair()
    async with a, b:
        raw = RawSocket(a.socket.fileno(), 1000)
        data = bytes(range(256)) * 40  # 10,240 bytes: at least 11 reads
        await b.send_all(data)
        received = b""
        reads = 0
        while len(received) < len(data):
            received += await raw.receive()
            reads += 1
        assert received == data
        assert reads >= 11


async def test_receive_is_a_checkpoint_even_when_data_is_waiting() -> None:
    a, b = _pair()
    async with a, b:
        raw = RawSocket(a.socket.fileno(), 4)
        await b.send_all(b"12345678")
        assert await raw.receive() == b"1234"  # a full read: the next one reads at once
        with trio.CancelScope() as scope:
            scope.cancel()
            await raw.receive()
        assert scope.cancelled_caught
        assert await raw.receive() == b"5678"  # nothing was lost


async def test_end_of_stream_is_empty_bytes() -> None:
    a, b = _pair()
    async with a:
        await b.aclose()
        raw = RawSocket(a.socket.fileno(), 1024)
        assert await raw.receive() == b""


async def test_a_reset_connection_is_broken_resource_caused_by_the_os_error() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0] as listener:
        port = listener.socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()
        async with client:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await server.aclose()
            raw = RawSocket(client.socket.fileno(), 1024)
            with pytest.raises(trio.BrokenResourceError) as info:
                await raw.receive()
            assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_closing_the_stream_wakes_a_waiting_receive_with_closed_resource() -> None:
    a, b = _pair()
    async with b:
        raw = RawSocket(a.socket.fileno(), 1024)

        async def close_soon() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await a.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with pytest.raises(trio.ClosedResourceError):
                await raw.receive()


async def test_write_nowait_takes_what_the_socket_takes_and_never_blocks() -> None:
    a, b = _pair()
    async with a, b:
        raw = RawSocket(a.socket.fileno(), 1024)
        assert raw.write_nowait(b"abc") == 3
        assert await b.receive_some(10) == b"abc"
        # Fill the socket's buffer: later writes take part or nothing, at once.
        chunk = b"x" * 65536
        taken = [raw.write_nowait(chunk) for _ in range(200)]
        assert 0 in taken
        assert sum(taken) < len(chunk) * 200


async def test_write_nowait_on_a_broken_socket_takes_nothing() -> None:
    a, b = _pair()
    async with a:
        await b.aclose()
        raw = RawSocket(a.socket.fileno(), 1024)
        # The first write may still be accepted; once the peer's close is seen, 0.
        results = [raw.write_nowait(b"data") for _ in range(3)]
        assert results[-1] == 0
