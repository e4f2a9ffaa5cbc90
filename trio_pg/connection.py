"""The Trio connection: a reader task, a writer task and a FIFO of requests.

Theory of operation
-------------------
:class:`Connection` wraps a :class:`~trio_pg.protocol.ClientConnection` (the sans-I/O
core) and a Trio stream that has finished startup. Two background tasks run in the
nursery the connection was opened in:

* the **reader**, the only consumer of the stream: it loops over the core's events,
  routing each :class:`~trio_pg.protocol.Response` batch to the request's
  :class:`~trio_pg.pending.PendingRequest` and untagged messages (notices, notifications,
  parameter changes) to the subscription router;
* the **writer**, the only producer: it drains ``data_to_send()`` whenever woken.

A user call registers its request and queues its bytes in one synchronous step
(``ClientConnection.send_request``), wakes the writer, and waits on its pending request.
So the order on the wire is the order of registration, a cancelled task can never cut a
write in half, and requests from many tasks coalesce into few writes. On an otherwise
idle connection over a plain socket, the calling task writes its request itself, in the
same synchronous step (a non-blocking write; the writer sends whatever the socket did
not take): one scheduling round less per round trip. Registering requests, including
the open-portal guard of cursors and COPY's flow control, is
:class:`~trio_pg.submission.SubmissionMixin`'s (in :mod:`trio_pg.submission`).

Cancellation: a task cancelled while waiting abandons its request; the core then discards
the request's remaining messages, and if the request is the only one the server has, it
offers it for a CancelRequest, sent here on a new connection to the same server. Later
writes are held until that request's end and the cancel connection's end, so a cancel
never reaches another query. If the abandoned request has not ended ``cleanup_grace``
seconds later, the connection is closed instead of waited on.

Failure: end of stream, a FATAL error, a transport error or a protocol violation become
the connection's *close reason*: every pending request fails with
:class:`~trio_pg.errors.ConnectionLostError` (or ProtocolError) chained to the cause, and
both tasks return normally. Only bugs escape a background task.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import trio

from trio_pg.codecs import CodecRegistry
from trio_pg.conninfo import ConnectParams, HostSpec
from trio_pg.errors import (
    ConnectionLostError,
    Error,
    PostgresError,
    ProtocolError,
)
from trio_pg.gate import Gate
from trio_pg.pending import PendingRequest, WakeSignal
from trio_pg.pipeline import PipelineMixin
from trio_pg.protocol import (
    NEED_DATA,
    ClientConnection,
    ConnectionClosed,
    FatalError,
    Request,
    Response,
    TransactionStatus,
)
from trio_pg.protocol import frontend as f
from trio_pg.protocol.backend import NoticeResponse, NotificationResponse, ParameterStatus
from trio_pg.protocol.notification import Notification
from trio_pg.queries import QueryMixin
from trio_pg.rawsocket import raw_socket_of
from trio_pg.statement import StatementCache
from trio_pg.streaming import StreamingMixin
from trio_pg.submission import SubmissionMixin
from trio_pg.subscriptions import BURST, Router, SubscriptionsMixin
from trio_pg.transaction import TransactionMixin
from trio_pg.transaction_block import Transaction

__all__ = ["Connection", "ConnectionStatistics"]

logger = logging.getLogger("trio_pg")

_RECEIVE_SIZE: Final = 256 * 1024
#: What a broken or closed stream raises; mapped to ConnectionLostError at this boundary.
TRANSPORT_ERRORS: Final = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
    ssl.SSLError,
)

#: Opens a stream to the server for a CancelRequest (same host and encryption).
CancelOpener = Callable[[], Awaitable[trio.abc.Stream]]


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """A snapshot of one connection's counters (:meth:`Connection.statistics`).

    Attributes:
        pending_requests: Requests registered and not complete (abandoned ones included).
        requests: Requests registered since the connection opened.
        bytes_sent: Bytes written to the stream after startup.
        bytes_received: Bytes read from the stream after startup.
        writes: Writes to the stream (pipelined requests share writes).
        receives: Reads from the stream that returned data.
        cancels_sent: CancelRequests sent for abandoned requests.
        statement_cache_size: Statements in the cache now.
        statement_cache_hits: Cache lookups that found a statement.
        statement_cache_misses: Cache lookups that had to describe the statement.
    """

    pending_requests: int
    requests: int
    bytes_sent: int
    bytes_received: int
    writes: int
    receives: int
    cancels_sent: int
    statement_cache_size: int
    statement_cache_hits: int
    statement_cache_misses: int


class Connection(
    QueryMixin,
    TransactionMixin,
    PipelineMixin,
    StreamingMixin,
    SubscriptionsMixin,
    SubmissionMixin,
    trio.abc.AsyncResource,
):
    """One session with a PostgreSQL server.

    Made by :func:`trio_pg.open_connection` or :func:`trio_pg.connect`, never directly.
    Any number of tasks may use one connection at once: each call is one request in the
    connection's FIFO and results come back in order.
    """

    def __init__(
        self,
        *,
        core: ClientConnection,
        stream: trio.abc.Stream,
        params: ConnectParams,
        host: HostSpec,
        codecs: CodecRegistry,
        statement_cache_size: int,
        cleanup_grace: float,
        open_cancel_stream: CancelOpener,
    ) -> None:
        self._core = core
        self._stream = stream
        self._params = params
        self._host = host
        self._codecs = codecs
        self._cleanup_grace = cleanup_grace
        self._open_cancel_stream = open_cancel_stream
        self._parameters = MappingProxyType(core.parameters)
        self._gate: Gate | None = Gate()
        self._router = Router()
        self._cache = StatementCache(statement_cache_size, self._close_statement_later)
        self._statement_counter = 0
        self._preparing: dict[str, trio.Event] = {}
        # Open transaction() blocks, outermost first (trio_pg.transaction).
        self._transactions: list[Transaction] = []
        self._writer_signal = WakeSignal()
        # Plain sockets are read and written on their descriptor (trio_pg.rawsocket).
        # Direct writes (see _write_now) need the writer's state, and the bytes a direct
        # write left over, which the writer sends before anything else.
        self._raw = raw_socket_of(stream, _RECEIVE_SIZE)
        self._writer_idle = False
        self._carry = b""
        # Streaming (trio_pg.streaming, through trio_pg.submission): the request whose
        # consumer the reader waits for (COPY TO STDOUT), the writer's "COPY data taken"
        # signal for producers, the open-portal guard of a cursor outside a transaction,
        # and resolved functions.
        self._throttled: PendingRequest | None = None
        self._output_room = WakeSignal()
        self._portal_owner: object | None = None
        self._deferred: list[bytes] = []
        self._functions: dict[object, object] = {}
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._tasks_scope = trio.CancelScope()
        self._closing = False
        self._closed = trio.Event()
        self._writer_done = trio.Event()
        self._close_reason: Error | None = None
        self._requests = 0
        self._bytes_sent = 0
        self._bytes_received = 0
        self._writes = 0
        self._receives = 0
        self._cancels_sent = 0

    # -- read-only state -------------------------------------------------------------------

    @property
    def parameters(self) -> Mapping[str, str]:
        """Server parameters (``server_version``, ``TimeZone``, ...), kept up to date live."""
        return self._parameters

    @property
    def server_version(self) -> tuple[int, ...]:
        """The server's version, such as ``(18, 4)``."""
        return self._core.server_version

    @property
    def backend_pid(self) -> int:
        """The server process ID serving this connection."""
        key = self._core.backend_key
        return key.process_id if key is not None else 0

    @property
    def protocol_version(self) -> tuple[int, int]:
        """The negotiated protocol version, ``(3, 2)`` or ``(3, 0)``."""
        return self._core.protocol_version

    @property
    def transaction_status(self) -> TransactionStatus:
        """IDLE, IN_TRANSACTION or FAILED, as of the last completed request."""
        return self._core.transaction_status

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction block is open (possibly failed)."""
        return self._core.transaction_status is not TransactionStatus.IDLE

    @property
    def is_closed(self) -> bool:
        """Whether the connection was closed or lost."""
        return self._closing or self._close_reason is not None

    @property
    def host(self) -> HostSpec:
        """The server this connection went to."""
        return self._host

    def statistics(self) -> ConnectionStatistics:
        """Counters for monitoring and tests; see :class:`ConnectionStatistics`."""
        return ConnectionStatistics(
            pending_requests=self._core.pending,
            requests=self._requests,
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            writes=self._writes,
            receives=self._receives,
            cancels_sent=self._cancels_sent,
            statement_cache_size=len(self._cache),
            statement_cache_hits=self._cache.hits,
            statement_cache_misses=self._cache.misses,
        )

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else self.transaction_status.name.lower()
        where = f"{self._host.host}:{self._host.port}"
        return f"<trio_pg.Connection pid={self.backend_pid} {where} {state}>"

    # -- background tasks -------------------------------------------------------------------

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the reader and writer until the connection closes (in the user's nursery)."""
        try:
            with self._tasks_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._started = True
                    nursery.start_soon(self._reader)
                    nursery.start_soon(self._writer)
                    task_status.started()
        finally:
            self._nursery = None
            if self._close_reason is None:  # the nursery we run in was cancelled
                self._shutdown(ConnectionLostError("the connection's tasks were cancelled"))
            await self._close_stream()

    async def _reader(self) -> None:
        core = self._core
        raw = self._raw
        receive = raw.receive if raw is not None else self._receive_stream
        on_response = self._on_response
        router = self._router
        try:
            while True:
                event = core.next_event()
                # Dispatch on the exact class, commonest first: this runs per message.
                cls = event.__class__
                if cls is Response:
                    on_response(event)  # type: ignore[arg-type]
                    if self._throttled is not None:
                        await self._throttled.wait_consumed()
                elif event is NEED_DATA:
                    data = await receive()
                    if data:
                        self._receives += 1
                        self._bytes_received += len(data)
                    core.receive_data(data)
                elif cls is NotificationResponse:
                    # A listener's burst: those right behind it are taken in one go.
                    first: NotificationResponse = event  # type: ignore[assignment]
                    burst = [Notification(first.channel, first.payload, first.process_id)]
                    core.take_notifications(burst, BURST - 1)
                    index = 0
                    while (index := router.notifications(burst, index)) >= 0:
                        await router.catch_up()
                elif isinstance(event, (NoticeResponse, ParameterStatus)):
                    if self._on_async_message(event):
                        # A subscriber that chose on_overflow="block" is full, or many
                        # messages went to subscribers at once: let them catch up.
                        await self._router.catch_up()
                elif isinstance(event, FatalError):
                    # The session is over; the server closes the socket next.
                    fatal = PostgresError.from_fields(event.error.fields)
                    self._shutdown(self._lost("the server closed the connection", fatal))
                    return
                elif isinstance(event, ConnectionClosed):
                    self._shutdown(self._lost("the server closed the connection", None))
                    return
                else:  # pragma: no cover - startup events cannot occur after startup
                    raise AssertionError(f"unexpected event {event!r}")
        except ProtocolError as exc:
            if core.eof_received:
                # Cut off mid-message: the server went away, it did not misbehave.
                self._shutdown(self._lost("the server closed the connection", exc))
            else:
                self._shutdown(exc)
        except TRANSPORT_ERRORS as exc:
            self._shutdown(self._lost("the connection to the server broke", exc))

    async def _receive_stream(self) -> bytes | bytearray:
        return await self._stream.receive_some(_RECEIVE_SIZE)

    async def _writer(self) -> None:
        core = self._core
        stream = self._stream
        signal = self._writer_signal
        try:
            while True:
                if self._carry:
                    data, self._carry = self._carry, b""
                else:
                    data = core.data_to_send()
                    if data:
                        self._writes += 1
                        self._bytes_sent += len(data)
                        self._output_room.set()
                if data:
                    await stream.send_all(data)
                elif self._closing:
                    return
                else:
                    self._writer_idle = True
                    try:
                        await signal.wait()
                    finally:
                        self._writer_idle = False
        except TRANSPORT_ERRORS as exc:
            self._shutdown(self._lost("the connection to the server broke", exc))
        finally:
            self._writer_done.set()

    def _on_response(self, event: Response) -> None:
        request = event.request
        pending = request.context
        if pending is not None and not request.abandoned:
            assert isinstance(pending, PendingRequest)
            pending.deliver(event.messages, event.done)
        elif pending is not None and event.done:
            assert isinstance(pending, PendingRequest)
            pending.deliver([], True)
        if event.done:
            offer = self._core.take_cancel()
            if offer is not None:
                self._start_cancel(offer)
        # A completed request may release held writes; COPY refusal queues bytes too.
        if self._core.has_data_to_send:
            self._writer_signal.set()

    def _on_async_message(self, message: NoticeResponse | ParameterStatus) -> bool:
        """Route to subscribers; True when the reader must await ``catch_up()`` first."""
        router = self._router
        if isinstance(message, NoticeResponse):
            return router.notice(message)
        return router.parameter(message)

    def _lost(self, what: str, cause: BaseException | None) -> ConnectionLostError:
        detail = f": {cause}" if cause is not None else ""
        error = ConnectionLostError(f"{what}{detail}")
        error.__cause__ = cause
        return error

    def _shutdown(self, reason: Error) -> None:
        """Make ``reason`` the close reason: fail every waiter and stop both tasks."""
        if self._close_reason is None:
            # Once aclose() began, whatever ends the stream is the local close.
            self._close_reason = (
                ConnectionLostError("the connection was closed by aclose()")
                if self._closing
                else reason
            )
        for request in self._core.requests():
            pending = request.context
            if isinstance(pending, PendingRequest):
                pending.fail(self._reason_for_waiter())
        self._router.close(None if self._closing else self._close_reason)
        self._output_room.set()
        self._tasks_scope.cancel()

    def _reason_for_waiter(self) -> Error:
        reason = self._close_reason
        assert reason is not None
        # A fresh exception per waiter: one object raised in many tasks would have its
        # traceback grow with each of them.
        error = type(reason)(*reason.args)
        error.__cause__ = reason.__cause__
        return error

    # -- requests ---------------------------------------------------------------------------
    # Registered by trio_pg.submission (SubmissionMixin); these two read and write the
    # connection's own state: its close reason, and the socket the writer owns.

    def _check_usable(self) -> None:
        if self._close_reason is not None:
            raise self._reason_for_waiter()
        if self._closing:
            raise ConnectionLostError("the connection is closed (aclose() was called)")

    def _write_now(self) -> bool:
        """Write what the core has queued from the calling task, without waiting.

        Only for a request on an otherwise idle connection, where latency is all that
        matters: waking the writer would cost a scheduling round. Requests of busy
        connections go through the writer, which coalesces them. Synchronous, so a
        cancelled caller cannot cut a write in half; safe only while the writer is
        parked with nothing left over (it never writes concurrently). What the socket
        does not take at once is left to the writer. Returns False when nothing was
        written this way (the caller then wakes the writer).
        """
        raw = self._raw
        if raw is None or not self._writer_idle or self._carry or self._closing:
            return False
        data = self._core.data_to_send()
        if not data:
            return True
        self._writes += 1
        self._bytes_sent += len(data)
        self._output_room.set()
        sent = raw.write_nowait(data)  # 0 if it would block or broke: the writer reports
        if sent < len(data):
            self._carry = data[sent:]
            self._writer_signal.set()
        return True

    # -- cancellation ---------------------------------------------------------------------

    def _start_cancel(self, request: Request) -> None:
        nursery = self._nursery
        if nursery is None or self.is_closed:
            self._core.cancel_finished(request)
            return
        pending = request.context
        if isinstance(pending, PendingRequest) and pending.done_event is None:
            pending.done_event = trio.Event()
        nursery.start_soon(self._cancel_and_watch, request)

    async def _cancel_and_watch(self, request: Request) -> None:
        """Send a CancelRequest; close the connection if the request outlives the grace."""
        key = self._core.backend_key
        with trio.move_on_after(self._cleanup_grace):
            try:
                if key is not None:
                    stream = await self._open_cancel_stream()
                    async with stream:
                        await stream.send_all(f.cancel_request(key.process_id, key.secret_key))
                        self._cancels_sent += 1
                        # The server closes the cancel connection once it has signalled
                        # the backend; waiting for that keeps later writes behind it.
                        while await stream.receive_some(64):
                            pass
            except (Error, *TRANSPORT_ERRORS) as exc:
                logger.debug("CancelRequest failed: %r", exc)
        self._core.cancel_finished(request)
        if self._core.has_data_to_send:
            self._writer_signal.set()
        pending = request.context
        if request.done or not isinstance(pending, PendingRequest):
            return
        assert pending.done_event is not None
        with trio.move_on_after(self._cleanup_grace):
            await pending.done_event.wait()
            return
        self._shutdown(
            ConnectionLostError(
                f"a cancelled query did not stop within cleanup_grace={self._cleanup_grace}s; "
                "the connection was closed instead of waited on"
            )
        )

    # -- closing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection: send Terminate, then close the stream. Idempotent.

        Runs shielded, bounded by ``cleanup_grace``, so the connection is closed even
        when the calling task is cancelled. Pending requests fail with
        :class:`~trio_pg.errors.ConnectionLostError`.
        """
        if not self._started and not self._closed.is_set():
            # The background tasks never ran, so nothing else will close the stream.
            self._closing = True
            self._shutdown(ConnectionLostError("the connection was closed by aclose()"))
            await self._close_stream()
        elif not self._closing:
            self._closing = True
            with trio.CancelScope(shield=True):
                with trio.move_on_after(self._cleanup_grace):
                    if self._close_reason is None:
                        # The writer sends Terminate after what it is writing, then exits.
                        self._core.send_terminate()
                        self._writer_signal.set()
                        await self._writer_done.wait()
                self._shutdown(ConnectionLostError("the connection was closed by aclose()"))
                with trio.move_on_after(self._cleanup_grace):
                    await self._closed.wait()
        else:
            with trio.CancelScope(shield=True), trio.move_on_after(self._cleanup_grace):
                await self._closed.wait()
        await trio.lowlevel.checkpoint()

    async def _close_stream(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(self._cleanup_grace):
            try:
                await self._stream.aclose()
            except TRANSPORT_ERRORS:
                pass
        self._closed.set()

    # -- used by the query layer --------------------------------------------------------------

    @property
    def _conn(self) -> Connection:
        # The connection itself; a ConnectionView forwards this attribute to its connection.
        return self

    @property
    def _registry(self) -> CodecRegistry:
        return self._codecs

    @property
    def _statement_cache(self) -> StatementCache:
        return self._cache

    # -- used by the pool ---------------------------------------------------------------------

    def _reusable(self) -> bool:
        """Whether the connection may go to another user as it is.

        Open, outside any transaction block, no request in flight (an abandoned query
        still draining, an unfinished pipeline or COPY), and no block holding the gate.
        """
        gate = self._gate
        return (
            not self.is_closed
            and self._core.pending == 0
            and self._core.transaction_status is TransactionStatus.IDLE
            and not (gate is not None and gate.held)
        )
