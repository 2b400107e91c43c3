"""Building the index, whatever the backend: diff, parse, embed, write, commit.

:func:`apply` drives one :class:`~index.stores.base.Batch` of a store through those steps;
:func:`build_index` (the whole corpus: ``newsbot rebuild``) and :func:`update_index` (some
articles added, changed or removed: the watcher) are its two uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import wire
from ..clean import classify
from ..embed import Embedder
from ..loaders import LoadResult
from ..records import Article
from ..split import split_article
from ..terms import terms as sentence_terms
from .base import Batch, ParsedArticle, ParsedSentence, StepFn, Store

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a rebuild did."""

    articles: int = 0
    sentences: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0  # sentences that went through the model
    cached: int = 0  # sentences whose vectors came from the cache
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    generation: int = 0
    full: bool = False
    up_to_date: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return (f"index is up to date: {self.articles} articles, {self.sentences} sentences "
                    f"({len(self.warnings)} files or lines skipped)")
        return (
            f"indexed {self.articles} articles, {self.sentences} sentences in {self.seconds:.1f}s "
            f"({'full' if self.full else 'incremental'}: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged; {self.embedded} sentences embedded, "
            f"{self.cached} from cache; {len(self.warnings)} files or lines skipped)"
        )


@dataclass(frozen=True)
class Changes:
    """What a new generation changes.

    ``whole``: ``articles`` is the whole corpus, and any indexed article not among them is removed
    (``newsbot rebuild``). Otherwise ``articles`` are added or replace their old versions, the ids
    in ``removed`` are dropped, and everything else stays (the watcher's rounds).
    """

    articles: Sequence[Article]
    removed: frozenset[str] = frozenset()
    whole: bool = True


@dataclass
class Plan:
    removed_rows: list[int]  # article row ids to delete (removed, or replaced by a new version)
    todo: list[Article]  # articles to parse, embed and insert


def diff(have: dict[str, tuple[int, str]], changes: Changes, report: BuildReport) -> Plan:
    """Which indexed articles go and which articles come, given what the index ``have``s (ext id ->
    row id, fingerprint)."""
    given = {a.id: a for a in changes.articles}
    if changes.whole:
        gone = [ext for ext in have if ext not in given]
    else:
        gone = [ext for ext in changes.removed if ext in have and ext not in given]
    changed = [ext for ext, (_, fp) in have.items() if ext in given and given[ext].fingerprint != fp]
    todo = [a for a in changes.articles if a.id not in have or have[a.id][1] != a.fingerprint]
    report.removed = len(gone)
    report.changed = len(changed)
    report.added = len(todo) - len(changed)
    report.unchanged = len(changes.articles) - len(todo) if changes.whole else len(have) - len(gone) - len(changed)
    return Plan([have[ext][0] for ext in gone + changed], todo)


def parse_article(art: Article) -> ParsedArticle:
    """Clean, split and term one article; its body's wire-copy fingerprint is taken by the writer."""
    blocks = classify(art.text)
    sentences, passages = split_article(art.id, art.text, blocks)
    return ParsedArticle(
        art,
        tuple((p.index, p.start, p.end) for p in passages),
        tuple(ParsedSentence(s.passage, s.index, s.start, s.end, s.text, tuple(sentence_terms(s.text)))
              for s in sentences),
        "\n".join(art.text[b.start:b.end] for b in blocks if b.kind == "body"),
    )


def wire_signature(parsed: ParsedArticle) -> np.ndarray | None:
    return wire.signature(parsed.body)


# --------------------------------------------------------------------------------------------
# Embedding, with a cache


