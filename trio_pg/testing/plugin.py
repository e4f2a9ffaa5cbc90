"""pytest fixtures for throwaway PostgreSQL servers (registered as the ``trio_pg`` plugin).

This module is loaded into every pytest run of anyone who installs trio_pg, so it
imports only pytest and the standard-library-only parts of :mod:`trio_pg.testing`;
trustme (a test dependency) is imported inside the fixtures that need it.

Fixtures, all session-scoped (servers are started on first use):

- ``postgres_server``: a plain cluster, TLS off, superuser ``postgres`` trusted.
- ``trustme_ca``: the test certificate authority (``trustme.CA``).
- ``postgres_tls_server``: TLS on, certificate for ``localhost`` and ``127.0.0.1`` from
  ``trustme_ca``, client certificates verified against it, and one user per auth
  method (see :data:`TLS_USERS`); ``server.tls.ca_file`` is the CA's PEM file.
- ``postgres_client_cert``: a ``trustme.LeafCert`` with common name ``u_cert``, which
  the ``cert`` rule of ``postgres_tls_server`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import pytest

from trio_pg.testing.cluster import PostgresServer
from trio_pg.testing.config import TLSFiles, User

if TYPE_CHECKING:
    import trustme

__all__ = [
    "TLS_USERS",
    "postgres_client_cert",
    "postgres_server",
    "postgres_tls_server",
    "trustme_ca",
]

#: Users of ``postgres_tls_server``: every auth method over TCP, plus the TLS-only,
#: non-TLS-only and unix-socket connection types. Each password is ``<name>-pw``.
TLS_USERS: Final[tuple[User, ...]] = (
    User("u_trust", method="trust"),
    User("u_password", "u_password-pw", method="password"),
    User("u_md5", "u_md5-pw", method="md5"),
    User("u_scram", "u_scram-pw", method="scram-sha-256"),
    User("u_cert", method="cert", connection="hostssl"),
    User("u_hostssl", "u_hostssl-pw", connection="hostssl"),
    User("u_hostnossl", "u_hostnossl-pw", connection="hostnossl"),
    User("u_local", "u_local-pw", connection="local"),
    User("u_reject", "u_reject-pw", method="reject"),
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running plain PostgreSQL server (TLS off) shared by the whole session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def trustme_ca() -> trustme.CA:
    """The certificate authority that signs the TLS server's and clients' certificates."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def postgres_tls_server(
    trustme_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresServer]:
    """A running PostgreSQL server with TLS and the users in :data:`TLS_USERS`."""
    directory = tmp_path_factory.mktemp("trio_pg_tls")
    server_cert = trustme_ca.issue_cert("localhost", "127.0.0.1")
    tls = TLSFiles(
        cert_file=directory / "server.crt",
        key_file=directory / "server.key",
        ca_file=directory / "ca.pem",
    )
    server_cert.cert_chain_pems[0].write_to_path(str(tls.cert_file))
    server_cert.private_key_pem.write_to_path(str(tls.key_file))
    trustme_ca.cert_pem.write_to_path(str(tls.ca_file))
    with PostgresServer(tls=tls, users=TLS_USERS) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_client_cert(trustme_ca: trustme.CA) -> trustme.LeafCert:
    """A client certificate for user ``u_cert`` (its common name), signed by the CA."""
    return trustme_ca.issue_cert(common_name="u_cert")
