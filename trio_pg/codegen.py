"""Compiling small per-statement functions from generated source lines.

Row decoders (:mod:`trio_pg.rowdecoder`) and Bind encoders (:mod:`trio_pg.bindencoder`)
are written as straight-line code for exactly one statement's columns or parameters,
the way ``collections.namedtuple`` once wrote its classes. This is the one place that
turns such source into a function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["compile_function"]


def compile_function(
    name: str, argument: str, body: list[str], env: Mapping[str, Any], filename: str
) -> Callable[..., Any]:
    """Compile ``def name(argument, *, <env names>): <body>`` and return it.

    Everything the body uses from ``env`` is bound as a keyword-only default argument:
    local lookups are the fastest a Python function has. ``body`` lines carry their
    own indentation (four spaces). ``filename`` names the function in tracebacks.
    """
    defaults = ", ".join(f"{key}={key}" for key in env)
    source = "\n".join([f"def {name}({argument}, *, {defaults}):", *body])
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), dict(env), namespace)
    function: Callable[..., Any] = namespace[name]
    return function
