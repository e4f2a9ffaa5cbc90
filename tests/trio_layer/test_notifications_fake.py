"""Notifications, notices and parameter changes against the scripted fake server.

The fake (``fakenotify.Notifier``) keeps each session's LISTEN state and sends
asynchronous messages whenever a test pushes them: inside a result set, or while the
session is idle. Waiting is event-driven: a second, unbounded subscription to the same
channel (a *probe*) shows when the reader has routed a notification, since the router
hands each one to every subscription in the same synchronous step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_pg
from tests.trio_layer.fakenotify import Notifier
from tests.trio_layer.fakequeries import FakeQuery
from tests.trio_layer.fakeserver import (
    isolate_environment,
    open_fake_connection,
    open_fake_server,
    open_memory_connection,
)
from tests.trio_layer.fakewire import (
    INT4,
    TEXT,
    notice_response,
    notification_response,
    parameter_status,
)
from trio_pg.channels import Notice, Notification, ParameterChange, Subscription
from trio_pg.errors import ConnectionLostError, InterfaceError, NotificationOverflowError
from trio_pg.listener import ListenerReconnected, open_listener

TIMEOUT = 10

PEOPLE = FakeQuery(
    "SELECT id, name FROM people",
    columns=[("id", INT4), ("name", TEXT)],
    rows=[[i, f"person {i}"] for i in range(40)],
)
EXPECTED_PEOPLE = [(i, f"person {i}") for i in range(40)]
TWO = FakeQuery("SELECT 2", columns=[("two", INT4)], rows=[[2]])
PG_NOTIFY = FakeQuery(
    "SELECT pg_notify($1, $2)", columns=[("pg_notify", TEXT)], param_oids=[TEXT, TEXT], rows=[[""]]
)
QUERIES = [PEOPLE, TWO, PG_NOTIFY]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, str(tmp_path))


async def take(sub: Subscription[Notification], n: int) -> list[str]:
    """The payloads of the next ``n`` notifications."""
    return [(await sub.receive()).payload for _ in range(n)]


def payloads(n: int, start: int = 0) -> list[str]:
    return [str(i) for i in range(start, start + n)]


# -- delivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_notifications_inside_a_result_set_reach_the_subscriber_and_rows_stay_whole(
    transport: str,
) -> None:
    noisy = FakeQuery(
        PEOPLE.sql,
        columns=PEOPLE.columns,
        rows=PEOPLE.rows,
        inject={
            3: [notification_response(41, "jobs", "first")],
            30: [
                notification_response(42, "other", "not ours"),
                notification_response(43, "jobs", "second"),
            ],
        },
    )
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=[noisy], script=notifier.script) as fake,
            open_fake_connection(fake, transport) as conn,
            conn.listen("jobs") as notifications,
        ):
            assert await conn.fetch(PEOPLE.sql) == EXPECTED_PEOPLE
            assert await notifications.receive() == Notification("jobs", "first", 41)
            assert await notifications.receive() == Notification("jobs", "second", 43)
            with pytest.raises(trio.WouldBlock):
                notifications.receive_nowait()


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_notifications_arriving_while_idle_are_delivered_in_server_order(
    transport: str,
) -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_fake_connection(fake, transport) as conn,
            conn.listen("jobs") as notifications,
        ):
            await notifier.notify("jobs", *payloads(500))
            assert await take(notifications, 500) == payloads(500)
            assert conn.statistics().pending_requests == 0
            await notifier.notify("jobs", "later")
            assert await take(notifications, 1) == ["later"]


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_burst_far_larger_than_the_buffer_reaches_a_subscriber_that_keeps_reading(
    transport: str,
) -> None:
    # One network read holds thousands of notifications; the reader yields to the
    # subscriber between them, and the subscriber drains several per scheduling round.
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_fake_connection(fake, transport) as conn,
            conn.listen("jobs", max_buffer=200) as notifications,
            trio.open_nursery() as nursery,
        ):
            # Pushed by another task, as by a server: this one only reads.
            nursery.start_soon(notifier.notify, "jobs", *payloads(20_000))
            assert await take(notifications, 20_000) == payloads(20_000)


async def test_listen_quotes_names_and_is_counted_per_channel() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            async with conn.listen("Orders", 'we"ird', "Orders"):
                assert notifier.commands == ['LISTEN "Orders"; LISTEN "we""ird"']
                assert notifier.state() == {"Orders", 'we"ird'}
                async with conn.listen("Orders", "more"):
                    # "Orders" is already listened on: only the new channel is sent.
                    assert notifier.commands[1:] == ['LISTEN "more"']
                assert notifier.commands[2:] == ['UNLISTEN "more"']
                assert notifier.state() == {"Orders", 'we"ird'}
            assert notifier.commands[3:] == ['UNLISTEN "Orders"; UNLISTEN "we""ird"']
            assert notifier.state() == set()
            # Listening again after the last holder left sends LISTEN again.
            async with conn.listen("Orders"):
                assert notifier.state() == {"Orders"}
            assert notifier.state() == set()


async def test_every_subscription_to_a_channel_gets_every_notification_in_order() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
            conn.listen("a", "b") as both,
            conn.listen("a") as only_a,
        ):
            await notifier.push(
                *(notification_response(1, "ab"[i % 2], str(i)) for i in range(100))
            )
            assert await take(both, 100) == payloads(100)
            assert await take(only_a, 50) == [str(i) for i in range(0, 100, 2)]
            assert notifier.commands == ['LISTEN "a"; LISTEN "b"']


async def test_notify_sends_pg_notify_with_bound_parameters() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            await conn.notify("jobs", "it's \"quoted\"")
            session = await notifier.session()
            parse = next(m for m in session.received if m.type == b"P")
            assert parse.sql == "SELECT pg_notify($1, $2)"
            bind = next(m for m in session.received if m.type == b"B")
            assert bind.bind()[2] == [b"jobs", b"it's \"quoted\""]


# -- overflow -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_full_subscription_ends_with_overflow_after_what_it_holds(transport: str) -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_fake_connection(fake, transport) as conn,
            conn.listen("jobs", max_buffer=5) as slow,
            conn.listen("jobs", max_buffer=10_000) as probe,
        ):
            await notifier.notify("jobs", *payloads(20))
            assert await take(probe, 20) == payloads(20)
            # The reader went on: requests on the same connection are answered.
            assert await conn.fetchval(TWO.sql) == 2
            await notifier.notify("jobs", *payloads(3, start=20))
            assert await take(probe, 3) == payloads(3, start=20)
            assert slow.dropped == 18
            assert await take(slow, 5) == payloads(5)
            with pytest.raises(NotificationOverflowError) as info:
                await slow.receive()
            assert info.value.dropped == 18
            # The count the subscriber saw stays the count.
            await notifier.notify("jobs", "after the error")
            assert await take(probe, 1) == ["after the error"]
            with pytest.raises(NotificationOverflowError) as again:
                await slow.receive()
            assert again.value.dropped == 18
            assert not conn.is_closed


async def test_overflow_of_one_subscription_leaves_the_others_running() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
            conn.listen("jobs", max_buffer=1) as tiny,
            conn.listen("jobs", max_buffer=3) as small,
            conn.listen("jobs") as probe,
        ):
            await notifier.notify("jobs", *payloads(3))
            assert await take(probe, 3) == payloads(3)
            assert await take(small, 3) == payloads(3)
            assert await take(tiny, 1) == ["0"]
            with pytest.raises(NotificationOverflowError, match="2 notification"):
                await tiny.receive()


async def test_block_policy_holds_the_reader_until_the_subscriber_makes_room() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
            conn.listen("jobs", max_buffer=2, on_overflow="block") as notifications,
        ):
            answers: list[int] = []

            async def ask() -> None:
                answers.append(await conn.fetchval(TWO.sql))

            await notifier.notify("jobs", *payloads(30))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await trio.testing.wait_all_tasks_blocked()
                # The reader waits for room: the query behind the notifications waits too.
                assert answers == []
                assert notifications.dropped == 0
                assert await take(notifications, 30) == payloads(30)
            assert answers == [2]


async def test_block_subscriber_leaving_releases_the_reader() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            async with conn.listen("jobs", max_buffer=1, on_overflow="block") as notifications:
                await notifier.notify("jobs", *payloads(10))
                await trio.testing.wait_all_tasks_blocked()
                assert await take(notifications, 2) == payloads(2)
            # Left without reading the rest: the reader is not stuck on it.
            assert await conn.fetchval(TWO.sql) == 2
            assert notifier.state() == set()


async def test_aclose_while_the_reader_waits_for_a_block_subscriber() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
            conn.listen("jobs", max_buffer=1, on_overflow="block") as notifications,
        ):
            await notifier.notify("jobs", *payloads(5))
            await trio.testing.wait_all_tasks_blocked()
            await conn.aclose()
            assert conn.is_closed
            received = [n.payload async for n in notifications]
            assert received == payloads(1)


# -- endings --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_connection_loss_delivers_what_was_buffered_then_connection_lost(
    transport: str,
) -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_fake_connection(fake, transport) as conn,
        ):
            async with conn.listen("jobs") as notifications, conn.notices() as notices:
                await notifier.notify("jobs", *payloads(10))
                await (await notifier.session()).close()
                assert await take(notifications, 10) == payloads(10)
                with pytest.raises(ConnectionLostError, match="closed the connection"):
                    await notifications.receive()
                with pytest.raises(ConnectionLostError):
                    await notices.receive()
            # Leaving the blocks of a lost connection raised nothing.
            assert conn.is_closed
            with pytest.raises(ConnectionLostError):
                async with conn.listen("jobs"):
                    pass  # pragma: no cover


async def test_local_aclose_ends_iteration_after_what_was_buffered() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            async with conn.listen("jobs") as notifications, conn.listen("jobs") as probe:
                await notifier.notify("jobs", *payloads(3))
                assert await take(probe, 3) == payloads(3)
                await conn.aclose()
                assert [n.payload async for n in notifications] == payloads(3)
                assert [n.payload async for n in probe] == []
            with pytest.raises(trio.ClosedResourceError):
                await notifications.receive()


async def test_subscriber_closing_its_channel_stops_delivery_to_it() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
            conn.listen("jobs", max_buffer=1) as closed,
            conn.listen("jobs") as probe,
        ):
            await closed.aclose()
            await notifier.notify("jobs", *payloads(5))
            assert await take(probe, 5) == payloads(5)
            assert closed.dropped == 0
            with pytest.raises(trio.ClosedResourceError):
                await closed.receive()


# -- notices and parameters -------------------------------------------------------------------


async def test_notices_go_to_the_subscription_instead_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_pg")
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            async with conn.notices() as notices:
                await notifier.push(
                    notice_response("disk is slow", severity="WARNING", sqlstate="01000")
                )
                notice = await notices.receive()
                assert notice == Notice("WARNING", "01000", "disk is slow", fields=notice.fields)
                assert notice.fields["M"] == "disk is slow"
            assert not [r for r in caplog.records if "disk is slow" in r.getMessage()]
            await notifier.push(notice_response("now logged", severity="WARNING"))
            assert await conn.fetchval(TWO.sql) == 2  # the notice was routed before this
    assert [r.levelno for r in caplog.records if "now logged" in r.getMessage()] == [
        logging.WARNING
    ]


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        ("WARNING", logging.WARNING),
        ("NOTICE", logging.INFO),
        ("INFO", logging.INFO),
        ("LOG", logging.INFO),
        ("DEBUG1", logging.DEBUG),
    ],
)
async def test_notices_nobody_subscribed_to_are_logged_at_their_severity(
    caplog: pytest.LogCaptureFixture, severity: str, level: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_pg")
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            await notifier.push(notice_response("look here", severity=severity))
            assert await conn.fetchval(TWO.sql) == 2
    records = [r for r in caplog.records if "look here" in r.getMessage()]
    assert [(r.name, r.levelno) for r in records] == [("trio_pg", level)]
    assert severity in records[0].getMessage()


async def test_parameter_changes_are_delivered_with_parameters_already_updated() -> None:
    notifier = Notifier()
    seen: list[tuple[ParameterChange, str]] = []
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
            conn.parameter_changes() as changes,
        ):
            await notifier.push(
                parameter_status("TimeZone", "Asia/Tokyo"),
                parameter_status("application_name", "renamed"),
            )
            for _ in range(2):
                change = await changes.receive()
                seen.append((change, conn.parameters[change.name]))
    assert seen == [
        (ParameterChange("TimeZone", "Asia/Tokyo"), "Asia/Tokyo"),
        (ParameterChange("application_name", "renamed"), "renamed"),
    ]


# -- sharing the connection, cancellation, misuse -----------------------------------------------


async def test_listen_waits_for_its_turn_behind_an_exclusive_block() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            gate = conn._gate
            assert gate is not None
            entered = trio.Event()

            async def listener() -> None:
                async with conn.listen("jobs"):
                    entered.set()

            async with trio.open_nursery() as nursery:
                async with gate.hold():
                    nursery.start_soon(listener)
                    await trio.testing.wait_all_tasks_blocked()
                    assert notifier.commands == []
                    assert await conn.fetchval(TWO.sql) == 2  # the holder passes
                    assert notifier.commands == []
                await entered.wait()
            assert notifier.commands == ['LISTEN "jobs"', 'UNLISTEN "jobs"']


@pytest.mark.parametrize("first", ["exit", "enter"])
async def test_leaving_and_entering_one_channel_together_leaves_it_listened(first: str) -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            gate = conn._gate
            assert gate is not None
            leave, entered, done = trio.Event(), trio.Event(), trio.Event()
            got: list[str] = []

            async def old_subscriber() -> None:
                async with conn.listen("jobs"):
                    await leave.wait()

            async def new_subscriber() -> None:
                async with conn.listen("jobs") as notifications:
                    entered.set()
                    got.extend(await take(notifications, 1))
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(old_subscriber)
                await trio.testing.wait_all_tasks_blocked()
                assert notifier.state() == {"jobs"}
                async with gate.hold():
                    # Both wait for the gate, the old one to UNLISTEN, the new one to LISTEN.
                    if first == "exit":
                        leave.set()
                        await trio.testing.wait_all_tasks_blocked()
                        nursery.start_soon(new_subscriber)
                    else:
                        nursery.start_soon(new_subscriber)
                        await trio.testing.wait_all_tasks_blocked()
                        leave.set()
                    await trio.testing.wait_all_tasks_blocked()
                await entered.wait()
                assert notifier.state() == {"jobs"}
                await notifier.notify("jobs", "still listened")
                await done.wait()
            assert got == ["still listened"]
            assert notifier.state() == set()


async def test_listen_inside_a_transaction_block_is_refused() -> None:
    notifier = Notifier()
    queries = [
        *QUERIES,
        FakeQuery("BEGIN", status_after="T"),
        FakeQuery("ROLLBACK", status_after="I"),
    ]
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=queries, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            await conn.execute("BEGIN")
            with pytest.raises(InterfaceError, match="transaction"):
                async with conn.listen("jobs"):
                    pass  # pragma: no cover
            await conn.execute("ROLLBACK")
            assert notifier.commands == []
            async with conn.listen("jobs"):
                assert notifier.state() == {"jobs"}


async def _listen_cancelled_after(conn: trio_pg.Connection, checkpoints: int) -> bool:
    """Enter listen("jobs"), cancelling after ``checkpoints`` checkpoints; True if entered."""
    entered = False
    with trio.CancelScope() as scope:

        async def cancel_later() -> None:
            for _ in range(checkpoints):
                await trio.lowlevel.checkpoint()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_later)
            async with conn.listen("jobs"):
                entered = True
                nursery.cancel_scope.cancel()
    return entered


@pytest.mark.parametrize("delay", [0, 5])
async def test_listen_cancelled_at_every_checkpoint_leaves_nothing_behind(delay: int) -> None:
    notifier = Notifier(delay=delay)
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            for k in range(500):
                entered = await _listen_cancelled_after(conn, k)
                assert await conn.fetchval(TWO.sql) == 2
                # Never listened, or listened and then UNLISTENed: the server is clean.
                assert notifier.state() == set()
                assert conn.statistics().pending_requests == 0
                fake.check()
                if entered:
                    break
            else:
                pytest.fail("listen() was never entered")
            assert k > 2
            assert any(c.startswith("LISTEN") for c in notifier.commands)
            # And the connection still listens properly afterwards.
            async with conn.listen("jobs") as notifications:
                await notifier.notify("jobs", "works")
                assert await take(notifications, 1) == ["works"]


@pytest.mark.parametrize(
    ("channels", "options", "message"),
    [
        ((), {}, "at least one channel"),
        (("",), {}, "non-empty"),
        (("a\x00b",), {}, "NUL"),
        (("x" * 64,), {}, "63 bytes"),
        (("jobs",), {"max_buffer": 0}, "max_buffer"),
        (("jobs",), {"max_buffer": 1.5}, "max_buffer"),
        (("jobs",), {"on_overflow": "drop"}, "on_overflow"),
    ],
)
async def test_bad_listen_arguments_are_refused_before_anything_is_sent(
    channels: Sequence[str], options: dict[str, object], message: str
) -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_memory_connection(fake) as conn,
        ):
            with pytest.raises(InterfaceError, match=message):
                async with conn.listen(*channels, **options):  # type: ignore[arg-type]
                    pass  # pragma: no cover
            assert notifier.commands == []
            assert await conn.fetchval(TWO.sql) == 2


# -- open_listener ---------------------------------------------------------------------------


async def test_open_listener_listens_again_after_each_loss_and_marks_the_gap() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=QUERIES, script=notifier.script) as fake:
            options = fake.connect_kwargs(reconnect_delay=0.001)
            async with open_listener(None, "jobs", "other", **options) as stream:
                first = await notifier.session(0)
                assert notifier.state(0) == {"jobs", "other"}
                await notifier.notify("jobs", "a", "b", index=0)
                await first.close()
                # What arrived before the loss comes first, then one marker.
                assert [await stream.receive() for _ in range(2)] == [
                    Notification("jobs", "a", 777),
                    Notification("jobs", "b", 777),
                ]
                marker = await stream.receive()
                assert isinstance(marker, ListenerReconnected)
                assert isinstance(marker.cause, ConnectionLostError)
                assert marker.attempts == 1
                second = await notifier.session(1)
                assert marker.backend_pid == second.pid
                assert notifier.state(1) == {"jobs", "other"}
                await notifier.notify("other", "c", index=1)
                assert await stream.receive() == Notification("other", "c", 777)

                # Two attempts fail (the server closes them at once): the third listens.
                notifier.refuse = 2
                await second.close()
                marker = await stream.receive()
                assert isinstance(marker, ListenerReconnected)
                assert marker.attempts == 3
                assert marker.backend_pid == (await notifier.session(2)).pid
                await notifier.notify("jobs", "d", index=2)
                assert await stream.receive() == Notification("jobs", "d", 777)
                with pytest.raises(trio.WouldBlock):
                    stream.receive_nowait()
            assert len(fake.sessions) == 5


async def test_open_listener_never_drops_when_its_reader_is_slow() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with (
            open_fake_server(queries=QUERIES, script=notifier.script) as fake,
            open_listener(None, "jobs", max_buffer=1, **fake.connect_kwargs()) as stream,
        ):
            await notifier.notify("jobs", *payloads(2000))
            await trio.testing.wait_all_tasks_blocked()
            received = []
            for _ in range(2000):
                item = await stream.receive()
                assert isinstance(item, Notification)
                received.append(item.payload)
            assert received == payloads(2000)


async def test_open_listener_raises_a_first_connection_failure_itself() -> None:
    notifier = Notifier()
    notifier.refuse = 1
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=QUERIES, script=notifier.script) as fake:
            with pytest.raises(ConnectionLostError):
                async with open_listener(None, "jobs", **fake.connect_kwargs()):
                    pass  # pragma: no cover
            assert notifier.sessions == []


async def test_open_listener_block_raises_only_what_its_body_raised() -> None:
    notifier = Notifier()
    with trio.fail_after(TIMEOUT):
        async with open_fake_server(queries=QUERIES, script=notifier.script) as fake:
            with pytest.raises(KeyError, match="from the body"):
                async with open_listener(None, "jobs", **fake.connect_kwargs()):
                    raise KeyError("from the body")
            session = await notifier.session()
            await session.terminated.wait()  # the dedicated connection was closed


@pytest.mark.parametrize(
    "options",
    [{"reconnect_delay": 0}, {"max_reconnect_delay": float("nan")}, {"max_buffer": 0}],
)
async def test_open_listener_refuses_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(InterfaceError):
        async with open_listener(None, "jobs", **options):  # type: ignore[arg-type]
            pass  # pragma: no cover
