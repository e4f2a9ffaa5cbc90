"""The startup and authentication exchange, against a scripted server.

SCRAM runs end to end against ``scramp.ScramServer`` playing PostgreSQL's part; the other
methods are checked byte for byte.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from typing import Literal

import pytest
import scramp

from tests.protocol.wire_script import (
    auth,
    auth_ok,
    backend_key,
    drain,
    error,
    negotiate_protocol_version,
    notice,
    parameter_status,
    ready,
)
from trio_pg.errors import (
    AuthenticationError,
    InvalidCatalogNameError,
    InvalidPasswordError,
    PostgresError,
    ProtocolError,
    TooManyConnectionsError,
)
from trio_pg.protocol import (
    AUTH_METHODS,
    DEFAULT_MAX_SCRAM_ITERATIONS,
    NEED_DATA,
    ClientConnection,
    Phase,
    ScramProof,
    StartupComplete,
    StartupMachine,
    StartupOptions,
    TransactionStatus,
    is_protocol_version_rejection,
)
from trio_pg.protocol import backend as b

PASSWORD = "pencil"
CB_DATA = ("tls-server-end-point", bytes(range(32)))

ChannelBinding = Literal["disable", "prefer", "require"]


def _options(**kwargs: object) -> StartupOptions:
    kwargs.setdefault("user", "alice")
    return StartupOptions(**kwargs)  # type: ignore[arg-type]


def _finish(machine: StartupMachine) -> StartupComplete:
    """The rest of a successful startup: ParameterStatus, BackendKeyData, ReadyForQuery."""
    assert machine.handle(b.ParameterStatus("server_version", "17.2")) is None
    assert machine.handle(b.BackendKeyData(99, b"\x00\x01\x02\x03")) is None
    done = machine.handle(b.ReadyForQuery(TransactionStatus.IDLE))
    assert isinstance(done, StartupComplete)
    assert machine.parameters == {"server_version": "17.2"}
    assert machine.backend_key == b.BackendKeyData(99, b"\x00\x01\x02\x03")
    return done


def _unframe_password_message(data: bytes) -> bytes:
    assert data[:1] == b"p"
    (length,) = struct.unpack("!i", data[1:5])
    assert len(data) == 1 + length
    return data[5:]


def _sasl_initial(data: bytes) -> tuple[str, bytes]:
    body = _unframe_password_message(data)
    mechanism, _, rest = body.partition(b"\x00")
    (size,) = struct.unpack("!i", rest[:4])
    assert size == len(rest) - 4
    return mechanism.decode(), rest[4:]


# -- trust, cleartext, MD5 ---------------------------------------------------------------------


def test_initial_message_is_the_startup_message() -> None:
    machine = StartupMachine(
        _options(user="bob", parameters={"database": "db"}, protocol_version=(3, 0))
    )
    assert machine.initial_message() == (
        b"\x00\x00\x00\x1e\x00\x03\x00\x00user\x00bob\x00database\x00db\x00\x00"
    )


def test_trust_startup_completes_without_sending_anything() -> None:
    machine = StartupMachine(_options())
    assert machine.handle(b.AuthenticationOk()) is None
    assert machine.take_output() == b""
    assert _finish(machine) == StartupComplete((3, 2), TransactionStatus.IDLE)


def test_cleartext_password_is_sent_exactly() -> None:
    machine = StartupMachine(_options(password="secret"))
    assert machine.handle(b.AuthenticationCleartextPassword()) is None
    assert machine.take_output() == b"p\x00\x00\x00\x0bsecret\x00"
    assert machine.take_output() == b""
    machine.handle(b.AuthenticationOk())
    _finish(machine)


def test_md5_password_hash_is_exact() -> None:
    # md5(md5("s3cret" + "alice").hexdigest() + salt), computed with md5sum(1).
    machine = StartupMachine(_options(user="alice", password="s3cret"))
    machine.handle(b.AuthenticationMD5Password(b"\x93\x12\xab\x4c"))
    assert machine.take_output() == b"p\x00\x00\x00\x28md5178935b208a639daab5bbe9a57704607\x00"
    machine.handle(b.AuthenticationOk())
    _finish(machine)


def test_notice_during_startup_is_ignored_by_the_machine() -> None:
    machine = StartupMachine(_options())
    assert machine.handle(b.NoticeResponse({"S": "WARNING", "M": "x"})) is None
    assert machine.take_output() == b""


def test_ready_for_query_before_authentication_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="before authentication"):
        StartupMachine(_options()).handle(b.ReadyForQuery(TransactionStatus.IDLE))


@pytest.mark.parametrize(
    "msg", [b.RowDescription(()), b.CommandComplete("x"), b"raw data row", b.CopyDone()]
)
def test_query_phase_message_during_startup_is_a_protocol_error(msg: b.BackendMessage) -> None:
    with pytest.raises(ProtocolError, match="during startup"):
        StartupMachine(_options()).handle(msg)


def test_authentication_request_after_ok_is_a_protocol_error() -> None:
    machine = StartupMachine(_options(password="pw"))
    machine.handle(b.AuthenticationOk())
    with pytest.raises(ProtocolError, match="after AuthenticationOk"):
        machine.handle(b.AuthenticationCleartextPassword())


def test_switching_authentication_method_is_a_protocol_error() -> None:
    machine = StartupMachine(_options(password="pw"))
    machine.handle(b.AuthenticationCleartextPassword())
    with pytest.raises(ProtocolError, match="switched"):
        machine.handle(b.AuthenticationMD5Password(b"salt"))


# -- missing password and unsupported methods ---------------------------------------------------


@pytest.mark.parametrize(
    "request_msg",
    [
        b.AuthenticationCleartextPassword(),
        b.AuthenticationMD5Password(b"abcd"),
        b.AuthenticationSASL(("SCRAM-SHA-256",)),
    ],
)
def test_missing_password_says_how_to_give_one(request_msg: b.BackendMessage) -> None:
    machine = StartupMachine(_options(password=None))
    with pytest.raises(AuthenticationError, match="no password was given") as info:
        machine.handle(request_msg)
    assert "password=" in str(info.value)
    assert "PGPASSWORD" in str(info.value)
    assert machine.take_output() == b""


@pytest.mark.parametrize(
    ("request_msg", "name"),
    [
        (b.AuthenticationKerberosV5(), "Kerberos V5"),
        (b.AuthenticationGSS(), "GSSAPI"),
        (b.AuthenticationGSSContinue(b"x"), "GSSAPI"),
        (b.AuthenticationSSPI(), "SSPI"),
    ],
)
def test_gss_sspi_and_kerberos_are_refused(request_msg: b.BackendMessage, name: str) -> None:
    with pytest.raises(AuthenticationError, match=f"{name} authentication.*pg_hba.conf"):
        StartupMachine(_options(password="pw")).handle(request_msg)


def test_password_scram_cannot_prepare_is_an_authentication_error() -> None:
    # SASLprep forbids control characters; scramp then refuses the password.
    machine = StartupMachine(_options(password="bell\x07"))
    with pytest.raises(AuthenticationError, match="SCRAM authentication failed"):
        machine.handle(b.AuthenticationSASL(("SCRAM-SHA-256",)))


def test_sasl_without_a_known_mechanism_is_refused() -> None:
    machine = StartupMachine(_options(password="pw"))
    with pytest.raises(AuthenticationError, match="SCRAM-SHA-1"):
        machine.handle(b.AuthenticationSASL(("SCRAM-SHA-1", "OAUTHBEARER")))


# -- server errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "cls"),
    [
        ("28P01", InvalidPasswordError),
        ("3D000", InvalidCatalogNameError),
        ("53300", TooManyConnectionsError),
    ],
)
def test_error_response_during_startup_raises_its_postgres_error(
    sqlstate: str, cls: type[PostgresError]
) -> None:
    machine = StartupMachine(_options(password="wrong"))
    machine.handle(b.AuthenticationCleartextPassword())
    fields = {"S": "FATAL", "V": "FATAL", "C": sqlstate, "M": "nope"}
    with pytest.raises(cls) as info:
        machine.handle(b.ErrorResponse(fields))
    assert info.value.sqlstate == sqlstate
    assert info.value.message == "nope"


def test_wrong_password_through_client_connection_raises_invalid_password_error() -> None:
    conn = ClientConnection()
    conn.start(_options(password="wrong"))
    conn.data_to_send()
    conn.receive_data(auth(3) + error("28P01", 'password authentication failed for user "alice"'))
    with pytest.raises(InvalidPasswordError, match="password authentication failed"):
        conn.next_event()
    assert conn.data_to_send() == b"p\x00\x00\x00\x0awrong\x00"


@pytest.mark.parametrize(
    ("sqlstate", "text", "expected"),
    [
        ("0A000", "unsupported frontend protocol 3.2: server supports 3.0 to 3.0", True),
        ("08P01", "unsupported frontend protocol 3.2", True),
        ("08P01", "invalid startup packet layout", False),
        ("0A000", "cannot do that", False),
        ("28P01", "password authentication failed (protocol)", False),
    ],
)
def test_is_protocol_version_rejection(sqlstate: str, text: str, expected: bool) -> None:
    err = PostgresError.from_fields({"S": "FATAL", "C": sqlstate, "M": text})
    assert is_protocol_version_rejection(err) is expected


# -- NegotiateProtocolVersion --------------------------------------------------------------------


def test_negotiate_protocol_version_down_to_3_0() -> None:
    machine = StartupMachine(_options())
    assert machine.handle(b.NegotiateProtocolVersion(0x00030000, ())) is None
    assert machine.protocol_version == (3, 0)
    machine.handle(b.AuthenticationOk())
    assert _finish(machine).protocol_version == (3, 0)


def test_negotiate_protocol_version_through_client_connection() -> None:
    conn = ClientConnection()
    conn.start(_options())
    assert conn.data_to_send()[4:8] == b"\x00\x03\x00\x02"
    conn.receive_data(
        negotiate_protocol_version(0x00030000)
        + auth_ok()
        + backend_key(5, b"abcd")
        + ready("I")
    )
    assert conn.next_event() == StartupComplete((3, 0), TransactionStatus.IDLE)
    assert conn.protocol_version == (3, 0)


def test_negotiated_version_below_minimum_is_an_error() -> None:
    machine = StartupMachine(_options(min_protocol_version=(3, 2)))
    with pytest.raises(ProtocolError, match=r"min_protocol_version is 3\.2"):
        machine.handle(b.NegotiateProtocolVersion(0x00030000, ()))


@pytest.mark.parametrize("code", [0x00030002, 0x00030003])
def test_negotiated_version_not_older_than_requested_is_an_error(code: int) -> None:
    with pytest.raises(ProtocolError, match="not older"):
        StartupMachine(_options()).handle(b.NegotiateProtocolVersion(code, ()))


@pytest.mark.parametrize("code", [0x00020000, 0x00040000])
def test_negotiated_other_major_version_is_an_error(code: int) -> None:
    with pytest.raises(ProtocolError, match="major"):
        StartupMachine(_options()).handle(b.NegotiateProtocolVersion(code, ()))


def test_negotiate_after_authentication_began_is_a_protocol_error() -> None:
    machine = StartupMachine(_options(password="pw"))
    machine.handle(b.AuthenticationCleartextPassword())
    with pytest.raises(ProtocolError, match="after authentication began"):
        machine.handle(b.NegotiateProtocolVersion(0x00030000, ()))


# -- require_auth ---------------------------------------------------------------------------------

_METHOD_MESSAGES: dict[str, Callable[[], b.BackendMessage]] = {
    "password": b.AuthenticationCleartextPassword,
    "md5": lambda: b.AuthenticationMD5Password(b"salt"),
    "scram-sha-256": lambda: b.AuthenticationSASL(("SCRAM-SHA-256",)),
    "none": b.AuthenticationOk,
}


def test_auth_method_names() -> None:
    assert {"password", "md5", "gss", "sspi", "scram-sha-256", "none"} == AUTH_METHODS


@pytest.mark.parametrize("method", sorted(_METHOD_MESSAGES))
def test_require_auth_allows_the_listed_method(method: str) -> None:
    machine = StartupMachine(_options(password="pw", allowed_auth=frozenset({method})))
    machine.handle(_METHOD_MESSAGES[method]())  # no error


@pytest.mark.parametrize(
    ("method", "allowed"),
    [(m, a) for m in sorted(_METHOD_MESSAGES) for a in sorted(_METHOD_MESSAGES) if m != a],
)
def test_require_auth_forbids_unlisted_methods(method: str, allowed: str) -> None:
    machine = StartupMachine(_options(password="pw", allowed_auth=frozenset({allowed})))
    with pytest.raises(AuthenticationError, match=f"require_auth does not allow '{method}'"):
        machine.handle(_METHOD_MESSAGES[method]())
    assert machine.take_output() == b""  # no secret left the client


def test_require_auth_with_several_methods() -> None:
    allowed = frozenset({"md5", "scram-sha-256"})
    StartupMachine(_options(password="pw", allowed_auth=allowed)).handle(
        b.AuthenticationMD5Password(b"salt")
    )
    with pytest.raises(AuthenticationError, match="allowed: md5, scram-sha-256"):
        StartupMachine(_options(password="pw", allowed_auth=allowed)).handle(
            b.AuthenticationCleartextPassword()
        )


# -- SCRAM against scramp's server ------------------------------------------------------------


class _ScramServer:
    """PostgreSQL's side of SCRAM, played by scramp."""

    def __init__(
        self,
        mechanism: str = "SCRAM-SHA-256",
        password: str = PASSWORD,
        iterations: int = 4096,
        channel_binding: tuple[str, bytes] | None = None,
    ) -> None:
        mech = scramp.ScramMechanism(mechanism)
        salt, stored_key, server_key, i = mech.make_auth_info(password, iteration_count=iterations)
        self.seen_users: list[str] = []

        def auth_fn(username: str) -> tuple[bytes, bytes, bytes, int]:
            self.seen_users.append(username)
            return salt, stored_key, server_key, i

        self.server = mech.make_server(auth_fn, channel_binding=channel_binding)

    def first(self, client_first: bytes) -> b.AuthenticationSASLContinue:
        self.server.set_client_first(client_first.decode())
        return b.AuthenticationSASLContinue(self.server.get_server_first().encode())

    def final(self, client_final: bytes) -> b.AuthenticationSASLFinal:
        self.server.set_client_final(client_final.decode())
        return b.AuthenticationSASLFinal(self.server.get_server_final().encode())


