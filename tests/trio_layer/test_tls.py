"""TLS negotiation against an in-process fake server (no PostgreSQL needed).

The fake server speaks just enough of protocol-flow.html#PROTOCOL-FLOW-SSL: it reads the
8-byte SSLRequest, answers with one byte, and on ``S`` (or at once, for direct TLS) runs
the server side of the handshake with a trustme certificate, then sends ``hello``.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from trio_pg.conninfo import ConnectParams, make_params
from trio_pg.errors import ConnectionFailedError, ProtocolError, TLSError
from trio_pg.tls import SecureChannel, build_ssl_context, negotiate
from trio_pg.transport import open_stream

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
TIMEOUT = 10


def conn_params(**keywords: object) -> ConnectParams:
    """Parameters from keywords only: no PG* variables (HOME is the test's own)."""
    return make_params(None, keywords, environ={})


# --- fixtures and helpers --------------------------------------------------------------


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME, so no real ~/.postgresql file takes part."""
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1")


def write(path: Path, data: bytes, mode: int = 0o600) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def ca_file(tmp_path: Path, ca: trustme.CA, name: str = "root.crt") -> str:
    return write(tmp_path / name, ca.cert_pem.bytes())


def server_context(
    cert: trustme.LeafCert | tuple[bytes, bytes],
    *,
    alpn: bool = True,
    client_ca: trustme.CA | None = None,
    maximum_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if isinstance(cert, trustme.LeafCert):
        cert.configure_cert(context)
    else:
        pem_cert, pem_key = cert
        with trustme.Blob(pem_cert).tempfile() as c, trustme.Blob(pem_key).tempfile() as k:
            context.load_cert_chain(c, k)
    if alpn:
        context.set_alpn_protocols(["postgresql"])
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(context)
    if maximum_version is not None:
        context.maximum_version = maximum_version
    return context


async def receive_exactly(stream: trio.abc.ReceiveStream, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = await stream.receive_some(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


@dataclass
class FakeServer:
    """Answers the SSLRequest with ``answer`` (plus ``trailing``), then speaks TLS."""

    context: ssl.SSLContext | None
    answer: bytes = b"S"
    trailing: bytes = b""
    direct: bool = False
    seen: dict[str, Any] = field(default_factory=dict)

    async def handle(self, stream: trio.SocketStream) -> None:
        try:
            if not self.direct:
                self.seen["request"] = await receive_exactly(stream, len(SSL_REQUEST))
                await stream.send_all(self.answer + self.trailing)
                if self.answer != b"S":
                    await stream.send_all(b"plain hello")
                    await stream.receive_some()
                    return
            assert self.context is not None
            tls = trio.SSLStream(stream, self.context, server_side=True)
            await tls.do_handshake()
            self.seen["client_cert"] = tls.getpeercert()
            self.seen["alpn"] = tls.selected_alpn_protocol()
            await tls.send_all(b"hello")
            await tls.receive_some()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.seen["broken"] = True


def recording_sni(context: ssl.SSLContext, seen: dict[str, Any]) -> None:
    def callback(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        seen["sni"] = name

    context.sni_callback = callback


async def serve(nursery: trio.Nursery, server: FakeServer) -> int:
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


@asynccontextmanager
async def secure(
    port: int,
    *,
    host: str = "localhost",
    encrypt: str = "require",
    ssl_context: ssl.SSLContext
    | Callable[[trio.abc.Stream], Awaitable[trio.abc.Stream]]
    | None = None,
    **keywords: Any,
) -> AsyncIterator[SecureChannel]:
    """Connect to the fake server on 127.0.0.1 and negotiate TLS as ``host``."""
    hostaddr = None if host == "127.0.0.1" else "127.0.0.1"
    params = conn_params(host=host, hostaddr=hostaddr, port=port, **keywords)
    target = params.hosts[0]
    with trio.fail_after(TIMEOUT):
        async with await open_stream(target, params) as stream:
            yield await negotiate(
                stream,
                target,
                params,
                encrypt=encrypt,  # type: ignore[arg-type]
                ssl_context=ssl_context,
            )


async def attempt(port: int, **keywords: Any) -> None:
    async with secure(port, **keywords):
        pass


async def read_hello(channel: SecureChannel) -> bytes:
    with trio.fail_after(TIMEOUT):
        return bytes(await channel.stream.receive_some())


def der(cert: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


# --- verification modes ------------------------------------------------------------------


async def test_verify_full_accepts_certificate_for_host_name(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    server = FakeServer(server_context(server_cert))
    port = await serve(nursery, server)
    async with secure(port, sslmode="verify-full", sslrootcert=ca_file(tmp_path, ca)) as channel:
        assert channel.encrypted
        assert isinstance(channel.stream, trio.SSLStream)
        assert await read_hello(channel) == b"hello"
    assert server.seen["request"] == SSL_REQUEST


async def test_verify_full_rejects_certificate_from_another_ca(
    nursery: trio.Nursery, tmp_path: Path, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    other = ca_file(tmp_path, trustme.CA())
    with pytest.raises(TLSError, match="server certificate verification failed") as info:
        await attempt(port, sslmode="verify-full", sslrootcert=other)
    assert "set sslrootcert" in str(info.value)
    assert isinstance(info.value.__cause__, trio.BrokenResourceError)
    assert isinstance(info.value.__cause__.__cause__, ssl.SSLCertVerificationError)


async def test_verify_full_rejects_certificate_for_another_host_name(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA
) -> None:
    cert = ca.issue_cert("db.example.com", "replica.example.com")
    port = await serve(nursery, FakeServer(server_context(cert)))
    with pytest.raises(
        TLSError,
        match=r'"db.example.com" \(and 1 other name\) does not match host name "localhost"',
    ):
        await attempt(port, sslmode="verify-full", sslrootcert=ca_file(tmp_path, ca))


async def test_verify_ca_accepts_certificate_for_another_host_name(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA
) -> None:
    cert = ca.issue_cert("db.example.com")
    port = await serve(nursery, FakeServer(server_context(cert)))
    async with secure(port, sslmode="verify-ca", sslrootcert=ca_file(tmp_path, ca)) as channel:
        assert await read_hello(channel) == b"hello"


@pytest.mark.parametrize(
    ("names", "ok"),
    [
        (("*.example.com",), True),
        (("*.com",), False),  # "*" stands for exactly one label
        (("DB.Example.COM",), True),  # names compare without case
        (("other.example.com",), False),
    ],
)
async def test_verify_full_host_name_rules_follow_libpq(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA, names: tuple[str, ...], ok: bool
) -> None:
    port = await serve(nursery, FakeServer(server_context(ca.issue_cert(*names))))
    root = ca_file(tmp_path, ca)
    if ok:
        await attempt(port, host="db.example.com", sslmode="verify-full", sslrootcert=root)
    else:
        with pytest.raises(TLSError, match="does not match host name"):
            await attempt(port, host="db.example.com", sslmode="verify-full", sslrootcert=root)


async def test_verify_full_checks_ip_address_host_against_ip_names(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA
) -> None:
    root = ca_file(tmp_path, ca)
    good = await serve(nursery, FakeServer(server_context(ca.issue_cert("127.0.0.1"))))
    await attempt(good, host="127.0.0.1", sslmode="verify-full", sslrootcert=root)
    bad = await serve(nursery, FakeServer(server_context(ca.issue_cert("10.0.0.1"))))
    with pytest.raises(
        TLSError, match=re.escape('"10.0.0.1" does not match host name "127.0.0.1"')
    ):
        await attempt(bad, host="127.0.0.1", sslmode="verify-full", sslrootcert=root)


@pytest.mark.parametrize(
    ("host", "sslsni", "expected"),
    [("localhost", "1", "localhost"), ("localhost", "0", None), ("127.0.0.1", "1", None)],
)
async def test_sni_sent_for_host_names_unless_sslsni_is_off(
    nursery: trio.Nursery,
    tmp_path: Path,
    ca: trustme.CA,
    server_cert: trustme.LeafCert,
    host: str,
    sslsni: str,
    expected: str | None,
) -> None:
    server = FakeServer(server_context(server_cert))
    recording_sni(server.context, server.seen)  # type: ignore[arg-type]
    port = await serve(nursery, server)
    root = ca_file(tmp_path, ca)
    # verify-full still checks the host name when no SNI is sent.
    async with secure(
        port, host=host, sslmode="verify-full", sslrootcert=root, sslsni=sslsni
    ) as channel:
        assert await read_hello(channel) == b"hello"
    assert server.seen["sni"] == expected


async def test_require_without_root_certificate_accepts_untrusted_certificate(
    nursery: trio.Nursery, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    async with secure(port, host="not-the-cert-name", sslmode="require") as channel:
        assert channel.encrypted
        assert await read_hello(channel) == b"hello"


async def test_require_verifies_chain_when_default_root_certificate_exists(
    nursery: trio.Nursery, home: Path, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    root = home / ".postgresql" / "root.crt"
    write(root, trustme.CA().cert_pem.bytes())
    with pytest.raises(TLSError, match="verification failed"):
        await attempt(port, sslmode="require")
    # With the right CA it passes, and like verify-ca it ignores the host name.
    write(root, ca.cert_pem.bytes())
    await attempt(port, host="not-the-cert-name", sslmode="require")


async def test_require_verifies_chain_when_sslrootcert_is_given(
    nursery: trio.Nursery, tmp_path: Path, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    with pytest.raises(TLSError, match="verification failed"):
        await attempt(port, sslmode="require", sslrootcert=ca_file(tmp_path, trustme.CA()))


@pytest.mark.parametrize("sslmode", ["verify-ca", "verify-full"])
def test_verifying_modes_without_root_certificate_say_to_set_sslrootcert(
    home: Path, sslmode: str
) -> None:
    with pytest.raises(TLSError, match="set sslrootcert") as info:
        build_ssl_context(conn_params(sslmode=sslmode))
    assert str(home / ".postgresql" / "root.crt") in str(info.value)


@pytest.mark.parametrize("parameter", ["sslrootcert", "sslcert", "sslkey", "sslcrl"])
def test_missing_file_given_by_parameter_names_file_and_parameter(
    tmp_path: Path, ca: trustme.CA, parameter: str
) -> None:
    cert = ca.issue_cert("client")
    present = {
        "sslrootcert": ca_file(tmp_path, ca),
        "sslcert": write(tmp_path / "client.crt", cert.cert_chain_pems[0].bytes()),
        "sslkey": write(tmp_path / "client.key", cert.private_key_pem.bytes()),
    }
    missing = str(tmp_path / "missing.pem")
    keywords = {**present, parameter: missing}
    with pytest.raises(TLSError, match=f'"{missing}" does not exist \\(set by {parameter}\\)'):
        build_ssl_context(conn_params(sslmode="verify-ca", **keywords))


def test_sslrootcert_system_loads_system_cas_and_verifies() -> None:
    context = build_ssl_context(conn_params(sslmode="verify-full", sslrootcert="system"))
    assert context.verify_mode == ssl.CERT_REQUIRED


async def test_sslrootcert_system_rejects_certificate_from_private_ca(
    nursery: trio.Nursery, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    with pytest.raises(TLSError, match="sslrootcert=system trusts the system's CA store"):
        await attempt(port, sslrootcert="system")  # sslmode defaults to verify-full


async def test_revoked_server_certificate_is_rejected_with_sslcrl(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    root = ca_file(tmp_path, ca)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    leaf = x509.load_der_x509_certificate(der(server_cert))
    now = datetime.datetime.now(datetime.UTC)
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(leaf.serial_number)
        .revocation_date(now)
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=1))
        .next_update(now + datetime.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crl_file = write(tmp_path / "root.crl", crl.public_bytes(serialization.Encoding.PEM))
    await attempt(port, sslmode="verify-ca", sslrootcert=root)
    with pytest.raises(TLSError, match="certificate revoked"):
        await attempt(port, sslmode="verify-ca", sslrootcert=root, sslcrl=crl_file)


# --- the SSLRequest exchange ---------------------------------------------------------------


async def test_server_refusing_tls_under_try_gives_usable_plain_stream(
    nursery: trio.Nursery,
) -> None:
    port = await serve(nursery, FakeServer(None, answer=b"N"))
    async with secure(port, encrypt="try", sslmode="prefer") as channel:
        assert not channel.encrypted
        assert channel.channel_binding is None
        assert isinstance(channel.stream, trio.SocketStream)
        assert await read_hello(channel) == b"plain hello"


async def test_server_refusing_tls_under_require_raises(nursery: trio.Nursery) -> None:
    port = await serve(nursery, FakeServer(None, answer=b"N"))
    with pytest.raises(TLSError, match="server does not support SSL, but SSL was required"):
        await attempt(port, encrypt="require", sslmode="require")


async def test_unencrypted_bytes_stuffed_after_s_fail_the_handshake(
    nursery: trio.Nursery, server_cert: trustme.LeafCert
) -> None:
    # CVE-2021-23222: a man in the middle appends plaintext after the "S".
    stuffing = b"Z\x00\x00\x00\x05I" * 4
    port = await serve(nursery, FakeServer(server_context(server_cert), trailing=stuffing))
    with pytest.raises(TLSError, match="TLS handshake failed"):
        await attempt(port, sslmode="require")


async def peer_answering(answer: bytes) -> trio.StapledStream[Any, Any]:
    """A client stream whose peer answers the SSLRequest with ``answer`` and hangs up."""
    client, server = trio.testing.memory_stream_pair()
    await server.send_all(answer)
    await server.send_stream.aclose()
    return client


async def test_error_response_to_ssl_request_is_reported_without_server_text() -> None:
    error = b"E" + struct.pack("!i", 23) + b"SFATAL\x00Mtrust me\x00\x00"
    stream = await peer_answering(error)
    params = conn_params(host="localhost", sslmode="require")
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionFailedError) as info:
        await negotiate(stream, params.hosts[0], params, encrypt="require")
    assert "error response during SSL exchange" in str(info.value)
    assert "trust me" not in str(info.value)


async def test_invalid_answer_to_ssl_request_is_protocol_error() -> None:
    stream = await peer_answering(b"HTTP/1.1 400 Bad Request\r\n")
    params = conn_params(host="localhost", sslmode="require")
    with trio.fail_after(TIMEOUT), pytest.raises(ProtocolError, match="b'H'"):
        await negotiate(stream, params.hosts[0], params, encrypt="require")


async def test_server_hanging_up_after_ssl_request_is_connection_failure() -> None:
    stream = await peer_answering(b"")
    params = conn_params(host="localhost", sslmode="require")
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionFailedError, match="closed"):
        await negotiate(stream, params.hosts[0], params, encrypt="require")


async def test_encrypt_never_leaves_stream_untouched() -> None:
    client, server = trio.testing.memory_stream_pair()
    params = conn_params(host="localhost")
    with trio.fail_after(TIMEOUT):
        channel = await negotiate(client, params.hosts[0], params, encrypt="never")
        await client.send_all(b"startup")
        assert await server.receive_some() == b"startup"  # no SSLRequest went first
    assert channel == SecureChannel(stream=client, encrypted=False, channel_binding=None)


async def test_unix_socket_host_is_never_encrypted(tmp_path: Path) -> None:
    # libpq never requests TLS over a local socket, whatever sslmode says.
    client, server = trio.testing.memory_stream_pair()
    params = conn_params(host=str(tmp_path), sslmode="require")
    with trio.fail_after(TIMEOUT):
        channel = await negotiate(client, params.hosts[0], params, encrypt="require")
        await client.send_all(b"startup")
        assert await server.receive_some() == b"startup"
    assert not channel.encrypted


# --- direct TLS (sslnegotiation=direct) -----------------------------------------------------


async def test_direct_negotiation_handshakes_at_once_with_alpn(
    nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    server = FakeServer(server_context(server_cert), direct=True)
    port = await serve(nursery, server)
    async with secure(
        port,
        sslmode="verify-full",
        sslrootcert=ca_file(tmp_path, ca),
        sslnegotiation="direct",
    ) as channel:
        assert channel.encrypted
        assert await read_hello(channel) == b"hello"
    assert server.seen["alpn"] == "postgresql"
    assert "request" not in server.seen


async def test_direct_negotiation_fails_when_server_selects_no_alpn(
    nursery: trio.Nursery, server_cert: trustme.LeafCert
) -> None:
    server = FakeServer(server_context(server_cert, alpn=False), direct=True)
    port = await serve(nursery, server)
    with pytest.raises(TLSError, match='without the ALPN protocol "postgresql"'):
        await attempt(port, sslmode="require", sslnegotiation="direct")


# --- client certificates ------------------------------------------------------------------


async def test_client_certificate_from_sslcert_and_sslkey_is_presented(
    nursery: trio.Nursery, tmp_path: Path, server_cert: trustme.LeafCert
) -> None:
    client_ca = trustme.CA()
    client = client_ca.issue_cert("app-user")
    server = FakeServer(server_context(server_cert, client_ca=client_ca))
    port = await serve(nursery, server)
    async with secure(
        port,
        sslmode="require",
        sslcert=write(tmp_path / "client.crt", client.cert_chain_pems[0].bytes()),
        sslkey=write(tmp_path / "client.key", client.private_key_pem.bytes()),
    ) as channel:
        assert await read_hello(channel) == b"hello"
    assert ("DNS", "app-user") in server.seen["client_cert"]["subjectAltName"]


async def test_default_client_certificate_in_home_is_presented(
    nursery: trio.Nursery, home: Path, server_cert: trustme.LeafCert
) -> None:
    client_ca = trustme.CA()
    client = client_ca.issue_cert("home-user")
    write(home / ".postgresql" / "postgresql.crt", client.cert_chain_pems[0].bytes())
    write(home / ".postgresql" / "postgresql.key", client.private_key_pem.bytes())
    server = FakeServer(server_context(server_cert, client_ca=client_ca))
    port = await serve(nursery, server)
    async with secure(port, sslmode="require") as channel:
        assert await read_hello(channel) == b"hello"
    assert ("DNS", "home-user") in server.seen["client_cert"]["subjectAltName"]


def encrypted_key(cert: trustme.LeafCert, passphrase: bytes) -> bytes:
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


async def test_encrypted_client_key_is_opened_with_sslpassword(
    nursery: trio.Nursery, tmp_path: Path, server_cert: trustme.LeafCert
) -> None:
    client_ca = trustme.CA()
    client = client_ca.issue_cert("app-user")
    server = FakeServer(server_context(server_cert, client_ca=client_ca))
    port = await serve(nursery, server)
    files: dict[str, Any] = {
        "sslcert": write(tmp_path / "client.crt", client.cert_chain_pems[0].bytes()),
        "sslkey": write(tmp_path / "client.key", encrypted_key(client, b"s3cret")),
    }
    async with secure(port, sslmode="require", sslpassword="s3cret", **files) as channel:
        assert await read_hello(channel) == b"hello"
    with pytest.raises(TLSError, match="the key is encrypted: set sslpassword"):
        build_ssl_context(conn_params(sslmode="require", **files))
    with pytest.raises(TLSError, match="the key is encrypted: check sslpassword"):
        build_ssl_context(conn_params(sslmode="require", sslpassword="wrong", **files))


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604])
def test_client_key_readable_by_others_is_refused(
    tmp_path: Path, ca: trustme.CA, mode: int
) -> None:
    client = ca.issue_cert("app-user")
    files = {
        "sslcert": write(tmp_path / "client.crt", client.cert_chain_pems[0].bytes()),
        "sslkey": write(tmp_path / "client.key", client.private_key_pem.bytes(), mode),
    }
    with pytest.raises(TLSError, match="has group or world access"):
        build_ssl_context(conn_params(sslmode="require", **files))


def test_client_certificate_without_its_key_says_to_set_sslkey(home: Path, ca: trustme.CA) -> None:
    client = ca.issue_cert("app-user")
    write(home / ".postgresql" / "postgresql.crt", client.cert_chain_pems[0].bytes())
    with pytest.raises(TLSError, match="set sslkey"):
        build_ssl_context(conn_params(sslmode="require"))


# --- protocol versions --------------------------------------------------------------------


async def handshake_sending_alert(stream: trio.SocketStream, context: ssl.SSLContext) -> None:
    """Server side of a handshake that, unlike trio.SSLStream, sends its fatal alert."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            await stream.send_all(outgoing.read())
            incoming.write(await stream.receive_some())
        except ssl.SSLError:
            await stream.send_all(outgoing.read())
            return
        else:
            return


async def test_no_common_tls_version_says_which_versions_were_allowed(
    nursery: trio.Nursery, server_cert: trustme.LeafCert
) -> None:
    context = server_context(server_cert, maximum_version=ssl.TLSVersion.TLSv1_2)

    async def handle(stream: trio.SocketStream) -> None:
        await receive_exactly(stream, len(SSL_REQUEST))
        await stream.send_all(b"S")
        await handshake_sending_alert(stream, context)

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    with pytest.raises(TLSError, match=re.escape("any TLS version from TLSv1.3")):
        await attempt(port, sslmode="require", ssl_min_protocol_version="TLSv1.3")


async def test_server_closing_during_handshake_is_reported(nursery: trio.Nursery) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        await receive_exactly(stream, len(SSL_REQUEST))
        await stream.send_all(b"S")
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    with pytest.raises(TLSError, match="the server closed the connection"):
        await attempt(port, sslmode="require")


def test_protocol_version_bounds_reach_the_context() -> None:
    params = conn_params(ssl_min_protocol_version="TLSv1.2", ssl_max_protocol_version="TLSv1.3")
    context = build_ssl_context(params)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert context.check_hostname is False


# --- custom contexts and upgrade functions -----------------------------------------------


async def test_custom_ssl_context_is_used_instead_of_parameters(
    nursery: trio.Nursery, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    # verify-full without any root file would fail if the parameters were used.
    async with secure(port, sslmode="verify-full", ssl_context=context) as channel:
        assert await read_hello(channel) == b"hello"
    # The context's own host name check applies.
    with pytest.raises(TLSError, match="ssl_context passed in does not trust"):
        await attempt(port, host="elsewhere", sslmode="verify-full", ssl_context=context)


async def test_upgrade_function_receives_raw_stream_after_s(
    nursery: trio.Nursery, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    upgraded: list[trio.abc.Stream] = []

    async def upgrade(raw: trio.abc.Stream) -> trio.abc.Stream:
        assert isinstance(raw, trio.SocketStream)
        tls = trio.SSLStream(raw, context, server_hostname="localhost")
        upgraded.append(tls)
        return tls

    async with secure(port, sslmode="require", ssl_context=upgrade) as channel:
        assert channel.stream is upgraded[0]
        assert channel.encrypted
        assert channel.channel_binding == (
            "tls-server-end-point",
            hashlib.sha256(der(server_cert)).digest(),
        )
        assert await read_hello(channel) == b"hello"


# --- channel binding ------------------------------------------------------------------------


async def test_channel_binding_is_sha256_of_server_certificate(
    nursery: trio.Nursery, server_cert: trustme.LeafCert
) -> None:
    port = await serve(nursery, FakeServer(server_context(server_cert)))
    async with secure(port, sslmode="require") as channel:
        assert channel.channel_binding == (
            "tls-server-end-point",
            hashlib.sha256(der(server_cert)).digest(),
        )


def self_signed(key: Any, algorithm: Any, rsa_padding: Any = None) -> tuple[bytes, bytes]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm, rsa_padding=rsa_padding)
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def pss(algorithm: hashes.HashAlgorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)


@pytest.mark.parametrize(
    ("make", "digest"),
    [
        (lambda: self_signed(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384()), "sha384"),
        (
            lambda: self_signed(
                rsa.generate_private_key(65537, 2048), hashes.SHA512(), pss(hashes.SHA512())
            ),
            "sha512",
        ),
        (lambda: self_signed(rsa.generate_private_key(65537, 2048), hashes.SHA224()), "sha224"),
        (lambda: self_signed(ed25519.Ed25519PrivateKey.generate(), None), None),
    ],
    ids=["ecdsa-sha384", "rsa-pss-sha512", "rsa-sha224", "ed25519-no-hash"],
)
async def test_channel_binding_uses_certificate_signature_hash(
    nursery: trio.Nursery, make: Callable[[], tuple[bytes, bytes]], digest: str | None
) -> None:
    pem_cert, pem_key = make()
    port = await serve(nursery, FakeServer(server_context((pem_cert, pem_key))))
    async with secure(port, sslmode="require") as channel:
        assert channel.encrypted
        if digest is None:
            assert channel.channel_binding is None
        else:
            data = ssl.PEM_cert_to_DER_cert(pem_cert.decode())
            expected = hashlib.new(digest, data).digest()
            assert channel.channel_binding == ("tls-server-end-point", expected)
