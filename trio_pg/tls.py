"""TLS for a PostgreSQL connection: the SSL context libpq would build, and the handshake.

Theory of operation (protocol-flow.html#PROTOCOL-FLOW-SSL): with the traditional
``sslnegotiation=postgres`` the client sends an SSLRequest and the server answers with one
unencrypted byte, ``S`` (go ahead with TLS) or ``N`` (no TLS here); only after ``S`` does
the TLS handshake start. With ``sslnegotiation=direct`` (PostgreSQL >= 17) the client
starts the handshake at once and both sides must agree on the ALPN protocol
``postgresql``. Exactly one byte is read for the answer, so bytes a man in the middle
stuffs behind the ``S`` (CVE-2021-23222) go to the TLS layer, which rejects them, and
never reach the protocol as if they had been encrypted.

What is verified follows libpq-ssl.html#LIBPQ-SSL-PROTECTION. The server certificate's
chain is checked whenever a root certificate is available (``sslrootcert``, or
``~/.postgresql/root.crt`` if it exists), whatever the sslmode: so ``require`` with a root
file behaves like ``verify-ca``, as libpq keeps it for backward compatibility.
``verify-ca`` and ``verify-full`` insist on a root certificate. ``verify-full`` also
checks the host name, after the handshake and with libpq's rules
(``pq_verify_peer_name_matches_certificate``), so it works even with ``sslsni=0``.

Nothing here retries or falls back; see :func:`negotiate` for what each error means to
the connection layer, which implements sslmode's fallbacks.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import ssl
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import trio

from trio_pg.conninfo import ConnectParams, HostSpec
from trio_pg.errors import ConnectionFailedError, ProtocolError, TLSError
from trio_pg.protocol.frontend import ssl_request

__all__ = ["ALPN_PROTOCOL", "SecureChannel", "UpgradeFn", "build_ssl_context", "negotiate"]

#: A custom TLS upgrade: takes the raw stream after the server agreed to TLS (or at once
#: with ``sslnegotiation=direct``) and returns the encrypted stream.
UpgradeFn: TypeAlias = Callable[[trio.abc.Stream], Awaitable[trio.abc.Stream]]

#: The ALPN protocol name PostgreSQL registered (protocol-flow.html#PROTOCOL-FLOW-SSL).
ALPN_PROTOCOL: Final = "postgresql"

#: ssl_min/max_protocol_version values, as conninfo validates and spells them.
_TLS_VERSIONS: Final = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
#: OpenSSL reasons that mean the peer did not answer with a TLS version we accept; libpq
#: adds the same hint for them (fe-secure-openssl.c, open_client_SSL).
_VERSION_REASONS: Final = frozenset(
    {
        "NO_PROTOCOLS_AVAILABLE",
        "UNSUPPORTED_PROTOCOL",
        "UNKNOWN_PROTOCOL",
        "WRONG_VERSION_NUMBER",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "VERSION_TOO_HIGH",
        "VERSION_TOO_LOW",
    }
)


@dataclass(frozen=True, slots=True)
class SecureChannel:
    """The outcome of :func:`negotiate`.

    Attributes:
        stream: The stream to speak the protocol on: the TLS stream, or the raw one.
        encrypted: Whether ``stream`` is encrypted.
        channel_binding: ``("tls-server-end-point", data)`` for SCRAM-SHA-256-PLUS, or
            ``None`` when there is no TLS, no peer certificate, or the certificate's
            signature algorithm defines no hash (RFC 5929 section 4.1).
    """

    stream: trio.abc.Stream
    encrypted: bool
    channel_binding: tuple[str, bytes] | None


def build_ssl_context(params: ConnectParams) -> ssl.SSLContext:
    """Build the client SSL context libpq would use for these parameters.

    - The server certificate chain is verified when a root certificate is available:
      ``sslrootcert``, else ``~/.postgresql/root.crt`` if it exists (``%APPDATA%``
      ``\\postgresql\\root.crt`` on Windows). ``sslrootcert=system`` uses the system's
      trusted CAs and requires ``sslmode=verify-full``. Certificate revocation lists come
      from ``sslcrl``, else ``~/.postgresql/root.crl`` if it exists.
    - The host name is not checked by the context (``check_hostname`` is false):
      :func:`negotiate` checks it for ``verify-full`` with libpq's rules.
    - The client certificate comes from ``sslcert``/``sslkey``, else
      ``~/.postgresql/postgresql.crt``/``.key`` when the certificate file exists; an
      encrypted key is opened with ``sslpassword``. Like libpq, a key file readable by
      group or others is refused.
    - TLS versions are limited by ``ssl_min_protocol_version`` (default TLSv1.2) and
      ``ssl_max_protocol_version``; ALPN offers ``postgresql``.

    Args:
        params: The connection parameters.

    Returns:
        A new context; the caller may use it for many connections.

    Raises:
        TLSError: A file named by a parameter does not exist or cannot be loaded, no root
            certificate is available for ``verify-ca``/``verify-full``, or a protocol
            version is invalid. The message names the file and the parameter.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.set_alpn_protocols([ALPN_PROTOCOL])
    _set_protocol_versions(context, params)
    verify = _load_root_certificates(context, params)
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    _load_client_certificate(context, params)
    return context


