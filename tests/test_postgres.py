"""The PostgreSQL backend against real servers (tests/pgserver.py): migrations, `newsbot db`, the
database going away while answering, an exhausted read pool, a replica behind its primary, a
rebuild killed inside its transaction, and the same answers as the folder backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT
from test_store_conformance import _article, corpus

from index.config import Settings
from index.engine import Engine
from index.errors import ConfigError, StoreUnavailableError
from index.loaders import load_corpus
from index.stores.build import build_index, update_index
from index.stores.postgres import SCHEMA_VERSION, PostgresStore, migrate, schema_version, status

DRIVER = ROOT / "tests" / "reliability" / "rebuild_driver.py"


def _engine(store: PostgresStore, embedder) -> Engine:  # type: ignore[no-untyped-def]
    return Engine.open(Settings.from_env({}), embedder=embedder, store=store)


#: What each migration since 3 makes, (table, column or None): present after it, absent before.
MADE_BY = {3: ("newsbot_feeds", None), 4: ("newsbot_threads", None), 5: ("newsbot_feedback", "reason")}


def _made(conn, version: int) -> bool:  # type: ignore[no-untyped-def]
    table, column = MADE_BY[version]
    if column is None:
        return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] == table
    return conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                        (table, column)).fetchone()[0] == 1


def test_migrations_from_the_previous_schema_version_keep_the_index(pg_url: str, hashing_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    old = PostgresStore(pg_url, migrate_to=SCHEMA_VERSION - 1)  # as the previous newsbot left it
    build_index(old, corpus(8), hashing_embedder)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION - 1
        assert not _made(conn, SCHEMA_VERSION)
    assert status(old)["schema_version"] == SCHEMA_VERSION - 1
    before = [q.text for q in _engine(old, hashing_embedder).ask("What would item3 cost?").quotes]
    old.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate(conn) == [SCHEMA_VERSION]
        assert migrate(conn) == []  # applied once
        assert schema_version(conn) == SCHEMA_VERSION
        assert _made(conn, SCHEMA_VERSION)
    new = PostgresStore(pg_url)
    assert [q.text for q in _engine(new, hashing_embedder).ask("What would item3 cost?").quotes] == before
    assert update_index(new, [_article(40)], [], hashing_embedder).added == 1
    new.close()


def test_migration_3_gives_the_votes_migration_2s_unused_feedback_table_name(pg_url: str) -> None:
    """Migration 2 made a newsbot_feedback that newsbot never wrote: migration 3 drops it when empty,
    keeps it under another name when someone put rows in it, and makes the votes' table."""
    import psycopg

    from index.stores.postgres import MIGRATIONS

    for rows in (0, 1):
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS newsbot_schema, newsbot_state, newsbot_feedback, newsbot_feedback_v2, "
                         "newsbot_guild_settings, newsbot_feed_entries, newsbot_article_aliases, newsbot_feeds, "
                         "newsbot_fetched_articles, newsbot_answers, newsbot_threads CASCADE")
            conn.execute("DROP SEQUENCE IF EXISTS newsbot_article_ids, newsbot_sentence_ids")
            assert migrate(conn, target=2) == [1, 2]
            for _ in range(rows):
                conn.execute("INSERT INTO newsbot_feedback(user_hash, question, verdict) VALUES ('h', 'q?', 'good')")
            assert migrate(conn) == [v for v, _, _ in MIGRATIONS if v > 2]
            kept = conn.execute("SELECT to_regclass('newsbot_feedback_v2')").fetchone()[0]
            assert kept == ("newsbot_feedback_v2" if rows else None)
            if rows:
                assert conn.execute("SELECT question FROM newsbot_feedback_v2").fetchall() == [("q?",)]
            columns = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns "
                                                  "WHERE table_name = 'newsbot_feedback'")}
            assert columns == {"answer_id", "user_hash", "vote", "question", "answer", "created_at", "updated_at",
                               "reason", "comment", "salted"}


def _cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, str(DRIVER), "--", *args], capture_output=True, text=True,
                          env=full, timeout=timeout, cwd=ROOT)


