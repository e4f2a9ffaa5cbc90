"""Authentication against a real server: every method, where passwords come from, and the
client-side policies (``channel_binding``, ``require_auth``) that act before a secret leaves.

The users come from ``postgres_tls_server`` (``trio_pg.testing.plugin.TLS_USERS``): one per
auth method, each password ``"<name>-pw"``. Tests that are about the method, not about
TLS, use ``sslmode=disable`` so the exchange is the plain one.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

import pytest
import trio
import trustme

import trio_pg
from tests.conftest import ENCRYPTED_SQL, TEST_TIMEOUT
from trio_pg.testing import PostgresServer
from trio_pg.tls import UpgradeFn

pytestmark = pytest.mark.usefixtures("isolated_environment")


def _params(server: PostgresServer, user: str, **overrides: str) -> dict[str, str]:
    """Keyword parameters for ``user`` over plain TCP, with the user's own password."""
    params = server.connect_params(user=user, sslmode="disable")
    if server.users[user].password is not None:
        params["password"] = f"{user}-pw"
    params.update(overrides)
    return params


def _ca_file(server: PostgresServer) -> str:
    """The PEM file of the CA that signed the TLS server's certificate."""
    assert server.tls is not None
    assert server.tls.ca_file is not None
    return str(server.tls.ca_file)


async def _connect_and_describe(params: Mapping[str, str]) -> tuple[str, bool]:
    """Connect, and return the session's user and whether the connection is encrypted."""
    async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
        user = await conn.fetchval("SELECT current_user::text")
        encrypted = await conn.fetchval(ENCRYPTED_SQL)
        return user, encrypted


class _RecordingStream(trio.abc.Stream):
    """A TLS stream that keeps a copy of every plaintext byte the client sends.

    It forwards ``getpeercert`` so trio_pg still derives the channel-binding data.
    """

    def __init__(self, tls: trio.SSLStream[trio.abc.Stream]) -> None:
        self._tls = tls
        self.sent = bytearray()

    def getpeercert(self, binary_form: bool = False) -> object:
        return self._tls.getpeercert(binary_form)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += data
        await self._tls.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._tls.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._tls.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._tls.aclose()


def _recording_upgrade(ca_file: str, recorded: list[_RecordingStream]) -> UpgradeFn:
    """An ``ssl_context=`` upgrade callable that records what goes through each stream."""
    context = ssl.create_default_context(cafile=ca_file)

    async def upgrade(stream: trio.abc.Stream) -> trio.abc.Stream:
        tls = trio.SSLStream(stream, context, server_hostname="127.0.0.1")
        await tls.do_handshake()
        recording = _RecordingStream(tls)
        recorded.append(recording)
        return recording

    return upgrade


# -- each method over plain TCP -----------------------------------------------------------
# require_auth makes each test fail if the server used any method but the one named.


