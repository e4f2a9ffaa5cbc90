"""The files libpq reads for connection settings: the password file and service files.

Theory of operation: both files are read when they are needed and never cached. The
password file is consulted per host at connect time (``libpq-pgpass.html``); a service
file section is looked up once, while :func:`~trio_pg.conninfo.make_params` resolves
settings (``libpq-pgservice.html``). Paths come from the caller's environment mapping,
so tests and embedders can point them anywhere.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Mapping
from typing import Final

from trio_pg.errors import InterfaceError

__all__ = [
    "DEFAULT_SOCKET_DIRS",
    "DEFAULT_SYSCONFDIR",
    "ServiceEntry",
    "default_passfile",
    "home_directory",
    "passfile_password",
    "read_service",
]

#: Where a local server's socket lives when no host is given, most common first. libpq
#: has one compiled-in directory (DEFAULT_PGSOCKET_DIR): ``/var/run/postgresql`` on
#: Debian and Ubuntu (``/run`` is the same directory there), ``/tmp`` upstream.
DEFAULT_SOCKET_DIRS: Final[tuple[str, ...]] = ("/run/postgresql", "/var/run/postgresql", "/tmp")

#: The system-wide service file's directory when ``PGSYSCONFDIR`` is unset: libpq's
#: compiled-in ``pg_config --sysconfdir``, which is this on Debian and Ubuntu.
DEFAULT_SYSCONFDIR: Final = "/etc/postgresql-common"

#: One ``keyword=value`` line of a service section: keyword, value, where it was found.
ServiceEntry = tuple[str, str, str]


#: What C's isspace() accepts: libpq trims and splits on these characters only.
_C_SPACE: Final = " \t\n\r\v\f"


def _read_lines(path: str) -> list[str]:
    """The lines of a text file, split on newlines only, as libpq's fgets() loop does.

    Bytes that are not UTF-8 are kept as surrogate escapes, so they can still match.
    """
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as file:
        return [line.removesuffix("\r") for line in file.read().split("\n")]


def home_directory(environ: Mapping[str, str]) -> str | None:
    """The user's home directory as libpq finds it: ``HOME``, else the password database."""
    home = environ.get("HOME")
    if home:
        return home
    try:
        import pwd  # Unix only

        return pwd.getpwuid(os.geteuid()).pw_dir
    except (ImportError, KeyError):
        return None


def _windows_appdata(environ: Mapping[str, str]) -> str | None:
    appdata = environ.get("APPDATA")
    return os.path.join(appdata, "postgresql") if appdata else None


def default_passfile(environ: Mapping[str, str]) -> str | None:
    """``~/.pgpass``; ``%APPDATA%\\postgresql\\pgpass.conf`` on Windows (libpq-pgpass.html)."""
    if os.name == "nt":
        folder = _windows_appdata(environ)
        return os.path.join(folder, "pgpass.conf") if folder else None
    home = home_directory(environ)
    return os.path.join(home, ".pgpass") if home else None


def _match_field(line: str, pos: int, wanted: str) -> int | None:
    """Match one ``:``-terminated field of a password-file line against ``wanted``.

    Returns the position after the field's ``:``, or None when the field does not
    match. A field that is exactly ``*`` matches anything; ``\\`` makes the next
    character literal (``libpq-pgpass.html``).
    """
    if line.startswith("*:", pos):
        return pos + 2
    got: list[str] = []
    n = len(line)
    while pos < n:
        char = line[pos]
        if char == "\\" and pos + 1 < n:
            got.append(line[pos + 1])
            pos += 2
            continue
        if char == ":":
            return pos + 1 if "".join(got) == wanted else None
        got.append(char)
        pos += 1
    return None  # fewer than five fields: the line never matches


def _unescape_password(line: str, pos: int) -> str:
    """The last field: up to an unescaped ``:`` or the end, backslashes removed."""
    out: list[str] = []
    n = len(line)
    while pos < n and line[pos] != ":":
        if line[pos] == "\\" and pos + 1 < n:
            pos += 1
        out.append(line[pos])
        pos += 1
    return "".join(out)


