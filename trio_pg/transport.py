"""Open the byte stream to one PostgreSQL host: a Unix-domain socket or TCP.

This is the only place trio_pg creates sockets. A :class:`~trio_pg.conninfo.HostSpec`
whose ``host`` is a directory (or ``@name`` for Linux's abstract namespace) is reached
through the socket file ``<dir>/.s.PGSQL.<port>``; anything else is a TCP connection to
``hostaddr`` if given, else ``host`` (resolved, with Happy Eyeballs across its addresses).
TCP sockets get the keepalive options of ``libpq-connect.html#LIBPQ-KEEPALIVES``.

``connect_timeout`` is not handled here: the connection layer bounds the whole attempt
(connect, TLS, authentication) with one cancel scope, as libpq does.
"""

from __future__ import annotations

import socket
from typing import Final

import trio

from trio_pg.conninfo import ConnectParams, HostSpec
from trio_pg.errors import ConnectionFailedError

__all__ = ["open_stream"]

# Option names differ by platform; getattr leaves out what this platform lacks, as libpq
# does (libpq-connect.html#LIBPQ-KEEPALIVES-IDLE: "only supported on systems where ...").
# macOS spells TCP_KEEPIDLE as TCP_KEEPALIVE.
_KEEPIDLE: Final = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None))
_KEEPINTVL: Final = getattr(socket, "TCP_KEEPINTVL", None)
_KEEPCNT: Final = getattr(socket, "TCP_KEEPCNT", None)
_USER_TIMEOUT: Final = getattr(socket, "TCP_USER_TIMEOUT", None)


async def open_stream(host: HostSpec, params: ConnectParams) -> trio.SocketStream:
    """Connect to one host and return the raw, unencrypted stream.

    TCP streams have ``TCP_NODELAY`` on (Trio's default for ``SocketStream``) and, when
    ``params.keepalives`` is true, ``SO_KEEPALIVE`` plus whichever of ``keepalives_idle``,
    ``keepalives_interval`` and ``keepalives_count`` are set and the platform supports.
    ``tcp_user_timeout`` is applied where the platform has ``TCP_USER_TIMEOUT``. A value
    of 0 for any of them means the system default, as in libpq.

    Args:
        host: Where to connect. ``host.is_unix`` selects a Unix-domain socket.
        params: The connection parameters (only the TCP options are used here).

    Returns:
        The connected stream. The caller owns it and must close it.

    Raises:
        ConnectionFailedError: The connection could not be made (refused, no such socket
            file, name resolution failed, unreachable, ...); the ``OSError`` is chained
            as ``__cause__``.
    """
    if host.is_unix:
        return await _open_unix(host)
    return await _open_tcp(host, params)


async def _open_unix(host: HostSpec) -> trio.SocketStream:
    path = host.socket_path
    # libpq-connect.html#LIBPQ-CONNECT-HOST: a host starting with "@" names a socket in
    # Linux's abstract namespace, whose address starts with a NUL byte.
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        return await trio.open_unix_socket(address)
    except OSError as exc:
        raise ConnectionFailedError(
            f'could not connect to server on socket "{path}": {_reason(exc)}'
        ) from exc


async def _open_tcp(host: HostSpec, params: ConnectParams) -> trio.SocketStream:
    target = host.hostaddr or host.host
    where = f'server at "{host.host}"'
    if host.hostaddr:
        where += f" ({host.hostaddr})"
    where += f", port {host.port}"
    try:
        stream = await trio.open_tcp_stream(target, host.port)
    except socket.gaierror as exc:
        raise ConnectionFailedError(
            f'could not translate host name "{target}" to address: {_reason(exc)}'
        ) from exc
    except OSError as exc:
        raise ConnectionFailedError(f"could not connect to {where}: {_reason(exc)}") from exc
    try:
        _set_tcp_options(stream, params)
    except OSError as exc:
        stream.socket.close()
        raise ConnectionFailedError(
            f"could not set TCP options on the connection to {where}: {_reason(exc)}"
        ) from exc
    return stream


def _set_tcp_options(stream: trio.SocketStream, params: ConnectParams) -> None:
    if params.keepalives:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
        for option, value in (
            (_KEEPIDLE, params.keepalives_idle),
            (_KEEPINTVL, params.keepalives_interval),
            (_KEEPCNT, params.keepalives_count),
        ):
            if option is not None and value:
                stream.setsockopt(socket.IPPROTO_TCP, option, value)
    if _USER_TIMEOUT is not None and params.tcp_user_timeout:
        stream.setsockopt(socket.IPPROTO_TCP, _USER_TIMEOUT, params.tcp_user_timeout)


def _reason(exc: OSError) -> str:
    """The operating system's words for why ``exc`` happened."""
    if exc.strerror:
        return exc.strerror
    # trio.open_tcp_stream raises a summary OSError (no strerror) chained from an
    # exception group holding one OSError per address it tried.
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup):
        reasons = dict.fromkeys(_reason(e) for e in cause.exceptions if isinstance(e, OSError))
        if reasons:
            return "; ".join(reasons)
    return str(exc)