async def test_trust_user_connects_without_a_password(postgres_tls_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_trust", require_auth="none")
        assert await _connect_and_describe(params) == ("u_trust", False)


async def test_cleartext_password_user_connects(postgres_tls_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_password", require_auth="password")
        assert await _connect_and_describe(params) == ("u_password", False)


async def test_md5_user_connects(postgres_tls_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_md5", require_auth="md5")
        assert await _connect_and_describe(params) == ("u_md5", False)


async def test_scram_user_connects_over_plain_tcp_without_channel_binding(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_scram", require_auth="scram-sha-256")
        assert await _connect_and_describe(params) == ("u_scram", False)


async def test_unix_socket_connects_with_scram(postgres_tls_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        params = _params(server, "u_local", host=server.socket_dir, require_auth="scram-sha-256")
        params["sslmode"] = "require"  # ignored on a socket, as libpq does
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
            assert conn.host.is_unix
            # A socket connection has no client address; the "local" rule let it in.
            assert await conn.fetchval("SELECT inet_client_addr() IS NULL") is True
            assert await conn.fetchval(ENCRYPTED_SQL) is False
            assert await conn.fetchval("SELECT current_user::text") == "u_local"


# -- SCRAM-SHA-256-PLUS and client certificates over TLS ----------------------------------


async def test_scram_over_tls_uses_channel_binding_by_default(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        recorded: list[_RecordingStream] = []
        params = _params(server, "u_scram")
        del params["sslmode"]
        async with trio_pg.open_connection(
            ssl_context=_recording_upgrade(_ca_file(server), recorded),
            connect_timeout=TEST_TIMEOUT,
            **params,
        ) as conn:
            assert await conn.fetchval(ENCRYPTED_SQL) is True
        # The SASLInitialResponse named the -PLUS mechanism and carried the binding flag
        # "p=tls-server-end-point" (RFC 5802 gs2-header), with the default channel_binding.
        sent = bytes(recorded[0].sent)
        assert b"SCRAM-SHA-256-PLUS\x00" in sent
        assert b"p=tls-server-end-point,," in sent


async def test_channel_binding_require_succeeds_over_tls_with_scram_user(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        params = _params(
            server,
            "u_scram",
            sslmode="verify-full",
            sslrootcert=_ca_file(server),
            channel_binding="require",
        )
        assert await _connect_and_describe(params) == ("u_scram", True)


async def test_channel_binding_require_fails_without_tls(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_scram", channel_binding="require")
        with pytest.raises(trio_pg.AuthenticationError, match="not encrypted"):
            await _connect_and_describe(params)


@pytest.mark.parametrize("user", ["u_password", "u_md5", "u_trust"])
async def test_channel_binding_require_refuses_non_scram_user_over_tls(
    postgres_tls_server: PostgresServer, user: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        params = _params(
            server,
            user,
            sslmode="verify-full",
            sslrootcert=_ca_file(server),
            channel_binding="require",
        )
        with pytest.raises(trio_pg.AuthenticationError, match="channel_binding=require"):
            await _connect_and_describe(params)


async def test_cert_auth_accepts_client_certificate(
    postgres_tls_server: PostgresServer,
    postgres_client_cert: trustme.LeafCert,
    tmp_path: Path,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        cert, key = tmp_path / "client.crt", tmp_path / "client.key"
        postgres_client_cert.cert_chain_pems[0].write_to_path(str(cert))
        postgres_client_cert.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        params = _params(
            server,
            "u_cert",
            sslmode="verify-full",
            sslrootcert=_ca_file(server),
            sslcert=str(cert),
            sslkey=str(key),
        )
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
            assert await conn.fetchval("SELECT current_user::text") == "u_cert"
            row = await conn.fetchrow(
                "SELECT ssl, client_dn FROM pg_catalog.pg_stat_ssl "
                "WHERE pid = pg_catalog.pg_backend_pid()"
            )
            assert row is not None
            assert row["ssl"] is True
            assert "CN=u_cert" in row["client_dn"]


async def test_cert_auth_without_client_certificate_is_refused_by_the_server(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        params = _params(server, "u_cert", sslmode="verify-full", sslrootcert=_ca_file(server))
        with pytest.raises(trio_pg.errors.InvalidAuthorizationSpecificationError) as info:
            await _connect_and_describe(params)
        assert "certificate" in info.value.message


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["u_password", "u_md5", "u_scram"])
async def test_wrong_password_raises_invalid_password_error(
    postgres_tls_server: PostgresServer, user: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, user, password="not-the-password")
        # pytest.raises matches the exact class tree: an exception group would not match.
        with pytest.raises(trio_pg.InvalidPasswordError) as info:
            await _connect_and_describe(params)
        error = info.value
        assert isinstance(error, trio_pg.PostgresError)
        assert error.sqlstate == "28P01"
        assert user in error.message


async def test_missing_password_raises_authentication_error_that_says_how_to_give_one(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_scram")
        del params["password"]
        with pytest.raises(trio_pg.AuthenticationError) as info:
            await _connect_and_describe(params)
        message = str(info.value)
        assert "no password was given" in message
        assert "password=" in message
        assert "PGPASSWORD" in message


async def test_reject_rule_raises_invalid_authorization_specification(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_reject")
        with pytest.raises(trio_pg.errors.InvalidAuthorizationSpecificationError) as info:
            await _connect_and_describe(params)
        assert info.value.sqlstate == "28000"
        assert "pg_hba.conf rejects connection" in info.value.message


# -- the password file --------------------------------------------------------------------


def _write_passfile(path: Path, server: PostgresServer, user: str, mode: int) -> None:
    path.write_text(
        "# host:port:database:user:password\n"
        f"{server.host}:{server.port}:postgres:someone_else:wrong\n"
        f"{server.host}:{server.port}:*:{user}:{user}-pw\n"
    )
    path.chmod(mode)


async def test_password_comes_from_passfile(
    postgres_tls_server: PostgresServer, tmp_path: Path
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        passfile = tmp_path / "pgpass"
        _write_passfile(passfile, postgres_tls_server, "u_scram", 0o600)
        params = _params(postgres_tls_server, "u_scram", passfile=str(passfile))
        del params["password"]
        assert await _connect_and_describe(params) == ("u_scram", False)


async def test_group_readable_passfile_is_ignored_with_a_warning(
    postgres_tls_server: PostgresServer, tmp_path: Path
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        passfile = tmp_path / "pgpass"
        _write_passfile(passfile, postgres_tls_server, "u_scram", 0o640)
        params = _params(postgres_tls_server, "u_scram", passfile=str(passfile))
        del params["password"]
        with (
            pytest.warns(UserWarning, match="group or others can access it"),
            pytest.raises(trio_pg.AuthenticationError, match="no password was given"),
        ):
            await _connect_and_describe(params)


# -- require_auth -------------------------------------------------------------------------


async def test_require_auth_scram_refuses_cleartext_user_before_sending_the_password(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        server = postgres_tls_server
        recorded: list[_RecordingStream] = []
        params = _params(server, "u_password", require_auth="scram-sha-256")
        del params["sslmode"]
        # Over TLS with a recording stream, to see every byte the client sent.
        with pytest.raises(trio_pg.AuthenticationError) as info:
            async with trio_pg.open_connection(
                ssl_context=_recording_upgrade(_ca_file(server), recorded),
                connect_timeout=TEST_TIMEOUT,
                **params,
            ):
                pass
        assert "cleartext password" in str(info.value)
        assert "require_auth" in str(info.value)
        assert recorded, "the TLS upgrade never ran"
        assert all(b"u_password-pw" not in r.sent for r in recorded)


async def test_require_auth_not_password_refuses_cleartext_user(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_password", require_auth="!password")
        with pytest.raises(trio_pg.AuthenticationError, match="require_auth does not allow"):
            await _connect_and_describe(params)


async def test_require_auth_not_password_accepts_scram_user(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_scram", require_auth="!password")
        assert await _connect_and_describe(params) == ("u_scram", False)


async def test_require_auth_password_accepts_cleartext_user(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_password", require_auth="password")
        assert await _connect_and_describe(params) == ("u_password", False)


async def test_require_auth_none_refuses_scram_user(postgres_tls_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_scram", require_auth="none")
        with pytest.raises(trio_pg.AuthenticationError, match="SASL"):
            await _connect_and_describe(params)


async def test_require_auth_none_accepts_trust_user(postgres_tls_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_trust", require_auth="none")
        assert await _connect_and_describe(params) == ("u_trust", False)


async def test_require_auth_password_refuses_trust_user(
    postgres_tls_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = _params(postgres_tls_server, "u_trust", require_auth="password")
        with pytest.raises(trio_pg.AuthenticationError, match="without a password"):
            await _connect_and_describe(params)
