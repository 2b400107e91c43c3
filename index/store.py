"""The index: a folder with a manifest, a FAISS file and a SQLite database.

Layout of ``index_dir``::

    manifest.json        the commit point: names the current generation's files, counts, model
    gen-000007.faiss     vectors; FAISS ids are the primary keys of ``sentences``
    gen-000007.sqlite3   articles, passages, sentences (with character offsets), FTS5 for BM25
    embcache.sqlite3     text-hash -> vector cache, reused across rebuilds (never required to load)
    .lock                held by a rebuild

A rebuild writes a new generation next to the current one and commits it by replacing
``manifest.json`` atomically (``os.replace``). A crash at any point leaves the previous manifest,
and so the previous index, in place. Old generations are removed after the commit.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, wire
from .clean import classify
from .embed import Embedder, file_sha256
from .errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from .loaders import LoadResult
from .records import Article, ArticleInfo, PassageView
from .split import split_article
from .terms import TermStats, update_df
from .terms import terms as sentence_terms
from .vectors import IndexSpec, VectorIndexError, VectorOptions
from .when import parse_day

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
MANIFEST = "manifest.json"

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE articles(
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    source TEXT,
    url TEXT,
    published TEXT,
    authors TEXT NOT NULL,
    path TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    text TEXT NOT NULL,
    wire INTEGER  -- wire-copy group: the row id of the first of its copies (index.wire), else NULL
);
CREATE TABLE passages(
    id INTEGER PRIMARY KEY,
    article INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE TABLE sentences(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    passage INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    terms TEXT NOT NULL,  -- distinct stemmed content words, space-separated (index.terms)
    n_terms INTEGER NOT NULL
);
CREATE TABLE term_df(term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX sentences_article ON sentences(article, idx);
CREATE INDEX sentences_passage ON sentences(passage);
CREATE INDEX passages_article ON passages(article, idx);
CREATE VIRTUAL TABLE sentences_fts USING fts5(
    text, content='sentences', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE INDEX articles_wire ON articles(wire) WHERE wire IS NOT NULL;
""" + wire.SCHEMA + """
CREATE TRIGGER sentences_ai AFTER INSERT ON sentences BEGIN
    INSERT INTO sentences_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER sentences_ad AFTER DELETE ON sentences BEGIN
    INSERT INTO sentences_fts(sentences_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


# --------------------------------------------------------------------------------------------
# Manifest


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of the index in ``index_dir``; clear errors when missing or damaged."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(
            f"no index in {index_dir}: build it with `newsbot rebuild` (or `make index`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as e:
        raise IndexMismatchError(
            f"{path} is damaged ({e}): rebuild with `newsbot rebuild --full`"
        ) from e
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA_VERSION:
        found = manifest.get("schema") if isinstance(manifest, dict) else None
        raise IndexMismatchError(
            f"the index in {index_dir} has schema {found!r}, this newsbot reads schema {SCHEMA_VERSION}: "
            "rebuild with `newsbot rebuild --full`"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise IndexMismatchError(f"{path} is damaged ({problem}): rebuild with `newsbot rebuild --full`")
    return manifest


def _manifest_problem(m: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a manifest, if anything."""
    def ints(d: object, keys: Iterable[str]) -> bool:
        return isinstance(d, dict) and all(isinstance(d.get(k), int) and not isinstance(d.get(k), bool) for k in keys)

    files = m.get("files")
    if not isinstance(m.get("generation"), int):
        return "no generation number"
    if not (isinstance(files, dict) and all(isinstance(files.get(k), str) and files[k] and "/" not in files[k]
                                            and not files[k].startswith(".") for k in ("sqlite", "faiss"))):
        return "no valid file names"
    if not ints(m.get("sizes"), ("sqlite", "faiss")):
        return "no file sizes"
    if not ints(m.get("counts"), ("articles", "sentences", "vectors")):
        return "no counts"
    if not isinstance(m.get("model"), dict) or not isinstance(m.get("built_at"), str):
        return "no model or build time"
    sha = m.get("sha256")
    if sha is not None and not (isinstance(sha, dict) and all(isinstance(sha.get(k), str) for k in ("sqlite", "faiss"))):
        return "bad file hashes"
    return None


