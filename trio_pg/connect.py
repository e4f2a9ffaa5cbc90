"""Opening connections: hosts in order, TLS per sslmode, startup, then the background tasks.

Theory of operation: :func:`connect` resolves the settings (:mod:`trio_pg.conninfo`),
then tries each host in turn (shuffled with ``load_balance_hosts=random``), each try
bounded by ``connect_timeout``. A try opens a stream, negotiates TLS as ``sslmode``
says (:mod:`trio_pg.tls`), and runs the startup exchange of the sans-I/O core in the
calling task, so authentication errors are raised by the caller's ``await`` and never
into a nursery. Only a fully started session gets its reader and writer tasks; they
start before the ``target_session_attrs`` check, which may need a query and must be able
to close a session that does not match.

As in libpq (libpq-connect.html#LIBPQ-MULTIPLE-HOSTS), a host that cannot be reached
or does not match ``target_session_attrs`` makes the next one be tried; a server that
refuses the login (wrong password, no such database) ends the attempt at once, with no
other host tried (only the sslmode retries below may ask the same host again).
``sslmode=allow`` first tries without TLS and retries with it when the server refuses;
``sslmode=prefer`` falls back to plain text when the server declines TLS, the handshake
fails, or the server refuses the encrypted session (a ``hostnossl`` rule). Protocol 3.2
is asked for, and a server or pooler that rejects it outright is retried with 3.0.
"""

from __future__ import annotations

import math
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Final, Literal

import trio

from trio_pg.codecs import CodecRegistry
from trio_pg.connection import TRANSPORT_ERRORS as _TRANSPORT_ERRORS
from trio_pg.connection import Connection
from trio_pg.conninfo import ConnectParams, HostSpec, make_params
from trio_pg.errors import (
    ConnectionFailedError,
    Error,
    InterfaceError,
    PostgresError,
    TLSError,
)
from trio_pg.nursery import open_owned_nursery
from trio_pg.protocol import (
    AUTH_METHODS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_SCRAM_ITERATIONS,
    NEED_DATA,
    ClientConnection,
    ScramProof,
    StartupComplete,
    StartupOptions,
    is_protocol_version_rejection,
)
from trio_pg.protocol.backend import NoticeResponse
from trio_pg.tls import SecureChannel, UpgradeFn, negotiate
from trio_pg.transport import open_stream

__all__ = ["connect", "open_connection"]

_DEFAULT_CACHE_SIZE: Final = 100


@dataclass(frozen=True, slots=True)
class _Options:
    """trio_pg-only settings (never in a DSN)."""

    ssl_context: ssl.SSLContext | UpgradeFn | None
    server_settings: Mapping[str, str]
    statement_cache_size: int
    codecs: CodecRegistry
    max_message_size: int
    cleanup_grace: float
    max_scram_iterations: int


async def connect(
    nursery: trio.Nursery,
    dsn: str | None = None,
    *,
    ssl_context: ssl.SSLContext | UpgradeFn | None = None,
    server_settings: Mapping[str, str] | None = None,
    statement_cache_size: int = _DEFAULT_CACHE_SIZE,
    codecs: CodecRegistry | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    cleanup_grace: float = 5.0,
    max_scram_iterations: int = DEFAULT_MAX_SCRAM_ITERATIONS,
    **params: object,
) -> Connection:
    """Open a connection whose background tasks run in ``nursery``.

    Args:
        nursery: Where the connection's reader and writer tasks run. Close the
            connection (``await conn.aclose()``) before the nursery's block ends.
        dsn: A libpq URI or keyword/value string.
        ssl_context: An ``ssl.SSLContext`` to use instead of the one ``sslmode`` and the
            ``ssl*`` settings would build, or an async callable that upgrades the raw
            stream itself. Either makes TLS required.
        server_settings: Server parameters sent in the StartupMessage (``{"search_path":
            "app"}``).
        statement_cache_size: Described statements kept per connection; 0 uses only
            unnamed statements (for PgBouncer in transaction mode).
        codecs: A codec registry to start from (copied); the built-in one by default.
        max_message_size: Largest server message accepted, in bytes.
        cleanup_grace: Seconds allowed for draining an abandoned request or closing
            before the connection is closed instead of waited on.
        max_scram_iterations: Highest SCRAM iteration count accepted from a server.
        **params: libpq keywords (``host``, ``port``, ``user``, ``password``, ``dbname``,
            ``sslmode``, ...), overriding the DSN, which overrides ``PG*`` variables.

    Returns:
        The open connection.

    Raises:
        PostgresError: The server refused the login (``InvalidPasswordError``, ...).
        AuthenticationError: Authentication failed on the client's side (require_auth,
            channel_binding, a missing password, ...).
        TLSError: TLS was required and could not be set up.
        ConnectionFailedError: No host could be reached.
        InterfaceError: Invalid settings.

    Use ``with trio.fail_after(...)`` around the call for an overall deadline;
    ``connect_timeout`` bounds each host.
    """
    if statement_cache_size < 0:
        raise InterfaceError("statement_cache_size must be 0 or more")
    if cleanup_grace <= 0 or math.isnan(cleanup_grace):
        raise InterfaceError("cleanup_grace must be a positive number of seconds")
    settings = make_params(dsn, params)
    options = _Options(
        ssl_context=ssl_context,
        server_settings=dict(server_settings or {}),
        statement_cache_size=statement_cache_size,
        codecs=(codecs or CodecRegistry.builtin()).copy(),
        max_message_size=max_message_size,
        cleanup_grace=float(cleanup_grace),
        max_scram_iterations=max_scram_iterations,
    )
    if ssl_context is not None and settings.sslmode == "disable":
        raise InterfaceError("ssl_context was given, but sslmode=disable forbids TLS")
    return await _connect_any(settings, options, nursery)


