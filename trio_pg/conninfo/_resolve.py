"""Resolution: from connection string, keyword arguments, service file and environment to
one validated :class:`ConnectParams`.

Theory of operation: every source is first turned into ``keyword -> (value, origin)``
with canonical keywords (``_keywords.canonical_settings``). Sources are layered from
strongest to weakest, each filling only what is still unset: keyword arguments, the
connection string, the service file section, then ``PG*`` environment variables
(``libpq-connect.html#LIBPQ-PARAMKEYWORDS``, ``libpq-pgservice.html``,
``libpq-envars.html``). Only then are the values parsed, so an error names the value's
origin, and defaults fill what no source gave. Nothing is read from the environment
except through the ``environ`` mapping, apart from the OS user name and the default
socket directories.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Final, TypeVar

from trio_pg.conninfo._files import (
    DEFAULT_SOCKET_DIRS,
    default_passfile,
    read_service,
)
from trio_pg.conninfo._keywords import (
    ENVIRONMENT,
    SECRET_KEYWORDS,
    Setting,
    canonical_settings,
    check_unsupported_environment,
)
from trio_pg.conninfo._parse import parse_dsn
from trio_pg.conninfo._types import (
    CHANNEL_BINDINGS,
    GSSENC_MODES,
    LOAD_BALANCE_HOSTS,
    REQUIRE_AUTH_METHODS,
    SSL_MODES,
    SSL_NEGOTIATIONS,
    TARGET_SESSION_ATTRS,
    ConnectParams,
    GssEncMode,
    HostSpec,
    RequireAuth,
    SslMode,
    SslNegotiation,
)
from trio_pg.errors import InterfaceError

__all__ = ["make_params"]

_T = TypeVar("_T", bound=str)

DEFAULT_PORT: Final = 5432

#: ``min_protocol_version`` / ``max_protocol_version`` values (libpq 18).
_PROTOCOL_VERSIONS: Final[Mapping[str, tuple[int, int]]] = {
    "3.0": (3, 0),
    "3.2": (3, 2),
    "latest": (3, 2),
}

#: ``ssl_min_protocol_version`` / ``ssl_max_protocol_version`` values, oldest first;
#: libpq compares them case-insensitively.
_TLS_VERSIONS: Final = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

#: Modes that never fall back to plaintext (libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS).
_TLS_ONLY_MODES: Final[tuple[SslMode, ...]] = ("require", "verify-ca", "verify-full")

_INTEGER: Final = re.compile(r"[ \t\n\r\v\f]*[+-]?[0-9]+[ \t\n\r\v\f]*")
_DECIMAL: Final = re.compile(r"[ \t\n\r\v\f]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[ \t\n\r\v\f]*")


def make_params(
    dsn: str | None = None,
    params: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ConnectParams:
    """Resolve connection settings the way libpq does.

    Precedence, strongest first: ``params``, the ``dsn``, the section of the service
    file named by ``service`` (from ``params``, ``dsn`` or ``PGSERVICE``), the ``PG*``
    environment variables, then defaults: the host is the first existing directory of
    ``/run/postgresql``, ``/var/run/postgresql``, ``/tmp`` (a Unix socket), else
    ``localhost``; the port 5432; the user the OS user; the database the user name.

    Args:
        dsn: A libpq URI or keyword/value string (see :func:`parse_dsn`).
        params: libpq keyword names (``database`` is accepted for ``dbname``) to values
            (str, int, float, bool or a path); ``None`` means "not given". trio_pg's
            own options (``ssl_context``, ...) must be removed before calling.
        environ: The environment to read ``PG*`` variables and ``HOME`` from; defaults
            to ``os.environ``.

    Returns:
        The validated parameters.

    Raises:
        InterfaceError: Bad syntax, an unknown or unsupported keyword, an invalid or
            contradictory value, or a service that no service file defines. The message
            names the setting and where it came from (values of ``password`` and
            ``sslpassword`` are never shown).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    settings: dict[str, Setting] = {}
    if dsn is not None:
        settings.update(canonical_settings(parse_dsn(dsn), "the connection string"))
    if params is not None:
        settings.update(canonical_settings(params, "the keyword arguments"))
    _add_service(settings, env)
    _add_environment(settings, env)
    return _Values(settings).build(env)


