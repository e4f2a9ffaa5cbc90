"""COPY in the client state machine: requests that accept COPY IN, COPY OUT, COPY BOTH.

Driven by scripted backend bytes (``wire_script``); what the core writes is checked byte
for byte against messages built here from protocol-message-formats.html.
"""

from __future__ import annotations

import struct

import pytest

from tests.protocol.wire_script import (
    command_complete,
    copy_both_response,
    copy_in_response,
    cstr,
    drain,
    error,
    message,
    ready,
    ready_connection,
)
from trio_pg.errors import ProtocolError
from trio_pg.protocol import ClientConnection, CopyInState, Request, Response
from trio_pg.protocol import backend as b
from trio_pg.protocol import frontend as f

COPY_SQL = "COPY t FROM STDIN"
QUERY_B = f.query("SELECT 'b'")
COPY_DONE = b"c\x00\x00\x00\x04"
SYNC = b"S\x00\x00\x00\x04"


def copy_data(data: bytes) -> bytes:
    return message(b"d", data)


def copy_fail(reason: str) -> bytes:
    return message(b"f", cstr(reason))


def copy_out_response(columns: int = 1) -> bytes:
    return message(b"H", b"\x00" + struct.pack("!h", columns) + b"\x00\x00" * columns)


def server_copy_done() -> bytes:
    return message(b"c")


def _copy_request(conn: ClientConnection) -> Request:
    request = conn.send_request(f.query(COPY_SQL), simple=True, copy_in=True)
    assert conn.data_to_send() == f.query(COPY_SQL)
    return request


def _open_copy(conn: ClientConnection) -> Request:
    request = _copy_request(conn)
    conn.receive_data(copy_in_response())
    (response,) = drain(conn)
    assert isinstance(response, Response)
    assert response.messages == [b.CopyInResponse(0, (0,))]
    assert request.copy is CopyInState.OPEN
    return request


def _finish(conn: ClientConnection, request: Request, *messages: bytes) -> list[b.BackendMessage]:
    conn.receive_data(b"".join(messages))
    events = drain(conn)
    assert all(isinstance(e, Response) and e.request is request for e in events)
    assert request.done
    return [m for e in events if isinstance(e, Response) for m in e.messages]


# -- accepting COPY IN ---------------------------------------------------------------------


def test_copy_in_request_sends_data_then_done_and_completes() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    assert not conn.has_data_to_send
    assert conn.send_copy_data(request, b"1\tone\n")
    assert conn.send_copy_data(request, bytearray(b"2\ttwo\n"))
    assert conn.output_buffered == 2 * 5 + 12
    assert conn.send_copy_done(request)
    assert request.copy is CopyInState.DONE
    assert conn.data_to_send() == copy_data(b"1\tone\n") + copy_data(b"2\ttwo\n") + COPY_DONE
    assert conn.output_buffered == 0
    messages = _finish(conn, request, command_complete("COPY 2"), ready())
    assert messages == [b.CommandComplete("COPY 2"), b.ReadyForQuery(b.TransactionStatus.IDLE)]


def test_empty_copy_data_queues_nothing() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    assert conn.send_copy_data(request, b"")
    assert not conn.has_data_to_send


def test_copy_data_before_copy_in_response_is_not_sent() -> None:
    conn = ready_connection()
    request = _copy_request(conn)
    assert request.copy is CopyInState.WAITING
    assert not conn.send_copy_data(request, b"x")
    assert not conn.send_copy_done(request)
    assert not conn.send_copy_fail(request, "no")
    assert conn.data_to_send() == b""


def test_copy_fail_ends_the_copy_with_the_servers_error() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.send_copy_data(request, b"1\n")
    assert conn.send_copy_fail(request, "producer failed")
    assert request.copy is CopyInState.FAILED
    assert not conn.send_copy_data(request, b"2\n")
    assert not conn.send_copy_done(request)
    assert conn.data_to_send() == copy_data(b"1\n") + copy_fail("producer failed")
    messages = _finish(conn, request, error("57014", "COPY from stdin failed"), ready())
    assert isinstance(messages[0], b.ErrorResponse)


