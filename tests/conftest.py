"""Shared fixtures: connections to the session's throwaway server.

Tests that do I/O wrap their body in ``with trio.fail_after(TEST_TIMEOUT)``.

The servers themselves come from the ``trio_pg`` pytest plugin
(:mod:`trio_pg.testing.plugin`): ``postgres_server`` and ``postgres_tls_server``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

import trio_pg
from trio_pg.testing import PostgresServer

#: Every test that does I/O finishes within this many seconds or fails.
TEST_TIMEOUT = 60

#: True when the session runs over TLS (pg_stat_ssl), for tests of encryption.
ENCRYPTED_SQL = "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()"


@pytest.fixture
def isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No PG* variable, ~/.pgpass or ~/.postgresql of the machine may change the outcome."""
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
async def conn(postgres_server: PostgresServer) -> AsyncIterator[trio_pg.Connection]:
    """A fresh connection to the plain server, closed after the test."""
    async with trio_pg.open_connection(postgres_server.dsn(), connect_timeout=TEST_TIMEOUT) as c:
        yield c


@pytest.fixture
async def other_conn(postgres_server: PostgresServer) -> AsyncIterator[trio_pg.Connection]:
    """A second connection, for observing the first from outside."""
    async with trio_pg.open_connection(postgres_server.dsn(), connect_timeout=TEST_TIMEOUT) as c:
        yield c
