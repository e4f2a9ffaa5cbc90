"""The ClientConnection state machine in the READY phase, driven by a scripted server.

A connection reaches READY without a server: ``wire_script.ready_connection`` feeds it
AuthenticationOk, ParameterStatus, BackendKeyData and ReadyForQuery.
"""

from __future__ import annotations

import pytest

from tests.protocol.wire_script import (
    backend_key,
    command_complete,
    copy_both_response,
    copy_in_response,
    data_row,
    data_row_body,
    drain,
    error,
    message,
    notice,
    notification,
    parameter_status,
    ready,
    ready_connection,
    row_description,
    simple_result,
)
from trio_pg.errors import ProtocolError
from trio_pg.protocol import (
    NEED_DATA,
    ClientConnection,
    ConnectionClosed,
    FatalError,
    Phase,
    Request,
    Response,
    StartupComplete,
    StartupOptions,
    TransactionStatus,
    may_copy_in,
    parse_server_version,
)
from trio_pg.protocol import backend as b
from trio_pg.protocol import frontend as f

QUERY_A = f.query("SELECT 'a'")
QUERY_B = f.query("SELECT 'b'")
QUERY_C = f.query("SELECT 'c'")
EXTENDED = f.parse("", "SELECT 1") + f.bind("", "", []) + f.execute() + f.sync()


def _written(conn: ClientConnection, *requests: bytes, **kwargs: bool) -> list[Request]:
    """Register requests (simple Query by default) and write them."""
    sent = [conn.send_request(data, simple=True, **kwargs) for data in requests]
    assert conn.data_to_send() == b"".join(requests)
    return sent


def _responses(events: list[object]) -> list[Response]:
    assert all(isinstance(e, Response) for e in events), events
    return events  # type: ignore[return-value]


# -- reaching READY ---------------------------------------------------------------------


def test_scripted_startup_reaches_ready() -> None:
    conn = ClientConnection()
    conn.start(StartupOptions(user="alice", parameters={"database": "app"}))
    assert conn.phase is Phase.STARTUP
    assert conn.data_to_send() == (
        b"\x00\x00\x00\x21\x00\x03\x00\x02user\x00alice\x00database\x00app\x00\x00"
    )
    conn.receive_data(
        message(b"R", b"\x00\x00\x00\x00")
        + parameter_status("server_version", "18.1")
        + parameter_status("TimeZone", "UTC")
        + backend_key(77, bytes(range(32)))
        + ready("I")
    )
    assert conn.next_event() == StartupComplete((3, 2), TransactionStatus.IDLE)
    assert conn.phase is Phase.READY
    assert conn.parameters == {"server_version": "18.1", "TimeZone": "UTC"}
    assert conn.server_version == (18, 1)
    assert conn.backend_key == b.BackendKeyData(77, bytes(range(32)))
    assert conn.protocol_version == (3, 2)
    assert conn.next_event() is NEED_DATA


def test_next_event_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="start"):
        ClientConnection().next_event()


def test_start_twice_is_refused() -> None:
    conn = ready_connection()
    with pytest.raises(RuntimeError, match="once"):
        conn.start(StartupOptions(user="u"))


def test_send_request_before_ready_is_refused() -> None:
    conn = ClientConnection()
    conn.start(StartupOptions(user="u"))
    with pytest.raises(RuntimeError, match="STARTUP"):
        conn.send_request(QUERY_A)


def test_request_needs_a_boundary() -> None:
    conn = ready_connection()
    with pytest.raises(ValueError, match="at least one"):
        conn.send_request(QUERY_A, boundaries=0)


# -- FIFO routing -------------------------------------------------------------------------


def test_responses_follow_request_fifo_order() -> None:
    conn = ready_connection()
    a, bb = _written(conn, QUERY_A, QUERY_B)
    assert conn.pending == 2
    conn.receive_data(simple_result("SELECT 1") + simple_result("SELECT 2"))
    first, second = _responses(drain(conn))
    assert first.request is a
    assert first.done
    assert a.done
    assert second.request is bb
    assert second.done
    assert bb.done
    assert first.messages == [
        b.RowDescription((b.Column("x", 0, 0, 25, -1, -1, 0),)),
        data_row_body(b"1"),
        b.CommandComplete("SELECT 1"),
        b.ReadyForQuery(TransactionStatus.IDLE),
    ]
    assert second.messages[2] == b.CommandComplete("SELECT 2")
    assert conn.pending == 0