def test_cli_rebuild_ask_and_db_status_and_migrate_on_the_database(pg_url: str, tmp_path: Path) -> None:
    env = {"NEWSBOT_DATABASE_URL": pg_url, "NEWSBOT_CORPUS_DIR": str(ROOT / "corpus"),
           "NEWSBOT_INDEX_DIR": str(tmp_path / "unused")}
    fresh = _cli(["db", "status", "--json"], env)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["schema_version"] == 0
    done = _cli(["rebuild"], env)  # migrates an empty database first
    assert done.returncode == 0, done.stderr
    assert "indexed 2 articles" in done.stderr
    st = json.loads(_cli(["db", "status", "--json"], env).stdout)
    assert st["schema_version"] == SCHEMA_VERSION and st["articles"] == 2 and st["sentences"] > 20
    assert st["generation"] == 1 and st["replica"] is False and st["build_running"] is False
    assert st["size_bytes"] > 0
    assert (st["feeds"], st["feeds_disabled"], st["fetched_articles"], st["stored_answers"], st["votes"]) == (0,) * 5
    from index.feeds import open_feed_store

    feeds = open_feed_store(Settings.from_env(env))
    feeds.add_feed("https://news.example/feed.xml", 900)
    feeds.close()
    text = _cli(["db", "status"], env).stdout
    assert "schema version: " + str(SCHEMA_VERSION) in text and "articles: 2" in text
    assert "               feeds: 1" in text and "votes: 0" in text
    migrated = _cli(["db", "migrate"], env)
    assert migrated.returncode == 0 and "the latest" in migrated.stderr
    ask = _cli(["ask", "--json", "Where is Chery opening its European headquarters?"], env)
    assert ask.returncode == 0, ask.stderr
    assert json.loads(ask.stdout)["answered"] is True
    assert not (tmp_path / "unused" / "manifest.json").exists()  # nothing went to the folder
    refused = _cli(["ask", "--index", str(tmp_path / "ix"), "anything?"], env)
    assert refused.returncode == 1 and "NEWSBOT_DATABASE_URL is set" in refused.stderr
    no_db = _cli(["db", "status"], {"NEWSBOT_DATABASE_URL": ""})
    assert no_db.returncode == 1 and "needs NEWSBOT_DATABASE_URL" in no_db.stderr


def test_settings_refuse_a_read_url_without_a_primary_and_non_postgres_urls() -> None:
    with pytest.raises(ConfigError, match="needs NEWSBOT_DATABASE_URL"):
        Settings.from_env({"NEWSBOT_DATABASE_READ_URL": "postgresql://r/db"})
    with pytest.raises(ConfigError, match="postgresql://"):
        Settings.from_env({"NEWSBOT_DATABASE_URL": "mysql://x/db"})
    s = Settings.from_env({"NEWSBOT_DATABASE_URL": "postgresql://u:pw@h/db",
                           "NEWSBOT_DATABASE_READ_URL": "postgresql://a/db, postgresql://b/db"})
    assert s.uses_database and len(s.database_read_urls) == 2 and "pw" not in repr(s)


