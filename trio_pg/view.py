"""The object an exclusive block yields, so other tasks can work inside the block.

While a transaction, pipeline, cursor or COPY block holds a connection (see
:mod:`trio_pg.gate`), ordinary calls from other tasks wait for it to end. A helper task
that must run *inside* the block uses the :class:`ConnectionView` the block yields: the
same query methods, sent through the same connection, without waiting at the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trio_pg.pipeline import PipelineMixin
from trio_pg.queries import QueryMixin
from trio_pg.streaming import StreamingMixin
from trio_pg.subscriptions import NotifyMixin
from trio_pg.transaction import TransactionMixin

if TYPE_CHECKING:
    from trio_pg.connection import Connection
    from trio_pg.gate import Gate

__all__ = ["ConnectionView"]


class ConnectionView(QueryMixin, TransactionMixin, PipelineMixin, StreamingMixin, NotifyMixin):
    """Query methods of a connection that skip its gate (for use inside a block).

    Everything else (``parameters``, ``transaction_status``, ``statistics()``...) reads
    through to the connection.
    """

    _gate: Gate | None = None

    def __init__(self, conn: Connection) -> None:
        self._connection = conn

    @property
    def connection(self) -> Connection:
        """The connection this view sends through."""
        return self._connection

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the view does not define: the connection's state.
        return getattr(self._connection, name)
