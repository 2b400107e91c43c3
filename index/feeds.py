"""What newsbot follows and what it took: feeds, their entries, fetched articles.

The state lives in ``<corpus>/.newsbot/feeds.sqlite3`` (:attr:`Settings.state_dir`), beside the
fetched articles in ``<corpus>/web/``: a corpus folder carries its own feeds, so two installations
never mix. Several processes may use it at once (the bot and a ``newsbot watch``): WAL mode and a
busy timeout; every change is one transaction. With NEWSBOT_DATABASE_URL it lives in PostgreSQL
instead (the same tables, prefixed ``newsbot_``: ``newsbot_feeds``, ``newsbot_feed_entries``,
``newsbot_fetched_articles``, ``newsbot_article_aliases``), shared by processes on any machine;
the article files stay on the machine that fetched them (docs/SCALING.md).

* ``feeds``: each followed feed, with its HTTP validators, schedule and health.
* ``entries``: each feed entry seen (by key: guid, else normalised link, else title and date),
  the article it became, and a signature that changes when the entry is updated.
* ``articles``: each fetched article: its id (the first URL it was known by), file, fingerprint.
* ``aliases``: every normalised URL an article is known by (entry links, final URLs, canonical).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import NewsbotError
from .sqlstate import SqliteStateDB, StateDB, open_postgres_state, statements, table_names

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: The longest a failing feed waits before it is tried again.
MAX_BACKOFF_S = 24 * 3600.0
#: A page that failed this many times (timeouts, 5xx) is skipped until its entry changes.
MAX_PAGE_ATTEMPTS = 3

#: The SQLite file's tables (on PostgreSQL: migration 3 in index/stores/postgres.py).
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feeds(
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    title TEXT,
    interval_s REAL NOT NULL,
    added_at REAL NOT NULL,
    last_fetch_at REAL,
    last_status INTEGER,
    last_error TEXT,
    etag TEXT,
    last_modified TEXT,
    body_sha TEXT,
    items INTEGER,
    next_due_at REAL NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    notify_channel INTEGER,
    disabled_notified INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries(
    feed INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    article TEXT,
    signature TEXT NOT NULL,
    seen_at REAL NOT NULL,
    skipped TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(feed, key)
);
CREATE INDEX IF NOT EXISTS entries_article ON entries(article);
CREATE TABLE IF NOT EXISTS articles(
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    published TEXT,
    fetched_at REAL NOT NULL,
    etag TEXT,
    last_modified TEXT,
    expired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS aliases(url TEXT PRIMARY KEY, article TEXT NOT NULL REFERENCES articles(id));
CREATE INDEX IF NOT EXISTS aliases_article ON aliases(article);
"""


class FeedStoreError(NewsbotError):
    """The feed state cannot be read or written."""


@dataclass(frozen=True, slots=True)
class Feed:
    """A followed feed and its health, as ``feeds list`` shows it."""

    id: int
    url: str
    title: str | None
    interval_s: float
    added_at: float
    last_fetch_at: float | None
    last_status: int | None
    last_error: str | None
    etag: str | None
    last_modified: str | None
    body_sha: str | None
    items: int | None
    next_due_at: float
    failures: int
    disabled: bool
    disabled_reason: str | None
    notify_channel: int | None
    articles: int  # articles this feed brought in

    def to_json(self) -> dict[str, Any]:
        def iso(t: float | None) -> str | None:
            return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")

        return {
            "url": self.url, "title": self.title, "every_s": self.interval_s,
            "last_fetch": iso(self.last_fetch_at), "last_status": self.last_status, "last_error": self.last_error,
            "articles": self.articles, "items": self.items,
            "next_due": None if self.disabled else iso(self.next_due_at),
            "failures": self.failures, "disabled": self.disabled, "disabled_reason": self.disabled_reason,
        }


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """A fetched article as recorded: where its file is and what the index should hold of it."""

    id: str
    url: str  # where it is fetched from (its page, after redirects); its file names its canonical URL
    path: str  # relative to the corpus folder
    fingerprint: str
    published: str | None
    fetched_at: float
    etag: str | None
    last_modified: str | None
    expired: bool


