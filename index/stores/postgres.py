"""The index in PostgreSQL with pgvector: for archives and deployments beyond one machine.

Layout (docs/SCALING.md):

* ``newsbot_schema``: the applied migrations (:data:`MIGRATIONS`; ``newsbot db migrate``).
* ``newsbot_state``: one row naming the current generation's schema, its number, the model, counts.
  A commit updates it in the same transaction as the data, so readers see all of a batch or none.
* one schema per generation, ``newsbot_g000007``: ``articles``, ``passages``, ``sentences`` (with
  their vector, terms, and the article's day and outlet, so that filters apply inside both searches),
  ``term_df``, ``wire_sigs``, ``wire_bands``.

A full rebuild loads a new generation's schema with COPY, builds its HNSW index after the load, and
commits by pointing ``newsbot_state`` at it: answers keep using the previous generation until they
reload, and the one before it is dropped. An incremental batch (the watcher) changes the current
generation's tables in one transaction. Either way a killed writer leaves the last commit answering.

Readers come from a pool on NEWSBOT_DATABASE_READ_URL (streaming replicas) or the primary; writes go
through their own connections to the primary, so a long rebuild never takes a reader's connection.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import wire
from ..config import Settings
from ..embed import Embedder
from ..errors import IndexLockedError, IndexMismatchError, IndexNotFoundError, StoreUnavailableError
from ..records import ArticleInfo, PassageView
from ..sqlstate import DatabaseUnavailable, redact_url
from ..terms import BM25_B, BM25_K1, TermStats
from ..when import parse_day
from .base import (
    ArticleRow,
    Batch,
    ParsedArticle,
    Reader,
    SearchFilter,
    SentenceRow,
    StepFn,
    Store,
    StoreInfo,
    check_model,
)
from .build import wire_signature

log = logging.getLogger(__name__)

#: The advisory lock a writer holds for its whole batch (one writer at a time, as the folder's .lock).
WRITE_LOCK = 0x6E657773  # "news"
#: Vector column types: pgvector's 4-byte ``vector`` or 2-byte ``halfvec`` (half the size on disk
#: and in the HNSW index; docs/SCALING.md measures both).
VECTOR_TYPES = {"vector": "vector_ip_ops", "halfvec": "halfvec_ip_ops"}
DEFAULT_VECTOR_TYPE = "halfvec"
#: HNSW build settings (pgvector's defaults, as its README gives them).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: maintenance_work_mem for the HNSW build is sized to hold the graph (pgvector builds far slower
#: once the graph outgrows it: at 1M sentences a fixed 1 GB was outgrown at about 700k and the
#: rest of the build crawled: docs/SCALING.md), within these bounds.
BUILD_MEMORY_MIN_MB = 64
BUILD_MEMORY_MAX_MB = 8192


def hnsw_build_memory_mb(rows: int, dimension: int, vector_type: str, m: int = HNSW_M) -> int:
    """The memory an in-memory HNSW build of ``rows`` vectors needs: per
    element its vector, its layer-0 neighbour list (2m candidates of 16 bytes) and about 200 bytes
    of bookkeeping and upper layers; half as much again to spare (the graph outgrew 1 GB at about
    700k 384-dimension halfvec vectors here, 1.5 KB an element)."""
    per = dimension * (2 if vector_type == "halfvec" else 4) + 2 * m * 16 + 200
    need = int(rows * per * 1.5 / 2**20) + 1
    return max(BUILD_MEMORY_MIN_MB, min(BUILD_MEMORY_MAX_MB, need))


# --------------------------------------------------------------------------------------------
# Migrations: shared tables, applied in order, each in its own transaction.


def _m1(cur: Any) -> None:
    cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    cur.execute("""
        CREATE TABLE newsbot_state(
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            gen_schema text,
            generation bigint NOT NULL DEFAULT 0,
            built_at timestamptz,
            model jsonb,
            vector_type text,
            articles bigint NOT NULL DEFAULT 0,
            sentences bigint NOT NULL DEFAULT 0,
            total_terms bigint NOT NULL DEFAULT 0
        )""")
    cur.execute("INSERT INTO newsbot_state(one) VALUES (true)")
    cur.execute("CREATE SEQUENCE newsbot_article_ids")
    cur.execute("CREATE SEQUENCE newsbot_sentence_ids")


def _m2(cur: Any) -> None:
    # State several processes share: answer feedback and per-guild settings (the bot's tables).
    cur.execute("""
        CREATE TABLE newsbot_feedback(
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            guild_id bigint, channel_id bigint, user_hash text NOT NULL,
            question text NOT NULL, verdict text NOT NULL, sentence_ids bigint[] NOT NULL DEFAULT '{}',
            detail jsonb NOT NULL DEFAULT '{}'
        )""")
    cur.execute("""
        CREATE TABLE newsbot_guild_settings(
            guild_id bigint NOT NULL, key text NOT NULL, value jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (guild_id, key)
        )""")


def _m3(cur: Any) -> None:
    # The state the feed watcher and the bot processes share (index/feeds.py, bot/feedback.py: the
    # same columns as their SQLite files; times are epoch seconds there, so double precision here).
    cur.execute("""
        CREATE TABLE newsbot_feeds(
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            url text NOT NULL UNIQUE, title text, interval_s double precision NOT NULL,
            added_at double precision NOT NULL, last_fetch_at double precision, last_status integer,
            last_error text, etag text, last_modified text, body_sha text, items integer,
            next_due_at double precision NOT NULL, failures integer NOT NULL DEFAULT 0,
            disabled boolean NOT NULL DEFAULT false, disabled_reason text, notify_channel bigint,
            disabled_notified boolean NOT NULL DEFAULT false
        )""")
    cur.execute("""
        CREATE TABLE newsbot_feed_entries(
            feed bigint NOT NULL REFERENCES newsbot_feeds(id) ON DELETE CASCADE, key text NOT NULL,
            article text, signature text NOT NULL, seen_at double precision NOT NULL, skipped text,
            attempts integer NOT NULL DEFAULT 0, PRIMARY KEY (feed, key)
        )""")
    cur.execute("CREATE INDEX newsbot_feed_entries_article ON newsbot_feed_entries(article)")
    cur.execute("""
        CREATE TABLE newsbot_fetched_articles(
            id text PRIMARY KEY, url text NOT NULL, path text NOT NULL UNIQUE, fingerprint text NOT NULL,
            published text, fetched_at double precision NOT NULL, etag text, last_modified text,
            expired boolean NOT NULL DEFAULT false
        )""")
    cur.execute("""
        CREATE TABLE newsbot_article_aliases(
            url text PRIMARY KEY, article text NOT NULL REFERENCES newsbot_fetched_articles(id)
        )""")
    cur.execute("CREATE INDEX newsbot_article_aliases_article ON newsbot_article_aliases(article)")
    cur.execute("""
        CREATE TABLE newsbot_answers(
            answer_id text PRIMARY KEY, created_at text NOT NULL, question text NOT NULL, rendered text NOT NULL,
            confidence double precision NOT NULL, sentence_ids text NOT NULL, quotes text NOT NULL,
            citations text NOT NULL
        )""")
    # Migration 2's newsbot_feedback was never written by newsbot: the votes take its name. Rows that
    # someone put there by hand are kept, under another name.
    cur.execute("SELECT count(*) FROM newsbot_feedback")
    if cur.fetchone()[0]:
        cur.execute("ALTER TABLE newsbot_feedback RENAME TO newsbot_feedback_v2")
    else:
        cur.execute("DROP TABLE newsbot_feedback")
    cur.execute("""
        CREATE TABLE newsbot_feedback(
            answer_id text NOT NULL, user_hash text NOT NULL, vote smallint NOT NULL CHECK (vote IN (-1, 1)),
            question text NOT NULL, answer text NOT NULL, created_at text NOT NULL, updated_at text NOT NULL,
            PRIMARY KEY (answer_id, user_hash)
        )""")


def _m4(cur: Any) -> None:
    # The question each of the bot's threads follows (bot/guilds.py ThreadMemory); the per-guild
    # settings use migration 2's newsbot_guild_settings.
    cur.execute("""
        CREATE TABLE newsbot_threads(
            thread_id bigint PRIMARY KEY, question text NOT NULL, updated_at text NOT NULL
        )""")


def _m5(cur: Any) -> None:
    # Why a vote was down (the 👎 form's reason and comment), and user hashes keyed with the install's
    # secret: rows from before are keyed in place by bot/feedback.py (salted false until then).
    cur.execute("ALTER TABLE newsbot_feedback ADD COLUMN reason text, ADD COLUMN comment text,"
                " ADD COLUMN salted boolean NOT NULL DEFAULT false")


#: (version, what it does, how). Never edit an applied one: add the next.
MIGRATIONS: tuple[tuple[int, str, Callable[[Any], None]], ...] = (
    (1, "the index's state, id sequences and the pgvector extension", _m1),
    (2, "shared bot state: feedback and per-guild settings", _m2),
    (3, "shared state: feeds, their entries, fetched articles; the bot's answers and votes", _m3),
    (4, "the bot's threads and the question each follows", _m4),
    (5, "the reason and comment of a vote; keyed user hashes", _m5),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _generation_ddl(schema: str, vector_type: str, dimension: int) -> list[str]:
    s = schema
    return [
        f"CREATE SCHEMA {s}",
        f"""CREATE TABLE {s}.articles(
            id bigint PRIMARY KEY, ext_id text NOT NULL UNIQUE, title text NOT NULL, source text, url text,
            published text, day date, authors jsonb NOT NULL, path text NOT NULL, fingerprint text NOT NULL,
            text text NOT NULL, wire bigint)""",
        f"""CREATE TABLE {s}.passages(
            id bigint PRIMARY KEY, article bigint NOT NULL, idx int NOT NULL, start_ int NOT NULL, end_ int NOT NULL)""",
        f"""CREATE TABLE {s}.sentences(
            id bigint PRIMARY KEY, article bigint NOT NULL, passage bigint NOT NULL, idx int NOT NULL,
            start_ int NOT NULL, end_ int NOT NULL, text text NOT NULL, terms text[] NOT NULL, n_terms int NOT NULL,
            day date, source_lc text)""",
        # The vectors in a narrow table of their own (with the filter columns): a heap page holds
        # ten times the sentences it would beside the text, for the lexical scans and look-ups.
        f"""CREATE TABLE {s}.vectors(
            id bigint PRIMARY KEY, day date, source_lc text, embedding {vector_type}({dimension}) NOT NULL)""",
        f"CREATE TABLE {s}.term_df(term text PRIMARY KEY, df bigint NOT NULL)",
        f"CREATE TABLE {s}.wire_sigs(article bigint PRIMARY KEY, sig bytea NOT NULL)",
        f"CREATE TABLE {s}.wire_bands(band int NOT NULL, bucket bigint NOT NULL, article bigint NOT NULL)",
    ]


def _generation_indexes(schema: str, vector_type: str) -> list[str]:
    s = schema
    return [
        f"CREATE INDEX ON {s}.sentences(article, idx)",
        f"CREATE INDEX ON {s}.sentences USING gin(terms)",
        f"CREATE INDEX ON {s}.sentences(day)",
        f"CREATE INDEX ON {s}.vectors(day)",
        f"CREATE INDEX ON {s}.passages(article)",
        f"CREATE INDEX ON {s}.wire_bands(band, bucket)",
        f"CREATE INDEX ON {s}.wire_bands(article)",
        f"CREATE INDEX ON {s}.articles(wire) WHERE wire IS NOT NULL",
        f"CREATE INDEX ON {s}.vectors USING hnsw (embedding {VECTOR_TYPES[vector_type]}) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})",
    ]


def _schema_name(generation: int) -> str:
    return f"newsbot_g{generation:06d}"


# --------------------------------------------------------------------------------------------
# Connections


def _configure_reader(ef_search: int) -> Callable[[Any], None]:
    def configure(conn: Any) -> None:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        # Filters apply during the HNSW scan, which goes on until it has enough rows that pass (pgvector 0.8).
        conn.execute("SET hnsw.iterative_scan = relaxed_order")

    return configure


class _Unavailable(DatabaseUnavailable):
    """Connection failures and pool time-outs as StoreUnavailableError (index.sqlstate), and a
    generation dropped under a reader too."""

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        import psycopg

        if isinstance(exc, psycopg.errors.UndefinedTable):
            # A generation dropped under a reader that kept it past the next one: reload.
            raise StoreUnavailableError(f"the index changed under this answer ({self.what})") from exc
        return super().__exit__(typ, exc, tb)


class PostgresStore(Store):
    """The index in PostgreSQL: ``url`` takes writes; ``read_urls`` (replicas, or the primary) serve answers."""

    name = "postgres"

    def __init__(self, url: str, *, read_urls: Sequence[str] = (), pool_size: int = 8, timeout: float = 5.0,
                 ef_search: int = 100, vector_type: str = DEFAULT_VECTOR_TYPE, cache_path: Path | None = None,
                 migrate_to: int | None = None) -> None:
        """``migrate_to``: the schema version writers bring the database to (default: the latest)."""
        if vector_type not in VECTOR_TYPES:
            raise ValueError(f"vector type {vector_type!r} is not one of {', '.join(VECTOR_TYPES)}")
        self.url = url
        self.read_urls = list(read_urls) or [url]
        self.pool_size = pool_size
        self.timeout = timeout
        self.ef_search = ef_search
        self.vector_type = vector_type
        self.cache_path = cache_path
        self.migrate_to = migrate_to
        self._pools: list[Any] = []
        self._wpool: Any = None
        self._next_pool = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        return cls(settings.database_url.reveal(), read_urls=[u.reveal() for u in settings.database_read_urls],
                   pool_size=settings.db_pool_size, timeout=settings.db_timeout, ef_search=settings.hnsw_ef_search,
                   cache_path=settings.index_dir / "embcache.sqlite3")

    def describe(self) -> str:
        reads = "" if self.read_urls == [self.url] else f" (answers from {', '.join(map(redact_url, self.read_urls))})"
        return f"the database {redact_url(self.url)}{reads}"

    # -- connections ---------------------------------------------------------------------------

    def _pool_list(self) -> list[Any]:
        with self._lock:
            if not self._pools:
                from psycopg_pool import ConnectionPool

                for u in self.read_urls:
                    pool = ConnectionPool(
                        u, min_size=1, max_size=self.pool_size, timeout=self.timeout, open=False,
                        kwargs={"autocommit": True, "connect_timeout": max(1, int(self.timeout))},
                        configure=_configure_reader(self.ef_search), check=ConnectionPool.check_connection,
                        name=f"newsbot-read-{len(self._pools)}", reconnect_timeout=0,
                    )
                    pool.open(wait=False)
                    self._pools.append(pool)
            return self._pools

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A pooled read connection (autocommit), from the replicas in turn; a replica that cannot
        give one passes the question to the next."""
        pools = self._pool_list()
        start = self._next_pool
        self._next_pool = (start + 1) % len(pools)
        for k in range(len(pools)):
            pool = pools[(start + k) % len(pools)]
            try:
                with _Unavailable("reading"):
                    conn = pool.getconn()
            except StoreUnavailableError as e:
                if k == len(pools) - 1:
                    raise
                log.warning("database replica unavailable (%s); trying the next", e)
                continue
            try:
                with _Unavailable("reading"):
                    yield conn
            finally:
                pool.putconn(conn)
            return

    def _write_pool(self) -> Any:
        """The primary's pool for batches: small (one batch holds the write lock at a time; a second
        waits for it) and separate from the readers', so a long rebuild never takes their connections."""
        with self._lock:
            if self._wpool is None:
                from psycopg_pool import ConnectionPool

                self._wpool = ConnectionPool(
                    self.url, min_size=0, max_size=2, timeout=self.timeout, open=False,
                    kwargs={"connect_timeout": max(1, int(self.timeout))}, configure=self._configure_writer,
                    check=ConnectionPool.check_connection, name="newsbot-write",
                )
                self._wpool.open(wait=False)
            return self._wpool

    def _configure_writer(self, conn: Any) -> None:
        from pgvector.psycopg import register_vector

        migrate(conn, target=self.migrate_to)
        register_vector(conn)
        conn.commit()

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """A connection to the primary, migrated, in a transaction that the caller commits; rolled
        back if it does not."""
        pool = self._write_pool()
        with _Unavailable("writing"):
            conn = pool.getconn()
        try:
            yield conn
        finally:
            pool.putconn(conn)  # rolls back whatever was left uncommitted

    def connect_primary(self, *, autocommit: bool = False, migrate_first: bool = True) -> Any:
        """A connection of its own to the primary (``newsbot db``), migrated first unless told not to."""
        import psycopg
        from pgvector.psycopg import register_vector

        with _Unavailable("writing"):
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.timeout)))
        try:
            if migrate_first:
                migrate(conn, target=self.migrate_to)
                register_vector(conn)
        except BaseException:
            conn.close()
            raise
        conn.autocommit = autocommit
        return conn

    def close(self) -> None:
        with self._lock:
            pools, self._pools = self._pools, []
            if self._wpool is not None:
                pools.append(self._wpool)
                self._wpool = None
        for p in pools:
            p.close()

    # -- Store ---------------------------------------------------------------------------------

    def stamp(self) -> object:
        try:
            with self.reading() as conn:
                row = conn.execute("SELECT generation, gen_schema FROM newsbot_state").fetchone()
        except StoreUnavailableError:  # unreachable, or not migrated yet: nothing to load
            return None
        return tuple(row) if row else None

    def open(self, embedder: Embedder | None = None) -> PostgresReader:
        return PostgresReader.open(self, embedder)

    def fingerprints(self) -> dict[str, str] | None:
        import psycopg

        try:
            with self.reading() as conn:
                schema = _current_schema(conn)
                if schema is None:
                    return None
                return dict(conn.execute(f"SELECT ext_id, fingerprint FROM {schema}.articles").fetchall())
        except psycopg.errors.UndefinedTable:
            return None

    def begin(self, embedder: Embedder, *, full: bool, partial: bool, wait: bool, step: StepFn) -> PostgresBatch:
        return PostgresBatch(self, embedder, full=full, partial=partial, wait=wait, step=step)

    def embedding_cache_path(self) -> Path | None:
        """A local cache file (text hash -> vector): the index folder's, so that moving an archive
        from the folder to the database embeds nothing again."""
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        return self.cache_path


