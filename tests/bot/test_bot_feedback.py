"""The store of answers and feedback, over both backends (the SQLite file and a real PostgreSQL):
the tests that take ``fb`` run on both."""

from __future__ import annotations

import dataclasses
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
    key_file,
    load_secret_key,
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


def test_feedback_hashes_the_user_id_with_the_install_key(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    fb.save_answer(StoredAnswer.from_answer("answer-0000000001", answer, "rendered text"))
    user_id = 123456789012345678
    assert fb.record_feedback("answer-0000000001", user_id, UP) is True
    (row,) = fb.feedback_rows()
    plain = hashlib.sha256(str(user_id).encode()).hexdigest()
    assert row["user_hash"] == fb.user_hash(user_id) != plain  # keyed: not the id's bare hash
    assert row["user_hash"] != hash_user_id(user_id, b"another install's key!!")
    assert row["question"] == answer.question and row["answer"] == "rendered text" and row["vote"] == UP
    tables = fb._t.values()  # neither the raw id nor its bare hash is anywhere in the database
    dump = "\n".join(str(r) for t in tables for r in fb.db.query(f"SELECT * FROM {t}"))
    assert fb.user_hash(user_id) in dump and str(user_id) not in dump and plain not in dump


def test_reasons_and_comments(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    fb.save_answer(StoredAnswer.from_answer("answer-0000000011", answer, "r"))
    fb.record_feedback("answer-0000000011", 1, DOWN, reason="wrong_source", comment="x" * 900)
    fb.record_feedback("answer-0000000011", 2, DOWN, reason="outdated", comment="   ")
    rows = {r["reason"]: r for r in fb.feedback_rows("answer-0000000011")}
    assert len(rows["wrong_source"]["comment"]) == 500 and rows["outdated"]["comment"] is None
    fb.record_feedback("answer-0000000011", 1, UP)  # changed their mind: the reason goes with the vote
    assert {r["reason"] for r in fb.feedback_rows("answer-0000000011")} == {None, "outdated"}
    with pytest.raises(ValueError, match="unknown reason"):
        fb.record_feedback("answer-0000000011", 1, DOWN, reason="boring")


def test_the_report(fb: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    for aid, question in (("answer-000000000a", "Who won?"), ("answer-000000000b", "Why rain?")):
        fb.save_answer(StoredAnswer.from_answer(aid, dataclasses.replace(answer, question=question), "r"))
    fb.record_feedback("answer-000000000a", 1, DOWN, reason="outdated", comment="old")
    fb.record_feedback("answer-000000000a", 2, DOWN, reason="outdated")
    fb.record_feedback("answer-000000000a", 3, UP)
    fb.record_feedback("answer-000000000b", 1, DOWN, reason="missed")
    fb.record_feedback("answer-000000000b", 4, UP)
    report = fb.report()
    assert (report.answers, report.votes, report.up, report.down) == (2, 5, 2, 3)
    assert report.reasons == {"outdated": 2, "missed": 1}
    assert [(v.question, v.down, v.up, v.reasons, v.comments) for v in report.voted_down] == [
        ("Who won?", 2, 1, {"outdated": 2}, ("old",)), ("Why rain?", 1, 1, {"missed": 1}, ())]
    assert len(fb.report(top=1).voted_down) == 1
    assert report.to_json()["voted_down"][0]["question"] == "Who won?"


def test_the_secret_key_file_is_made_once_and_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    settings = sqlite_settings(tmp_path / "fb.sqlite3")
    key = load_secret_key(settings)
    path = key_file(settings)
    assert path == tmp_path / "fb.key" and len(key) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret_key(settings) == key  # the same key every time
    assert [p.name for p in tmp_path.iterdir()] == ["fb.key"]  # no temporary file left
    with open_feedback_store(settings) as s:
        first = s.user_hash(7)
    with open_feedback_store(settings) as s:
        assert s.user_hash(7) == first


def test_the_secret_key_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"NEWSBOT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "NEWSBOT_SECRET_KEY": "k" * 40}
    assert load_secret_key(Settings.from_env(env)) == b"k" * 40
    assert not key_file(Settings.from_env(env)).exists()
    with pytest.raises(FeedbackStoreError, match="NEWSBOT_SECRET_KEY is too short"):
        load_secret_key(Settings.from_env({**env, "NEWSBOT_SECRET_KEY": "short"}))
    (tmp_path / "fb.key").write_text("tiny\n")
    with pytest.raises(FeedbackStoreError, match="fb.key is too short"):
        load_secret_key(sqlite_settings(tmp_path / "fb.sqlite3"))


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


#: A feedback file as newsbot wrote it at schema 1 (before reasons, comments and keyed hashes).
SCHEMA_1 = """
        CREATE TABLE answers (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, question TEXT NOT NULL,
            rendered TEXT NOT NULL, confidence REAL NOT NULL, sentence_ids TEXT NOT NULL, quotes TEXT NOT NULL,
            citations TEXT NOT NULL);
        CREATE TABLE feedback (answer_id TEXT NOT NULL, user_hash TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), question TEXT NOT NULL, answer TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (answer_id, user_hash));
"""


def test_an_existing_sqlite_file_keeps_its_answers_and_votes(tmp_path, answer) -> None:  # type: ignore[no-untyped-def]
    """A feedback file written before the seam (the same tables, user_version 1) opens with its rows."""
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1 + """
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
        s.record_feedback("answer-0000000009", 5, DOWN, reason="outdated")
        assert (s.counts("answer-0000000009").up, s.counts("answer-0000000009").down) == (1, 1)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    conn.close()


def test_schema_1_user_hashes_are_keyed_in_place(tmp_path, answer) -> None:  # type: ignore[no-untyped-def]
    """The bare sha256 hashes an older newsbot stored become keyed hashes on opening, so the same
    person's new vote still replaces their old one, and no bare hash is left."""
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    bare = hashlib.sha256(b"4242").hexdigest()
    conn.executescript(SCHEMA_1 + f"""
        INSERT INTO feedback VALUES ('answer-0000000010', '{bare}', 1, 'Q?', 'A.', 't', 't');
        PRAGMA user_version=1;
    """)
    conn.close()
    with open_feedback_store(sqlite_settings(path)) as s:
        (row,) = s.feedback_rows()
        assert row["user_hash"] == s.user_hash(4242) != bare
        s.record_feedback("answer-0000000010", 4242, DOWN)
        assert (s.counts("answer-0000000010").up, s.counts("answer-0000000010").down) == (0, 1)
    with open_feedback_store(sqlite_settings(path)) as s:  # keyed once, not again
        assert [r["user_hash"] for r in s.feedback_rows()] == [s.user_hash(4242)]


def test_unkeyed_hashes_are_keyed_on_opening_on_either_backend(state_settings: Settings, fb: FeedbackStore) -> None:
    """A vote row left with a bare sha256 hash (``salted`` false: schema 1, or migration 5 on
    PostgreSQL) is keyed by the next store that opens the database, once."""
    bare = hashlib.sha256(b"31337").hexdigest()
    fb.db.execute(fb._q("INSERT INTO {feedback} (answer_id, user_hash, vote, question, answer, created_at, updated_at,"
                        " salted) VALUES (?, ?, ?, ?, ?, ?, ?, FALSE)"),
                  ("answer-00000000cc", bare, UP, "Q?", "A.", "t", "t"))
    with open_feedback_store(state_settings) as s:
        (row,) = s.feedback_rows("answer-00000000cc")
        assert row["user_hash"] == s.user_hash(31337)
        s.record_feedback("answer-00000000cc", 31337, DOWN)  # the same person: their vote is replaced
        assert (s.counts("answer-00000000cc").up, s.counts("answer-00000000cc").down) == (0, 1)
    with open_feedback_store(state_settings) as s:
        assert [r["user_hash"] for r in s.feedback_rows("answer-00000000cc")] == [s.user_hash(31337)]
