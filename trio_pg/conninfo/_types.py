"""The resolved connection parameters: what the connection layer reads.

Everything here is already validated and typed; the connection layer never parses a
string. Field semantics follow ``libpq-connect.html#LIBPQ-PARAMKEYWORDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from trio_pg.conninfo._files import DEFAULT_SOCKET_DIRS, passfile_password

__all__ = [
    "CHANNEL_BINDINGS",
    "GSSENC_MODES",
    "LOAD_BALANCE_HOSTS",
    "REQUIRE_AUTH_METHODS",
    "SSL_MODES",
    "SSL_NEGOTIATIONS",
    "TARGET_SESSION_ATTRS",
    "ChannelBinding",
    "ConnectParams",
    "GssEncMode",
    "HostSpec",
    "LoadBalanceHosts",
    "RequireAuth",
    "SslMode",
    "SslNegotiation",
    "TargetSessionAttrs",
]

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SslNegotiation = Literal["postgres", "direct"]
ChannelBinding = Literal["disable", "prefer", "require"]
TargetSessionAttrs = Literal[
    "any", "read-write", "read-only", "primary", "standby", "prefer-standby"
]
LoadBalanceHosts = Literal["disable", "random"]
GssEncMode = Literal["disable", "prefer", "require"]

#: Valid values of each enumerated keyword, in the order the libpq docs list them.
SSL_MODES: Final[tuple[SslMode, ...]] = get_args(SslMode)
SSL_NEGOTIATIONS: Final[tuple[SslNegotiation, ...]] = get_args(SslNegotiation)
CHANNEL_BINDINGS: Final[tuple[ChannelBinding, ...]] = get_args(ChannelBinding)
TARGET_SESSION_ATTRS: Final[tuple[TargetSessionAttrs, ...]] = get_args(TargetSessionAttrs)
LOAD_BALANCE_HOSTS: Final[tuple[LoadBalanceHosts, ...]] = get_args(LoadBalanceHosts)
GSSENC_MODES: Final[tuple[GssEncMode, ...]] = get_args(GssEncMode)

#: Authentication method names ``require_auth`` accepts (libpq-connect.html
#: #LIBPQ-CONNECT-REQUIRE-AUTH).
REQUIRE_AUTH_METHODS: Final[tuple[str, ...]] = (
    "password",
    "md5",
    "gss",
    "sspi",
    "scram-sha-256",
    "none",
)


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One server to try, with its port.

    Attributes:
        host: A host name, an IP literal, or a Unix-domain socket directory (an absolute
            path, or ``@name`` for Linux's abstract namespace). When only ``hostaddr``
            was given this is the same address, as libpq then matches the password file
            against ``hostaddr`` (``libpq-pgpass.html``).
        hostaddr: A numeric IP address to connect to instead of resolving ``host``;
            ``host`` is still what TLS verification and the password file use.
        port: The TCP port, or the number in the socket file name for Unix sockets.
    """

    host: str
    hostaddr: str | None
    port: int

    @property
    def is_unix(self) -> bool:
        """Whether this is a Unix-domain socket (``libpq-connect.html#LIBPQ-CONNECT-HOST``)."""
        return self.hostaddr is None and self.host.startswith(("/", "@"))

    @property
    def socket_path(self) -> str:
        """The socket file ``{host}/.s.PGSQL.{port}``; meaningful only when :attr:`is_unix`."""
        return f"{self.host}/.s.PGSQL.{self.port}"


@dataclass(frozen=True, slots=True)
class RequireAuth:
    """The parsed ``require_auth`` setting.

    Attributes:
        methods: Method names, a subset of :data:`REQUIRE_AUTH_METHODS`.
        negated: True for the ``!password,!md5`` form: every method *except* these is
            allowed. False: only these are allowed.
    """

    methods: frozenset[str]
    negated: bool

    def allows(self, method: str) -> bool:
        """Whether the server may authenticate with ``method`` (a name as in ``methods``)."""
        return (method in self.methods) != self.negated


