"""Splitting the server's byte stream into messages.

Theory of operation: every backend message is a type byte, an ``Int32`` length that
counts itself, and a body (protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS). Received
chunks are kept as immutable ``bytes``; a read position walks through the current chunk
and bodies are sliced out of it. Chunks that arrive while a message is still incomplete
are queued and joined once, when enough bytes for that message are present, so each
byte is copied at most once however the stream is cut (linear time, as h11's receive
buffer).

Lengths are checked against a cap before anything waits for the body, so a corrupt or
hostile length is a :class:`~trio_pg.errors.ProtocolError` at once, never an allocation
or a wait for gigabytes that will not come. Message types that are always small (as
libpq does in ``pqParseInput3``) have a much lower cap.
"""

from __future__ import annotations

import struct
from typing import Final

from trio_pg.errors import ProtocolError

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Framer"]

#: Default cap on one message body. A single field can hold up to 1 GiB in PostgreSQL.
DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 30

# Messages whose bodies are a few bytes: a large length there is corruption.
_SHORT_TYPES: Final = frozenset(b"Z123nsIcK")
_SHORT_LIMIT: Final = 1024

_LENGTH: Final = struct.Struct("!i")


class Framer:
    """Receive buffer that yields ``(type_byte, body)`` pairs."""

    __slots__ = ("_buf", "_chunks", "_chunks_len", "_eof", "_pos", "max_message_size")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < _SHORT_LIMIT:
            raise ValueError(f"max_message_size must be at least {_SHORT_LIMIT}")
        self.max_message_size = max_message_size
        self._buf = b""
        self._pos = 0
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        self._eof = False

    @property
    def eof(self) -> bool:
        """True once end of stream was fed (``feed(b"")``)."""
        return self._eof

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        return len(self._buf) - self._pos + self._chunks_len

    def feed(self, data: bytes | bytearray) -> None:
        """Add received bytes; ``b""`` marks end of stream."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("data fed after end of stream")
        if self._pos == len(self._buf) and not self._chunks:
            self._buf = bytes(data)
            self._pos = 0
        else:
            self._chunks.append(bytes(data))
            self._chunks_len += len(data)

    def _join(self) -> None:
        rest = memoryview(self._buf)[self._pos :]
        if not rest and len(self._chunks) == 1:
            self._buf = self._chunks[0]
        else:
            self._buf = b"".join([rest, *self._chunks])
        self._pos = 0
        self._chunks.clear()
        self._chunks_len = 0

    def _check_length(self, type_byte: int, length: int) -> None:
        if length < 4:
            raise ProtocolError(
                f"invalid message length {length} for message type {chr(type_byte)!r}"
            )
        limit = _SHORT_LIMIT if type_byte in _SHORT_TYPES else self.max_message_size
        if length - 4 > limit:
            raise ProtocolError(
                f"message of type {chr(type_byte)!r} is {length - 4} bytes long, over the "
                f"limit of {limit} bytes (raise max_message_size if the server is right)"
            )

    def next_message(self) -> tuple[bytes, bytes] | None:
        """Return the next complete message as ``(type_byte, body)``, or None if incomplete.

        Raises:
            ProtocolError: A message length is invalid or over the cap.
        """
        while True:
            buf = self._buf
            pos = self._pos
            avail = len(buf) - pos
            if avail >= 5:
                (length,) = _LENGTH.unpack_from(buf, pos + 1)
                self._check_length(buf[pos], length)
                end = pos + 1 + length
                if end <= len(buf):
                    self._pos = end
                    return buf[pos : pos + 1], buf[pos + 5 : end]
                need = length + 1
            else:
                need = 5
            if self._chunks and avail + self._chunks_len >= need:
                self._join()
                continue
            return None

    def take_bodies(self, type_code: int, out: list[bytes]) -> None:
        """Append the bodies of consecutive complete messages of one type to ``out``.

        The fast path for a stream of one message type (CopyData, say): no per-message
        tuple or dispatch. Stops at the first message of another type or not yet complete.
        """
        buf = self._buf
        pos = self._pos
        end = len(buf)
        unpack = _LENGTH.unpack_from
        limit = self.max_message_size
        append = out.append
        while end - pos >= 5 and buf[pos] == type_code:
            (length,) = unpack(buf, pos + 1)
            if length < 4 or length - 4 > limit:
                self._check_length(type_code, length)
            stop = pos + 1 + length
            if stop > end:
                break
            append(buf[pos + 5 : stop])
            pos = stop
        self._pos = pos

    def window(self) -> tuple[bytes, int]:
        """The current chunk and the read position in it, for a scan of its own.

        A caller that takes messages straight from the chunk (see
        ``ClientConnection._scan``) reports how far it got with :meth:`skip_to`.
        """
        return self._buf, self._pos

    def skip_to(self, pos: int) -> None:
        """Move the read position to ``pos`` in the current chunk (a message boundary)."""
        self._pos = pos

    def next_type(self) -> int | None:
        """The type byte of the next message if at least its first byte is buffered."""
        if self._pos < len(self._buf):
            return self._buf[self._pos]
        if self._chunks:
            return self._chunks[0][0]
        return None
