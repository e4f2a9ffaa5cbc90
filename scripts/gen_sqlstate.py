"""Regenerate the SQLSTATE exception classes in ``trio_pg/errors/_sqlstate.py``.

Usage::

    python scripts/gen_sqlstate.py [ERRCODES_TXT] [--output PATH]

``ERRCODES_TXT`` is PostgreSQL's own list of error codes (Debian ships it in the
``postgresql-NN`` package as ``/usr/share/postgresql/NN/errcodes.txt``; in a source tree
it is ``src/backend/utils/errcodes.txt``). Only the lines between ``# BEGIN GENERATED``
and ``# END GENERATED`` in the output file are rewritten; the header around them,
with its imports, is kept as written.

Rules, applied in ``errcodes.txt`` order; they decide public names, so change them only
on purpose:

1. One class per SQLSTATE of type ``E``; success (``S``) and warning (``W``) codes, which
   never arrive in an ErrorResponse, get none.
2. A SQLSTATE listed on several lines takes the first condition name given (the last
   field); one with no condition name at all uses its macro name without ``ERRCODE_``.
3. The class name is the condition name in CamelCase plus ``Error``, unless it already
   ends in ``Error``: ``unique_violation`` -> ``UniqueViolationError``,
   ``syntax_error`` -> ``SyntaxError``.
4. A name that is a Python builtin gets the prefix ``Postgres``
   (``PostgresSyntaxError``), so importing it never shadows the builtin.
5. A name already taken by an earlier SQLSTATE gets, in front, the CamelCase condition
   name of its class's generic code without a trailing ``_exception`` or ``_error``:
   38002 ``modifying_sql_data_not_permitted`` (already 2F002's) becomes
   ``ExternalRoutineModifyingSqlDataNotPermittedError``. If that is taken as well the
   script stops and says so.
6. A code ending in ``000`` is its class's generic code and subclasses
   ``PostgresError``; every other code subclasses its class's generic code, or
   ``PostgresError`` when the class has none.
"""

from __future__ import annotations

import argparse
import builtins
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_ERRCODES: Final = Path("/usr/share/postgresql/15/errcodes.txt")
DEFAULT_OUTPUT: Final = Path(__file__).resolve().parents[1] / "trio_pg" / "errors" / "_sqlstate.py"
BEGIN_MARKER: Final = "# BEGIN GENERATED"
END_MARKER: Final = "# END GENERATED"

