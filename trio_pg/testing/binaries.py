"""Finding the PostgreSQL server programs (``initdb`` and ``postgres``) on this machine.

A usable *bindir* is a directory holding both ``initdb`` and ``postgres`` that report the
same version: ``initdb`` runs the ``postgres`` next to its own (symlink-resolved) location,
so a lone ``initdb`` symlinked into ``/usr/local/bin`` is followed to its real directory
before anything is checked.

Candidates are tried in a fixed order, the first usable one wins:

1. ``TRIO_PG_BINDIR`` (when set it must be usable: a wrong explicit choice is an error,
   never silently replaced by another installation);
2. ``pg_config --bindir`` for the first ``pg_config`` on ``PATH``;
3. Debian/Ubuntu packages, ``/usr/lib/postgresql/<major>/bin``, newest major first;
4. PGDG RPM packages, ``/usr/pgsql-<major>/bin``, newest major first;
5. every ``PATH`` directory that holds an ``initdb``.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["PostgresBinaries", "PostgresNotFoundError", "find_binaries", "inspect_bindir"]

#: Environment variable naming the directory to use, ahead of any discovery.
BINDIR_ENV: Final = "TRIO_PG_BINDIR"

#: Packaged install layouts, each a glob whose ``*`` is the major version.
SYSTEM_BINDIR_GLOBS: Final[tuple[str, ...]] = (
    "/usr/lib/postgresql/*/bin",  # Debian and Ubuntu (postgresql-common)
    "/usr/pgsql-*/bin",  # PGDG RPMs (RHEL, Fedora)
)

# `postgres --version` prints e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
# "postgres (PostgreSQL) 18.4" or "postgres (PostgreSQL) 19devel".
_VERSION_RE: Final = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_PROBE_TIMEOUT: Final = 30.0


class PostgresNotFoundError(RuntimeError):
    """No usable PostgreSQL server binaries were found; the message lists what was tried."""


@dataclass(frozen=True, slots=True)
class PostgresBinaries:
    """A directory with matching ``initdb`` and ``postgres`` programs.

    Attributes:
        bindir: The directory, symlinks resolved.
        version: ``(major, minor)``, e.g. ``(15, 18)``; a development or beta build
            reports minor ``0``.
    """

    bindir: Path
    version: tuple[int, int]

    @property
    def initdb(self) -> Path:
        """Path of the ``initdb`` program."""
        return self.bindir / "initdb"

    @property
    def postgres(self) -> Path:
        """Path of the ``postgres`` server program."""
        return self.bindir / "postgres"


def inspect_bindir(bindir: str | os.PathLike[str]) -> PostgresBinaries:
    """Check that ``bindir`` holds ``initdb`` and ``postgres`` of one version.

    Args:
        bindir: The directory to check.

    Returns:
        The binaries, with the directory's symlinks resolved.

    Raises:
        PostgresNotFoundError: A program is missing, does not run, or the two report
            different versions; the message says which.
    """
    path = Path(bindir).resolve()
    versions: list[tuple[int, int]] = []
    for program in ("initdb", "postgres"):
        exe = path / program
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            raise PostgresNotFoundError(f"{path}: no executable {program!r}")
        versions.append(_program_version(exe))
    if versions[0] != versions[1]:
        raise PostgresNotFoundError(
            f"{path}: initdb is {_dotted(versions[0])} but postgres is {_dotted(versions[1])}"
        )
    return PostgresBinaries(bindir=path, version=versions[1])


def find_binaries(environ: Mapping[str, str] | None = None) -> PostgresBinaries:
    """Find PostgreSQL server binaries, in the order given in this module's docstring.

    Args:
        environ: The environment to read ``TRIO_PG_BINDIR`` and ``PATH`` from;
            ``os.environ`` when omitted.

    Returns:
        The first usable installation.

    Raises:
        PostgresNotFoundError: ``TRIO_PG_BINDIR`` is set but unusable, or no candidate
            is usable. The message lists every candidate and why it was rejected.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(BINDIR_ENV)
    if explicit:
        try:
            return inspect_bindir(explicit)
        except PostgresNotFoundError as exc:
            raise PostgresNotFoundError(
                f"{BINDIR_ENV}={explicit} is not usable: {exc}. Point it at a directory "
                "containing initdb and postgres, or unset it to search the usual places."
            ) from None

    tried: list[str] = [f"{BINDIR_ENV}: not set"]
    for source, candidate in _candidates(env, tried):
        try:
            return inspect_bindir(candidate)
        except PostgresNotFoundError as exc:
            tried.append(f"{source}: {exc}")
    lines = "\n".join(f"  - {line}" for line in tried)
    raise PostgresNotFoundError(
        "No usable PostgreSQL server binaries (initdb and postgres) found. Tried:\n"
        f"{lines}\n"
        "Install PostgreSQL (for example `apt-get install postgresql`) or set "
        f"{BINDIR_ENV} to the directory containing initdb and postgres."
    )


def _candidates(env: Mapping[str, str], tried: list[str]) -> Iterator[tuple[str, Path]]:
    """Yield ``(source, directory)`` pairs in discovery order.

    Sources that yield nothing append their reason to ``tried`` themselves.
    """
    path_dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    pg_config = shutil.which("pg_config", path=os.pathsep.join(path_dirs))
    if pg_config is None:
        tried.append("pg_config --bindir: no pg_config on PATH")
    else:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=_PROBE_TIMEOUT,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{pg_config} --bindir: failed ({exc})")
        else:
            yield f"{pg_config} --bindir", Path(out)

    for pattern in SYSTEM_BINDIR_GLOBS:
        found = sorted(glob.glob(pattern), key=lambda p: _glob_major(pattern, p), reverse=True)
        if not found:
            tried.append(f"{pattern}: nothing installed")
        for directory in found:
            yield pattern, Path(directory)

    seen_initdb = False
    for directory in path_dirs:
        initdb = Path(directory) / "initdb"
        if initdb.is_file():
            seen_initdb = True
            # initdb looks for postgres next to its real location, so must we.
            yield f"PATH entry {directory}", initdb.resolve().parent
    if not seen_initdb:
        tried.append("PATH: no directory with initdb")


def _glob_major(pattern: str, path: str) -> int:
    """The major version that the ``*`` of ``pattern`` stands for in ``path``, or -1."""
    prefix, suffix = pattern.split("*")
    star = path[len(prefix) : len(path) - len(suffix)]
    return int(star) if star.isdigit() else -1


def _program_version(exe: Path) -> tuple[int, int]:
    try:
        out = subprocess.run(
            [str(exe), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=_PROBE_TIMEOUT,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresNotFoundError(f"{exe} --version failed ({exc})") from None
    match = _VERSION_RE.search(out)
    if match is None:
        raise PostgresNotFoundError(f"{exe} --version printed no version: {out.strip()!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))
