"""parse_dsn: libpq URIs and keyword/value strings (libpq-connect.html#LIBPQ-CONNSTRING)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_pg.conninfo import parse_dsn
from trio_pg.errors import InterfaceError


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://", {}),
        ("postgres://", {}),
        ("postgresql://localhost", {"host": "localhost"}),
        ("postgresql://localhost:5433", {"host": "localhost", "port": "5433"}),
        ("postgresql://localhost/mydb", {"host": "localhost", "dbname": "mydb"}),
        ("postgresql://user@localhost", {"user": "user", "host": "localhost"}),
        (
            "postgresql://user:secret@localhost",
            {"user": "user", "password": "secret", "host": "localhost"},
        ),
        ("postgresql://:secret@h", {"password": "secret", "host": "h"}),
        ("postgresql://u:@h", {"user": "u", "host": "h"}),
        ("postgresql://us:er:pw@h", {"user": "us", "password": "er:pw", "host": "h"}),
        (
            "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
            {
                "user": "other",
                "host": "localhost",
                "dbname": "otherdb",
                "connect_timeout": "10",
                "application_name": "myapp",
            },
        ),
        ("postgresql:///mydb", {"dbname": "mydb"}),
        ("postgresql://h/", {"host": "h"}),
        ("postgresql://h/db?", {"host": "h", "dbname": "db"}),
        ("postgresql://h/db/extra", {"host": "h", "dbname": "db/extra"}),
        # libpq's JDBC compatibility spelling.
        ("postgresql://h?ssl=true", {"host": "h", "sslmode": "require"}),
        # Query parameters override what the authority said.
        ("postgresql://u@h/db?user=v&dbname=w", {"user": "v", "host": "h", "dbname": "w"}),
        # "+" is not a space in a URI.
        (
            "postgresql://a+b@h/c+d?options=x+y",
            {"user": "a+b", "host": "h", "dbname": "c+d", "options": "x+y"},
        ),
    ],
)
def test_uri_components_become_keywords(uri: str, expected: dict[str, str]) -> None:
    assert parse_dsn(uri) == expected


def test_uri_percent_decodes_every_component() -> None:
    assert parse_dsn("postgresql://u%40x:p%3Aw%2F@h%2Dh/d%20b?options=-c%20a%3D1%26b") == {
        "user": "u@x",
        "password": "p:w/",
        "host": "h-h",
        "dbname": "d b",
        "options": "-c a=1&b",
    }


def test_uri_percent_decodes_utf8() -> None:
    assert parse_dsn("postgresql://h/%C3%A9t%C3%A9")["dbname"] == "été"


def test_uri_unix_socket_directory_in_host_query_parameter() -> None:
    assert parse_dsn("postgresql:///dbname?host=/var/lib/postgresql") == {
        "dbname": "dbname",
        "host": "/var/lib/postgresql",
    }


def test_uri_unix_socket_directory_percent_encoded_in_authority() -> None:
    assert parse_dsn("postgresql://%2Fvar%2Flib%2Fpostgresql/dbname") == {
        "host": "/var/lib/postgresql",
        "dbname": "dbname",
    }


def test_uri_multiple_hosts_become_comma_lists() -> None:
    assert parse_dsn("postgresql://host1:123,host2:456/somedb?target_session_attrs=any") == {
        "host": "host1,host2",
        "port": "123,456",
        "dbname": "somedb",
        "target_session_attrs": "any",
    }


def test_uri_hosts_without_ports_leave_port_unset() -> None:
    assert parse_dsn("postgresql://host1,host2/db") == {"host": "host1,host2", "dbname": "db"}


def test_uri_missing_ports_are_empty_list_entries() -> None:
    assert parse_dsn("postgresql://h1,h2:5,h3/db") == {
        "host": "h1,h2,h3",
        "port": ",5,",
        "dbname": "db",
    }


def test_uri_empty_host_entry_is_kept() -> None:
    assert parse_dsn("postgresql://h1,:5433/db") == {"host": "h1,", "port": ",5433", "dbname": "db"}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://[::1]:5433/db", {"host": "::1", "port": "5433", "dbname": "db"}),
        (
            "postgresql://[2001:db8::1234]/database",
            {"host": "2001:db8::1234", "dbname": "database"},
        ),
        ("postgresql://[::1],[::2]:7/db", {"host": "::1,::2", "port": ",7", "dbname": "db"}),
        ("postgresql://[fe80::1%25eth0]", {"host": "fe80::1%eth0"}),
        (
            "postgresql://u@[::1]?sslmode=require",
            {"user": "u", "host": "::1", "sslmode": "require"},
        ),
    ],
)
def test_uri_ipv6_hosts_in_brackets(uri: str, expected: dict[str, str]) -> None:
    assert parse_dsn(uri) == expected


def test_uri_leading_whitespace_is_ignored() -> None:
    assert parse_dsn("  postgresql://h") == {"host": "h"}


@pytest.mark.parametrize(
    ("uri", "problem", "position"),
    [
        ("postgresql://h/d%zz", "invalid percent-encoding", 17),
        ("postgresql://h/db?x=%4", "invalid percent-encoding", 21),
        ("postgresql://h/d%00", "%00", 17),
        ("postgresql://h/%C3", "not valid UTF-8", 16),
        ("postgresql://[::1/db", 'missing "]"', 14),
        ("postgresql://[]/db", "empty IPv6 address", 14),
        ("postgresql://[::1]x/db", 'unexpected "x" after the IPv6 address', 19),
        ("postgresql://h/db?sslmode", 'missing "="', 19),
        ("postgresql://h/db?a=b=c", 'extra "="', 19),
        ("postgresql://h/db?=x", "missing keyword", 19),
        ("postgresql://h/db?ssl=false", '"ssl" only accepts "true"', 19),
    ],
)
def test_uri_syntax_errors_say_where(uri: str, problem: str, position: int) -> None:
    with pytest.raises(InterfaceError, match="invalid connection string") as info:
        parse_dsn(uri)
    assert problem in str(info.value)
    assert str(info.value).endswith(f"at character {position}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("   ", {}),
        ("host=localhost port=5432", {"host": "localhost", "port": "5432"}),
        ("host = a  port= 5 user =b", {"host": "a", "port": "5", "user": "b"}),
        ("host=a\tport=5\nuser=b\r\n", {"host": "a", "port": "5", "user": "b"}),
        ("password='it\\'s a secret'", {"password": "it's a secret"}),
        ("password='back\\\\slash'", {"password": "back\\slash"}),
        ("dbname=my\\ db", {"dbname": "my db"}),
        ("password=a\\\\b", {"password": "a\\b"}),
        ("password=''", {"password": ""}),
        ("host=", {"host": ""}),
        ("options=a=b", {"options": "a=b"}),
        # A quote inside an unquoted value is an ordinary character.
        ("password=it's", {"password": "it's"}),
        ("host=a host=b", {"host": "b"}),
        # libpq drops a lone backslash at the very end.
        ("host=a\\", {"host": "a"}),
        # Non-ASCII spaces are not separators in libpq.
        ("application_name=a\u00a0b", {"application_name": "a\u00a0b"}),
        # After "=", whitespace is skipped and the next word is the value (libpq).
        ("host= port=5", {"host": "port=5"}),
    ],
)
def test_keyword_value_syntax(text: str, expected: dict[str, str]) -> None:
    assert parse_dsn(text) == expected


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("host", 'missing "=" after "host"', 1),
        ("host=a port", 'missing "=" after "port"', 8),
        ("host a", 'missing "=" after "host"', 1),
        ("=a", 'missing keyword before "="', 1),
        ("host='a'b", 'missing "=" after "b"', 9),
        ("host=a password='abc", 'unterminated quoted value for "password"', 17),
        ("password='abc\\'", 'unterminated quoted value for "password"', 10),
    ],
)
def test_keyword_value_syntax_errors_say_where(text: str, problem: str, position: int) -> None:
    with pytest.raises(InterfaceError, match="invalid connection string") as info:
        parse_dsn(text)
    assert problem in str(info.value)
    assert str(info.value).endswith(f"at character {position}")


def test_syntax_error_does_not_show_the_password() -> None:
    with pytest.raises(InterfaceError) as info:
        parse_dsn("user=u password='hunter2")
    assert "hunter2" not in str(info.value)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


_keywords = st.sampled_from(
    ["host", "port", "dbname", "user", "password", "options", "application_name", "sslcert"]
)
_values = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30)
_separators = st.text(" \t\n\r\v\f", min_size=1, max_size=3)


@given(st.dictionaries(_keywords, _values), st.data())
def test_keyword_value_quoting_round_trips(settings: dict[str, str], data: st.DataObject) -> None:
    parts = [
        f"{keyword}{data.draw(_separators.map(lambda s: s[:1]) | st.just(''))}="
        f"{data.draw(st.sampled_from(['', ' ']))}{_quote(value)}"
        for keyword, value in settings.items()
    ]
    text = "".join(part + data.draw(_separators) for part in parts)
    assert parse_dsn(text) == settings


@given(st.dictionaries(_keywords, _values.filter(bool)))
def test_uri_query_percent_encoding_round_trips(settings: dict[str, str]) -> None:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in settings.items())
    assert parse_dsn(f"postgresql://?{query}") == settings


@given(_values.filter(bool), _values.filter(bool), _values.filter(bool))
def test_uri_userinfo_and_dbname_round_trip(user: str, password: str, dbname: str) -> None:
    uri = (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@h/{quote(dbname, safe='')}"
    )
    assert parse_dsn(uri) == {"user": user, "password": password, "host": "h", "dbname": dbname}
