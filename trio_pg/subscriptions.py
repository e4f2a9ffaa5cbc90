"""Routing of asynchronous server messages: notifications, notices, parameter changes.

The reader task hands every NotificationResponse, NoticeResponse and ParameterStatus to
the connection's :class:`Router`, whatever request is running. Subscriptions (issue:
notifications) are memory channels fed with ``send_nowait``; the reader never blocks on
a subscriber.
"""

from __future__ import annotations

import logging

from trio_pg.errors import Error
from trio_pg.protocol.backend import NoticeResponse, NotificationResponse, ParameterStatus

__all__ = ["Router", "SubscriptionsMixin"]

logger = logging.getLogger("trio_pg")


class Router:
    """Delivers asynchronous messages to subscribers; logs notices nobody subscribed to."""

    def notification(self, message: NotificationResponse) -> None:
        """A NOTIFY arrived."""
        logger.debug("notification on %r with no subscriber dropped", message.channel)

    def notice(self, message: NoticeResponse) -> None:
        """A notice arrived."""
        fields = message.fields
        severity = fields.get("V") or fields.get("S", "NOTICE")
        logger.info("server %s: %s", severity, fields.get("M", ""))

    def parameter(self, message: ParameterStatus) -> None:
        """A server parameter changed (``Connection.parameters`` is already updated)."""

    def close(self, reason: Error | None) -> None:
        """The connection ended: ``reason`` when lost, None when closed locally."""


class SubscriptionsMixin:
    """``listen``, ``notify``, ``notices``, ``parameter_changes``: mixed into Connection."""