def test_batches_go_to_the_head_request_until_its_boundary() -> None:
    conn = ready_connection()
    a, bb = _written(conn, QUERY_A, QUERY_B)
    conn.receive_data(row_description("x") + data_row(b"1"))
    (partial,) = _responses(drain(conn))
    assert partial.request is a
    assert not partial.done
    conn.receive_data(command_complete("SELECT 1") + ready() + row_description("y"))
    done_a, start_b = _responses(drain(conn))
    assert done_a.request is a
    assert done_a.done
    assert done_a.messages == [
        b.CommandComplete("SELECT 1"),
        b.ReadyForQuery(TransactionStatus.IDLE),
    ]
    assert start_b.request is bb
    assert not start_b.done


def test_data_rows_are_batched_into_one_response() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    rows = b"".join(data_row(str(i).encode()) for i in range(500))
    conn.receive_data(row_description("n") + rows + command_complete("SELECT 500") + ready())
    (response,) = _responses(drain(conn))
    assert response.request is a
    assert response.done
    assert len(response.messages) == 503
    assert response.messages[1:501] == [data_row_body(str(i).encode()) for i in range(500)]


def test_data_row_split_across_receives() -> None:
    conn = ready_connection()
    _written(conn, QUERY_A)
    stream = (
        row_description("n") + data_row(b"1") + data_row(b"22") + command_complete("S") + ready()
    )
    cut = len(row_description("n")) + len(data_row(b"1")) + 3
    conn.receive_data(stream[:cut])
    (first,) = _responses(drain(conn))
    assert first.messages[1:] == [data_row_body(b"1")]
    conn.receive_data(stream[cut:])
    (second,) = _responses(drain(conn))
    assert second.messages[0] == data_row_body(b"22")
    assert second.done


def test_non_fatal_error_stays_in_the_request_batch() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.receive_data(error("42P01", "no such table") + ready("I"))
    (response,) = _responses(drain(conn))
    assert response.request is a
    assert response.done
    assert isinstance(response.messages[0], b.ErrorResponse)
    assert response.messages[0].fields["C"] == "42P01"
    assert conn.phase is Phase.READY


def test_multi_boundary_request_needs_every_ready_for_query() -> None:
    conn = ready_connection()
    a = conn.send_request(QUERY_A + QUERY_B, boundaries=2, simple=True)
    conn.data_to_send()
    conn.receive_data(simple_result("SELECT 1"))
    (first,) = _responses(drain(conn))
    assert not first.done
    assert not a.done
    assert first.messages[-1] == b.ReadyForQuery(TransactionStatus.IDLE)
    conn.receive_data(simple_result("SELECT 2"))
    (second,) = _responses(drain(conn))
    assert second.done
    assert a.done


def test_multi_boundary_request_registered_with_boundaries() -> None:
    conn = ready_connection()
    a = conn.send_request(EXTENDED + EXTENDED, boundaries=2)
    bb = conn.send_request(QUERY_B, simple=True)
    conn.data_to_send()
    conn.receive_data(ready("T") + ready("I") + simple_result())
    events = _responses(drain(conn))
    assert [(e.request, e.done) for e in events] == [(a, True), (bb, True)]
    assert events[0].messages == [
        b.ReadyForQuery(TransactionStatus.IN_TRANSACTION),
        b.ReadyForQuery(TransactionStatus.IDLE),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("I", TransactionStatus.IDLE),
        ("T", TransactionStatus.IN_TRANSACTION),
        ("E", TransactionStatus.FAILED),
    ],
)
def test_transaction_status_follows_ready_for_query(
    status: str, expected: TransactionStatus
) -> None:
    conn = ready_connection()
    _written(conn, QUERY_A)
    conn.receive_data(command_complete("BEGIN") + ready(status))
    drain(conn)
    assert conn.transaction_status is expected


def test_message_with_no_pending_request_is_a_protocol_error() -> None:
    conn = ready_connection()
    conn.receive_data(command_complete("SELECT 1"))
    with pytest.raises(ProtocolError, match="CommandComplete with no request pending"):
        conn.next_event()


def test_data_row_with_no_pending_request_is_a_protocol_error() -> None:
    conn = ready_connection()
    conn.receive_data(data_row(b"1"))
    with pytest.raises(ProtocolError, match="DataRow with no request pending"):
        conn.next_event()


def test_answer_to_a_request_never_written_is_a_protocol_error() -> None:
    conn = ready_connection()
    conn.send_request(QUERY_A, simple=True)  # registered, not handed to data_to_send
    conn.receive_data(ready())
    with pytest.raises(ProtocolError, match="never sent"):
        conn.next_event()