# errcodes.txt's own header describes the format: "sqlstate E/W/S errcode_macro_name
# spec_name", the last field optional, plus comments, blank lines and "Section:" lines.
_LINE: Final = re.compile(
    r"(?P<sqlstate>[0-9A-Z]{5})\s+(?P<kind>[EWS])\s+(?P<macro>ERRCODE_[A-Z0-9_]+)"
    r"(?:\s+(?P<condition>[a-z0-9_]+))?"
)
_BASE: Final = "PostgresError"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One error SQLSTATE from errcodes.txt."""

    sqlstate: str
    condition: str


@dataclass(frozen=True, slots=True)
class ExceptionClass:
    """One class to generate."""

    name: str
    base: str
    sqlstate: str
    condition: str


def parse_errcodes(text: str) -> list[ErrorCode]:
    """Return the error (type ``E``) codes of an errcodes.txt, in file order (rules 1, 2).

    Raises:
        ValueError: A line is not in the errcodes.txt format.
    """
    conditions: dict[str, str] = {}
    from_macro: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "Section:")):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            raise ValueError(f"errcodes.txt line {number} is not in the expected format: {line!r}")
        if match["kind"] != "E":
            continue
        sqlstate, condition = match["sqlstate"], match["condition"]
        if condition is not None and (sqlstate not in conditions or sqlstate in from_macro):
            conditions[sqlstate] = condition
            from_macro.discard(sqlstate)
        elif sqlstate not in conditions:
            conditions[sqlstate] = match["macro"].removeprefix("ERRCODE_").lower()
            from_macro.add(sqlstate)
    return [ErrorCode(sqlstate, condition) for sqlstate, condition in conditions.items()]


def _camel(condition: str) -> str:
    return "".join(part.capitalize() for part in condition.split("_"))


def _with_suffix(camel: str) -> str:
    return camel if camel.endswith("Error") else camel + "Error"


def build_classes(codes: list[ErrorCode]) -> list[ExceptionClass]:
    """Name each code's class and pick its base (rules 3 to 6).

    The result lists every class after its base: classes in order of first appearance,
    each generic code first.

    Raises:
        ValueError: Two codes cannot be given distinct valid names by the rules.
    """
    generic = {code.sqlstate[:2]: code for code in codes if code.sqlstate.endswith("000")}
    reserved = set(dir(builtins))
    names: dict[str, str] = {}
    for code in codes:
        name = _with_suffix(_camel(code.condition))
        if name in reserved:
            name = "Postgres" + name
        owner = generic.get(code.sqlstate[:2])
        taken = set(names.values())
        if name in taken and owner is not None and owner is not code:
            prefix = re.sub(r"_(exception|error)$", "", owner.condition)
            name = _with_suffix(_camel(prefix) + _camel(code.condition))
        if name in taken:
            raise ValueError(
                f"no unique class name for SQLSTATE {code.sqlstate} ({code.condition}): "
                f"{name} is taken; add a rule to scripts/gen_sqlstate.py"
            )
        if not name.isidentifier():
            raise ValueError(f"condition {code.condition!r} does not make a Python name")
        names[code.sqlstate] = name

    classes = []
    first_seen: dict[str, int] = {}
    for index, code in enumerate(codes):
        owner = generic.get(code.sqlstate[:2])
        base = _BASE if owner is None or owner is code else names[owner.sqlstate]
        classes.append(ExceptionClass(names[code.sqlstate], base, code.sqlstate, code.condition))
        first_seen.setdefault(code.sqlstate[:2], index)
    # errcodes.txt lists each generic code first in its class, but a base must be defined
    # before its subclasses whatever the file's order, so sort rather than trust it.
    return sorted(classes, key=lambda cls: (first_seen[cls.sqlstate[:2]], cls.base != _BASE))


def render(classes: list[ExceptionClass]) -> str:
    """Return the text of the generated region, without the marker lines."""
    out = ["__all__ = ["]
    out += [f'    "{name}",' for name in sorted(cls.name for cls in classes)]
    out.append("]")
    for cls in classes:
        out += [
            "",
            "",
            f"class {cls.name}({cls.base}):",
            f'    """SQLSTATE {cls.sqlstate}, ``{cls.condition}``."""',
            "",
            f'    sqlstate = "{cls.sqlstate}"',
        ]
    out += ["", "", "_BY_SQLSTATE: Final[Mapping[str, type[PostgresError]]] = {"]
    out += [f'    "{cls.sqlstate}": {cls.name},' for cls in classes]
    out.append("}")
    return "\n".join(out) + "\n"


def replace_region(source: str, region: str) -> str:
    """Return ``source`` with the text between its marker lines replaced by ``region``.

    Raises:
        ValueError: The markers are missing, repeated or out of order.
    """
    lines = source.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.startswith(BEGIN_MARKER)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END_MARKER)]
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        raise ValueError(
            f"the output needs exactly one {BEGIN_MARKER!r} line followed by one "
            f"{END_MARKER!r} line; restore them from version control"
        )
    return "".join([*lines[: begins[0] + 1], region, *lines[ends[0] :]])


def main(argv: list[str] | None = None) -> int:
    """Run the generator; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "errcodes",
        nargs="?",
        type=Path,
        default=DEFAULT_ERRCODES,
        help=f"PostgreSQL's errcodes.txt (default: {DEFAULT_ERRCODES})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="the file whose generated region is rewritten (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    errcodes: Path = args.errcodes
    output: Path = args.output
    if not errcodes.is_file():
        parser.error(
            f"{errcodes} not found: install the PostgreSQL server package "
            "(Debian: postgresql-15) or pass the path to an errcodes.txt"
        )
    try:
        classes = build_classes(parse_errcodes(errcodes.read_text(encoding="utf-8")))
        old = output.read_text(encoding="utf-8")
        new = replace_region(old, render(classes))
    except (OSError, ValueError) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    if new == old:
        print(f"{output}: up to date ({len(classes)} classes)")
    else:
        output.write_text(new, encoding="utf-8")
        print(f"{output}: regenerated ({len(classes)} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
