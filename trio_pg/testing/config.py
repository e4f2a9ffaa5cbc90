"""What a throwaway cluster is configured with: users, auth rules, TLS files, settings.

Everything here is pure text generation, so the rules can be checked without a server:
``pg_hba.conf`` lines (``auth-pg-hba-conf.html``), ``postgresql.conf`` lines
(``config-setting.html#CONFIG-SETTING-CONFIGURATION-FILE``) and the bootstrap SQL that
creates the users, run by ``postgres --single`` before the first start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = ["AuthMethod", "ConnectionType", "TLSFiles", "User"]

#: Authentication methods a test user can be given (``auth-methods.html``).
AuthMethod = Literal["trust", "password", "md5", "scram-sha-256", "cert", "reject"]
#: pg_hba.conf connection types (``auth-pg-hba-conf.html``).
ConnectionType = Literal["host", "hostssl", "hostnossl", "local"]

#: The only TCP address the cluster listens on.
HOST: Final = "127.0.0.1"

#: Settings the cluster manages itself; callers cannot override them.
MANAGED_SETTINGS: Final = frozenset(
    {"port", "listen_addresses", "unix_socket_directories", "ssl_cert_file", "ssl_key_file"}
)

#: Settings that make a disposable cluster fast: durability is worthless here.
FAST_SETTINGS: Final[Mapping[str, str]] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "lc_messages": "C",
}

_SETTING_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_FORBIDDEN_CHARS: Final = frozenset("\0\r\n")


@dataclass(frozen=True, slots=True)
class User:
    """A login role and the one pg_hba.conf rule that authenticates it.

    The password is stored the way ``method`` needs it: as an MD5 hash for ``md5`` (MD5
    authentication cannot check a SCRAM verifier), as a SCRAM-SHA-256 verifier otherwise.

    Attributes:
        name: Role name.
        password: Password, or ``None`` for a role without one (fine for ``trust``,
            ``cert`` and ``reject``).
        method: Authentication method of the rule.
        connection: Connection type of the rule; ``host*`` rules match ``127.0.0.1``.
    """

    name: str
    password: str | None = None
    method: AuthMethod = "scram-sha-256"
    connection: ConnectionType = "host"

    def __post_init__(self) -> None:
        if self.method not in get_args(AuthMethod):
            raise ValueError(
                f"unknown auth method {self.method!r} for user {self.name!r}; "
                f"use one of {', '.join(get_args(AuthMethod))}"
            )
        if self.connection not in get_args(ConnectionType):
            raise ValueError(
                f"unknown connection type {self.connection!r} for user {self.name!r}; "
                f"use one of {', '.join(get_args(ConnectionType))}"
            )
        if not self.name:
            raise ValueError("a user needs a non-empty name")
        # pg_hba.conf has no escape for a double quote inside a quoted name.
        _check_text("user name", self.name, _FORBIDDEN_CHARS | {'"'})
        if self.password is not None:
            _check_text(f"password of user {self.name!r}", self.password, _FORBIDDEN_CHARS)
        if self.method in ("password", "md5", "scram-sha-256") and not self.password:
            raise ValueError(f"user {self.name!r} uses {self.method} auth, so it needs a password")
        if self.method == "cert" and self.connection != "hostssl":
            # auth-cert.html: "only available for SSL connections".
            raise ValueError(f"user {self.name!r}: cert auth needs connection='hostssl'")

    @property
    def password_encryption(self) -> str:
        """The ``password_encryption`` value the password is stored with."""
        return "md5" if self.method == "md5" else "scram-sha-256"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM files that turn on TLS in the cluster.

    They are copied into the data directory (mode 0600, owned by the server's OS user),
    so the originals may live anywhere.

    Attributes:
        cert_file: Server certificate (chain).
        key_file: The certificate's unencrypted private key.
        ca_file: CA certificates that client certificates are verified against
            (``ssl_ca_file``); required by ``cert`` auth.
    """

    cert_file: str | os.PathLike[str]
    key_file: str | os.PathLike[str]
    ca_file: str | os.PathLike[str] | None = None