async def negotiate(
    stream: trio.abc.Stream,
    host: HostSpec,
    params: ConnectParams,
    *,
    encrypt: Literal["never", "try", "require"],
    ssl_context: ssl.SSLContext | UpgradeFn | None = None,
) -> SecureChannel:
    """Negotiate TLS on a freshly opened stream, before the StartupMessage.

    ``encrypt="never"`` returns the stream as it is, and so does a Unix-domain socket
    host whatever ``encrypt`` says: libpq never requests TLS over a local socket.
    Otherwise, with ``params.sslnegotiation == "postgres"`` an SSLRequest is sent and one
    byte read: ``S`` starts the TLS handshake; ``N`` returns the plain stream under
    ``"try"`` and fails under ``"require"``. With ``"direct"`` the handshake starts at
    once and the server must select ALPN ``postgresql``.

    The handshake uses ``ssl_context`` if it is an :class:`ssl.SSLContext` (its own
    verification settings apply, and the host name is passed for SNI and its
    ``check_hostname``), calls it if it is an :data:`UpgradeFn`, and otherwise uses
    :func:`build_ssl_context` and checks the host name itself under ``verify-full``.

    Nothing is retried. For libpq's sslmode behaviour the caller must know that under
    ``prefer`` libpq retries on a *new* connection without TLS when the handshake fails
    (any :class:`TLSError` raised after the server answered ``S``), and under ``allow``
    it starts without TLS and retries with it when the server rejects the connection.

    Args:
        stream: The raw stream from :func:`trio_pg.transport.open_stream`. On error the
            caller still owns it and must close it.
        host: The host ``stream`` is connected to; ``host.host`` is the name verified and
            sent for SNI (not when it is an IP address, or with ``sslsni=0``).
        params: The connection parameters.
        encrypt: ``"never"``, ``"try"`` (TLS if the server offers it) or ``"require"``.
        ssl_context: Overrides how TLS is set up (see above).

    Returns:
        The stream to use, whether it is encrypted, and its channel-binding data.

    Raises:
        TLSError: The server refused TLS under ``"require"``, the handshake failed, the
            server certificate was not accepted, the ALPN check failed, or the SSL
            context could not be built.
        ConnectionFailedError: The connection broke or the server sent an error before
            answering the SSLRequest.
        ProtocolError: The server's answer to the SSLRequest was not ``S``, ``N`` or
            ``E``: it is probably not PostgreSQL.
    """
    if encrypt == "never" or host.is_unix:
        return SecureChannel(stream=stream, encrypted=False, channel_binding=None)
    if params.sslnegotiation == "direct":
        return await _handshake(stream, host, params, ssl_context, direct=True)

    answer = await _request_ssl(stream)
    if answer == b"S":
        return await _handshake(stream, host, params, ssl_context, direct=False)
    if answer == b"N":
        if encrypt == "require":
            raise TLSError(
                f"server does not support SSL, but SSL was required (sslmode={params.sslmode})"
            )
        return SecureChannel(stream=stream, encrypted=False, channel_binding=None)
    if answer == b"E":
        # An ErrorResponse follows, but libpq does not show it: it comes from a server
        # that has not been authenticated yet (CVE-2024-10977).
        raise ConnectionFailedError("server sent an error response during SSL exchange")
    raise ProtocolError(
        f"received invalid response to SSL negotiation: {answer!r} "
        "(is the server at this address PostgreSQL?)"
    )