def _add_service(settings: dict[str, Setting], env: Mapping[str, str]) -> None:
    """Fill unset keywords from the service section, if a service is named."""
    service = settings["service"][0] if "service" in settings else env.get("PGSERVICE")
    if not service:
        return
    for keyword, value, where in read_service(service, env):
        for canonical, setting in canonical_settings({keyword: value}, where).items():
            # The first line for a keyword wins within a section, as in libpq.
            settings.setdefault(canonical, setting)


def _add_environment(settings: dict[str, Setting], env: Mapping[str, str]) -> None:
    """Fill unset keywords from ``PG*`` variables (libpq-envars.html)."""
    check_unsupported_environment(env)
    for keyword, variable in ENVIRONMENT.items():
        if variable is not None and keyword not in settings and variable in env:
            settings[keyword] = (env[variable], f"the environment variable {variable}")
    # Deprecated PGREQUIRESSL: a value starting with "1" means sslmode=require, and
    # PGSSLMODE wins over it.
    if "sslmode" not in settings and env.get("PGREQUIRESSL", "").startswith("1"):
        settings["sslmode"] = ("require", "the environment variable PGREQUIRESSL")


def _default_host() -> str:
    for directory in DEFAULT_SOCKET_DIRS:
        if os.path.isdir(directory):
            return directory
    return "localhost"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError) as exc:
        raise InterfaceError(
            "could not determine the operating system user name to log in as; "
            "pass user=... or set PGUSER"
        ) from exc


