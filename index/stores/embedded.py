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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, wire
from ..embed import Embedder, file_sha256
from ..errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from ..records import ArticleInfo, PassageView
from ..terms import TermStats, update_df
from ..vectors import IndexSpec, VectorIndexError, VectorOptions
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
    admitted,
    check_model,
)
from .build import wire_signature

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
# Building


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


def _index_spec(manifest: dict[str, Any]) -> IndexSpec:
    """The vector index a manifest records (older manifests only say "flat")."""
    return IndexSpec.from_json(manifest.get("index", manifest.get("index_type")))


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
    from .. import vectors as vec

    tmp_db = index_dir / f".gen-{generation:06d}.sqlite3.tmp"
    tmp_faiss = index_dir / f".gen-{generation:06d}.faiss.tmp"
    for p in (tmp_db, tmp_faiss):
        p.unlink(missing_ok=True)
    previous: dict[str, Any] | None = None
    if not full:
        try:
            previous = read_manifest(index_dir)
            check_model(previous.get("model", {}), embedder, f"the index in {index_dir}")
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
    from .. import vectors as vec

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


def _insert_parsed(db: sqlite3.Connection, parsed: Sequence[ParsedArticle], df_added: Counter[str],
                   step: StepFn) -> list[int]:
    """Insert each parsed article (with its wire-copy group); the new sentences' ids, in order."""
    new_ids: list[int] = []
    for n_art, p in enumerate(parsed):
        step(f"insert:{n_art}")
        art = p.article
        cur = db.execute(
            "INSERT INTO articles(ext_id, title, source, url, published, authors, path, fingerprint, text)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (art.id, art.title, art.source, art.url, art.published, json.dumps(list(art.authors)),
             art.path, art.fingerprint, art.text),
        )
        aid = int(cur.lastrowid)  # type: ignore[arg-type]
        group = wire.add(db, aid, wire_signature(p))
        if group is not None:
            db.execute("UPDATE articles SET wire=? WHERE id=?", (group, aid))
        pids = [db.execute("INSERT INTO passages(article, idx, start, end) VALUES (?,?,?,?)",
                           (aid, idx, start, end)).lastrowid for idx, start, end in p.passages]
        for s in p.sentences:
            df_added.update(s.terms)
            sid = db.execute(
                "INSERT INTO sentences(article, passage, idx, start, end, text, terms, n_terms)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (aid, pids[s.passage], s.idx, s.start, s.end, s.text, " ".join(s.terms), len(s.terms)),
            ).lastrowid
            new_ids.append(int(sid))  # type: ignore[arg-type]
    return new_ids


def _add_vectors(wc: _WorkingCopy, ids: list[int], vecs: np.ndarray, embedder: Embedder,
                 options: VectorOptions) -> None:
    """Add the new vectors, moving to another kind of vector index when the size calls for it."""
    from .. import vectors as vec

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
    from .. import vectors as vec

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


