"""Connecting to a real server: hosts and failover, target_session_attrs, connect_timeout,
load balancing, settings sent at startup, and the protocol version with its cancel key.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from trio_pg.testing import PostgresServer

pytestmark = pytest.mark.usefixtures("isolated_environment")


def _unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _silent(stream: trio.SocketStream) -> None:
    """A 'server' that accepts and never says a word."""
    async with stream:
        await trio.sleep_forever()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """The port of a listener that accepts connections and never answers."""
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            functools.partial(trio.serve_tcp, _silent, 0, host="127.0.0.1")
        )
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def _wait_until_idle(observer: trio_pg.Connection, pid: int) -> None:
    """Poll pg_stat_activity until backend ``pid`` runs nothing (bounded by the caller)."""
    while True:
        state = await observer.fetchval(
            "SELECT state FROM pg_stat_activity WHERE pid = $1::int4", pid
        )
        if state == "idle":
            return
        await trio.sleep(0.02)


async def _wait_until_gone(observer: trio_pg.Connection, application_name: str) -> None:
    """Poll pg_stat_activity until no backend has ``application_name`` (bounded by the caller)."""
    while True:
        count = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
        if count == 0:
            return
        await trio.sleep(0.02)


# -- failures to connect ------------------------------------------------------------------


async def test_unused_port_raises_connection_failed_error() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        port = _unused_port()
        with pytest.raises(trio_pg.ConnectionFailedError) as info:
            async with trio_pg.open_connection(host="127.0.0.1", port=port, user="postgres"):
                pass
        assert str(port) in str(info.value)
        assert isinstance(info.value.__cause__, OSError)


async def test_first_host_dead_second_host_connects(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        dead = _unused_port()
        params = postgres_server.connect_params(
            host="127.0.0.1,127.0.0.1", port=f"{dead},{postgres_server.port}"
        )
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
            assert conn.host.port == postgres_server.port
            assert await conn.fetchval("SELECT 1") == 1


async def test_all_hosts_dead_lists_every_host_in_the_error() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        first, second = _unused_port(), _unused_port()
        with pytest.raises(trio_pg.ConnectionFailedError) as info:
            async with trio_pg.open_connection(
                host="127.0.0.1,127.0.0.1", port=f"{first},{second}", user="postgres"
            ):
                pass
        message = str(info.value)
        assert f"127.0.0.1:{first}" in message
        assert f"127.0.0.1:{second}" in message


async def test_connect_timeout_bounds_an_attempt_against_a_silent_server(
    silent_port: int,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        start = trio.current_time()
        with pytest.raises(trio_pg.ConnectionFailedError, match="connect_timeout"):
            async with trio_pg.open_connection(
                host="127.0.0.1", port=silent_port, user="postgres", connect_timeout=0.5
            ):
                pass
        elapsed = trio.current_time() - start
        assert 0.5 <= elapsed < TEST_TIMEOUT / 2


async def test_connect_timeout_moves_on_from_a_silent_host_to_the_next(
    silent_port: int, postgres_server: PostgresServer
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(
            host="127.0.0.1,127.0.0.1", port=f"{silent_port},{postgres_server.port}"
        )
        async with trio_pg.open_connection(connect_timeout=0.5, **params) as conn:
            assert conn.host.port == postgres_server.port


async def test_unknown_keyword_raises_interface_error(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        with pytest.raises(trio_pg.InterfaceError, match="no_such_option"):
            async with trio_pg.open_connection(postgres_server.dsn(), no_such_option="1"):
                pass
        with pytest.raises(trio_pg.InterfaceError, match="no_such_option"):
            async with trio_pg.open_connection(postgres_server.dsn() + " no_such_option=1"):
                pass


async def test_missing_database_is_raised_by_the_await_of_connect(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        dsn = postgres_server.dsn(dbname="no_such_database")
        async with trio.open_nursery() as nursery:
            with pytest.raises(trio_pg.errors.InvalidCatalogNameError) as info:
                await trio_pg.connect(nursery, dsn, connect_timeout=TEST_TIMEOUT)
            assert "no_such_database" in info.value.message
        with pytest.raises(trio_pg.errors.InvalidCatalogNameError):
            async with trio_pg.open_connection(dsn, connect_timeout=TEST_TIMEOUT):
                pass


async def test_connect_in_callers_nursery_gives_a_working_connection(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            conn = await trio_pg.connect(
                nursery, postgres_server.dsn(), connect_timeout=TEST_TIMEOUT
            )
            try:
                assert await conn.fetchval("SELECT 40 + $1::int4", 2) == 42
            finally:
                await conn.aclose()
            assert conn.is_closed


# -- target_session_attrs -----------------------------------------------------------------


@pytest.mark.parametrize("attrs", ["any", "read-write", "primary", "prefer-standby"])
async def test_target_session_attrs_met_by_a_writable_primary(
    postgres_server: PostgresServer, attrs: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(target_session_attrs=attrs)
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
            assert await conn.fetchval("SELECT pg_catalog.pg_is_in_recovery()") is False


@pytest.mark.parametrize(("attrs", "reason"), [("standby", "primary"), ("read-only", "read-write")])
async def test_target_session_attrs_unmet_raises_connection_failed_naming_the_host(
    postgres_server: PostgresServer, attrs: str, reason: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(target_session_attrs=attrs)
        with pytest.raises(trio_pg.ConnectionFailedError) as info:
            async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params):
                pass
        message = str(info.value)
        assert f"127.0.0.1:{postgres_server.port}" in message
        assert reason in message


async def test_target_session_attrs_unmet_closes_the_rejected_session(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(
            target_session_attrs="standby", application_name="rejected-session"
        )
        with pytest.raises(trio_pg.ConnectionFailedError):
            # A grace longer than the test: closing must not need to wait it out.
            async with trio_pg.open_connection(
                cleanup_grace=TEST_TIMEOUT, connect_timeout=TEST_TIMEOUT, **params
            ):
                pass
        # The session was ended (Terminate, stream closed), not left open on the server.
        with trio.fail_after(10):
            await _wait_until_gone(other_conn, "rejected-session")


async def test_target_session_attrs_read_only_met_by_a_read_only_session(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(
            target_session_attrs="read-only", options="-c default_transaction_read_only=on"
        )
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
            assert await conn.fetchval("SHOW transaction_read_only") == "on"


# -- load balancing -----------------------------------------------------------------------


async def _ports_reached(hosts_params: dict[str, str], tries: int) -> set[int]:
    reached: set[int] = set()
    for _ in range(tries):
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **hosts_params) as conn:
            reached.add(int(await conn.fetchval("SHOW port")))
    return reached


async def test_load_balance_hosts_random_spreads_connections_over_good_hosts(
    postgres_server: PostgresServer, postgres_tls_server: PostgresServer
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ports = {postgres_server.port, postgres_tls_server.port}
        params = postgres_server.connect_params(
            host="127.0.0.1,127.0.0.1",
            port=f"{postgres_server.port},{postgres_tls_server.port}",
            sslmode="disable",
            load_balance_hosts="random",
        )
        # Both hosts are reached, except with probability 2 * 2**-40.
        assert await _ports_reached(params, 40) == ports


async def test_load_balance_hosts_disable_always_uses_the_first_good_host(
    postgres_server: PostgresServer, postgres_tls_server: PostgresServer
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(
            host="127.0.0.1,127.0.0.1",
            port=f"{postgres_tls_server.port},{postgres_server.port}",
            sslmode="disable",
        )
        assert await _ports_reached(params, 10) == {postgres_tls_server.port}


# -- what arrives at the server -----------------------------------------------------------


async def test_application_name_options_and_server_settings_reach_the_session(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(
            application_name="trio_pg-tests", options="-c statement_timeout=1234"
        )
        async with trio_pg.open_connection(
            server_settings={"search_path": "x", "work_mem": "5MB"},
            connect_timeout=TEST_TIMEOUT,
            **params,
        ) as conn:
            assert await conn.fetchval("SHOW application_name") == "trio_pg-tests"
            assert await conn.fetchval("SHOW search_path") == "x"
            assert await conn.fetchval("SHOW work_mem") == "5MB"
            assert await conn.fetchval("SHOW statement_timeout") == "1234ms"
            assert conn.parameters["application_name"] == "trio_pg-tests"
            assert (
                await conn.fetchval(
                    "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
                )
                == "trio_pg-tests"
            )


async def test_uri_dsn_connects_with_query_parameters(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        dsn = (
            f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
            "?application_name=from_uri&sslmode=disable"
        )
        async with trio_pg.open_connection(dsn, connect_timeout=TEST_TIMEOUT) as conn:
            assert await conn.fetchval("SHOW application_name") == "from_uri"
            assert await conn.fetchval("SELECT current_database()::text") == "postgres"


async def test_keyword_arguments_override_the_dsn(postgres_server: PostgresServer) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        dsn = postgres_server.dsn(application_name="from_dsn")
        async with trio_pg.open_connection(
            dsn, application_name="from_kwargs", connect_timeout=TEST_TIMEOUT
        ) as conn:
            assert await conn.fetchval("SHOW application_name") == "from_kwargs"


# -- protocol version and the cancel key --------------------------------------------------


@pytest.mark.parametrize("max_protocol_version", [None, "3.0"])
async def test_protocol_version_is_negotiated_and_its_cancel_key_stops_a_query(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection, max_protocol_version: str
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params()
        if max_protocol_version is not None:
            params["max_protocol_version"] = max_protocol_version
        async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
            # Protocol 3.2 (a variable-length cancel key) exists from PostgreSQL 18; older
            # servers negotiate the request down to 3.0.
            if max_protocol_version is None and conn.server_version >= (18,):
                assert conn.protocol_version == (3, 2)
            else:
                assert conn.protocol_version == (3, 0)
            with trio.move_on_after(0.5) as scope:
                await conn.fetch("SELECT pg_sleep(30)")
            assert scope.cancelled_caught
            # The CancelRequest carried the right key: the backend stops long before 30 s.
            with trio.fail_after(10):
                await _wait_until_idle(other_conn, conn.backend_pid)
            assert conn.statistics().cancels_sent == 1
            assert await conn.fetchval("SELECT 1") == 1


async def test_min_protocol_version_3_2_needs_postgresql_18(
    postgres_server: PostgresServer,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        params = postgres_server.connect_params(min_protocol_version="3.2")
        if postgres_server.version >= (18, 0):
            async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params) as conn:
                assert conn.protocol_version == (3, 2)
        else:
            with pytest.raises(trio_pg.Error, match=r"min_protocol_version is 3\.2"):
                async with trio_pg.open_connection(connect_timeout=TEST_TIMEOUT, **params):
                    pass
