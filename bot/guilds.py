"""Per-server settings (``/settings``) and the questions the bot's threads were opened on.

A server admin decides where and for whom the bot answers: :class:`GuildConfig`. It is kept in the
bot's state database (the feedback SQLite file, or PostgreSQL's ``newsbot_guild_settings`` with
NEWSBOT_DATABASE_URL, so that every bot process sees one admin's change), one row per setting, and
cached in memory by :class:`GuildSettings` (a change made through this process replaces the cache
entry; other processes see it within :data:`CACHE_SECONDS`).

The bot's threads remember their question (:class:`ThreadMemory`): a follow-up in a thread is read
with the question it follows (see :mod:`index.conversation`), after a restart too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from index.errors import StoreUnavailableError
from index.sqlstate import StateDB, statements, table_names

log = logging.getLogger(__name__)

#: How long another process's change to a server's settings may take to be seen here.
CACHE_SECONDS = 30.0

_TABLES = {"guild_settings": "newsbot_guild_settings", "threads": "newsbot_threads"}

#: The SQLite tables (added to the feedback file; on PostgreSQL migrations 2 and 4 of index/stores/postgres.py).
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS guild_settings (
    guild_id   INTEGER NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,     -- JSON
    updated_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, key)
);
CREATE TABLE IF NOT EXISTS threads (
    thread_id  INTEGER PRIMARY KEY,
    question   TEXT NOT NULL,     -- what the latest answer in the thread was an answer to
    updated_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class GuildConfig:
    """One server's settings. The defaults are what a server that never ran ``/settings`` gets."""

    #: Channels where a mention is answered; empty: every channel.
    mention_channels: frozenset[int] = frozenset()
    #: "Ask the news" channels: every message in a text channel, every new post in a forum, is a question.
    ask_channels: frozenset[int] = frozenset()
    #: The role a member needs to ask; None: everyone.
    ask_role: int | None = None
    #: Whether answers are private (only the asker sees them) unless asked otherwise.
    private: bool = False
    #: Whether an ``/ask`` answer opens a thread for follow-ups (answers to mentions always do).
    threads: bool = False
    #: Whether "Check against the news" replies in public (default: only to the member who ran it,
    #: since a check is about someone else's message).
    public_checks: bool = False

    def mentions_allowed_in(self, channel_id: int) -> bool:
        return not self.mention_channels or channel_id in self.mention_channels or channel_id in self.ask_channels

    def may_ask(self, role_ids: frozenset[int] | set[int], *, is_admin: bool = False) -> bool:
        """Whether a member with these roles may ask (a member who can manage the server always may)."""
        return self.ask_role is None or is_admin or self.ask_role in role_ids

    def to_rows(self) -> dict[str, Any]:
        """The settings as stored: one JSON value a key."""
        return {
            "mention_channels": sorted(self.mention_channels),
            "ask_channels": sorted(self.ask_channels),
            "ask_role": self.ask_role,
            "private": self.private,
            "threads": self.threads,
            "public_checks": self.public_checks,
        }

    @classmethod
    def from_rows(cls, rows: dict[str, Any]) -> GuildConfig:
        """Settings from stored rows; unknown keys (a newer newsbot's) are ignored, missing ones default."""
        config = cls()
        changes: dict[str, Any] = {}
        if isinstance(rows.get("mention_channels"), list):
            changes["mention_channels"] = frozenset(int(c) for c in rows["mention_channels"])
        if isinstance(rows.get("ask_channels"), list):
            changes["ask_channels"] = frozenset(int(c) for c in rows["ask_channels"])
        if "ask_role" in rows:
            changes["ask_role"] = int(rows["ask_role"]) if rows["ask_role"] is not None else None
        for flag in ("private", "threads", "public_checks"):
            if isinstance(rows.get(flag), bool):
                changes[flag] = rows[flag]
        return dataclasses.replace(config, **changes)


DEFAULT = GuildConfig()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def prepare_sqlite(db: StateDB) -> None:
    """Create the SQLite tables (idempotent: older files gain them, their schema version unchanged)."""
    if getattr(db, "dialect", None) == "sqlite":
        for statement in statements(_SQLITE_SCHEMA):
            db.execute(statement)


@dataclass
class _Cached:
    config: GuildConfig
    at: float = field(default_factory=time.monotonic)


class GuildSettings:
    """Every server's :class:`GuildConfig`, stored in ``db`` and cached. Blocking: call from a worker."""

    def __init__(self, db: StateDB) -> None:
        prepare_sqlite(db)
        self.db = db
        self._t = table_names(db, _TABLES)
        self._cache: dict[int, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, guild_id: int) -> GuildConfig:
        """The server's settings. While the database is unreachable, the last ones read (if any) stand."""
        fresh = self.cached(guild_id)
        if fresh is not None:
            return fresh
        with self._lock:
            hit = self._cache.get(guild_id)
        try:
            rows = self.db.query(f"SELECT key, value FROM {self._t['guild_settings']} WHERE guild_id = ?",
                                 (guild_id,))
        except StoreUnavailableError as e:
            if hit is None:
                raise
            log.warning("using the last settings read for guild %s: %s", guild_id, e)
            return hit.config
        config = GuildConfig.from_rows({k: json.loads(v) if isinstance(v, str) else v for k, v in rows})
        with self._lock:
            self._cache[guild_id] = _Cached(config)
        return config

    def cached(self, guild_id: int) -> GuildConfig | None:
        """The cached settings if fresh (no database round trip), else None."""
        with self._lock:
            hit = self._cache.get(guild_id)
        return hit.config if hit is not None and time.monotonic() - hit.at < CACHE_SECONDS else None

    def put(self, guild_id: int, config: GuildConfig) -> None:
        """Store every setting of ``config`` for the server (one transaction)."""
        now = _now()
        table = self._t["guild_settings"]
        with self.db.transaction() as tx:
            for key, value in config.to_rows().items():
                tx.execute(
                    f"INSERT INTO {table} AS t (guild_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (guild_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (guild_id, key, json.dumps(value), now),
                )
        with self._lock:
            self._cache[guild_id] = _Cached(config)
        log.info("settings of guild %s: %s", guild_id, config.to_rows())

    def reset(self, guild_id: int) -> None:
        self.db.execute(f"DELETE FROM {self._t['guild_settings']} WHERE guild_id = ?", (guild_id,))
        with self._lock:
            self._cache[guild_id] = _Cached(DEFAULT)


class ThreadMemory:
    """The question each of the bot's threads is about (its latest answered question). Blocking."""

    def __init__(self, db: StateDB) -> None:
        prepare_sqlite(db)
        self.db = db
        self._t = table_names(db, _TABLES)

    def remember(self, thread_id: int, question: str) -> None:
        self.db.execute(
            f"INSERT INTO {self._t['threads']} AS t (thread_id, question, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (thread_id) DO UPDATE SET question = excluded.question, updated_at = excluded.updated_at",
            (thread_id, question, _now()),
        )

    def question(self, thread_id: int) -> str | None:
        row = self.db.query_one(f"SELECT question FROM {self._t['threads']} WHERE thread_id = ?", (thread_id,))
        return row[0] if row else None
