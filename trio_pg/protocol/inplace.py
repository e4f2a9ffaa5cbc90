"""Everyday backend messages read in place from the receive buffer.

Theory of operation
-------------------
Most of what a busy session receives is a handful of fixed-shape messages: DataRow,
ParseComplete/BindComplete/CloseComplete/NoData (no body), CommandComplete (one
NUL-terminated tag), ReadyForQuery (one status byte) and, for listeners,
NotificationResponse (protocol-message-formats.html). Going through the general parser
costs a ``(type, body)`` tuple, a body copy, a dispatch and a cursor object per message.
These functions walk the framer's current chunk instead (``Framer.window`` /
``Framer.skip_to``), build the message (or a shared instance of a bodiless one) straight
from it, and stop at the first message that is anything else, malformed or incomplete:
the general path then handles it exactly as before, refusals included. So they only
ever take well-formed messages, in order, and never wait for bytes.
"""

from __future__ import annotations

import struct
from typing import Final

from trio_pg.protocol import backend as b
from trio_pg.protocol.framing import Framer
from trio_pg.protocol.notification import Notification
from trio_pg.protocol.requests import Boundary, Request

__all__ = ["read_notifications", "scan_request"]

_LENGTH: Final = struct.Struct("!i")
_LENGTH_AND_PID: Final = struct.Struct("!iI")
_tuple_new: Final = tuple.__new__
# Bodiless messages by type byte: one shared instance each, as they carry no data.
_EMPTY: Final[dict[int, b.BackendMessage]] = {
    ord("1"): b.ParseComplete(),
    ord("2"): b.BindComplete(),
    ord("3"): b.CloseComplete(),
    ord("n"): b.NoData(),
}
_READY: Final = {ord(s.value): b.ReadyForQuery(s) for s in b.TransactionStatus}
#: CommandComplete messages remembered by raw body (the same few tags recur).
TAG_CACHE_SIZE: Final = 256


def read_notifications(framer: Framer, out: list[Notification], limit: int) -> None:
    """Append up to ``limit`` NotificationResponse messages that come next, as values.

    Stops at any other message. A burst usually repeats one channel name, so a name
    equal to the previous one is recognised in place and its ``str`` reused.
    """
    buf, pos = framer.window()
    end = len(buf)
    cap = framer.max_message_size
    unpack = _LENGTH_AND_PID.unpack_from
    append = out.append
    new = _tuple_new
    # The previous channel name: its bytes with their NUL, its length, and its str.
    raw_name = b""
    name_length = 0
    name = ""
    # (9 bytes: the type, the length and the process ID, read in one unpack.)
    while limit > 0 and end - pos >= 9 and buf[pos] == 65:  # "A"
        length, pid = unpack(buf, pos + 1)
        stop = pos + 1 + length
        # Int32 process ID, then channel and payload as NUL-terminated strings.
        if length < 10 or stop > end or length - 4 > cap:
            break
        start = pos + 9
        if raw_name and buf.startswith(raw_name, start) and start + name_length < stop:
            mid = start + name_length - 1
        else:
            mid = buf.find(0, start, stop)
            if mid < 0:
                break
            raw_name = bytes(buf[start : mid + 1])
            name_length = len(raw_name)
            name = raw_name[:-1].decode("utf-8", "replace")
        if buf.find(0, mid + 1, stop) != stop - 1:
            break
        payload = buf[mid + 1 : stop - 1].decode("utf-8", "replace")
        append(new(Notification, (name, payload, pid)))
        pos = stop
        limit -= 1
    framer.skip_to(pos)


def scan_request(
    framer: Framer,
    head: Request,
    batch: list[b.BackendMessage],
    tags: dict[bytes, b.CommandComplete],
) -> tuple[b.TransactionStatus | None, bool]:
    """Take ``head``'s everyday messages into ``batch`` (nothing when it is abandoned).

    DataRows come out as their raw bodies (their layout is checked when split into
    columns). The request's own bookkeeping is done here: ReadyForQuery counts down its
    boundaries, and CommandComplete ends a FLUSH request. ``tags`` caches
    CommandComplete messages by body for the caller (at most ``TAG_CACHE_SIZE``).

    Returns:
        The last transaction status a ReadyForQuery reported (None if none came), and
        whether the request completed (the scan stops right after its last message).
    """
    buf, pos = framer.window()
    end = len(buf)
    keep = not head.abandoned
    append = batch.append
    unpack = _LENGTH.unpack_from
    cap = framer.max_message_size
    status: b.TransactionStatus | None = None
    done = False
    while end - pos >= 5:
        code = buf[pos]
        (length,) = unpack(buf, pos + 1)
        stop = pos + 1 + length
        if stop > end or length < 4:
            break
        if code == 68:  # DataRow: its raw body, or skipped for an abandoned request
            if length - 4 > cap:
                break
            if keep:
                append(buf[pos + 5 : stop])
        elif code == 67:  # CommandComplete: a NUL-terminated tag
            key = buf[pos + 5 : stop]
            msg = tags.get(key)
            if msg is None:
                if length - 4 > cap or key.find(0) != len(key) - 1:
                    break
                msg = b.CommandComplete(key[:-1].decode("utf-8", "replace"))
                if len(tags) >= TAG_CACHE_SIZE:
                    tags.clear()
                tags[key] = msg
            if keep:
                append(msg)
            done = head.boundary is Boundary.FLUSH
        elif length == 4 and code in _EMPTY:
            if keep:
                append(_EMPTY[code])
        elif code == 90 and length == 5 and head.boundary is Boundary.READY:  # "Z"
            ready = _READY.get(buf[pos + 5])
            if ready is None:
                break
            status = ready.status
            if keep:
                append(ready)
            head.boundaries -= 1
            done = head.boundaries == 0
        else:
            break
        pos = stop
        if done:
            break
    framer.skip_to(pos)
    return status, done
