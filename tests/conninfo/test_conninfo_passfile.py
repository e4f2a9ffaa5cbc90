"""The password file (libpq-pgpass.html), through ConnectParams.password_for."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from trio_pg.conninfo import ConnectParams, HostSpec, make_params
from trio_pg.conninfo._files import DEFAULT_SOCKET_DIRS


def _passfile(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "pgpass"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _params(passfile: Path, dsn: str = "", **extra: object) -> ConnectParams:
    return make_params(
        dsn,
        {"passfile": passfile, "user": "alice", "dbname": "app", **extra},
        environ={"HOME": str(passfile.parent)},
    )


def _only(params: ConnectParams) -> HostSpec:
    (host,) = params.hosts
    return host


def test_passfile_line_matching_host_port_db_user_gives_password(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "db.example:5432:app:alice:s3cret\n")
    params = _params(path, "host=db.example")
    assert params.password_for(_only(params)) == "s3cret"


@pytest.mark.parametrize(
    "line",
    [
        "other:5432:app:alice:x",
        "db.example:5433:app:alice:x",
        "db.example:5432:other:alice:x",
        "db.example:5432:app:bob:x",
        "DB.example:5432:app:alice:x",  # comparisons are case-sensitive
        "db.example:5432:app",  # too few fields never match
    ],
)
def test_passfile_line_differing_in_any_field_does_not_match(tmp_path: Path, line: str) -> None:
    params = _params(_passfile(tmp_path, line + "\n"), "host=db.example")
    assert params.password_for(_only(params)) is None


def test_passfile_first_matching_line_wins(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "db.example:5432:app:alice:first\n*:*:*:*:second\n")
    params = _params(path, "host=db.example")
    assert params.password_for(_only(params)) == "first"


@pytest.mark.parametrize(
    "line",
    [
        "*:5432:app:alice:pw",
        "db.example:*:app:alice:pw",
        "db.example:5432:*:alice:pw",
        "db.example:5432:app:*:pw",
        "*:*:*:*:pw",
    ],
)
def test_passfile_star_field_matches_anything(tmp_path: Path, line: str) -> None:
    params = _params(_passfile(tmp_path, line + "\n"), "host=db.example")
    assert params.password_for(_only(params)) == "pw"


def test_passfile_star_is_a_wildcard_only_as_the_whole_field(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "db.*:5432:app:alice:wild\n*.example:5432:app:alice:wild\n")
    params = _params(path, "host=db.example")
    assert params.password_for(_only(params)) is None


def test_passfile_escaped_star_is_literal(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "\\*:5432:app:alice:literal\n")
    assert _params(path, "host=db.example").password_for(HostSpec("db.example", None, 5432)) is None
    assert _params(path, "host=*").password_for(HostSpec("*", None, 5432)) == "literal"


def test_passfile_backslash_escapes_colon_and_backslash_in_fields(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "db.example:5432:my\\:db:dom\\\\alice:pw\n")
    params = make_params(
        "host=db.example",
        {"passfile": path, "user": "dom\\alice", "dbname": "my:db"},
        environ={},
    )
    assert params.password_for(_only(params)) == "pw"


def test_passfile_password_unescapes_and_ends_at_unescaped_colon(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "*:*:*:*:a\\:b\\\\c:ignored\n")
    params = _params(path, "host=h")
    assert params.password_for(_only(params)) == "a:b\\c"


def test_passfile_skips_comments_and_blank_lines_and_accepts_crlf(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "# *:*:*:*:comment\r\n\r\nh:5432:app:alice:pw\r\n")
    params = _params(path, "host=h")
    assert params.password_for(_only(params)) == "pw"


def test_passfile_matches_the_port_of_each_host(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "h1:5433:app:alice:one\nh2:5434:app:alice:two\n")
    params = _params(path, "host=h1,h2 port=5433,5434")
    assert [params.password_for(h) for h in params.hosts] == ["one", "two"]


@pytest.mark.parametrize("directory", DEFAULT_SOCKET_DIRS)
def test_passfile_localhost_matches_default_socket_directory(
    tmp_path: Path, directory: str
) -> None:
    params = _params(_passfile(tmp_path, "localhost:5432:app:alice:local\n"), f"host={directory}")
    assert params.password_for(_only(params)) == "local"


def test_passfile_localhost_does_not_match_other_socket_directory(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "localhost:5432:app:alice:local\n")
    params = _params(path, f"host={tmp_path}")
    assert params.password_for(_only(params)) is None


def test_passfile_socket_directory_matches_literally(tmp_path: Path) -> None:
    path = _passfile(tmp_path, f"{tmp_path}:5432:app:alice:bydir\n")
    params = _params(path, f"host={tmp_path}")
    assert params.password_for(_only(params)) == "bydir"


def test_passfile_matches_hostaddr_when_host_is_absent(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "192.0.2.7:5432:app:alice:byaddr\n")
    params = _params(path, "hostaddr=192.0.2.7")
    assert params.password_for(_only(params)) == "byaddr"


def test_passfile_matches_host_not_hostaddr_when_both_given(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "192.0.2.7:5432:app:alice:byaddr\ndb:5432:app:alice:byname\n")
    params = _params(path, "host=db hostaddr=192.0.2.7")
    assert params.password_for(_only(params)) == "byname"


def test_explicit_password_wins_and_passfile_is_not_read(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "*:*:*:*:fromfile\n", mode=0o644)
    params = _params(path, "host=h password=explicit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert params.password_for(_only(params)) == "explicit"


def test_missing_passfile_gives_none_without_warning(tmp_path: Path) -> None:
    params = _params(tmp_path / "absent", "host=h")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert params.password_for(_only(params)) is None


@pytest.mark.skipif(os.name == "nt", reason="Windows has no permission check")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o610])
def test_passfile_ignored_with_warning_when_group_or_world_accessible(
    tmp_path: Path, mode: int
) -> None:
    path = _passfile(tmp_path, "*:*:*:*:pw\n", mode=mode)
    params = _params(path, "host=h")
    with pytest.warns(UserWarning, match="group or others can access it; run: chmod 0600"):
        assert params.password_for(_only(params)) is None


def test_passfile_ignored_with_warning_when_not_a_plain_file(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    params = _params(directory, "host=h")
    with pytest.warns(UserWarning, match="not a plain file"):
        assert params.password_for(_only(params)) is None


def test_passfile_is_read_again_on_each_call(tmp_path: Path) -> None:
    path = _passfile(tmp_path, "*:*:*:*:old\n")
    params = _params(path, "host=h")
    assert params.password_for(_only(params)) == "old"
    path.write_text("*:*:*:*:new\n", encoding="utf-8")
    assert params.password_for(_only(params)) == "new"


def test_passfile_path_comes_from_passfile_then_pgpassfile_then_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PGPASSFILE": "/env/pgpass"}
    assert make_params("passfile=/explicit", environ=env).passfile == "/explicit"
    assert make_params(environ=env).passfile == "/env/pgpass"
    assert make_params(environ={"HOME": str(tmp_path)}).passfile == str(tmp_path / ".pgpass")


def test_default_passfile_in_home_is_used(tmp_path: Path) -> None:
    _passfile(tmp_path, "*:*:*:*:fromhome\n").rename(tmp_path / ".pgpass")
    params = make_params("host=h user=u", environ={"HOME": str(tmp_path)})
    assert params.password_for(_only(params)) == "fromhome"