@dataclass(frozen=True, slots=True)
class ConnectParams:
    """Fully resolved connection parameters, as :func:`make_params` builds them.

    Each field is the libpq parameter of the same name (``libpq-connect.html
    #LIBPQ-PARAMKEYWORDS``) after precedence (keyword arguments, connection string,
    service file, ``PG*`` environment variables, defaults) and validation. Optional
    settings that were not given, or given as an empty string, are ``None``.

    Attributes:
        hosts: The servers to try, in order (``load_balance_hosts=random`` shuffles
            them at connect time, not here).
        connect_timeout: Seconds allowed for each host; ``None`` waits forever
            (libpq: zero, negative or unset). libpq 18 dropped the old two-second
            minimum, so ``1`` means one second.
        client_encoding: Always ``"UTF8"`` or ``None``: trio_pg only speaks UTF-8.
        sslmode: ``"prefer"`` by default, ``"verify-full"`` when
            ``sslrootcert=system`` and no sslmode was given.
        keepalives_idle: Like the three below and ``tcp_user_timeout``: ``None``
            (also for ``0``) keeps the operating system's default.
        min_protocol_version: ``(3, 0)`` by default.
        max_protocol_version: ``(3, 2)`` by default: trio_pg asks for protocol 3.2 and
            accepts a downgrade to 3.0 (``protocol-overview.html
            #PROTOCOL-VERSIONS``).
        ssl_min_protocol_version: ``"TLSv1"``, ``"TLSv1.1"``, ``"TLSv1.2"`` (the
            default) or ``"TLSv1.3"``; ``None`` leaves it to the TLS library.
        gssencmode: trio_pg has no GSSAPI, so ``"prefer"`` behaves as
            ``"disable"`` (as libpq built without GSSAPI does) and ``"require"`` is
            rejected by :func:`make_params`.
    """

    hosts: tuple[HostSpec, ...]
    user: str
    dbname: str
    password: str | None = field(repr=False)
    passfile: str | None
    application_name: str | None
    fallback_application_name: str | None
    options: str | None
    connect_timeout: float | None
    client_encoding: str | None
    sslmode: SslMode
    sslrootcert: str | None
    sslcert: str | None
    sslkey: str | None
    sslpassword: str | None = field(repr=False)
    sslcrl: str | None
    sslsni: bool
    sslnegotiation: SslNegotiation
    ssl_min_protocol_version: str | None
    ssl_max_protocol_version: str | None
    channel_binding: ChannelBinding
    require_auth: RequireAuth | None
    target_session_attrs: TargetSessionAttrs
    load_balance_hosts: LoadBalanceHosts
    keepalives: bool
    keepalives_idle: int | None
    keepalives_interval: int | None
    keepalives_count: int | None
    tcp_user_timeout: int | None
    min_protocol_version: tuple[int, int]
    max_protocol_version: tuple[int, int]
    gssencmode: GssEncMode

    def password_for(self, host: HostSpec) -> str | None:
        """The password to use for ``host``.

        The explicit ``password`` if one was given, else the first matching line of
        the password file (``libpq-pgpass.html``): host, port, database and user are
        compared literally (``*`` matches anything, ``\\`` escapes ``:`` and ``\\``),
        and ``localhost`` also matches a Unix socket in a default socket directory.
        The file is read on every call, so an edited file takes effect on the next
        connection; a missing file gives ``None``, and a file that group or others can
        read is ignored with a :class:`UserWarning`, as libpq does.

        Args:
            host: One of :attr:`hosts`.

        Returns:
            The password, or ``None`` when there is none for this host.
        """
        if self.password is not None:
            return self.password
        if self.passfile is None:
            return None
        name = host.host
        if host.is_unix and name in DEFAULT_SOCKET_DIRS:
            name = "localhost"
        return passfile_password(
            self.passfile, host=name, port=str(host.port), dbname=self.dbname, user=self.user
        )
