"""The Framer: message boundaries, size caps, the DataRow fast path, end of stream."""

from __future__ import annotations

import pytest

from tests.protocol.wire_script import data_row, data_row_body, message, ready
from trio_pg.errors import ProtocolError
from trio_pg.protocol import DEFAULT_MAX_MESSAGE_SIZE, Framer

DATA_ROW = ord("D")


def test_default_cap_is_one_gibibyte() -> None:
    assert DEFAULT_MAX_MESSAGE_SIZE == 1 << 30
    assert Framer().max_message_size == DEFAULT_MAX_MESSAGE_SIZE


def test_cap_below_short_message_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1024"):
        Framer(max_message_size=1023)


def test_oversized_length_fails_at_header_without_waiting_for_body() -> None:
    framer = Framer(max_message_size=1024)
    framer.feed(b"d\x00\x00\x04")
    assert framer.next_message() is None  # four bytes: length not known yet
    framer.feed(b"\x05")  # length 1029: body 1025 > 1024
    with pytest.raises(ProtocolError, match="over the limit of 1024 bytes"):
        framer.next_message()


def test_message_exactly_at_cap_is_accepted() -> None:
    framer = Framer(max_message_size=1024)
    framer.feed(message(b"d", b"x" * 1024))
    assert framer.next_message() == (b"d", b"x" * 1024)


def test_huge_length_never_allocates_or_waits() -> None:
    framer = Framer()
    framer.feed(b"D\x7f\xff\xff\xff")
    with pytest.raises(ProtocolError, match="max_message_size"):
        framer.next_message()


@pytest.mark.parametrize("type_byte", list(b"Z123nsIcK"))
def test_always_small_message_types_have_a_low_cap(type_byte: int) -> None:
    framer = Framer()
    framer.feed(bytes([type_byte]) + (4 + 1025).to_bytes(4, "big"))
    with pytest.raises(ProtocolError, match="limit of 1024"):
        framer.next_message()


@pytest.mark.parametrize("length", [0, 3, -1, -(1 << 31)])
def test_length_below_four_is_a_protocol_error(length: int) -> None:
    framer = Framer()
    framer.feed(b"C" + length.to_bytes(4, "big", signed=True))
    with pytest.raises(ProtocolError, match="invalid message length"):
        framer.next_message()


def test_header_split_across_chunks() -> None:
    framer = Framer()
    for piece in (b"Z", b"\x00", b"\x00\x00", b"\x05"):
        framer.feed(piece)
        assert framer.next_message() is None
    framer.feed(b"T")
    assert framer.next_message() == (b"Z", b"T")


def test_many_messages_in_one_chunk_then_partial() -> None:
    framer = Framer()
    stream = ready("I") + ready("T") + ready("E")
    framer.feed(stream + stream[:5])
    assert [framer.next_message() for _ in range(3)] == [(b"Z", b"I"), (b"Z", b"T"), (b"Z", b"E")]
    assert framer.next_message() is None
    assert framer.buffered == 5
    framer.feed(stream[5:])
    assert [framer.next_message() for _ in range(3)] == [(b"Z", b"I"), (b"Z", b"T"), (b"Z", b"E")]
    assert framer.buffered == 0


def test_fed_buffer_is_copied() -> None:
    framer = Framer()
    data = bytearray(ready("I"))
    framer.feed(data)
    data[5:6] = b"E"
    assert framer.next_message() == (b"Z", b"I")


def test_take_bodies_collects_consecutive_complete_messages_of_one_type() -> None:
    framer = Framer()
    framer.feed(data_row(b"1") + data_row(None) + ready("I") + data_row(b"2"))
    rows: list[bytes] = []
    framer.take_bodies(DATA_ROW, rows)
    assert rows == [data_row_body(b"1"), data_row_body(None)]
    assert framer.next_message() == (b"Z", b"I")
    framer.take_bodies(DATA_ROW, rows)
    assert rows[2:] == [data_row_body(b"2")]
    assert framer.buffered == 0


def test_take_bodies_stops_at_an_incomplete_message() -> None:
    framer = Framer()
    row = data_row(b"abc")
    framer.feed(row + row[:-1])
    rows: list[bytes] = []
    framer.take_bodies(DATA_ROW, rows)
    assert rows == [data_row_body(b"abc")]
    assert framer.buffered == len(row) - 1
    framer.feed(row[-1:])
    assert framer.next_message() == (b"D", data_row_body(b"abc"))


def test_take_bodies_checks_lengths() -> None:
    framer = Framer(max_message_size=1024)
    framer.feed(b"D\x00\x00\x10\x00")
    with pytest.raises(ProtocolError):
        framer.take_bodies(DATA_ROW, [])


def test_next_type_peeks_without_consuming() -> None:
    framer = Framer()
    assert framer.next_type() is None
    framer.feed(b"D")
    assert framer.next_type() == ord("D")
    framer.feed(data_row(b"x")[1:] + b"Z")
    assert framer.next_message() == (b"D", data_row_body(b"x"))
    assert framer.next_type() == ord("Z")


def test_next_type_sees_queued_chunk_after_buffer_is_consumed() -> None:
    framer = Framer()
    framer.feed(ready("I"))
    framer.feed(b"C")  # queued: the first chunk is not consumed yet
    assert framer.next_message() == (b"Z", b"I")
    assert framer.next_type() == ord("C")


def test_partial_header_joined_with_next_chunk() -> None:
    framer = Framer()
    framer.feed(ready("I")[:3])
    framer.feed(ready("I")[3:] + b"C")
    assert framer.next_message() == (b"Z", b"I")
    assert framer.next_type() == ord("C")


def test_queued_chunk_becomes_the_buffer_once_the_first_is_consumed() -> None:
    framer = Framer()
    framer.feed(ready("I"))
    framer.feed(ready("T"))
    assert framer.next_message() == (b"Z", b"I")
    assert framer.next_message() == (b"Z", b"T")
    assert framer.buffered == 0


def test_end_of_stream() -> None:
    framer = Framer()
    assert not framer.eof
    framer.feed(b"")
    assert framer.eof
    with pytest.raises(RuntimeError, match="after end of stream"):
        framer.feed(b"Z")
