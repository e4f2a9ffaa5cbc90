"""Transaction() blocks: BEGIN/COMMIT/ROLLBACK and savepoints (mixed into Connection)."""

from __future__ import annotations

__all__ = ["TransactionMixin"]


class TransactionMixin:
    """Transaction() blocks: BEGIN/COMMIT/ROLLBACK and savepoints."""