# -- asynchronous messages ------------------------------------------------------------------


def test_async_messages_while_idle_come_out_untagged() -> None:
    conn = ready_connection()
    conn.receive_data(
        notification(9, "jobs", "1") + notice("hi") + parameter_status("TimeZone", "Europe/Paris")
    )
    events = drain(conn)
    assert events[0] == b.NotificationResponse(9, "jobs", "1")
    assert isinstance(events[1], b.NoticeResponse)
    assert events[1].fields["M"] == "hi"
    assert events[2] == b.ParameterStatus("TimeZone", "Europe/Paris")
    assert conn.parameters["TimeZone"] == "Europe/Paris"


def test_async_message_mid_result_is_delivered_between_batches() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.receive_data(
        row_description("x")
        + data_row(b"1")
        + notification(9, "jobs", "payload")
        + data_row(b"2")
        + command_complete("SELECT 2")
        + ready()
    )
    before, note, after = drain(conn)
    assert isinstance(before, Response)
    assert before.request is a
    assert not before.done
    assert before.messages[1:] == [data_row_body(b"1")]
    assert note == b.NotificationResponse(9, "jobs", "payload")
    assert isinstance(after, Response)
    assert after.request is a
    assert after.done
    assert after.messages[0] == data_row_body(b"2")
    assert not any(isinstance(m, b.NotificationResponse) for m in before.messages + after.messages)


def test_parameter_status_mid_result_updates_parameters_when_delivered() -> None:
    conn = ready_connection()
    _written(conn, QUERY_A)
    conn.receive_data(
        row_description("x")
        + parameter_status("is_superuser", "on")
        + command_complete("S")
        + ready()
    )
    first = conn.next_event()
    assert isinstance(first, Response)
    assert conn.next_event() == b.ParameterStatus("is_superuser", "on")
    assert conn.parameters["is_superuser"] == "on"
    last = conn.next_event()
    assert isinstance(last, Response)
    assert last.done
    assert last.messages == [b.CommandComplete("S"), b.ReadyForQuery(TransactionStatus.IDLE)]


def test_consecutive_async_messages_mid_result_each_come_out_alone() -> None:
    conn = ready_connection()
    _written(conn, QUERY_A)
    conn.receive_data(row_description("x") + notice("1") + notice("2") + ready())
    events = drain(conn)
    assert [type(e) for e in events] == [Response, b.NoticeResponse, b.NoticeResponse, Response]


def test_async_message_before_first_result_message_comes_first() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.receive_data(notice("first") + simple_result())
    note, response = drain(conn)
    assert isinstance(note, b.NoticeResponse)
    assert isinstance(response, Response)
    assert response.request is a
    assert response.done


def test_async_messages_of_abandoned_request_are_still_delivered() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.abandon(a)
    conn.receive_data(row_description("x") + notification(1, "c", "p") + data_row(b"1") + ready())
    events = drain(conn)
    assert events == [b.NotificationResponse(1, "c", "p"), Response(a, [], True)]


# -- fatal errors and end of stream ---------------------------------------------------------


@pytest.mark.parametrize("severity", ["FATAL", "PANIC"])
def test_fatal_error_ends_the_session(severity: str) -> None:
    conn = ready_connection()
    conn.receive_data(error("57P01", "terminating connection", severity))
    event = conn.next_event()
    assert isinstance(event, FatalError)
    assert event.error.fields["C"] == "57P01"
    assert conn.phase is Phase.CLOSED


def test_fatal_error_mid_result_comes_after_the_batch() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.receive_data(row_description("x") + data_row(b"1") + error("57P01", "bye", "FATAL"))
    batch, fatal = drain(conn)
    assert isinstance(batch, Response)
    assert batch.request is a
    assert not batch.done
    assert isinstance(fatal, FatalError)
    assert conn.phase is Phase.CLOSED


def test_end_of_stream_is_unexpected_without_terminate() -> None:
    conn = ready_connection()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed(expected=False)
    assert conn.phase is Phase.CLOSED


def test_end_of_stream_after_terminate_is_expected() -> None:
    conn = ready_connection()
    conn.send_request(QUERY_A, simple=True)  # never written: Terminate drops it
    conn.send_terminate()
    conn.send_terminate()  # idempotent
    assert conn.data_to_send() == b"X\x00\x00\x00\x04"
    assert not conn.has_data_to_send
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed(expected=True)


