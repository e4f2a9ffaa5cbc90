"""Tests for trio_pg.testing: discovery, cluster lifecycle, TLS files and auth rules.

Connections are checked with ``psql`` (any version: it is only a client), so these
tests do not depend on trio_pg's own client.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trustme

import trio_pg.testing.binaries as binaries_module
import trio_pg.testing.cluster as cluster_module
from trio_pg.testing import (
    PostgresNotFoundError,
    PostgresServer,
    ServerStartError,
    TLSFiles,
    User,
    find_binaries,
    inspect_bindir,
    open_postgres,
)
from trio_pg.testing.config import bootstrap_sql, render_hba
from trio_pg.testing.plugin import TLS_USERS

PSQL_TIMEOUT = 30.0

integration = pytest.mark.integration


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def psql() -> str:
    """A psql of any version: next to the server's binaries, from Debian, or on PATH."""
    own = [str(find_binaries().bindir / "psql")]
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    on_path = [p for p in [shutil.which("psql")] if p]
    for candidate in [*own, *debian, *on_path]:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no psql client on this machine (install postgresql-client)")


def run_psql(
    psql: str, dsn: str, sql: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    # Our own PG* variables would override parts of the DSN's defaults; drop them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [psql, "-X", "-w", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, dsn],
        capture_output=True,
        text=True,
        env=env,
        timeout=PSQL_TIMEOUT,
        check=False,
    )


def query(psql: str, dsn: str, sql: str, password: str | None = None) -> str:
    result = run_psql(psql, dsn, sql, password)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def make_fake_bindir(path: Path, version: str, *, programs: tuple[str, ...] = ()) -> Path:
    """Create shell-script stand-ins for initdb/postgres that only answer --version."""
    path.mkdir(parents=True)
    for program in programs or ("initdb", "postgres"):
        script = path / program
        script.write_text(f'#!/bin/sh\necho "{program} (PostgreSQL) {version}"\n')
        script.chmod(0o755)
    return path