async def _request_ssl(stream: trio.abc.Stream) -> bytes:
    """Send SSLRequest and return the server's one-byte answer."""
    try:
        await stream.send_all(ssl_request())
        answer = await stream.receive_some(1)
    except trio.BrokenResourceError as exc:
        raise ConnectionFailedError(
            f"connection lost during SSL negotiation: {exc.__cause__ or exc}"
        ) from exc
    if not answer:
        raise ConnectionFailedError(
            "server closed the connection unexpectedly during SSL negotiation"
        )
    return bytes(answer)


async def _handshake(
    stream: trio.abc.Stream,
    host: HostSpec,
    params: ConnectParams,
    ssl_context: ssl.SSLContext | UpgradeFn | None,
    *,
    direct: bool,
) -> SecureChannel:
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        try:
            secured = await ssl_context(stream)
            if isinstance(secured, trio.SSLStream):
                await secured.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError) as exc:
            raise _handshake_failure(exc, params, custom=True) from exc
        if direct:
            _check_alpn(secured, custom=True)
        return SecureChannel(secured, encrypted=True, channel_binding=_channel_binding(secured))

    context = build_ssl_context(params) if ssl_context is None else ssl_context
    # A caller's context may check the host name itself, which needs the name.
    server_hostname = host.host if params.sslsni or context.check_hostname else None
    tls = trio.SSLStream(stream, context, server_hostname=server_hostname)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        raise _handshake_failure(exc, params, custom=ssl_context is not None) from exc
    if direct:
        _check_alpn(tls, custom=ssl_context is not None)
    if ssl_context is None and params.sslmode == "verify-full":
        _check_host_name(tls.getpeercert(), host.host)
    return SecureChannel(tls, encrypted=True, channel_binding=_channel_binding(tls))


def _handshake_failure(exc: BaseException, params: ConnectParams, *, custom: bool) -> TLSError:
    """Say what went wrong in a TLS handshake, and what the user can do about it."""
    # trio.SSLStream raises BrokenResourceError chained from the ssl module's error.
    cause = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        if custom:
            hint = "the ssl_context passed in does not trust the server's certificate"
        elif params.sslrootcert == "system":
            hint = (
                "sslrootcert=system trusts the system's CA store, which has no CA "
                "that signed the server's certificate"
            )
        else:
            hint = "set sslrootcert to the CA that signed the server's certificate"
        return TLSError(
            f"server certificate verification failed: {cause.verify_message} "
            f"(sslmode={params.sslmode}; {hint})"
        )
    # A server older than PostgreSQL 17 takes a direct ClientHello for a startup packet
    # and hangs up, or answers in plain text: say so, since OpenSSL's words will not.
    direct = (
        " (sslnegotiation=direct needs PostgreSQL 17 or later; use sslnegotiation=postgres "
        "for older servers and poolers)"
        if params.sslnegotiation == "direct"
        else ""
    )
    if isinstance(cause, ssl.SSLEOFError):
        return TLSError(f"TLS handshake failed: the server closed the connection{direct}")
    if isinstance(cause, ssl.SSLError):
        reason = cause.reason or str(cause)
        message = f"TLS handshake failed: {reason}"
        if reason in _VERSION_REASONS:
            low = params.ssl_min_protocol_version or "the oldest"
            high = params.ssl_max_protocol_version or "the newest this client supports"
            message += (
                f" (the server may not support any TLS version from {low} to {high}, "
                "or it did not answer with TLS at all)"
            )
        return TLSError(message + direct)
    if cause is None:
        return TLSError(f"TLS handshake failed: the connection broke{direct}")
    return TLSError(f"TLS handshake failed: {cause}{direct}")


