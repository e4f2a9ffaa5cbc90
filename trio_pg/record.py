"""Result rows.

A :class:`Record` is a tuple: immutable, cheap to build, equal to the plain tuple of its
values, and hashable. Column names live on a per-statement subclass (made once, when a
statement's RowDescription is first seen), so a row carries no names of its own and
creating one costs a single ``tuple.__new__``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, SupportsIndex, overload

__all__ = ["Record", "record_class"]


class Record(tuple[Any, ...]):
    """One result row: ``r[0]``, ``r["name"]``, ``len(r)``, iteration over values.

    Also ``keys()``, ``values()``, ``items()`` and ``get(name, default)``. Equal to the
    tuple of its values. When several columns share a name, ``r["name"]`` is the first.
    """

    __slots__ = ()

    _names: ClassVar[tuple[str, ...]] = ()
    _index: ClassVar[dict[str, int]] = {}

    @overload
    def __getitem__(self, key: SupportsIndex | str) -> Any: ...

    @overload
    def __getitem__(self, key: slice) -> tuple[Any, ...]: ...

    def __getitem__(self, key: SupportsIndex | str | slice) -> Any:
        if key.__class__ is str:
            try:
                key = self._index[key]
            except KeyError:
                raise KeyError(
                    f"no column named {key!r}; columns are {list(self._names)}"
                ) from None
        return tuple.__getitem__(self, key)  # type: ignore[index]

    def get(self, name: str, default: Any = None) -> Any:
        """The value of column ``name``, or ``default`` if there is no such column."""
        index = self._index.get(name)
        return default if index is None else tuple.__getitem__(self, index)

    def keys(self) -> tuple[str, ...]:
        """Column names, in order."""
        return self._names

    def values(self) -> tuple[Any, ...]:
        """Column values, in order."""
        return tuple(self)

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` pairs, in column order."""
        return zip(self._names, self, strict=True)

    def __repr__(self) -> str:
        if not self._names:
            return f"<Record {tuple.__repr__(self)}>"
        pairs = zip(self._names, self, strict=False)
        fields = " ".join(f"{name}={value!r}" for name, value in pairs)
        return f"<Record {fields}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._names, tuple(self)))


def record_class(names: Sequence[str]) -> type[Record]:
    """A :class:`Record` subclass for rows with these column names."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    return type("Record", (Record,), {"__slots__": (), "_names": tuple(names), "_index": index})


def _rebuild(names: tuple[str, ...], values: tuple[Any, ...]) -> Record:
    return record_class(names)(values)
