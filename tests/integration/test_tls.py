"""TLS against a real server: every sslmode with a trusted and an untrusted CA, host name
checks, direct TLS negotiation, hostssl/hostnossl rules, and caller-supplied TLS.

Whether a session is encrypted is asked of the server (``pg_stat_ssl``), never inferred
from the client. The server's certificate (from ``trustme_ca``) names ``localhost`` and
``127.0.0.1``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import pytest
import trio
import trustme

import trio_pg
from tests.conftest import ENCRYPTED_SQL, TEST_TIMEOUT
from trio_pg.testing import PostgresServer
from trio_pg.tls import UpgradeFn

pytestmark = pytest.mark.usefixtures("isolated_environment")


@pytest.fixture(scope="module")
def ca_file(postgres_tls_server: PostgresServer) -> str:
    """The PEM file of the CA that signed the server's certificate."""
    assert postgres_tls_server.tls is not None
    assert postgres_tls_server.tls.ca_file is not None
    return str(postgres_tls_server.tls.ca_file)


@pytest.fixture(scope="module")
def wrong_ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The PEM file of a CA that has nothing to do with the server's certificate."""
    path = tmp_path_factory.mktemp("wrong_ca") / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def _params(server: PostgresServer, user: str = "u_scram", **overrides: str) -> dict[str, str]:
    """Keyword parameters for ``user`` over TCP with the user's own password."""
    params = server.connect_params(user=user)
    if server.users[user].password is not None:
        params["password"] = f"{user}-pw"
    params.update(overrides)
    return params


async def _is_encrypted(
    params: Mapping[str, str], ssl_context: ssl.SSLContext | UpgradeFn | None = None
) -> bool:
    """Connect, and return whether the server says the session is encrypted."""
    async with trio_pg.open_connection(
        ssl_context=ssl_context, connect_timeout=TEST_TIMEOUT, **params
    ) as conn:
        encrypted = await conn.fetchval(ENCRYPTED_SQL)
        assert isinstance(encrypted, bool)
        return encrypted


# -- sslmode with the right root certificate ----------------------------------------------


@pytest.mark.parametrize(
    ("sslmode", "encrypted"),
    [
        ("disable", False),
        ("allow", False),  # plain first; the "host" rule accepts it, so no TLS retry
        ("prefer", True),
        ("require", True),
        ("verify-ca", True),
        ("verify-full", True),
    ],
)
async def test_sslmode_with_trusted_root_certificate_connects(
    postgres_tls_server: PostgresServer, ca_file: str, sslmode: str, encrypted: bool
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, sslmode=sslmode, sslrootcert=ca_file)
        assert await _is_encrypted(params) is encrypted