def test_server_error_during_copy_in_stops_taking_data() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    messages = _finish(conn, request, error("22P02", "invalid input syntax"), ready())
    assert [type(m) for m in messages] == [b.ErrorResponse, b.ReadyForQuery]
    assert request.copy is CopyInState.ENDED
    assert not conn.send_copy_data(request, b"more\n")
    assert not conn.send_copy_done(request)
    assert conn.data_to_send() == b""


def test_server_error_before_ready_for_query_stops_taking_data() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.receive_data(error("23505", "duplicate key"))
    drain(conn)
    assert not request.done
    assert not conn.send_copy_data(request, b"more\n")


def test_copy_in_request_is_a_barrier() -> None:
    conn = ready_connection()
    request = conn.send_request(f.query(COPY_SQL), simple=True, copy_in=True)
    later = conn.send_request(QUERY_B, simple=True)
    assert conn.data_to_send() == f.query(COPY_SQL)
    assert not later.written
    conn.receive_data(copy_in_response())
    drain(conn)
    conn.send_copy_data(request, b"x\n")
    conn.send_copy_done(request)
    # Copy data goes out even though the later request is held.
    assert conn.data_to_send() == copy_data(b"x\n") + COPY_DONE
    _finish(conn, request, command_complete("COPY 1"), ready())
    assert conn.data_to_send() == QUERY_B


def test_abandoning_an_open_copy_sends_copy_fail_and_no_cancel() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.send_copy_data(request, b"1\n")
    conn.abandon(request)
    assert request.copy is CopyInState.FAILED
    assert conn.take_cancel() is None
    out = conn.data_to_send()
    assert out.startswith(copy_data(b"1\n") + b"f")
    conn.receive_data(error("57014", "COPY from stdin failed") + ready())
    assert drain(conn) == [Response(request, [], True)]


def test_abandoning_after_copy_fail_offers_no_cancel() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.send_copy_fail(request, "stop")
    conn.abandon(request)
    assert conn.take_cancel() is None


def test_abandoning_after_copy_done_offers_a_cancel() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.send_copy_done(request)
    conn.data_to_send()
    conn.abandon(request)
    assert conn.take_cancel() is request


def test_abandoned_copy_request_is_refused_when_copy_in_response_arrives() -> None:
    conn = ready_connection()
    request = _copy_request(conn)
    conn.abandon(request)
    assert conn.take_cancel() is request
    conn.receive_data(copy_in_response())
    assert drain(conn) == []
    assert request.copy is CopyInState.FAILED
    assert conn.data_to_send()[:1] == b"f"


def test_second_copy_in_of_one_request_is_refused() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.send_copy_done(request)
    conn.data_to_send()
    conn.receive_data(command_complete("COPY 0") + copy_in_response())
    drain(conn)
    out = conn.data_to_send()
    assert out[:1] == b"f"
    assert b"one COPY FROM STDIN per call" in out
    assert request.copy is CopyInState.FAILED


def test_copy_in_requires_the_simple_protocol() -> None:
    conn = ready_connection()
    with pytest.raises(ValueError, match="simple"):
        conn.send_request(f.sync(), copy_in=True)


def test_nothing_is_queued_for_copy_after_terminate() -> None:
    conn = ready_connection()
    request = _open_copy(conn)
    conn.send_terminate()
    assert not conn.send_copy_data(request, b"x")
    assert conn.data_to_send() == b"X\x00\x00\x00\x04"


# -- COPY OUT ---------------------------------------------------------------------------------


