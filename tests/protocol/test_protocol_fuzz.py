"""Hypothesis: hostile or corrupt server bytes never crash, hang or balloon the core.

Random bytes and mutated valid streams are cut into random chunks and fed to the Framer
plus ``parse_message``, and to a ClientConnection in READY with requests pending. The only
allowed outcomes are events (or parsed messages) and ``ProtocolError``: never another
exception, and never a loop that does not come back for more data.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.protocol.wire_script import (
    auth_ok,
    backend_key,
    command_complete,
    copy_in_response,
    data_row,
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
    Framer,
    Request,
    parse_message,
)
from trio_pg.protocol import frontend as f

MAX_SIZE = 4096

FUZZ = settings(
    max_examples=150,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Valid server messages the mutated streams are built from.
VALID_MESSAGES: list[bytes] = [
    simple_result(),
    row_description("a", "b"),
    data_row(b"1", None),
    data_row(),
    command_complete("SELECT 1"),
    ready("I"),
    ready("T"),
    ready("E"),
    error("42601", "syntax error"),
    error("57P01", "terminating", "FATAL"),
    notice("careful"),
    notification(7, "jobs", "payload"),
    parameter_status("TimeZone", "UTC"),
    copy_in_response(2),
    message(b"1"),
    message(b"2"),
    message(b"3"),
    message(b"n"),
    message(b"s"),
    message(b"I"),
    message(b"t", b"\x00\x01\x00\x00\x00\x17"),
    message(b"H", b"\x00\x00\x01\x00\x00"),
    message(b"d", b"row\n"),
    message(b"c"),
    message(b"V", b"\xff\xff\xff\xff"),
    auth_ok(),
    backend_key(1, b"abcd"),
    message(b"v", b"\x00\x03\x00\x00\x00\x00\x00\x00"),
]


#: After which chunk to abandon which of the four pending requests, if at all.
ABANDON = st.none() | st.tuples(st.integers(0, 16), st.integers(0, 3))


def _chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        if point > start:
            yield data[start:point]
            start = point


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID_MESSAGES), max_size=12))))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        where = draw(st.integers(0, len(data)))
        if kind == "flip" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            del data[where:]
    return bytes(data)


def _run_framer(data: bytes, cuts: list[int]) -> None:
    framer = Framer(max_message_size=MAX_SIZE)
    fed = 0
    try:
        for chunk in _chunks(data, cuts):
            framer.feed(chunk)
            fed += len(chunk)
            for _ in range(len(data) + 1):
                assert framer.buffered <= fed
                item = framer.next_message()
                if item is None:
                    break
                parse_message(*item)
            else:
                raise AssertionError("Framer kept returning messages past the bytes fed")
    except ProtocolError:
        pass


def _client_with_pending_requests() -> tuple[ClientConnection, list[Request]]:
    conn = ready_connection(max_message_size=MAX_SIZE)
    requests = [
        conn.send_request(f.query("SELECT 1"), simple=True),
        conn.send_request(f.parse("", "SELECT 1") + f.bind("", "", []) + f.execute() + f.sync()),
        conn.send_request(f.query("COPY t FROM STDIN"), simple=True, barrier=True),
        conn.send_request(f.query("SELECT 2; SELECT 3"), simple=True, boundaries=2),
    ]
    conn.data_to_send()
    return conn, requests


def _drain_until_need_data(conn: ClientConnection, budget: int) -> bool:
    """Pull events; False once the session is over (closed or broken)."""
    for _ in range(budget):
        event = conn.next_event()
        if event is NEED_DATA:
            return True
        if isinstance(event, ConnectionClosed):
            return False
    raise AssertionError("next_event() did not come back for more data")


def _run_client(data: bytes, cuts: list[int], abandon: tuple[int, int] | None) -> None:
    conn, requests = _client_with_pending_requests()
    budget = len(data) + 10
    try:
        for i, chunk in enumerate(_chunks(data, cuts)):
            conn.receive_data(chunk)
            if not _drain_until_need_data(conn, budget):
                return
            # Play the I/O layer's part: abandon a request, answer cancels, write.
            if abandon is not None and abandon[0] == i:
                conn.abandon(requests[abandon[1]])
            offer = conn.take_cancel()
            if offer is not None:
                conn.cancel_finished(offer)
            conn.data_to_send()
        conn.receive_data(b"")
        _drain_until_need_data(conn, budget)
    except ProtocolError:
        pass


@FUZZ
@given(data=st.binary(max_size=512), cuts=st.lists(st.integers(0, 512), max_size=16))
def test_framer_survives_random_bytes(data: bytes, cuts: list[int]) -> None:
    _run_framer(data, cuts)


@FUZZ
@given(data=mutated_streams(), cuts=st.lists(st.integers(0, 2048), max_size=16))
def test_framer_survives_mutated_streams(data: bytes, cuts: list[int]) -> None:
    _run_framer(data, cuts)


@FUZZ
@given(
    data=st.binary(max_size=512),
    cuts=st.lists(st.integers(0, 512), max_size=16),
    abandon=ABANDON,
)
def test_client_survives_random_bytes(
    data: bytes, cuts: list[int], abandon: tuple[int, int] | None
) -> None:
    _run_client(data, cuts, abandon)


@FUZZ
@given(
    data=mutated_streams(),
    cuts=st.lists(st.integers(0, 2048), max_size=16),
    abandon=ABANDON,
)
def test_client_survives_mutated_streams(
    data: bytes, cuts: list[int], abandon: tuple[int, int] | None
) -> None:
    _run_client(data, cuts, abandon)


@FUZZ
@given(
    prefix=st.lists(st.sampled_from(VALID_MESSAGES), max_size=4),
    type_byte=st.integers(0, 255),
    length=st.integers(4 + MAX_SIZE + 1, 2**31 - 1),
    body=st.binary(max_size=64),
    cuts=st.lists(st.integers(0, 4096), max_size=8),
)
def test_oversized_length_fails_as_soon_as_header_arrives(
    prefix: list[bytes], type_byte: int, length: int, body: bytes, cuts: list[int]
) -> None:
    head = b"".join(prefix)
    stream = head + bytes([type_byte]) + length.to_bytes(4, "big") + body
    header_end = len(head) + 5
    framer = Framer(max_message_size=MAX_SIZE)
    fed = 0
    for chunk in _chunks(stream, cuts):
        framer.feed(chunk)
        fed += len(chunk)
        assert framer.buffered <= fed
        if fed < header_end:
            while framer.next_message() is not None:
                pass
            continue
        try:
            while framer.next_message() is not None:
                pass
        except ProtocolError:
            return
        raise AssertionError("an oversized length was accepted with its header in")
    raise AssertionError("the stream ended before the header")  # pragma: no cover


@FUZZ
@given(
    type_byte=st.sampled_from(b"DTCEdVAS"),
    length=st.integers(4 + MAX_SIZE + 1, 2**31 - 1),
    cuts=st.lists(st.integers(0, 5), max_size=4),
)
def test_client_refuses_oversized_length_without_waiting_for_body(
    type_byte: int, length: int, cuts: list[int]
) -> None:
    conn, _ = _client_with_pending_requests()
    header = bytes([type_byte]) + length.to_bytes(4, "big")
    chunks = list(_chunks(header, cuts))
    for chunk in chunks[:-1]:
        conn.receive_data(chunk)
        assert conn.next_event() is NEED_DATA
    conn.receive_data(chunks[-1])
    try:
        conn.next_event()
    except ProtocolError:
        return
    raise AssertionError("an oversized length was accepted")