@asynccontextmanager
async def open_connection(dsn: str | None = None, **params: object) -> AsyncIterator[Connection]:
    """Open a connection for the duration of an ``async with`` block.

    Takes the same arguments as :func:`connect`. The connection's tasks run in a
    nursery of its own; leaving the block closes the connection. The block raises only
    what its body raised: background failures reach callers as ConnectionLostError or
    ProtocolError on their requests, never as an exception group.
    """
    async with open_owned_nursery() as nursery:
        conn = await connect(nursery, dsn, **params)  # type: ignore[arg-type]
        try:
            yield conn
        finally:
            await conn.aclose()


# -- host selection ---------------------------------------------------------------------


async def _connect_any(
    settings: ConnectParams, options: _Options, nursery: trio.Nursery
) -> Connection:
    hosts = list(settings.hosts)
    if settings.load_balance_hosts == "random":
        random.shuffle(hosts)
    attrs = settings.target_session_attrs
    passes: list[str] = [attrs]
    if attrs == "prefer-standby":
        passes = ["standby", "any"]
    failures: list[str] = []
    last_error: BaseException | None = None
    for wanted in passes:
        for host in hosts:
            try:
                conn = await _connect_host(host, settings, options)
            except (ConnectionFailedError, TLSError) as exc:
                failures.append(f"{_where(host)}: {exc}")
                last_error = exc
                continue
            # Started before the check: older servers are asked with a query, and only a
            # running connection can say goodbye (Terminate) and close its stream.
            await nursery.start(conn._run)
            try:
                mismatch = await _session_mismatch(conn, wanted)
            except BaseException:
                await conn.aclose()
                raise
            if mismatch is None:
                return conn
            failures.append(f"{_where(host)}: {mismatch}")
            await conn.aclose()
    if len(failures) == 1 and isinstance(last_error, Error) and len(hosts) == 1 and attrs == "any":
        raise last_error
    error = ConnectionFailedError(
        "could not connect to any host:\n  " + "\n  ".join(failures)
        if failures
        else "no hosts to connect to"
    )
    raise error from last_error


def _where(host: HostSpec) -> str:
    if host.is_unix:
        return f"socket {host.socket_path!r}"
    addr = f" ({host.hostaddr})" if host.hostaddr and host.hostaddr != host.host else ""
    return f"{host.host}{addr}:{host.port}"


async def _session_mismatch(conn: Connection, wanted: str) -> str | None:
    """Why ``conn`` does not satisfy ``target_session_attrs=wanted``, or None."""
    if wanted == "any":
        return None
    # PostgreSQL 14+ reports these at startup; older servers are asked.
    standby_param = conn.parameters.get("in_hot_standby")
    if standby_param is not None:
        standby = standby_param == "on"
    else:
        standby = bool(await conn.fetchval("SELECT pg_catalog.pg_is_in_recovery()"))
    if wanted in ("primary", "standby"):
        ok = standby == (wanted == "standby")
        return None if ok else f"server is {'a standby' if standby else 'a primary'}"
    readonly_param = conn.parameters.get("default_transaction_read_only")
    if readonly_param is not None and standby_param is not None:
        readonly = readonly_param == "on" or standby
    else:
        readonly = (await conn.fetchval("SHOW transaction_read_only")) == "on"
    ok = readonly == (wanted == "read-only")
    return None if ok else f"session is {'read-only' if readonly else 'read-write'}"


# -- one host ---------------------------------------------------------------------------


_Encrypt = Literal["never", "try", "require"]


def _encryption_plan(settings: ConnectParams, options: _Options) -> list[_Encrypt]:
    if options.ssl_context is not None:
        return ["require"]
    mode = settings.sslmode
    if mode == "disable":
        return ["never"]
    if mode == "allow":
        return ["never", "require"]
    if mode == "prefer":
        return ["try"]
    return ["require"]


@dataclass(slots=True)
class _Progress:
    """How far one attempt got, for deciding on a retry after it failed."""

    encrypted: bool = False


