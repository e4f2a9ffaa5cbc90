"""A fake-server script for LISTEN/NOTIFY tests: it keeps each session's LISTEN state.

:class:`Notifier` is a ``FakeServer`` script. It answers LISTEN and UNLISTEN queries
itself, the way PostgreSQL does (one CommandComplete per statement, then ReadyForQuery;
sql-listen.html), remembers which channels each session listens on, and answers every
other request like the default script. Tests push backend messages (notifications,
notices, parameter changes) to a session at any moment with :meth:`Notifier.push`; the
session's writes are serialised, so a push never lands inside another message.
"""

from __future__ import annotations

import re
from typing import Final

import trio

from tests.trio_layer.fakeserver import FakeSession
from tests.trio_layer.fakewire import command_complete, notification_response, ready_for_query

_COMMAND: Final = re.compile(r'^(LISTEN|UNLISTEN) "((?:[^"]|"")*)"$')


class _SerialStream(trio.abc.Stream):
    """A stream whose ``send_all`` calls from several tasks take turns."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self._inner = inner
        self._lock = trio.StrictFIFOLock()
        # FakeSession.close(reset=True) looks for the socket of a TCP stream.
        self.socket = getattr(inner, "socket", None)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._lock:
            await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Notifier:
    """The script; pass ``script=notifier.script`` to ``open_fake_server``.

    Args:
        delay: Scheduler checkpoints to let pass before answering a LISTEN/UNLISTEN
            (room for a cancellation to land while it is in flight).

    Attributes:
        refuse: Sessions still to be closed as soon as they have started (each one
            counts down by one), as by a server that is going down.
        commands: Every LISTEN/UNLISTEN query received, in order, over all sessions.
        listening: Channels each session listens on, by process ID.
    """

    def __init__(self, *, delay: int = 0) -> None:
        self.delay = delay
        self.refuse = 0
        self.commands: list[str] = []
        self.listening: dict[int, set[str]] = {}
        self.sessions: list[FakeSession] = []
        self._started = trio.Event()

    async def script(self, session: FakeSession) -> None:
        """Serve one session until Terminate or end of stream."""
        if self.refuse > 0:
            self.refuse -= 1
            await session.close()
            return
        session.stream = _SerialStream(session.stream)
        self.listening[session.pid] = set()
        self.sessions.append(session)
        self._started.set()
        self._started = trio.Event()
        while group := await session.receive_group():
            first = group[0]
            if first.type == b"Q" and _COMMAND.match(first.sql.split("; ")[0]):
                await self._answer_listen(session, first.sql)
            else:
                await session.answer(group)

    async def _answer_listen(self, session: FakeSession, sql: str) -> None:
        self.commands.append(sql)
        for _ in range(self.delay):
            await trio.lowlevel.checkpoint()
        state = self.listening[session.pid]
        out: list[bytes] = []
        for statement in sql.split("; "):
            m = _COMMAND.match(statement)
            assert m is not None, f"the fake cannot parse {statement!r}"
            verb, name = m.group(1), m.group(2).replace('""', '"')
            if verb == "LISTEN":
                state.add(name)
            else:
                state.discard(name)
            out.append(command_complete(verb))
        out.append(ready_for_query(session.status))
        await session.send(*out)

    async def session(self, index: int = -1) -> FakeSession:
        """A session served by this script (the newest by default), once it has started."""
        while not self.sessions or index >= len(self.sessions):
            await self._started.wait()
        return self.sessions[index]

    async def push(self, *messages: bytes, index: int = -1) -> None:
        """Send backend messages to a session now (in one write)."""
        session = await self.session(index)
        await session.send(*messages)

    async def notify(self, channel: str, *payloads: str, pid: int = 777, index: int = -1) -> None:
        """Send one NotificationResponse per payload, in one write."""
        await self.push(*(notification_response(pid, channel, p) for p in payloads), index=index)

    def state(self, index: int = -1) -> set[str]:
        """The channels a session listens on, as the server sees it."""
        return self.listening[self.sessions[index].pid]
