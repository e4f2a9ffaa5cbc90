"""The value a NOTIFY delivers (public as :class:`trio_pg.Notification`).

It lives in the protocol layer because the listener's fast path reads thousands of
NotificationResponse messages per network read and builds these straight from the
receive buffer (:func:`trio_pg.protocol.inplace.read_notifications`), with no message
object in between.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Notification"]


class Notification(NamedTuple):
    """A NOTIFY delivered to a ``listen()`` subscription (sql-notify.html).

    A named tuple, as psycopg's ``Notify`` is: ``channel, payload, pid = notification``
    works, and so does comparing with a plain tuple.

    Attributes:
        channel: The channel it was sent on.
        payload: Its payload (``""`` when none was given).
        pid: The server process ID of the session that sent it.
    """

    channel: str
    payload: str
    pid: int