def corpus_fingerprint(fingerprints: Iterable[str]) -> str:
    h = hashlib.sha256()
    for fp in sorted(fingerprints):
        h.update(fp.encode())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import faiss

    out = {"newsbot": __version__, "python": platform.python_version(), "faiss": faiss.__version__,
           "sqlite": sqlite3.sqlite_version}
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        out["sentence_transformers"] = version("sentence-transformers")
    return out


# --------------------------------------------------------------------------------------------
# Embedding cache


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


# --------------------------------------------------------------------------------------------
# Building


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


@contextlib.contextmanager
def rebuild_lock(index_dir: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the index's rebuild lock; a second rebuild waits (``wait``) or fails clearly."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / ".lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise IndexLockedError(
                f"another rebuild of {index_dir} is running ({holder}): wait for it to finish, "
                "or run `newsbot rebuild --wait` to queue behind it"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield  # the lock is released when the file is closed


ProgressFn = Callable[[int, int], None]


def _embed_sentences(
    texts: list[str], embedder: Embedder, cache: EmbeddingCache | None, progress: ProgressFn | None,
    report: BuildReport, step: Callable[[str], None] = lambda _stage: None,
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


def _index_spec(manifest: dict[str, Any]) -> IndexSpec:
    """The vector index a manifest records (older manifests only say "flat")."""
    return IndexSpec.from_json(manifest.get("index", manifest.get("index_type")))


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
class _Plan:
    removed_rows: list[int]  # article row ids to delete (removed, or replaced by a new version)
    todo: list[Article]  # articles to parse, embed and insert


def _diff(have: dict[str, tuple[int, str]], changes: Changes, report: BuildReport) -> _Plan:
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
    return _Plan([have[ext][0] for ext in gone + changed], todo)


def build_index(
    index_dir: Path,
    loaded: LoadResult,
    embedder: Embedder,
    *,
    full: bool = False,
    progress: ProgressFn | None = None,
    corpus_dir: Path | None = None,
    wait: bool = False,
    hook: Callable[[str], None] | None = None,
    vector_options: VectorOptions | None = None,
    use_cache: bool = True,
) -> BuildReport:
    """Build or update the index in ``index_dir`` from the whole corpus, ``loaded``.

    Incremental unless ``full``: unchanged articles keep their rows and vectors, changed and new
    ones are embedded, removed ones are dropped. ``hook`` is called with a stage name at each step
    (tests use it to kill a build at chosen points; raising in it abandons the build, leaving the
    current index as it was). ``vector_options`` picks the vector index (default: by size, see
    index/vectors.py); ``use_cache=False`` skips the embedding cache.
    """
    report = BuildReport(full=full, warnings=[str(w) for w in loaded.warnings])
    return _write_generation(index_dir, Changes(loaded.articles), embedder, report, full=full, progress=progress,
                             corpus_dir=corpus_dir, wait=wait, hook=hook, vector_options=vector_options,
                             use_cache=use_cache)


def update_index(
    index_dir: Path,
    articles: Sequence[Article],
    removed: Iterable[str],
    embedder: Embedder,
    *,
    progress: ProgressFn | None = None,
    corpus_dir: Path | None = None,
    hook: Callable[[str], None] | None = None,
    vector_options: VectorOptions | None = None,
) -> BuildReport:
    """Add or replace ``articles`` and drop the ``removed`` ids in the index, keeping everything else:
    one new generation, committed atomically under the rebuild lock (waiting for a running rebuild).

    Raises IndexNotFoundError (or IndexMismatchError) when there is no index it can update: the
    caller then builds one from the whole corpus.
    """
    report = BuildReport()
    return _write_generation(index_dir, Changes(articles, frozenset(removed), whole=False), embedder, report,
                             progress=progress, corpus_dir=corpus_dir, wait=True, hook=hook,
                             vector_options=vector_options)


def indexed_fingerprints(index_dir: Path) -> dict[str, str] | None:
    """Article id -> fingerprint of every article in the current index (None when there is none):
    read from the database alone, without loading vectors or a model."""
    try:
        manifest = read_manifest(index_dir)
        db = sqlite3.connect(f"file:{index_dir / manifest['files']['sqlite']}?mode=ro", uri=True)
    except (IndexNotFoundError, IndexMismatchError, sqlite3.Error):
        return None
    try:
        return dict(db.execute("SELECT ext_id, fingerprint FROM articles").fetchall())
    except sqlite3.Error:
        return None
    finally:
        db.close()


@dataclass
class _WorkingCopy:
    """The generation being written: its database (a copy of the current one, or new) and vectors."""

    db: sqlite3.Connection
    vectors: Any
    spec: IndexSpec | None
    previous: dict[str, Any] | None
    db_path: Path
    faiss_path: Path


def _open_working_copy(index_dir: Path, generation: int, embedder: Embedder, *, full: bool,
                       partial: bool) -> _WorkingCopy:
    """Copy the current generation into ``generation``'s temporary files (or start a new one when
    ``full``, or when the current one cannot be updated and the build is not ``partial``)."""
    from . import vectors as vec

    tmp_db = index_dir / f".gen-{generation:06d}.sqlite3.tmp"
    tmp_faiss = index_dir / f".gen-{generation:06d}.faiss.tmp"
    for p in (tmp_db, tmp_faiss):
        p.unlink(missing_ok=True)
    previous: dict[str, Any] | None = None
    if not full:
        try:
            previous = read_manifest(index_dir)
            _check_model(previous, embedder)
            Snapshot.verify_files(index_dir, previous)
        except (IndexNotFoundError, IndexMismatchError) as e:
            if partial:
                raise
            if previous is not None:
                log.warning("cannot update the existing index (%s); building from scratch", e)
            previous = None
    if previous is not None:
        dst = None
        try:
            src = sqlite3.connect(f"file:{index_dir / previous['files']['sqlite']}?mode=ro", uri=True)
            dst = sqlite3.connect(tmp_db)
            src.backup(dst)
            src.close()
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the database fails its integrity check")
            spec = _index_spec(previous)
            vectors = vec.load(index_dir / previous["files"]["faiss"], spec)
            return _WorkingCopy(dst, vectors, spec, previous, tmp_db, tmp_faiss)
        except (sqlite3.Error, VectorIndexError, IndexMismatchError, RuntimeError, OSError) as e:
            with contextlib.suppress(Exception):
                dst.close()  # type: ignore[union-attr]
            tmp_db.unlink(missing_ok=True)
            if partial:
                raise IndexMismatchError(f"cannot update the index in {index_dir} ({e})") from e
            log.warning("cannot update the existing index (%s); building from scratch", e)
    dst = sqlite3.connect(tmp_db)
    dst.executescript(_SCHEMA)
    # Sentence ids never repeat across generations, so an id kept by a client (a button on
    # an old answer) can never point at another sentence after a full rebuild.
    dst.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('sentences', ?)", (generation << 32,))
    dst.commit()
    return _WorkingCopy(dst, None, None, None, tmp_db, tmp_faiss)


def _remove_rows(wc: _WorkingCopy, rows: Sequence[int], embedder: Embedder, df_removed: Counter[str]) -> None:
    """Delete these articles (children first) and their vectors."""
    from . import vectors as vec

    db = wc.db
    gone: list[int] = []
    for i in range(0, len(rows), 500):
        chunk = list(rows[i:i + 500])
        marks = ",".join("?" * len(chunk))
        for r, t in db.execute(f"SELECT id, terms FROM sentences WHERE article IN ({marks})", chunk):
            gone.append(r)
            df_removed.update(t.split())
        db.execute(f"DELETE FROM sentences WHERE article IN ({marks})", chunk)
        db.execute(f"DELETE FROM passages WHERE article IN ({marks})", chunk)
        db.execute(f"DELETE FROM articles WHERE id IN ({marks})", chunk)
    wire.remove(db, rows)
    if gone and wc.vectors is not None:
        try:
            vec.remove(wc.vectors, gone)
        except VectorIndexError:
            # HNSW cannot remove: rebuild its graph from the vectors that stay (no re-embedding).
            keep_ids, keep_vecs = vec.all_vectors(wc.vectors)
            keep = ~np.isin(keep_ids, np.asarray(gone, dtype=np.int64))
            wc.vectors, wc.spec = vec.build(wc.spec, keep_ids[keep], keep_vecs[keep], embedder.dimension)


def _insert_articles(db: sqlite3.Connection, todo: Sequence[Article], df_added: Counter[str],
                     step: Callable[[str], None]) -> tuple[list[int], list[str]]:
    """Parse, split and insert each article (with its wire-copy group); the new sentences' ids and texts."""
    new_ids: list[int] = []
    new_texts: list[str] = []
    for n_art, art in enumerate(todo):
        step(f"parse:{n_art}")
        blocks = classify(art.text)
        sentences, passages = split_article(art.id, art.text, blocks)
        cur = db.execute(
            "INSERT INTO articles(ext_id, title, source, url, published, authors, path, fingerprint, text)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (art.id, art.title, art.source, art.url, art.published, json.dumps(list(art.authors)),
             art.path, art.fingerprint, art.text),
        )
        aid = int(cur.lastrowid)  # type: ignore[arg-type]
        group = wire.add(db, aid, "\n".join(art.text[b.start:b.end] for b in blocks if b.kind == "body"))
        if group is not None:
            db.execute("UPDATE articles SET wire=? WHERE id=?", (group, aid))
        pids = []
        for p in passages:
            pids.append(db.execute(
                "INSERT INTO passages(article, idx, start, end) VALUES (?,?,?,?)",
                (aid, p.index, p.start, p.end),
            ).lastrowid)
        for s in sentences:
            s_terms = sentence_terms(s.text)
            df_added.update(s_terms)
            sid = db.execute(
                "INSERT INTO sentences(article, passage, idx, start, end, text, terms, n_terms)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (aid, pids[s.passage], s.index, s.start, s.end, s.text, " ".join(s_terms), len(s_terms)),
            ).lastrowid
            new_ids.append(int(sid))  # type: ignore[arg-type]
            new_texts.append(s.text)
    return new_ids, new_texts


def _embed(index_dir: Path, texts: list[str], embedder: Embedder, *, use_cache: bool, progress: ProgressFn | None,
           report: BuildReport, step: Callable[[str], None]) -> np.ndarray:
    cache = None
    try:
        if use_cache:
            cache = EmbeddingCache(index_dir / "embcache.sqlite3", embedder.fingerprint, embedder.dimension)
    except sqlite3.Error as e:  # a broken cache only costs time
        log.warning("embedding cache unavailable (%s); embedding everything", e)
    try:
        return _embed_sentences(texts, embedder, cache, progress, report, step)
    finally:
        if cache:
            cache.close()


def _add_vectors(wc: _WorkingCopy, ids: list[int], vecs: np.ndarray, embedder: Embedder,
                 options: VectorOptions) -> None:
    """Add the new vectors, moving to another kind of vector index when the size calls for it."""
    from . import vectors as vec

    id_arr = np.asarray(ids, dtype=np.int64)
    n_total = (0 if wc.vectors is None else int(wc.vectors.ntotal)) + len(ids)
    wanted_spec = vec.choose_spec(n_total, options, current=wc.spec)
    if wc.vectors is None:
        wc.vectors, wc.spec = vec.build(wanted_spec, id_arr, vecs, embedder.dimension)
    elif wanted_spec == wc.spec:
        vec.add(wc.vectors, id_arr, vecs)
    else:
        # The corpus crossed a size threshold (or the settings changed): move the stored vectors
        # into the new kind of index. Costs a retraining, never a re-embedding.
        log.info("vector index: %s -> %s for %d vectors", wc.spec.describe() if wc.spec else "none",
                 wanted_spec.describe(), n_total)
        old_ids, old_vecs = vec.all_vectors(wc.vectors)
        wc.vectors = None
        wc.vectors, wc.spec = vec.build(wanted_spec, np.concatenate([old_ids, id_arr]),
                                        np.vstack([old_vecs, vecs]), embedder.dimension)


def _commit(index_dir: Path, wc: _WorkingCopy, generation: int, embedder: Embedder, corpus_dir: Path | None,
            live_files: set[str], step: Callable[[str], None]) -> dict[str, int]:
    """Write the files, move them into place and replace the manifest: the commit point."""
    from . import vectors as vec

    db = wc.db
    assert wc.spec is not None
    counts = {
        "articles": db.execute("SELECT count(*) FROM articles").fetchone()[0],
        "passages": db.execute("SELECT count(*) FROM passages").fetchone()[0],
        "sentences": db.execute("SELECT count(*) FROM sentences").fetchone()[0],
        "vectors": int(wc.vectors.ntotal),
    }
    if counts["sentences"] != counts["vectors"]:
        raise IndexMismatchError(
            f"internal error: {counts['sentences']} sentences but {counts['vectors']} vectors; "
            "rebuild with `newsbot rebuild --full`"
        )
    fps = [fp for (fp,) in db.execute("SELECT fingerprint FROM articles")]
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (str(generation),))
    db.commit()
    db.execute("PRAGMA optimize")
    db.close()
    step("db-closed")
    vec.save(wc.vectors, wc.faiss_path)
    step("written")
    for p in (wc.db_path, wc.faiss_path):
        with open(p, "rb+") as fh:
            os.fsync(fh.fileno())
    step("synced")
    db_name, faiss_name = f"gen-{generation:06d}.sqlite3", f"gen-{generation:06d}.faiss"
    os.replace(wc.db_path, index_dir / db_name)
    step("renamed-db")
    os.replace(wc.faiss_path, index_dir / faiss_name)
    _fsync_dir(index_dir)
    step("renamed")
    manifest = {
        "schema": SCHEMA_VERSION,
        "generation": generation,
        "files": {"sqlite": db_name, "faiss": faiss_name},
        "sizes": {"sqlite": (index_dir / db_name).stat().st_size, "faiss": (index_dir / faiss_name).stat().st_size},
        "sha256": {"sqlite": file_sha256(index_dir / db_name), "faiss": file_sha256(index_dir / faiss_name)},
        "model": {"name": embedder.name, "sha256": embedder.fingerprint, "dimension": embedder.dimension},
        "metric": "cosine (inner product of unit vectors)",
        "index_type": wc.spec.kind,
        "index": wc.spec.to_json(),
        "counts": counts,
        "corpus": {"dir": str(corpus_dir) if corpus_dir else None, "fingerprint": corpus_fingerprint(fps)},
        "versions": _versions(),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    step("manifest")
    _atomic_write(index_dir / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    step("committed")
    _remove_old_generations(index_dir, keep={db_name, faiss_name} | live_files)
    return counts


def _write_generation(
    index_dir: Path, changes: Changes, embedder: Embedder, report: BuildReport, *, full: bool = False,
    progress: ProgressFn | None = None, corpus_dir: Path | None = None, wait: bool = False,
    hook: Callable[[str], None] | None = None, vector_options: VectorOptions | None = None, use_cache: bool = True,
) -> BuildReport:
    """One new generation of the index: open a working copy, diff, remove, parse, embed, commit."""
    started = time.perf_counter()
    step = hook or (lambda _stage: None)
    with rebuild_lock(index_dir, wait=wait):
        step("locked")
        # Never reuse a generation's file names, even when starting over: the current index stays
        # live (and loadable) until the new manifest replaces it.
        generation = _next_generation(index_dir)
        live_files = _manifest_files(index_dir)  # the index being served now: kept one more round
        report.generation = generation
        wc = _open_working_copy(index_dir, generation, embedder, full=full, partial=not changes.whole)
        report.full = wc.previous is None
        step("opened")
        try:
            db = wc.db
            # Rows are deleted explicitly, children first; foreign-key checks would only cost time.
            db.execute("PRAGMA foreign_keys=OFF")
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            have = {ext: (rid, fp) for rid, ext, fp in db.execute("SELECT id, ext_id, fingerprint FROM articles")}
            plan = _diff(have, changes, report)
            if wc.previous is not None and not plan.removed_rows and not plan.todo:
                db.close()
                wc.db_path.unlink(missing_ok=True)
                report.articles = wc.previous["counts"]["articles"]
                report.sentences = wc.previous["counts"]["sentences"]
                report.up_to_date = True
                report.seconds = time.perf_counter() - started
                return report
            step("diffed")
            df_added: Counter[str] = Counter()
            df_removed: Counter[str] = Counter()
            with db:
                if plan.removed_rows:
                    _remove_rows(wc, plan.removed_rows, embedder, df_removed)
                step("removed")
                # Parse and split everything new first, then embed in large batches.
                new_ids, new_texts = _insert_articles(db, plan.todo, df_added, step)
                update_df(db, df_added, df_removed)
                step("parsed")
            vecs = _embed(index_dir, new_texts, embedder, use_cache=use_cache, progress=progress, report=report,
                          step=step)
            step("embedded")
            _add_vectors(wc, new_ids, vecs, embedder, vector_options or VectorOptions())
            step("indexed")
            counts = _commit(index_dir, wc, generation, embedder, corpus_dir, live_files, step)
        except BaseException:
            with contextlib.suppress(Exception):
                wc.db.close()
            raise
        report.articles, report.sentences = counts["articles"], counts["sentences"]
        report.seconds = time.perf_counter() - started
        return report


def _manifest_files(index_dir: Path) -> set[str]:
    """The file names the current manifest points at (none if it cannot be read)."""
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError, RecursionError):
        files = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8")).get("files", {})
        return {str(v) for v in files.values()}
    return set()


def _next_generation(index_dir: Path) -> int:
    """One more than any generation named by the manifest or present on disk."""
    highest = 0
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError, RecursionError):
        highest = int(json.loads((index_dir / MANIFEST).read_text(encoding="utf-8")).get("generation", 0))
    for p in index_dir.glob("gen-*"):
        with contextlib.suppress(ValueError):
            highest = max(highest, int(p.name[4:].split(".")[0]))
    return highest + 1


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    """Drop generations older than the previous one (a reader may still be opening that one)."""
    for p in index_dir.iterdir():
        name = p.name
        if name in keep:
            continue
        if (name.startswith("gen-") and name.endswith((".sqlite3", ".faiss"))) or (
            name.startswith(".gen-") and name.endswith(".tmp")
        ):
            with contextlib.suppress(OSError):
                p.unlink()


