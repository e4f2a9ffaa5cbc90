"""The core's in-place paths for everyday messages give what the general parser gives.

``ClientConnection`` reads DataRow, the bodiless completions, CommandComplete,
ReadyForQuery and NotificationResponse straight from its receive buffer; anything
malformed must still be refused exactly as the general parser refuses it.
"""

from __future__ import annotations

import struct

import pytest

from tests.protocol.wire_script import (
    command_complete,
    data_row,
    message,
    notice,
    notification,
    ready,
    ready_connection,
)
from trio_pg.errors import ProtocolError
from trio_pg.protocol import NEED_DATA, ClientConnection, Response, TransactionStatus
from trio_pg.protocol import backend as b
from trio_pg.protocol import frontend as f
from trio_pg.protocol.notification import Notification

EXTENDED = f.bind("", "", []) + f.execute() + f.sync()
ANSWER = (
    message(b"2") + data_row(b"7") + command_complete("SELECT 1") + ready("T")
)


def _sent(conn: ClientConnection, count: int = 1) -> None:
    for _ in range(count):
        conn.send_request(EXTENDED)
    conn.data_to_send()


def _messages(conn: ClientConnection) -> list[object]:
    out: list[object] = []
    while (event := conn.next_event()) is not NEED_DATA:
        assert isinstance(event, Response), event
        out.extend(event.messages)
    return out


@pytest.mark.parametrize("step", [None, 1, 3])
def test_everyday_messages_read_in_place_match_the_parser(step: int | None) -> None:
    conn = ready_connection()
    _sent(conn, 2)
    data = ANSWER * 2
    got: list[object] = []
    for i in range(0, len(data), step or len(data)):
        conn.receive_data(data[i : i + (step or len(data))])
        got.extend(_messages(conn))
    one = [b.BindComplete(), data_row(b"7")[5:], b.CommandComplete("SELECT 1")]
    assert got == [*one, b.ReadyForQuery(TransactionStatus.IN_TRANSACTION)] * 2
    assert conn.pending == 0
    assert conn.transaction_status is TransactionStatus.IN_TRANSACTION


def test_each_request_gets_its_own_response_from_one_read() -> None:
    conn = ready_connection()
    _sent(conn, 3)
    conn.receive_data(ANSWER * 3)
    events = [conn.next_event() for _ in range(4)]
    assert [e.done for e in events[:3] if isinstance(e, Response)] == [True] * 3
    assert events[3] is NEED_DATA


@pytest.mark.parametrize(
    "bad",
    [
        message(b"2", b"\x00"),  # BindComplete with a body
        message(b"C", b"SELECT 1"),  # tag without its NUL
        message(b"C", b"SELECT\x001\x00"),  # NUL inside the tag
        message(b"Z", b"?"),  # unknown transaction status
        message(b"Z", b"II"),  # ReadyForQuery too long
    ],
)
def test_malformed_everyday_messages_are_still_refused(bad: bytes) -> None:
    conn = ready_connection()
    _sent(conn)
    conn.receive_data(bad)
    with pytest.raises(ProtocolError):
        _messages(conn)


def test_notifications_in_a_burst_are_taken_in_order_up_to_the_limit() -> None:
    conn = ready_connection()
    burst = b"".join(notification(7, "jobs", str(i)) for i in range(5))
    conn.receive_data(burst + notice("later"))
    first = conn.next_event()
    assert first == b.NotificationResponse(7, "jobs", "0")
    taken: list[Notification] = []
    conn.take_notifications(taken, 3)
    assert taken == [
        Notification("jobs", "1", 7),
        Notification("jobs", "2", 7),
        Notification("jobs", "3", 7),
    ]
    conn.take_notifications(taken, 10)
    assert taken[3:] == [Notification("jobs", "4", 7)]  # stops at the notice
    assert isinstance(conn.next_event(), b.NoticeResponse)


def test_notification_channel_names_are_read_afresh_whenever_they_change() -> None:
    # The reader reuses the previous channel's str when the bytes match: a prefix, a
    # longer name, a switch back and forth, and a name filling the whole message.
    conn = ready_connection()
    sent = [("jobs", "0"), ("jobs", "1"), ("job", "2"), ("jobs", "3"), ("jobsx", "")]
    sent += [("é", "4"), ("jobs", "")]
    conn.receive_data(b"".join(notification(9, c, p) for c, p in sent) + notice("end"))
    taken: list[Notification] = []
    conn.take_notifications(taken, 100)
    assert taken == [Notification(c, p, 9) for c, p in sent]
    assert taken[1].channel is taken[0].channel  # one str for a run of one channel
    assert isinstance(conn.next_event(), b.NoticeResponse)


def test_notification_whose_name_matches_but_has_no_payload_field_is_refused() -> None:
    # Same channel as before, but the message ends right after the name: malformed.
    conn = ready_connection()
    bad = message(b"A", struct.pack("!I", 3) + b"jobs\x00")
    conn.receive_data(notification(3, "jobs", "ok") + bad)
    taken: list[Notification] = []
    conn.take_notifications(taken, 5)
    assert taken == [Notification("jobs", "ok", 3)]
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_notification_split_across_reads_is_taken_once_complete() -> None:
    conn = ready_connection()
    data = notification(1, "c", "payload é")
    conn.receive_data(data[:7])
    taken: list[Notification] = []
    conn.take_notifications(taken, 5)
    assert taken == []
    assert conn.next_event() is NEED_DATA
    conn.receive_data(data[7:])
    assert conn.next_event() == b.NotificationResponse(1, "c", "payload é")


def test_malformed_notification_is_refused_not_taken() -> None:
    conn = ready_connection()
    conn.receive_data(message(b"A", b"\x00\x00\x00\x01chan\x00no terminator"))
    taken: list[Notification] = []
    conn.take_notifications(taken, 5)
    assert taken == []
    with pytest.raises(ProtocolError):
        conn.next_event()