def _check_alpn(stream: trio.abc.Stream, *, custom: bool) -> None:
    """Insist on ALPN ``postgresql`` after a direct handshake, as libpq does."""
    selected = getattr(stream, "selected_alpn_protocol", None)
    if selected is None or selected() == ALPN_PROTOCOL:
        return
    hint = (
        'call set_alpn_protocols(["postgresql"]) on the ssl_context passed in, or use '
        "sslnegotiation=postgres"
        if custom
        else "the server is older than PostgreSQL 17 or something in between terminated "
        "TLS; use sslnegotiation=postgres"
    )
    raise TLSError(
        f'direct TLS connection was established without the ALPN protocol "{ALPN_PROTOCOL}" '
        f"({hint})"
    )


# --- building the context ------------------------------------------------------------


def _set_protocol_versions(context: ssl.SSLContext, params: ConnectParams) -> None:
    # None leaves the bound to OpenSSL; conninfo supplies libpq's default TLSv1.2 minimum.
    if params.ssl_min_protocol_version:
        context.minimum_version = _TLS_VERSIONS[params.ssl_min_protocol_version]
    if params.ssl_max_protocol_version:
        context.maximum_version = _TLS_VERSIONS[params.ssl_max_protocol_version]


def _postgresql_dir() -> Path | None:
    """Where libpq looks for default certificate files, or None without a home."""
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata, "postgresql") if appdata else None
    try:
        return Path.home() / ".postgresql"
    except RuntimeError:
        return None


def _given_file(value: str, parameter: str, what: str) -> Path:
    """A file named by a parameter: unlike libpq, a missing one is an error, not ignored."""
    path = Path(value)
    if not path.exists():
        raise TLSError(f'{what} file "{path}" does not exist (set by {parameter})')
    return path


def _default_file(name: str) -> Path | None:
    directory = _postgresql_dir()
    path = directory / name if directory is not None else None
    return path if path is not None and path.exists() else None


def _load_root_certificates(context: ssl.SSLContext, params: ConnectParams) -> bool:
    """Load the trusted CAs; return whether the server certificate is to be verified."""
    if params.sslrootcert == "system":
        # conninfo has made sure sslmode is verify-full (libpq-connect.html
        # #LIBPQ-CONNECT-SSLROOTCERT): publicly trusted CAs vouch for names, not servers.
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        if params.sslrootcert:
            root = _given_file(params.sslrootcert, "sslrootcert", "root certificate")
        else:
            found = _default_file("root.crt")
            if found is None:
                if params.sslmode in ("verify-ca", "verify-full"):
                    raise TLSError(
                        f"sslmode={params.sslmode} needs the CA certificate that signed the "
                        "server's certificate, but no root certificate file was found "
                        f"({_describe_default('root.crt')}): set sslrootcert to that file, "
                        "use sslrootcert=system for the system's trusted CAs, or use "
                        "sslmode=require to skip verifying the server certificate"
                    )
                return False
            root = found
        _load_verify_file(context, root, "sslrootcert", "root certificate")
    if params.sslcrl:
        crl: Path | None = _given_file(params.sslcrl, "sslcrl", "certificate revocation list")
    else:
        crl = _default_file("root.crl")
    if crl is not None:
        _load_verify_file(context, crl, "sslcrl", "certificate revocation list")
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    return True


def _describe_default(name: str) -> str:
    directory = _postgresql_dir()
    if directory is None:
        return "no home directory to look in"
    return f'"{directory / name}" does not exist'


