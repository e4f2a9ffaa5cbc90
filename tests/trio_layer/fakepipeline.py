"""A fake-server script for pipelines and transaction blocks.

:func:`serve_pipelined` answers like ``FakeSession.serve`` with what pipelines and
transaction blocks need on top (protocol-flow.html#PROTOCOL-FLOW-PIPELINING):

* Flush: the messages received so far are answered at once, without ending the group;
  after an error everything up to the next Sync is skipped, Flush included;
* Describe of a portal that does not exist fails with SQLSTATE 34000, as PostgreSQL does
  (what trio_pg sends to fail a segment on purpose);
* transaction control in simple Queries (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE
  SAVEPOINT, ROLLBACK TO SAVEPOINT), whatever the savepoint names, with the transaction
  status they lead to: COMMIT of a failed transaction answers ROLLBACK, a savepoint
  command in a failed transaction fails, except ROLLBACK TO.

It also counts what it answered, so tests can check how the client batched its work.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tests.trio_layer.fakeserver import FakeSession
from tests.trio_layer.fakewire import (
    FrontendMessage,
    command_complete,
    error_response,
    ready_for_query,
)

_CONTROL: Final = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@dataclass
class PipelineStats:
    """What :func:`serve_pipelined` did for one session.

    Attributes:
        chunks: Times it answered: once per Flush, Sync or Query it reached.
        executes: Execute messages answered or skipped.
        max_executes_per_read: The most Execute messages that had arrived before the
            server started answering any of them (one round trip carries them all).
    """

    chunks: int = 0
    executes: int = 0
    max_executes_per_read: int = 0


STATS: dict[int, PipelineStats] = {}


async def serve_pipelined(session: FakeSession) -> None:
    """Answer the session's requests until Terminate or end of stream (see module doc)."""
    stats = STATS[session.pid] = PipelineStats()
    failed = False
    chunk: list[FrontendMessage] = []
    while True:
        msg = await session.receive()
        if msg is None or msg.type == b"X":
            return
        chunk.append(msg)
        if msg.type not in (b"H", b"S", b"Q"):
            continue
        # Everything the client wrote in one go is answered as one read would see it.
        while session._inbox.statistics().current_buffer_used:
            more = await session.receive()
            if more is None or more.type == b"X":
                break
            chunk.append(more)
        if chunk[-1].type not in (b"H", b"S", b"Q"):
            continue  # part of a message group arrived: wait for its end
        executes = sum(1 for m in chunk if m.type == b"E")
        stats.executes += executes
        stats.max_executes_per_read = max(stats.max_executes_per_read, executes)
        stats.chunks += 1
        failed = await _answer(session, chunk, failed)
        chunk = []


async def _answer(session: FakeSession, chunk: Sequence[FrontendMessage], failed: bool) -> bool:
    """Answer messages up to a Flush/Sync/Query; returns whether the group has failed."""
    out: list[bytes] = []
    for msg in chunk:
        kind = msg.type
        if kind == b"S":
            session._portals.pop("", None)
            out.append(ready_for_query(session.status))
            failed = False
        elif kind == b"Q":
            if _CONTROL.match(msg.sql):
                out += _control(session, msg.sql)
            else:
                out += session.respond([msg])
            failed = False
        elif failed:
            continue
        elif kind == b"D" and msg.body[:1] == b"P" and msg.name not in session._portals:
            out.append(error_response("34000", f'portal "{msg.name}" does not exist'))
            _failed(session)
            failed = True
        elif kind == b"E" and _special(session, msg):
            await session.send(*out)
            out = []
            failed = await session._execute_streaming(session._portals[msg.name])
        else:
            before = len(out)
            out += session.respond([msg])
            failed = any(m[:1] == b"E" for m in out[before:])
    await session.send(*out)
    return failed


def _special(session: FakeSession, msg: FrontendMessage) -> bool:
    portal = session._portals.get(msg.name)
    if portal is None:
        return False
    query = portal.query
    return query.hang or query.segments > 1 or query.bytewise


def _failed(session: FakeSession) -> None:
    if session.status == "T":
        session.status = "E"


def _control(session: FakeSession, sql: str) -> list[bytes]:
    """Answer a simple Query of transaction control statements, ReadyForQuery included."""
    out: list[bytes] = []
    for statement in (s.strip() for s in sql.split(";") if s.strip()):
        words = statement.upper().split()
        if (
            session.status == "E"
            and words[:2] != ["ROLLBACK", "TO"]
            and words[0]
            in (
                "SAVEPOINT",
                "RELEASE",
            )
        ):
            out.append(error_response("25P02", "current transaction is aborted"))
            break
        if words[0] == "BEGIN":
            session.status = "T"
            out.append(command_complete("BEGIN"))
        elif words[0] == "COMMIT":
            tag = "ROLLBACK" if session.status == "E" else "COMMIT"
            session.status = "I"
            out.append(command_complete(tag))
        elif words[:2] == ["ROLLBACK", "TO"]:
            session.status = "T"
            out.append(command_complete("ROLLBACK"))
        elif words[0] == "ROLLBACK":
            session.status = "I"
            out.append(command_complete("ROLLBACK"))
        else:
            out.append(command_complete(words[0]))
    out.append(ready_for_query(session.status))
    return out