def test_end_of_stream_mid_message_is_a_protocol_error() -> None:
    conn = ready_connection()
    _written(conn, QUERY_A)
    conn.receive_data(row_description("x")[:4])
    conn.receive_data(b"")
    with pytest.raises(ProtocolError, match="middle of a message"):
        conn.next_event()


def test_end_of_stream_after_partial_batch_delivers_batch_first() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.receive_data(row_description("x"))
    conn.receive_data(b"")
    batch = conn.next_event()
    assert isinstance(batch, Response)
    assert batch.request is a
    assert conn.next_event() == ConnectionClosed(expected=False)


# -- abandoned requests and cancellation ------------------------------------------------------


def test_abandoned_request_discards_messages_up_to_its_boundary() -> None:
    conn = ready_connection()
    a, bb = _written(conn, QUERY_A, QUERY_B)
    conn.abandon(a)
    conn.abandon(a)  # idempotent
    rows = b"".join(data_row(b"x") for _ in range(50))
    conn.receive_data(
        row_description("x") + rows + error("57014", "canceled") + ready() + simple_result()
    )
    events = _responses(drain(conn))
    assert events[0] == Response(a, [], True)
    assert events[1].request is bb
    assert events[1].done
    assert len(events[1].messages) == 4


def test_abandoning_a_done_request_does_nothing() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.receive_data(simple_result())
    drain(conn)
    conn.abandon(a)
    assert not a.abandoned
    assert conn.take_cancel() is None


def test_abandoning_an_unwritten_request_drops_its_bytes() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    bb = conn.send_request(QUERY_B, simple=True)
    c = conn.send_request(QUERY_C, simple=True)
    conn.abandon(bb)
    assert bb.done
    assert bb.abandoned
    assert bb.data is None
    assert conn.pending == 2
    assert conn.take_cancel() is None
    assert conn.data_to_send() == QUERY_C
    conn.receive_data(simple_result() + simple_result())
    assert [r.request for r in _responses(drain(conn))] == [a, c]


def test_cancel_offered_when_abandoned_request_is_the_only_one_written() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.abandon(a)
    assert conn.take_cancel() is a
    assert conn.take_cancel() is None  # offered once
    assert a.cancel_pending


def test_writes_held_until_boundary_and_cancel_finished() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.abandon(a)
    assert conn.take_cancel() is a
    bb = conn.send_request(QUERY_B, simple=True)
    assert not conn.has_data_to_send
    assert conn.data_to_send() == b""
    conn.receive_data(error("57014", "canceling statement") + ready())
    assert drain(conn) == [Response(a, [], True)]
    assert not conn.has_data_to_send  # boundary arrived, cancel still in flight
    assert conn.data_to_send() == b""
    conn.cancel_finished(a)
    assert conn.has_data_to_send
    assert conn.data_to_send() == QUERY_B
    assert bb.written


def test_writes_held_until_boundary_when_cancel_finishes_first() -> None:
    conn = ready_connection()
    (a,) = _written(conn, QUERY_A)
    conn.abandon(a)
    assert conn.take_cancel() is a
    conn.send_request(QUERY_B, simple=True)
    conn.cancel_finished(a)
    assert conn.data_to_send() == b""  # the server may still be running a
    conn.receive_data(ready())
    drain(conn)
    assert conn.data_to_send() == QUERY_B


def test_abandoned_request_behind_another_is_offered_once_it_is_the_only_one() -> None:
    conn = ready_connection()
    a, bb = _written(conn, QUERY_A, QUERY_B)
    conn.abandon(bb)
    assert conn.take_cancel() is None  # a cancel now could hit a
    conn.receive_data(simple_result())
    (done_a,) = _responses(drain(conn))
    assert done_a.request is a
    assert conn.take_cancel() is bb
    c = conn.send_request(QUERY_C, simple=True)
    assert conn.data_to_send() == b""
    conn.cancel_finished(bb)
    conn.receive_data(ready())
    assert drain(conn) == [Response(bb, [], True)]
    assert conn.data_to_send() == QUERY_C
    assert c.written


def test_no_cancel_when_a_later_request_was_already_written() -> None:
    conn = ready_connection()
    _a, bb, c = _written(conn, QUERY_A, QUERY_B, QUERY_C)
    conn.abandon(bb)
    conn.receive_data(simple_result())
    drain(conn)
    assert conn.take_cancel() is None  # c is on the wire behind bb
    conn.receive_data(ready() + simple_result())
    events = _responses(drain(conn))
    assert [e.request for e in events] == [bb, c]
    assert conn.take_cancel() is None