async def test_verify_full_accepts_localhost_name_in_certificate(
    postgres_tls_server: PostgresServer, ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(
            postgres_tls_server,
            host="localhost",
            hostaddr="127.0.0.1",
            sslmode="verify-full",
            sslrootcert=ca_file,
        )
        assert await _is_encrypted(params) is True


# -- sslmode with an untrusted root certificate -------------------------------------------


async def test_prefer_falls_back_to_plaintext_when_certificate_is_not_trusted(
    postgres_tls_server: PostgresServer, wrong_ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, sslmode="prefer", sslrootcert=wrong_ca_file)
        assert await _is_encrypted(params) is False


async def test_require_without_root_certificate_encrypts_without_verifying(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # No sslrootcert and no ~/.postgresql/root.crt: nothing to verify against.
        params = _params(postgres_tls_server, sslmode="require")
        assert await _is_encrypted(params) is True


async def test_require_with_untrusted_root_certificate_file_verifies_and_fails(
    postgres_tls_server: PostgresServer, wrong_ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # libpq-ssl.html: with a root certificate file, require behaves like verify-ca.
        params = _params(postgres_tls_server, sslmode="require", sslrootcert=wrong_ca_file)
        with pytest.raises(trio_pg.TLSError) as info:
            await _is_encrypted(params)
        message = str(info.value)
        assert "certificate verification failed" in message
        assert "sslrootcert" in message


@pytest.mark.parametrize("sslmode", ["verify-ca", "verify-full"])
async def test_verify_mode_with_untrusted_root_certificate_fails_with_helpful_error(
    postgres_tls_server: PostgresServer, wrong_ca_file: str, sslmode: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, sslmode=sslmode, sslrootcert=wrong_ca_file)
        with pytest.raises(trio_pg.TLSError) as info:
            await _is_encrypted(params)
        message = str(info.value)
        assert "certificate verification failed" in message
        assert f"sslmode={sslmode}" in message
        assert "set sslrootcert to the CA that signed the server's certificate" in message


@pytest.mark.parametrize("sslmode", ["verify-ca", "verify-full"])
async def test_verify_mode_without_root_certificate_fails_and_names_sslrootcert(
    postgres_tls_server: PostgresServer, sslmode: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, sslmode=sslmode)
        with pytest.raises(trio_pg.TLSError, match="sslrootcert"):
            await _is_encrypted(params)


# -- host name verification ---------------------------------------------------------------


async def test_verify_full_rejects_certificate_for_another_host_name(
    postgres_tls_server: PostgresServer, ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # Reach the server at its address, but under a name the certificate lacks.
        params = _params(
            postgres_tls_server,
            host="wrong.example",
            hostaddr="127.0.0.1",
            sslmode="verify-full",
            sslrootcert=ca_file,
        )
        with pytest.raises(trio_pg.TLSError) as info:
            await _is_encrypted(params)
        message = str(info.value)
        assert 'does not match host name "wrong.example"' in message
        assert "verify-ca" in message  # says what the user can do instead


async def test_verify_ca_accepts_certificate_for_another_host_name(
    postgres_tls_server: PostgresServer, ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(
            postgres_tls_server,
            host="wrong.example",
            hostaddr="127.0.0.1",
            sslmode="verify-ca",
            sslrootcert=ca_file,
        )
        assert await _is_encrypted(params) is True


# -- direct TLS negotiation (PostgreSQL 17+) ----------------------------------------------


async def test_direct_tls_negotiation_works_from_postgresql_17_and_fails_clearly_before(
    postgres_tls_server: PostgresServer, ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(
            postgres_tls_server,
            sslmode="verify-full",
            sslrootcert=ca_file,
            sslnegotiation="direct",
        )
        if postgres_tls_server.version >= (17, 0):
            async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
                assert await conn.fetchval(ENCRYPTED_SQL) is True
                assert conn.server_version >= (17,)
        else:
            with pytest.raises(trio_pg.TLSError) as info:
                await _is_encrypted(params)
            assert "sslnegotiation=postgres" in str(info.value)


async def test_direct_tls_negotiation_requires_a_strong_sslmode(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, sslmode="prefer", sslnegotiation="direct")
        with pytest.raises(trio_pg.InterfaceError, match="sslnegotiation=direct"):
            await _is_encrypted(params)


# -- hostssl and hostnossl rules ----------------------------------------------------------


async def test_hostssl_user_is_refused_by_the_server_with_sslmode_disable(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_hostssl", sslmode="disable")
        with pytest.raises(trio_pg.errors.InvalidAuthorizationSpecificationError) as info:
            await _is_encrypted(params)
        assert "no pg_hba.conf entry" in info.value.message
        assert "u_hostssl" in info.value.message


async def test_hostssl_user_connects_with_sslmode_allow_by_retrying_with_tls(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_hostssl", sslmode="allow")
        assert await _is_encrypted(params) is True


async def test_hostnossl_user_is_refused_by_the_server_with_sslmode_require(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_hostnossl", sslmode="require")
        with pytest.raises(trio_pg.errors.InvalidAuthorizationSpecificationError) as info:
            await _is_encrypted(params)
        assert "no pg_hba.conf entry" in info.value.message


async def test_hostnossl_user_connects_with_sslmode_prefer_by_retrying_without_tls(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        # libpq: under prefer, a server error on the TLS connection is retried in plain.
        params = _params(postgres_tls_server, "u_hostnossl", sslmode="prefer")
        assert await _is_encrypted(params) is False


# -- TLS set up by the caller -------------------------------------------------------------


async def test_custom_ssl_context_trusting_the_ca_is_used(
    postgres_tls_server: PostgresServer, ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        context = ssl.create_default_context(cafile=ca_file)  # checks the host name too
        params = _params(postgres_tls_server, channel_binding="require")
        assert await _is_encrypted(params, context) is True


async def test_custom_ssl_context_that_does_not_trust_the_server_fails_with_hint(
    postgres_tls_server: PostgresServer, wrong_ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        context = ssl.create_default_context(cafile=wrong_ca_file)
        params = _params(postgres_tls_server)
        with pytest.raises(trio_pg.TLSError, match="the ssl_context passed in"):
            await _is_encrypted(params, context)


async def test_async_upgrade_callable_secures_the_stream(
    postgres_tls_server: PostgresServer, ca_file: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        context = ssl.create_default_context(cafile=ca_file)
        upgraded: list[trio.SSLStream[trio.abc.Stream]] = []

        async def upgrade(stream: trio.abc.Stream) -> trio.abc.Stream:
            tls = trio.SSLStream(stream, context, server_hostname="localhost")
            upgraded.append(tls)
            return tls  # trio_pg runs the handshake of a trio.SSLStream it is handed

        params = _params(postgres_tls_server, channel_binding="require")
        assert await _is_encrypted(params, upgrade) is True
        assert len(upgraded) == 1
