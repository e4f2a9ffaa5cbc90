"""Requests sent in parts (``open_request``/``extend_request``): how pipelines use the core.

An open request holds back every later request once written, until its last part is
queued; abandoned while open, the core ends it itself with an error and a Sync.
"""

from __future__ import annotations

import pytest

from tests.protocol.wire_script import (
    command_complete,
    drain,
    error,
    message,
    ready,
    ready_connection,
)
from trio_pg.protocol import Response
from trio_pg.protocol import frontend as f

PART_1 = f.bind("", "s1", []) + f.execute() + f.flush()
PART_2 = f.bind("", "s2", []) + f.execute() + f.sync()
LATER = f.query("SELECT 'later'")
BIND_COMPLETE = message(b"2")


def test_open_request_is_written_and_holds_later_requests() -> None:
    conn = ready_connection()
    request = conn.open_request(PART_1)
    conn.send_request(LATER, simple=True)
    assert conn.data_to_send() == PART_1
    assert not conn.has_data_to_send
    assert conn.data_to_send() == b""
    conn.extend_request(request, PART_2, last=True)
    assert conn.has_data_to_send
    # The last part first, then what was held behind the request.
    assert conn.data_to_send() == PART_2 + LATER


def test_parts_of_an_unwritten_open_request_are_joined() -> None:
    conn = ready_connection()
    request = conn.open_request(PART_1)
    conn.extend_request(request, b"more")
    conn.extend_request(request, PART_2, last=True)
    conn.send_request(LATER, simple=True)
    assert conn.data_to_send() == PART_1 + b"more" + PART_2 + LATER


def test_middle_parts_of_a_written_open_request_go_out_at_once() -> None:
    conn = ready_connection()
    request = conn.open_request(PART_1)
    conn.send_request(LATER, simple=True)
    assert conn.data_to_send() == PART_1
    conn.extend_request(request, PART_1)
    assert conn.data_to_send() == PART_1
    assert conn.data_to_send() == b""


def test_open_request_ends_at_the_ready_for_query_of_its_last_part() -> None:
    conn = ready_connection()
    request = conn.open_request(PART_1)
    conn.data_to_send()
    conn.receive_data(BIND_COMPLETE + command_complete("SELECT 1"))
    (first,) = drain(conn)
    assert isinstance(first, Response)
    assert not first.done
    conn.extend_request(request, PART_2, last=True)
    conn.data_to_send()
    conn.receive_data(BIND_COMPLETE + command_complete("SELECT 2") + ready("I"))
    (second,) = drain(conn)
    assert isinstance(second, Response)
    assert second.done
    assert second.request is request
    assert conn.pending == 0


def test_abandoned_written_open_request_is_ended_with_an_error_and_sync() -> None:
    conn = ready_connection()
    request = conn.open_request(PART_1)
    conn.send_request(LATER, simple=True)
    assert conn.data_to_send() == PART_1
    conn.abandon(request)
    # A Describe of a portal that cannot exist fails the segment (so it rolls back
    # rather than commits), then the Sync ends it. The later request waits for its end
    # and for the CancelRequest offered for it (it is the only request written).
    assert conn.data_to_send() == f.describe("P", "__trio_pg_abandoned") + f.sync()
    assert conn.take_cancel() is request
    conn.receive_data(
        BIND_COMPLETE + command_complete("SELECT 1") + error("34000", "no portal") + ready("I")
    )
    events = drain(conn)
    assert [e.done for e in events if isinstance(e, Response)] == [True]
    assert conn.data_to_send() == b""
    conn.cancel_finished(request)
    assert conn.data_to_send() == LATER


def test_abandoned_unwritten_open_request_is_dropped() -> None:
    conn = ready_connection()
    blocker = conn.send_request(f.query("COPY t FROM STDIN"), simple=True, barrier=True)
    request = conn.open_request(PART_1)
    conn.data_to_send()
    conn.abandon(request)
    assert request.done
    # Another request may be opened now.
    conn.open_request(PART_1)
    assert blocker.written


def test_only_one_request_may_be_open() -> None:
    conn = ready_connection()
    first = conn.open_request(PART_1)
    with pytest.raises(RuntimeError, match="another request is still open"):
        conn.open_request(PART_1)
    conn.extend_request(first, PART_2, last=True)
    conn.open_request(PART_1)


def test_extending_a_request_that_is_not_open_is_refused() -> None:
    conn = ready_connection()
    request = conn.send_request(LATER, simple=True)
    with pytest.raises(RuntimeError, match="open_request"):
        conn.extend_request(request, PART_2)