def _answers_again(engine: Engine, within: float = 15.0) -> None:
    """Ask until the engine answers (StoreUnavailableError meanwhile), failing after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            assert engine.ask("What would item3 cost?").answered
            return
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_database_restarted_while_serving_apologises_then_answers_again(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    import pgserver

    server = pgserver.start_primary(tmp_path / "own")
    try:
        store = PostgresStore(pgserver.create_database(server, "restart"), timeout=2.0)
        build_index(store, corpus(8), hashing_embedder)
        engine = _engine(store, hashing_embedder)
        assert engine.ask("What would item3 cost?").answered
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="unreachable|busy"):
            engine.ask("What would item3 cost?")
        assert time.monotonic() - t0 < 10  # fails within the configured time-out, never hangs
        assert store.stamp() is None and engine.index_changed()
        server.start()
        _answers_again(engine)  # the pool reconnects by itself: the same engine answers
        server.kill()  # a crash, not a clean stop: the same
        server.start()
        _answers_again(engine)
        store.close()
    finally:
        server.close()


def test_an_exhausted_read_pool_says_busy_within_the_timeout(pg_url: str, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = PostgresStore(pg_url, pool_size=1, timeout=0.5)
    build_index(store, corpus(8), hashing_embedder)
    engine = _engine(store, hashing_embedder)
    with store.reading():  # the one connection, held
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="busy"):
            engine.ask("What would item3 cost?")
        assert 0.4 < time.monotonic() - t0 < 5
    assert engine.ask("What would item3 cost?").answered  # given back: answers again
    store.close()


def test_a_replica_behind_the_primary_serves_the_last_state_it_replayed(pg_replica, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    import pgserver

    primary, replica = pg_replica
    primary_uri = pgserver.create_database(primary, "replicated")
    pgserver.wait_replayed(primary, replica)
    store = PostgresStore(primary_uri, read_urls=[replica.uri_for("replicated")])
    build_index(store, corpus(8), hashing_embedder)
    pgserver.wait_replayed(primary, replica)
    engine = _engine(store, hashing_embedder)
    assert engine.ask("What would item3 cost?").answered
    st = status(store)
    assert st["replica"] is True and st["articles"] == 8 and st["replay_lag_seconds"] is not None
    with pgserver.replay_paused(replica):
        update_index(store, [_article(60, text="The ferry to the island was cancelled because of fog. " * 4
                                      + "The ferry operator said itemferry.")], [], hashing_embedder)
        time.sleep(0.5)
        assert not engine.index_changed()  # the replica has not replayed the commit
        assert not engine.ask("Why was the ferry to the island cancelled?").answered
    pgserver.wait_replayed(primary, replica)
    assert engine.index_changed()
    engine.reload()
    ans = engine.ask("Why was the ferry to the island cancelled?")
    assert ans.answered and "fog" in ans.quotes[0].text
    store.close()


@pytest.mark.parametrize("stage", ["sentences-copied", "index:hnsw", "manifest"])
def test_sigkill_of_a_rebuild_inside_its_transaction_leaves_the_last_commit(pg_url: str, tmp_path: Path, stage: str,
                                                                           hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = PostgresStore(pg_url)
    build_index(store, load_corpus(ROOT / "corpus"), hashing_embedder)
    before = store.fingerprints()
    engine = _engine(store, hashing_embedder)
    answer = [q.text for q in engine.ask("Where is Chery opening its European headquarters?").quotes]
    other = tmp_path / "corpus"
    other.mkdir()
    for n in range(3):
        (other / f"{n}.md").write_text(f"# Other story {n}\n\n" + "The quarry closed after the flood. " * 5)
    env = {"NEWSBOT_DATABASE_URL": pg_url, "NEWSBOT_CORPUS_DIR": str(other)}
    killed = subprocess.run([sys.executable, str(DRIVER), "--kill-at", stage, "--", "rebuild", "--full"],
                            capture_output=True, text=True, env={**os.environ, **env}, timeout=120, cwd=ROOT)
    assert killed.returncode == -9, killed.stderr
    assert store.fingerprints() == before and not engine.index_changed()
    assert [q.text for q in engine.ask("Where is Chery opening its European headquarters?").quotes] == answer
    assert status(store)["build_running"] is False  # the lock died with the session
    again = subprocess.run([sys.executable, str(DRIVER), "--", "rebuild", "--full"], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=120, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    assert set(store.fingerprints() or {}) == {str(n) for n in range(3)}
    store.close()


@pytest.mark.model
def test_the_seed_questions_get_the_same_answers_as_the_folder_backend(pg_url: str, seed_engine, real_embedder) -> None:  # type: ignore[no-untyped-def]
    from support import SHARED

    store = PostgresStore(pg_url)
    build_index(store, load_corpus(ROOT / "corpus"), real_embedder)
    engine = _engine(store, real_embedder)
    questions = [json.loads(line)["question"] for line in
                 (SHARED / "eval" / "seed-dev.jsonl").read_text().splitlines() if line.strip()]
    for q in questions:
        a, b = seed_engine.ask(q), engine.ask(q)
        assert a.answered == b.answered, q
        if a.answered:
            assert a.quotes[0].text == b.quotes[0].text, q
    store.close()


def test_the_hnsw_build_gets_memory_for_its_whole_graph() -> None:
    from index.stores.postgres import BUILD_MEMORY_MAX_MB, BUILD_MEMORY_MIN_MB, hnsw_build_memory_mb

    assert hnsw_build_memory_mb(10, 384, "halfvec") == BUILD_MEMORY_MIN_MB
    at_1m = hnsw_build_memory_mb(1_000_000, 384, "halfvec")
    assert at_1m > 1.5 * 1024  # 1 GB was outgrown at about 700k vectors (1.5 KB an element)
    assert hnsw_build_memory_mb(1_000_000, 384, "vector") > at_1m > hnsw_build_memory_mb(500_000, 384, "halfvec")
    assert hnsw_build_memory_mb(10**9, 384, "vector") == BUILD_MEMORY_MAX_MB
