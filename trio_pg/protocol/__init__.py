"""The sans-I/O PostgreSQL protocol core: framing, messages, startup and the client state.

Nothing here performs I/O; drive :class:`ClientConnection` with any I/O library:
feed received bytes to ``receive_data``, read events from ``next_event``, and write what
``data_to_send`` returns. Frontend messages are encoded by :mod:`.frontend`, backend
messages parsed by :mod:`.backend`.
"""

from __future__ import annotations

from trio_pg.protocol import backend, frontend
from trio_pg.protocol.backend import TransactionStatus, parse_message, split_data_row
from trio_pg.protocol.client import ClientConnection, may_copy_in, parse_server_version
from trio_pg.protocol.framing import DEFAULT_MAX_MESSAGE_SIZE, Framer
from trio_pg.protocol.requests import (
    NEED_DATA,
    Boundary,
    ConnectionClosed,
    CopyInState,
    Event,
    FatalError,
    NeedData,
    Phase,
    Request,
    Response,
)
from trio_pg.protocol.startup import (
    AUTH_METHODS,
    DEFAULT_MAX_SCRAM_ITERATIONS,
    ScramProof,
    StartupComplete,
    StartupMachine,
    StartupOptions,
    is_protocol_version_rejection,
)

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_SCRAM_ITERATIONS",
    "NEED_DATA",
    "Boundary",
    "ClientConnection",
    "ConnectionClosed",
    "CopyInState",
    "Event",
    "FatalError",
    "Framer",
    "NeedData",
    "Phase",
    "Request",
    "Response",
    "ScramProof",
    "StartupComplete",
    "StartupMachine",
    "StartupOptions",
    "TransactionStatus",
    "backend",
    "frontend",
    "is_protocol_version_rejection",
    "may_copy_in",
    "parse_message",
    "parse_server_version",
    "split_data_row",
]
