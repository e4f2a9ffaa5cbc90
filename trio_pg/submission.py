"""Registering requests in the connection's FIFO (mixed into Connection).

Theory of operation
-------------------
Every request a feature makes enters the connection here, in one synchronous step: the
request is registered in the core with the :class:`~trio_pg.pending.PendingRequest` its
results go to, and its bytes are queued behind those of earlier requests (see
:mod:`trio_pg.connection` for the reader and writer that take it from there).

* :meth:`~SubmissionMixin._submit`: an ordinary request; on an otherwise idle
  connection over a plain socket the calling task writes it itself
  (``Connection._write_now``).
* :meth:`~SubmissionMixin._submit_stream`: cursors and COPY (:mod:`trio_pg.streaming`).
* :meth:`~SubmissionMixin._submit_segment` and :meth:`~SubmissionMixin._continue_segment`:
  pipeline segments and ``executemany``, whose bytes may come in parts.
* :meth:`~SubmissionMixin._submit_unattended`: requests whose results nobody reads.

The open-portal guard: a cursor outside a transaction block keeps the unnamed portal of
an unsynced extended query open, which any other request would end. Between
:meth:`~SubmissionMixin._open_portal` and :meth:`~SubmissionMixin._close_portal` other
requests than the cursor's own are refused, and unattended ones are deferred until the
portal is closed.

COPY's flow control: the reader waits for a COPY TO STDOUT block's consumer
(:meth:`~SubmissionMixin._set_throttled`), and a COPY FROM STDIN producer waits for the
writer to take what is queued (:meth:`~SubmissionMixin._wait_for_output_room`).

A task cancelled while waiting abandons its request (:meth:`~SubmissionMixin._abandon`):
the core discards the request's remaining messages and may offer it for a
CancelRequest, which the connection sends (``Connection._start_cancel``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from trio_pg.errors import InterfaceError
from trio_pg.pending import PendingRequest
from trio_pg.protocol import Boundary
from trio_pg.protocol import frontend as f

if TYPE_CHECKING:
    from trio_pg.pending import WakeSignal
    from trio_pg.protocol import ClientConnection, Request
    from trio_pg.statement import StatementInfo

__all__ = ["SubmissionMixin"]

_PORTAL_OPEN: Final = (
    "a cursor is open outside a transaction block on this connection, and any other "
    "statement would end it; run the statement after the cursor's block, open the cursor "
    "inside conn.transaction(), or use another connection"
)


class SubmissionMixin:
    """How requests enter the FIFO: mixed into :class:`~trio_pg.connection.Connection`."""

    if TYPE_CHECKING:
        _core: ClientConnection
        _writer_signal: WakeSignal
        _output_room: WakeSignal
        _throttled: PendingRequest | None
        _portal_owner: object | None
        _deferred: list[bytes]
        _requests: int
        _statement_counter: int

        @property
        def is_closed(self) -> bool: ...

        def _check_usable(self) -> None: ...

        def _write_now(self) -> bool: ...

        def _start_cancel(self, request: Request) -> None: ...

    def _submit(
        self, data: bytes, *, boundaries: int = 1, simple: bool = False, barrier: bool = False
    ) -> PendingRequest:
        """Register a request and queue its bytes in one synchronous step."""
        self._check_usable()
        if self._portal_owner is not None:
            raise InterfaceError(_PORTAL_OPEN)
        pending = PendingRequest(self._abandon)
        core = self._core
        pending.request = core.send_request(
            data, boundaries=boundaries, simple=simple, barrier=barrier, context=pending
        )
        self._requests += 1
        if core.pending != 1 or not self._write_now():
            self._writer_signal.set()
        return pending

    def _submit_stream(
        self,
        data: bytes,
        *,
        boundary: Boundary = Boundary.READY,
        simple: bool = False,
        copy_in: bool = False,
        barrier: bool = False,
        owner: object = None,
    ) -> PendingRequest:
        """:meth:`_submit` for cursors and COPY; ``owner`` may continue its open portal."""
        self._check_usable()
        if self._portal_owner is not None and owner is not self._portal_owner:
            raise InterfaceError(_PORTAL_OPEN)
        pending = PendingRequest(self._abandon)
        pending.request = self._core.send_request(
            data,
            simple=simple,
            barrier=barrier,
            boundary=boundary,
            copy_in=copy_in,
            context=pending,
        )
        self._requests += 1
        self._writer_signal.set()
        return pending

    def _open_portal(self, owner: object) -> None:
        """A cursor keeps the unnamed portal of an unsynced extended query open.

        Outside a transaction block any other request would end the implicit transaction
        (its Sync) or replace the unnamed portal (its Bind), so others are refused until
        :meth:`_close_portal`; unattended ones are deferred.
        """
        if self._portal_owner is not None:
            raise InterfaceError(_PORTAL_OPEN)
        self._portal_owner = owner

    def _close_portal(self, closing: bytes = b"", *, attend: bool = False) -> PendingRequest | None:
        """End the portal guard after submitting ``closing``, then send what was deferred.

        ``attend``: return the closing request's results to wait on; otherwise nobody
        reads them (a block left by an exception, which must not wait).
        """
        self._portal_owner = None
        pending: PendingRequest | None = None
        try:
            if attend:
                pending = self._submit(closing)
            elif closing:
                self._submit_unattended(closing)
        finally:
            deferred, self._deferred = self._deferred, []
            for data in deferred:
                self._submit_unattended(data)
        return pending

    def _set_throttled(self, pending: PendingRequest | None) -> None:
        """Make the reader wait for ``pending``'s consumer (a COPY TO STDOUT block)."""
        self._throttled = pending

    async def _wait_for_output_room(self, limit: int) -> None:
        """Wait until at most ``limit`` bytes of COPY data are queued (producer backpressure).

        The writer signals each time it takes the queued bytes, so a producer holds at
        most ``limit`` bytes here plus one write in flight.
        """
        while self._core.output_buffered > limit:
            self._check_usable()
            await self._output_room.wait()
        self._check_usable()

    def _submit_unattended(self, data: bytes) -> None:
        """A request whose results nobody reads (closing an evicted statement)."""
        if self.is_closed:
            return
        if self._portal_owner is not None:
            self._deferred.append(data)  # sent once the cursor's portal is closed
            return
        self._core.send_request(data, context=None)
        self._requests += 1
        self._writer_signal.set()

    def _new_pending(self) -> PendingRequest:
        """A result sink for a request submitted in parts (:meth:`_submit_segment`)."""
        return PendingRequest(self._abandon)

    def _core_idle(self) -> bool:
        """Whether no request is in flight (nothing registered and unfinished)."""
        return self._core.pending == 0

    def _submit_segment(self, sink: PendingRequest, data: bytes, *, more: bool) -> None:
        """Register a pipeline segment whose messages go to ``sink`` (trio_pg.pipeline).

        ``more``: the segment's bytes continue with :meth:`_continue_segment`; later
        requests are held back until its last part.
        """
        self._check_usable()
        if self._portal_owner is not None:
            raise InterfaceError(_PORTAL_OPEN)
        core = self._core
        if more:
            sink.request = core.open_request(data, context=sink)
        else:
            sink.request = core.send_request(data, context=sink)
        self._requests += 1
        self._writer_signal.set()

    def _continue_segment(self, sink: PendingRequest, data: bytes, *, last: bool) -> None:
        """Queue more bytes of the open segment ``sink`` reads; ``last``: they end it."""
        self._check_usable()
        assert sink.request is not None
        self._core.extend_request(sink.request, data, last=last)
        self._writer_signal.set()

    def _abandon(self, pending: PendingRequest) -> None:
        request = pending.request
        if request is None or request.done:
            return
        self._core.abandon(request)
        if self._core.has_data_to_send:
            self._writer_signal.set()  # abandoning may queue bytes that end the request
        offer = self._core.take_cancel()
        if offer is not None:
            self._start_cancel(offer)

    def _close_statement_later(self, info: StatementInfo) -> None:
        if info.name and not info.closed:
            info.closed = True
            self._submit_unattended(f.close("S", info.name) + f.sync())

    def _next_statement_name(self) -> str:
        self._statement_counter += 1
        return f"__trio_pg_{self._statement_counter}"
