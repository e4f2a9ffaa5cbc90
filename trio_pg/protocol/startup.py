"""The startup and authentication exchange (protocol-flow.html#PROTOCOL-FLOW-START-UP).

Theory of operation: the client sends a StartupMessage; the server may answer with
NegotiateProtocolVersion, then asks for authentication (Authentication* messages) until
AuthenticationOk, then reports ParameterStatus and BackendKeyData and ends the phase with
ReadyForQuery. :class:`StartupMachine` consumes those messages one at a time and returns
what the client must do: bytes to send, or a :class:`ScramProof` job (PBKDF2 over the
password, deliberately slow) for the I/O layer to run off its event loop.

Security policy is applied here, before any secret leaves the client: ``require_auth``
restricts the methods the server may ask for (libpq-connect.html#LIBPQ-CONNECT-REQUIRE-AUTH),
``channel_binding=require`` insists on SCRAM-SHA-256-PLUS, and the SCRAM iteration count
is capped so a hostile server cannot make the client burn minutes of CPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import scramp

from trio_pg.errors import AuthenticationError, PostgresError, ProtocolError
from trio_pg.protocol import backend as b
from trio_pg.protocol import frontend as f

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_MAX_SCRAM_ITERATIONS",
    "ScramProof",
    "StartupComplete",
    "StartupMachine",
    "StartupOptions",
]

#: The method names ``require_auth`` speaks of.
AUTH_METHODS: Final = frozenset({"password", "md5", "gss", "sspi", "scram-sha-256", "none"})

#: PostgreSQL's default is 4096; a server asking for far more is slow or hostile.
DEFAULT_MAX_SCRAM_ITERATIONS: Final = 1_000_000

_SCRAM: Final = "SCRAM-SHA-256"
_SCRAM_PLUS: Final = "SCRAM-SHA-256-PLUS"


@dataclass(frozen=True, slots=True)
class StartupOptions:
    """What the client asks for and what it will accept during startup.

    Attributes:
        user: Role name.
        parameters: StartupMessage parameters besides ``user`` (``database``,
            ``application_name``, ``options``, ``client_encoding``, server settings...).
        password: The password, or None when none is known.
        protocol_version: The version to request; the server may negotiate it down.
        min_protocol_version: The oldest version the client accepts.
        allowed_auth: Authentication methods the server may use (names from
            :data:`AUTH_METHODS`), or None for any.
        channel_binding: ``disable``, ``prefer`` or ``require`` (libpq semantics).
        channel_binding_data: ``("tls-server-end-point", hash)`` when on TLS.
        max_scram_iterations: Refuse SCRAM iteration counts above this.
    """

    user: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    password: str | None = None
    protocol_version: tuple[int, int] = (3, 2)
    min_protocol_version: tuple[int, int] = (3, 0)
    allowed_auth: frozenset[str] | None = None
    channel_binding: Literal["disable", "prefer", "require"] = "prefer"
    channel_binding_data: tuple[str, bytes] | None = None
    max_scram_iterations: int = DEFAULT_MAX_SCRAM_ITERATIONS


@dataclass(frozen=True, slots=True)
class StartupComplete:
    """The startup phase ended with ReadyForQuery."""

    protocol_version: tuple[int, int]
    status: b.TransactionStatus


@dataclass(slots=True)
class ScramProof:
    """Work to run off the event loop: compute the SCRAM client proof.

    Call :meth:`run` (in a worker thread); its result is queued by the machine.
    """

    _compute: Callable[[], None]

    def run(self) -> None:
        """Do the PBKDF2 work and queue the SASLResponse."""
        self._compute()


class StartupMachine:
    """Drives one startup exchange; feed it backend messages in order."""

    def __init__(self, options: StartupOptions) -> None:
        self._opts = options
        self.protocol_version = options.protocol_version
        self.parameters: dict[str, str] = {}
        self.backend_key: b.BackendKeyData | None = None
        self._method: str | None = None  # the method the server used, for require_auth
        self._scram: scramp.ScramClient | None = None
        self._scram_plus = False
        self._sasl_final_seen = False
        self._authenticated = False
        self._out: list[bytes] = []

    def initial_message(self) -> bytes:
        """The StartupMessage that opens the exchange."""
        params = {"user": self._opts.user, **self._opts.parameters}
        return f.startup_message(self._opts.protocol_version, params)

    def take_output(self) -> bytes:
        """Bytes the client must send now."""
        data = b"".join(self._out)
        self._out.clear()
        return data

    # -- dispatch -----------------------------------------------------------------------

    def handle(self, msg: b.BackendMessage) -> ScramProof | StartupComplete | None:
        """Consume one message; return a job to run, completion, or None.

        Raises:
            PostgresError: The server refused the connection (wrong password, no such
                database, too many clients, ...).
            AuthenticationError: The server asked for something the client's policy
                forbids or does not support, or SCRAM verification failed.
            ProtocolError: A message that does not belong in the startup phase.
        """
        handler = self._HANDLERS.get(type(msg))
        if handler is None:
            raise ProtocolError(f"unexpected {type(msg).__name__} during startup")
        return handler(self, msg)  # type: ignore[return-value]

    def _on_negotiate(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.NegotiateProtocolVersion)
        if self._method is not None or self._authenticated:
            raise ProtocolError("NegotiateProtocolVersion after authentication began")
        # Despite the field's documented name, servers send a whole version number,
        # major << 16 | minor, as in the StartupMessage (backend_startup.c,
        # SendNegotiateProtocolVersion sends FrontendProtocol; libpq reads it the same way).
        code = msg.newest_minor_version
        offered = (code >> 16, code & 0xFFFF)
        if offered[0] != self._opts.protocol_version[0]:
            raise ProtocolError(
                f"server negotiated protocol {offered[0]}.{offered[1]}, a different major "
                "version than the one requested"
            )
        if offered >= self._opts.protocol_version:
            raise ProtocolError(
                f"server negotiated protocol {offered[0]}.{offered[1]}, which is not older "
                "than the requested version"
            )
        if offered < self._opts.min_protocol_version:
            want = self._opts.min_protocol_version
            raise ProtocolError(
                f"server supports protocol only up to {offered[0]}.{offered[1]}, but "
                f"min_protocol_version is {want[0]}.{want[1]}"
            )
        self.protocol_version = offered
        return None

    def _on_error(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.ErrorResponse)
        raise PostgresError.from_fields(msg.fields)

    def _on_ok(self, msg: b.BackendMessage) -> None:
        if self._scram is not None and not self._sasl_final_seen:
            # A server that skips SASLFinal has not proven it knows the password.
            raise AuthenticationError(
                "server ended SCRAM authentication without sending its final message"
            )
        if self._method is None:
            self._check_allowed("none", "authentication without a password")
            if self._opts.channel_binding == "require":
                raise AuthenticationError(
                    "channel_binding=require, but the server authenticated the connection "
                    "without SCRAM channel binding"
                )
        self._authenticated = True
        return None

    def _on_cleartext(self, msg: b.BackendMessage) -> None:
        self._begin("password", "a cleartext password")
        self._out.append(f.password_message(self._password()))
        return None

    def _on_md5(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.AuthenticationMD5Password)
        self._begin("md5", "an MD5-hashed password")
        # "md5" + md5(md5(password + user) + salt) (protocol-flow.html, AuthenticationMD5Password)
        inner = hashlib.md5(
            (self._password() + self._opts.user).encode(), usedforsecurity=False
        ).hexdigest()
        outer = hashlib.md5(inner.encode() + msg.salt, usedforsecurity=False).hexdigest()
        self._out.append(f.password_message("md5" + outer))
        return None

    def _on_unsupported(self, msg: b.BackendMessage) -> None:
        names = {
            b.AuthenticationKerberosV5: "Kerberos V5",
            b.AuthenticationGSS: "GSSAPI",
            b.AuthenticationSSPI: "SSPI",
            b.AuthenticationGSSContinue: "GSSAPI",
        }
        method = names.get(type(msg), type(msg).__name__)
        raise AuthenticationError(
            f"server requested {method} authentication, which trio_pg does not support; "
            "configure pg_hba.conf to use scram-sha-256 for this user"
        )

    def _on_sasl(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.AuthenticationSASL)
        self._begin("scram-sha-256", "SASL (SCRAM) authentication")
        cb_mode = self._opts.channel_binding
        cb_data = self._opts.channel_binding_data
        if cb_mode != "disable" and cb_data is not None and _SCRAM_PLUS in msg.mechanisms:
            mechanism = _SCRAM_PLUS
        elif cb_mode == "require":
            why = (
                "the connection is not encrypted"
                if cb_data is None
                else "the server did not offer SCRAM-SHA-256-PLUS"
            )
            raise AuthenticationError(f"channel_binding=require, but {why}")
        elif _SCRAM in msg.mechanisms:
            mechanism = _SCRAM
        else:
            raise AuthenticationError(
                f"server offered SASL mechanisms {list(msg.mechanisms)}, none of which trio_pg "
                "supports"
            )
        password = self._password()
        # PostgreSQL ignores SCRAM's n= field and uses the StartupMessage's user
        # (sasl-authentication.html#SASL-SCRAM-SHA-256). libpq sends it empty, but scramp
        # refuses an empty user name, so the role name goes there.
        binding = cb_data if cb_mode != "disable" else None
        try:
            self._scram = scramp.ScramClient(
                [mechanism], self._opts.user, password, channel_binding=binding
            )
            first = self._scram.get_client_first()
        except scramp.ScramException as exc:
            raise AuthenticationError(f"SCRAM authentication failed: {exc}") from exc
        self._scram_plus = mechanism == _SCRAM_PLUS
        self._out.append(f.sasl_initial_response(mechanism, first.encode()))
        return None

    def _on_sasl_continue(self, msg: b.BackendMessage) -> ScramProof:
        assert isinstance(msg, b.AuthenticationSASLContinue)
        client = self._scram
        if client is None:
            raise ProtocolError("AuthenticationSASLContinue without a SASL exchange")
        try:
            client.set_server_first(msg.data.decode())
        except (scramp.ScramException, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise AuthenticationError(f"invalid SCRAM server-first message: {exc}") from exc
        iterations = int(client.iterations)
        if not 1 <= iterations <= self._opts.max_scram_iterations:
            raise AuthenticationError(
                f"server asked for {iterations} SCRAM iterations, over the limit of "
                f"{self._opts.max_scram_iterations} (raise max_scram_iterations if this is "
                "intended)"
            )

        def compute() -> None:
            final = client.get_client_final()
            self._out.append(f.sasl_response(final.encode()))

        return ScramProof(compute)

    def _on_sasl_final(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.AuthenticationSASLFinal)
        client = self._scram
        if client is None:
            raise ProtocolError("AuthenticationSASLFinal without a SASL exchange")
        try:
            client.set_server_final(msg.data.decode())
        except (scramp.ScramException, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise AuthenticationError(
                f"SCRAM server verification failed, the server may not know the password: {exc}"
            ) from exc
        self._sasl_final_seen = True
        return None

    def _on_parameter_status(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.ParameterStatus)
        self.parameters[msg.name] = msg.value
        return None

    def _on_backend_key(self, msg: b.BackendMessage) -> None:
        assert isinstance(msg, b.BackendKeyData)
        self.backend_key = msg
        return None

    def _on_notice(self, msg: b.BackendMessage) -> None:
        return None

    def _on_ready(self, msg: b.BackendMessage) -> StartupComplete:
        assert isinstance(msg, b.ReadyForQuery)
        if not self._authenticated:
            raise ProtocolError("ReadyForQuery before authentication completed")
        return StartupComplete(self.protocol_version, msg.status)

    _HANDLERS: Final[dict[type, Callable[[StartupMachine, b.BackendMessage], object]]] = {
        b.NegotiateProtocolVersion: _on_negotiate,
        b.ErrorResponse: _on_error,
        b.AuthenticationOk: _on_ok,
        b.AuthenticationCleartextPassword: _on_cleartext,
        b.AuthenticationMD5Password: _on_md5,
        b.AuthenticationKerberosV5: _on_unsupported,
        b.AuthenticationGSS: _on_unsupported,
        b.AuthenticationGSSContinue: _on_unsupported,
        b.AuthenticationSSPI: _on_unsupported,
        b.AuthenticationSASL: _on_sasl,
        b.AuthenticationSASLContinue: _on_sasl_continue,
        b.AuthenticationSASLFinal: _on_sasl_final,
        b.ParameterStatus: _on_parameter_status,
        b.BackendKeyData: _on_backend_key,
        b.NoticeResponse: _on_notice,
        b.ReadyForQuery: _on_ready,
    }

    # -- policy -------------------------------------------------------------------------

    def _check_allowed(self, method: str, what: str) -> None:
        allowed = self._opts.allowed_auth
        if allowed is not None and method not in allowed:
            raise AuthenticationError(
                f"server requested {what}, but require_auth does not allow "
                f"{method!r} (allowed: {', '.join(sorted(allowed)) or 'nothing'})"
            )

    def _begin(self, method: str, what: str) -> None:
        if self._authenticated:
            raise ProtocolError("authentication request after AuthenticationOk")
        if self._method is not None and self._method != method:
            raise ProtocolError(f"server switched authentication method to {method}")
        self._check_allowed(method, what)
        if self._opts.channel_binding == "require" and method != "scram-sha-256":
            raise AuthenticationError(
                f"channel_binding=require, but the server requested {what} instead of "
                "SCRAM-SHA-256-PLUS"
            )
        self._method = method

    def _password(self) -> str:
        if self._opts.password is None:
            raise AuthenticationError(
                "the server requested password authentication, but no password was given "
                "(pass password=..., set PGPASSWORD, or add it to the password file)"
            )
        return self._opts.password


def is_protocol_version_rejection(error: PostgresError) -> bool:
    """True when a server or pooler refused the requested protocol version outright.

    Servers before NegotiateProtocolVersion existed, and some poolers, answer a newer
    minor version with a FATAL ``unsupported frontend protocol`` error (SQLSTATE 0A000
    or 08P01) instead of negotiating down; the client then retries with 3.0.
    """
    return error.sqlstate in ("0A000", "08P01") and "protocol" in error.message.lower()
