"""A throwaway PostgreSQL cluster: initdb into a temporary directory, start, stop, delete.

Theory of operation. ``start()`` creates a private temporary directory (the unix socket
lives there, the data directory below it), runs ``initdb``, writes ``pg_hba.conf`` and
the settings, copies the TLS files, creates the users with ``postgres --single`` (no
client program is needed, and npm-packaged builds ship none), then runs the postmaster
as a child process. The postmaster announces readiness in line 8 of ``postmaster.pid``
(``storage.html``; this is what ``pg_ctl start -w`` waits for), so ``start()`` polls
that file until it says ``ready`` or the child exits. A port is picked by binding port 0
on 127.0.0.1; if someone else takes it before the postmaster binds, the start is retried
with a fresh port. ``stop()`` sends SIGINT (fast shutdown, ``server-shutdown.html``),
waits, and removes the directory. Servers still running at interpreter exit are stopped
by an ``atexit`` hook; if this process is killed outright, a small watchdog process
(``_watchdog.py``) notices and does the same.

PostgreSQL refuses to run as root, so when this process is root every server program
runs as the ``postgres`` OS user if it exists, else as ``nobody``; the temporary
directory is handed to that user. POSIX only.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final

from trio_pg.testing.binaries import PostgresBinaries, find_binaries, inspect_bindir
from trio_pg.testing.config import (
    FAST_SETTINGS,
    HOST,
    TLS_FILE_NAMES,
    TLSFiles,
    User,
    bootstrap_sql,
    check_config,
    render_hba,
    render_settings,
)

__all__ = ["PostgresServer", "ServerStartError", "open_postgres"]

#: OS users tried, in order, for running the server when this process is root.
UNPRIVILEGED_USERS: Final = ("postgres", "nobody")

_PORT_ATTEMPTS: Final = 5
_LOG_TAIL_LINES: Final = 40
_POLL_INTERVAL: Final = 0.02
_STOP_TIMEOUT: Final = 60.0
_TOOL_TIMEOUT: Final = 300.0


class ServerStartError(RuntimeError):
    """initdb, the bootstrap or the postmaster failed; the message ends with its log tail.

    Attributes:
        log_tail: The last lines of the relevant output.
    """

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- last lines of output ---\n{log_tail}")
        self.log_tail = log_tail


@dataclass(frozen=True, slots=True)
class _OSUser:
    name: str
    uid: int
    gid: int


class PostgresServer:
    """A disposable PostgreSQL cluster on 127.0.0.1 and a unix socket.

    Configuration happens here; nothing runs until :meth:`start` (or ``with``). The
    cluster is created with UTF8 encoding, locale C, durability off (``fsync``,
    ``synchronous_commit``, ``full_page_writes``) and small ``shared_buffers``; its
    superuser is trusted over the socket and TCP. A server is used once: after
    :meth:`stop` its directory is gone.

    Args:
        bindir: Directory with ``initdb`` and ``postgres``; found with
            :func:`~trio_pg.testing.find_binaries` when omitted.
        settings: Extra ``postgresql.conf`` settings, applied last.
        users: Login roles to create, each with its pg_hba.conf rule; those rules come
            before the superuser's defaults.
        tls: Certificate files; when given, ``ssl = on``.
        superuser: Name of the bootstrap superuser.
        start_timeout: Seconds to wait for the postmaster to accept connections.

    Raises:
        PostgresNotFoundError: No usable binaries.
        ValueError: Invalid users, TLS or settings (the message says what to change).
    """

    def __init__(
        self,
        *,
        bindir: str | os.PathLike[str] | None = None,
        settings: Mapping[str, str] | None = None,
        users: Iterable[User] = (),
        tls: TLSFiles | None = None,
        superuser: str = "postgres",
        start_timeout: float = 60.0,
    ) -> None:
        self._users = tuple(users)
        self._settings = dict(settings or {})
        check_config(self._users, tls, self._settings)
        if not superuser or any(c in superuser for c in '"\0\r\n'):
            raise ValueError(f"invalid superuser name {superuser!r}")
        self._binaries: PostgresBinaries = (
            find_binaries() if bindir is None else inspect_bindir(bindir)
        )
        self._tls = tls
        self._superuser = superuser
        self._start_timeout = start_timeout
        self._os_user = _server_os_user()
        self._root: Path | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._used = False

    # -- configuration and addresses ---------------------------------------------------

    @property
    def bindir(self) -> Path:
        """Directory of the server programs in use."""
        return self._binaries.bindir

    @property
    def version(self) -> tuple[int, int]:
        """Server version as ``(major, minor)``, e.g. ``(15, 18)``."""
        return self._binaries.version

    @property
    def superuser(self) -> str:
        """Name of the superuser, trusted over the socket and TCP."""
        return self._superuser

    @property
    def users(self) -> Mapping[str, User]:
        """The configured users by name (read-only)."""
        return MappingProxyType({u.name: u for u in self._users})

    @property
    def tls(self) -> TLSFiles | None:
        """The TLS files given by the caller (the originals, not the copies)."""
        return self._tls

    @property
    def os_user(self) -> str:
        """Name of the OS user the server programs run as."""
        return self._os_user.name

    @property
    def host(self) -> str:
        """The TCP address the server listens on: always ``"127.0.0.1"``."""
        return HOST

    @property
    def port(self) -> int:
        """TCP port (also the number in the unix socket's name).

        Raises:
            RuntimeError: The server is not running.
        """
        self._check_running()
        assert self._port is not None
        return self._port

    @property
    def socket_dir(self) -> str:
        """Directory of the unix socket: use it as ``host`` to connect over the socket.

        Raises:
            RuntimeError: The server is not running.
        """
        return str(self._running_root())

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (inside the temporary directory).

        Raises:
            RuntimeError: The server is not running.
        """
        return self._running_root() / "data"

    @property
    def log_path(self) -> Path:
        """The postmaster's log file, kept in the data directory.

        Raises:
            RuntimeError: The server is not running.
        """
        return self.data_dir / "server.log"

    def connect_params(self, *, unix: bool = False, **overrides: str) -> dict[str, str]:
        """Return libpq keyword parameters for connecting as the superuser.

        Args:
            unix: Connect over the unix socket instead of TCP.
            **overrides: libpq keywords replacing or adding to the defaults (``host``,
                ``port``, ``user``, ``dbname``), e.g. ``user="u_md5", password="..."``.

        Raises:
            RuntimeError: The server is not running.
        """
        params = {
            "host": self.socket_dir if unix else HOST,
            "port": str(self.port),
            "user": self._superuser,
            "dbname": "postgres",
        }
        params.update(overrides)
        return params

    def dsn(self, *, unix: bool = False, **overrides: str) -> str:
        """Return :meth:`connect_params` as a libpq keyword/value connection string.

        Values are quoted as ``libpq-connect.html#LIBPQ-CONNSTRING-KEYWORD-VALUE`` says.

        Raises:
            RuntimeError: The server is not running.
        """
        params = self.connect_params(unix=unix, **overrides)
        return " ".join(f"{key}={_quote_conninfo(value)}" for key, value in params.items())

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster and start the server; return once it accepts connections.

        Raises:
            RuntimeError: The server was already started.
            ServerStartError: initdb, user creation or the postmaster failed.
        """
        if self._used:
            raise RuntimeError("a PostgresServer starts once; create a new one instead")
        self._used = True
        _running.add(self)
        try:
            self._root = Path(tempfile.mkdtemp(prefix="trio_pg-"))
            self._watchdog = _start_watchdog(self._root)
            self._initdb()
            self._bootstrap()
            self._start_postmaster()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            _stand_down(watchdog)
        self._port = None
        _running.discard(self)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._process is not None else "stopped"
        return f"<PostgresServer {'.'.join(map(str, self.version))} {state} bindir={self.bindir}>"

    # -- steps of start() --------------------------------------------------------------

    def _initdb(self) -> None:
        root = self._running_root()
        os.chown(root, self._os_user.uid, self._os_user.gid)
        self._run_tool(
            [
                str(self._binaries.initdb),
                f"--pgdata={root / 'data'}",
                f"--username={self._superuser}",
                "--encoding=UTF8",
                "--locale=C",
                "--auth=trust",
                "--no-sync",  # durability is worthless for a throwaway cluster
            ],
            what="initdb",
        )
        data = root / "data"
        settings = dict(FAST_SETTINGS)
        settings["listen_addresses"] = HOST
        settings["unix_socket_directories"] = str(root)
        if self._tls is not None:
            settings.update(ssl="on", **self._install_tls(data))
        settings.update(self._settings)
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(render_settings(settings))
        (data / "pg_hba.conf").write_text(render_hba(self._users, self._superuser), "utf-8")

    def _install_tls(self, data: Path) -> dict[str, str]:
        assert self._tls is not None
        settings: dict[str, str] = {}
        for field, name in TLS_FILE_NAMES.items():
            source = getattr(self._tls, field)
            if source is None:
                continue
            target = data / name
            shutil.copyfile(source, target)
            # The server refuses a key readable by others (be-secure-openssl.c).
            os.chmod(target, 0o600)
            os.chown(target, self._os_user.uid, self._os_user.gid)
            settings[f"ssl_{field}"] = name  # relative paths resolve in the data dir
        return settings

    def _bootstrap(self) -> None:
        sql = bootstrap_sql(self._users, self._superuser)
        if not sql:
            return
        self._run_tool(
            [
                str(self._binaries.postgres),
                "--single",
                "-D",
                str(self.data_dir),
                "-F",
                "-c",
                "exit_on_error=on",  # any ERROR ends the backend with a failure status
                "postgres",
            ],
            what="creating users with postgres --single",
            stdin=sql,
        )

    def _start_postmaster(self) -> None:
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._process = self._spawn_postmaster(port)
            if self._wait_ready():
                self._port = port
                return
            process, self._process = self._process, None
            problem = (
                f"exited with status {process.returncode}"
                if process.poll() is not None
                else f"was not ready within {self._start_timeout:g} s"
            )
            _terminate(process)
            tail = _tail(self.log_path, log_offset)
            if "could not bind" in tail and attempt + 1 < _PORT_ATTEMPTS:
                continue  # someone took the port between our probe and the bind
            raise ServerStartError(
                f"PostgreSQL {'.'.join(map(str, self.version))} from {self.bindir} {problem} "
                f"(log: {self.log_path})",
                tail,
            )

    def _spawn_postmaster(self, port: int) -> subprocess.Popen[bytes]:
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [str(self._binaries.postgres), "-D", str(self.data_dir), "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C goes to us, and we stop the server.
                start_new_session=True,
                **self._child_options(),
            )

    def _wait_ready(self) -> bool:
        """Poll postmaster.pid until it says ``ready``; False if the postmaster died."""
        assert self._process is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                lines = pid_file.read_text("utf-8").splitlines()
            except FileNotFoundError:
                lines = []
            # Line 1 is the PID, line 8 the status (LOCK_FILE_LINE_PM_STATUS, pidfile.h).
            if (
                len(lines) >= 8
                and lines[0] == str(self._process.pid)
                and lines[7].strip() == "ready"
            ):
                return True
            time.sleep(_POLL_INTERVAL)
        return False

    # -- helpers -----------------------------------------------------------------------

    def _run_tool(self, argv: list[str], *, what: str, stdin: str | None = None) -> None:
        try:
            result = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=_TOOL_TIMEOUT,
                **self._child_options(),
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(f"{what} took over {_TOOL_TIMEOUT:.0f} s", str(exc)) from exc
        except OSError as exc:
            raise ServerStartError(f"{what} could not run{self._access_hint()}", str(exc)) from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()
            raise ServerStartError(
                f"{what} failed with exit status {result.returncode}{self._access_hint()}",
                "\n".join(output[-_LOG_TAIL_LINES:]),
            )

    def _access_hint(self) -> str:
        if os.geteuid() != 0:
            return ""
        return (
            f"; it ran as OS user {self.os_user!r}, which must be able to read and "
            f"traverse {self.bindir} and every directory above it"
        )

    def _child_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"cwd": self._running_root(), "env": _child_env()}
        if os.geteuid() == 0:
            options.update(user=self._os_user.uid, group=self._os_user.gid, extra_groups=[])
        return options

    def _running_root(self) -> Path:
        if self._root is None:
            raise RuntimeError("the PostgresServer is not running; call start() first")
        return self._root

    def _check_running(self) -> None:
        if self._process is None or self._port is None:
            raise RuntimeError("the PostgresServer is not running; call start() first")


@asynccontextmanager
async def open_postgres(
    *,
    bindir: str | os.PathLike[str] | None = None,
    settings: Mapping[str, str] | None = None,
    users: Iterable[User] = (),
    tls: TLSFiles | None = None,
    superuser: str = "postgres",
    start_timeout: float = 60.0,
) -> AsyncIterator[PostgresServer]:
    """Run a throwaway :class:`PostgresServer` for the duration of the block.

    Starting and stopping run in a worker thread, so the event loop keeps running.
    Arguments are those of :class:`PostgresServer`.

    Cancellation during startup takes effect once the server is up (the worker thread
    cannot be interrupted); the server is always stopped and deleted on exit, shielded
    from cancellation.

    Raises:
        PostgresNotFoundError: No usable binaries.
        ServerStartError: The cluster could not be created or started.
    """
    import trio  # imported here so that the pytest plugin's import stays light

    server = PostgresServer(
        bindir=bindir,
        settings=settings,
        users=users,
        tls=tls,
        superuser=superuser,
        start_timeout=start_timeout,
    )
    try:
        await trio.to_thread.run_sync(server.start)
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.stop)


# Servers started and not yet stopped, stopped at interpreter exit.
_running: set[PostgresServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _server_os_user() -> _OSUser:
    import pwd

    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return _OSUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in UNPRIVILEGED_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _OSUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise RuntimeError(
        "PostgreSQL cannot run as root and none of the OS users "
        f"{', '.join(UNPRIVILEGED_USERS)} exists; create one (e.g. `useradd postgres`)"
    )


def _child_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, ...) would change what the server programs do, and
    # LC_ALL=C keeps their messages in English so the log can be matched.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
    env["LC_ALL"] = "C"
    return env


def _start_watchdog(root: Path) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("_watchdog.py")
    return subprocess.Popen(
        # -I -S: isolated and without site-packages, so it starts fast and imports nothing
        # of ours; its own session keeps it alive through a signal to our process group.
        [sys.executable, "-I", "-S", str(script), str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,
    )


def _stand_down(watchdog: subprocess.Popen[bytes]) -> None:
    try:
        # Any byte means "stopped properly, nothing to clean up"; communicate() closes
        # the pipe, ignores a watchdog that already exited, and reaps it.
        watchdog.communicate(b"x", timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown; immediate shutdown, then SIGKILL, if that hangs."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(_STOP_TIMEOUT if sig == signal.SIGINT else 10.0)
        except subprocess.TimeoutExpired:
            continue
        return


def _tail(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _quote_conninfo(value: str) -> str:
    if value and not any(c.isspace() or c in "'\\" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