def _current_schema(conn: Any) -> str | None:
    import psycopg

    try:
        row = conn.execute("SELECT gen_schema FROM newsbot_state").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return None if row is None else row[0]


def schema_version(conn: Any) -> int:
    import psycopg

    try:
        with conn.transaction():
            row = conn.execute("SELECT max(version) FROM newsbot_schema").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0] or 0)


def migrate(conn: Any, *, target: int | None = None) -> list[int]:
    """Apply the migrations this database lacks (up to ``target``), each in one transaction under an
    advisory lock, so that two processes starting at once apply each migration once. Returns the
    versions applied."""
    target = SCHEMA_VERSION if target is None else target
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK + 1,))
        conn.execute("CREATE TABLE IF NOT EXISTS newsbot_schema(version int PRIMARY KEY, description text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        have = int(conn.execute("SELECT coalesce(max(version), 0) FROM newsbot_schema").fetchone()[0])
        if have > SCHEMA_VERSION:
            raise IndexMismatchError(
                f"the database's schema is version {have}, newer than this newsbot knows ({SCHEMA_VERSION}): "
                "upgrade newsbot")
        for version, description, fn in MIGRATIONS:
            if have < version <= target:
                with conn.transaction(), conn.cursor() as cur:
                    fn(cur)
                    cur.execute("INSERT INTO newsbot_schema(version, description) VALUES (%s, %s)",
                                (version, description))
                applied.append(version)
                log.info("database migrated to schema version %d: %s", version, description)
    return applied


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _State:
    schema: str
    generation: int
    built_at: str | None
    model: dict[str, Any]
    vector_type: str
    articles: int
    sentences: int
    total_terms: int


def _filter_sql(where: SearchFilter | None, alias: str = "") -> tuple[str, list[object]]:
    """SQL conditions for a filter on the sentences table (its denormalised day and outlet)."""
    if where is None or not where.active:
        return "", []
    p = f"{alias}." if alias else ""
    parts: list[str] = []
    args: list[object] = []
    src = (where.source or "").strip().lower()
    if src:
        parts.append(f"strpos({p}source_lc, %s) > 0")
        args.append(src)
    if where.since:
        parts.append(f"{p}day >= %s")
        args.append(where.since)
    if where.until:
        parts.append(f"{p}day <= %s")
        args.append(where.until)
    return " AND " + " AND ".join(parts), args


_SENTENCE_COLS = "id, article, passage, idx, start_, end_, text, array_to_string(terms, ' ')"


class PostgresReader(Reader):
    """One generation in the database: its article table and term statistics in memory (small),
    sentences and vectors queried (large)."""

    def __init__(self, store: PostgresStore, state: _State, articles: dict[int, ArticleRow],
                 days: dict[int, dt.date | None], term_stats: TermStats) -> None:
        self.store = store
        self.state = state
        self._s = state.schema
        self._articles = articles
        self._days = days
        self.term_stats = term_stats
        self._wire: dict[int, list[int]] = {}
        for a in articles.values():
            if a.wire is not None:
                self._wire.setdefault(a.wire, []).append(a.id)
        dated = sorted(d for d in days.values() if d is not None)
        self._dated = dated
        self.newest_day = dated[-1] if dated else None
        self._cast = state.vector_type

    @classmethod
    def open(cls, store: PostgresStore, embedder: Embedder | None) -> PostgresReader:
        with store.reading() as conn:
            try:
                row = conn.execute("SELECT gen_schema, generation, built_at, model, vector_type, articles, "
                                   "sentences, total_terms FROM newsbot_state").fetchone()
            except Exception as e:
                import psycopg

                if isinstance(e, psycopg.errors.UndefinedTable):
                    raise IndexNotFoundError(
                        f"{store.describe()} holds no newsbot index yet: run `newsbot rebuild`") from e
                raise
            if row is None or row[0] is None:
                raise IndexNotFoundError(f"{store.describe()} holds no newsbot index yet: run `newsbot rebuild`")
            state = _State(row[0], int(row[1]), row[2].isoformat(timespec="seconds") if row[2] else None,
                           dict(row[3] or {}), row[4], int(row[5]), int(row[6]), int(row[7]))
            if embedder is not None:
                check_model(state.model, embedder, f"the index in {store.describe()}")
            s = state.schema
            articles: dict[int, ArticleRow] = {}
            days: dict[int, dt.date | None] = {}
            for r in conn.execute(f"SELECT id, ext_id, title, source, url, published, wire, day FROM {s}.articles"):
                articles[r[0]] = ArticleRow(*r[:7])
                days[r[0]] = r[7]
            df = dict(conn.execute(f"SELECT term, df FROM {s}.term_df").fetchall())
        n = state.sentences
        stats = TermStats(df, n, state.total_terms / n if n else 1.0)
        return cls(store, state, articles, days, stats)

    @property
    def info(self) -> StoreInfo:
        st = self.state
        return StoreInfo("postgres", st.generation, st.articles, st.sentences, str(st.model.get("name")), st.built_at)

    def _q(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.store.reading() as conn, _Unavailable("reading"):
            return conn.execute(sql, args).fetchall()

    # -- searches ------------------------------------------------------------------------------

    def dense(self, qvec: np.ndarray, k: int, where: SearchFilter | None = None) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        cond, args = _filter_sql(where)
        vec = _vector_literal(qvec)
        rows = self._q(
            f"SELECT id, -(embedding <#> %s::{self._cast}) FROM {self._s}.vectors WHERE true{cond} "
            f"ORDER BY embedding <#> %s::{self._cast} LIMIT %s", [vec, *args, vec, k])
        # relaxed_order: an iterative scan may return its rows slightly out of order.
        return sorted(((int(i), float(s)) for i, s in rows), key=lambda x: -x[1])

    def lexical(self, terms: Sequence[str], k: int, where: SearchFilter | None = None) -> list[tuple[int, float]]:
        """BM25 with the index's own term statistics, computed in SQL over the GIN-indexed terms."""
        chosen = [t for t in dict.fromkeys(terms) if t]
        if not chosen or k <= 0:
            return []
        stats = self.term_stats
        weights = [stats.idf(t) for t in chosen]
        cond, args = _filter_sql(where)
        score = " + ".join("CASE WHEN terms @> ARRAY[%s]::text[] THEN %s ELSE 0 END" for _ in chosen)
        score_args: list[object] = [x for t, w in zip(chosen, weights) for x in (t, w)]
        tf = f"({BM25_K1 + 1} / (1 + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * n_terms / %s)))"
        rows = self._q(
            f"SELECT id, ({score}) * {tf} AS s FROM {self._s}.sentences WHERE terms && %s::text[]{cond} "
            "ORDER BY s DESC, id LIMIT %s",
            [*score_args, stats.avg_terms, chosen, *args, k])
        return [(int(i), float(s)) for i, s in rows]

    # -- look-ups ------------------------------------------------------------------------------

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, int(self.state.model.get("dimension", 0))), dtype=np.float32)
        got = {int(i): _to_numpy(v) for i, v in self._q(
            f"SELECT id, embedding FROM {self._s}.vectors WHERE id = ANY(%s)", [list(ids)])}
        return np.vstack([got[int(i)] for i in ids]).astype(np.float32, copy=False)

    def similarities(self, qvec: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Computed in the database: no vector leaves it."""
        if not ids:
            return np.zeros(0, dtype=np.float32)
        got = dict(self._q(f"SELECT id, -(embedding <#> %s::{self._cast}) FROM {self._s}.vectors WHERE id = ANY(%s)",
                           [_vector_literal(qvec), list(ids)]))
        return np.array([got[int(i)] for i in ids], dtype=np.float32)

    def sentences(self, ids: Sequence[int]) -> dict[int, SentenceRow]:
        if not ids:
            return {}
        rows = self._q(f"SELECT {_SENTENCE_COLS} FROM {self._s}.sentences WHERE id = ANY(%s)", [list(ids)])
        return {int(r[0]): SentenceRow(*r) for r in rows}

    def neighbours(self, rows: Sequence[SentenceRow], window: int = 1) -> dict[tuple[int, int], SentenceRow]:
        if not rows:
            return {}
        own = {(r.article, r.idx) for r in rows}
        wanted = sorted({(r.article, r.idx + d) for r in rows for d in range(-window, window + 1) if d} - own)
        got = {(r.article, r.idx): r for r in rows}
        if wanted:
            found = self._q(
                f"SELECT {_SENTENCE_COLS} FROM {self._s}.sentences s JOIN unnest(%s::bigint[], %s::int[]) "
                "AS w(a, i) ON s.article = w.a AND s.idx = w.i", [[a for a, _ in wanted], [i for _, i in wanted]])
            got.update({(int(r[1]), int(r[3])): SentenceRow(*r) for r in found})
        return {(r.article, r.idx + d): got[(r.article, r.idx + d)]
                for r in rows for d in range(-window, window + 1) if d and (r.article, r.idx + d) in got}

    def article_sentences(self, article_ids: Sequence[int]) -> dict[int, list[SentenceRow]]:
        if not article_ids:
            return {}
        out: dict[int, list[SentenceRow]] = {}
        for r in self._q(f"SELECT {_SENTENCE_COLS} FROM {self._s}.sentences WHERE article = ANY(%s) "
                         "ORDER BY article, idx", [list(article_ids)]):
            out.setdefault(int(r[1]), []).append(SentenceRow(*r))
        return out

    def articles_mentioning(self, article_ids: Iterable[int], words: Sequence[str]) -> set[int]:
        found = set(article_ids)
        for w in words:
            if not found:
                break
            found = {int(r[0]) for r in self._q(
                f"SELECT DISTINCT article FROM {self._s}.sentences WHERE article = ANY(%s) AND terms @> ARRAY[%s]::text[]",
                [sorted(found), w])}
        return found

    def article(self, article_id: int) -> ArticleRow:
        return self._articles[article_id]

    def day_of(self, article_id: int) -> dt.date | None:
        return self._days.get(article_id)

    def wire_copies(self, article_id: int) -> list[int]:
        group = self._articles[article_id].wire
        return [] if group is None else [a for a in self._wire.get(group, ()) if a != article_id]

    def has_articles_between(self, start: dt.date, end: dt.date) -> bool:
        import bisect

        lo = bisect.bisect_left(self._dated, start)
        return lo < len(self._dated) and self._dated[lo] <= end

    def article_infos(self) -> list[ArticleInfo]:
        counts = dict(self._q(f"SELECT article, count(*) FROM {self._s}.sentences GROUP BY article"))
        return [ArticleInfo(a.ext_id, a.title, a.source, a.url, a.published, int(counts.get(a.id, 0)))
                for a in self._articles.values()]

    def passage_view(self, sentence_id: int) -> PassageView | None:
        rows = self._q(
            f"SELECT s.start_, s.end_, p.start_, p.end_, a.text, a.ext_id FROM {self._s}.sentences s "
            f"JOIN {self._s}.passages p ON p.id = s.passage JOIN {self._s}.articles a ON a.id = s.article "
            "WHERE s.id = %s", [sentence_id])
        if not rows:
            return None
        s_start, s_end, p_start, p_end, text, ext = rows[0]
        return PassageView(sentence_id, ext, text[p_start:p_end], s_start - p_start, s_end - p_start)

    def close(self) -> None:
        """The pools belong to the store, which outlives its readers."""


def _vector_literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(v, dtype=np.float32).ravel()) + "]"


def _vector_adapter(vector_type: str) -> Callable[[np.ndarray], Any]:
    if vector_type == "halfvec":
        from pgvector import HalfVector

        return HalfVector
    return lambda v: np.asarray(v, dtype=np.float32)


def _to_numpy(v: Any) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v.astype(np.float32, copy=False)
    if hasattr(v, "to_numpy"):
        return np.asarray(v.to_numpy(), dtype=np.float32)
    return np.asarray(json.loads(v) if isinstance(v, str) else v, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Writing


class PostgresBatch(Batch):
    """One transaction on the primary, holding the write lock (an advisory lock) until it ends."""

    def __init__(self, store: PostgresStore, embedder: Embedder, *, full: bool, partial: bool, wait: bool,
                 step: StepFn) -> None:
        self.store = store
        self.embedder = embedder
        self._conn_cm = store.writing()
        self.conn = self._conn_cm.__enter__()
        try:
            self._begin(full=full, partial=partial, wait=wait, step=step)
        except BaseException:
            self._release()
            raise
        self._removed_terms: dict[str, int] = {}

    def _release(self) -> None:
        cm, self._conn_cm = self._conn_cm, None
        if cm is not None:
            cm.__exit__(None, None, None)

    def _begin(self, *, full: bool, partial: bool, wait: bool, step: StepFn) -> None:
        conn = self.conn
        if wait:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        elif not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (WRITE_LOCK,)).fetchone()[0]:
            conn.rollback()
            raise IndexLockedError(
                f"another rebuild of {self.store.describe()} is running: wait for it to finish, "
                "or run `newsbot rebuild --wait` to queue behind it")
        step("locked")
        row = conn.execute("SELECT gen_schema, generation, model, vector_type FROM newsbot_state "
                           "FOR UPDATE").fetchone()
        current, generation, model, vtype = row[0], int(row[1]), dict(row[2] or {}), row[3]
        if current is not None and (model.get("sha256") != self.embedder.fingerprint
                                    or model.get("dimension") != self.embedder.dimension):
            if partial:
                raise IndexMismatchError(
                    f"the database's index was built with model {model.get('name')!r}, not {self.embedder.name!r}: "
                    "rebuild with `newsbot rebuild --full`")
            log.warning("the database's index was built with another model; building from scratch")
            current = None
        if current is None and partial:
            raise IndexNotFoundError(f"{self.store.describe()} holds no newsbot index yet: run `newsbot rebuild`")
        self.generation = generation + 1
        self.previous = current
        self.fresh = full or current is None
        if self.fresh:
            self.vector_type = self.store.vector_type
            self.schema = _schema_name(self.generation)
            # A schema left by a writer killed before its commit was rolled back with it; one left by
            # an older newsbot that failed to drop it is dropped here.
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            for ddl in _generation_ddl(self.schema, self.vector_type, self.embedder.dimension):
                conn.execute(ddl)
        else:
            self.schema = current
            self.vector_type = vtype
        step("opened")

    def have(self) -> dict[str, tuple[int, str]]:
        if self.fresh:
            return {}
        return {ext: (int(rid), fp) for rid, ext, fp in
                self.conn.execute(f"SELECT id, ext_id, fingerprint FROM {self.schema}.articles")}

    def counts(self) -> dict[str, int]:
        a, s = self.conn.execute("SELECT articles, sentences FROM newsbot_state").fetchone()
        return {"articles": int(a), "sentences": int(s)}

    def remove(self, article_rows: Sequence[int]) -> None:
        s, rows = self.schema, list(article_rows)
        for term, n in self.conn.execute(
                f"SELECT t, count(*) FROM {s}.sentences, unnest(terms) t WHERE article = ANY(%s) GROUP BY t", [rows]):
            self._removed_terms[term] = self._removed_terms.get(term, 0) + int(n)
        self.conn.execute(f"DELETE FROM {s}.vectors WHERE id IN (SELECT id FROM {s}.sentences WHERE article = ANY(%s))",
                          [rows])
        for table, col in (("sentences", "article"), ("passages", "article"), ("wire_sigs", "article"),
                           ("wire_bands", "article"), ("articles", "id")):
            self.conn.execute(f"DELETE FROM {s}.{table} WHERE {col} = ANY(%s)", [rows])

    def _ids(self, sequence: str, n: int) -> list[int]:
        if n == 0:
            return []
        return [int(r[0]) for r in self.conn.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s)", (sequence, n))]

    def add(self, parsed: Sequence[ParsedArticle], vectors: np.ndarray, step: StepFn) -> None:
        conn, s = self.conn, self.schema
        art_ids = self._ids("newsbot_article_ids", len(parsed))
        n_pass = sum(len(p.passages) for p in parsed)
        n_sent = sum(len(p.sentences) for p in parsed)
        pass_ids = iter(self._ids("newsbot_sentence_ids", n_pass))  # one id space for both: never reused
        sent_ids = iter(self._ids("newsbot_sentence_ids", n_sent))
        added_terms: dict[str, int] = {}
        with conn.cursor() as cur:
            with cur.copy(f"COPY {s}.articles(id, ext_id, title, source, url, published, day, authors, path, "
                          "fingerprint, text) FROM STDIN") as cp:
                for aid, p in zip(art_ids, parsed):
                    a = p.article
                    cp.write_row((aid, a.id, a.title, a.source, a.url, a.published, parse_day(a.published),
                                  json.dumps(list(a.authors)), a.path, a.fingerprint, a.text))
            step("articles-copied")
            with cur.copy(f"COPY {s}.passages(id, article, idx, start_, end_) FROM STDIN") as cp:
                passage_ids: list[list[int]] = []
                for aid, p in zip(art_ids, parsed):
                    ids = []
                    for idx, start, end in p.passages:
                        pid = next(pass_ids)
                        ids.append(pid)
                        cp.write_row((pid, aid, idx, start, end))
                    passage_ids.append(ids)
            with cur.copy(f"COPY {s}.sentences(id, article, passage, idx, start_, end_, text, terms, n_terms, day, "
                          "source_lc) FROM STDIN WITH (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "int8", "int8", "int4", "int4", "int4", "text", "text[]", "int4", "date", "text"])
                rows: list[tuple[int, dt.date | None, str | None]] = []
                for n, (aid, p, pids) in enumerate(zip(art_ids, parsed, passage_ids)):
                    day = parse_day(p.article.published)
                    src = (p.article.source or "").lower() or None
                    for sent in p.sentences:
                        for t in sent.terms:
                            added_terms[t] = added_terms.get(t, 0) + 1
                        sid = next(sent_ids)
                        rows.append((sid, day, src))
                        cp.write_row((sid, aid, pids[sent.passage], sent.idx, sent.start, sent.end,
                                      sent.text, list(sent.terms), len(sent.terms), day, src))
                    if n % 64 == 0:
                        step(f"insert:{n}")
            # Binary COPY: the vectors go in pgvector's binary format, with no text formatting of floats.
            with cur.copy(f"COPY {s}.vectors(id, day, source_lc, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "date", "text", self.vector_type])
                as_vec = _vector_adapter(self.vector_type)
                for (sid, day, src), v in zip(rows, vectors):
                    cp.write_row((sid, day, src, as_vec(v)))
        step("sentences-copied")
        for aid, p in zip(art_ids, parsed):
            self._add_wire(aid, wire_signature(p))
        self._apply_df(added_terms)

    def _add_wire(self, aid: int, sig: np.ndarray | None) -> None:
        if sig is None:
            return
        conn, s = self.conn, self.schema

        def candidates(keys: list[tuple[int, int]]) -> set[int]:
            return {int(r[0]) for r in conn.execute(
                f"SELECT article FROM {s}.wire_bands b JOIN unnest(%s::int[], %s::bigint[]) AS k(band, bucket) "
                "ON b.band = k.band AND b.bucket = k.bucket", ([b for b, _ in keys], [k for _, k in keys]))}

        def lookup(other: int) -> tuple[np.ndarray, int | None] | None:
            row = conn.execute(f"SELECT w.sig, a.wire FROM {s}.wire_sigs w JOIN {s}.articles a ON a.id = w.article "
                               "WHERE w.article = %s", (other,)).fetchone()
            return None if row is None else (np.frombuffer(bytes(row[0]), dtype=np.uint32), row[1])

        found = wire.match(sig, candidates, lookup)
        if found is not None:
            conn.execute(f"UPDATE {s}.articles SET wire = %s WHERE id = %s AND wire IS NULL", found)
            conn.execute(f"UPDATE {s}.articles SET wire = %s WHERE id = %s", (found[0], aid))
        conn.execute(f"INSERT INTO {s}.wire_sigs(article, sig) VALUES (%s, %s)", (aid, sig.tobytes()))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {s}.wire_bands(band, bucket, article) VALUES (%s, %s, %s)",
                            [(b, k, aid) for b, k in wire.buckets(sig)])

    def _apply_df(self, added: dict[str, int]) -> None:
        delta = dict(added)
        for t, n in self._removed_terms.items():
            delta[t] = delta.get(t, 0) - n
        delta = {t: d for t, d in delta.items() if d}
        if not delta:
            return
        s = self.schema
        with self.conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS df_delta(term text, d bigint) ON COMMIT DROP")
            cur.execute("TRUNCATE df_delta")
            with cur.copy("COPY df_delta(term, d) FROM STDIN") as cp:
                for t, d in delta.items():
                    cp.write_row((t, d))
            cur.execute(f"INSERT INTO {s}.term_df(term, df) SELECT term, d FROM df_delta "
                        "ON CONFLICT (term) DO UPDATE SET df = term_df.df + excluded.df")
            cur.execute(f"DELETE FROM {s}.term_df WHERE df <= 0")

    def commit(self, step: StepFn) -> dict[str, int]:
        conn, s = self.conn, self.schema
        try:
            if self.fresh:
                # The HNSW graph is built once, after the load, with memory for it (pgvector's advice).
                rows = int(conn.execute(f"SELECT count(*) FROM {s}.vectors").fetchone()[0])
                mem = hnsw_build_memory_mb(rows, self.embedder.dimension, self.vector_type)
                conn.execute(f"SET LOCAL maintenance_work_mem = '{mem}MB'")
                conn.execute("SET LOCAL max_parallel_maintenance_workers = 1")
                for ddl in _generation_indexes(s, self.vector_type):
                    conn.execute(ddl)
                    step("index:" + ddl.split(" USING ")[-1].split(" ")[0] if " USING " in ddl else "index")
                for table in ("articles", "sentences", "vectors", "term_df", "passages"):
                    conn.execute(f"ANALYZE {s}.{table}")
            n_art = int(conn.execute(f"SELECT count(*) FROM {s}.articles").fetchone()[0])
            n_sent, total = conn.execute(f"SELECT count(*), coalesce(sum(n_terms), 0) FROM {s}.sentences").fetchone()
            model = {"name": self.embedder.name, "sha256": self.embedder.fingerprint,
                     "dimension": self.embedder.dimension}
            conn.execute(
                "UPDATE newsbot_state SET gen_schema = %s, generation = %s, built_at = now(), model = %s, "
                "vector_type = %s, articles = %s, sentences = %s, total_terms = %s",
                (s, self.generation, json.dumps(model), self.vector_type, n_art, int(n_sent), int(total)))
            if self.fresh:
                # Keep the generation answers may still be reading (the previous one); drop older ones.
                keep = {s, self.previous}
                for (name,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'newsbot\\_g%%'").fetchall():
                    if name not in keep:
                        conn.execute(f"DROP SCHEMA {name} CASCADE")
            step("manifest")
            conn.commit()
            step("committed")
            return {"articles": n_art, "sentences": int(n_sent)}
        finally:
            self._release()

    def abandon(self) -> None:
        import psycopg

        if self._conn_cm is None:  # committed, or abandoned already: the connection is the pool's again
            return
        try:
            self.conn.rollback()
        except psycopg.Error:
            pass
        finally:
            self._release()


# --------------------------------------------------------------------------------------------
# Status


def status(store: PostgresStore) -> dict[str, object]:
    """What ``newsbot db status`` shows: schema version, counts, newest article, build state, and on a
    replica its replay lag."""
    out: dict[str, object] = {"database": redact_url(store.url)}
    with store.reading() as conn:
        out["schema_version"] = schema_version(conn)
        out["schema_latest"] = SCHEMA_VERSION
        recovery = bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        out["replica"] = recovery
        if recovery:
            lag = conn.execute("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())").fetchone()[0]
            out["replay_lag_seconds"] = None if lag is None else round(float(lag), 3)
        if out["schema_version"]:
            row = conn.execute("SELECT gen_schema, generation, built_at, articles, sentences, model, "
                               "vector_type FROM newsbot_state").fetchone()
            out.update({"generation": row[1], "built_at": row[2].isoformat(timespec="seconds") if row[2] else None,
                        "articles": row[3], "sentences": row[4], "model": (row[5] or {}).get("name"),
                        "vector_type": row[6]})
            if row[0]:
                newest = conn.execute(f"SELECT max(day) FROM {row[0]}.articles").fetchone()[0]
                out["newest_article"] = newest.isoformat() if newest else None
                size = conn.execute(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')", (row[0],)).fetchone()[0]
                out["size_bytes"] = int(size)
        if out["schema_version"] >= 3:  # type: ignore[operator]
            row = conn.execute(
                "SELECT (SELECT count(*) FROM newsbot_feeds), (SELECT count(*) FROM newsbot_feeds WHERE disabled), "
                "(SELECT count(*) FROM newsbot_fetched_articles WHERE NOT expired), "
                "(SELECT count(*) FROM newsbot_answers), (SELECT count(*) FROM newsbot_feedback)").fetchone()
            out.update({"feeds": row[0], "feeds_disabled": row[1], "fetched_articles": row[2],
                        "stored_answers": row[3], "votes": row[4]})
        if not recovery:
            busy = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                                "AND granted", (WRITE_LOCK,)).fetchone()[0]
            out["build_running"] = bool(busy)
    return out


def wait_for_generation(store: PostgresStore, generation: int, timeout: float = 10.0) -> bool:
    """Wait until the read side (a replica) shows ``generation`` or newer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = store.stamp()
        if isinstance(st, tuple) and int(st[0]) >= generation:
            return True
        time.sleep(0.05)
    return False