_FEED_COLUMNS = ("id, url, title, interval_s, added_at, last_fetch_at, last_status, last_error, etag, last_modified, "
                 "body_sha, items, next_due_at, failures, disabled, disabled_reason, notify_channel")
_ARTICLE_COLUMNS = "id, url, path, fingerprint, published, fetched_at, etag, last_modified, expired"


_TABLES = {"feeds": "newsbot_feeds", "entries": "newsbot_feed_entries", "articles": "newsbot_fetched_articles",
           "aliases": "newsbot_article_aliases"}


def open_feed_store(settings: Settings) -> FeedStore:
    """The feed state: in the database when NEWSBOT_DATABASE_URL is set (shared by watchers and bots
    on any machine), else in ``<corpus>/.newsbot/feeds.sqlite3``."""
    if settings.uses_database:
        return FeedStore(open_postgres_state(settings, "newsbot-feeds"))
    return FeedStore(_open_sqlite(settings.state_dir))


def _open_sqlite(state_dir: Path) -> SqliteStateDB:
    """Open (creating if needed) ``state_dir/feeds.sqlite3`` and its schema."""
    if state_dir.parent.exists() and not state_dir.parent.is_dir():
        raise FeedStoreError(f"{state_dir.parent} is a file: feeds need a corpus folder (NEWSBOT_CORPUS_DIR / --corpus)")
    path = state_dir / "feeds.sqlite3"
    try:
        db = SqliteStateDB.open(path, busy_timeout_s=30.0, synchronous="FULL")
    except (sqlite3.Error, OSError) as e:
        raise FeedStoreError(f"cannot open the feed state {path}: {e}") from e
    try:
        with db.transaction() as tx:
            for statement in statements(_SQLITE_SCHEMA):
                tx.execute(statement)
            row = tx.query_one("SELECT value FROM meta WHERE key='schema'")
            if row is None:
                tx.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise FeedStoreError(f"{path} has schema {row[0]}, this newsbot reads schema {SCHEMA_VERSION}")
    except sqlite3.Error as e:
        db.close()
        raise FeedStoreError(f"cannot open the feed state {path}: {e}") from e
    except BaseException:
        db.close()
        raise
    return db


