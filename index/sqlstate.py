"""The state several processes share (feeds, the bot's answers and votes), in SQLite or PostgreSQL.

One small seam, :class:`StateDB`, with two backends:

* :class:`SqliteStateDB`: one file, one connection, WAL mode and a busy timeout (so a ``newsbot
  watch`` and the bot can share it), a lock around every use, ``BEGIN IMMEDIATE`` transactions.
* :class:`PostgresStateDB`: a small psycopg pool on the primary (``NEWSBOT_DATABASE_URL``), so that
  processes on several machines share the state; connection failures and pool time-outs become
  :class:`~index.errors.StoreUnavailableError`, as for the index.

A store (``index.feeds.FeedStore``, ``bot.feedback.FeedbackStore``) is one class over either. Its
queries are written once, with ``?`` placeholders (``?`` is always a placeholder: never write one in
a literal), in SQL both dialects accept: ``INSERT ... ON CONFLICT ... DO UPDATE`` (with the target
table aliased, because PostgreSQL finds a bare column name there ambiguous), ``RETURNING``,
``TRUE``/``FALSE``. Where the dialects differ (column types, table names) the store says so; on
PostgreSQL its tables come from a migration (``index.stores.postgres.MIGRATIONS``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import StoreUnavailableError

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

SQLITE = "sqlite"
POSTGRES = "postgres"
#: Connections a state pool holds at most, per store and process (a store's calls are short).
POOL_SIZE = 4

Row = tuple[Any, ...]


class Queries(Protocol):
    """What a store runs its SQL through: the database itself, or one of its transactions."""

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        ...

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]: ...

    def query_one(self, sql: str, args: Sequence[object] = ()) -> Row | None: ...


class StateDB(Queries, Protocol):
    """A database for shared state. Outside :meth:`transaction` every statement commits by itself."""

    dialect: str  # SQLITE or POSTGRES

    def transaction(self) -> AbstractContextManager[Queries]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def table_names(db: StateDB, postgres_names: Mapping[str, str]) -> dict[str, str]:
    """A store's table names in ``db``'s dialect: on SQLite the mapping's keys (the files' tables,
    as they have always been), on PostgreSQL its values (``newsbot_``-prefixed, in the public schema)."""
    return {k: (v if db.dialect == POSTGRES else k) for k, v in postgres_names.items()}


def statements(script: str) -> list[str]:
    """The statements of a schema script (no ``;`` inside a statement)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def redact_url(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


# --------------------------------------------------------------------------------------------
# SQLite


class _SqliteQueries:
    def __init__(self, conn: sqlite3.Connection, lock: AbstractContextManager[object]) -> None:
        self._conn = conn
        self._lock = lock

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).rowcount

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    def query_one(self, sql: str, args: Sequence[object] = ()) -> Row | None:
        rows = self.query(sql, args)  # all of them: a RETURNING statement completes only when read to the end
        return rows[0] if rows else None


class SqliteStateDB(_SqliteQueries):
    """One SQLite file, shared by the processes of one machine. Safe to use from several threads."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._mutex = threading.Lock()
        super().__init__(conn, self._mutex)
        self.path = path

    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float, synchronous: str = "FULL") -> SqliteStateDB:
        """Open (creating it and its folder if needed) the file at ``path``. Raises sqlite3.Error or
        OSError (the store says which file and setting they concern)."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error:
            conn.close()
            raise
        return cls(conn, path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Queries]:
        """An immediate transaction: a writer in another process waits for it, up to the busy timeout."""
        with self._mutex:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteQueries(self._conn, contextlib.nullcontext())
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        with self._mutex:
            self._conn.close()


# --------------------------------------------------------------------------------------------
# PostgreSQL


class DatabaseUnavailable:
    """Turns PostgreSQL connection failures and pool time-outs into StoreUnavailableError, saying
    what was being done."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, _tb: object) -> bool:
        if exc is None:
            return False
        import psycopg
        import psycopg_pool

        if isinstance(exc, psycopg_pool.PoolTimeout):
            raise StoreUnavailableError(f"the database is busy ({self.what}: no connection free in time)") from exc
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            raise StoreUnavailableError(f"the database is unreachable ({self.what}: {str(exc).strip()[:200]})") from exc
        return False


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%``, as in ``LIKE 'a%'``, as ``%%``)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresQueries:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        return int(self._conn.execute(to_pyformat(sql), tuple(args)).rowcount)

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return self._conn.execute(to_pyformat(sql), tuple(args)).fetchall()

    def query_one(self, sql: str, args: Sequence[object] = ()) -> Row | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None


class PostgresStateDB:
    """Shared state in PostgreSQL: a small pool of autocommit connections to the primary."""

    dialect = POSTGRES

    def __init__(self, pool: Any, url: str, name: str) -> None:
        self._pool = pool
        self.url = url
        self.name = name

    @classmethod
    def open(cls, url: str, *, timeout: float, name: str, pool_size: int = POOL_SIZE,
             prepare: Callable[[Any], object] | None = None) -> PostgresStateDB:
        """A pool on ``url``: ``timeout`` bounds connecting and waiting for a free connection.
        ``prepare`` (the migrations) runs once on a connection of it before it is returned."""
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=timeout, open=False, name=name,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            check=ConnectionPool.check_connection, reconnect_timeout=0,
        )
        pool.open(wait=False)
        db = cls(pool, url, name)
        if prepare is not None:
            try:
                with db._connection() as conn, DatabaseUnavailable(f"preparing {name}"):
                    prepare(conn)
            except BaseException:
                pool.close()
                raise
        return db

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with DatabaseUnavailable(self.name):
            conn = self._pool.getconn()
        try:
            yield conn
        finally:
            self._pool.putconn(conn)  # a broken connection is discarded, and replaced when next asked for

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        with self._connection() as conn, DatabaseUnavailable(self.name):
            return _PostgresQueries(conn).execute(sql, args)

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        with self._connection() as conn, DatabaseUnavailable(self.name):
            return _PostgresQueries(conn).query(sql, args)

    def query_one(self, sql: str, args: Sequence[object] = ()) -> Row | None:
        with self._connection() as conn, DatabaseUnavailable(self.name):
            return _PostgresQueries(conn).query_one(sql, args)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Queries]:
        with self._connection() as conn, DatabaseUnavailable(self.name), conn.transaction():
            yield _PostgresQueries(conn)

    def describe(self) -> str:
        return f"the database {redact_url(self.url)}"

    def close(self) -> None:
        self._pool.close()


def open_postgres_state(settings: Settings, name: str) -> PostgresStateDB:
    """The state database of NEWSBOT_DATABASE_URL (the primary), migrated to this newsbot's schema."""
    from .stores.postgres import migrate

    return PostgresStateDB.open(settings.database_url.reveal(), timeout=settings.db_timeout, name=name,
                                prepare=migrate)