class EmbeddedBatch(Batch):
    """A new generation being written next to the current one: committed by replacing the manifest."""

    def __init__(self, store: EmbeddedStore, embedder: Embedder, *, full: bool, partial: bool, wait: bool,
                 step: StepFn) -> None:
        self.store = store
        self.embedder = embedder
        index_dir = store.index_dir
        self._lock = rebuild_lock(index_dir, wait=wait)
        self._lock.__enter__()
        try:
            step("locked")
            # Never reuse a generation's file names, even when starting over: the current index stays
            # live (and loadable) until the new manifest replaces it.
            self.generation = _next_generation(index_dir)
            self._live = _manifest_files(index_dir)  # the index being served now: kept one more round
            self.wc = _open_working_copy(index_dir, self.generation, embedder, full=full, partial=partial)
            self.fresh = self.wc.previous is None
            step("opened")
            # Rows are deleted explicitly, children first; foreign-key checks would only cost time.
            for pragma in ("foreign_keys=OFF", "journal_mode=OFF", "synchronous=OFF"):
                self.wc.db.execute(f"PRAGMA {pragma}")
        except BaseException:
            self._release()
            raise
        self._df_added: Counter[str] = Counter()
        self._df_removed: Counter[str] = Counter()

    def _release(self) -> None:
        lock, self._lock = self._lock, None  # type: ignore[assignment]
        if lock is not None:
            lock.__exit__(None, None, None)

    def have(self) -> dict[str, tuple[int, str]]:
        return {ext: (rid, fp) for rid, ext, fp in self.wc.db.execute("SELECT id, ext_id, fingerprint FROM articles")}

    def counts(self) -> dict[str, int]:
        if self.wc.previous is not None:
            return dict(self.wc.previous["counts"])
        return {"articles": 0, "sentences": 0}

    def remove(self, article_rows: Sequence[int]) -> None:
        with self.wc.db:
            _remove_rows(self.wc, article_rows, self.embedder, self._df_removed)

    def add(self, parsed: Sequence[ParsedArticle], vectors: np.ndarray, step: StepFn) -> None:
        with self.wc.db:
            ids = _insert_parsed(self.wc.db, parsed, self._df_added, step)
            update_df(self.wc.db, self._df_added, self._df_removed)
        _add_vectors(self.wc, ids, vectors, self.embedder, self.store.vector_options)

    def commit(self, step: StepFn) -> dict[str, int]:
        try:
            return _commit(self.store.index_dir, self.wc, self.generation, self.embedder, self.store.corpus_dir,
                           self._live, step)
        finally:
            self._release()

    def abandon(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.wc.db.close()
        self.wc.db_path.unlink(missing_ok=True)
        self.wc.faiss_path.unlink(missing_ok=True)
        self._release()


class EmbeddedStore(Store):
    """The index as a folder: a FAISS file and a SQLite database per generation, and a manifest."""

    name = "embedded"

    def __init__(self, index_dir: Path, *, corpus_dir: Path | None = None, nprobe: int | None = None,
                 vector_options: VectorOptions | None = None, cache_path: Path | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.cache_path = cache_path
        self.corpus_dir = corpus_dir
        self.nprobe = nprobe
        self.vector_options = vector_options or VectorOptions()

    def open(self, embedder: Embedder | None = None) -> Snapshot:
        return Snapshot.open(self.index_dir, embedder, nprobe=self.nprobe)

    def stamp(self) -> object:
        """The manifest's inode, mtime and size: one ``stat``. A rebuild commits by replacing it."""
        try:
            st = os.stat(self.index_dir / MANIFEST)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def fingerprints(self) -> dict[str, str] | None:
        return indexed_fingerprints(self.index_dir)

    def begin(self, embedder: Embedder, *, full: bool, partial: bool, wait: bool, step: StepFn) -> EmbeddedBatch:
        return EmbeddedBatch(self, embedder, full=full, partial=partial, wait=wait, step=step)

    def embedding_cache_path(self) -> Path:
        if self.cache_path is not None:
            return self.cache_path
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return self.index_dir / "embcache.sqlite3"

    def describe(self) -> str:
        return f"the index folder {self.index_dir}"


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




# --------------------------------------------------------------------------------------------
# Reading


#: The read connection's SQLite page cache, in KiB.
READ_CACHE_KIB = 131072


#: Under a filter that admits at most this many sentences, the dense search is exact over them;
#: above it, the vector index is searched for more candidates than asked and the admitted kept.
EXACT_FILTERED = 8192
#: How many more candidates a filtered dense search asks the vector index for (at least 1024).
FILTER_OVERFETCH = 16


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every term quoted, so no user text is ever read as FTS syntax."""
    seen: list[str] = []
    for t in terms:
        t = t.replace('"', "")
        if t and t not in seen:
            seen.append(t)
    return " OR ".join(f'"{t}"' for t in seen)


class Snapshot(Reader):
    """One generation of the index, loaded and checked: immutable, safe to share between threads.

    Everything a question needs comes from one snapshot, so an answer never mixes builds.
    """

    def __init__(self, index_dir: Path, manifest: dict[str, Any], vectors: Any, db: sqlite3.Connection) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.faiss = vectors
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
        from .. import vectors as vec

        manifest = read_manifest(index_dir)
        if embedder is not None:
            check_model(manifest.get("model", {}), embedder, f"the index in {index_dir}")
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

    @property
    def info(self) -> StoreInfo:
        m = self.manifest
        return StoreInfo("embedded", int(m["generation"]), int(m["counts"]["articles"]),
                         int(m["counts"]["sentences"]), str(m["model"]["name"]), m.get("built_at"))

    def _admitted_sentences(self, where: SearchFilter) -> list[int]:
        arts = sorted(admitted(self._articles, self.article_day, where))
        if not arts:
            return []
        with self._lock:
            return [r for (r,) in self._db.execute(
                "SELECT id FROM sentences WHERE article IN (SELECT value FROM json_each(?))", (json.dumps(arts),))]

    def dense(self, qvec: np.ndarray, k: int, where: SearchFilter | None = None) -> list[tuple[int, float]]:
        from ..vectors import search

        if where is not None and where.active:
            return self._dense_filtered(qvec, k, where)
        k = min(k, int(self.faiss.ntotal))
        if k <= 0:
            return []
        scores, ids = search(self.faiss, qvec.reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _dense_filtered(self, qvec: np.ndarray, k: int, where: SearchFilter) -> list[tuple[int, float]]:
        """Exact over the admitted sentences when they are few; else a wider search, filtered."""
        allowed = self._admitted_sentences(where)
        if len(allowed) <= EXACT_FILTERED:
            if not allowed:
                return []
            scores = self.vectors(allowed) @ qvec
            top = np.argsort(-scores, kind="stable")[:k]
            return [(allowed[i], float(scores[i])) for i in top]
        keep = set(allowed)
        wide = self.dense(qvec, max(k * FILTER_OVERFETCH, 1024))
        return [(i, s) for i, s in wide if i in keep][:k]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        from ..vectors import reconstruct

        return reconstruct(self.faiss, ids)

    def lexical(self, terms: Sequence[str], k: int, where: SearchFilter | None = None) -> list[tuple[int, float]]:
        """BM25 over sentences (FTS5), the terms quoted so no text is read as FTS syntax."""
        match = fts_query(terms)
        if not match or k <= 0:
            return []
        sql = "SELECT rowid, -bm25(sentences_fts) FROM sentences_fts WHERE sentences_fts MATCH ?"
        args: tuple[object, ...] = (match,)
        if where is not None and where.active:
            arts = sorted(admitted(self._articles, self.article_day, where))
            if not arts:
                return []
            sql += " AND rowid IN (SELECT id FROM sentences WHERE article IN (SELECT value FROM json_each(?)))"
            args += (json.dumps(arts),)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY rank LIMIT ?", (*args, k)).fetchall()
        return [(int(r), float(s)) for r, s in rows]

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

    def has_articles_between(self, start: dt.date, end: dt.date) -> bool:
        return bool(self.articles_between(start, end))

    def day_of(self, article_id: int) -> dt.date | None:
        return self.article_day.get(article_id)

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
