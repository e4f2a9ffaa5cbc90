"""The trio_pg exception hierarchy, apart from the generated SQLSTATE classes.

Everything trio_pg raises derives from :class:`Error`. A server ErrorResponse becomes a
:class:`PostgresError`, or rather the subclass for its SQLSTATE (see ``_sqlstate.py``,
generated from PostgreSQL's ``errcodes.txt``). The other classes describe failures that
happen on the client side of the wire.

This module is pure: standard library only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

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


class Error(Exception):
    """Base class of every exception trio_pg raises."""


class InterfaceError(Error):
    """The library was used in a way it does not allow.

    For example: the wrong number of arguments for a statement's placeholders, a value
    its codec cannot encode, or a NUL character in text sent to the server.
    """


class ConnectionLostError(Error):
    """The connection broke; every request still pending on it fails with this error.

    The transport error that caused it, if any, is chained as ``__cause__``.
    """


class ConnectionFailedError(Error):
    """No connection could be established: every host was tried and failed.

    The message lists each attempt; the last transport error is chained as ``__cause__``.
    Server refusals during startup (a wrong password, say) are raised as the
    :class:`PostgresError` the server sent instead.
    """


class ProtocolError(Error):
    """The server sent something the frontend/backend protocol does not allow.

    The connection is closed when this is raised: it can no longer be trusted to be in
    step with the server.
    """


class PipelineAbortedError(Error):
    """A pipelined statement was skipped because an earlier one in its segment failed.

    The statements between two ``sync()`` calls share one implicit transaction; after an
    error the server skips the rest of the segment
    (``protocol-flow.html#PROTOCOL-FLOW-PIPELINING``).
    """


class TLSError(Error):
    """TLS could not be negotiated or the server certificate was not accepted."""


class AuthenticationError(Error):
    """Authentication failed on the client side, without an ErrorResponse from the server.

    For example: the server asked for a method that ``require_auth`` forbids, or its
    SCRAM signature did not verify. A password the server rejects is a
    ``PostgresError`` instead (``InvalidPasswordError``, SQLSTATE 28P01).
    """


class NotificationOverflowError(Error):
    """A notification subscription fell behind and its buffer filled up.

    The subscription ends with this error after the notifications it already buffered.

    Attributes:
        dropped: How many notifications were dropped.
    """

    dropped: int

    def __init__(self, dropped: int) -> None:
        """Create the error.

        Args:
            dropped: How many notifications were dropped.
        """
        # Passing ``dropped`` to Exception keeps ``self.args`` equal to the constructor's
        # arguments, which is what pickle and copy use to rebuild the exception.
        super().__init__(dropped)
        self.dropped = dropped

    def __str__(self) -> str:
        return (
            f"notification buffer full, {self.dropped} notification(s) dropped: "
            "consume faster, raise max_buffer, or use on_overflow='block'"
        )


class PostgresError(Error):
    """An ErrorResponse from the server.

    Prefer :meth:`from_fields`, which returns the subclass for the SQLSTATE (for example
    ``UniqueViolationError``), so ``except`` clauses match. The constructor builds the
    exact class it is called on.

    Each ErrorResponse field (``protocol-error-fields.html``) is an attribute; fields the
    server did not send are ``None``.

    Attributes:
        fields: Every field as received, keyed by its one-letter code.
        sqlstate: ``C``, the SQLSTATE error code (``errcodes-appendix.html``). On a
            generated subclass it is also a class attribute; an instance carries the code
            the server sent, which differs for an unknown code that fell back to the
            class of its first two characters.
        severity: ``S``, localized severity (``ERROR``, ``FATAL``, ``PANIC``).
        severity_nonlocalized: ``V``, severity never translated (PostgreSQL >= 9.6).
        message: ``M``, the primary message.
        detail: ``D``, an optional secondary message with more detail.
        hint: ``H``, an optional suggestion of what to do.
        position: ``P``, 1-based character index into the query string, as text.
        internal_position: ``p``, like ``position`` but into ``internal_query``.
        internal_query: ``q``, the text of an internally generated command that failed.
        where: ``W``, the call stack context in which the error occurred.
        schema_name: ``s``, the schema of the object involved.
        table_name: ``t``, the table involved.
        column_name: ``c``, the column involved.
        data_type_name: ``d``, the data type involved.
        constraint_name: ``n``, the constraint involved.
        file: ``F``, the server source file that reported the error.
        line: ``L``, the line in that source file, as text.
        routine: ``R``, the server source routine that reported the error.
    """

    fields: dict[str, str]
    sqlstate: str
    severity: str | None
    severity_nonlocalized: str | None
    message: str
    detail: str | None
    hint: str | None
    position: str | None
    internal_position: str | None
    internal_query: str | None
    where: str | None
    schema_name: str | None
    table_name: str | None
    column_name: str | None
    data_type_name: str | None
    constraint_name: str | None
    file: str | None
    line: str | None
    routine: str | None

    def __init__(self, fields: Mapping[str, str]) -> None:
        """Create the error from ErrorResponse fields.

        Args:
            fields: Field values keyed by their one-letter code; ``C`` (SQLSTATE) and
                ``M`` (message) are required, as the server always sends them.

        Raises:
            TypeError: ``fields`` is not a mapping.
            ValueError: ``C`` or ``M`` is missing.
        """
        _check_fields(fields)
        own = dict(fields)
        # ``self.args`` is what pickle and copy pass back to the constructor.
        super().__init__(own)
        self.fields = own
        # Field codes: protocol-error-fields.html.
        self.sqlstate = own["C"]
        self.message = own["M"]
        self.severity = own.get("S")
        self.severity_nonlocalized = own.get("V")
        self.detail = own.get("D")
        self.hint = own.get("H")
        self.position = own.get("P")
        self.internal_position = own.get("p")
        self.internal_query = own.get("q")
        self.where = own.get("W")
        self.schema_name = own.get("s")
        self.table_name = own.get("t")
        self.column_name = own.get("c")
        self.data_type_name = own.get("d")
        self.constraint_name = own.get("n")
        self.file = own.get("F")
        self.line = own.get("L")
        self.routine = own.get("R")

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Self:
        """Create the most specific exception for the SQLSTATE in ``fields``.

        The class is :func:`exception_class_for` the ``C`` field, or ``cls`` itself when
        ``cls`` is a subclass of that (so a user's own subclass of, say,
        ``UniqueViolationError`` builds instances of itself).

        Args:
            fields: Field values keyed by their one-letter code; ``C`` and ``M`` required.

        Returns:
            The new exception (not raised).

        Raises:
            TypeError: ``fields`` is not a mapping.
            ValueError: ``C`` or ``M`` is missing, or the SQLSTATE belongs to a class
                that is not ``cls`` or one of its subclasses.
        """
        _check_fields(fields)
        found = exception_class_for(fields["C"])
        if issubclass(found, cls):
            return found(fields)
        if issubclass(cls, found):
            return cls(fields)
        raise ValueError(
            f"SQLSTATE {fields['C']!r} is a {found.__name__}, not a {cls.__name__}; "
            f"call {found.__name__}.from_fields or PostgresError.from_fields"
        )

    def __str__(self) -> str:
        # The layout psql prints: the message, then DETAIL and HINT lines.
        text = self.message
        if self.detail is not None:
            text += f"\nDETAIL:  {self.detail}"
        if self.hint is not None:
            text += f"\nHINT:  {self.hint}"
        return text


def _check_fields(fields: Mapping[str, str]) -> None:
    """Raise if ``fields`` cannot describe an ErrorResponse (see ``PostgresError``)."""
    if not isinstance(fields, Mapping):
        raise TypeError(
            f"PostgresError takes a mapping of ErrorResponse fields such as "
            f"{{'C': '23505', 'M': 'message'}}, not {type(fields).__name__}"
        )
    missing = [code for code in ("C", "M") if code not in fields]
    if missing:
        raise ValueError(
            f"ErrorResponse fields must include 'C' (SQLSTATE) and 'M' (message); "
            f"missing {', '.join(repr(code) for code in missing)}"
        )


def exception_class_for(sqlstate: str) -> type[PostgresError]:
    """Return the exception class for a SQLSTATE.

    An unknown code falls back to the class of its first two characters (``"23ZZZ"`` is
    an ``IntegrityConstraintViolationError``), as ``errcodes-appendix.html`` says
    applications should treat it; a code of no known class gives ``PostgresError``.

    Args:
        sqlstate: A five-character SQLSTATE such as ``"23505"``.

    Returns:
        A subclass of ``PostgresError``, or ``PostgresError`` itself.
    """
    # The generated classes subclass PostgresError, so their module can only be imported
    # after this one has been; by the time anything calls this, it has been (the package
    # __init__ imports both).
    from trio_pg.errors._sqlstate import _BY_SQLSTATE

    found = _BY_SQLSTATE.get(sqlstate)
    if found is None and len(sqlstate) == 5:
        found = _BY_SQLSTATE.get(sqlstate[:2] + "000")
    return PostgresError if found is None else found