def _scram_until_proof(
    machine: StartupMachine, server: _ScramServer, offered: tuple[str, ...]
) -> tuple[str, bytes, ScramProof]:
    assert machine.handle(b.AuthenticationSASL(offered)) is None
    mechanism, client_first = _sasl_initial(machine.take_output())
    proof = machine.handle(server.first(client_first))
    assert isinstance(proof, ScramProof)
    return mechanism, client_first, proof


def test_scram_sha_256_end_to_end() -> None:
    server = _ScramServer()
    machine = StartupMachine(_options(password=PASSWORD))
    mechanism, client_first, proof = _scram_until_proof(
        machine, server, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")
    )
    assert mechanism == "SCRAM-SHA-256"  # no channel binding data: no PLUS
    assert client_first.startswith(b"n,,n=")
    assert machine.take_output() == b""  # the proof is not computed until the job runs
    proof.run()
    client_final = _unframe_password_message(machine.take_output())
    assert client_final.startswith(b"c=biws,r=")  # base64("n,,")
    assert machine.handle(server.final(client_final)) is None
    assert machine.handle(b.AuthenticationOk()) is None
    assert _finish(machine) == StartupComplete((3, 2), TransactionStatus.IDLE)
    assert server.seen_users == ["alice"]


def test_scram_through_client_connection_yields_a_proof_job() -> None:
    server = _ScramServer()
    conn = ClientConnection()
    conn.start(_options(password=PASSWORD))
    conn.data_to_send()
    conn.receive_data(auth(10, b"SCRAM-SHA-256\x00\x00"))
    assert conn.next_event() is NEED_DATA
    _, client_first = _sasl_initial(conn.data_to_send())
    conn.receive_data(auth(11, server.first(client_first).data))
    job = conn.next_event()
    assert isinstance(job, ScramProof)
    assert conn.data_to_send() == b""
    job.run()
    client_final = _unframe_password_message(conn.data_to_send())
    final = server.final(client_final)
    conn.receive_data(
        auth(12, final.data) + auth_ok() + parameter_status("a", "b") + notice("hi") + ready("I")
    )
    events = drain(conn)
    assert isinstance(events[0], b.NoticeResponse)  # notices come out during startup too
    assert events[1] == StartupComplete((3, 2), TransactionStatus.IDLE)
    assert conn.phase is Phase.READY
    assert conn.parameters == {"a": "b"}


