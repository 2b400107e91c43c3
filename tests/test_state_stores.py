"""The feed state (index/feeds.py) over both backends of index/sqlstate.py: the SQLite file, and a
real PostgreSQL (tests/pgserver.py). Every test that takes ``state_settings`` runs on both."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from index.config import Settings
from index.feeds import MAX_BACKOFF_S, MAX_PAGE_ATTEMPTS, FeedStore, FeedStoreError, StoredArticle, open_feed_store
from index.sqlstate import POSTGRES, SQLITE, to_pyformat

NOW = 1_800_000_000.0
URL = "https://news.example/feed.xml"
OTHER = "https://other.example/rss"


@pytest.fixture
def store(state_settings: Settings) -> Iterator[FeedStore]:
    s = open_feed_store(state_settings)
    yield s
    s.close()


def article(n: int, **kw: object) -> StoredArticle:
    fields: dict[str, object] = {
        "id": f"https://news.example/story-{n}", "url": f"https://news.example/story-{n}",
        "path": f"web/news.example/story-{n}.md", "fingerprint": f"fp{n}", "published": "2027-01-15",
        "fetched_at": NOW, "etag": None, "last_modified": None, "expired": False}
    fields.update(kw)
    return StoredArticle(**fields)  # type: ignore[arg-type]


def test_the_backend_follows_the_settings(state_settings: Settings, store: FeedStore) -> None:
    if state_settings.uses_database:
        assert store.db.dialect == POSTGRES and "***" not in store.describe() and "database" in store.describe()
        assert not state_settings.state_dir.exists()  # nothing written beside the corpus
    else:
        assert store.db.dialect == SQLITE and store.describe() == str(state_settings.state_dir / "feeds.sqlite3")


# --- feeds ------------------------------------------------------------------------------------------


def test_add_list_and_remove_feeds(store: FeedStore) -> None:
    added = store.add_feed(URL, 900, title="Town news", notify_channel=123456789012345678, now=NOW)
    assert (added.url, added.title, added.interval_s, added.added_at, added.next_due_at) == (URL, "Town news", 900.0, NOW, NOW)
    assert (added.failures, added.disabled, added.notify_channel, added.articles) == (0, False, 123456789012345678, 0)
    other = store.add_feed(OTHER, 60, fetching_now=True, now=NOW)
    assert other.next_due_at == NOW + 60 and other.title is None
    assert [f.url for f in store.feeds()] == [URL, OTHER]

    # Adding it again: the new interval, the title and channel kept when not given.
    again = store.add_feed(URL, 300, now=NOW + 5)
    assert again.id == added.id and again.interval_s == 300 and again.title == "Town news"
    assert again.notify_channel == 123456789012345678 and again.added_at == NOW

    store.record_entry(added.id, "guid-1", "sig", article="a1", now=NOW)
    gone = store.remove_feed(URL)
    assert gone is not None and gone.url == URL and gone.articles == 1
    assert store.remove_feed(URL) is None
    assert [f.url for f in store.feeds()] == [OTHER] and store.feed(URL) is None
    assert store.entries(added.id) == {}
    # Following it once more starts afresh (another id, no entries).
    assert store.add_feed(URL, 900, now=NOW).id != added.id


def test_due_and_next_due(store: FeedStore) -> None:
    assert store.next_due() is None and store.due(NOW) == []
    store.add_feed(URL, 900, now=NOW)
    store.add_feed(OTHER, 600, fetching_now=True, now=NOW)
    assert [f.url for f in store.due(NOW)] == [URL]
    assert store.next_due() == NOW
    assert [f.url for f in store.due(NOW + 600)] == [URL, OTHER]


def test_success_moves_the_next_fetch_on_and_keeps_or_forgets_validators(store: FeedStore) -> None:
    feed = store.add_feed(URL, 900, now=NOW)
    store.record_success(feed, status=200, etag='"v1"', last_modified="Tue, 01 Dec 2026 09:00:00 GMT",
                         body_sha="abc", title="Town news", items=12, now=NOW)
    got = store.feed(URL)
    assert got is not None
    assert (got.last_status, got.etag, got.last_modified, got.body_sha, got.title, got.items) == (
        200, '"v1"', "Tue, 01 Dec 2026 09:00:00 GMT", "abc", "Town news", 12)
    assert got.last_fetch_at == NOW and got.next_due_at == NOW + 900 and got.last_error is None
    assert store.next_due() == NOW + 900 and store.due(NOW + 899) == []

    # A 304 gives no validators: the known ones stay. A warning is kept as the last error.
    store.record_success(got, status=304, etag=None, last_modified=None, body_sha=None, title=None, items=None,
                         warning="parsed with errors", now=NOW + 900)
    got = store.feed(URL)
    assert got is not None and (got.last_status, got.etag, got.body_sha, got.items) == (304, '"v1"', "abc", 12)
    assert got.last_error == "parsed with errors" and got.next_due_at == NOW + 1800

    store.record_success(got, status=200, etag='"v2"', last_modified=None, body_sha="def", title=None, items=3,
                         forget_validators=True, now=NOW + 1800)
    got = store.feed(URL)
    assert got is not None and (got.etag, got.last_modified, got.body_sha, got.items) == (None, None, None, 3)


def test_failures_back_off_then_disable_and_adding_again_enables(store: FeedStore) -> None:
    feed = store.add_feed(URL, 100, notify_channel=7, now=NOW)
    waits = []
    for n in range(1, 4):
        feed = store.record_failure(feed, error="HTTP 503", status=503, retry_after=None, max_failures=4, now=NOW)
        assert feed.failures == n and not feed.disabled and feed.last_status == 503 and feed.last_error == "HTTP 503"
        waits.append(feed.next_due_at - NOW)
    assert waits == [100, 200, 400]  # doubling
    # Retry-After lengthens the wait, never shortens it; a 429 does not count as a failure.
    feed = store.record_failure(feed, error="HTTP 429", status=429, retry_after=5000, max_failures=4, counts=False,
                                now=NOW)
    assert feed.failures == 3 and feed.next_due_at == NOW + 5000 and not feed.disabled
    feed = store.record_failure(feed, error="HTTP 429", status=429, retry_after=1, max_failures=4, counts=False, now=NOW)
    assert feed.next_due_at == NOW + 100
    assert store.disabled_unannounced() == []

    feed = store.record_failure(feed, error="timed out", status=None, retry_after=10 ** 9, max_failures=4, now=NOW)
    assert feed.disabled and feed.failures == 4 and feed.next_due_at == NOW + MAX_BACKOFF_S
    assert feed.disabled_reason == "4 failures in a row, the last: timed out" and feed.last_status is None
    assert store.due(NOW + 10 * MAX_BACKOFF_S) == [] and store.next_due() is None
    assert [f.url for f in store.disabled_unannounced()] == [URL]
    store.mark_announced(feed.id)
    assert store.disabled_unannounced() == []

    back = store.add_feed(URL, 100, now=NOW + 1)
    assert not back.disabled and back.failures == 0 and back.disabled_reason is None and back.next_due_at == NOW + 1
    store.record_failure(back, error="x", status=500, retry_after=None, max_failures=1, now=NOW)
    assert [f.url for f in store.disabled_unannounced()] == [URL]  # announced again after re-enabling


# --- entries and articles -----------------------------------------------------------------------------


def test_entries_record_their_article_and_attempts(store: FeedStore) -> None:
    feed = store.add_feed(URL, 900, now=NOW)
    store.record_entry(feed.id, "guid-1", "sig-1", article="https://news.example/story-1", now=NOW)
    store.record_entry(feed.id, "guid-2", "sig-2", skipped="robots.txt disallows it", now=NOW)
    assert store.entries(feed.id) == {"guid-1": ("https://news.example/story-1", "sig-1", None, 0),
                                      "guid-2": (None, "sig-2", "robots.txt disallows it", 0)}
    # An update of the entry without an article keeps the one it became.
    store.record_entry(feed.id, "guid-1", "sig-1b", now=NOW)
    assert store.entries(feed.id)["guid-1"] == ("https://news.example/story-1", "sig-1b", None, 0)

    attempts = [store.record_attempt(feed.id, "guid-3", "sig-3", "HTTP 500", now=NOW) for _ in range(MAX_PAGE_ATTEMPTS)]
    assert attempts == list(range(1, MAX_PAGE_ATTEMPTS + 1))
    assert store.entries(feed.id)["guid-3"] == (None, "sig-3", f"gave up after {MAX_PAGE_ATTEMPTS} attempts: HTTP 500",
                                                MAX_PAGE_ATTEMPTS)
    # Taken at last (the entry changed): the attempts are forgotten.
    store.record_entry(feed.id, "guid-3", "sig-3b", article="a3", now=NOW)
    assert store.entries(feed.id)["guid-3"] == ("a3", "sig-3b", None, 0)
    assert store.feed(URL).articles == 2  # type: ignore[union-attr]


def test_articles_and_their_aliases(store: FeedStore) -> None:
    a1 = article(1)
    store.put_article(a1, [a1.url, "https://news.example/amp/story-1", a1.url])
    assert store.article(a1.id) == a1
    assert store.article_for(["https://unknown.example/x", "https://news.example/amp/story-1"]) == a1
    assert store.article_for(["https://unknown.example/x"]) is None

    # Re-fetched: its new fingerprint and validators; the path and known aliases stay; a new alias is added.
    changed = article(1, fingerprint="fp1b", etag='"e"', fetched_at=NOW + 60, path="web/elsewhere.md")
    store.put_article(changed, ["https://news.example/story-1?page=1"])
    got = store.article(a1.id)
    assert got is not None and (got.fingerprint, got.etag, got.fetched_at, got.path) == ("fp1b", '"e"', NOW + 60, a1.path)
    assert store.article_for(["https://news.example/story-1?page=1"]) == got
    assert store.article_for(["https://news.example/amp/story-1"]) == got

    store.put_article(article(2), [article(2).url])
    store.expire([a1.id])
    assert {a.id: a.expired for a in store.articles()} == {a1.id: True, article(2).id: False}
    store.put_article(a1, [])  # fetched again after expiring: kept again
    assert store.article(a1.id).expired is False  # type: ignore[union-attr]


def test_a_transaction_that_fails_changes_nothing(store: FeedStore) -> None:
    t = store._t
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)), store.db.transaction() as tx:
        tx.execute(f"INSERT INTO {t['feeds']}(url, interval_s, added_at, next_due_at) VALUES (?, ?, ?, ?)",
                   (URL, 60.0, NOW, NOW))
        assert tx.query_one(f"SELECT count(*) FROM {t['feeds']}") == (1,)  # seen inside it
        tx.execute(f"INSERT INTO {t['feeds']}(url, interval_s, added_at, next_due_at) VALUES (?, ?, ?, ?)",
                   (URL, 60.0, NOW, NOW))
    assert store.feeds() == []

    class Stop(Exception):
        pass

    a1 = article(1)
    with pytest.raises(Stop), store.db.transaction() as tx:
        tx.execute(f"INSERT INTO {t['articles']}(id, url, path, fingerprint, fetched_at) VALUES (?, ?, ?, ?, ?)",
                   (a1.id, a1.url, a1.path, a1.fingerprint, NOW))
        raise Stop
    assert store.articles() == []
    store.put_article(a1, [a1.url])  # the store goes on working
    assert store.articles() == [a1]


def test_placeholders_and_literal_percent_signs(store: FeedStore) -> None:
    assert to_pyformat("SELECT ? WHERE 'a%' LIKE ?") == "SELECT %s WHERE 'a%%' LIKE %s"
    assert store.db.query_one("SELECT ? || '%', 'x%y' LIKE ?", ("50", "x%")) == ("50%", True)  # SQLite: 1


def test_two_stores_on_the_same_state_see_each_others_writes(state_settings: Settings, store: FeedStore) -> None:
    """What two processes (a watcher and a bot, or two machines on the database) rely on."""
    other = open_feed_store(state_settings)
    try:
        feed = store.add_feed(URL, 900, now=NOW)
        assert [f.url for f in other.feeds()] == [URL]
        other.record_failure(other.feed(URL), error="HTTP 500", status=500, retry_after=None,  # type: ignore[arg-type]
                             max_failures=5, now=NOW)
        assert store.feed(URL).failures == 1  # type: ignore[union-attr]
        store.record_entry(feed.id, "k", "s", article="a", now=NOW)
        assert other.entries(feed.id) == {"k": ("a", "s", None, 0)}
    finally:
        other.close()


# --- SQLite files as they were ------------------------------------------------------------------------


def test_an_existing_sqlite_feed_state_keeps_its_data(tmp_path: Path) -> None:
    """A feeds.sqlite3 written before the seam (its tables and schema row as they were) opens with its rows."""
    settings = Settings.from_env({}, corpus_dir=tmp_path / "corpus")
    settings.state_dir.mkdir(parents=True)
    conn = sqlite3.connect(settings.state_dir / "feeds.sqlite3")
    conn.executescript("""
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE feeds(id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, title TEXT, interval_s REAL NOT NULL,
            added_at REAL NOT NULL, last_fetch_at REAL, last_status INTEGER, last_error TEXT, etag TEXT,
            last_modified TEXT, body_sha TEXT, items INTEGER, next_due_at REAL NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0, disabled_reason TEXT,
            notify_channel INTEGER, disabled_notified INTEGER NOT NULL DEFAULT 0);
        INSERT INTO feeds(url, interval_s, added_at, next_due_at, disabled, failures) VALUES
            ('https://news.example/feed.xml', 900, 1, 2, 1, 6);
    """)
    conn.close()
    store = open_feed_store(settings)
    try:
        [feed] = store.feeds()
        assert feed.url == URL and feed.disabled is True and feed.failures == 6
        assert [f.url for f in store.disabled_unannounced()] == [URL]
        assert store.add_feed(URL, 60).disabled is False
    finally:
        store.close()


def test_a_feed_state_of_another_schema_or_no_corpus_folder_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({}, corpus_dir=tmp_path / "corpus")
    store = open_feed_store(settings)
    store.db.execute("UPDATE meta SET value='7' WHERE key='schema'")
    store.close()
    with pytest.raises(FeedStoreError, match="has schema 7"):
        open_feed_store(settings)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FeedStoreError, match="is a file"):
        open_feed_store(Settings.from_env({}, corpus_dir=tmp_path / "file"))
