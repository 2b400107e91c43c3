"""The bot's answers and the 👍 / 👎 feedback on them, in SQLite or PostgreSQL.

Each answer the bot sends (and each decline, for its "This should have been answered" button) is
stored under a random ``answer_id`` that its buttons carry in their custom ids, so a restarted bot
can still show the passages and take feedback for old messages. Feedback rows keep the question,
the answer, the vote, the reason picked in the 👎 form (:data:`REASONS`) and the optional comment,
with a keyed hash of the user id (HMAC-SHA256 under this install's secret key, :func:`load_secret_key`),
never the id itself. The store is one SQLite file (NEWSBOT_FEEDBACK_DB) or, with
NEWSBOT_DATABASE_URL, the tables ``newsbot_answers`` and ``newsbot_feedback`` in the database, so
that every bot process (one per range of shards) can take the votes on any answer. Safe to call
from worker threads (the bot's :class:`bot.workers.Workers`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
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

#: 2: the reason and comment of a vote, and user hashes keyed with the install's secret (``salted``).
SCHEMA_VERSION = 2

#: What an answer id looks like (also the custom-id templates in :mod:`bot.views` rely on it).
ANSWER_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,32}")

UP, DOWN = 1, -1

#: Why an answer missed: the choices of the 👎 form, and ``missed`` (a decline's "This should have
#: been answered" button). Stored by key; the labels are what people see (and the report prints).
REASONS: dict[str, str] = {
    "wrong_quote": "Wrong quote (it doesn't answer the question)",
    "outdated": "Outdated (there is newer news)",
    "wrong_source": "Wrong source (the citation doesn't say it)",
    "other": "Something else",
    "missed": "Should have been answered",
}
#: The reasons a 👎 form offers (``missed`` belongs to declines).
FORM_REASONS = ("wrong_quote", "outdated", "wrong_source", "other")
#: The longest comment kept (the form's limit).
COMMENT_MAX = 500
#: Secret keys: at least this many characters (NEWSBOT_SECRET_KEY) or bytes (the key file).
KEY_MIN = 16

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
    user_hash  TEXT NOT NULL,    -- HMAC of the Discord user id (hash_user_id), never the id itself
    vote       INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    reason     TEXT,             -- a key of REASONS, or NULL
    comment    TEXT,
    salted     INTEGER NOT NULL DEFAULT 0,  -- 1: user_hash is keyed (schema 2), 0: a schema-1 sha256
    PRIMARY KEY (answer_id, user_hash)
);
"""
#: From schema 1 (the feedback table without reason, comment and salted).
_SQLITE_V2 = (
    "ALTER TABLE feedback ADD COLUMN reason TEXT",
    "ALTER TABLE feedback ADD COLUMN comment TEXT",
    "ALTER TABLE feedback ADD COLUMN salted INTEGER NOT NULL DEFAULT 0",
)


class FeedbackStoreError(NewsbotError):
    """The feedback database cannot be opened or used."""


def hash_user_id(user_id: int, key: bytes) -> str:
    """A Discord user id as stored: HMAC-SHA256 under the install's ``key`` of the id's sha256 hex
    digest (so the unkeyed hashes of schema 1 are keyed in place: :func:`_salt`)."""
    return _salt(hashlib.sha256(str(int(user_id)).encode("ascii")).hexdigest(), key)


def _salt(digest: str, key: bytes) -> str:
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def key_file(settings: BotSettings) -> Path:
    """Where the generated secret key is kept when NEWSBOT_SECRET_KEY is not set: next to the
    feedback file (``data/feedback.key`` by default)."""
    return settings.feedback_db.with_suffix(".key")


