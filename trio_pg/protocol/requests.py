"""What the sans-I/O core tracks per request, and the events it returns.

:class:`Request` is one entry of :class:`~trio_pg.protocol.client.ClientConnection`'s
request FIFO (see the theory of operation there); :class:`Response`,
:class:`FatalError`, :class:`ConnectionClosed` and :data:`NEED_DATA` are what its
``next_event`` returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from trio_pg.protocol import backend as b
from trio_pg.protocol.startup import ScramProof, StartupComplete

__all__ = [
    "NEED_DATA",
    "Boundary",
    "ConnectionClosed",
    "CopyInState",
    "Event",
    "FatalError",
    "NeedData",
    "Phase",
    "Request",
    "Response",
]


class Phase(enum.Enum):
    """Where the session is."""

    #: Startup message sent; authenticating.
    STARTUP = "startup"
    #: Requests may be sent.
    READY = "ready"
    #: End of stream seen, or a FATAL error received, or Terminate sent.
    CLOSED = "closed"


class Boundary(enum.Enum):
    """How a request ends (see the module docstring)."""

    #: At its last ReadyForQuery (one per Sync or simple Query).
    READY = "ready"
    #: With its Execute, sent with Flush and no Sync: PortalSuspended, CommandComplete or
    #: EmptyQueryResponse; after an ErrorResponse, at the ReadyForQuery of a Sync the
    #: core sends.
    FLUSH = "flush"


class CopyInState(enum.Enum):
    """Where a request that accepts COPY FROM STDIN (``copy_in=True``) is."""

    #: The server has not asked for data (yet).
    WAITING = "waiting"
    #: CopyInResponse arrived: CopyData may be sent.
    OPEN = "open"
    #: CopyDone was sent; the server finishes the COPY.
    DONE = "done"
    #: CopyFail was sent; the server answers with an ErrorResponse.
    FAILED = "failed"
    #: The server reported an error during COPY IN and left it; data would be dropped.
    ENDED = "ended"


class NeedData:
    """Sentinel type: feed bytes (``ClientConnection.receive_data``) before the next event."""

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by ``ClientConnection.next_event`` when more bytes are needed.
NEED_DATA: Final = NeedData()


class Request:
    """One operation in the request FIFO.

    Attributes:
        boundaries: ReadyForQuery messages still to come before the request is complete.
        boundary: How it ends: at ReadyForQuery, or with its Execute (Flush).
        simple: Sent with the simple query protocol (Query), not Parse/Bind/Execute/Sync.
        barrier: Later requests are held back until this one completes.
        copy: Its COPY FROM STDIN state when it accepts one (``copy_in=True``), else None.
        written: Its bytes have been handed out by ``ClientConnection.data_to_send``.
        done: Its last boundary arrived.
        abandoned: Nobody waits for its results any more; they are discarded.
        cancel_pending: A CancelRequest was offered and has not finished.
        context: Free slot for the I/O layer (its result channel, say).
    """

    __slots__ = (
        "abandoned",
        "barrier",
        "boundaries",
        "boundary",
        "cancel_pending",
        "cancel_requested",
        "context",
        "copy",
        "data",
        "done",
        "simple",
        "written",
    )

    def __init__(
        self, data: bytes, boundaries: int, simple: bool, barrier: bool, context: object
    ) -> None:
        self.data: bytes | None = data
        self.boundaries = boundaries
        self.simple = simple
        self.barrier = barrier
        self.context = context
        self.written = False
        self.done = False
        self.abandoned = False
        self.cancel_requested = False
        self.cancel_pending = False
        self.boundary = Boundary.READY
        self.copy: CopyInState | None = None

    def __repr__(self) -> str:
        state = "done" if self.done else "written" if self.written else "queued"
        flags = " abandoned" if self.abandoned else ""
        return f"<Request {state}{flags} boundaries={self.boundaries}>"


@dataclass(slots=True)
class Response:
    """Messages for ``request``, in order; ``done`` when its last boundary is among them.

    DataRow messages appear as their raw body (``bytes``); see
    :func:`trio_pg.protocol.backend.split_data_row`.
    """

    request: Request
    messages: list[b.BackendMessage]
    done: bool


@dataclass(frozen=True, slots=True)
class FatalError:
    """The server sent a FATAL or PANIC error: the session is over."""

    error: b.ErrorResponse


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """End of stream. ``expected`` when the client had sent Terminate."""

    expected: bool


#: What ``ClientConnection.next_event`` returns.
Event = (
    NeedData
    | ScramProof
    | StartupComplete
    | Response
    | FatalError
    | ConnectionClosed
    | b.NotificationResponse
    | b.NoticeResponse
    | b.ParameterStatus
)