#: Names the TLS files get inside the data directory (relative paths resolve there).
TLS_FILE_NAMES: Final = {"cert_file": "server.crt", "key_file": "server.key", "ca_file": "root.crt"}


def check_config(users: Iterable[User], tls: TLSFiles | None, settings: Mapping[str, str]) -> None:
    """Reject a configuration the server would refuse or silently never use.

    Raises:
        ValueError: What is wrong and how to fix it.
    """
    if tls is not None:
        for field in TLS_FILE_NAMES:
            path = getattr(tls, field)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"TLSFiles.{field} {os.fspath(path)!r} is not a readable file")
    names: set[str] = set()
    for user in users:
        if user.name in names:
            raise ValueError(f"user {user.name!r} is given twice; use one User per role")
        names.add(user.name)
        if tls is None and (user.connection == "hostssl" or user.method == "cert"):
            raise ValueError(f"user {user.name!r} needs TLS; pass tls=TLSFiles(...)")
        if user.method == "cert" and (tls is None or tls.ca_file is None):
            raise ValueError(
                f"user {user.name!r} uses cert auth, which needs TLSFiles(ca_file=...) "
                "to verify client certificates"
            )
    for name, value in settings.items():
        if not _SETTING_NAME_RE.match(name):
            raise ValueError(f"invalid setting name {name!r}")
        if name in MANAGED_SETTINGS or (tls is not None and name in ("ssl", "ssl_ca_file")):
            raise ValueError(f"setting {name!r} is managed by trio_pg.testing; leave it out")
        _check_text(f"value of setting {name!r}", value, _FORBIDDEN_CHARS)


def render_hba(users: Iterable[User], superuser: str) -> str:
    """Return pg_hba.conf: one rule per user in order, then trust for the superuser.

    The first matching line decides (``auth-pg-hba-conf.html``), so a caller's rule for
    a user always wins over the defaults.
    """
    lines = ["# Written by trio_pg.testing: the caller's users first (first match wins)."]
    lines += [_hba_line(u.connection, u.name, u.method) for u in users]
    lines.append("# Defaults: the superuser is trusted over the socket and TCP.")
    lines.append(_hba_line("local", superuser, "trust"))
    lines.append(_hba_line("host", superuser, "trust"))
    return "\n".join(lines) + "\n"


def render_settings(settings: Mapping[str, str]) -> str:
    """Return postgresql.conf lines setting each name to its (quoted) value."""
    lines = ["", "# Written by trio_pg.testing (later lines win)."]
    lines += [f"{name} = {_conf_quote(value)}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def bootstrap_sql(users: Iterable[User], superuser: str) -> str:
    """Return SQL that creates the users, one statement per line.

    ``postgres --single`` ends a statement at a newline, which is why names and
    passwords may not contain one (``app-postgres.html#APP-POSTGRES-SINGLE-USER``).
    """
    lines: list[str] = []
    for user in users:
        verb = "ALTER" if user.name == superuser else "CREATE"
        statement = f"{verb} ROLE {_ident(user.name)} LOGIN"
        if user.password is not None:
            lines.append(f"SET password_encryption = {_literal(user.password_encryption)};")
            statement += f" PASSWORD {_literal(user.password)}"
        lines.append(statement + ";")
    return "".join(line + "\n" for line in lines)


def _hba_line(connection: ConnectionType, user: str, method: AuthMethod) -> str:
    address = "" if connection == "local" else f" {HOST}/32"
    # A quoted name is never a keyword (all, +group, @file).
    return f'{connection} all "{user}"{address} {method}'


def _check_text(what: str, value: str, forbidden: frozenset[str]) -> None:
    bad = forbidden.intersection(value)
    if bad:
        raise ValueError(f"{what} {value!r} may not contain {sorted(bad)!r}; choose another")


def _conf_quote(value: str) -> str:
    # Configuration-file strings take SQL-style doubled quotes and backslash escapes.
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _literal(value: str) -> str:
    # standard_conforming_strings is on since PostgreSQL 9.1: only quotes need doubling.
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return f'"{name}"'  # User rejects names containing a double quote
