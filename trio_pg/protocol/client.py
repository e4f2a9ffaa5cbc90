"""The client side of one PostgreSQL session, without I/O.

Theory of operation
-------------------
Bytes in through :meth:`ClientConnection.receive_data`, events out of
:meth:`ClientConnection.next_event`; requests in through :meth:`send_request`, bytes out
of :meth:`data_to_send`. Nothing here blocks, sleeps or touches a socket.

The session has three phases (:class:`Phase`): STARTUP, delegated to
:class:`~trio_pg.protocol.startup.StartupMachine`; READY, where requests flow; CLOSED.

In READY, every operation is a :class:`Request`: the bytes of one or more Sync-terminated
message groups (or simple Query messages), registered in a FIFO in the same synchronous
call that queues its bytes. The server answers requests strictly in order and ends each
Sync or Query with ReadyForQuery, so the head of the FIFO owns every message until its
``boundaries`` ReadyForQuery messages have arrived (protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY).

Messages are routed as follows, in every phase (protocol-flow.html#PROTOCOL-ASYNC):

* NotificationResponse, NoticeResponse and ParameterStatus are *asynchronous*: they are
  returned on their own, untagged, whatever request is running.
* An ErrorResponse of severity FATAL or PANIC ends the session: :class:`FatalError`.
* Everything else belongs to the head request and is returned in :class:`Response`
  batches (consecutive DataRows are gathered in one pass, as raw bodies; consecutive
  CopyData come out as one CopyData holding their bytes: COPY data is read as a byte
  stream; COPY BOTH, whose messages would matter one by one, is refused).

Every message costs, so the everyday ones (DataRow, the bodiless completions,
CommandComplete, ReadyForQuery, NotificationResponse) are read in place from the receive
buffer (:mod:`trio_pg.protocol.inplace`); anything else, malformed or incomplete there
falls through to the general path, which parses (or refuses) it as always.

An *abandoned* request (its caller went away) keeps its place: its messages are read and
discarded up to its boundary, so the session never falls out of step. If the abandoned
request is the only one the server has been sent, :meth:`take_cancel` offers it for a
CancelRequest, and writes of later requests are held until both its boundary has arrived
and the cancel connection has finished (:meth:`cancel_finished`), so the cancel cannot
hit a later query. A request not yet written when abandoned is simply dropped.

A request whose SQL may start ``COPY ... FROM STDIN`` is a *barrier*: later requests are
not written until it completes, because the server in COPY IN mode would swallow their
messages. If such a request does enter COPY IN and nobody drives it (issue a CopyFail),
the core answers with CopyFail itself, plus the Sync the server ignored during COPY IN
for extended-protocol requests (protocol-flow.html#PROTOCOL-COPY).

A simple-protocol request registered with ``copy_in=True`` accepts COPY IN instead: once
its CopyInResponse arrives, the I/O layer sends :meth:`ClientConnection.send_copy_data`,
then ``send_copy_done`` or ``send_copy_fail``; the bytes go out as control data (the
request is a barrier, so nothing else is on the wire behind it). Abandoning it while the
server waits for data sends CopyFail, which ends the COPY without a CancelRequest.
CopyBothResponse (streaming replication) is refused by sending CopyDone when the request
is alone on the wire, so the server ends the stream and the session stays in step.

Every request has a :class:`Boundary` kind. READY requests end at their last
ReadyForQuery. FLUSH requests (an Execute with a row limit followed by Flush, for
cursors) end with their Execute: PortalSuspended, CommandComplete or EmptyQueryResponse.
After an ErrorResponse the server discards messages until a Sync
(protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY), so the core sends one and the request
ends at its ReadyForQuery instead. FLUSH requests are barriers: anything written behind
them would be discarded after such an error.

A request may be sent in parts (:meth:`ClientConnection.open_request`, then
:meth:`~ClientConnection.extend_request`): a pipeline segment whose statements keep
coming, each part ending with Flush so results flow, the last with its Sync. Once written
it holds back every later request until its last part is queued, as their messages
would land inside it. Abandoned before that, the core ends it with a message that fails
(so the segment's implicit transaction rolls back) and the Sync.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable
from typing import Final

from trio_pg.errors import ProtocolError
from trio_pg.protocol import backend as b
from trio_pg.protocol import frontend as f
from trio_pg.protocol.framing import DEFAULT_MAX_MESSAGE_SIZE, Framer
from trio_pg.protocol.inplace import read_notifications, scan_request
from trio_pg.protocol.notification import Notification
from trio_pg.protocol.requests import (
    NEED_DATA,
    Boundary,
    ConnectionClosed,
    CopyInState,
    Event,
    FatalError,
    Phase,
    Request,
    Response,
)
from trio_pg.protocol.startup import ScramProof, StartupComplete, StartupMachine, StartupOptions

__all__ = ["ClientConnection", "may_copy_in", "parse_server_version"]

_ASYNC_TYPES: Final = frozenset((b"A", b"N", b"S"))
_ASYNC_CLASSES: Final = (b.NotificationResponse, b.NoticeResponse, b.ParameterStatus)
_COPY_WORD: Final = re.compile(r"copy", re.IGNORECASE)
#: The messages that end an Execute, and so a FLUSH request (protocol-message-formats.html:
#: Execute answers with one of these unless it fails).
_EXECUTE_ENDS: Final = frozenset((b.PortalSuspended, b.CommandComplete, b.EmptyQueryResponse))
_LENGTH: Final = struct.Struct("!i")
_COPY_DATA: Final = ord("d")
#: Ends an open request abandoned before its last part: Describe of a portal that cannot
#: exist fails, so the server rolls back the unfinished implicit transaction instead of
#: committing what it ran, then discards messages up to the Sync, whose ReadyForQuery ends
#: the request (protocol-flow.html#PROTOCOL-FLOW-PIPELINING).
_END_ABANDONED: Final = f.describe("P", "__trio_pg_abandoned") + f.sync()
_VERSION: Final = re.compile(r"(\d+)(?:\.(\d+))?")


def may_copy_in(sql: str) -> bool:
    """Whether ``sql`` could start COPY FROM STDIN (errs on the side of yes)."""
    return _COPY_WORD.search(sql) is not None


def parse_server_version(text: str) -> tuple[int, ...]:
    """``"15.18 (Debian 15.18-0+deb12u1)"`` → ``(15, 18)``; ``"18beta1"`` → ``(18, 0)``."""
    m = _VERSION.match(text.strip())
    if m is None:
        return (0, 0)
    return (int(m.group(1)), int(m.group(2) or 0))


class ClientConnection:
    """Sans-I/O state of one client session. See the module docstring."""

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._framer = Framer(max_message_size)
        self.phase = Phase.STARTUP
        self._startup: StartupMachine | None = None
        self._fifo: deque[Request] = deque()
        self._unsent: deque[Request] = deque()
        self._control: list[bytes] = []
        self._copy_buffered = 0
        self._blocker: Request | None = None
        self._open: Request | None = None  # registered, more of its bytes to come
        self._written = 0  # requests written and not done
        self._cancel_offer: Request | None = None
        self._stash: b.BackendMessage | None = None
        # CommandComplete by raw body: the same few tags come back again and again.
        self._tags: dict[bytes, b.CommandComplete] = {}
        self._terminated = False
        self.parameters: dict[str, str] = {}
        self.transaction_status = b.TransactionStatus.IDLE
        self.protocol_version: tuple[int, int] = (3, 0)
        self.backend_key: b.BackendKeyData | None = None
        self._steps: dict[type, Callable[[Request, b.BackendMessage], bool]] = {
            b.ReadyForQuery: self._step_ready_for_query,
            b.ErrorResponse: self._step_error,
            b.CopyInResponse: self._step_copy_in,
            b.CopyBothResponse: self._step_copy_both,
            **dict.fromkeys(_EXECUTE_ENDS, self._step_execute_end),
        }

    # -- startup ------------------------------------------------------------------------

    def start(self, options: StartupOptions) -> None:
        """Queue the StartupMessage; events then drive authentication."""
        if self._startup is not None or self.phase is not Phase.STARTUP:
            raise RuntimeError("start() may be called once, on a new connection")
        self._startup = StartupMachine(options)
        self._control.append(self._startup.initial_message())

    @property
    def server_version(self) -> tuple[int, ...]:
        """The server's version from its ``server_version`` parameter, e.g. ``(18, 4)``."""
        return parse_server_version(self.parameters.get("server_version", ""))

    # -- requests -----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Requests registered and not complete (abandoned ones included)."""
        return len(self._fifo)

    def requests(self) -> tuple[Request, ...]:
        """The registered requests not yet complete, oldest first."""
        return tuple(self._fifo)

    def send_request(
        self,
        data: bytes,
        *,
        boundaries: int = 1,
        simple: bool = False,
        barrier: bool = False,
        boundary: Boundary = Boundary.READY,
        copy_in: bool = False,
        context: object = None,
    ) -> Request:
        """Register a request and queue its bytes, in one step.

        Args:
            data: The complete messages of the request.
            boundaries: How many ReadyForQuery messages end it (its Sync/Query count);
                ignored for a FLUSH request.
            simple: It uses the simple query protocol.
            barrier: Hold later requests until this one completes (COPY FROM STDIN).
            boundary: READY, or FLUSH for one Execute followed by Flush (a barrier).
            copy_in: The caller drives COPY FROM STDIN for it (see
                :meth:`send_copy_data`); a simple-protocol request only, and a barrier.
            context: Anything the I/O layer wants to find on the request again.

        Raises:
            RuntimeError: The session is not in the READY phase.
            ValueError: The options contradict each other.
        """
        if self.phase is not Phase.READY:
            raise RuntimeError(f"cannot send a request in phase {self.phase.name}")
        if boundary is Boundary.FLUSH:
            if copy_in or simple:
                raise ValueError("a FLUSH request is one extended-protocol Execute")
            boundaries = 1
            barrier = True
        elif boundaries < 1:
            raise ValueError("a request needs at least one Sync or Query boundary")
        if copy_in:
            if not simple:
                # After an error in COPY IN the server wants a Sync from an extended
                # query; the simple protocol ends with ReadyForQuery on its own.
                raise ValueError("copy_in requests must use the simple query protocol")
            barrier = True
        request = Request(data, boundaries, simple, barrier, context)
        request.boundary = boundary
        if copy_in:
            request.copy = CopyInState.WAITING
        self._fifo.append(request)
        self._unsent.append(request)
        return request

    def abandon(self, request: Request) -> None:
        """Nobody will read ``request``'s results: discard them as they arrive.

        A request not yet written is dropped from the output instead.
        """
        if request.done or request.abandoned:
            return
        request.abandoned = True
        if request is self._open:
            self._open = None
            if request.written:
                self._control.append(_END_ABANDONED)
        if not request.written:
            try:
                self._unsent.remove(request)
                self._fifo.remove(request)
            except ValueError:  # pragma: no cover - written and unsent sets are disjoint
                pass
            request.done = True
            request.data = None
            return
        if request.copy is CopyInState.OPEN:
            # The server waits for data: CopyFail ends the COPY at once, no cancel needed.
            self.send_copy_fail(request, "the COPY was abandoned by the client")
        self._maybe_offer_cancel()

    def _maybe_offer_cancel(self) -> None:
        # Only when the abandoned request is the one request the server has: a cancel
        # then cannot reach anything else, given later writes are held (see docstring).
        if not self._fifo or self._written != 1:
            return
        head = self._fifo[0]
        if head.copy is CopyInState.OPEN or head.copy is CopyInState.FAILED:
            return  # ending with the CopyFail that was (or will be) sent
        if head.abandoned and head.written and not head.cancel_requested:
            head.cancel_requested = True
            head.cancel_pending = True
            self._blocker = head
            self._cancel_offer = head

    def take_cancel(self) -> Request | None:
        """A request for which a CancelRequest should be sent now, if any (at most once)."""
        offer, self._cancel_offer = self._cancel_offer, None
        return offer

    def cancel_finished(self, request: Request) -> None:
        """The CancelRequest for ``request`` was delivered (or failed): writes may resume."""
        request.cancel_pending = False

    # -- COPY FROM STDIN ----------------------------------------------------------------

    @property
    def output_buffered(self) -> int:
        """Bytes of COPY data queued and not yet handed out by :meth:`data_to_send`."""
        return self._copy_buffered

    def send_copy_data(self, request: Request, data: bytes | bytearray | memoryview) -> bool:
        """Queue CopyData for ``request``; False (nothing queued) when it takes no data.

        A request takes data from its CopyInResponse until CopyDone or CopyFail is sent,
        or the server reports an error (which ends COPY IN on its side).
        """
        if request.copy is not CopyInState.OPEN or self._terminated:
            return False
        if data:
            # CopyData's header and body are queued apart, so the body is copied once,
            # by the join in data_to_send (protocol-message-formats.html, CopyData).
            header = b"d" + _LENGTH.pack(len(data) + 4)
            self._control.append(header)
            self._control.append(bytes(data) if data.__class__ is not bytes else data)
            self._copy_buffered += len(header) + len(data)
        return True

    def send_copy_done(self, request: Request) -> bool:
        """Queue CopyDone: ``request``'s data is complete. False when it takes no data."""
        if request.copy is not CopyInState.OPEN or self._terminated:
            return False
        request.copy = CopyInState.DONE
        self._control.append(f.copy_done())
        return True

    def send_copy_fail(self, request: Request, reason: str) -> bool:
        """Queue CopyFail: the server rolls the COPY back and answers with an error.

        Returns False (nothing queued) when ``request`` takes no data.
        """
        if request.copy is not CopyInState.OPEN or self._terminated:
            return False
        request.copy = CopyInState.FAILED
        self._control.append(f.copy_fail(reason))
        return True

    # -- requests sent in parts (pipelines) ------------------------------------------------

    def open_request(self, data: bytes, *, context: object = None) -> Request:
        """Register a request whose bytes continue later (:meth:`extend_request`).

        The request ends at one ReadyForQuery, so its last part must hold its Sync. Once
        written, it holds back every later request until that last part is queued: their
        messages would otherwise land inside it on the server. At most one request may be
        open at a time.

        Raises:
            RuntimeError: The session is not READY, or another request is open.
        """
        if self._open is not None:
            raise RuntimeError("another request is still open; end it with extend_request()")
        request = self.send_request(data, context=context)
        self._open = request
        return request

    def extend_request(self, request: Request, data: bytes, *, last: bool = False) -> None:
        """Queue more bytes of the open ``request``; ``last``: they end it (with its Sync).

        Raises:
            RuntimeError: ``request`` is not the open request.
        """
        if request is not self._open:
            raise RuntimeError("extend_request() needs the request open_request() returned")
        if last:
            self._open = None
        if self._terminated:
            return
        if request.written:
            # Later requests are held while it is open, so control output is next in line.
            self._control.append(data)
        else:
            assert request.data is not None
            request.data += data

    def send_terminate(self) -> None:
        """Queue Terminate; nothing may be sent after it."""
        if self._terminated:
            return
        self._terminated = True
        self._unsent.clear()
        self._control.append(f.terminate())

    def data_to_send(self) -> bytes:
        """Bytes to write now, in order. Held requests stay queued."""
        out = self._control
        self._control = []
        self._copy_buffered = 0
        if self._terminated:
            return b"".join(out)
        blocker = self._blocker
        if blocker is not None:
            if not blocker.done or blocker.cancel_pending:
                return b"".join(out)
            self._blocker = None
        if self._open is not None and self._open.written:
            return b"".join(out)
        unsent = self._unsent
        while unsent:
            request = unsent.popleft()
            assert request.data is not None
            out.append(request.data)
            request.data = None
            request.written = True
            self._written += 1
            if request.barrier:
                self._blocker = request
                break
            if request is self._open:
                break
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return something now."""
        if self._control:
            return True
        if self._terminated or not self._unsent:
            return False
        if self._open is not None and self._open.written:
            return False
        blocker = self._blocker
        return blocker is None or (blocker.done and not blocker.cancel_pending)

    # -- receiving ----------------------------------------------------------------------

    @property
    def eof_received(self) -> bool:
        """Whether the end of the server's stream has been fed in."""
        return self._framer.eof

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes read from the server; ``b""`` means end of stream."""
        self._framer.feed(data)

    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA`.

        Raises:
            ProtocolError: The server broke the protocol; the session is unusable.
            PostgresError: During startup, the server refused the connection.
            AuthenticationError: During startup, authentication failed on the client side.
        """
        if self.phase is Phase.STARTUP:
            return self._next_startup_event()
        return self._next_ready_event()

    def _next_startup_event(self) -> Event:
        machine = self._startup
        if machine is None:
            raise RuntimeError("call start() first")
        while True:
            item = self._framer.next_message()
            if item is None:
                return self._end_of_data()
            msg = b.parse_message(*item)
            if isinstance(msg, b.NoticeResponse):
                return msg
            result = machine.handle(msg)
            output = machine.take_output()
            if output:
                self._control.append(output)
            if isinstance(result, ScramProof):
                return ScramProof(self._proof_runner(result, machine))
            if isinstance(result, StartupComplete):
                self.phase = Phase.READY
                self.parameters.update(machine.parameters)
                self.backend_key = machine.backend_key
                self.protocol_version = result.protocol_version
                self.transaction_status = result.status
                self._startup = None
                return result

    def _proof_runner(self, proof: ScramProof, machine: StartupMachine) -> Callable[[], None]:
        def run() -> None:
            proof.run()
            self._control.append(machine.take_output())

        return run

    def _end_of_data(self) -> Event:
        if not self._framer.eof:
            return NEED_DATA
        if self._framer.buffered:
            self.phase = Phase.CLOSED
            raise ProtocolError("connection closed in the middle of a message")
        expected = self._terminated
        self.phase = Phase.CLOSED
        return ConnectionClosed(expected)

    def _next_ready_event(self) -> Event:
        framer = self._framer
        fifo = self._fifo
        if self._stash is None and not framer.buffered and not framer.eof:
            return NEED_DATA  # the reader's usual question after each response
        batch: list[b.BackendMessage] | None = None
        head: Request | None = None
        if self._stash is None and framer.next_type() == 65:  # NotificationResponse
            taken: list[Notification] = []
            self.take_notifications(taken, 1)
            if taken:
                channel, payload, pid = taken[0]
                return b.NotificationResponse(pid, channel, payload)
        if self._stash is None and fifo and fifo[0].written:
            # The head owns whatever comes next that is not asynchronous.
            head = fifo[0]
            batch = []
        while True:
            if self._stash is not None:
                msg: b.BackendMessage = self._stash
                self._stash = None
                if isinstance(msg, _ASYNC_CLASSES):
                    # Held back behind a batch: it is still delivered on its own.
                    return self._async_event(msg)
            else:
                if head is not None:
                    assert batch is not None
                    if self._scan(head, batch):
                        return Response(head, batch, True)
                    if framer.next_type() == _COPY_DATA:
                        # A COPY stream: consecutive CopyData come out as one message.
                        bodies: list[bytes] = []
                        framer.take_bodies(_COPY_DATA, bodies)
                        if bodies and not head.abandoned:
                            data = bodies[0] if len(bodies) == 1 else b"".join(bodies)
                            batch.append(b.CopyData(data))
                item = framer.next_message()
                if item is None:
                    if batch:
                        assert head is not None
                        return Response(head, batch, False)
                    return self._end_of_data()
                type_byte, body = item
                # DataRow bodies are validated when split into columns.
                msg = body if type_byte == b"D" else b.parse_message(type_byte, body)
                if type_byte in _ASYNC_TYPES:
                    if batch:
                        # Deliver what was gathered first, keep the message for next time.
                        self._stash = msg
                        assert head is not None
                        return Response(head, batch, False)
                    return self._async_event(msg)  # type: ignore[arg-type]
            if isinstance(msg, b.ErrorResponse) and msg.is_fatal:
                if batch:
                    self._stash = msg
                    assert head is not None
                    return Response(head, batch, False)
                self.phase = Phase.CLOSED
                return FatalError(msg)
            if head is None:
                if not fifo:
                    name = "DataRow" if isinstance(msg, bytes) else type(msg).__name__
                    raise ProtocolError(f"unexpected {name} with no request pending")
                head = fifo[0]
                if not head.written:
                    raise ProtocolError("server answered a request that was never sent")
                batch = []
            assert batch is not None
            step = self._steps.get(msg.__class__)
            if step is not None and step(head, msg):
                self._complete(head)
                if not head.abandoned:
                    batch.append(msg)
                return Response(head, batch, True)
            if not head.abandoned:
                batch.append(msg)

    def take_notifications(self, out: list[Notification], limit: int) -> None:
        """Append up to ``limit`` NotificationResponse messages that come next, in order.

        For a listener's burst: after :meth:`next_event` returned a notification, those
        right behind it are taken in one call, read in place, each as the
        :class:`~trio_pg.protocol.notification.Notification` subscribers receive (no
        message object: thousands may come in one read). Stops at any other message,
        and at a malformed or incomplete one (which :meth:`next_event` then handles).
        """
        if self._stash is None and self.phase is Phase.READY:
            read_notifications(self._framer, out, limit)

    def _scan(self, head: Request, batch: list[b.BackendMessage]) -> bool:
        """Take the head's everyday messages in place; True when the request completed."""
        status, done = scan_request(self._framer, head, batch, self._tags)
        if status is not None:
            self.transaction_status = status
        if done:
            self._complete(head)
        return done

    # Steps: what a message does to the head request beyond being delivered. Each returns
    # whether the message ends the request. Dispatched by message class (self._steps).

    def _step_ready_for_query(self, head: Request, msg: b.BackendMessage) -> bool:
        assert isinstance(msg, b.ReadyForQuery)
        self.transaction_status = msg.status
        if head.boundary is Boundary.FLUSH:
            raise ProtocolError("ReadyForQuery for an Execute that was sent without Sync")
        head.boundaries -= 1
        return head.boundaries == 0

    def _step_execute_end(self, head: Request, msg: b.BackendMessage) -> bool:
        return head.boundary is Boundary.FLUSH

    def _step_error(self, head: Request, msg: b.BackendMessage) -> bool:
        if head.copy is CopyInState.OPEN:
            head.copy = CopyInState.ENDED  # the server left COPY IN; more data is dropped
        if head.boundary is Boundary.FLUSH:
            self._sync_after_error(head)
        return False

    def _step_copy_in(self, head: Request, msg: b.BackendMessage) -> bool:
        if head.copy is CopyInState.WAITING and not head.abandoned:
            head.copy = CopyInState.OPEN
        else:
            # Nobody will feed it (not a copy_in request, abandoned, or a second COPY in
            # one request): refuse it so the server leaves COPY IN mode.
            self._refuse_copy_in(head)
        return False

    def _step_copy_both(self, head: Request, msg: b.BackendMessage) -> bool:
        if self._written != 1:
            raise ProtocolError(
                "the server started COPY BOTH (streaming replication), which trio_pg does "
                "not support, while later requests were on the wire"
            )
        # Alone on the wire: CopyDone asks the server to end the stream; it answers with
        # its own CopyDone, CommandComplete and ReadyForQuery (protocol-flow.html#PROTOCOL-COPY).
        # Nothing may be written behind it meanwhile.
        head.barrier = True
        self._blocker = head
        if not self._terminated:
            self._control.append(f.copy_done())
        return False

    def _sync_after_error(self, head: Request) -> None:
        # After an error the server discards messages until Sync
        # (protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY); the request now ends at its RFQ.
        head.boundary = Boundary.READY
        head.boundaries = 1
        if not self._terminated:
            self._control.append(f.sync())

    def _async_event(
        self, msg: b.NotificationResponse | b.NoticeResponse | b.ParameterStatus
    ) -> Event:
        if isinstance(msg, b.ParameterStatus):
            self.parameters[msg.name] = msg.value
        return msg

    def _refuse_copy_in(self, request: Request) -> None:
        if not request.barrier:
            # Later requests may already be on the wire, and COPY IN would eat them.
            raise ProtocolError("server entered COPY IN mode for a request not marked as COPY")
        reason = "COPY FROM STDIN is only supported through Connection.copy_in()"
        if request.copy is not None:
            reason = "copy_in() feeds one COPY FROM STDIN per call"
            request.copy = CopyInState.FAILED
        self._control.append(f.copy_fail(reason))
        if request.boundary is Boundary.FLUSH:
            self._sync_after_error(request)  # an Execute sent with Flush: no Sync yet
        elif not request.simple:
            # The Sync sent with the request was ignored during COPY IN; the server
            # discards input until the next one after the error.
            self._control.append(f.sync())

    def _complete(self, request: Request) -> None:
        self._fifo.popleft()
        request.done = True
        self._written -= 1
        self._maybe_offer_cancel()
