"""make_params: validation of each keyword's value, with errors that name the origin."""

from __future__ import annotations

import os

import pytest

from trio_pg.conninfo import ConnectParams, RequireAuth, _resolve, make_params
from trio_pg.errors import InterfaceError


def _make(dsn: str | None = None, **params: object) -> ConnectParams:
    return make_params(dsn, params, environ={"HOME": "/nonexistent"})


# -- value validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "valid", "attribute"),
    [
        ("sslmode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], None),
        ("sslnegotiation", ["postgres"], None),
        ("channel_binding", ["disable", "prefer", "require"], None),
        (
            "target_session_attrs",
            ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"],
            None,
        ),
        ("load_balance_hosts", ["disable", "random"], None),
        ("gssencmode", ["disable", "prefer"], None),
    ],
)
def test_enumerated_keywords_accept_their_values_and_list_them_on_error(
    keyword: str, valid: list[str], attribute: str | None
) -> None:
    for value in valid:
        assert getattr(_make(**{keyword: value}), attribute or keyword) == value
    with pytest.raises(InterfaceError) as info:
        _make(**{keyword: "Bogus"})
    message = str(info.value)
    assert f'invalid {keyword} value "Bogus" (from the keyword arguments)' in message
    for value in valid:
        assert value in message


def test_invalid_value_names_environment_variable() -> None:
    with pytest.raises(InterfaceError, match="from the environment variable PGSSLMODE"):
        make_params(environ={"PGSSLMODE": "always"})


def test_sslnegotiation_direct_requires_tls_only_sslmode() -> None:
    assert _make("sslnegotiation=direct sslmode=require").sslnegotiation == "direct"
    assert _make("sslnegotiation=direct sslmode=verify-full").sslnegotiation == "direct"
    for mode in ["disable", "allow", "prefer"]:
        with pytest.raises(InterfaceError, match=f'needs sslmode .* not "{mode}"'):
            _make(f"sslnegotiation=direct sslmode={mode}")


def test_sslnegotiation_direct_with_default_sslmode_is_an_error() -> None:
    with pytest.raises(InterfaceError, match='not "prefer"'):
        _make("sslnegotiation=direct")


def test_sslrootcert_system_defaults_to_verify_full() -> None:
    params = _make("sslrootcert=system")
    assert (params.sslmode, params.sslrootcert) == ("verify-full", "system")


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require", "verify-ca"])
def test_sslrootcert_system_rejects_weaker_sslmode(mode: str) -> None:
    with pytest.raises(InterfaceError, match='sslrootcert=system requires sslmode "verify-full"'):
        _make(f"sslrootcert=system sslmode={mode}")


def test_sslrootcert_system_weaker_sslmode_from_environment_is_an_error() -> None:
    with pytest.raises(InterfaceError, match="PGSSLMODE"):
        make_params("sslrootcert=system", environ={"PGSSLMODE": "require"})


def test_sslrootcert_path_named_system_in_a_directory_is_a_file() -> None:
    assert _make("sslrootcert=./system sslmode=require").sslmode == "require"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10", 10.0), ("1", 1.0), (" 3 ", 3.0), ("0", None), ("-5", None), ("2.5", 2.5), ("", None)],
)
def test_connect_timeout(value: str, expected: float | None) -> None:
    assert _make(connect_timeout=value).connect_timeout == expected


@pytest.mark.parametrize("value", ["abc", "1e3", "inf", "nan", "1_0"])
def test_connect_timeout_must_be_a_number(value: str) -> None:
    with pytest.raises(InterfaceError, match="expected a number of seconds"):
        _make(connect_timeout=value)


@pytest.mark.parametrize("value", ["UTF8", "utf8", "UTF-8", "utf_8"])
def test_client_encoding_utf8_spellings_are_accepted(value: str) -> None:
    assert _make(client_encoding=value).client_encoding == "UTF8"


@pytest.mark.parametrize("value", ["LATIN1", "SQL_ASCII", "auto"])
def test_client_encoding_other_than_utf8_is_rejected_with_reason(value: str) -> None:
    with pytest.raises(InterfaceError, match="trio_pg always talks UTF8"):
        _make(client_encoding=value)


def test_client_encoding_from_environment_names_the_variable() -> None:
    with pytest.raises(InterfaceError, match="PGCLIENTENCODING"):
        make_params(environ={"PGCLIENTENCODING": "LATIN1"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("password", RequireAuth(frozenset({"password"}), False)),
        ("scram-sha-256,none", RequireAuth(frozenset({"scram-sha-256", "none"}), False)),
        ("!password,!md5", RequireAuth(frozenset({"password", "md5"}), True)),
        ("gss,sspi", RequireAuth(frozenset({"gss", "sspi"}), False)),
        ("", None),
    ],
)
def test_require_auth_is_parsed(value: str, expected: RequireAuth | None) -> None:
    assert _make(require_auth=value).require_auth == expected


