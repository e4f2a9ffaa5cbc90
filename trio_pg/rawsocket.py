"""Reads and writes straight on a plain socket's descriptor, for the connection's hot path.

``trio.SocketStream`` is correct for any use, and pays for it on every call: a receive
first tries ``recv`` (on a request/response connection the answer is almost never there
yet, so that is a failed system call and a raised ``BlockingIOError``), and a receive that
succeeds at once yields to the scheduler again afterwards. The connection's reader is the
only task that ever reads its socket, and knows more:

* after a short read the socket is drained, so the reader waits for readiness *first*
  and then reads once;
* after a full read more data is probably waiting, so it reads at once, after a plain
  checkpoint that keeps a fast server from starving the other tasks.

:meth:`RawSocket.write_nowait` is the other half: a non-blocking write that a requesting
task makes itself on an idle connection (see ``Connection._write_now``).

Only for plain sockets on POSIX systems, where a socket is a file descriptor; TLS and
other streams go through their ``receive_some``/``send_all``.
"""

from __future__ import annotations

import errno
import os

import trio

__all__ = ["RawSocket", "raw_socket_of"]


class RawSocket:
    """A plain stream socket's descriptor, read by one task at a time.

    The descriptor stays owned by the Trio stream it came from: closing that stream
    wakes a task waiting in :meth:`receive` with ``trio.ClosedResourceError``.
    """

    __slots__ = ("_drained", "_size", "fd")

    def __init__(self, fd: int, receive_size: int) -> None:
        self.fd = fd
        self._size = receive_size
        # Whether the last read returned less than asked (the socket had no more).
        self._drained = True

    async def receive(self) -> bytes:
        """The next bytes from the socket; ``b""`` at end of stream. A checkpoint.

        Raises:
            trio.BrokenResourceError: The connection broke (reset, for instance), with
                the ``OSError`` as its ``__cause__``, as ``trio.SocketStream`` raises it.
            trio.ClosedResourceError: The stream was closed.
        """
        fd = self.fd
        if self._drained:
            await trio.lowlevel.wait_readable(fd)
        else:
            await trio.lowlevel.checkpoint()
        while True:
            try:
                data = os.read(fd, self._size)
            except BlockingIOError:
                # Readiness without data (another reader of the descriptor, or a
                # spurious wake-up): wait again.
                await trio.lowlevel.wait_readable(fd)
                continue
            except OSError as exc:
                raise _stream_error(exc) from exc
            self._drained = len(data) < self._size
            return data

    def write_nowait(self, data: bytes) -> int:
        """Write what the socket takes now without blocking; the number of bytes taken.

        Returns 0 when the socket would block or is broken: the caller then leaves the
        bytes to a task that waits and reports the error.
        """
        try:
            return os.write(self.fd, data)
        except OSError:
            return 0


def _stream_error(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the socket was closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


def raw_socket_of(stream: trio.abc.Stream, receive_size: int) -> RawSocket | None:
    """A :class:`RawSocket` for ``stream`` when it is a plain socket on POSIX, else None."""
    if isinstance(stream, trio.SocketStream) and os.name == "posix":
        return RawSocket(stream.socket.fileno(), receive_size)
    return None