def _load_verify_file(context: ssl.SSLContext, path: Path, parameter: str, what: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TLSError(f'could not read {what} file "{path}" ({parameter}): {reason}') from exc


def _load_client_certificate(context: ssl.SSLContext, params: ConnectParams) -> None:
    if params.sslcert:
        cert = _given_file(params.sslcert, "sslcert", "client certificate")
    else:
        found = _default_file("postgresql.crt")
        if found is None:
            return  # libpq goes on without a client certificate
        cert = found
    if params.sslkey:
        key = _given_file(params.sslkey, "sslkey", "private key")
    else:
        default_key = _default_file("postgresql.key")
        if default_key is None:
            raise TLSError(
                f'client certificate "{cert}" is present, but not its private key file '
                f"({_describe_default('postgresql.key')}): set sslkey"
            )
        key = default_key
    _check_key_permissions(key)
    password = params.sslpassword or ""
    encrypted = False
    try:
        encrypted = b"ENCRYPTED" in key.read_bytes()  # PEM marks both kinds of encrypted key
        # The callback always answers, so OpenSSL never prompts on the terminal.
        context.load_cert_chain(cert, key, password=lambda: password)
    except (ssl.SSLError, OSError) as exc:
        hint = ""
        if encrypted:
            hint = "check sslpassword" if password else "set sslpassword to its passphrase"
            hint = f"; the key is encrypted: {hint}"
        raise TLSError(
            f'could not load client certificate "{cert}" (sslcert) with private key '
            f'"{key}" (sslkey): {exc}{hint}'
        ) from exc


def _check_key_permissions(key: Path) -> None:
    """Refuse a key others can read, with libpq's rule (fe-secure-openssl.c)."""
    try:
        info = key.stat()
    except OSError as exc:
        raise TLSError(f'could not stat private key file "{key}" (sslkey): {exc}') from exc
    if not stat.S_ISREG(info.st_mode):
        raise TLSError(f'private key file "{key}" is not a regular file (sslkey)')
    if os.name == "nt":
        return  # no Unix permission bits to check
    # A root-owned key may be group-readable so a system-wide key can be shared.
    if info.st_uid == 0:
        forbidden = stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO
    else:
        forbidden = stat.S_IRWXG | stat.S_IRWXO
    if info.st_mode & forbidden:
        raise TLSError(
            f'private key file "{key}" has group or world access; file must have '
            "permissions u=rw (0600) or less if owned by the current user, or u=rw,g=r "
            "(0640) or less if owned by root"
        )


# --- verify-full host name check -----------------------------------------------------


def _check_host_name(certificate: dict[str, Any] | None, host: str) -> None:
    """Match ``host`` against the certificate's names like libpq (fe-secure-common.c).

    Subject alternative names of the host's kind (IP address or DNS name) are compared;
    the Common Name only when there are none of that kind. A DNS pattern may have one
    leading ``*.`` that stands for exactly one label. Comparison ignores case.
    """
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    # getpeercert() shapes: subjectAltName is ((kind, value), ...), subject is a tuple
    # of relative distinguished names, each ((attribute, value), ...).
    certificate = certificate or {}
    wanted = "DNS" if address is None else "IP Address"
    examined = [v for k, v in certificate.get("subjectAltName", ()) if k == wanted]
    if examined:
        matches = _same_address if address is not None else _name_matches
    else:
        examined = [
            v for rdn in certificate.get("subject", ()) for k, v in rdn if k == "commonName"
        ]
        matches = _name_matches
    if any(matches(name, host) for name in examined):
        return
    hint = (
        "sslmode=verify-full; connect with a host name the certificate lists, or use "
        "sslmode=verify-ca to verify only the certificate chain"
    )
    if not examined:
        raise TLSError(f"could not get server's host name from server certificate ({hint})")
    others = len(examined) - 1
    extra = f" (and {others} other name{'s' if others > 1 else ''})" if others else ""
    raise TLSError(
        f'server certificate for "{examined[0]}"{extra} does not match host name "{host}" ({hint})'
    )


def _name_matches(pattern: str, host: str) -> bool:
    if "\0" in pattern:
        # CVE-2009-4034: an embedded NUL could make "good.example\0.evil" look like a match.
        raise TLSError("SSL certificate's name contains embedded null")
    pattern, host = pattern.lower(), host.lower()
    if pattern == host:
        return True
    if not pattern.startswith("*.") or len(pattern) < 3:
        return False
    # "*" stands for exactly one non-empty label.
    label, _, rest = host.partition(".")
    return bool(label) and "." + rest == pattern[1:]


def _same_address(value: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) == ipaddress.ip_address(host)
    except ValueError:
        return False


# --- channel binding (RFC 5929 section 4.1) ------------------------------------------


def _channel_binding(stream: trio.abc.Stream) -> tuple[str, bytes] | None:
    getpeercert = getattr(stream, "getpeercert", None)
    if getpeercert is None:
        return None
    der = getpeercert(binary_form=True)
    if not isinstance(der, bytes):
        return None
    algorithm = _end_point_hash(der)
    if algorithm is None:
        return None
    return ("tls-server-end-point", hashlib.new(algorithm, der).digest())


# Signature algorithm OIDs that use a single hash, with the hash tls-server-end-point
# uses: the signature's own, except that MD5 and SHA-1 become SHA-256.
_NIST_SIG: Final = "2.16.840.1.101.3.4.3."
_SIGNATURE_HASHES: Final = {
    "1.2.840.113549.1.1.4": "sha256",  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "sha256",  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.10045.4.1": "sha256",  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
    "1.2.840.10040.4.3": "sha256",  # dsa-with-sha1
    _NIST_SIG + "1": "sha224",  # dsa-with-sha224
    _NIST_SIG + "2": "sha256",
    _NIST_SIG + "3": "sha384",
    _NIST_SIG + "4": "sha512",
    # 5-8, 9-12, 13-16: DSA, ECDSA and RSA with SHA3-224/256/384/512.
    **{
        _NIST_SIG + str(n): f"sha3_{bits}"
        for n, bits in zip(range(5, 17), (224, 256, 384, 512) * 3, strict=True)
    },
}
_RSASSA_PSS: Final = "1.2.840.113549.1.1.10"
_HASHES: Final = {
    "1.3.14.3.2.26": "sha256",  # SHA-1
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.7": "sha3_224",
    "2.16.840.1.101.3.4.2.8": "sha3_256",
    "2.16.840.1.101.3.4.2.9": "sha3_384",
    "2.16.840.1.101.3.4.2.10": "sha3_512",
}


def _end_point_hash(der: bytes) -> str | None:
    """The hashlib name tls-server-end-point uses for this DER certificate, if any."""
    try:
        # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
        start, _ = _tlv(der, 0, 0x30)
        _, tbs_end = _tlv(der, start, 0x30)
        algorithm, algorithm_end = _tlv(der, tbs_end, 0x30)
        oid_start, oid_end = _tlv(der, algorithm, 0x06)
        oid = _oid(der[oid_start:oid_end])
        if oid != _RSASSA_PSS:
            return _SIGNATURE_HASHES.get(oid)
        # RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] EXPLICIT ... DEFAULT sha1, ...}
        if oid_end == algorithm_end:
            return "sha256"  # default SHA-1, replaced by SHA-256
        pss, pss_end = _tlv(der, oid_end, 0x30)
        if pss == pss_end or der[pss] != 0xA0:
            return "sha256"  # default SHA-1, replaced by SHA-256
        explicit, _ = _tlv(der, pss, 0xA0)
        hash_algorithm, _ = _tlv(der, explicit, 0x30)
        hash_start, hash_end = _tlv(der, hash_algorithm, 0x06)
        return _HASHES.get(_oid(der[hash_start:hash_end]))
    except (IndexError, ValueError):
        return None


def _tlv(data: bytes, position: int, tag: int) -> tuple[int, int]:
    """Check the tag of the DER element at ``position``; return its content's bounds."""
    if data[position] != tag:
        raise ValueError("unexpected DER tag")
    length = data[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER element")
    return start, end


def _oid(encoded: bytes) -> str:
    """Dotted form of a DER-encoded OBJECT IDENTIFIER."""
    if not encoded:
        raise ValueError("empty OID")
    arc = min(encoded[0] // 40, 2)  # the first byte packs two arcs: 40 * first + second
    parts = [arc, encoded[0] - 40 * arc]
    value = 0
    for byte in encoded[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))
