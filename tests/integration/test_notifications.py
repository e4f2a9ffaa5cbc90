"""LISTEN/NOTIFY, notices and parameter changes against a real server.

To know that the server has delivered notifications to a connection without sleeping,
a test reads them from a second subscription to the same channel (a *probe*): the
reader hands each notification to every subscription in the same step.
"""

from __future__ import annotations

import pytest
import trio

import trio_pg
from tests.conftest import TEST_TIMEOUT
from trio_pg.channels import Notification, ParameterChange, Subscription
from trio_pg.errors import ConnectionLostError, InterfaceError, NotificationOverflowError
from trio_pg.listener import ListenerReconnected, open_listener
from trio_pg.testing import PostgresServer

#: One transaction sending $2 notifications on channel $1, payloads "0", "1", ...
NOTIFY_MANY = "SELECT count(pg_notify($1, g::text)) FROM generate_series(0, $2::int - 1) g"
#: One transaction notifying channel "bulk" with payloads $1 to $2.
NOTIFY_RANGE = "SELECT count(pg_notify('bulk', g::text)) FROM generate_series($1::int, $2::int) g"


async def take(sub: Subscription[Notification], n: int) -> list[str]:
    return [(await sub.receive()).payload for _ in range(n)]


def payloads(n: int, start: int = 0) -> list[str]:
    return [str(i) for i in range(start, start + n)]


async def listening_channels(conn: trio_pg.Connection) -> set[str]:
    return {r[0] for r in await conn.fetch("SELECT pg_listening_channels()")}


