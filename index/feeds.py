"""What newsbot follows and what it took: feeds, their entries, fetched articles (SQLite).

The state lives in ``<corpus>/.newsbot/feeds.sqlite3`` (:attr:`Settings.state_dir`), beside the
fetched articles in ``<corpus>/web/``: a corpus folder carries its own feeds, so two installations
never mix. Several processes may use it at once (the bot and a ``newsbot watch``): WAL mode and a
busy timeout; every change is one transaction.

* ``feeds``: each followed feed, with its HTTP validators, schedule and health.
* ``entries``: each feed entry seen (by key: guid, else normalised link, else title and date),
  the article it became, and a signature that changes when the entry is updated.
* ``articles``: each fetched article: its id (the first URL it was known by), file, fingerprint.
* ``aliases``: every normalised URL an article is known by (entry links, final URLs, canonical).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NewsbotError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: The longest a failing feed waits before it is tried again.
MAX_BACKOFF_S = 24 * 3600.0
#: A page that failed this many times (timeouts, 5xx) is skipped until its entry changes.
MAX_PAGE_ATTEMPTS = 3

_SCHEMA = """
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


class FeedStore:
    """The feed state database. Methods are short transactions; not for sharing between threads
    without a lock (the ingester runs them on one thread of its own)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, state_dir: Path) -> FeedStore:
        """Open (creating if needed) ``state_dir/feeds.sqlite3``."""
        if state_dir.parent.exists() and not state_dir.parent.is_dir():
            raise FeedStoreError(f"{state_dir.parent} is a file: feeds need a corpus folder (NEWSBOT_CORPUS_DIR / --corpus)")
        path = state_dir / "feeds.sqlite3"
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            with _tx(db):
                for statement in _statements(_SCHEMA):
                    db.execute(statement)
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif row[0] != str(SCHEMA_VERSION):
                    raise FeedStoreError(f"{path} has schema {row[0]}, this newsbot reads schema {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as e:
            raise FeedStoreError(f"cannot open the feed state {path}: {e}") from e
        return cls(db, path)

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
        with _tx(self.db):
            self.db.execute(
                "INSERT INTO feeds(url, title, interval_s, added_at, next_due_at, notify_channel) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(url) DO UPDATE SET interval_s=excluded.interval_s, disabled=0, disabled_reason=NULL, "
                "failures=0, disabled_notified=0, next_due_at=excluded.next_due_at, "
                "notify_channel=COALESCE(excluded.notify_channel, notify_channel), title=COALESCE(excluded.title, title)",
                (url, title, interval_s, now, due, notify_channel),
            )
        feed = self.feed(url)
        assert feed is not None
        return feed

    def remove_feed(self, url: str) -> Feed | None:
        """Stop following ``url``; its articles stay. Returns the feed removed, or None."""
        feed = self.feed(url)
        if feed is None:
            return None
        with _tx(self.db):
            self.db.execute("DELETE FROM entries WHERE feed=?", (feed.id,))
            self.db.execute("DELETE FROM feeds WHERE id=?", (feed.id,))
        return feed

    def _feeds(self, where: str = "", args: Iterable[Any] = ()) -> list[Feed]:
        rows = self.db.execute(
            f"SELECT {_FEED_COLUMNS}, (SELECT count(DISTINCT article) FROM entries e WHERE e.feed=f.id AND e.article IS NOT NULL) "
            f"FROM feeds f {where} ORDER BY f.id", tuple(args),
        ).fetchall()
        return [Feed(*r[:14], bool(r[14]), *r[15:]) for r in rows]

    def feeds(self) -> list[Feed]:
        return self._feeds()

    def feed(self, url: str) -> Feed | None:
        found = self._feeds("WHERE url=?", (url,))
        return found[0] if found else None

    def due(self, now: float | None = None) -> list[Feed]:
        """Enabled feeds whose next fetch is due."""
        return self._feeds("WHERE disabled=0 AND next_due_at<=?", (time.time() if now is None else now,))

    def next_due(self) -> float | None:
        row = self.db.execute("SELECT min(next_due_at) FROM feeds WHERE disabled=0").fetchone()
        return None if row[0] is None else float(row[0])

    def record_success(self, feed: Feed, *, status: int, etag: str | None, last_modified: str | None,
                       body_sha: str | None, title: str | None, items: int | None, warning: str | None = None,
                       forget_validators: bool = False, now: float | None = None) -> None:
        """A fetch that worked (200 or 304): next fetch one interval on, failures forgotten. Validators
        given as None are kept; ``forget_validators`` drops them all, so that the next fetch is a full
        one (some entries of this one still need their pages)."""
        now = time.time() if now is None else now
        keep = "NULL" if forget_validators else None
        with _tx(self.db):
            self.db.execute(
                "UPDATE feeds SET last_fetch_at=?, last_status=?, last_error=?, "
                + ("etag=NULL, last_modified=NULL, body_sha=NULL, " if keep else
                   "etag=COALESCE(?, etag), last_modified=COALESCE(?, last_modified), body_sha=COALESCE(?, body_sha), ")
                + "title=COALESCE(?, title), items=COALESCE(?, items), failures=0, next_due_at=? WHERE id=?",
                (now, status, warning, *(() if keep else (etag, last_modified, body_sha)), title, items,
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
        with _tx(self.db):
            self.db.execute(
                "UPDATE feeds SET last_fetch_at=?, last_status=?, last_error=?, failures=?, next_due_at=?, "
                "disabled=?, disabled_reason=? WHERE id=?",
                (now, status, error, failures, now + wait, int(disabled), reason, feed.id),
            )
        got = self.feed(feed.url)
        assert got is not None
        return got

    def disabled_unannounced(self) -> list[Feed]:
        """Disabled feeds whose disabling has not been announced in Discord yet."""
        return self._feeds("WHERE disabled=1 AND disabled_notified=0")

    def mark_announced(self, feed_id: int) -> None:
        with _tx(self.db):
            self.db.execute("UPDATE feeds SET disabled_notified=1 WHERE id=?", (feed_id,))

    # -- entries ----------------------------------------------------------------------------------

    def entries(self, feed_id: int) -> dict[str, tuple[str | None, str, str | None, int]]:
        """key -> (article id, signature, skipped reason, attempts) of the feed's entries seen so far."""
        return {k: (a, s, sk, n) for k, a, s, sk, n in self.db.execute(
            "SELECT key, article, signature, skipped, attempts FROM entries WHERE feed=?", (feed_id,))}

    def record_entry(self, feed_id: int, key: str, signature: str, *, article: str | None = None,
                     skipped: str | None = None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with _tx(self.db):
            self.db.execute(
                "INSERT INTO entries(feed, key, article, signature, seen_at, skipped, attempts) VALUES (?,?,?,?,?,?,0) "
                "ON CONFLICT(feed, key) DO UPDATE SET article=COALESCE(excluded.article, article), "
                "signature=excluded.signature, skipped=excluded.skipped, attempts=0",
                (feed_id, key, article, signature, now, skipped),
            )

    def record_attempt(self, feed_id: int, key: str, signature: str, error: str, now: float | None = None) -> int:
        """A page that could not be fetched this time (retried next round, up to MAX_PAGE_ATTEMPTS
        times; then skipped until its entry changes). Returns the attempts so far."""
        now = time.time() if now is None else now
        with _tx(self.db):
            self.db.execute(
                "INSERT INTO entries(feed, key, signature, seen_at, attempts) VALUES (?,?,'',?,1) "
                "ON CONFLICT(feed, key) DO UPDATE SET attempts=attempts+1",
                (feed_id, key, now),
            )
            n = int(self.db.execute("SELECT attempts FROM entries WHERE feed=? AND key=?", (feed_id, key)).fetchone()[0])
            if n >= MAX_PAGE_ATTEMPTS:
                self.db.execute("UPDATE entries SET skipped=?, signature=? WHERE feed=? AND key=?",
                                (f"gave up after {n} attempts: {error}", signature, feed_id, key))
        return n

    # -- articles ---------------------------------------------------------------------------------

    def article_for(self, urls: Iterable[str]) -> StoredArticle | None:
        """The article known by any of these (normalised) URLs."""
        for url in urls:
            row = self.db.execute(
                f"SELECT {', '.join('a.' + c.strip() for c in _ARTICLE_COLUMNS.split(','))} FROM aliases x "
                "JOIN articles a ON a.id = x.article WHERE x.url=?", (url,),
            ).fetchone()
            if row:
                return StoredArticle(*row[:8], bool(row[8]))
        return None

    def article(self, article_id: str) -> StoredArticle | None:
        row = self.db.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id=?", (article_id,)).fetchone()
        return StoredArticle(*row[:8], bool(row[8])) if row else None

    def articles(self) -> list[StoredArticle]:
        return [StoredArticle(*r[:8], bool(r[8])) for r in self.db.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles")]

    def put_article(self, a: StoredArticle, aliases: Iterable[str]) -> None:
        """Record a fetched (or re-fetched) article and the URLs it is known by."""
        with _tx(self.db):
            self.db.execute(
                f"INSERT INTO articles({_ARTICLE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                "url=excluded.url, fingerprint=excluded.fingerprint, published=excluded.published, "
                "fetched_at=excluded.fetched_at, etag=excluded.etag, last_modified=excluded.last_modified, expired=0",
                (a.id, a.url, a.path, a.fingerprint, a.published, a.fetched_at, a.etag, a.last_modified, int(a.expired)),
            )
            for url in aliases:
                self.db.execute("INSERT OR IGNORE INTO aliases(url, article) VALUES (?, ?)", (url, a.id))

    def expire(self, article_ids: Iterable[str]) -> None:
        """Mark articles as dropped by the retention setting (their entries stay: never fetched again)."""
        with _tx(self.db):
            self.db.executemany("UPDATE articles SET expired=1 WHERE id=?", ((i,) for i in article_ids))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


@contextlib.contextmanager
def _tx(db: sqlite3.Connection) -> Iterator[None]:
    """One immediate transaction (a writer waits for another process's, up to the busy timeout)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
