"""What the fake server's default script answers, and how.

:class:`FakeQuery` describes one SQL text; :class:`QueryResponder` (mixed into
``FakeSession``) answers Sync groups and simple Queries from a table of them the way a
PostgreSQL backend does (protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY): ParseComplete,
ParameterDescription, RowDescription or NoData, BindComplete, DataRows, CommandComplete,
and after an ErrorResponse nothing until the Sync's ReadyForQuery.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import trio
import trio.testing

from tests.trio_layer.fakewire import (
    FrontendMessage,
    bind_complete,
    cancel_error,
    close_complete,
    command_complete,
    data_row,
    empty_query_response,
    encode_value,
    error_response,
    no_data,
    parameter_description,
    parse_complete,
    ready_for_query,
    row_description,
)

if TYPE_CHECKING:
    from tests.trio_layer.fakeserver import FakeServer

RowSource = (
    Sequence[Sequence[object]] | Callable[[Sequence[bytes | None]], Sequence[Sequence[object]]]
)


@dataclass
class FakeQuery:
    """How the default script answers one SQL text.

    Attributes:
        sql: The exact SQL text the client sends.
        columns: Result columns as ``(name, type OID)``; empty for a command.
        rows: Python values per row (encoded per column type and the requested format),
            or a function of the bound parameter values returning them.
        param_oids: Parameter types reported by ParameterDescription.
        tag: The CommandComplete tag; ``SELECT <n>`` or the SQL's first word by default.
        fail_executions: The first this many executions fail with ``error`` instead.
        error: ``(sqlstate, message)`` for failing executions.
        status_after: Transaction status after a successful execution (``T`` for BEGIN).
        error_status: Transaction status after an error; ``E`` inside a transaction and
            unchanged outside one by default.
        segments: Send the rows in this many writes, with a checkpoint between them; a
            CancelRequest arriving meanwhile stops the rows with SQLSTATE 57014.
        hang: Send nothing until a CancelRequest arrives (then 57014).
        bytewise: Answer the group executing it one byte per write.
        inject: Extra backend messages to send before the row with that index.
    """

    sql: str
    columns: Sequence[tuple[str, int]] = ()
    rows: RowSource = ()
    param_oids: Sequence[int] = ()
    tag: str | None = None
    fail_executions: int = 0
    error: tuple[str, str] = ("XX000", "scripted failure")
    status_after: str | None = None
    error_status: str | None = None
    segments: int = 1
    hang: bool = False
    bytewise: bool = False
    inject: Mapping[int, Sequence[bytes]] = field(default_factory=dict)

    def rows_for(self, params: Sequence[bytes | None]) -> Sequence[Sequence[object]]:
        return self.rows(params) if callable(self.rows) else self.rows

    def tag_for(self, count: int) -> str:
        if self.tag is not None:
            return self.tag
        return f"SELECT {count}" if self.columns else self.sql.split()[0].upper()


@dataclass(slots=True)
class Portal:
    """A bound portal: the query, its parameter values and result format codes."""

    query: FakeQuery
    params: list[bytes | None]
    formats: tuple[int, ...]

    def format_of(self, column: int) -> int:
        if not self.formats:
            return 0
        return self.formats[0] if len(self.formats) == 1 else self.formats[column]


class GroupFailed(Exception):
    """An ErrorResponse was queued: skip to the Sync, as the server does."""


class QueryResponder:
    """The default script's answers, mixed into ``FakeSession``.

    ``status`` is the transaction status the next ReadyForQuery reports.
    """

    if TYPE_CHECKING:
        server: FakeServer
        status: str
        cancels_open: int
        _interrupt: trio.Event
        _statements: dict[str, FakeQuery]
        _portals: dict[str, Portal]

        async def receive_group(self) -> list[FrontendMessage]: ...

        async def send(self, *messages: bytes, bytewise: bool = False) -> None: ...

    async def serve(self) -> None:
        """Answer every request from the server's query table until Terminate or EOF."""
        while group := await self.receive_group():
            await self.answer(group)

    def respond(self, group: Sequence[FrontendMessage]) -> list[bytes]:
        """The responses to one group, without sending them (no hanging or segmented rows)."""
        out: list[bytes] = []
        failed = False
        for msg in group:
            if msg.type == b"S":
                self._portals.pop("", None)
                out.append(ready_for_query(self.status))
            elif not failed:
                try:
                    self._respond_one(msg, out)
                except GroupFailed:
                    failed = True
        return out

    async def answer(self, group: Sequence[FrontendMessage]) -> None:
        """Send the responses to one group, streaming special executions as they say.

        A group executing a ``bytewise`` query is answered one byte per write throughout.
        """
        out: list[bytes] = []
        failed = False
        bytewise = False
        for msg in group:
            portal = self._portals.get(msg.name) if msg.type == b"E" else None
            if failed and msg.type != b"S":
                continue
            if portal is not None and _is_special(portal.query):
                bytewise = bytewise or portal.query.bytewise
                await self.send(*out, bytewise=bytewise)
                out = []
                failed = await self._execute_streaming(portal)
            else:
                before = len(out)
                out += self.respond([msg])
                failed = failed or any(m[:1] == b"E" for m in out[before:])
        await self.send(*out, bytewise=bytewise)

    def _respond_one(self, msg: FrontendMessage, out: list[bytes]) -> None:
        kind = msg.type
        if kind == b"Q":
            self._simple_query(msg.sql, out)
        elif kind == b"P":
            name, sql, _ = msg.parse()
            query = self._lookup(sql, out)
            if name and name in self._statements:
                self._fail(out, "42P05", f'prepared statement "{name}" already exists')
            self._statements[name] = query
            out.append(parse_complete())
        elif kind == b"B":
            portal, statement, values, formats = msg.bind()
            bound = self._statements.get(statement)
            if bound is None:
                self._fail(out, "26000", f'prepared statement "{statement}" does not exist')
            self._portals[portal] = Portal(bound, values, formats)
            out.append(bind_complete())
        elif kind == b"D":
            self._describe(msg, out)
        elif kind == b"E":
            self._execute(self._portals[msg.name], out)
        elif kind == b"C":
            (self._statements if msg.body[:1] == b"S" else self._portals).pop(msg.name, None)
            out.append(close_complete())
        elif kind != b"H":
            raise AssertionError(f"the fake server does not handle {kind!r} messages")

    def _lookup(self, sql: str, out: list[bytes]) -> FakeQuery:
        query = self.server.queries.get(sql)
        if query is None:
            self._fail(out, "42601", f"the fake server has no query {sql!r}")
        return query

    def _fail(
        self, out: list[bytes], sqlstate: str, text: str, status: str | None = None
    ) -> NoReturn:
        out.append(error_response(sqlstate, text))
        if status is not None:
            self.status = status
        elif self.status == "T":
            self.status = "E"
        raise GroupFailed

    def _describe(self, msg: FrontendMessage, out: list[bytes]) -> None:
        if msg.body[:1] == b"S":
            query = self._statements[msg.name]
            out.append(parameter_description(query.param_oids))
            formats: Sequence[int] = ()
        else:
            portal = self._portals[msg.name]
            query = portal.query
            formats = [portal.format_of(i) for i in range(len(query.columns))]
        out.append(row_description(query.columns, formats) if query.columns else no_data())

    def _rows(self, portal: Portal) -> list[bytes]:
        query = portal.query
        rows: list[bytes] = []
        for i, row in enumerate(query.rows_for(portal.params)):
            rows.extend(query.inject.get(i, ()))
            values = [
                encode_value(v, oid, portal.format_of(c))
                for c, (v, (_, oid)) in enumerate(zip(row, query.columns, strict=False))
            ]
            rows.append(data_row(values))
        return rows

    def _check_failure(self, query: FakeQuery, out: list[bytes]) -> None:
        if query.fail_executions > 0:
            query.fail_executions -= 1
            self._fail(out, *query.error, status=query.error_status)

    def _execute(self, portal: Portal, out: list[bytes]) -> None:
        query = portal.query
        self._check_failure(query, out)
        rows = self._rows(portal)
        out += rows
        out.append(command_complete(query.tag_for(sum(1 for r in rows if r[:1] == b"D"))))
        if query.status_after is not None:
            self.status = query.status_after

    async def _execute_streaming(self, portal: Portal) -> bool:
        """Execute a hanging, segmented or byte-by-byte query; True when it failed."""
        query = portal.query
        out: list[bytes] = []
        try:
            if query.hang:
                await self._interrupt.wait()
                await self._react_to_cancel()
                self._fail(out, "57014", "canceling statement due to user request")
            self._execute(portal, out)
        except GroupFailed:
            await self.send(*out, bytewise=query.bytewise)
            return True
        if query.segments <= 1:
            await self.send(*out, bytewise=query.bytewise)
            return False
        size = max(1, math.ceil(len(out) / query.segments))
        for start in range(0, len(out), size):
            if self._interrupt.is_set():
                await self._react_to_cancel()
                await self.send(cancel_error())
                self.status = "E" if self.status == "T" else self.status
                return True
            await self.send(*out[start : start + size], bytewise=query.bytewise)
            await trio.lowlevel.checkpoint()
        return False

    async def _react_to_cancel(self) -> None:
        # A real backend may notice the signal after the cancel connection has closed:
        # answer only then, once the client has had every chance to run, so a client
        # that writes its next request before this ReadyForQuery is caught.
        await self.server.wait_until(lambda: not self.cancels_open)
        await trio.testing.wait_all_tasks_blocked()

    def _simple_query(self, sql: str, out: list[bytes]) -> None:
        if not sql.strip():
            out.append(empty_query_response())
        else:
            try:
                query = self._lookup(sql, out)
                if query.columns and not query.fail_executions:
                    out.append(row_description(query.columns))
                self._execute(Portal(query, [], ()), out)
            except GroupFailed:
                pass
        out.append(ready_for_query(self.status))


def _is_special(query: FakeQuery) -> bool:
    return query.hang or query.segments > 1 or query.bytewise
