"""trio_pg: a Trio-native PostgreSQL client.

Open a connection inside a nursery-scoped block::

    async with trio_pg.open_connection("postgresql://app@db/app") as conn:
        rows = await conn.fetch("SELECT id, name FROM users WHERE active = $1", True)

See ``API.md`` for the whole contract.
"""

from __future__ import annotations

from trio_pg.channels import Notice, Notification, ParameterChange, Subscription
from trio_pg.codecs import Codec, CodecRegistry, Format, Interval
from trio_pg.connect import connect, open_connection
from trio_pg.connection import Connection, ConnectionStatistics
from trio_pg.copy import CopyOutStream
from trio_pg.cursor import Cursor
from trio_pg.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectionLostError,
    Error,
    InterfaceError,
    InvalidPasswordError,
    NotificationOverflowError,
    PipelineAbortedError,
    PostgresError,
    ProtocolError,
    QueryCanceledError,
    TLSError,
    UniqueViolationError,
)
from trio_pg.listener import ListenerReconnected, open_listener
from trio_pg.pipeline import Pipeline
from trio_pg.pool import Pool, open_pool
from trio_pg.pool_stats import PoolStatistics
from trio_pg.protocol import TransactionStatus
from trio_pg.queries import PreparedStatement
from trio_pg.record import Record
from trio_pg.statement import ColumnInfo
from trio_pg.ticket import Ticket
from trio_pg.transaction_block import Transaction

__all__ = [
    "AuthenticationError",
    "Codec",
    "CodecRegistry",
    "ColumnInfo",
    "Connection",
    "ConnectionFailedError",
    "ConnectionLostError",
    "ConnectionStatistics",
    "CopyOutStream",
    "Cursor",
    "Error",
    "Format",
    "InterfaceError",
    "Interval",
    "InvalidPasswordError",
    "ListenerReconnected",
    "Notice",
    "Notification",
    "NotificationOverflowError",
    "ParameterChange",
    "Pipeline",
    "PipelineAbortedError",
    "Pool",
    "PoolStatistics",
    "PostgresError",
    "PreparedStatement",
    "ProtocolError",
    "QueryCanceledError",
    "Record",
    "Subscription",
    "TLSError",
    "Ticket",
    "Transaction",
    "TransactionStatus",
    "UniqueViolationError",
    "connect",
    "open_connection",
    "open_listener",
    "open_pool",
]

__version__ = "0.1.0.dev0"
