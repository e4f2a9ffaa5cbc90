"""Shared fixtures: connections to the session's throwaway server.

Tests that do I/O wrap their body in ``with trio.fail_after(TEST_TIMEOUT)``.

The servers themselves come from the ``trio_pg`` pytest plugin
(:mod:`trio_pg.testing.plugin`): ``postgres_server`` and ``postgres_tls_server``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import trio_pg
from trio_pg.testing import PostgresServer

#: Every test that does I/O finishes within this many seconds or fails.
TEST_TIMEOUT = 60


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
