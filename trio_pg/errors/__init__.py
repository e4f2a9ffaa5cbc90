"""Exceptions raised by trio_pg.

:class:`Error` is the base of everything trio_pg raises. A server ErrorResponse is a
:class:`PostgresError`, raised as the subclass for its SQLSTATE: one per code in
PostgreSQL's ``errcodes.txt`` (``UniqueViolationError``, ``SerializationFailureError``,
``QueryCanceledError``, ...), each under the generic class of its first two characters
(``IntegrityConstraintViolationError`` for ``23xxx``). :func:`exception_class_for` maps a
SQLSTATE to its class.
"""

from __future__ import annotations

from trio_pg.errors import _sqlstate
from trio_pg.errors._base import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectionLostError,
    Error,
    InterfaceError,
    NotificationOverflowError,
    PipelineAbortedError,
    PostgresError,
    ProtocolError,
    TLSError,
    exception_class_for,
)

# The generated module lists its ~250 classes in its own __all__; naming them again here
# would be a second copy to keep in step with errcodes.txt.
from trio_pg.errors._sqlstate import *  # noqa: F403

__all__ = [
    "AuthenticationError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "Error",
    "InterfaceError",
    "NotificationOverflowError",
    "PipelineAbortedError",
    "PostgresError",
    "ProtocolError",
    "TLSError",
    "exception_class_for",
]
__all__ += _sqlstate.__all__

# Tracebacks and reprs name the public module (``trio_pg.errors.UniqueViolationError``)
# rather than the private one that defines the class; pickle finds classes there too.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