def test_scram_wrong_password_is_rejected_by_server() -> None:
    server = _ScramServer(password="right")
    machine = StartupMachine(_options(password="wrong"))
    _, _, proof = _scram_until_proof(machine, server, ("SCRAM-SHA-256",))
    proof.run()
    client_final = _unframe_password_message(machine.take_output())
    with pytest.raises(scramp.ScramException):
        server.final(client_final)
    # PostgreSQL answers a bad proof with FATAL 28P01.
    with pytest.raises(InvalidPasswordError):
        machine.handle(b.ErrorResponse({"S": "FATAL", "C": "28P01", "M": "failed"}))


def test_scram_server_signature_mismatch_is_an_authentication_error() -> None:
    server = _ScramServer()
    machine = StartupMachine(_options(password=PASSWORD))
    _, _, proof = _scram_until_proof(machine, server, ("SCRAM-SHA-256",))
    proof.run()
    server.final(_unframe_password_message(machine.take_output()))  # server accepts the proof
    forged = b"v=" + base64.b64encode(b"\x00" * 32)
    with pytest.raises(AuthenticationError, match="server may not know the password"):
        machine.handle(b.AuthenticationSASLFinal(forged))


def test_authentication_ok_without_sasl_final_is_an_authentication_error() -> None:
    server = _ScramServer()
    machine = StartupMachine(_options(password=PASSWORD))
    _, _, proof = _scram_until_proof(machine, server, ("SCRAM-SHA-256",))
    proof.run()
    machine.take_output()
    with pytest.raises(AuthenticationError, match="without sending its final message"):
        machine.handle(b.AuthenticationOk())