def make_fake_pg_config(directory: Path, bindir: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "pg_config"
    script.write_text(f'#!/bin/sh\necho "{bindir}"\n')
    script.chmod(0o755)


@pytest.fixture
def no_system_installs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the Debian/RPM globs at an empty directory tree under tmp_path."""
    root = tmp_path / "system"
    monkeypatch.setattr(
        binaries_module,
        "SYSTEM_BINDIR_GLOBS",
        (f"{root}/lib/postgresql/*/bin", f"{root}/pgsql-*/bin"),
    )
    return root


# -- discovery -------------------------------------------------------------------------


def test_trio_pg_bindir_wins_over_pg_config(tmp_path: Path, no_system_installs: Path) -> None:
    chosen = make_fake_bindir(tmp_path / "chosen", "17.2")
    other = make_fake_bindir(tmp_path / "other", "16.1")
    make_fake_pg_config(tmp_path / "path", other)
    env = {"TRIO_PG_BINDIR": str(chosen), "PATH": str(tmp_path / "path")}
    assert find_binaries(env).bindir == chosen.resolve()


def test_pg_config_wins_over_system_installs(tmp_path: Path, no_system_installs: Path) -> None:
    make_fake_bindir(no_system_installs / "lib/postgresql/18/bin", "18.4")
    from_pg_config = make_fake_bindir(tmp_path / "pgc", "16.1")
    make_fake_pg_config(tmp_path / "path", from_pg_config)
    found = find_binaries({"PATH": str(tmp_path / "path")})
    assert found.bindir == from_pg_config.resolve()
    assert found.version == (16, 1)


def test_system_installs_newest_major_first_and_before_path(
    tmp_path: Path, no_system_installs: Path
) -> None:
    for major in ("9", "12", "10"):
        make_fake_bindir(no_system_installs / f"lib/postgresql/{major}/bin", f"{major}.3")
    on_path = make_fake_bindir(tmp_path / "path", "18.0")
    found = find_binaries({"PATH": str(on_path)})
    # Numeric order: 12 is newer than 9 although "9" > "12" as text.
    assert found.bindir == (no_system_installs / "lib/postgresql/12/bin").resolve()


def test_rpm_layout_is_searched(tmp_path: Path, no_system_installs: Path) -> None:
    rpm = make_fake_bindir(no_system_installs / "pgsql-16/bin", "16.4")
    assert find_binaries({"PATH": ""}).bindir == rpm.resolve()


def test_path_skips_stray_initdb_and_follows_symlinks(
    tmp_path: Path, no_system_installs: Path
) -> None:
    stray = make_fake_bindir(tmp_path / "stray", "15.1", programs=("initdb",))
    real = make_fake_bindir(tmp_path / "real", "15.1")
    links = tmp_path / "links"
    links.mkdir()
    (links / "initdb").symlink_to(real / "initdb")  # like /usr/local/bin/initdb here
    env = {"PATH": os.pathsep.join([str(stray), str(links)])}
    assert find_binaries(env).bindir == real.resolve()


def test_bindir_with_mismatched_versions_is_rejected(tmp_path: Path) -> None:
    bindir = make_fake_bindir(tmp_path / "mixed", "15.1", programs=("initdb",))
    make_fake_bindir(tmp_path / "tmp", "16.2", programs=("postgres",))
    shutil.move(tmp_path / "tmp" / "postgres", bindir / "postgres")
    with pytest.raises(PostgresNotFoundError, match=r"initdb is 15\.1 but postgres is 16\.2"):
        inspect_bindir(bindir)


def test_unusable_trio_pg_bindir_is_an_error_not_a_fallback(
    tmp_path: Path, no_system_installs: Path
) -> None:
    fallback = make_fake_bindir(tmp_path / "fallback", "16.1")
    env = {"TRIO_PG_BINDIR": str(tmp_path / "missing"), "PATH": str(fallback)}
    with pytest.raises(PostgresNotFoundError, match=r"TRIO_PG_BINDIR=.*missing.* not usable"):
        find_binaries(env)


def test_nothing_found_lists_every_place_tried(tmp_path: Path, no_system_installs: Path) -> None:
    with pytest.raises(PostgresNotFoundError) as info:
        find_binaries({"PATH": str(tmp_path)})
    message = str(info.value)
    for expected in ("TRIO_PG_BINDIR", "pg_config", "lib/postgresql/*/bin", "pgsql-*/bin", "PATH"):
        assert expected in message


def test_version_of_development_build_has_minor_zero(tmp_path: Path) -> None:
    bindir = make_fake_bindir(tmp_path / "devel", "19devel")
    assert inspect_bindir(bindir).version == (19, 0)


# -- configuration (no server) ---------------------------------------------------------


def test_render_hba_puts_user_rules_before_superuser_defaults() -> None:
    users = [
        User("u_md5", "pw", method="md5"),
        User("u_cert", method="cert", connection="hostssl"),
        User("u_local", "pw", connection="local"),
        User("u_nossl", "pw", method="password", connection="hostnossl"),
    ]
    rules = [line for line in render_hba(users, "admin").splitlines() if not line.startswith("#")]
    assert rules == [
        'host all "u_md5" 127.0.0.1/32 md5',
        'hostssl all "u_cert" 127.0.0.1/32 cert',
        'local all "u_local" scram-sha-256',
        'hostnossl all "u_nossl" 127.0.0.1/32 password',
        'local all "admin" trust',
        'host all "admin" 127.0.0.1/32 trust',
    ]


def test_bootstrap_sql_stores_md5_and_scram_passwords_and_quotes() -> None:
    sql = bootstrap_sql(
        [
            User("u_md5", "it's", method="md5"),
            User("postgres", "pw"),
            User("u_cert", None, "cert", "hostssl"),
        ],
        "postgres",
    )
    assert sql.splitlines() == [
        "SET password_encryption = 'md5';",
        """CREATE ROLE "u_md5" LOGIN PASSWORD 'it''s';""",
        "SET password_encryption = 'scram-sha-256';",
        """ALTER ROLE "postgres" LOGIN PASSWORD 'pw';""",
        'CREATE ROLE "u_cert" LOGIN;',
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: User("u", method="cert"), "cert auth needs connection='hostssl'"),
        (lambda: User("u", method="md5"), "needs a password"),
        (lambda: User("u", "pw", method="ldap"), "unknown auth method 'ldap'"),  # type: ignore[arg-type]
        (lambda: User("u", "line\nbreak"), "may not contain"),
        (lambda: User('we"ird', "pw"), "may not contain"),
        (lambda: PostgresServer(users=[User("u", "a"), User("u", "b")]), "given twice"),
        (lambda: PostgresServer(users=[User("u", "a", connection="hostssl")]), "needs TLS"),
        (lambda: PostgresServer(settings={"port": "5432"}), "managed by trio_pg.testing"),
        (lambda: PostgresServer(settings={"bad name": "1"}), "invalid setting name"),
    ],
)
def test_invalid_configuration_is_rejected_with_advice(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_cert_user_requires_a_ca_file(tmp_path: Path) -> None:
    for name in ("c", "k"):
        (tmp_path / name).write_text("PEM")
    tls = TLSFiles(cert_file=tmp_path / "c", key_file=tmp_path / "k")
    with pytest.raises(ValueError, match="ca_file"):
        PostgresServer(tls=tls, users=[User("u", method="cert", connection="hostssl")])


def test_missing_tls_file_is_rejected_before_start(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("PEM")
    tls = TLSFiles(cert_file=tmp_path / "c", key_file=tmp_path / "missing.key")
    with pytest.raises(ValueError, match=r"TLSFiles\.key_file .*missing\.key"):
        PostgresServer(tls=tls)


def test_addresses_need_a_running_server() -> None:
    server = PostgresServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    with pytest.raises(RuntimeError, match="not running"):
        server.dsn()


# -- a running server ------------------------------------------------------------------


@integration
def test_version_matches_the_running_server(postgres_server: PostgresServer, psql: str) -> None:
    out = subprocess.run(
        [str(postgres_server.bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=PSQL_TIMEOUT,
    ).stdout
    assert re.search(rf"\) {postgres_server.version[0]}\.{postgres_server.version[1]}\b", out)
    num = int(query(psql, postgres_server.dsn(), "SHOW server_version_num"))
    assert (num // 10000, num % 10000) == postgres_server.version


@integration
def test_superuser_connects_over_tcp_and_unix_socket(
    postgres_server: PostgresServer, psql: str
) -> None:
    tcp = query(psql, postgres_server.dsn(), "SELECT inet_server_addr(), current_user")
    assert tcp == f"127.0.0.1|{postgres_server.superuser}"
    unix = query(psql, postgres_server.dsn(unix=True), "SELECT inet_server_addr() IS NULL")
    assert unix == "t"
    assert postgres_server.connect_params(unix=True)["host"] == postgres_server.socket_dir


@integration
def test_fast_settings_and_listen_address(postgres_server: PostgresServer, psql: str) -> None:
    sql = (
        "SELECT current_setting('fsync'), current_setting('synchronous_commit'), "
        "current_setting('full_page_writes'), current_setting('listen_addresses'), "
        "current_setting('ssl'), pg_encoding_to_char(encoding), datcollate "
        "FROM pg_database WHERE datname = current_database()"
    )
    assert query(psql, postgres_server.dsn(), sql) == "off|off|off|127.0.0.1|off|UTF8|C"


@integration
def test_dsn_overrides_replace_defaults(postgres_server: PostgresServer, psql: str) -> None:
    dsn = postgres_server.dsn(dbname="template1", application_name="it's a test")
    assert "application_name='it\\'s a test'" in dsn
    got = query(psql, dsn, "SELECT current_database(), current_setting('application_name')")
    assert got == "template1|it's a test"


@integration
def test_caller_settings_are_applied_and_server_stops_cleanly(psql: str) -> None:
    with PostgresServer(settings={"max_connections": "42", "work_mem": "7MB"}) as server:
        root = server.socket_dir
        pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        sql = "SELECT current_setting('max_connections'), current_setting('work_mem')"
        assert query(psql, server.dsn(), sql) == "42|7MB"
        assert (server.data_dir / "server.log").is_file()
    assert not os.path.exists(root)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.stop()  # idempotent
    with pytest.raises(RuntimeError, match="starts once"):
        server.start()


@pytest.fixture
def private_tempdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make the cluster's temporary directory land in a fresh, world-traversable dir."""
    path = Path(tempfile.mkdtemp(prefix="trio_pg_test-"))
    path.chmod(0o755)  # the server's OS user must reach it when we are root
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    yield path
    shutil.rmtree(path)


@integration
def test_start_failure_reports_log_tail_and_cleans_up(private_tempdir: Path) -> None:
    server = PostgresServer(settings={"shared_buffers": "plenty"})
    with pytest.raises(ServerStartError, match="exited with status") as info:
        server.start()
    assert "shared_buffers" in info.value.log_tail
    assert list(private_tempdir.iterdir()) == []


@integration
def test_port_taken_before_bind_is_retried(monkeypatch: pytest.MonkeyPatch, psql: str) -> None:
    real_free_port = cluster_module._free_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(cluster_module, "_free_port", lambda: next(ports, real_free_port()))
        with PostgresServer() as server:
            assert server.port != taken
            assert query(psql, server.dsn(), "SELECT 1") == "1"
            assert "could not bind" in server.log_path.read_text()


@integration
@pytest.mark.skipif(os.geteuid() != 0, reason="the OS-user fallback only applies to root")
def test_root_falls_back_to_nobody_without_postgres_user(
    monkeypatch: pytest.MonkeyPatch, psql: str
) -> None:
    monkeypatch.setattr(cluster_module, "UNPRIVILEGED_USERS", ("trio-pg-no-such-user", "nobody"))
    with PostgresServer() as server:
        assert server.os_user == "nobody"
        assert Path(server.data_dir).owner() == "nobody"
        assert query(psql, server.dsn(), "SELECT 1") == "1"


@integration
def test_server_left_running_is_stopped_at_exit(tmp_path: Path) -> None:
    program = textwrap.dedent(
        """
        from trio_pg.testing import PostgresServer
        server = PostgresServer()
        server.start()
        pid = (server.data_dir / "postmaster.pid").read_text().split()[0]
        print(server.socket_dir, pid)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    root, pid = out[0], int(out[1])
    assert not os.path.exists(root)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@integration
def test_server_of_a_killed_process_is_stopped_by_the_watchdog() -> None:
    program = textwrap.dedent(
        """
        import os, signal
        from trio_pg.testing import PostgresServer
        server = PostgresServer()
        server.start()
        pid = (server.data_dir / "postmaster.pid").read_text().split()[0]
        print(server.socket_dir, pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finalizers
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    root, pid = result.stdout.split()[0], int(result.stdout.split()[1])
    # The watchdog is another process: wait (bounded) for the effect it must have.
    deadline = time.monotonic() + 60
    while (os.path.exists(root) or _alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(root)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@integration
async def test_open_postgres_runs_a_server_for_the_block(psql: str) -> None:
    with trio.fail_after(120):
        async with open_postgres(settings={"work_mem": "3MB"}) as server:
            root = server.socket_dir
            result = await trio.run_process(
                [psql, "-X", "-w", "-At", "-c", "SHOW work_mem", server.dsn()],
                capture_stdout=True,
            )
            assert result.stdout.decode().strip() == "3MB"
        assert not await trio.Path(root).exists()


# -- TLS and per-user auth -------------------------------------------------------------

PASSWORDS = {u.name: u.password for u in TLS_USERS}


@integration
def test_tls_files_are_private_copies_owned_by_server_user(
    postgres_tls_server: PostgresServer, psql: str
) -> None:
    data = postgres_tls_server.data_dir
    for name in ("server.crt", "server.key", "root.crt"):
        info = (data / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, name
        assert (data / name).owner() == postgres_tls_server.os_user
    sql = "SELECT current_setting('ssl'), current_setting('ssl_ca_file')"
    assert query(psql, postgres_tls_server.dsn(), sql) == "on|root.crt"


@integration
def test_pg_hba_on_disk_has_the_users_rules_first(postgres_tls_server: PostgresServer) -> None:
    on_disk = (postgres_tls_server.data_dir / "pg_hba.conf").read_text()
    assert on_disk == render_hba(TLS_USERS, postgres_tls_server.superuser)


@integration
def test_passwords_are_stored_as_their_method_needs(
    postgres_tls_server: PostgresServer, psql: str
) -> None:
    # pg_authid.rolpassword: "md5" + 32 hex digits, or "SCRAM-SHA-256$<iterations>:...".
    sql = (
        "SELECT rolname, CASE WHEN rolpassword IS NULL THEN 'none' "
        "WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5' "
        "WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram' ELSE rolpassword END "
        "FROM pg_authid WHERE rolname IN ('u_md5', 'u_scram', 'u_password', 'u_cert') "
        "ORDER BY 1"
    )
    assert query(psql, postgres_tls_server.dsn(), sql).splitlines() == [
        "u_cert|none",
        "u_md5|md5",
        "u_password|scram",
        "u_scram|scram",
    ]


@integration
@pytest.mark.parametrize("user", ["u_password", "u_md5", "u_scram"])
@pytest.mark.parametrize("sslmode", ["disable", "require"])
def test_password_users_need_the_right_password(
    postgres_tls_server: PostgresServer, psql: str, user: str, sslmode: str
) -> None:
    dsn = postgres_tls_server.dsn(user=user, sslmode=sslmode)
    sql = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    tls = "t" if sslmode == "require" else "f"
    assert query(psql, dsn, sql, password=PASSWORDS[user]) == f"{user}|{tls}"
    wrong = run_psql(psql, dsn, "SELECT 1", password="wrong")
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr


@integration
def test_trust_user_needs_no_password(postgres_tls_server: PostgresServer, psql: str) -> None:
    assert query(psql, postgres_tls_server.dsn(user="u_trust"), "SELECT current_user") == "u_trust"


@integration
def test_hostssl_and_hostnossl_rules_match_only_their_transport(
    postgres_tls_server: PostgresServer, psql: str
) -> None:
    server = postgres_tls_server
    for user, ok_mode, refused_mode in [
        ("u_hostssl", "require", "disable"),
        ("u_hostnossl", "disable", "require"),
    ]:
        ok = server.dsn(user=user, sslmode=ok_mode)
        assert query(psql, ok, "SELECT current_user", password=PASSWORDS[user]) == user
        refused = run_psql(psql, server.dsn(user=user, sslmode=refused_mode), "SELECT 1", "x")
        assert "no pg_hba.conf entry" in refused.stderr


@integration
def test_local_user_connects_only_over_the_socket(
    postgres_tls_server: PostgresServer, psql: str
) -> None:
    server = postgres_tls_server
    unix = server.dsn(unix=True, user="u_local")
    assert query(psql, unix, "SELECT current_user", password=PASSWORDS["u_local"]) == "u_local"
    tcp = run_psql(psql, server.dsn(user="u_local"), "SELECT 1", PASSWORDS["u_local"])
    assert "no pg_hba.conf entry" in tcp.stderr


@integration
def test_reject_user_is_rejected(postgres_tls_server: PostgresServer, psql: str) -> None:
    result = run_psql(psql, postgres_tls_server.dsn(user="u_reject"), "SELECT 1", "u_reject-pw")
    assert "rejects connection" in result.stderr


@pytest.fixture
def client_cert_files(
    postgres_client_cert: trustme.LeafCert, tmp_path: Path
) -> tuple[Path, Path]:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    postgres_client_cert.cert_chain_pems[0].write_to_path(str(cert))
    postgres_client_cert.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)  # libpq refuses a private key others can read
    return cert, key


@integration
def test_cert_user_authenticates_with_client_certificate(
    postgres_tls_server: PostgresServer, psql: str, client_cert_files: tuple[Path, Path]
) -> None:
    server = postgres_tls_server
    assert server.tls is not None
    cert, key = client_cert_files
    verified = server.dsn(
        user="u_cert",
        host="localhost",
        hostaddr="127.0.0.1",
        sslmode="verify-full",
        sslrootcert=str(server.tls.ca_file),
        sslcert=str(cert),
        sslkey=str(key),
    )
    assert query(psql, verified, "SELECT current_user") == "u_cert"
    without_cert = server.dsn(user="u_cert", sslmode="require", sslcert="/nonexistent")
    result = run_psql(psql, without_cert, "SELECT 1")
    assert result.returncode != 0
    assert "certificate" in result.stderr