def test_require_auth_allows() -> None:
    allow = RequireAuth(frozenset({"scram-sha-256"}), False)
    forbid = RequireAuth(frozenset({"password", "md5"}), True)
    assert allow.allows("scram-sha-256")
    assert not allow.allows("md5")
    assert forbid.allows("scram-sha-256")
    assert not forbid.allows("password")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("password,!md5", "cannot be mixed"),
        ("password,password", 'method "password" is listed twice'),
        ("!md5,!md5", 'method "md5" is listed twice'),
        ("kerberos", 'unknown method "kerberos"'),
        ("password,", 'unknown method ""'),
        ("!!md5", 'unknown method "!!md5"'),
    ],
)
def test_require_auth_errors(value: str, problem: str) -> None:
    with pytest.raises(InterfaceError, match=problem):
        _make(require_auth=value)


def test_gssencmode_require_is_rejected_without_gssapi() -> None:
    with pytest.raises(InterfaceError, match="no GSSAPI support"):
        _make(gssencmode="require")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("", ((3, 0), (3, 2))),
        ("min_protocol_version=3.2", ((3, 2), (3, 2))),
        ("max_protocol_version=3.0", ((3, 0), (3, 0))),
        ("min_protocol_version=latest max_protocol_version=latest", ((3, 2), (3, 2))),
        ("min_protocol_version=3.0 max_protocol_version=3.2", ((3, 0), (3, 2))),
    ],
)
def test_protocol_versions(settings: str, expected: tuple[tuple[int, int], ...]) -> None:
    params = _make(settings)
    assert (params.min_protocol_version, params.max_protocol_version) == expected


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("min_protocol_version=3.1", "expected one of 3.0, 3.2, latest"),
        ("max_protocol_version=2.0", "expected one of 3.0, 3.2, latest"),
        ("min_protocol_version=3.2 max_protocol_version=3.0", "greater than max_protocol_version"),
    ],
)
def test_protocol_version_errors(settings: str, problem: str) -> None:
    with pytest.raises(InterfaceError, match=problem):
        _make(settings)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("ssl_min_protocol_version=tlsv1.3", ("TLSv1.3", None)),
        ("ssl_min_protocol_version=''", (None, None)),
        ("ssl_max_protocol_version=TLSv1.2", ("TLSv1.2", "TLSv1.2")),
        ("ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1.1", ("TLSv1", "TLSv1.1")),
    ],
)
def test_tls_protocol_versions(settings: str, expected: tuple[str | None, str | None]) -> None:
    params = _make(settings)
    assert (params.ssl_min_protocol_version, params.ssl_max_protocol_version) == expected


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("ssl_min_protocol_version=TLSv9", "expected one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"),
        ("ssl_max_protocol_version=TLSv1.1", r"lower than ssl_min_protocol_version \(TLSv1.2 by"),
        (
            "ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
            "greater than ssl_max_protocol_version",
        ),
    ],
)
def test_tls_protocol_version_errors(settings: str, problem: str) -> None:
    with pytest.raises(InterfaceError, match=problem):
        _make(settings)


def test_keepalive_settings() -> None:
    params = _make(
        "keepalives=1 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 "
        "tcp_user_timeout=9000"
    )
    assert (
        params.keepalives,
        params.keepalives_idle,
        params.keepalives_interval,
        params.keepalives_count,
        params.tcp_user_timeout,
    ) == (True, 30, 5, 3, 9000)


def test_keepalives_zero_turns_them_off_and_zero_intervals_mean_system_default() -> None:
    params = _make("keepalives=0 keepalives_idle=0 tcp_user_timeout=0")
    assert (params.keepalives, params.keepalives_idle, params.tcp_user_timeout) == (
        False,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("keepalives=yes", "expected an integer"),
        ("keepalives_idle=-1", "at least 0"),
        ("keepalives_count=1.5", "expected an integer"),
        ("tcp_user_timeout=x", "expected an integer"),
        ("sslsni=2", "expected 0 or 1"),
        ("sslcompression=yes", "expected 0 or 1"),
    ],
)
def test_numeric_and_flag_errors(setting: str, problem: str) -> None:
    with pytest.raises(InterfaceError, match=problem):
        _make(setting)


def test_password_value_is_never_shown_in_errors() -> None:
    # No password validation exists today; this guards the generic formatter.
    values = _resolve._Values({"password": ("hunter2", "the connection string")})
    assert "hunter2" not in str(values.invalid("password", "bad"))


def test_passfile_none_without_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resolve, "default_passfile", lambda environ: None)
    assert make_params(environ={}).passfile is None


@pytest.mark.skipif(os.name == "nt", reason="POSIX paths")
def test_passfile_home_from_password_database_when_home_unset() -> None:
    passfile = make_params(environ={}).passfile
    assert passfile is not None
    assert passfile.endswith("/.pgpass")
