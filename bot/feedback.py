"""The bot's answers and the 👍 / 👎 feedback on them, in SQLite or PostgreSQL.

Each answer the bot sends is stored under a random ``answer_id`` that its buttons carry in
their custom ids, so a restarted bot can still show the passages and take feedback for old
messages. Feedback rows keep the question and the answer with a sha256 hash of the user id,
never the id itself. The store is one SQLite file (NEWSBOT_FEEDBACK_DB) or, with
NEWSBOT_DATABASE_URL, the tables ``newsbot_answers`` and ``newsbot_feedback`` in the database, so
that every bot process (one per range of shards) can take the votes on any answer. Safe to call
from worker threads (the bot's :class:`bot.workers.Workers`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import NewsbotError
from index.records import Answer, Citation
from index.sqlstate import SqliteStateDB, StateDB, open_postgres_state, statements, table_names

if TYPE_CHECKING:
    from .config import BotSettings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: What an answer id looks like (also the custom-id templates in :mod:`bot.views` rely on it).
ANSWER_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,32}")

UP, DOWN = 1, -1

#: The SQLite file's tables (on PostgreSQL: migration 3 in index/stores/postgres.py).
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    answer_id    TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    question     TEXT NOT NULL,
    rendered     TEXT NOT NULL,
    confidence   REAL NOT NULL,
    sentence_ids TEXT NOT NULL,  -- JSON list, in quote order
    quotes       TEXT NOT NULL,  -- JSON list of {sentence_id, text, citations}
    citations    TEXT NOT NULL   -- JSON list of Citation.to_json()
);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id  TEXT NOT NULL,
    user_hash  TEXT NOT NULL,    -- sha256 of the Discord user id, never the id itself
    vote       INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (answer_id, user_hash)
);
"""


class FeedbackStoreError(NewsbotError):
    """The feedback database cannot be opened or used."""


def hash_user_id(user_id: int) -> str:
    """The sha256 hex digest of a Discord user id (as its decimal string)."""
    return hashlib.sha256(str(int(user_id)).encode("ascii")).hexdigest()


def new_answer_id() -> str:
    """A fresh random answer id: 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class StoredQuote:
    """A quoted sentence of a stored answer: enough to show its passage later."""

    sentence_id: int
    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer as the bot sent it, keyed by the id its buttons carry."""

    answer_id: str
    question: str
    rendered: str
    confidence: float
    quotes: tuple[StoredQuote, ...]
    citations: tuple[Citation, ...]
    created_at: str = ""

    @property
    def sentence_ids(self) -> list[int]:
        return [q.sentence_id for q in self.quotes]

    def citation(self, n: int) -> Citation | None:
        return next((c for c in self.citations if c.n == n), None)

    @classmethod
    def from_answer(cls, answer_id: str, answer: Answer, rendered: str) -> StoredAnswer:
        return cls(
            answer_id=answer_id,
            question=answer.question,
            rendered=rendered,
            confidence=float(answer.confidence),
            quotes=tuple(StoredQuote(q.sentence_id, q.text, tuple(q.citations)) for q in answer.quotes),
            citations=tuple(answer.citations),
        )


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    up: int = 0
    down: int = 0


_TABLES = {"answers": "newsbot_answers", "feedback": "newsbot_feedback"}
_ANSWER_COLUMNS = ("answer_id", "created_at", "question", "rendered", "confidence", "sentence_ids", "quotes", "citations")
_FEEDBACK_COLUMNS = ("answer_id", "user_hash", "vote", "question", "answer", "created_at", "updated_at")


def open_feedback_store(settings: BotSettings) -> FeedbackStore:
    """The answers and votes: in the database when NEWSBOT_DATABASE_URL is set, else in the SQLite
    file NEWSBOT_FEEDBACK_DB."""
    db = open_postgres_state(settings, "newsbot-feedback") if settings.uses_database else _open_sqlite(settings.feedback_db)
    log.info("feedback database: %s", db.describe())
    return FeedbackStore(db)


def _open_sqlite(path: Path) -> SqliteStateDB:
    """Open (creating if need be) the SQLite file at ``path`` and its schema."""
    try:
        db = SqliteStateDB.open(path, busy_timeout_s=10.0, synchronous="NORMAL")
    except (sqlite3.Error, OSError) as e:
        raise FeedbackStoreError(f"cannot open the feedback database {path}: {e}; check NEWSBOT_FEEDBACK_DB") from e
    try:
        (version,) = db.query_one("PRAGMA user_version") or (0,)
        if version > SCHEMA_VERSION:
            raise FeedbackStoreError(
                f"{path} was written by a newer newsbot (schema {version} > {SCHEMA_VERSION}): "
                "upgrade newsbot or point NEWSBOT_FEEDBACK_DB at another file"
            )
        for statement in statements(_SQLITE_SCHEMA):
            db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.Error as e:
        db.close()
        raise FeedbackStoreError(f"cannot open the feedback database {path}: {e}; check NEWSBOT_FEEDBACK_DB") from e
    except BaseException:
        db.close()
        raise
    return db


