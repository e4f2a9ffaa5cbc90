"""Asynchronous server messages as subscriber channels: notifications, notices, parameters.

Theory of operation
-------------------
The server may send NotificationResponse, NoticeResponse and ParameterStatus at any
time, in the middle of a result or while the session is idle
(protocol-flow.html#PROTOCOL-ASYNC). The reader task hands each one to the connection's
:class:`Router`, synchronously, whatever request is running; the router turns it into a
:class:`~trio_pg.channels.Notification`, :class:`~trio_pg.channels.Notice` or
:class:`~trio_pg.channels.ParameterChange` and offers it to every interested
:class:`~trio_pg.channels.Subscription` without waiting, in server order.

The reader never waits on a subscriber, with two exceptions it asks for by the return
value of the router's methods, before it reads on (:meth:`Router.catch_up`):

* a subscription made with ``on_overflow="block"`` is full: the reader waits for room,
  which stops reading the socket and so pushes back on the server;
* many messages went to subscribers in one go: the reader yields once, so subscribers
  get to run between the messages of one large network read.

LISTEN bookkeeping. Several subscriptions may hold one channel; the server is told
LISTEN when a channel gains its first holder and UNLISTEN when it loses its last. Each
decision is taken, and its command queued, in one synchronous step after the call has
passed the connection's gate, so the order of the decisions is the order of the
commands on the wire. :attr:`Router.listening` is where the server may be listening
(a superset: a command whose outcome is unknown counts as done); :attr:`Router.confirmed`
is where it surely is (a LISTEN completed and no UNLISTEN was queued since). A LISTEN is
sent for every channel of a new subscription that is not confirmed, so a subscription
never starts before the server listens. Notifications on a channel nobody holds (after
an UNLISTEN whose outcome was unknown, say) are dropped with a debug log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

from trio_pg.channels import (
    DEFAULT_MAX_BUFFER,
    STREAK,
    Notice,
    Notification,
    OverflowPolicy,
    ParameterChange,
    Subscription,
    block_policy,
)
from trio_pg.errors import (
    ConnectionLostError,
    Error,
    InterfaceError,
    PostgresError,
    ProtocolError,
)
from trio_pg.protocol import TransactionStatus
from trio_pg.protocol.backend import NoticeResponse, ParameterStatus
from trio_pg.sql import quote_ident

if TYPE_CHECKING:
    from trio_pg.gate import Gate

__all__ = ["BURST", "NotifyMixin", "Router", "SubscriptionsMixin", "channel_names"]

logger = logging.getLogger("trio_pg")

_T = TypeVar("_T")

#: Messages handed to subscribers before the reader yields to them once: a subscriber's
#: streak (see channels.STREAK), so each takes what the reader gave it in one turn.
BURST: Final = STREAK
#: NAMEDATALEN - 1: longer identifiers are truncated by the server (sql-syntax-lexical.html),
#: and notifications would then arrive under a name no subscription holds.
_MAX_IDENTIFIER_BYTES: Final = 63
#: Notice severities (the never-translated ``V`` field) and the log level for each.
_NOTICE_LEVELS: Final = {
    "WARNING": logging.WARNING,
    "NOTICE": logging.INFO,
    "INFO": logging.INFO,
    "LOG": logging.INFO,
}


def channel_names(channels: Iterable[str]) -> tuple[str, ...]:
    """Check channel names and drop repeats, keeping their order.

    Raises:
        InterfaceError: No channel, or one that is not a usable identifier.
    """
    names: dict[str, None] = {}
    for name in channels:
        if not isinstance(name, str) or not name:
            raise InterfaceError(f"a channel name must be a non-empty string, got {name!r}")
        if "\x00" in name:
            raise InterfaceError(f"channel name {name!r} contains a NUL character")
        if len(name.encode()) > _MAX_IDENTIFIER_BYTES:
            raise InterfaceError(
                f"channel name {name!r} is longer than {_MAX_IDENTIFIER_BYTES} bytes; "
                "the server would truncate it, so use a shorter name"
            )
        names[name] = None
    if not names:
        raise InterfaceError("name at least one channel to listen on")
    return tuple(names)


def _log_notice(notice: Notice) -> None:
    level = _NOTICE_LEVELS.get(notice.severity, logging.DEBUG)
    extra = "".join(
        f"\n  {label}: {text}"
        for label, text in (("DETAIL", notice.detail), ("HINT", notice.hint))
        if text
    )
    logger.log(level, "server %s: %s%s", notice.severity, notice.message, extra)


class Router:
    """Delivers asynchronous messages to subscribers; see the module docstring.

    The reader calls :meth:`notifications`, :meth:`notice` and :meth:`parameter`; when one
    asks for it (True, or an index to go on from) it awaits :meth:`catch_up` first.

    Attributes:
        listening: Channels the server may be listening on.
        confirmed: Channels the server is listening on for sure.
    """

    def __init__(self) -> None:
        self._by_channel: dict[str, list[Subscription[Notification]]] = {}
        self._notices: list[Subscription[Notice]] = []
        self._parameters: list[Subscription[ParameterChange]] = []
        self._held: list[tuple[Subscription[Any], Any]] = []
        self._delivered = 0
        self._closed = False
        self._reason: Error | None = None
        self.listening: set[str] = set()
        self.confirmed: set[str] = set()

    # -- called by the reader ------------------------------------------------------------

    def notifications(self, messages: list[Notification], start: int) -> int:
        """NOTIFYs arrived: deliver ``messages[start:]`` to the channels' subscribers.

        Stops after a message that makes the reader wait (a "block" subscriber is full,
        a subscriber's buffer is half full, or a burst was delivered) and returns the
        index to go on from once :meth:`catch_up` has been awaited; -1 when all were
        delivered and no wait is needed.
        """
        # A burst is mostly one channel: each run of notifications on the same channel
        # (read_notifications gives them one shared str) goes to its subscribers at once.
        by_channel = self._by_channel
        held = self._held
        delivered = self._delivered
        count = len(messages)
        index = start
        while index < count:
            channel = messages[index][0]
            subs = by_channel.get(channel)
            run = max(1, BURST - delivered)
            # Also fill no buffer past half before its subscriber gets a turn: one that
            # keeps reading then keeps up even with a small max_buffer.
            room = min([sub._room_to_half() for sub in subs]) if subs else run
            limit = min(count, index + max(1, min(room, run)))
            stop = index + 1
            while stop < limit and messages[stop][0] is channel:
                stop += 1
            if not subs:
                logger.debug("notifications on %r with no subscriber dropped", channel)
                index = stop
                continue
            wait = stop - index >= room  # a buffer is half full: its subscriber's turn
            for sub in subs:
                refused = sub._offer_run(messages, index, stop)
                if refused < stop:
                    # A full "block" subscriber: the reader puts the rest when it can.
                    held.extend([(sub, value) for value in messages[refused:stop]])
                    wait = True
            delivered += (stop - index) * len(subs)
            index = stop
            if wait or delivered >= BURST:
                self._delivered = delivered
                return index
        self._delivered = delivered
        return -1

    def notice(self, message: NoticeResponse) -> bool:
        """A notice arrived; logged when nobody subscribed. True: await :meth:`catch_up`."""
        notice = Notice.from_fields(message.fields)
        if not self._notices:
            _log_notice(notice)
            return False
        return self._fan_out(self._notices, notice)

    def parameter(self, message: ParameterStatus) -> bool:
        """A server parameter changed (``Connection.parameters`` is already updated).

        True: await :meth:`catch_up` before reading on.
        """
        if not self._parameters:
            return False
        return self._fan_out(self._parameters, ParameterChange(message.name, message.value))

    def _fan_out(self, subs: list[Subscription[_T]], item: _T) -> bool:
        wait = False
        for sub in subs:
            if sub._offer(item):
                self._held.append((sub, item))
                wait = True
        self._delivered += len(subs)
        return wait or self._delivered >= BURST

    async def catch_up(self) -> None:
        """Let subscribers catch up: wait for room where a "block" subscriber is full."""
        held, self._held = self._held, []
        self._delivered = 0
        for sub, item in held:
            await sub._put(item)
        # Also a cancellation point: after a shutdown the reader must stop here, not go
        # on routing the rest of what it had read to requests that already failed.
        await trio.lowlevel.checkpoint()

    def close(self, reason: Error | None) -> None:
        """The connection ended: ``reason`` when lost, None when closed locally.

        Subscribers get what they hold, then ``reason`` (or the end of iteration).
        """
        if self._closed:
            return
        self._closed = True
        self._reason = reason
        self._held.clear()
        groups: list[list[Subscription[Any]]] = [*self._by_channel.values()]
        groups += [self._notices, self._parameters]
        for subs in groups:
            for sub in subs:
                sub._finish(reason)

    # -- called by subscribing tasks -------------------------------------------------------

    def add_listener(self, names: Iterable[str], sub: Subscription[Notification]) -> None:
        """Make ``sub`` a holder of each channel in ``names``."""
        for name in names:
            self._by_channel.setdefault(name, []).append(sub)
        self._check_open(sub)

    def remove_listener(self, names: Iterable[str], sub: Subscription[Notification]) -> None:
        """``sub`` no longer holds ``names``."""
        for name in names:
            subs = self._by_channel.get(name)
            if subs is not None and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._by_channel[name]

    def unheld(self, names: Iterable[str]) -> list[str]:
        """The channels of ``names`` the server may listen on that nobody holds."""
        return [n for n in names if n in self.listening and n not in self._by_channel]

    def add_notices(self, sub: Subscription[Notice]) -> None:
        """Deliver notices to ``sub`` (instead of logging them)."""
        self._notices.append(sub)
        self._check_open(sub)

    def remove_notices(self, sub: Subscription[Notice]) -> None:
        """Stop delivering notices to ``sub``."""
        if sub in self._notices:
            self._notices.remove(sub)

    def add_parameters(self, sub: Subscription[ParameterChange]) -> None:
        """Deliver parameter changes to ``sub``."""
        self._parameters.append(sub)
        self._check_open(sub)

    def remove_parameters(self, sub: Subscription[ParameterChange]) -> None:
        """Stop delivering parameter changes to ``sub``."""
        if sub in self._parameters:
            self._parameters.remove(sub)

    def _check_open(self, sub: Subscription[_T]) -> None:
        if self._closed:
            sub._finish(self._reason)


class NotifyMixin:
    """``notify``: mixed into Connection and into the views blocks yield."""

    if TYPE_CHECKING:

        async def execute(self, sql: str, *args: object) -> str: ...

    async def notify(self, channel: str, payload: str = "") -> None:
        """Send a notification on ``channel`` (``pg_notify``, with bound parameters).

        Inside a transaction it is delivered when the transaction commits (sql-notify.html).

        Raises:
            PostgresError: The server refused it (a payload of 8000 bytes or more, say).
            ConnectionLostError: The connection broke.
        """
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)


class SubscriptionsMixin(NotifyMixin):
    """``listen``, ``notify``, ``notices``, ``parameter_changes``: mixed into Connection."""

    if TYPE_CHECKING:
        _router: Router
        _gate: Gate | None
        _cleanup_grace: float

        @property
        def transaction_status(self) -> TransactionStatus: ...

        @property
        def is_closed(self) -> bool: ...

        def _check_usable(self) -> None: ...

        async def _simple_query(self, sql: str) -> str: ...

    # -- public API ---------------------------------------------------------------------------

    @asynccontextmanager
    async def listen(
        self,
        *channels: str,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        on_overflow: OverflowPolicy = "error",
    ) -> AsyncIterator[Subscription[Notification]]:
        """Subscribe to notifications on ``channels`` for the duration of the block.

        ::

            async with conn.listen("orders", "payments") as notifications:
                async for n in notifications:
                    print(n.channel, n.payload, n.pid)

        Entering sends LISTEN for the channels the server is not yet known to listen on
        (names are quoted: exactly as given, no case folding) and returns once the server
        confirmed it; from then on every notification on them arrives, in server order.
        Several subscriptions may hold one channel: each receives every notification.
        Exiting sends UNLISTEN for the channels no other subscription still holds; it
        never raises because the connection is closed or lost.

        Args:
            channels: Channel names (at most 63 bytes each).
            max_buffer: Notifications held for this subscription before it overflows.
            on_overflow: ``"error"``: a full buffer ends the subscription with
                :class:`~trio_pg.errors.NotificationOverflowError` (carrying how many
                were dropped) after the notifications it holds, while the connection
                goes on. ``"block"``: a full buffer stops the connection's reader
                until there is room, so nothing is dropped, but every other request on
                the connection waits too; for a connection dedicated to listening.

        Yields:
            A receive channel of :class:`~trio_pg.channels.Notification`. When the
            connection is lost it raises ConnectionLostError after what it holds; after
            ``aclose()`` of the connection its iteration ends.

        Raises:
            InterfaceError: Bad arguments, or the connection is inside a transaction
                block (where LISTEN would only take effect at COMMIT).
            ConnectionLostError: The connection is closed or broke while entering.

        Entering waits for its turn like any call (behind a transaction another task
        holds). Cancelling it while entering leaves nothing behind: a LISTEN that may
        have run is undone.
        """
        names = channel_names(channels)
        block = block_policy(max_buffer, on_overflow)
        self._check_usable()
        sub: Subscription[Notification] = Subscription(max_buffer, block)
        router = self._router
        router.add_listener(names, sub)
        try:
            await self._send_listen(names)
            yield sub
        finally:
            router.remove_listener(names, sub)
            sub.close()
            await self._send_unlisten(names)

    @asynccontextmanager
    async def notices(
        self, *, max_buffer: int = DEFAULT_MAX_BUFFER, on_overflow: OverflowPolicy = "error"
    ) -> AsyncIterator[Subscription[Notice]]:
        """Receive the server's notices (``RAISE NOTICE``, warnings...) during the block.

        While at least one ``notices()`` block is open, notices go to the subscriptions
        instead of the ``trio_pg`` logger. Arguments and endings as for :meth:`listen`.

        Yields:
            A receive channel of :class:`~trio_pg.channels.Notice`.
        """
        block = block_policy(max_buffer, on_overflow)
        self._check_usable()
        sub: Subscription[Notice] = Subscription(max_buffer, block)
        self._router.add_notices(sub)
        try:
            await trio.lowlevel.checkpoint()
            yield sub
        finally:
            self._router.remove_notices(sub)
            sub.close()

    @asynccontextmanager
    async def parameter_changes(
        self, *, max_buffer: int = DEFAULT_MAX_BUFFER, on_overflow: OverflowPolicy = "error"
    ) -> AsyncIterator[Subscription[ParameterChange]]:
        """Receive server parameter changes (``SET TimeZone``...) during the block.

        ``Connection.parameters`` is updated before a change is delivered. Arguments
        and endings as for :meth:`listen`.

        Yields:
            A receive channel of :class:`~trio_pg.channels.ParameterChange`.
        """
        block = block_policy(max_buffer, on_overflow)
        self._check_usable()
        sub: Subscription[ParameterChange] = Subscription(max_buffer, block)
        self._router.add_parameters(sub)
        try:
            await trio.lowlevel.checkpoint()
            yield sub
        finally:
            self._router.remove_parameters(sub)
            sub.close()

    # -- LISTEN / UNLISTEN ---------------------------------------------------------------------

    async def _send_listen(self, names: tuple[str, ...]) -> None:
        gate = self._gate
        counted = await gate.enter() if gate is not None else False
        try:
            if self.transaction_status is not TransactionStatus.IDLE:
                raise InterfaceError(
                    "listen() inside a transaction block: LISTEN would only take effect at "
                    "COMMIT (and never after a ROLLBACK); enter it outside the transaction"
                )
            router = self._router
            todo = [n for n in names if n not in router.confirmed]
            if not todo:
                await trio.lowlevel.checkpoint()
                return
            # From here the LISTEN may run, even if this task is cancelled while waiting.
            router.listening.update(todo)
            await self._simple_query("; ".join(f"LISTEN {quote_ident(n)}" for n in todo))
            router.confirmed.update(n for n in todo if n in router.listening)
        finally:
            if counted:
                assert gate is not None
                gate.leave()

    async def _send_unlisten(self, names: tuple[str, ...]) -> None:
        """UNLISTEN the channels of ``names`` nobody holds any more. Never raises."""
        if self.is_closed or not self._router.unheld(names):
            return
        # Cleanup may run in a cancelled task: shielded, and bounded like every cleanup.
        with trio.CancelScope(shield=True), trio.move_on_after(self._cleanup_grace):
            gate = self._gate
            counted = await gate.enter() if gate is not None else False
            try:
                await self._unlisten_now(names)
            finally:
                if counted:
                    assert gate is not None
                    gate.leave()

    async def _unlisten_now(self, names: tuple[str, ...]) -> None:
        router = self._router
        todo = router.unheld(names)
        if not todo or self.is_closed:
            return
        if self.transaction_status is TransactionStatus.FAILED:
            # UNLISTEN would fail too; the server keeps listening, and notifications
            # nobody holds are dropped.
            return
        router.listening.difference_update(todo)
        router.confirmed.difference_update(todo)
        try:
            await self._simple_query("; ".join(f"UNLISTEN {quote_ident(n)}" for n in todo))
        except (ConnectionLostError, ProtocolError):
            pass  # the session, and what it listened on, is gone
        except PostgresError as exc:
            router.listening.update(todo)
            logger.debug("UNLISTEN failed, still listening on %r: %s", todo, exc)
        except BaseException:
            router.listening.update(todo)  # timed out: it may not have run
            raise
