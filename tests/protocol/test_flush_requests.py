"""FLUSH requests: an Execute with a row limit and Flush, ending without ReadyForQuery.

What cursors send (protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY): the request ends with
its Execute (PortalSuspended, CommandComplete, EmptyQueryResponse); after an
ErrorResponse the core sends the Sync the server waits for and the request ends at its
ReadyForQuery. Nothing is written behind a FLUSH request until it ends.
"""

from __future__ import annotations

import pytest

from tests.protocol.test_copy_state import copy_out_response, server_copy_done
from tests.protocol.wire_script import (
    command_complete,
    copy_in_response,
    data_row,
    drain,
    error,
    message,
    ready,
    ready_connection,
)
from trio_pg.errors import ProtocolError
from trio_pg.protocol import Boundary, ClientConnection, Request, Response
from trio_pg.protocol import backend as b
from trio_pg.protocol import frontend as f

SYNC = b"S\x00\x00\x00\x04"
FIRST = f.parse("", "SELECT x FROM t") + f.bind("", "", []) + f.execute("", 2) + f.flush()
NEXT = f.execute("", 2) + f.flush()
LATER = f.query("SELECT 'later'")


def parse_complete() -> bytes:
    return message(b"1")


def bind_complete() -> bytes:
    return message(b"2")


def portal_suspended() -> bytes:
    return message(b"s")


def empty_query() -> bytes:
    return message(b"I")


def _flush_request(conn: ClientConnection, data: bytes = FIRST) -> Request:
    request = conn.send_request(data, boundary=Boundary.FLUSH)
    assert conn.data_to_send() == data
    return request


def _messages(events: list[object], request: Request) -> list[b.BackendMessage]:
    out: list[b.BackendMessage] = []
    for event in events:
        assert isinstance(event, Response)
        assert event.request is request
        out.extend(event.messages)
    return out


def test_flush_request_ends_at_portal_suspended() -> None:
    conn = ready_connection()
    request = _flush_request(conn)
    conn.receive_data(
        parse_complete() + bind_complete() + data_row(b"1") + data_row(b"2") + portal_suspended()
    )
    events = drain(conn)
    assert isinstance(events[-1], Response)
    assert events[-1].done
    assert _messages(events, request) == [
        b.ParseComplete(),
        b.BindComplete(),
        data_row(b"1")[5:],
        data_row(b"2")[5:],
        b.PortalSuspended(),
    ]
    assert request.done
    assert conn.pending == 0


def test_next_execute_of_the_portal_ends_at_command_complete() -> None:
    conn = ready_connection()
    first = _flush_request(conn)
    conn.receive_data(parse_complete() + bind_complete() + data_row(b"1") + portal_suspended())
    drain(conn)
    assert first.done
    second = _flush_request(conn, NEXT)
    conn.receive_data(data_row(b"3") + command_complete("SELECT 3"))
    events = drain(conn)
    assert _messages(events, second)[-1] == b.CommandComplete("SELECT 3")
    assert second.done
    closing = conn.send_request(f.close("P", "") + f.sync())
    assert conn.data_to_send() == f.close("P", "") + SYNC
    conn.receive_data(message(b"3") + ready())
    drain(conn)
    assert closing.done


def test_empty_query_ends_a_flush_request() -> None:
    conn = ready_connection()
    request = _flush_request(conn)
    conn.receive_data(parse_complete() + bind_complete() + empty_query())
    drain(conn)
    assert request.done


def test_error_in_flush_request_sends_sync_and_ends_at_ready_for_query() -> None:
    conn = ready_connection()
    request = _flush_request(conn)
    later = conn.send_request(LATER, simple=True)
    conn.receive_data(parse_complete() + error("42P01", "relation does not exist"))
    events = drain(conn)
    assert not request.done
    assert request.boundary is Boundary.READY
    assert isinstance(_messages(events, request)[-1], b.ErrorResponse)
    # The Sync goes out at once; the later request stays held until ReadyForQuery.
    assert conn.data_to_send() == SYNC
    assert not later.written
    conn.receive_data(ready())
    events = drain(conn)
    assert _messages(events, request) == [b.ReadyForQuery(b.TransactionStatus.IDLE)]
    assert request.done
    assert conn.data_to_send() == LATER


def test_flush_request_holds_later_requests_even_when_it_succeeds() -> None:
    conn = ready_connection()
    request = conn.send_request(FIRST, boundary=Boundary.FLUSH)
    later = conn.send_request(LATER, simple=True)
    assert conn.data_to_send() == FIRST
    assert not later.written
    assert not conn.has_data_to_send
    conn.receive_data(parse_complete() + bind_complete() + portal_suspended())
    drain(conn)
    assert request.done
    assert conn.has_data_to_send
    assert conn.data_to_send() == LATER


def test_abandoned_flush_request_is_discarded_and_offered_for_cancel() -> None:
    conn = ready_connection()
    request = _flush_request(conn)
    conn.abandon(request)
    assert conn.take_cancel() is request
    conn.receive_data(parse_complete() + bind_complete() + data_row(b"1"))
    assert drain(conn) == []
    conn.receive_data(error("57014", "canceling statement due to user request"))
    assert drain(conn) == []
    assert conn.data_to_send() == SYNC
    conn.receive_data(ready())
    assert drain(conn) == [Response(request, [], True)]
    assert request.done


def test_ready_for_query_in_a_flush_request_is_a_protocol_error() -> None:
    conn = ready_connection()
    _flush_request(conn)
    conn.receive_data(parse_complete() + ready())
    with pytest.raises(ProtocolError, match="without Sync"):
        drain(conn)


def test_copy_in_during_a_flush_request_is_refused_with_one_sync() -> None:
    conn = ready_connection()
    request = _flush_request(conn)
    conn.receive_data(parse_complete() + bind_complete() + copy_in_response())
    drain(conn)
    out = conn.data_to_send()
    assert out[:1] == b"f"
    assert out.endswith(SYNC)
    assert out.count(SYNC) == 1
    conn.receive_data(error("57014", "COPY from stdin failed"))
    drain(conn)
    assert conn.data_to_send() == b""  # no second Sync for the error
    conn.receive_data(ready())
    drain(conn)
    assert request.done


def test_copy_out_in_a_flush_request_ends_at_command_complete() -> None:
    conn = ready_connection()
    request = _flush_request(conn)
    conn.receive_data(
        parse_complete()
        + bind_complete()
        + copy_out_response()
        + message(b"d", b"1\n")
        + server_copy_done()
        + command_complete("COPY 1")
    )
    drain(conn)
    assert request.done


@pytest.mark.parametrize("option", ["simple", "copy_in"])
def test_flush_request_is_one_extended_execute(option: str) -> None:
    conn = ready_connection()
    with pytest.raises(ValueError, match="FLUSH"):
        conn.send_request(FIRST, boundary=Boundary.FLUSH, **{option: True})


def test_flush_request_needs_no_boundary_count() -> None:
    conn = ready_connection()
    request = conn.send_request(FIRST, boundary=Boundary.FLUSH, boundaries=0)
    assert request.boundaries == 1
    assert request.barrier