def test_authentication_ok_right_after_sasl_start_is_an_authentication_error() -> None:
    machine = StartupMachine(_options(password=PASSWORD))
    machine.handle(b.AuthenticationSASL(("SCRAM-SHA-256",)))
    with pytest.raises(AuthenticationError, match="without sending its final message"):
        machine.handle(b.AuthenticationOk())


@pytest.mark.parametrize(
    "server_first",
    [b"garbage", b"r=someone-elses-nonce,s=QSXCR+Q6sek8bf92,i=4096", b"\xff\xfe"],
)
def test_invalid_server_first_message_is_an_authentication_error(server_first: bytes) -> None:
    machine = StartupMachine(_options(password=PASSWORD))
    machine.handle(b.AuthenticationSASL(("SCRAM-SHA-256",)))
    with pytest.raises(AuthenticationError, match="server-first"):
        machine.handle(b.AuthenticationSASLContinue(server_first))


@pytest.mark.parametrize(
    "msg", [b.AuthenticationSASLContinue(b"r=x"), b.AuthenticationSASLFinal(b"v=x")]
)
def test_sasl_continuation_without_sasl_start_is_a_protocol_error(msg: b.BackendMessage) -> None:
    with pytest.raises(ProtocolError, match="without a SASL exchange"):
        StartupMachine(_options(password=PASSWORD)).handle(msg)