class FeedStore:
    """The feed state, in SQLite or PostgreSQL (:mod:`index.sqlstate`). Methods are short transactions."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._t = table_names(db, _TABLES)

    def _q(self, sql: str) -> str:
        """``sql`` with its ``{table}`` names in this database's dialect."""
        return sql.format_map(self._t)

    def describe(self) -> str:
        return self.db.describe()

    def close(self) -> None:
        self.db.close()

    # -- feeds ------------------------------------------------------------------------------------

    def add_feed(self, url: str, interval_s: float, *, title: str | None = None, notify_channel: int | None = None,
                 fetching_now: bool = False, now: float | None = None) -> Feed:
        """Follow ``url``: due at once, or one interval on when the caller is ``fetching_now`` (so that
        a watcher does not fetch it a second time meanwhile). Adding a feed that is followed already
        updates its interval and enables it again (its failures forgotten)."""
        now = time.time() if now is None else now
        due = now + interval_s if fetching_now else now
        self.db.execute(self._q(
            "INSERT INTO {feeds} AS f (url, title, interval_s, added_at, next_due_at, notify_channel) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET interval_s=excluded.interval_s, disabled=FALSE, "
            "disabled_reason=NULL, failures=0, disabled_notified=FALSE, next_due_at=excluded.next_due_at, "
            "notify_channel=COALESCE(excluded.notify_channel, f.notify_channel), "
            "title=COALESCE(excluded.title, f.title)"),
            (url, title, float(interval_s), now, due, notify_channel),
        )
        feed = self.feed(url)
        assert feed is not None
        return feed

    def remove_feed(self, url: str) -> Feed | None:
        """Stop following ``url``; its articles stay. Returns the feed removed, or None."""
        feed = self.feed(url)
        if feed is None:
            return None
        with self.db.transaction() as tx:
            tx.execute(self._q("DELETE FROM {entries} WHERE feed=?"), (feed.id,))
            tx.execute(self._q("DELETE FROM {feeds} WHERE id=?"), (feed.id,))
        return feed

    def _feeds(self, where: str = "", args: Sequence[Any] = ()) -> list[Feed]:
        rows = self.db.query(self._q(
            f"SELECT {_FEED_COLUMNS}, (SELECT count(DISTINCT article) FROM {{entries}} e "
            f"WHERE e.feed=f.id AND e.article IS NOT NULL) FROM {{feeds}} f {where} ORDER BY f.id"), args)
        return [Feed(*r[:14], bool(r[14]), *r[15:]) for r in rows]

    def feeds(self) -> list[Feed]:
        return self._feeds()

    def feed(self, url: str) -> Feed | None:
        found = self._feeds("WHERE url=?", (url,))
        return found[0] if found else None

    def due(self, now: float | None = None) -> list[Feed]:
        """Enabled feeds whose next fetch is due."""
        return self._feeds("WHERE disabled=FALSE AND next_due_at<=?", (time.time() if now is None else now,))

    def next_due(self) -> float | None:
        row = self.db.query_one(self._q("SELECT min(next_due_at) FROM {feeds} WHERE disabled=FALSE"))
        return None if row is None or row[0] is None else float(row[0])

    def record_success(self, feed: Feed, *, status: int, etag: str | None, last_modified: str | None,
                       body_sha: str | None, title: str | None, items: int | None, warning: str | None = None,
                       forget_validators: bool = False, now: float | None = None) -> None:
        """A fetch that worked (200 or 304): next fetch one interval on, failures forgotten. Validators
        given as None are kept; ``forget_validators`` drops them all, so that the next fetch is a full
        one (some entries of this one still need their pages)."""
        now = time.time() if now is None else now
        validators = ("etag=NULL, last_modified=NULL, body_sha=NULL, " if forget_validators else
                      "etag=COALESCE(?, etag), last_modified=COALESCE(?, last_modified), "
                      "body_sha=COALESCE(?, body_sha), ")
        self.db.execute(self._q(
            "UPDATE {feeds} SET last_fetch_at=?, last_status=?, last_error=?, " + validators
            + "title=COALESCE(?, title), items=COALESCE(?, items), failures=0, next_due_at=? WHERE id=?"),
            (now, status, warning, *(() if forget_validators else (etag, last_modified, body_sha)), title, items,
             now + feed.interval_s, feed.id),
        )

    def record_failure(self, feed: Feed, *, error: str, status: int | None, retry_after: float | None,
                       max_failures: int, counts: bool = True, now: float | None = None) -> Feed:
        """A fetch that failed: back off exponentially (longer when ``Retry-After`` asks it); after
        ``max_failures`` failures in a row the feed is disabled. ``counts=False`` (a 429) defers
        without counting a failure. Returns the feed as it is now."""
        now = time.time() if now is None else now
        failures = feed.failures + (1 if counts else 0)
        backoff = feed.interval_s * (2 ** max(0, failures - 1)) if counts else feed.interval_s
        # Retry-After is the least a server asks us to wait: it can lengthen the backoff, never shorten it.
        wait = min(max(backoff, retry_after or 0.0), MAX_BACKOFF_S)
        disabled = counts and failures >= max_failures
        reason = f"{failures} failures in a row, the last: {error}" if disabled else None
        self.db.execute(self._q(
            "UPDATE {feeds} SET last_fetch_at=?, last_status=?, last_error=?, failures=?, next_due_at=?, "
            "disabled=?, disabled_reason=? WHERE id=?"),
            (now, status, error, failures, now + wait, disabled, reason, feed.id),
        )
        got = self.feed(feed.url)
        assert got is not None
        return got

    def disabled_unannounced(self) -> list[Feed]:
        """Disabled feeds whose disabling has not been announced in Discord yet."""
        return self._feeds("WHERE disabled=TRUE AND disabled_notified=FALSE")

    def mark_announced(self, feed_id: int) -> None:
        self.db.execute(self._q("UPDATE {feeds} SET disabled_notified=TRUE WHERE id=?"), (feed_id,))

    # -- entries ----------------------------------------------------------------------------------

    def entries(self, feed_id: int) -> dict[str, tuple[str | None, str, str | None, int]]:
        """key -> (article id, signature, skipped reason, attempts) of the feed's entries seen so far."""
        return {k: (a, s, sk, n) for k, a, s, sk, n in self.db.query(self._q(
            "SELECT key, article, signature, skipped, attempts FROM {entries} WHERE feed=?"), (feed_id,))}

    def record_entry(self, feed_id: int, key: str, signature: str, *, article: str | None = None,
                     skipped: str | None = None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.db.execute(self._q(
            "INSERT INTO {entries} AS e (feed, key, article, signature, seen_at, skipped, attempts) "
            "VALUES (?,?,?,?,?,?,0) ON CONFLICT(feed, key) DO UPDATE SET article=COALESCE(excluded.article, e.article), "
            "signature=excluded.signature, skipped=excluded.skipped, attempts=0"),
            (feed_id, key, article, signature, now, skipped),
        )

    def record_attempt(self, feed_id: int, key: str, signature: str, error: str, now: float | None = None) -> int:
        """A page that could not be fetched this time (retried next round, up to MAX_PAGE_ATTEMPTS
        times; then skipped until its entry changes). Returns the attempts so far."""
        now = time.time() if now is None else now
        with self.db.transaction() as tx:
            row = tx.query_one(self._q(
                "INSERT INTO {entries} AS e (feed, key, signature, seen_at, attempts) VALUES (?,?,'',?,1) "
                "ON CONFLICT(feed, key) DO UPDATE SET attempts=e.attempts+1 RETURNING attempts"),
                (feed_id, key, now))
            assert row is not None
            n = int(row[0])
            if n >= MAX_PAGE_ATTEMPTS:
                tx.execute(self._q("UPDATE {entries} SET skipped=?, signature=? WHERE feed=? AND key=?"),
                           (f"gave up after {n} attempts: {error}", signature, feed_id, key))
        return n

    # -- articles ---------------------------------------------------------------------------------

    def article_for(self, urls: Iterable[str]) -> StoredArticle | None:
        """The article known by any of these (normalised) URLs."""
        columns = ", ".join("a." + c.strip() for c in _ARTICLE_COLUMNS.split(","))
        for url in urls:
            row = self.db.query_one(self._q(
                f"SELECT {columns} FROM {{aliases}} x JOIN {{articles}} a ON a.id = x.article WHERE x.url=?"), (url,))
            if row:
                return _article(row)
        return None

    def article(self, article_id: str) -> StoredArticle | None:
        row = self.db.query_one(self._q(f"SELECT {_ARTICLE_COLUMNS} FROM {{articles}} WHERE id=?"), (article_id,))
        return _article(row) if row else None

    def articles(self) -> list[StoredArticle]:
        return [_article(r) for r in self.db.query(self._q(f"SELECT {_ARTICLE_COLUMNS} FROM {{articles}}"))]

    def put_article(self, a: StoredArticle, aliases: Iterable[str]) -> None:
        """Record a fetched (or re-fetched) article and the URLs it is known by."""
        with self.db.transaction() as tx:
            tx.execute(self._q(
                f"INSERT INTO {{articles}} AS a ({_ARTICLE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) "
                "DO UPDATE SET url=excluded.url, fingerprint=excluded.fingerprint, published=excluded.published, "
                "fetched_at=excluded.fetched_at, etag=excluded.etag, last_modified=excluded.last_modified, "
                "expired=FALSE"),
                (a.id, a.url, a.path, a.fingerprint, a.published, a.fetched_at, a.etag, a.last_modified,
                 bool(a.expired)),
            )
            for url in aliases:
                tx.execute(self._q("INSERT INTO {aliases}(url, article) VALUES (?, ?) ON CONFLICT DO NOTHING"),
                           (url, a.id))

    def expire(self, article_ids: Iterable[str]) -> None:
        """Mark articles as dropped by the retention setting (their entries stay: never fetched again)."""
        with self.db.transaction() as tx:
            for article_id in article_ids:
                tx.execute(self._q("UPDATE {articles} SET expired=TRUE WHERE id=?"), (article_id,))


def _article(row: Sequence[Any]) -> StoredArticle:
    return StoredArticle(*row[:8], bool(row[8]))
