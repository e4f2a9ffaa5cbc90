"""Which connection keywords exist, where their defaults come from, and the checks that
apply to a keyword before its value is looked at.

The keyword list is libpq 18's (``libpq-connect.html#LIBPQ-PARAMKEYWORDS``) minus what
trio_pg cannot honour; those are rejected by name rather than silently ignored, because
most of them (``requirepeer``, ``sslcrldir``, ``sslcertmode``) are security settings.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Final

from trio_pg.errors import InterfaceError

__all__ = [
    "ENVIRONMENT",
    "KEYWORDS",
    "SECRET_KEYWORDS",
    "Setting",
    "canonical_settings",
    "check_unsupported_environment",
]

#: A value and a description of where it came from, for error messages.
Setting = tuple[str, str]

#: Keyword -> environment variable read when no other source sets it
#: (``libpq-envars.html``). ``None``: the keyword has no environment variable.
ENVIRONMENT: Final[Mapping[str, str | None]] = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "fallback_application_name": None,
    "keepalives": None,
    "keepalives_idle": None,
    "keepalives_interval": None,
    "keepalives_count": None,
    "tcp_user_timeout": None,
    "replication": None,
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslpassword": None,
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslsni": "PGSSLSNI",
    "require_auth": "PGREQUIREAUTH",
    "min_protocol_version": "PGMINPROTOCOLVERSION",
    "max_protocol_version": "PGMAXPROTOCOLVERSION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}

#: Every keyword trio_pg accepts in a connection string, a service file or ``params``.
#: ``requiressl`` (deprecated, libpq maps it to ``sslmode``) and the ``database`` alias
#: are rewritten by :func:`canonical_settings` and never reach the resolver.
KEYWORDS: Final = frozenset(ENVIRONMENT) | {"requiressl", "database"}

#: Keywords whose values must never appear in an error message.
SECRET_KEYWORDS: Final = frozenset({"password", "sslpassword"})

#: Keywords that take 0/1 and for which a Python ``bool`` is accepted in ``params``.
_BOOLEAN_KEYWORDS: Final = frozenset({"keepalives", "sslsni", "sslcompression", "requiressl"})

#: trio_pg's own options (API.md, "Connecting"): Python objects that a string cannot hold.
_TRIO_PG_ONLY: Final = frozenset(
    {
        "ssl_context",
        "server_settings",
        "statement_cache_size",
        "codecs",
        "max_message_size",
        "cleanup_grace",
        "max_scram_iterations",
    }
)

#: libpq 18 keywords trio_pg does not implement -> the values that ask for nothing
#: trio_pg does not already do (libpq's defaults), which are accepted and ignored.
_UNSUPPORTED: Final[Mapping[str, frozenset[str]]] = {
    "sslcertmode": frozenset({"", "allow"}),
    "sslcrldir": frozenset({""}),
    "sslkeylogfile": frozenset({""}),
    "requirepeer": frozenset({""}),
    "gssdelegation": frozenset({"", "0"}),
    "scram_client_key": frozenset({""}),
    "scram_server_key": frozenset({""}),
    "oauth_issuer": frozenset({""}),
    "oauth_client_id": frozenset({""}),
    "oauth_client_secret": frozenset({""}),
    "oauth_scope": frozenset({""}),
}

#: Environment variables of the unsupported keywords (``libpq-envars.html``).
_UNSUPPORTED_ENVIRONMENT: Final[Mapping[str, str]] = {
    "sslcertmode": "PGSSLCERTMODE",
    "sslcrldir": "PGSSLCRLDIR",
    "requirepeer": "PGREQUIREPEER",
    "gssdelegation": "PGGSSDELEGATION",
}


def _unknown(keyword: str, origin: str) -> InterfaceError:
    message = f'unknown connection parameter "{keyword}" in {origin}'
    close = difflib.get_close_matches(keyword.lower(), sorted(KEYWORDS), n=1)
    if close:
        message += f'; did you mean "{close[0]}"?'
    else:
        message += " (see libpq-connect.html#LIBPQ-PARAMKEYWORDS for the valid names)"
    return InterfaceError(message)


def _unsupported(keyword: str, origin: str) -> InterfaceError:
    return InterfaceError(
        f'connection parameter "{keyword}" (in {origin}) is a libpq feature trio_pg does '
        "not implement; remove it"
    )


def canonical_settings(raw: Mapping[str, object], origin: str) -> dict[str, Setting]:
    """Check the keywords of one source, convert its values and apply the aliases.

    Values: ``None`` means "not given" and is dropped; ``str`` is taken as is;
    ``bool`` is accepted for the 0/1 keywords; ``int`` and ``float`` become their
    decimal text; ``os.PathLike`` (for the file keywords) becomes its path.

    Aliases: ``database`` becomes ``dbname``; ``requiressl`` becomes ``sslmode`` (``1``
    -> ``require``, ``0`` -> ``prefer``, libpq's mapping) unless the same source also
    sets ``sslmode``, which then wins, as PGSSLMODE wins over PGREQUIRESSL in libpq.

    Args:
        raw: Keyword -> value, as written in the source.
        origin: Where they came from, for messages ("the connection string").

    Returns:
        Keyword -> (value, origin), with canonical keywords only.

    Raises:
        InterfaceError: A keyword is unknown, unsupported, or only valid as a Python
            keyword argument, or a value has an unusable type.
    """
    settings: dict[str, Setting] = {}
    for keyword, value in raw.items():
        if keyword in _TRIO_PG_ONLY:
            raise InterfaceError(
                f'"{keyword}" (in {origin}) is a trio_pg option, only accepted as a Python '
                "keyword argument of open_connection(), connect() or open_pool()"
            )
        if keyword not in KEYWORDS and keyword not in _UNSUPPORTED:
            raise _unknown(keyword, origin)
        text = _to_text(keyword, value)
        if text is None:
            continue
        if keyword in _UNSUPPORTED:
            if text in _UNSUPPORTED[keyword]:
                continue
            raise _unsupported(keyword, origin)
        settings["dbname" if keyword == "database" else keyword] = (text, origin)
    requiressl = settings.pop("requiressl", None)
    if requiressl is not None:
        text, _ = requiressl
        if text not in ("0", "1"):
            raise InterfaceError(
                f'invalid requiressl value "{text}" (in {origin}): expected 0 or 1; '
                "requiressl is deprecated, use sslmode=require or sslmode=prefer"
            )
        settings.setdefault("sslmode", ("require" if text == "1" else "prefer", origin))
    return settings


def _to_text(keyword: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        if keyword not in _BOOLEAN_KEYWORDS:
            raise InterfaceError(
                f"connection parameter {keyword}={value!r}: a bool is only accepted for "
                f"{', '.join(sorted(_BOOLEAN_KEYWORDS))}"
            )
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise InterfaceError(
        f"connection parameter {keyword} must be a str, int, float, bool or str path, "
        f"not {type(value).__name__}"
    )


def check_unsupported_environment(environ: Mapping[str, str]) -> None:
    """Reject environment variables that ask for a libpq feature trio_pg lacks.

    Ignoring ``PGREQUIREPEER`` or ``PGSSLCRLDIR`` would quietly weaken the connection,
    so they are errors, like the keywords themselves.

    Raises:
        InterfaceError: Such a variable is set to a value trio_pg cannot honour.
    """
    for keyword, variable in _UNSUPPORTED_ENVIRONMENT.items():
        value = environ.get(variable)
        if value is not None and value not in _UNSUPPORTED[keyword]:
            raise _unsupported(keyword, f"the environment variable {variable}")
