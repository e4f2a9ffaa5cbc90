"""Opening TCP and Unix-domain streams (no PostgreSQL needed)."""

from __future__ import annotations

import os
import socket
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_pg.conninfo import ConnectParams, make_params
from trio_pg.errors import ConnectionFailedError
from trio_pg.transport import open_stream

TIMEOUT = 10


def conn_params(**keywords: object) -> ConnectParams:
    """Parameters from keywords only: no PG* variables (HOME is the test's own)."""
    return make_params(None, keywords, environ={})


async def echo_once(stream: trio.SocketStream) -> None:
    async with stream:
        data = await stream.receive_some()
        await stream.send_all(data)


async def serve_echo(nursery: trio.Nursery) -> int:
    listeners = await nursery.start(partial(trio.serve_tcp, echo_once, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def serve_unix(nursery: trio.Nursery, address: str) -> None:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(address)
    sock.listen()
    await nursery.start(trio.serve_listeners, echo_once, [trio.SocketListener(sock)])


async def roundtrip(stream: trio.SocketStream) -> bytes:
    async with stream:
        await stream.send_all(b"ping")
        return await stream.receive_some()


async def test_tcp_stream_reaches_hostaddr(nursery: trio.Nursery) -> None:
    port = await serve_echo(nursery)
    # host is only a name for TLS and the password file; hostaddr is what is dialled.
    params = conn_params(host="db.invalid", hostaddr="127.0.0.1", port=port)
    with trio.fail_after(TIMEOUT):
        stream = await open_stream(params.hosts[0], params)
        assert await roundtrip(stream) == b"ping"


async def test_tcp_stream_has_nodelay_and_keepalive_options(nursery: trio.Nursery) -> None:
    port = await serve_echo(nursery)
    params = conn_params(
        host="127.0.0.1",
        port=port,
        keepalives="1",
        keepalives_idle="7",
        keepalives_interval="3",
        keepalives_count="4",
        tcp_user_timeout="9000",
    )
    with trio.fail_after(TIMEOUT):
        stream = await open_stream(params.hosts[0], params)
        async with stream:
            assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert stream.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            if sys.platform == "linux":
                assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
                assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
                assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
                assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 9000


async def test_keepalives_off_leaves_so_keepalive_unset(nursery: trio.Nursery) -> None:
    port = await serve_echo(nursery)
    params = conn_params(host="127.0.0.1", port=port, keepalives="0")
    with trio.fail_after(TIMEOUT):
        stream = await open_stream(params.hosts[0], params)
        async with stream:
            assert not stream.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)


async def test_refused_tcp_connection_is_connection_failed_error() -> None:
    # A port that was just free: nothing listens on it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    params = conn_params(host="127.0.0.1", port=port)
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionFailedError) as info:
        await open_stream(params.hosts[0], params)
    message = str(info.value)
    assert message.startswith(f'could not connect to server at "127.0.0.1", port {port}: ')
    assert "refused" in message.lower()
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix-domain sockets")
async def test_unix_socket_stream_reaches_socket_file_in_host_directory(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    await serve_unix(nursery, str(tmp_path / ".s.PGSQL.6543"))
    params = conn_params(host=str(tmp_path), port=6543)
    assert params.hosts[0].is_unix
    with trio.fail_after(TIMEOUT):
        stream = await open_stream(params.hosts[0], params)
        assert stream.socket.family == socket.AF_UNIX
        assert await roundtrip(stream) == b"ping"


@pytest.mark.skipif(sys.platform != "linux", reason="the abstract namespace is Linux-only")
async def test_at_sign_host_uses_linux_abstract_namespace(
    nursery: trio.Nursery, request: pytest.FixtureRequest
) -> None:
    name = f"trio_pg_test_{os.getpid()}_{request.node.name}"
    await serve_unix(nursery, f"\0{name}/.s.PGSQL.5432")
    params = conn_params(host=f"@{name}", port=5432)
    with trio.fail_after(TIMEOUT):
        stream = await open_stream(params.hosts[0], params)
        assert await roundtrip(stream) == b"ping"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix-domain sockets")
async def test_missing_unix_socket_is_connection_failed_error(tmp_path: Path) -> None:
    params = conn_params(host=str(tmp_path), port=5432)
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionFailedError) as info:
        await open_stream(params.hosts[0], params)
    path = tmp_path / ".s.PGSQL.5432"
    assert str(info.value) == (
        f'could not connect to server on socket "{path}": No such file or directory'
    )
    assert isinstance(info.value.__cause__, FileNotFoundError)


class NoSuchHostResolver(trio.abc.HostnameResolver):
    """Fails every lookup, so the test needs no DNS."""

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def test_unresolvable_host_name_is_connection_failed_error() -> None:
    trio.socket.set_custom_hostname_resolver(NoSuchHostResolver())
    params = conn_params(host="db.invalid", port=5432)
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionFailedError) as info:
        await open_stream(params.hosts[0], params)
    assert str(info.value) == (
        'could not translate host name "db.invalid" to address: Name or service not known'
    )
    assert isinstance(info.value.__cause__, socket.gaierror)
