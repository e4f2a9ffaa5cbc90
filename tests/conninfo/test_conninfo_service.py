"""Connection service files (libpq-pgservice.html), through make_params."""

from __future__ import annotations

from pathlib import Path

import pytest

from trio_pg.conninfo import make_params
from trio_pg.errors import InterfaceError


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A home directory and a PGSYSCONFDIR, both empty."""
    home = tmp_path / "home"
    sysconf = tmp_path / "etc"
    home.mkdir()
    sysconf.mkdir()
    return home, sysconf


def _env(dirs: tuple[Path, Path], **extra: str) -> dict[str, str]:
    home, sysconf = dirs
    return {"HOME": str(home), "PGSYSCONFDIR": str(sysconf), **extra}


def test_service_section_supplies_settings(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text(
        "# comment\n[mydb]\nhost=somehost\nport=5433\nuser=admin\n", encoding="utf-8"
    )
    params = make_params("service=mydb", environ=_env(dirs))
    assert (params.hosts[0].host, params.hosts[0].port, params.user) == ("somehost", 5433, "admin")


def test_connection_string_overrides_service_which_overrides_environment(
    dirs: tuple[Path, Path],
) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text(
        "[mydb]\nhost=somehost\nport=5433\nuser=admin\n", encoding="utf-8"
    )
    env = _env(dirs, PGUSER="envuser", PGDATABASE="envdb")
    params = make_params("service=mydb port=5434", environ=env)
    assert (params.hosts[0].host, params.hosts[0].port) == ("somehost", 5434)
    assert params.user == "admin"
    assert params.dbname == "envdb"


def test_keyword_arguments_override_service(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\nuser=admin\n", encoding="utf-8")
    assert make_params(params={"service": "s", "user": "me"}, environ=_env(dirs)).user == "me"


def test_service_named_by_pgservice(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\nuser=admin\n", encoding="utf-8")
    assert make_params(environ=_env(dirs, PGSERVICE="s")).user == "admin"


def test_service_in_connection_string_wins_over_pgservice(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[a]\nuser=ua\n[b]\nuser=ub\n", encoding="utf-8")
    assert make_params("service=b", environ=_env(dirs, PGSERVICE="a")).user == "ub"


def test_pgservicefile_replaces_the_user_file(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\nuser=fromhome\n", encoding="utf-8")
    other = tmp_path / "services.conf"
    other.write_text("[s]\nuser=fromenv\n", encoding="utf-8")
    params = make_params("service=s", environ=_env(dirs, PGSERVICEFILE=str(other)))
    assert params.user == "fromenv"


def test_user_file_takes_precedence_over_system_file(dirs: tuple[Path, Path]) -> None:
    home, sysconf = dirs
    (home / ".pg_service.conf").write_text("[s]\nuser=fromuser\n", encoding="utf-8")
    (sysconf / "pg_service.conf").write_text("[s]\nuser=fromsystem\nport=7\n", encoding="utf-8")
    params = make_params("service=s", environ=_env(dirs))
    # The whole section comes from the user file; the system one is not merged in.
    assert (params.user, params.hosts[0].port) == ("fromuser", 5432)


def test_system_file_used_when_user_file_lacks_the_service(dirs: tuple[Path, Path]) -> None:
    home, sysconf = dirs
    (home / ".pg_service.conf").write_text("[other]\nuser=x\n", encoding="utf-8")
    (sysconf / "pg_service.conf").write_text("[s]\nuser=fromsystem\n", encoding="utf-8")
    assert make_params("service=s", environ=_env(dirs)).user == "fromsystem"


def test_missing_service_is_an_error_naming_the_files(dirs: tuple[Path, Path]) -> None:
    home, sysconf = dirs
    with pytest.raises(InterfaceError, match='definition of service "nope" not found') as info:
        make_params("service=nope", environ=_env(dirs))
    assert str(home / ".pg_service.conf") in str(info.value)
    assert str(sysconf / "pg_service.conf") in str(info.value)


def test_first_value_in_a_section_wins(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\nport=5433\nport=5434\n", encoding="utf-8")
    assert make_params("service=s", environ=_env(dirs)).hosts[0].port == 5433


def test_section_ends_at_next_header_and_other_sections_are_not_checked(
    dirs: tuple[Path, Path],
) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text(
        "[broken]\nnot a setting\n\n  [s]  \n  user=u  \n# c\n[t]\ndbname=other\n",
        encoding="utf-8",
    )
    params = make_params("service=s", environ=_env(dirs))
    assert (params.user, params.dbname) == ("u", "u")


def test_service_value_is_everything_after_first_equals(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\noptions=-c a=b\n", encoding="utf-8")
    assert make_params("service=s", environ=_env(dirs)).options == "-c a=b"


def test_service_line_without_equals_is_a_syntax_error_with_line(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    path = home / ".pg_service.conf"
    path.write_text("[s]\nhost=h\njunk\n", encoding="utf-8")
    with pytest.raises(InterfaceError, match=f'syntax error in service file "{path}", line 3'):
        make_params("service=s", environ=_env(dirs))


def test_service_unknown_keyword_names_file_and_line(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    path = home / ".pg_service.conf"
    path.write_text("[s]\nhost = h\n", encoding="utf-8")
    with pytest.raises(InterfaceError, match=f'"host " in service file "{path}", line 2'):
        make_params("service=s", environ=_env(dirs))


def test_nested_service_is_rejected(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\nservice=t\n", encoding="utf-8")
    with pytest.raises(InterfaceError, match="nested service"):
        make_params("service=s", environ=_env(dirs))


def test_service_cannot_set_trio_pg_options(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    (home / ".pg_service.conf").write_text("[s]\nstatement_cache_size=0\n", encoding="utf-8")
    with pytest.raises(InterfaceError, match="only accepted as a Python keyword argument"):
        make_params("service=s", environ=_env(dirs))


def test_service_settings_are_validated_with_their_origin(dirs: tuple[Path, Path]) -> None:
    home, _ = dirs
    path = home / ".pg_service.conf"
    path.write_text("[s]\nsslmode=sometimes\n", encoding="utf-8")
    with pytest.raises(InterfaceError, match=f'from service file "{path}", line 2'):
        make_params("service=s", environ=_env(dirs))


def test_empty_service_name_means_no_service(dirs: tuple[Path, Path]) -> None:
    assert make_params("service='' user=u", environ=_env(dirs, PGSERVICE="nope")).user == "u"