class EmbeddingCache:
    """Vectors keyed by (embedder fingerprint, sha256 of the text): text that recurs across
    articles or rebuilds is embedded once. Losing it costs time, never correctness.

    Rows live in a rowid table with 8 KiB pages, so a 1.5 KiB vector stays on its row's page: the
    first layout (a WITHOUT ROWID table) put every vector on an overflow page of its own and took
    about 4.6 KiB a vector. A cache in that layout is moved over once, when opened.
    """

    def __init__(self, path: Path, embedder_key: str, dimension: int) -> None:
        self.key = embedder_key
        self.dimension = dimension
        fresh = not path.exists()
        self.db = sqlite3.connect(path)
        if fresh:
            self.db.execute("PRAGMA page_size=8192")  # only takes effect before the first table
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # a lost write costs a re-embedding, nothing more
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS models(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS vecs(model INTEGER NOT NULL, hash BLOB NOT NULL, vec BLOB NOT NULL)"
            )
            self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS vecs_key ON vecs(model, hash)")
        self.model_id = self._model_id(embedder_key)
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='vectors' AND type='table'").fetchone():
            self._migrate()

    def _model_id(self, key: str) -> int:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO models(key) VALUES (?)", (key,))
        return int(self.db.execute("SELECT id FROM models WHERE key=?", (key,)).fetchone()[0])

    def _migrate(self) -> None:
        log.info("moving the embedding cache to its compact layout (once)")
        with self.db:
            for (key,) in self.db.execute("SELECT DISTINCT model FROM vectors").fetchall():
                mid = self._model_id(key)
                self.db.execute("INSERT OR IGNORE INTO vecs(model, hash, vec) SELECT ?, hash, vec FROM vectors "
                                "WHERE model=?", (mid, key))
            self.db.execute("DROP TABLE vectors")
        with contextlib.suppress(sqlite3.Error):
            # The page size can only change by a VACUUM outside WAL mode.
            self.db.execute("PRAGMA journal_mode=DELETE")
            self.db.execute("PRAGMA page_size=8192")
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA journal_mode=WAL")

    @staticmethod
    def hash(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()[:16]

    def get_many(self, hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        out: dict[bytes, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            q = f"SELECT hash, vec FROM vecs WHERE model=? AND hash IN ({','.join('?' * len(chunk))})"
            for h, blob in self.db.execute(q, (self.model_id, *chunk)):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == self.dimension:
                    out[h] = vec
        return out

    def put_many(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO vecs(model, hash, vec) VALUES (?, ?, ?)",
                ((self.model_id, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items),
            )

    def close(self) -> None:
        self.db.close()


def embed_sentences(
    texts: list[str], embedder: Embedder, cache: EmbeddingCache | None, progress: ProgressFn | None,
    report: BuildReport, step: StepFn = lambda _stage: None,
) -> np.ndarray:
    """Vectors for ``texts``: from the cache where possible, each distinct text embedded once."""
    hashes = [EmbeddingCache.hash(t) for t in texts]
    known = cache.get_many(list(set(hashes))) if cache else {}
    todo: dict[bytes, str] = {}
    for h, t in zip(hashes, texts):
        if h not in known and h not in todo:
            todo[h] = t
    report.cached += sum(1 for h in hashes if h in known)
    report.embedded += len(todo)
    # Batches of similar length waste little time on padding (the model pads to a batch's longest text).
    items = sorted(todo.items(), key=lambda item: len(item[1]))
    done = 0
    if progress:
        progress(0, len(items))
    chunk = 512
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        vecs = embedder.encode([t for _, t in part])
        fresh = list(zip((h for h, _ in part), vecs))
        known.update(fresh)
        if cache:
            cache.put_many(fresh)
        done += len(part)
        step(f"embed:{done}")
        if progress:
            progress(done, len(items))
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.vstack([known[h] for h in hashes]).astype(np.float32, copy=False)


def _embed(store: Store, texts: list[str], embedder: Embedder, *, use_cache: bool, progress: ProgressFn | None,
           report: BuildReport, step: StepFn) -> np.ndarray:
    cache = None
    path = store.embedding_cache_path() if use_cache else None
    try:
        if path is not None:
            cache = EmbeddingCache(path, embedder.fingerprint, embedder.dimension)
    except sqlite3.Error as e:  # a broken cache only costs time
        log.warning("embedding cache unavailable (%s); embedding everything", e)
    try:
        return embed_sentences(texts, embedder, cache, progress, report, step)
    finally:
        if cache:
            cache.close()


# --------------------------------------------------------------------------------------------
# The build


def apply(store: Store, changes: Changes, embedder: Embedder, report: BuildReport, *, full: bool = False,
          progress: ProgressFn | None = None, wait: bool = False, hook: StepFn | None = None,
          use_cache: bool = True) -> BuildReport:
    """One batch: diff against what is indexed, remove, parse, embed, add, commit."""
    started = time.perf_counter()
    step = hook or (lambda _stage: None)
    batch: Batch = store.begin(embedder, full=full, partial=not changes.whole, wait=wait, step=step)
    try:
        report.generation = batch.generation
        report.full = batch.fresh
        plan = diff(batch.have(), changes, report)
        if not batch.fresh and not plan.removed_rows and not plan.todo:
            counts = batch.counts()
            batch.abandon()
            report.articles, report.sentences = counts["articles"], counts["sentences"]
            report.up_to_date = True
            report.seconds = time.perf_counter() - started
            return report
        step("diffed")
        if plan.removed_rows:
            batch.remove(plan.removed_rows)
        step("removed")
        parsed = []
        for n, art in enumerate(plan.todo):
            step(f"parse:{n}")
            parsed.append(parse_article(art))
        step("parsed")
        texts = [s.text for p in parsed for s in p.sentences]
        vecs = _embed(store, texts, embedder, use_cache=use_cache, progress=progress, report=report, step=step)
        step("embedded")
        batch.add(parsed, vecs, step)
        step("indexed")
        counts = batch.commit(step)
    except BaseException:
        with contextlib.suppress(Exception):
            batch.abandon()
        raise
    report.articles, report.sentences = counts["articles"], counts["sentences"]
    report.seconds = time.perf_counter() - started
    return report


def build_index(store: Store | Path, loaded: LoadResult, embedder: Embedder, *, full: bool = False,
                progress: ProgressFn | None = None, corpus_dir: Path | None = None, wait: bool = False,
                hook: StepFn | None = None, vector_options: object | None = None,
                use_cache: bool = True) -> BuildReport:
    """Build or update the index from the whole corpus, ``loaded``.

    Incremental unless ``full``: unchanged articles keep their rows and vectors, changed and new
    ones are embedded, removed ones are dropped. ``hook`` is called with a stage name at each step
    (tests use it to kill a build at chosen points; raising in it abandons the build, leaving the
    current index as it was). ``store`` may be an index folder (the embedded backend), where
    ``vector_options`` picks the vector index (index/vectors.py); ``use_cache=False`` skips the
    embedding cache.
    """
    store = _as_store(store, corpus_dir, vector_options)
    report = BuildReport(full=full, warnings=[str(w) for w in loaded.warnings])
    return apply(store, Changes(loaded.articles), embedder, report, full=full, progress=progress, wait=wait,
                 hook=hook, use_cache=use_cache)


def update_index(store: Store | Path, articles: Sequence[Article], removed: Iterable[str], embedder: Embedder, *,
                 progress: ProgressFn | None = None, corpus_dir: Path | None = None, hook: StepFn | None = None,
                 vector_options: object | None = None) -> BuildReport:
    """Add or replace ``articles`` and drop the ``removed`` ids in the index, keeping everything else:
    one batch, committed atomically under the store's write lock (waiting for a running rebuild).

    Raises IndexNotFoundError (or IndexMismatchError) when there is no index it can update: the
    caller then builds one from the whole corpus.
    """
    store = _as_store(store, corpus_dir, vector_options)
    return apply(store, Changes(articles, frozenset(removed), whole=False), embedder, BuildReport(),
                 progress=progress, wait=True, hook=hook)


def _as_store(store: Store | Path, corpus_dir: Path | None, vector_options: object | None) -> Store:
    if isinstance(store, Store):
        return store
    from .embedded import EmbeddedStore

    return EmbeddedStore(Path(store), corpus_dir=corpus_dir, vector_options=vector_options)  # type: ignore[arg-type]
