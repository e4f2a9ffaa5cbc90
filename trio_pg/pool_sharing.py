"""Which statements a pool may pipeline through a connection other calls are using.

When every connection of a pool is busy, :meth:`Pool.fetch` and friends may send their
statement through a connection that other such calls are using, instead of waiting for
one to come back: the connection's FIFO keeps each call's results apart. That is safe
only for a statement that cannot change what the *other* statements on that connection
run inside. A transaction-control statement (``BEGIN``, ``COMMIT``, ``SAVEPOINT``...),
``CALL`` and ``DO`` (procedures may commit), ``SET``, ``LISTEN``, ``DECLARE``, ``COPY``
and other utility commands may; a plain query or data-modifying statement sent with
the extended protocol may not: it is a single statement (Parse refuses several) and the
functions it calls cannot end or begin a transaction (plpgsql.html#PLPGSQL-TRANSACTIONS).

So a statement may share when its first keyword, after whitespace, comments and opening
parentheses, is one of :data:`_SHAREABLE`. Anything this module is unsure of (a nested
comment, an unknown keyword) is not shared.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

__all__ = ["may_share"]

#: Statements that run as one query in the extended protocol's implicit transaction.
_SHAREABLE: Final = frozenset(
    {"SELECT", "VALUES", "TABLE", "WITH", "INSERT", "UPDATE", "DELETE", "MERGE"}
)

#: Leading whitespace, ``--`` comments, non-nested ``/* */`` comments and ``(``, then a
#: keyword. A nested comment does not match, which makes the statement not shareable.
_FIRST_KEYWORD: Final = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*(?:(?!/\*)[\s\S])*?\*/|\()*([A-Za-z_]+)"
)


@lru_cache(maxsize=1024)
def may_share(sql: str) -> bool:
    """Whether ``sql``, run with the extended protocol, may share a busy connection."""
    match = _FIRST_KEYWORD.match(sql)
    return match is not None and match.group(1).upper() in _SHAREABLE