class FeedbackStore:
    """Answers and feedback, in SQLite or PostgreSQL (:mod:`index.sqlstate`). Open with
    :func:`open_feedback_store`; close with :meth:`close`."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._t = table_names(db, _TABLES)

    def _q(self, sql: str) -> str:
        """``sql`` with its ``{table}`` names in this database's dialect."""
        return sql.format_map(self._t)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- answers ---

    def save_answer(self, record: StoredAnswer) -> None:
        """Store (or replace) an answer under its id."""
        quotes = [{"sentence_id": q.sentence_id, "text": q.text, "citations": list(q.citations)} for q in record.quotes]
        replace = ", ".join(f"{c} = excluded.{c}" for c in _ANSWER_COLUMNS[1:])
        self.db.execute(
            self._q(f"INSERT INTO {{answers}} ({', '.join(_ANSWER_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    f" ON CONFLICT (answer_id) DO UPDATE SET {replace}"),
            (
                record.answer_id,
                record.created_at or _now(),
                record.question,
                record.rendered,
                record.confidence,
                json.dumps(record.sentence_ids),
                json.dumps(quotes, ensure_ascii=False),
                json.dumps([c.to_json() for c in record.citations], ensure_ascii=False),
            ),
        )

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        """The stored answer, or None if there is none with that id."""
        row = self.db.query_one(
            self._q("SELECT answer_id, created_at, question, rendered, confidence, quotes, citations"
                    " FROM {answers} WHERE answer_id = ?"),
            (answer_id,),
        )
        if row is None:
            return None
        quotes: list[dict[str, Any]] = json.loads(row[5])
        citations: list[dict[str, Any]] = json.loads(row[6])
        return StoredAnswer(
            answer_id=row[0],
            created_at=row[1],
            question=row[2],
            rendered=row[3],
            confidence=row[4],
            quotes=tuple(
                StoredQuote(int(q["sentence_id"]), q["text"], tuple(int(n) for n in q["citations"])) for q in quotes
            ),
            citations=tuple(Citation(**c) for c in citations),
        )

    # --- feedback ---

    def record_feedback(
        self, answer_id: str, user_id: int, vote: int, *, question: str = "", answer: str = ""
    ) -> bool:
        """Record ``vote`` (+1 or -1) by ``user_id`` on an answer; a second vote replaces the first.

        The question and answer come from the stored answer; ``question`` and ``answer`` are
        used only when there is none (e.g. the database was replaced). Returns whether the
        answer was found.
        """
        if vote not in (UP, DOWN):
            raise ValueError(f"vote must be {UP} or {DOWN}, not {vote!r}")
        stored = self.get_answer(answer_id)
        if stored is not None:
            question, answer = stored.question, stored.rendered
        now = _now()
        self.db.execute(
            self._q(f"INSERT INTO {{feedback}} ({', '.join(_FEEDBACK_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (answer_id, user_hash) DO UPDATE SET vote = excluded.vote,"
                    " updated_at = excluded.updated_at"),
            (answer_id, hash_user_id(user_id), vote, question, answer, now, now),
        )
        return stored is not None

    def counts(self, answer_id: str) -> FeedbackCounts:
        """How many 👍 and 👎 an answer has."""
        rows = self.db.query(self._q("SELECT vote, COUNT(*) FROM {feedback} WHERE answer_id = ? GROUP BY vote"),
                             (answer_id,))
        by_vote = {int(v): int(n) for v, n in rows}
        return FeedbackCounts(up=by_vote.get(UP, 0), down=by_vote.get(DOWN, 0))

    def feedback_rows(self, answer_id: str | None = None) -> list[dict[str, Any]]:
        """Feedback rows as dicts (for reports and tests), optionally for one answer."""
        sql = f"SELECT {', '.join(_FEEDBACK_COLUMNS)} FROM {{feedback}}"
        args: tuple[Any, ...] = ()
        if answer_id is not None:
            sql += " WHERE answer_id = ?"
            args = (answer_id,)
        rows = self.db.query(self._q(sql + " ORDER BY created_at"), args)
        return [dict(zip(_FEEDBACK_COLUMNS, row, strict=True)) for row in rows]
