"""The SQLite store of answers and feedback."""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import pytest

from bot.feedback import (
    ANSWER_ID_RE,
    DOWN,
    UP,
    FeedbackStore,
    FeedbackStoreError,
    StoredAnswer,
    hash_user_id,
    new_answer_id,
)


def test_answer_round_trip(store: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    record = StoredAnswer.from_answer("abcdefgh12345678", answer, "> rendered [1]")
    store.save_answer(record)
    got = store.get_answer("abcdefgh12345678")
    assert got is not None
    assert got.question == answer.question and got.rendered == "> rendered [1]"
    assert got.sentence_ids == [q.sentence_id for q in answer.quotes]
    assert got.quotes[0].text == answer.quotes[0].text and got.quotes[0].citations == (1,)
    assert got.citations == answer.citations
    assert got.created_at
    assert store.get_answer("nope-nope-nope") is None


def test_feedback_hashes_the_user_id(store: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    store.save_answer(StoredAnswer.from_answer("answer-0000000001", answer, "rendered text"))
    user_id = 123456789012345678
    assert store.record_feedback("answer-0000000001", user_id, UP) is True
    (row,) = store.feedback_rows()
    assert row["user_hash"] == hashlib.sha256(str(user_id).encode()).hexdigest() == hash_user_id(user_id)
    assert row["question"] == answer.question and row["answer"] == "rendered text" and row["vote"] == UP
    dump = "\n".join(store._conn.iterdump())  # the raw id is nowhere in the database
    assert str(user_id) not in dump


def test_second_vote_replaces_the_first(store: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    store.save_answer(StoredAnswer.from_answer("answer-0000000002", answer, "r"))
    store.record_feedback("answer-0000000002", 1, UP)
    store.record_feedback("answer-0000000002", 1, DOWN)
    store.record_feedback("answer-0000000002", 2, UP)
    counts = store.counts("answer-0000000002")
    assert (counts.up, counts.down) == (1, 1)
    with pytest.raises(ValueError):
        store.record_feedback("answer-0000000002", 1, 0)


def test_feedback_for_an_unknown_answer_uses_the_fallbacks(store: FeedbackStore) -> None:
    assert store.record_feedback("gone-gone-gone-1", 7, DOWN, question="Q?", answer="A.") is False
    (row,) = store.feedback_rows("gone-gone-gone-1")
    assert (row["question"], row["answer"], row["vote"]) == ("Q?", "A.", DOWN)


def test_survives_reopening(tmp_path, answer) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sub" / "fb.sqlite3"
    with FeedbackStore.open(path) as s:
        s.save_answer(StoredAnswer.from_answer("answer-0000000003", answer, "r"))
        s.record_feedback("answer-0000000003", 9, UP)
    with FeedbackStore.open(path) as s:
        assert s.get_answer("answer-0000000003") is not None
        assert s.counts("answer-0000000003").up == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fb.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(FeedbackStoreError, match="newer"):
        FeedbackStore.open(path)


def test_thread_safe(store: FeedbackStore, answer) -> None:  # type: ignore[no-untyped-def]
    store.save_answer(StoredAnswer.from_answer("answer-0000000004", answer, "r"))

    def vote(base: int) -> None:
        for i in range(50):
            store.record_feedback("answer-0000000004", base + i, UP if i % 2 else DOWN)

    threads = [threading.Thread(target=vote, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = store.counts("answer-0000000004")
    assert counts.up + counts.down == 200


def test_answer_ids() -> None:
    ids = {new_answer_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(ANSWER_ID_RE.fullmatch(i) for i in ids)