def test_abandoned_head_with_later_written_request_is_not_offered() -> None:
    conn = ready_connection()
    a, _bb = _written(conn, QUERY_A, QUERY_B)
    conn.abandon(a)
    assert conn.take_cancel() is None
    conn.receive_data(ready())
    drain(conn)
    assert conn.take_cancel() is None


# -- barriers and COPY -------------------------------------------------------------------------


def test_barrier_request_holds_later_writes_until_done() -> None:
    conn = ready_connection()
    x = conn.send_request(QUERY_A, simple=True)
    copy = conn.send_request(f.query("COPY t FROM STDIN"), simple=True, barrier=True)
    later = conn.send_request(QUERY_B, simple=True)
    assert conn.data_to_send() == QUERY_A + f.query("COPY t FROM STDIN")
    assert x.written
    assert copy.written
    assert not later.written
    assert not conn.has_data_to_send
    conn.receive_data(simple_result() + command_complete("COPY 0"))
    drain(conn)
    assert conn.data_to_send() == b""
    conn.receive_data(ready())
    drain(conn)
    assert conn.has_data_to_send
    assert conn.data_to_send() == QUERY_B


def test_copy_in_on_simple_barrier_request_is_refused_with_copy_fail() -> None:
    conn = ready_connection()
    (copy,) = _written(conn, f.query("COPY t FROM STDIN"), barrier=True)
    conn.receive_data(copy_in_response())
    (response,) = _responses(drain(conn))
    assert response.messages == [b.CopyInResponse(0, (0,))]
    assert conn.has_data_to_send
    out = conn.data_to_send()
    reason_length = int.from_bytes(out[1:5], "big")
    assert out[:1] == b"f"
    assert len(out) == 1 + reason_length
    assert out.endswith(b"\x00")
    assert b"copy_in" in out
    conn.receive_data(error("57014", "COPY from stdin failed") + ready())
    (end,) = _responses(drain(conn))
    assert end.done
    assert copy.done


def test_copy_in_on_extended_barrier_request_is_refused_with_copy_fail_and_sync() -> None:
    conn = ready_connection()
    copy = conn.send_request(EXTENDED, barrier=True)
    conn.data_to_send()
    conn.receive_data(message(b"1") + message(b"2") + copy_in_response(2))
    drain(conn)
    out = conn.data_to_send()
    fail_length = int.from_bytes(out[1:5], "big")
    assert out[:1] == b"f"
    assert out[1 + fail_length :] == b"S\x00\x00\x00\x04"
    conn.receive_data(error("57014", "COPY from stdin failed") + ready())
    (end,) = _responses(drain(conn))
    assert end.done
    assert copy.done


def test_copy_in_on_non_barrier_request_is_a_protocol_error() -> None:
    conn = ready_connection()
    _written(conn, f.query("SELECT 1"))
    conn.receive_data(copy_in_response())
    with pytest.raises(ProtocolError, match="COPY IN"):
        conn.next_event()


def test_copy_both_with_later_requests_on_the_wire_is_a_protocol_error() -> None:
    conn = ready_connection()
    _written(conn, f.query("START_REPLICATION"), QUERY_A)
    conn.receive_data(copy_both_response())
    with pytest.raises(ProtocolError, match="COPY BOTH"):
        conn.next_event()


def test_max_message_size_reaches_the_framer() -> None:
    conn = ready_connection(max_message_size=2048)
    _written(conn, QUERY_A)
    conn.receive_data(b"D" + (4 + 2049).to_bytes(4, "big"))
    with pytest.raises(ProtocolError, match="limit of 2048"):
        conn.next_event()


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("COPY t FROM STDIN", True),
        ("copy t from stdin (format binary)", True),
        ("  \n\tCoPy t FROM STDIN", True),
        ("SELECT 1; COPY t FROM STDIN", True),
        ("SELECT 'copycat'", True),  # errs on the side of yes
        ("SELECT 1", False),
        ("INSERT INTO t VALUES (1)", False),
        ("", False),
    ],
)
def test_may_copy_in(sql: str, expected: bool) -> None:
    assert may_copy_in(sql) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15.18 (Debian 15.18-0+deb12u1)", (15, 18)),
        ("18.4", (18, 4)),
        ("18beta1", (18, 0)),
        ("16devel", (16, 0)),
        ("9.6.24", (9, 6)),
        ("  17.2 ", (17, 2)),
        ("", (0, 0)),
        ("unknown", (0, 0)),
    ],
)
def test_parse_server_version(text: str, expected: tuple[int, int]) -> None:
    assert parse_server_version(text) == expected
