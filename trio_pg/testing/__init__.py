"""Throwaway PostgreSQL clusters for tests and examples.

``trio_pg.testing`` starts a private PostgreSQL server from binaries found on this
machine (see :func:`find_binaries`): in a temporary directory, on a free port of
127.0.0.1 and a unix socket, with optional TLS and per-user authentication rules. It
runs the server as an unprivileged OS user when started by root.

Synchronously (pytest session fixtures)::

    with PostgresServer(settings={"max_connections": "200"}) as server:
        dsn = server.dsn()

From Trio code::

    async with open_postgres() as server:
        async with trio_pg.open_connection(server.dsn()) as conn: ...

The pytest plugin (:mod:`trio_pg.testing.plugin`, registered as an entry point) provides
the ``postgres_server``, ``postgres_tls_server``, ``trustme_ca`` and
``postgres_client_cert`` fixtures.
"""

from __future__ import annotations

from trio_pg.testing.binaries import (
    PostgresBinaries,
    PostgresNotFoundError,
    find_binaries,
    inspect_bindir,
)
from trio_pg.testing.cluster import PostgresServer, ServerStartError, open_postgres
from trio_pg.testing.config import AuthMethod, ConnectionType, TLSFiles, User

__all__ = [
    "AuthMethod",
    "ConnectionType",
    "PostgresBinaries",
    "PostgresNotFoundError",
    "PostgresServer",
    "ServerStartError",
    "TLSFiles",
    "User",
    "find_binaries",
    "inspect_bindir",
    "open_postgres",
]