class _Values:
    """Typed access to the layered settings, with errors that name their origin."""

    def __init__(self, settings: Mapping[str, Setting]) -> None:
        self._settings = settings

    def text(self, keyword: str) -> str | None:
        setting = self._settings.get(keyword)
        return None if setting is None else setting[0]

    def optional(self, keyword: str) -> str | None:
        """The value, with an empty string meaning "not set", as libpq treats it."""
        return self.text(keyword) or None

    def invalid(self, keyword: str, problem: str) -> InterfaceError:
        value, origin = self._settings[keyword]
        shown = "" if keyword in SECRET_KEYWORDS else f' "{value}"'
        return InterfaceError(f"invalid {keyword} value{shown} (from {origin}): {problem}")

    def choice(self, keyword: str, options: tuple[_T, ...], default: _T) -> _T:
        value = self.text(keyword)
        if value is None:
            return default
        for option in options:
            if option == value:
                return option
        raise self.invalid(keyword, f"expected one of {', '.join(options)}")

    def integer(self, keyword: str, *, minimum: int = 0) -> int | None:
        value = self.optional(keyword)
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):
            raise self.invalid(keyword, "expected an integer")
        number = int(value)
        if number < minimum:
            raise self.invalid(keyword, f"expected an integer of at least {minimum}")
        return number

    def flag(self, keyword: str, default: bool) -> bool:
        value = self.text(keyword)
        if value is None:
            return default
        if value not in ("0", "1"):
            raise self.invalid(keyword, "expected 0 or 1")
        return value == "1"

    def build(self, env: Mapping[str, str]) -> ConnectParams:
        user = self.optional("user") or _os_user()
        sslmode = self._sslmode()
        min_protocol, max_protocol = self._protocol_versions()
        ssl_min, ssl_max = self._tls_versions()
        self._check_ignored()
        return ConnectParams(
            hosts=self._hosts(),
            user=user,
            dbname=self.optional("dbname") or user,
            password=self.optional("password"),
            passfile=self.optional("passfile") or default_passfile(env),
            application_name=self.optional("application_name"),
            fallback_application_name=self.optional("fallback_application_name"),
            options=self.optional("options"),
            connect_timeout=self._connect_timeout(),
            client_encoding=self._client_encoding(),
            sslmode=sslmode,
            sslrootcert=self.optional("sslrootcert"),
            sslcert=self.optional("sslcert"),
            sslkey=self.optional("sslkey"),
            sslpassword=self.optional("sslpassword"),
            sslcrl=self.optional("sslcrl"),
            sslsni=self.flag("sslsni", True),
            sslnegotiation=self._sslnegotiation(sslmode),
            ssl_min_protocol_version=ssl_min,
            ssl_max_protocol_version=ssl_max,
            channel_binding=self.choice("channel_binding", CHANNEL_BINDINGS, "prefer"),
            require_auth=self._require_auth(),
            target_session_attrs=self.choice("target_session_attrs", TARGET_SESSION_ATTRS, "any"),
            load_balance_hosts=self.choice("load_balance_hosts", LOAD_BALANCE_HOSTS, "disable"),
            # libpq-connect.html#LIBPQ-KEEPALIVES: any non-zero value turns keepalives on.
            keepalives=self.integer("keepalives") != 0,
            # For these four, zero means "the system default", the same as unset.
            keepalives_idle=self.integer("keepalives_idle") or None,
            keepalives_interval=self.integer("keepalives_interval") or None,
            keepalives_count=self.integer("keepalives_count") or None,
            tcp_user_timeout=self.integer("tcp_user_timeout") or None,
            min_protocol_version=min_protocol,
            max_protocol_version=max_protocol,
            gssencmode=self._gssencmode(),
        )

    def _hosts(self) -> tuple[HostSpec, ...]:
        """Pair up the host, hostaddr and port lists (libpq-connect.html
        #LIBPQ-MULTIPLE-HOSTS): hostaddr and host lists must be the same length, and a
        single port applies to every host. An empty entry means the default."""
        hosts = self.optional("host")
        addresses = self.optional("hostaddr")
        host_list = hosts.split(",") if hosts else None
        address_list = addresses.split(",") if addresses else None
        if host_list and address_list and len(host_list) != len(address_list):
            raise self.invalid(
                "host",
                f"could not match {len(host_list)} host names to {len(address_list)} "
                "hostaddr values; give one hostaddr entry per host (an empty entry "
                "resolves that host)",
            )
        count = len(address_list or host_list or [""])
        host_list = host_list or [""] * count
        address_list = address_list or [""] * count
        ports = self.optional("port")
        port_list = ports.split(",") if ports else [""]
        if len(port_list) == 1:
            port_list *= count
        elif len(port_list) != count:
            raise self.invalid(
                "port",
                f"could not match {len(port_list)} port numbers to {count} hosts; give "
                "one port for all hosts or one per host",
            )
        default_host: str | None = None
        specs: list[HostSpec] = []
        for host, address, port in zip(host_list, address_list, port_list, strict=True):
            number = self._port(port)
            if address:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise self.invalid(
                        "hostaddr",
                        f'"{address}" is not a numeric IP address; put host names in host',
                    ) from None
                specs.append(HostSpec(host or address, address, number))
            elif host:
                specs.append(HostSpec(host, None, number))
            else:
                default_host = default_host or _default_host()
                specs.append(HostSpec(default_host, None, number))
        return tuple(specs)

    def _port(self, port: str) -> int:
        if not port:
            return DEFAULT_PORT
        if _INTEGER.fullmatch(port) and 1 <= int(port) <= 65535:
            return int(port)
        raise self.invalid("port", f'"{port}" is not a port number between 1 and 65535')

    def _connect_timeout(self) -> float | None:
        value = self.optional("connect_timeout")
        if value is None:
            return None
        if not _DECIMAL.fullmatch(value):
            raise self.invalid("connect_timeout", "expected a number of seconds")
        seconds = float(value)
        # libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT: zero or negative waits forever.
        return seconds if seconds > 0 else None

    def _client_encoding(self) -> str | None:
        value = self.optional("client_encoding")
        if value is None:
            return None
        # The server ignores case and punctuation in encoding names: utf8, UTF-8, Utf_8.
        if re.sub(r"[^a-z0-9]", "", value.lower()) == "utf8":
            return "UTF8"
        raise self.invalid(
            "client_encoding",
            "trio_pg always talks UTF8 to the server and converts text to and from Python "
            "str itself, so only UTF8 is accepted; remove the setting",
        )

    def _sslmode(self) -> SslMode:
        # libpq-connect.html#LIBPQ-CONNECT-SSLROOTCERT: sslrootcert=system makes
        # verify-full the default, and a weaker explicit sslmode an error, since anyone
        # can get a publicly trusted certificate for a host name they control.
        if self.optional("sslrootcert") != "system":
            return self.choice("sslmode", SSL_MODES, "prefer")
        sslmode = self.choice("sslmode", SSL_MODES, "verify-full")
        if sslmode != "verify-full":
            raise self.invalid(
                "sslmode",
                'sslrootcert=system requires sslmode "verify-full" (or leave sslmode '
                "unset); use sslrootcert=./system for a file named system",
            )
        return sslmode

    def _sslnegotiation(self, sslmode: SslMode) -> SslNegotiation:
        negotiation = self.choice("sslnegotiation", SSL_NEGOTIATIONS, "postgres")
        # libpq-connect.html#LIBPQ-CONNECT-SSLNEGOTIATION: direct TLS has no plaintext
        # fallback, so it is only allowed with the modes that never use plaintext.
        if negotiation == "direct" and sslmode not in _TLS_ONLY_MODES:
            raise self.invalid(
                "sslnegotiation",
                f'sslnegotiation=direct needs sslmode "require", "verify-ca" or '
                f'"verify-full", not "{sslmode}"',
            )
        return negotiation

    def _require_auth(self) -> RequireAuth | None:
        """Parse ``require_auth`` (libpq-connect.html#LIBPQ-CONNECT-REQUIRE-AUTH)."""
        value = self.optional("require_auth")
        if value is None:
            return None
        methods: set[str] = set()
        negations: set[bool] = set()
        for item in value.split(","):
            negated = item.startswith("!")
            method = item.removeprefix("!")
            if method not in REQUIRE_AUTH_METHODS:
                raise self.invalid(
                    "require_auth",
                    f'unknown method "{item}"; expected a comma-separated list of '
                    f"{', '.join(REQUIRE_AUTH_METHODS)}, each prefixed with ! to forbid it",
                )
            if method in methods:
                raise self.invalid("require_auth", f'method "{method}" is listed twice')
            methods.add(method)
            negations.add(negated)
        if len(negations) > 1:
            raise self.invalid(
                "require_auth",
                "negated (!method) and plain methods cannot be mixed: list either the "
                "methods to allow or the methods to forbid",
            )
        return RequireAuth(frozenset(methods), negations == {True})

    def _protocol_versions(self) -> tuple[tuple[int, int], tuple[int, int]]:
        versions: list[tuple[int, int]] = []
        for keyword, default in (
            ("min_protocol_version", (3, 0)),
            ("max_protocol_version", (3, 2)),
        ):
            value = self.optional(keyword)
            if value is None:
                versions.append(default)
            elif value in _PROTOCOL_VERSIONS:
                versions.append(_PROTOCOL_VERSIONS[value])
            else:
                raise self.invalid(keyword, f"expected one of {', '.join(_PROTOCOL_VERSIONS)}")
        low, high = versions
        if low > high:
            raise self.invalid("min_protocol_version", "it is greater than max_protocol_version")
        return low, high

    def _tls_versions(self) -> tuple[str | None, str | None]:
        versions: list[str | None] = []
        for keyword, default in (
            ("ssl_min_protocol_version", "TLSv1.2"),
            ("ssl_max_protocol_version", None),
        ):
            value = self.text(keyword)
            if value is None:
                versions.append(default)
            elif not value:
                versions.append(None)  # empty: let the TLS library decide
            else:
                match = [v for v in _TLS_VERSIONS if v.lower() == value.lower()]
                if not match:
                    raise self.invalid(keyword, f"expected one of {', '.join(_TLS_VERSIONS)}")
                versions.append(match[0])
        low, high = versions
        if (
            low is not None
            and high is not None
            and (_TLS_VERSIONS.index(low) > _TLS_VERSIONS.index(high))
        ):
            if self.text("ssl_min_protocol_version") is None:
                raise self.invalid(
                    "ssl_max_protocol_version",
                    f"it is lower than ssl_min_protocol_version ({low} by default)",
                )
            raise self.invalid(
                "ssl_min_protocol_version", "it is greater than ssl_max_protocol_version"
            )
        return low, high

    def _gssencmode(self) -> GssEncMode:
        mode = self.choice("gssencmode", GSSENC_MODES, "disable")
        if mode == "require":
            raise self.invalid(
                "gssencmode",
                "trio_pg has no GSSAPI support, so GSSAPI encryption cannot be required; "
                "use sslmode for encryption",
            )
        return mode

    def _check_ignored(self) -> None:
        """Validate the keywords accepted for compatibility that change nothing here."""
        self.flag("sslcompression", False)  # TLS compression is never negotiated
        self.choice("gsslib", ("", "gssapi", "sspi"), "")
        # libpq-connect.html#LIBPQ-CONNECT-REPLICATION: the false spellings mean a
        # normal connection; the rest start the replication protocol.
        replication = self.choice(
            "replication",
            ("true", "on", "yes", "1", "database", "false", "off", "no", "0"),
            "false",
        )
        if replication in ("true", "on", "yes", "1", "database"):
            raise self.invalid("replication", "replication connections are not supported yet")