def test_scram_iterations_over_the_cap_are_refused_before_any_work() -> None:
    server = _ScramServer(iterations=8192)
    machine = StartupMachine(_options(password=PASSWORD, max_scram_iterations=4096))
    machine.handle(b.AuthenticationSASL(("SCRAM-SHA-256",)))
    _, client_first = _sasl_initial(machine.take_output())
    with pytest.raises(AuthenticationError, match=r"8192 SCRAM iterations.*max_scram_iterations"):
        machine.handle(server.first(client_first))
    assert machine.take_output() == b""


def test_scram_iterations_at_the_cap_are_accepted() -> None:
    server = _ScramServer(iterations=8192)
    machine = StartupMachine(_options(password=PASSWORD, max_scram_iterations=8192))
    _, _, proof = _scram_until_proof(machine, server, ("SCRAM-SHA-256",))
    proof.run()
    assert machine.handle(server.final(_unframe_password_message(machine.take_output()))) is None


def test_default_scram_iteration_cap() -> None:
    assert DEFAULT_MAX_SCRAM_ITERATIONS == 1_000_000
    assert StartupOptions(user="u").max_scram_iterations == DEFAULT_MAX_SCRAM_ITERATIONS


# -- channel binding ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["prefer", "require"])
def test_scram_sha_256_plus_with_channel_binding(mode: ChannelBinding) -> None:
    server = _ScramServer("SCRAM-SHA-256-PLUS", channel_binding=CB_DATA)
    machine = StartupMachine(
        _options(password=PASSWORD, channel_binding=mode, channel_binding_data=CB_DATA)
    )
    mechanism, client_first, proof = _scram_until_proof(
        machine, server, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")
    )
    assert mechanism == "SCRAM-SHA-256-PLUS"
    assert client_first.startswith(b"p=tls-server-end-point,,n=")
    proof.run()
    client_final = _unframe_password_message(machine.take_output())
    expected_cbind = base64.b64encode(b"p=tls-server-end-point,," + CB_DATA[1])
    assert client_final.startswith(b"c=" + expected_cbind + b",r=")
    assert machine.handle(server.final(client_final)) is None  # server checks the binding
    assert machine.handle(b.AuthenticationOk()) is None
    _finish(machine)


