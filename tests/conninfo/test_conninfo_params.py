"""make_params: precedence, defaults, keywords and host lists."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from trio_pg.conninfo import ConnectParams, HostSpec, RequireAuth, _resolve, make_params
from trio_pg.errors import InterfaceError


def _make(dsn: str | None = None, **params: object) -> ConnectParams:
    return make_params(dsn, params, environ={"HOME": "/nonexistent"})


# -- precedence -------------------------------------------------------------------------


def test_precedence_params_over_dsn_over_service_over_environment(tmp_path: Path) -> None:
    (tmp_path / ".pg_service.conf").write_text(
        "[s]\napplication_name=service\noptions=service\nuser=service\n", encoding="utf-8"
    )
    env = {
        "HOME": str(tmp_path),
        "PGSYSCONFDIR": str(tmp_path),
        "PGAPPNAME": "env",
        "PGOPTIONS": "env",
        "PGUSER": "env",
        "PGDATABASE": "env",
    }
    params = make_params(
        "service=s application_name=dsn options=dsn",
        {"application_name": "params"},
        environ=env,
    )
    assert params.application_name == "params"
    assert params.options == "dsn"
    assert params.user == "service"
    assert params.dbname == "env"


def test_none_in_params_means_not_given() -> None:
    params = make_params("application_name=dsn", {"application_name": None}, environ={})
    assert params.application_name == "dsn"


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGAPPNAME", "from-os-environ")
    assert make_params().application_name == "from-os-environ"


def test_explicit_environ_ignores_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGAPPNAME", "from-os-environ")
    assert make_params(environ={}).application_name is None


@pytest.mark.parametrize(
    ("variable", "attribute", "value", "expected"),
    [
        ("PGHOST", "hosts", "envhost", (HostSpec("envhost", None, 5432),)),
        ("PGHOSTADDR", "hosts", "192.0.2.1", (HostSpec("192.0.2.1", "192.0.2.1", 5432),)),
        ("PGPASSWORD", "password", "pw", "pw"),
        ("PGPASSFILE", "passfile", "/pf", "/pf"),
        ("PGCHANNELBINDING", "channel_binding", "require", "require"),
        ("PGCONNECT_TIMEOUT", "connect_timeout", "7", 7.0),
        ("PGCLIENTENCODING", "client_encoding", "UTF8", "UTF8"),
        ("PGOPTIONS", "options", "-c x=1", "-c x=1"),
        ("PGAPPNAME", "application_name", "app", "app"),
        ("PGSSLMODE", "sslmode", "verify-ca", "verify-ca"),
        ("PGSSLNEGOTIATION", "sslnegotiation", "postgres", "postgres"),
        ("PGSSLCERT", "sslcert", "/c", "/c"),
        ("PGSSLKEY", "sslkey", "/k", "/k"),
        ("PGSSLROOTCERT", "sslrootcert", "/r", "/r"),
        ("PGSSLCRL", "sslcrl", "/crl", "/crl"),
        ("PGSSLSNI", "sslsni", "0", False),
        ("PGREQUIREAUTH", "require_auth", "none", RequireAuth(frozenset({"none"}), False)),
        ("PGMINPROTOCOLVERSION", "min_protocol_version", "3.2", (3, 2)),
        ("PGMAXPROTOCOLVERSION", "max_protocol_version", "3.0", (3, 0)),
        ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version", "TLSv1.3", "TLSv1.3"),
        ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version", "TLSv1.3", "TLSv1.3"),
        ("PGGSSENCMODE", "gssencmode", "prefer", "prefer"),
        ("PGTARGETSESSIONATTRS", "target_session_attrs", "standby", "standby"),
        ("PGLOADBALANCEHOSTS", "load_balance_hosts", "random", "random"),
    ],
)
def test_environment_variables_supply_defaults(
    variable: str, attribute: str, value: str, expected: object
) -> None:
    assert getattr(make_params(environ={variable: value}), attribute) == expected


def test_pgport_pguser_pgdatabase() -> None:
    params = make_params(environ={"PGPORT": "6000", "PGUSER": "u", "PGDATABASE": "d"})
    assert (params.hosts[0].port, params.user, params.dbname) == (6000, "u", "d")


# -- defaults ---------------------------------------------------------------------------


def test_defaults() -> None:
    params = make_params(environ={"HOME": "/home/x"})
    assert params.user == getpass.getuser()
    assert params.dbname == params.user
    assert params.password is None
    assert params.passfile == "/home/x/.pgpass"
    assert params.hosts[0].port == 5432
    assert params.sslmode == "prefer"
    assert params.sslnegotiation == "postgres"
    assert params.sslsni is True
    assert params.channel_binding == "prefer"
    assert params.require_auth is None
    assert params.target_session_attrs == "any"
    assert params.load_balance_hosts == "disable"
    assert params.keepalives is True
    assert params.connect_timeout is None
    assert params.min_protocol_version == (3, 0)
    assert params.max_protocol_version == (3, 2)
    assert params.ssl_min_protocol_version == "TLSv1.2"
    assert params.ssl_max_protocol_version is None
    assert params.gssencmode == "disable"
    assert params.client_encoding is None


def test_dbname_defaults_to_the_resolved_user() -> None:
    assert make_params(environ={"PGUSER": "carol"}).dbname == "carol"


def test_default_host_is_first_existing_socket_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = tmp_path / "present"
    present.mkdir()
    monkeypatch.setattr(
        _resolve, "DEFAULT_SOCKET_DIRS", (str(tmp_path / "absent"), str(present), "/")
    )
    (host,) = make_params(environ={}).hosts
    assert host == HostSpec(str(present), None, 5432)
    assert host.is_unix


def test_default_host_is_localhost_without_socket_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_resolve, "DEFAULT_SOCKET_DIRS", (str(tmp_path / "absent"),))
    (host,) = make_params(environ={}).hosts
    assert host == HostSpec("localhost", None, 5432)
    assert not host.is_unix


def test_empty_values_count_as_unset_for_optional_settings() -> None:
    params = _make("password='' options='' sslcert='' application_name='' user=''")
    assert (params.password, params.options, params.sslcert, params.application_name) == (
        None,
        None,
        None,
        None,
    )
    assert params.user == getpass.getuser()


def test_database_is_an_alias_of_dbname() -> None:
    assert _make(database="d1").dbname == "d1"
    assert _make("database=d2").dbname == "d2"
    assert _make("dbname=dsn", database="params").dbname == "params"


def test_params_values_are_converted() -> None:
    params = _make(
        port=6543, connect_timeout=2.5, sslsni=False, keepalives=True, sslcert=Path("/certs/c.pem")
    )
    assert params.hosts[0].port == 6543
    assert params.connect_timeout == 2.5
    assert params.sslsni is False
    assert params.keepalives is True
    assert params.sslcert == "/certs/c.pem"


def test_bool_for_non_boolean_keyword_is_rejected() -> None:
    with pytest.raises(InterfaceError, match="a bool is only accepted for"):
        _make(port=True)


def test_unsupported_value_type_is_rejected() -> None:
    with pytest.raises(InterfaceError, match="port must be a str, int, float, bool or str path"):
        _make(port=[5432])


def test_repr_hides_passwords() -> None:
    text = repr(_make(password="hunter2", sslpassword="swordfish"))
    assert "hunter2" not in text
    assert "swordfish" not in text


# -- keywords ---------------------------------------------------------------------------


def test_unknown_keyword_is_named_with_suggestion() -> None:
    with pytest.raises(
        InterfaceError,
        match='unknown connection parameter "hots" in the connection string; did you mean "host"',
    ):
        _make("hots=x")


def test_unknown_keyword_in_params_suggests_ignoring_case() -> None:
    with pytest.raises(
        InterfaceError, match='"SSLMODE" in the keyword arguments; did you mean "sslmode"'
    ):
        _make(SSLMODE="require")


def test_unknown_keyword_without_close_match_points_to_docs() -> None:
    with pytest.raises(InterfaceError, match=r"see libpq-connect\.html"):
        _make("zzzzzz=1")


@pytest.mark.parametrize(
    "keyword",
    [
        "ssl_context",
        "server_settings",
        "statement_cache_size",
        "codecs",
        "max_message_size",
        "cleanup_grace",
        "max_scram_iterations",
    ],
)
def test_trio_pg_only_keyword_in_dsn_is_rejected(keyword: str) -> None:
    with pytest.raises(InterfaceError, match="only accepted as a Python keyword argument"):
        _make(f"{keyword}=1")


@pytest.mark.parametrize("keyword", ["requirepeer", "sslcrldir", "sslcertmode", "oauth_issuer"])
def test_unsupported_libpq_keyword_is_rejected(keyword: str) -> None:
    with pytest.raises(InterfaceError, match=f'"{keyword}".*trio_pg does not implement'):
        _make(f"{keyword}=require")


def test_unsupported_keyword_with_its_harmless_default_is_accepted() -> None:
    _make("gssdelegation=0 sslcertmode=allow")


def test_unsupported_environment_variable_is_rejected() -> None:
    with pytest.raises(InterfaceError, match="environment variable PGREQUIREPEER"):
        make_params(environ={"PGREQUIREPEER": "postgres"})


def test_compatibility_keywords_are_accepted() -> None:
    _make("krbsrvname=postgres gsslib=gssapi sslcompression=1 replication=false")


@pytest.mark.parametrize("value", ["true", "on", "1", "database"])
def test_replication_is_not_supported_yet(value: str) -> None:
    with pytest.raises(InterfaceError, match="not supported yet"):
        _make(f"replication={value}")


@pytest.mark.parametrize(
    ("dsn", "params", "env", "expected"),
    [
        ("requiressl=1", {}, {}, "require"),
        ("requiressl=0", {}, {"PGSSLMODE": "disable"}, "prefer"),
        ("requiressl=1 sslmode=verify-full", {}, {}, "verify-full"),
        ("sslmode=verify-full", {"requiressl": True}, {}, "require"),
        ("", {}, {"PGREQUIRESSL": "1"}, "require"),
        ("", {}, {"PGREQUIRESSL": "1", "PGSSLMODE": "allow"}, "allow"),
        ("", {}, {"PGREQUIRESSL": "0"}, "prefer"),
    ],
)
def test_deprecated_requiressl_maps_to_sslmode(
    dsn: str, params: dict[str, object], env: dict[str, str], expected: str
) -> None:
    assert make_params(dsn, params, environ=env).sslmode == expected


def test_requiressl_must_be_zero_or_one() -> None:
    with pytest.raises(InterfaceError, match="requiressl is deprecated"):
        _make("requiressl=yes")


# -- hosts ------------------------------------------------------------------------------


def test_one_port_applies_to_every_host() -> None:
    assert _make("host=a,b,c port=6000").hosts == (
        HostSpec("a", None, 6000),
        HostSpec("b", None, 6000),
        HostSpec("c", None, 6000),
    )


def test_ports_pair_with_hosts() -> None:
    assert _make("postgresql://a:1,b:2/db").hosts == (
        HostSpec("a", None, 1),
        HostSpec("b", None, 2),
    )


def test_empty_list_entries_mean_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resolve, "DEFAULT_SOCKET_DIRS", ("/",))
    params = make_params("host=a,,c port=7,,9", environ={"PGPORT": "1111", "PGHOST": "x"})
    assert params.hosts == (
        HostSpec("a", None, 7),
        HostSpec("/", None, 5432),
        HostSpec("c", None, 9),
    )


def test_port_count_mismatch_is_an_error() -> None:
    with pytest.raises(InterfaceError, match="could not match 3 port numbers to 2 hosts"):
        _make("host=a,b port=1,2,3")


def test_hostaddr_count_mismatch_is_an_error() -> None:
    with pytest.raises(InterfaceError, match="could not match 2 host names to 1 hostaddr values"):
        _make("host=a,b hostaddr=192.0.2.1")


def test_hostaddr_pairs_with_host() -> None:
    assert _make("host=a,b hostaddr=192.0.2.1,").hosts == (
        HostSpec("a", "192.0.2.1", 5432),
        HostSpec("b", None, 5432),
    )


def test_hostaddr_alone_connects_over_tcp() -> None:
    (host,) = _make("hostaddr=2001:db8::1").hosts
    assert host == HostSpec("2001:db8::1", "2001:db8::1", 5432)
    assert not host.is_unix


def test_hostaddr_must_be_numeric() -> None:
    with pytest.raises(InterfaceError, match=r'"db\.example" is not a numeric IP address'):
        _make("hostaddr=db.example")


@pytest.mark.parametrize("port", ["0", "65536", "abc", "5432x", "-1", "1_000"])
def test_invalid_port_is_rejected(port: str) -> None:
    with pytest.raises(InterfaceError, match="is not a port number between 1 and 65535"):
        _make(f"host=h port={port}")


def test_unix_host_spec() -> None:
    spec = HostSpec("/run/postgresql", None, 5433)
    assert spec.is_unix
    assert spec.socket_path == "/run/postgresql/.s.PGSQL.5433"
    abstract = HostSpec("@pg", None, 5432)
    assert abstract.is_unix
    assert abstract.socket_path == "@pg/.s.PGSQL.5432"
    assert not HostSpec("db.example", None, 5432).is_unix
    assert not HostSpec("/run/postgresql", "192.0.2.1", 5432).is_unix


def test_unix_socket_via_uri_host_parameter() -> None:
    (host,) = _make("postgresql:///db?host=/var/lib/postgresql&port=5433").hosts
    assert host.socket_path == "/var/lib/postgresql/.s.PGSQL.5433"