def test_copy_out_messages_go_to_the_request_in_order() -> None:
    conn = ready_connection()
    request = conn.send_request(f.query("COPY t TO STDOUT"), simple=True)
    conn.data_to_send()
    conn.receive_data(
        copy_out_response(2)
        + copy_data(b"1\ta\n")
        + copy_data(b"2\tb\n")
        + server_copy_done()
        + command_complete("COPY 2")
        + ready()
    )
    (response,) = drain(conn)
    assert isinstance(response, Response)
    assert response.request is request
    assert response.done
    # Consecutive CopyData messages come out as one.
    assert response.messages == [
        b.CopyOutResponse(0, (0, 0)),
        b.CopyData(b"1\ta\n2\tb\n"),
        b.CopyDone(),
        b.CommandComplete("COPY 2"),
        b.ReadyForQuery(b.TransactionStatus.IDLE),
    ]


def test_copy_data_split_across_receives_keeps_every_byte_in_order() -> None:
    conn = ready_connection()
    request = conn.send_request(f.query("COPY t TO STDOUT"), simple=True)
    conn.data_to_send()
    rows = [f"{i}\trow {i}\n".encode() for i in range(50)]
    wire = (
        copy_out_response(2)
        + b"".join(copy_data(r) for r in rows)
        + server_copy_done()
        + command_complete("COPY 50")
        + ready()
    )
    messages: list[b.BackendMessage] = []
    for i in range(0, len(wire), 7):
        conn.receive_data(wire[i : i + 7])
        for event in drain(conn):
            assert isinstance(event, Response)
            assert event.request is request
            messages.extend(event.messages)
    assert request.done
    data = b"".join(m.data for m in messages if isinstance(m, b.CopyData))
    assert data == b"".join(rows)
    assert messages[-3:] == [
        b.CopyDone(),
        b.CommandComplete("COPY 50"),
        b.ReadyForQuery(b.TransactionStatus.IDLE),
    ]


def test_abandoned_copy_out_is_discarded() -> None:
    conn = ready_connection()
    request = conn.send_request(f.query("COPY t TO STDOUT"), simple=True)
    conn.data_to_send()
    conn.receive_data(copy_out_response() + copy_data(b"1\n"))
    drain(conn)
    conn.abandon(request)
    conn.receive_data(copy_data(b"2\n") * 100 + server_copy_done() + command_complete("COPY 101"))
    assert drain(conn) == []
    conn.receive_data(ready())
    assert drain(conn) == [Response(request, [], True)]


# -- COPY BOTH -----------------------------------------------------------------------------


def test_copy_both_alone_on_the_wire_is_ended_with_copy_done() -> None:
    conn = ready_connection()
    request = conn.send_request(f.query("START_REPLICATION 0/0"), simple=True)
    assert conn.data_to_send() == f.query("START_REPLICATION 0/0")
    # Registered after the first was written: it must stay held once COPY BOTH starts.
    later = conn.send_request(QUERY_B, simple=True)
    conn.receive_data(copy_both_response() + copy_data(b"w..."))
    (response,) = drain(conn)
    assert isinstance(response, Response)
    assert response.messages == [b.CopyBothResponse(0, ()), b.CopyData(b"w...")]
    assert conn.data_to_send() == COPY_DONE
    assert not later.written
    conn.receive_data(server_copy_done() + command_complete("START_STREAMING") + ready())
    drain(conn)
    assert request.done
    assert conn.data_to_send() == QUERY_B


def test_copy_both_after_terminate_sends_nothing_more() -> None:
    conn = ready_connection()
    conn.send_request(f.query("START_REPLICATION 0/0"), simple=True)
    conn.data_to_send()
    conn.send_terminate()
    conn.receive_data(copy_both_response())
    drain(conn)
    assert conn.data_to_send() == b"X\x00\x00\x00\x04"


def test_copy_both_error_names_replication() -> None:
    conn = ready_connection()
    conn.send_request(f.query("START_REPLICATION 0/0"), simple=True)
    conn.send_request(QUERY_B, simple=True)
    conn.data_to_send()
    conn.receive_data(copy_both_response())
    with pytest.raises(ProtocolError, match="replication"):
        drain(conn)
