"""Building SQL text safely: identifier quoting."""

from __future__ import annotations

from trio_pg.errors import InterfaceError

__all__ = ["quote_ident"]


def quote_ident(name: str) -> str:
    """Quote ``name`` as an SQL identifier: ``orders`` → ``"orders"``, ``a"b`` → ``"a""b"``.

    Quoting keeps the name exactly as given, with no case folding
    (sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS).

    Raises:
        InterfaceError: ``name`` is empty or holds a NUL character.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InterfaceError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'