def _check_model(manifest: dict[str, Any], embedder: Embedder) -> None:
    model = manifest.get("model", {})
    if model.get("sha256") != embedder.fingerprint or model.get("dimension") != embedder.dimension:
        raise IndexMismatchError(
            f"the index was built with model {model.get('name')!r} (sha256 {str(model.get('sha256'))[:12]}…, "
            f"dimension {model.get('dimension')}) but the configured model is {embedder.name!r} "
            f"(sha256 {embedder.fingerprint[:12]}…, dimension {embedder.dimension}): rebuild with "
            "`newsbot rebuild --full`, or set NEWSBOT_MODEL back to the index's model"
        )


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, slots=True)
class SentenceRow:
    id: int
    article: int
    passage: int
    idx: int
    start: int
    end: int
    text: str
    terms: str = ""  # space-separated distinct stemmed content words


@dataclass(frozen=True, slots=True)
class ArticleRow:
    id: int
    ext_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    wire: int | None = None  # the wire-copy group (index.wire), when the article has copies


#: The read connection's SQLite page cache, in KiB.
READ_CACHE_KIB = 131072


class Snapshot:
    """One generation of the index, loaded and checked: immutable, safe to share between threads.

    Everything a question needs comes from one snapshot, so an answer never mixes builds.
    """

    def __init__(self, index_dir: Path, manifest: dict[str, Any], vectors: Any, db: sqlite3.Connection) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.vectors = vectors
        self._db = db
        self._lock = threading.Lock()
        self._articles: dict[int, ArticleRow] = {
            r[0]: ArticleRow(*r) for r in db.execute("SELECT id, ext_id, title, source, url, published, wire FROM articles")
        }
        #: Wire-copy group -> its articles (groups of two or more).
        self._wire: dict[int, list[int]] = {}
        for a in self._articles.values():
            if a.wire is not None:
                self._wire.setdefault(a.wire, []).append(a.id)
        self.total_sentences = int(manifest["counts"]["sentences"])
        self.term_stats = TermStats.load(db)
        #: Each article's publication day (None when unknown), and the dated ones sorted by day.
        self.article_day: dict[int, dt.date | None] = {i: parse_day(a.published) for i, a in self._articles.items()}
        dated = sorted((d.toordinal(), i) for i, d in self.article_day.items() if d is not None)
        self._day_ords = [o for o, _ in dated]
        self._day_ids = [i for _, i in dated]
        self.newest_day = dt.date.fromordinal(self._day_ords[-1]) if dated else None

    # -- loading ------------------------------------------------------------------------------

    @staticmethod
    def verify_files(index_dir: Path, manifest: dict[str, Any], *, check_hash: bool = False) -> None:
        """Checks that the files the manifest names are there and whole (sizes; with
        ``check_hash``, their sha256 too: what loading an index does)."""
        try:
            files = manifest["files"]
            sizes = manifest["sizes"]
            for kind in ("sqlite", "faiss"):
                path = index_dir / files[kind]
                if not path.is_file():
                    raise IndexMismatchError(
                        f"{path} is missing: rebuild with `newsbot rebuild --full`"
                    )
                if path.stat().st_size != sizes[kind]:
                    raise IndexMismatchError(
                        f"{path} is {path.stat().st_size} bytes but the manifest says {sizes[kind]}: "
                        "the file is damaged or was changed; rebuild with `newsbot rebuild --full`"
                    )
                if check_hash and "sha256" in manifest and file_sha256(path) != manifest["sha256"][kind]:
                    raise IndexMismatchError(
                        f"{path} does not match the sha256 in the manifest: the file is damaged or was "
                        "changed; rebuild with `newsbot rebuild --full`"
                    )
        except (KeyError, TypeError) as e:
            raise IndexMismatchError(
                f"{index_dir / MANIFEST} lacks {e}: rebuild with `newsbot rebuild --full`"
            ) from e

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder | None = None, *, nprobe: int | None = None) -> Snapshot:
        """Load the current generation and check it against its manifest (and the model).

        ``nprobe`` overrides the IVF cells searched per question (NEWSBOT_NPROBE): the rebuild tunes
        it on stored vectors, which is stricter than real questions (docs/BENCHMARKS.md).
        """
        from . import vectors as vec

        manifest = read_manifest(index_dir)
        if embedder is not None:
            _check_model(manifest, embedder)
        cls.verify_files(index_dir, manifest, check_hash=True)
        db_path = index_dir / manifest["files"]["sqlite"]
        try:
            db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
            # A page cache big enough for a large archive's hot full-text pages (it fills only with
            # use): the default 2 MiB makes every question re-read them.
            db.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
            n_sent = db.execute("SELECT count(*) FROM sentences").fetchone()[0]
            n_art = db.execute("SELECT count(*) FROM articles").fetchone()[0]
        except sqlite3.Error as e:
            raise IndexMismatchError(
                f"{db_path} is damaged ({e}): rebuild with `newsbot rebuild --full`"
            ) from e
        try:
            vectors = vec.load(index_dir / manifest["files"]["faiss"], _index_spec(manifest))
        except IndexMismatchError:
            db.close()
            raise
        counts = manifest.get("counts", {})
        if (n_sent, n_art, int(vectors.ntotal)) != (counts.get("sentences"), counts.get("articles"), counts.get("vectors")):
            db.close()
            raise IndexMismatchError(
                f"the index in {index_dir} disagrees with its manifest ({n_art} articles, {n_sent} sentences, "
                f"{vectors.ntotal} vectors; manifest says {counts}): rebuild with `newsbot rebuild --full`"
            )
        if embedder is not None and vectors.d != embedder.dimension:
            db.close()
            raise IndexMismatchError(
                f"the index holds {vectors.d}-dimensional vectors, the model makes {embedder.dimension}: "
                "rebuild with `newsbot rebuild --full`"
            )
        if nprobe and _index_spec(manifest).kind == "ivf":
            vec.set_nprobe(vectors, nprobe)
        return cls(index_dir, manifest, vectors, db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- queries ------------------------------------------------------------------------------

    def dense(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(k, int(self.vectors.ntotal))
        if k <= 0:
            return []
        from .vectors import search

        scores, ids = search(self.vectors, qvec.reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        from .vectors import reconstruct

        return reconstruct(self.vectors, ids)

    def lexical(self, match: str, k: int) -> list[tuple[int, float]]:
        """BM25 over sentences for an FTS5 MATCH expression (built by the caller from plain words)."""
        if not match:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, -bm25(sentences_fts) FROM sentences_fts WHERE sentences_fts MATCH ? "
                "ORDER BY rank LIMIT ?",
                (match, k),
            ).fetchall()
        return [(int(r), float(s)) for r, s in rows]

    def lexical_for(self, match: str, ids: Sequence[int]) -> dict[int, float]:
        """BM25 scores of the given sentences (absent: no match)."""
        if not match or not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT rowid, -bm25(sentences_fts) FROM sentences_fts WHERE sentences_fts MATCH ? "
                f"AND rowid IN ({marks})",
                (match, *ids),
            ).fetchall()
        return {int(r): float(s) for r, s in rows}

    def term_doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        """How many sentences contain each (already FTS-quoted) term."""
        out = {}
        with self._lock:
            for t in terms:
                out[t] = self._db.execute(
                    "SELECT count(*) FROM sentences_fts WHERE sentences_fts MATCH ?", (t,)
                ).fetchone()[0]
        return out

    def sentences(self, ids: Sequence[int]) -> dict[int, SentenceRow]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, article, passage, idx, start, end, text, terms FROM sentences WHERE id IN ({marks})",
                tuple(ids),
            ).fetchall()
        return {r[0]: SentenceRow(*r) for r in rows}

    def articles_mentioning(self, article_ids: Iterable[int], words: Sequence[str]) -> set[int]:
        """Those of the given articles that contain every one of ``words`` (plain words, no FTS syntax)
        somewhere in their text: an FTS look-up per word, so no article text is read."""
        found = set(article_ids)
        for w in words:
            if not found:
                break
            marks = ",".join("?" * len(found))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT DISTINCT article FROM sentences WHERE article IN ({marks}) AND id IN "
                    "(SELECT rowid FROM sentences_fts WHERE sentences_fts MATCH ?)",
                    (*found, '"' + w.replace('"', '') + '"'),  # quoted: never FTS syntax
                ).fetchall()
            found = {r[0] for r in rows}
        return found

    def neighbours(self, rows: Sequence[SentenceRow], window: int = 1) -> dict[tuple[int, int], SentenceRow]:
        """Sentences within ``window`` of each row in the same article, keyed by (article, idx).

        An article's sentences are inserted together, so their ids are consecutive: neighbours are
        primary-key look-ups.
        """
        if not rows:
            return {}
        wanted = sorted({r.id + d for r in rows for d in range(-window, window + 1) if d} - {r.id for r in rows})
        got = self.sentences(wanted)
        got.update({r.id: r for r in rows})
        index = {(r.article, r.idx): r for r in got.values()}
        return {(r.article, r.idx + d): index[(r.article, r.idx + d)]
                for r in rows for d in range(-window, window + 1) if d and (r.article, r.idx + d) in index}

    def article(self, rowid: int) -> ArticleRow:
        return self._articles[rowid]

    def wire_copies(self, rowid: int) -> list[int]:
        """The other articles that carry the same story text (wire copy), oldest first."""
        group = self._articles[rowid].wire
        return [] if group is None else [a for a in self._wire.get(group, ()) if a != rowid]

    def article_sentences(self, article_ids: Sequence[int]) -> dict[int, list[SentenceRow]]:
        """Every sentence of these articles, in order."""
        if not article_ids:
            return {}
        marks = ",".join("?" * len(article_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, article, passage, idx, start, end, text, terms FROM sentences WHERE article IN ({marks}) "
                "ORDER BY article, idx", tuple(article_ids),
            ).fetchall()
        out: dict[int, list[SentenceRow]] = {}
        for r in rows:
            out.setdefault(r[1], []).append(SentenceRow(*r))
        return out

    def articles_between(self, start: dt.date, end: dt.date) -> list[int]:
        """The articles published from ``start`` to ``end`` (both included)."""
        lo = bisect.bisect_left(self._day_ords, start.toordinal())
        hi = bisect.bisect_right(self._day_ords, end.toordinal())
        return self._day_ids[lo:hi]

    def articles(self) -> list[ArticleRow]:
        return list(self._articles.values())

    def article_infos(self) -> list[ArticleInfo]:
        with self._lock:
            counts = dict(self._db.execute("SELECT article, count(*) FROM sentences GROUP BY article").fetchall())
        return [
            ArticleInfo(a.ext_id, a.title, a.source, a.url, a.published, int(counts.get(a.id, 0)))
            for a in self._articles.values()
        ]

    def passage_view(self, sentence_id: int) -> PassageView | None:
        with self._lock:
            row = self._db.execute(
                "SELECT s.start, s.end, p.start, p.end, a.text, a.ext_id FROM sentences s "
                "JOIN passages p ON p.id = s.passage JOIN articles a ON a.id = s.article WHERE s.id = ?",
                (sentence_id,),
            ).fetchone()
        if row is None:
            return None
        s_start, s_end, p_start, p_end, text, ext = row
        return PassageView(sentence_id, ext, text[p_start:p_end], s_start - p_start, s_end - p_start)
