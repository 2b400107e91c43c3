"""The store of answers and feedback, over both backends (the SQLite file and a real PostgreSQL):
the tests that take ``fb`` run on both."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator

import pytest

from bot.config import BotSettings as Settings
from bot.feedback import (
    ANSWER_ID_RE,
    DOWN,
    UP,
    FeedbackStore,
    FeedbackStoreError,
    StoredAnswer,
    hash_user_id,
    new_answer_id,
    open_feedback_store,
)


@pytest.fixture
def fb(state_settings: Settings) -> Iterator[FeedbackStore]:
    s = open_feedback_store(state_settings)
    yield s
    s.close()


def sqlite_settings(path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings.from_env({"NEWSBOT_FEEDBACK_DB": str(path)})


def test_answer_round_trip(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    record = StoredAnswer.from_answer("abcdefgh12345678", answer, "> rendered [1]")
    fb.save_answer(record)
    got = fb.get_answer("abcdefgh12345678")
    assert got is not None
    assert got.question == answer.question and got.rendered == "> rendered [1]"
    assert got.sentence_ids == [q.sentence_id for q in answer.quotes]
    assert got.quotes[0].text == answer.quotes[0].text and got.quotes[0].citations == (1,)
    assert got.citations == answer.citations
    assert got.created_at
    assert fb.get_answer("nope-nope-nope") is None


def test_feedback_hashes_the_user_id(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    fb.save_answer(StoredAnswer.from_answer("answer-0000000001", answer, "rendered text"))
    user_id = 123456789012345678
    assert fb.record_feedback("answer-0000000001", user_id, UP) is True
    (row,) = fb.feedback_rows()
    assert row["user_hash"] == hashlib.sha256(str(user_id).encode()).hexdigest() == hash_user_id(user_id)
    assert row["question"] == answer.question and row["answer"] == "rendered text" and row["vote"] == UP
    tables = fb._t.values()  # the raw id is nowhere in the database
    dump = "\n".join(str(r) for t in tables for r in fb.db.query(f"SELECT * FROM {t}"))
    assert hash_user_id(user_id) in dump and str(user_id) not in dump


def test_second_vote_replaces_the_first(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    fb.save_answer(StoredAnswer.from_answer("answer-0000000002", answer, "r"))
    fb.record_feedback("answer-0000000002", 1, UP)
    fb.record_feedback("answer-0000000002", 1, DOWN)
    fb.record_feedback("answer-0000000002", 2, UP)
    counts = fb.counts("answer-0000000002")
    assert (counts.up, counts.down) == (1, 1)
    with pytest.raises(ValueError):
        fb.record_feedback("answer-0000000002", 1, 0)


def test_feedback_for_an_unknown_answer_uses_the_fallbacks(fb: FeedbackStore) -> None:
    assert fb.record_feedback("gone-gone-gone-1", 7, DOWN, question="Q?", answer="A.") is False
    (row,) = fb.feedback_rows("gone-gone-gone-1")
    assert (row["question"], row["answer"], row["vote"]) == ("Q?", "A.", DOWN)


def test_survives_reopening(state_settings: Settings, answer) -> None:  # type: ignore[no-untyped-def]
    with open_feedback_store(state_settings) as s:
        s.save_answer(StoredAnswer.from_answer("answer-0000000003", answer, "r"))
        s.record_feedback("answer-0000000003", 9, UP)
    with open_feedback_store(state_settings) as s:
        assert s.get_answer("answer-0000000003") is not None
        assert s.counts("answer-0000000003").up == 1


def test_a_second_process_sees_the_votes(state_settings: Settings, fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    """Two bot processes (shards) on one database: an answer stored by one takes votes in the other."""
    with open_feedback_store(state_settings) as other:
        fb.save_answer(StoredAnswer.from_answer("answer-0000000005", answer, "r"))
        assert other.record_feedback("answer-0000000005", 3, DOWN) is True
        assert fb.counts("answer-0000000005").down == 1


def test_the_sqlite_file_is_in_wal_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sub" / "fb.sqlite3"
    open_feedback_store(sqlite_settings(path)).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(FeedbackStoreError, match="newer"):
        open_feedback_store(sqlite_settings(path))


def test_thread_safe(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    fb.save_answer(StoredAnswer.from_answer("answer-0000000004", answer, "r"))

    def vote(base: int) -> None:
        for i in range(50):
            fb.record_feedback("answer-0000000004", base + i, UP if i % 2 else DOWN)

    threads = [threading.Thread(target=vote, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = fb.counts("answer-0000000004")
    assert counts.up + counts.down == 200


def test_answer_ids() -> None:
    ids = {new_answer_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(ANSWER_ID_RE.fullmatch(i) for i in ids)


def test_an_existing_sqlite_file_keeps_its_answers_and_votes(tmp_path, answer) -> None:  # type: ignore[no-untyped-def]
    """A feedback file written before the seam (the same tables, user_version 1) opens with its rows."""
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE answers (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, question TEXT NOT NULL,
            rendered TEXT NOT NULL, confidence REAL NOT NULL, sentence_ids TEXT NOT NULL, quotes TEXT NOT NULL,
            citations TEXT NOT NULL);
        CREATE TABLE feedback (answer_id TEXT NOT NULL, user_hash TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), question TEXT NOT NULL, answer TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (answer_id, user_hash));
        INSERT INTO answers VALUES ('answer-0000000009', '2026-01-02T03:04:05+00:00', 'Old question?', 'old answer',
            0.5, '[7]', '[{"sentence_id": 7, "text": "Old quote.", "citations": [1]}]', '[]');
        INSERT INTO feedback VALUES ('answer-0000000009', 'h', 1, 'Old question?', 'old answer', 't', 't');
        PRAGMA user_version=1;
    """)
    conn.close()
    with open_feedback_store(sqlite_settings(path)) as s:
        old = s.get_answer("answer-0000000009")
        assert old is not None and old.question == "Old question?" and old.sentence_ids == [7]
        assert s.counts("answer-0000000009").up == 1
        s.record_feedback("answer-0000000009", 5, DOWN)
        assert (s.counts("answer-0000000009").up, s.counts("answer-0000000009").down) == (1, 1)