async def _connect_host(host: HostSpec, settings: ConnectParams, options: _Options) -> Connection:
    timeout = settings.connect_timeout
    plan = _encryption_plan(settings, options)
    version = settings.max_protocol_version
    attempt = 0
    while True:
        encrypt = plan[min(attempt, len(plan) - 1)]
        progress = _Progress()
        try:
            with trio.fail_after(timeout) if timeout is not None else nullcontext():
                return await _attempt(host, settings, options, encrypt, version, progress)
        except trio.TooSlowError:
            raise ConnectionFailedError(f"timed out after connect_timeout={timeout}s") from None
        except PostgresError as exc:
            if version > (3, 0) and is_protocol_version_rejection(exc):
                version = (3, 0)  # a pooler or old server that does not negotiate
                continue
            if encrypt == "never" and len(plan) > attempt + 1:
                attempt += 1  # sslmode=allow: the server may insist on TLS
                continue
            if encrypt == "try" and progress.encrypted:
                # libpq's prefer: a server that refuses the encrypted session (a hostnossl
                # rule, for one) is asked again without TLS, as libpq does for any error
                # before the session starts (libpq-connect.html#LIBPQ-CONNECT-SSLMODE).
                plan = ["never"]
                attempt = 0
                continue
            raise
        except TLSError:
            if encrypt == "try" and settings.sslmode == "prefer" and options.ssl_context is None:
                # libpq's prefer: a failed TLS handshake is retried without TLS.
                plan = ["never"]
                attempt = 0
                continue
            raise


async def _attempt(
    host: HostSpec,
    settings: ConnectParams,
    options: _Options,
    encrypt: Literal["never", "try", "require"],
    version: tuple[int, int],
    progress: _Progress,
) -> Connection:
    stream = await open_stream(host, settings)
    try:
        channel = await negotiate(
            stream, host, settings, encrypt=encrypt, ssl_context=options.ssl_context
        )
        progress.encrypted = channel.encrypted
        core = ClientConnection(max_message_size=options.max_message_size)
        core.start(_startup_options(host, settings, options, channel, version))
        await _run_startup(core, channel.stream)
    except BaseException:
        with trio.CancelScope(shield=True):
            await _aclose_quietly(stream)
        raise
    return Connection(
        core=core,
        stream=channel.stream,
        params=settings,
        host=host,
        codecs=options.codecs,
        statement_cache_size=options.statement_cache_size,
        cleanup_grace=options.cleanup_grace,
        open_cancel_stream=lambda: _open_cancel_stream(host, settings, options, channel),
    )


async def _aclose_quietly(stream: trio.abc.AsyncResource) -> None:
    try:
        await stream.aclose()
    except _TRANSPORT_ERRORS:
        pass


def _startup_options(
    host: HostSpec,
    settings: ConnectParams,
    options: _Options,
    channel: SecureChannel,
    version: tuple[int, int],
) -> StartupOptions:
    parameters: dict[str, str] = {"database": settings.dbname}
    app = settings.application_name or settings.fallback_application_name
    if app:
        parameters["application_name"] = app
    if settings.options:
        parameters["options"] = settings.options
    parameters["client_encoding"] = "UTF8"
    parameters.update(options.server_settings)
    allowed: frozenset[str] | None = None
    if settings.require_auth is not None:
        allowed = frozenset(m for m in AUTH_METHODS if settings.require_auth.allows(m))
    return StartupOptions(
        user=settings.user,
        parameters=parameters,
        password=settings.password_for(host),
        protocol_version=version,
        min_protocol_version=settings.min_protocol_version,
        allowed_auth=allowed,
        channel_binding=settings.channel_binding,
        channel_binding_data=channel.channel_binding,
        max_scram_iterations=options.max_scram_iterations,
    )


async def _run_startup(core: ClientConnection, stream: trio.abc.Stream) -> None:
    """Drive authentication up to the first ReadyForQuery, in the calling task."""
    try:
        while True:
            event = core.next_event()
            # Handling a message may queue a reply (a password, a SASL response): send it
            # before waiting for the server, which waits for that reply.
            data = core.data_to_send()
            if data:
                await stream.send_all(data)
            if event is NEED_DATA:
                core.receive_data(await stream.receive_some(65536))
            elif isinstance(event, ScramProof):
                # PBKDF2 over the password is slow on purpose: keep it off the event loop.
                await trio.to_thread.run_sync(event.run)
            elif isinstance(event, StartupComplete):
                return
            elif isinstance(event, NoticeResponse):
                continue
            else:
                raise ConnectionFailedError(
                    f"server closed the connection during startup ({event!r})"
                )
    except _TRANSPORT_ERRORS as exc:
        raise ConnectionFailedError(f"connection broke during startup: {exc}") from exc


async def _open_cancel_stream(
    host: HostSpec, settings: ConnectParams, options: _Options, main: SecureChannel
) -> trio.abc.Stream:
    """A new stream to the same server, encrypted if the session is, for CancelRequest."""
    stream = await open_stream(host, settings)
    if not main.encrypted:
        return stream
    try:
        channel = await negotiate(
            stream, host, settings, encrypt="require", ssl_context=options.ssl_context
        )
    except BaseException:
        with trio.CancelScope(shield=True):
            await _aclose_quietly(stream)
        raise
    return channel.stream
