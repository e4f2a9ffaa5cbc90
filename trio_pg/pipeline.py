"""Pipeline() blocks: queued statements resolved as tickets (mixed into Connection)."""

from __future__ import annotations

__all__ = ["PipelineMixin"]


class PipelineMixin:
    """Pipeline() blocks: queued statements resolved as tickets."""