def test_channel_binding_data_mismatch_fails_on_the_server() -> None:
    server = _ScramServer("SCRAM-SHA-256-PLUS", channel_binding=CB_DATA)
    other = ("tls-server-end-point", b"\xee" * 32)
    machine = StartupMachine(_options(password=PASSWORD, channel_binding_data=other))
    _, _, proof = _scram_until_proof(machine, server, ("SCRAM-SHA-256-PLUS",))
    proof.run()
    with pytest.raises(scramp.ScramException, match="channel bindings"):
        server.final(_unframe_password_message(machine.take_output()))


def test_prefer_without_plus_offered_uses_y_flag() -> None:
    server = _ScramServer()
    machine = StartupMachine(
        _options(password=PASSWORD, channel_binding="prefer", channel_binding_data=CB_DATA)
    )
    mechanism, client_first, _ = _scram_until_proof(machine, server, ("SCRAM-SHA-256",))
    assert mechanism == "SCRAM-SHA-256"
    assert client_first.startswith(b"y,,")  # "I could bind, but you did not offer it"


def test_disable_never_uses_plus() -> None:
    server = _ScramServer()
    machine = StartupMachine(
        _options(password=PASSWORD, channel_binding="disable", channel_binding_data=CB_DATA)
    )
    mechanism, client_first, proof = _scram_until_proof(
        machine, server, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")
    )
    assert mechanism == "SCRAM-SHA-256"
    assert client_first.startswith(b"n,,")
    proof.run()
    assert machine.handle(server.final(_unframe_password_message(machine.take_output()))) is None


_REQUIRE_REFUSALS: list[tuple[str, b.BackendMessage, tuple[str, bytes] | None, str]] = [
    ("cleartext", b.AuthenticationCleartextPassword(), CB_DATA, "cleartext password"),
    ("md5", b.AuthenticationMD5Password(b"salt"), CB_DATA, "MD5"),
    ("trust", b.AuthenticationOk(), CB_DATA, "without SCRAM channel binding"),
    ("no PLUS offered", b.AuthenticationSASL(("SCRAM-SHA-256",)), CB_DATA, "did not offer"),
    ("not encrypted", b.AuthenticationSASL(("SCRAM-SHA-256-PLUS",)), None, "not encrypted"),
]


@pytest.mark.parametrize(
    ("msg", "cb_data", "why"),
    [c[1:] for c in _REQUIRE_REFUSALS],
    ids=[c[0] for c in _REQUIRE_REFUSALS],
)
def test_channel_binding_require_refuses_anything_but_plus(
    msg: b.BackendMessage, cb_data: tuple[str, bytes] | None, why: str
) -> None:
    machine = StartupMachine(
        _options(password="pw", channel_binding="require", channel_binding_data=cb_data)
    )
    with pytest.raises(AuthenticationError, match=f"channel_binding=require.*{why}"):
        machine.handle(msg)
    assert machine.take_output() == b""
