"""The layering rule of DESIGN.md, checked by parsing every module's imports.

``protocol/``, ``codecs/``, ``conninfo`` and ``errors`` are pure: they import only the
standard library, scramp and each other, never trio, socket or ssl. And imports point
down the layers: nothing pure imports the Trio layer.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trio_pg"
PURE = ("protocol", "codecs", "conninfo", "errors")
ALLOWED_THIRD_PARTY = {"scramp"}
FORBIDDEN = {"trio", "socket", "ssl", "asyncio", "selectors"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _pure_modules() -> list[Path]:
    files: list[Path] = []
    for layer in PURE:
        directory = PACKAGE / layer
        files.extend(directory.rglob("*.py") if directory.is_dir() else [PACKAGE / f"{layer}.py"])
    return sorted(files)


def test_pure_layers_exist() -> None:
    # Guard against the test silently checking nothing after a rename.
    assert len(_pure_modules()) >= 15


@pytest.mark.parametrize("path", _pure_modules(), ids=_module_name)
def test_pure_module_imports_only_stdlib_scramp_and_pure_layers(path: Path) -> None:
    bad = []
    for name in _imports(path):
        top = name.split(".")[0]
        if top in FORBIDDEN:
            bad.append(name)
        elif top == "trio_pg":
            layer = name.split(".")[1] if "." in name else ""
            if layer not in PURE:
                bad.append(name)
        elif top not in ALLOWED_THIRD_PARTY and top not in sys.stdlib_module_names:
            bad.append(name)
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}, breaking the layering rule"