async def test_twenty_thousand_notifications_from_another_connection_all_arrive_in_order(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.listen("bulk") as notifications, trio.open_nursery() as nursery:

            async def send() -> None:
                # Several transactions, so order across commits is checked too.
                for start in range(0, 20_000, 5_000):
                    await other_conn.execute(NOTIFY_RANGE, start, start + 4_999)

            nursery.start_soon(send)
            received = [await notifications.receive() for _ in range(20_000)]
        assert [n.payload for n in received] == payloads(20_000)
        assert {(n.channel, n.pid) for n in received} == {("bulk", other_conn.backend_pid)}
        assert notifications.dropped == 0


async def test_notify_round_trips_any_payload_on_a_quoted_channel(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    channel = 'Mixed Case "quoted" ünï'
    payload = "it's \"quoted\"; DROP TABLE x; -- \u2603"
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.listen(channel) as notifications:
            assert await listening_channels(conn) == {channel}
            await other_conn.notify(channel, payload)
            await other_conn.notify(channel)
            assert await notifications.receive() == Notification(
                channel, payload, other_conn.backend_pid
            )
            assert (await notifications.receive()).payload == ""
        assert await listening_channels(conn) == set()


async def test_two_subscribers_to_one_channel_both_receive_everything(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.listen("shared") as first, conn.listen("shared", "extra") as second:
            assert await listening_channels(conn) == {"shared", "extra"}
            await other_conn.execute(NOTIFY_MANY, "shared", 1_000)
            await other_conn.notify("extra", "only the second")
            assert await take(first, 1_000) == payloads(1_000)
            assert await take(second, 1_001) == [*payloads(1_000), "only the second"]
            async with conn.listen("shared"):
                pass
            # The channel still has holders: it is still listened on.
            assert await listening_channels(conn) == {"shared", "extra"}
        assert await listening_channels(conn) == set()


async def test_stalled_subscription_overflows_with_the_dropped_count_while_fetch_answers(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            conn.listen("stall", max_buffer=100) as stalled,
            conn.listen("stall") as probe,
        ):
            await other_conn.execute(NOTIFY_MANY, "stall", 1_000)
            assert await take(probe, 1_000) == payloads(1_000)
            assert await conn.fetchval("SELECT $1::int4 + 1", 41) == 42
            assert await take(stalled, 100) == payloads(100)
            with pytest.raises(NotificationOverflowError) as info:
                await stalled.receive()
            assert info.value.dropped == 900
            # The rest of the connection is unaffected.
            await other_conn.notify("stall", "still flowing")
            assert await take(probe, 1) == ["still flowing"]
            assert await conn.fetchval("SELECT 'fine'") == "fine"


async def test_raise_notice_arrives_on_notices(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.notices() as notices:
            await conn.execute(
                """DO $$ BEGIN
                    RAISE NOTICE 'order % shipped', 42 USING HINT = 'tell the customer';
                    RAISE WARNING 'stock low' USING ERRCODE = '01000';
                END $$"""
            )
            notice = await notices.receive()
            warning = await notices.receive()
        assert (notice.severity, notice.sqlstate) == ("NOTICE", "00000")
        assert notice.message == "order 42 shipped"
        assert notice.hint == "tell the customer"
        assert "PL/pgSQL" in (notice.where or "")
        assert (warning.severity, warning.sqlstate, warning.message) == (
            "WARNING",
            "01000",
            "stock low",
        )


async def test_set_application_name_and_timezone_arrive_on_parameter_changes(
    conn: trio_pg.Connection,
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.parameter_changes() as changes:
            await conn.execute("SET application_name = 'renamed by test'")
            await conn.execute("SET TimeZone = 'Asia/Tokyo'")
            seen = [await changes.receive(), await changes.receive()]
        assert seen == [
            ParameterChange("application_name", "renamed by test"),
            ParameterChange("TimeZone", "Asia/Tokyo"),
        ]
        assert conn.parameters["application_name"] == "renamed by test"
        assert conn.parameters["TimeZone"] == "Asia/Tokyo"


async def test_terminated_backend_delivers_buffered_notifications_then_connection_lost(
    conn: trio_pg.Connection, other_conn: trio_pg.Connection
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with conn.listen("doomed") as notifications, conn.listen("doomed") as probe:
            await other_conn.execute(NOTIFY_MANY, "doomed", 200)
            assert await take(probe, 200) == payloads(200)
            assert await other_conn.fetchval("SELECT pg_terminate_backend($1)", conn.backend_pid)
            assert await take(notifications, 200) == payloads(200)
            with pytest.raises(ConnectionLostError, match="administrator command"):
                await notifications.receive()
            with pytest.raises(ConnectionLostError):
                await probe.receive()
        # Leaving the blocks of the lost connection raised nothing.
        assert conn.is_closed


async def test_listen_inside_a_transaction_is_refused(conn: trio_pg.Connection) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        await conn.execute("BEGIN")
        with pytest.raises(InterfaceError, match="COMMIT"):
            async with conn.listen("tx"):
                pass  # pragma: no cover
        await conn.execute("ROLLBACK")
        assert await listening_channels(conn) == set()


async def test_open_listener_survives_three_terminations_and_marks_each_gap(
    postgres_server: PostgresServer, other_conn: trio_pg.Connection
) -> None:
    name = "trio_pg listener test"
    with trio.fail_after(TEST_TIMEOUT):
        async with open_listener(
            postgres_server.dsn(),
            "events",
            application_name=name,
            connect_timeout=TEST_TIMEOUT,
            reconnect_delay=0.01,
        ) as stream:
            await other_conn.notify("events", "before")
            first = await stream.receive()
            assert isinstance(first, Notification)
            assert first.payload == "before"
            pids = set()
            for gap in range(3):
                killed = await other_conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                assert killed >= 1
                marker = await stream.receive()
                assert isinstance(marker, ListenerReconnected)
                assert isinstance(marker.cause, ConnectionLostError)
                pids.add(marker.backend_pid)
                # LISTEN was sent again on the new connection before the marker.
                await other_conn.notify("events", f"after gap {gap}")
                item = await stream.receive()
                assert item == Notification("events", f"after gap {gap}", other_conn.backend_pid)
            assert len(pids) == 3
            with pytest.raises(trio.WouldBlock):
                stream.receive_nowait()  # one marker per gap, nothing else