def _readable_passfile(path: str) -> bool:
    """Whether ``path`` is a password file libpq would use; warns when it would not."""
    try:
        info = os.stat(path)
    except OSError:
        return False  # a missing password file is normal
    if not stat.S_ISREG(info.st_mode):
        warnings.warn(f'password file "{path}" is not a plain file', UserWarning, stacklevel=4)
        return False
    # libpq-pgpass.html: on Unix the file must not be accessible to group or others, or
    # it is ignored. Windows has no such check.
    if os.name != "nt" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f'password file "{path}" is ignored because group or others can access it; '
            f"run: chmod 0600 {path}",
            UserWarning,
            stacklevel=4,
        )
        return False
    return True


def passfile_password(path: str, *, host: str, port: str, dbname: str, user: str) -> str | None:
    """The password of the first line of the password file at ``path`` that matches.

    Args:
        path: The password file.
        host: Host name to match (already mapped to ``localhost`` for a default socket
            directory).
        port: Port number, as text.
        dbname: Database name.
        user: User name.

    Returns:
        The password, or None when the file is missing, ignored, or has no matching line.
    """
    if not _readable_passfile(path):
        return None
    try:
        lines = _read_lines(path)
    except OSError:
        return None
    for line in lines:
        if not line or line.startswith("#"):
            continue
        pos: int | None = 0
        for wanted in (host, port, dbname, user):
            pos = _match_field(line, pos, wanted) if pos is not None else None
        if pos is not None:
            return _unescape_password(line, pos)
    return None


def _user_service_file(environ: Mapping[str, str]) -> str | None:
    explicit = environ.get("PGSERVICEFILE")
    if explicit:
        return explicit
    if os.name == "nt":
        folder = _windows_appdata(environ)
        return os.path.join(folder, ".pg_service.conf") if folder else None
    home = home_directory(environ)
    return os.path.join(home, ".pg_service.conf") if home else None


def _system_service_file(environ: Mapping[str, str]) -> str:
    return os.path.join(environ.get("PGSYSCONFDIR") or DEFAULT_SYSCONFDIR, "pg_service.conf")


def _service_section(path: str, service: str) -> list[ServiceEntry] | None:
    """The ``keyword=value`` lines of section ``[service]`` in ``path``, or None if absent.

    Follows libpq's reading of the file: surrounding whitespace of a line is ignored,
    as are empty lines and ``#`` comments; the first section with that name is used and
    ends at the next ``[``; a value is everything after the first ``=``. Lines outside
    the section are not checked. Unknown keywords are left to the caller.
    """
    try:
        lines = _read_lines(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InterfaceError(f'could not read service file "{path}": {exc.strerror}') from exc
    entries: list[ServiceEntry] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip(_C_SPACE)
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if entries is not None:
                break
            if line == f"[{service}]":
                entries = []
            continue
        if entries is None:
            continue
        where = f'service file "{path}", line {number}'
        keyword, sep, value = line.partition("=")
        if not sep:
            raise InterfaceError(f'syntax error in {where}: expected "keyword=value"')
        if keyword == "service":
            raise InterfaceError(
                f"nested service specifications are not supported ({where}): "
                "a service cannot name another service"
            )
        entries.append((keyword, value, where))
    return entries


def read_service(service: str, environ: Mapping[str, str]) -> list[ServiceEntry]:
    """The settings of ``service``, from the first service file that defines it.

    The per-user file (``PGSERVICEFILE``, else ``~/.pg_service.conf``) is searched
    first, then ``pg_service.conf`` in ``PGSYSCONFDIR`` (``libpq-pgservice.html``).

    Raises:
        InterfaceError: No service file defines ``service``, or its section is malformed.
    """
    user_file = _user_service_file(environ)
    system_file = _system_service_file(environ)
    for path in (user_file, system_file):
        if path is None:
            continue
        entries = _service_section(path, service)
        if entries is not None:
            return entries
    searched = " and ".join(f'"{p}"' for p in (user_file, system_file) if p is not None)
    raise InterfaceError(
        f'definition of service "{service}" not found (searched {searched}); '
        "set PGSERVICEFILE or PGSYSCONFDIR to the file that defines it"
    )
