"""Cursors, COPY and function calls (mixed into Connection)."""

from __future__ import annotations

__all__ = ["StreamingMixin"]


class StreamingMixin:
    """Cursors, COPY and function calls."""