def load_secret_key(settings: BotSettings) -> bytes:
    """The key user ids are hashed with: NEWSBOT_SECRET_KEY, else the key file (created once, 32
    random bytes, readable only by its owner). Raises FeedbackStoreError naming what is wrong."""
    if value := settings.secret_key.reveal():
        if len(value) < KEY_MIN:
            raise FeedbackStoreError(f"NEWSBOT_SECRET_KEY is too short: use at least {KEY_MIN} characters "
                                     "(e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))')")
        return value.encode("utf-8")
    path = key_file(settings)
    if settings.uses_database:
        log.warning("NEWSBOT_SECRET_KEY is not set: hashing user ids with the key in %s; give every bot "
                    "process that shares the database the same NEWSBOT_SECRET_KEY", path)
    try:
        if not path.exists():
            _create_key_file(path)
        key = path.read_bytes().strip()
    except OSError as e:
        raise FeedbackStoreError(f"cannot read or create the secret key {path}: {e}; "
                                 "set NEWSBOT_SECRET_KEY or check the folder's permissions") from e
    if len(key) < KEY_MIN:
        raise FeedbackStoreError(f"the secret key {path} is too short ({len(key)} bytes, at least {KEY_MIN}): "
                                 "delete it to have a new one made (past votes then count as other people's)")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path``, atomically and only if there is none (another process
    creating it at the same moment wins, and both use its key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if the file exists: never replaces a key in use
            log.info("created the secret key for user-id hashes: %s", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


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


@dataclass(frozen=True, slots=True)
class VotedDown:
    """A question people voted down (or said should have been answered), for the report."""

    answer_id: str
    question: str
    answer: str
    down: int
    up: int
    reasons: dict[str, int]
    comments: tuple[str, ...]
    last_at: str


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """What ``newsbot feedback`` prints: the totals, the reasons, the questions voted down most."""

    answers: int
    votes: int
    up: int
    down: int
    reasons: dict[str, int]
    voted_down: tuple[VotedDown, ...]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (its tuples serialise as lists)."""
        return dataclasses.asdict(self)


_TABLES = {"answers": "newsbot_answers", "feedback": "newsbot_feedback"}
_ANSWER_COLUMNS = ("answer_id", "created_at", "question", "rendered", "confidence", "sentence_ids", "quotes", "citations")
_FEEDBACK_COLUMNS = ("answer_id", "user_hash", "vote", "question", "answer", "created_at", "updated_at",
                     "reason", "comment")


def open_feedback_store(settings: BotSettings) -> FeedbackStore:
    """The answers and votes: in the database when NEWSBOT_DATABASE_URL is set, else in the SQLite
    file NEWSBOT_FEEDBACK_DB; user ids hashed with :func:`load_secret_key`."""
    key = load_secret_key(settings)
    db = open_postgres_state(settings, "newsbot-feedback") if settings.uses_database else _open_sqlite(settings.feedback_db)
    log.info("feedback database: %s", db.describe())
    try:
        return FeedbackStore(db, key)
    except BaseException:
        db.close()
        raise


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
        if version == 1:
            with db.transaction() as t:
                for statement in _SQLITE_V2:
                    t.execute(statement)
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

    def __init__(self, db: StateDB, key: bytes) -> None:
        self.db = db
        self._key = key
        self._t = table_names(db, _TABLES)
        self._salt_old_hashes()

    def user_hash(self, user_id: int) -> str:
        """How ``user_id`` is stored here."""
        return hash_user_id(user_id, self._key)

    def _salt_old_hashes(self) -> None:
        """Key the sha256 user hashes of schema 1 (rows with ``salted`` false), in place."""
        with self.db.transaction() as t:
            rows = t.query(self._q("SELECT answer_id, user_hash FROM {feedback} WHERE NOT salted"))
            for answer_id, digest in rows:
                t.execute(self._q("UPDATE {feedback} SET user_hash = ?, salted = TRUE"
                                  " WHERE answer_id = ? AND user_hash = ?"),
                          (_salt(digest, self._key), answer_id, digest))
        if rows:
            log.info("keyed %d user hashes written by an older newsbot", len(rows))

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
        self, answer_id: str, user_id: int, vote: int, *, reason: str | None = None, comment: str | None = None,
        question: str = "", answer: str = "",
    ) -> bool:
        """Record ``vote`` (+1 or -1) by ``user_id`` on an answer, with a ``reason`` (a key of
        :data:`REASONS`) and ``comment``; a second vote replaces the first (reason and comment too).

        The question and answer come from the stored answer; ``question`` and ``answer`` are
        used only when there is none (e.g. the database was replaced). Returns whether the
        answer was found.
        """
        if vote not in (UP, DOWN):
            raise ValueError(f"vote must be {UP} or {DOWN}, not {vote!r}")
        if reason is not None and reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r} (one of {', '.join(REASONS)})")
        comment = (comment or "").strip()[:COMMENT_MAX] or None
        stored = self.get_answer(answer_id)
        if stored is not None:
            question, answer = stored.question, stored.rendered
        now = _now()
        self.db.execute(
            self._q(f"INSERT INTO {{feedback}} ({', '.join(_FEEDBACK_COLUMNS)}, salted)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE)"
                    " ON CONFLICT (answer_id, user_hash) DO UPDATE SET vote = excluded.vote,"
                    " reason = excluded.reason, comment = excluded.comment, updated_at = excluded.updated_at"),
            (answer_id, self.user_hash(user_id), vote, question, answer, now, now, reason, comment),
        )
        return stored is not None

    def counts(self, answer_id: str) -> FeedbackCounts:
        """How many 👍 and 👎 an answer has."""
        rows = self.db.query(self._q("SELECT vote, COUNT(*) FROM {feedback} WHERE answer_id = ? GROUP BY vote"),
                             (answer_id,))
        by_vote = {int(v): int(n) for v, n in rows}
        return FeedbackCounts(up=by_vote.get(UP, 0), down=by_vote.get(DOWN, 0))

    def feedback_rows(self, answer_id: str | None = None) -> list[dict[str, Any]]:
        """Feedback rows as dicts (the export, and tests), oldest first, optionally for one answer."""
        sql = f"SELECT {', '.join(_FEEDBACK_COLUMNS)} FROM {{feedback}}"
        args: tuple[Any, ...] = ()
        if answer_id is not None:
            sql += " WHERE answer_id = ?"
            args = (answer_id,)
        rows = self.db.query(self._q(sql + " ORDER BY created_at"), args)
        return [dict(zip(_FEEDBACK_COLUMNS, row, strict=True)) for row in rows]

    def report(self, *, top: int = 10) -> FeedbackReport:
        """The totals, the reasons given, and the ``top`` questions with the most 👎 (and "should
        have been answered"), most first."""
        (answers,) = self.db.query_one(self._q("SELECT COUNT(*) FROM {answers}")) or (0,)
        by_vote = dict(self.db.query(self._q("SELECT vote, COUNT(*) FROM {feedback} GROUP BY vote")))
        reasons = dict(self.db.query(self._q(
            "SELECT reason, COUNT(*) FROM {feedback} WHERE vote = ? AND reason IS NOT NULL"
            " GROUP BY reason ORDER BY COUNT(*) DESC, reason"), (DOWN,)))
        worst = self.db.query(self._q(
            "SELECT answer_id, MIN(question), MIN(answer), SUM(CASE WHEN vote = ? THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN vote = ? THEN 1 ELSE 0 END), MAX(updated_at) FROM {feedback} GROUP BY answer_id"
            " HAVING SUM(CASE WHEN vote = ? THEN 1 ELSE 0 END) > 0"
            " ORDER BY 4 DESC, 6 DESC, answer_id LIMIT ?"), (DOWN, UP, DOWN, top))
        voted_down = []
        for answer_id, question, answer, down, up, last_at in worst:
            rows = self.db.query(self._q(
                "SELECT reason, comment FROM {feedback} WHERE answer_id = ? AND vote = ? ORDER BY updated_at"),
                (answer_id, DOWN))
            why: dict[str, int] = {}
            for reason, _ in rows:
                if reason is not None:
                    why[reason] = why.get(reason, 0) + 1
            comments = tuple(c for _, c in rows if c)
            voted_down.append(VotedDown(answer_id, question, answer, int(down), int(up), why, comments, last_at))
        up, down = int(by_vote.get(UP, 0)), int(by_vote.get(DOWN, 0))
        return FeedbackReport(int(answers), up + down, up, down, {k: int(n) for k, n in reasons.items()},
                              tuple(voted_down))
