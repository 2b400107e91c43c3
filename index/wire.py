"""Wire copy: the same story text under several outlets' URLs, recognised by MinHash.

Each article's body text (its ``body`` blocks) becomes a set of word 5-shingles, summarised by a
128-permutation MinHash (datasketch). Signatures are cut into 32 bands of 4 rows; two articles that
share a band are candidates, and a candidate whose estimated Jaccard similarity is at least
:data:`THRESHOLD` is a copy. With these bands a pair at similarity 0.6 becomes a candidate with
probability 0.99, a pair at 0.3 with 0.23, at 0.1 with 0.003.

Copies share a group (``articles.wire``: the row id of the group's first article). The answer quotes
a sentence once and cites every copy that carries it ("also in ...").

The signatures and bands live in the index database, so an incremental build compares a new article
against the archive with a few indexed look-ups.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence

import numpy as np

NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
SHINGLE = 5
#: Estimated Jaccard similarity of shingle sets at or above which two articles are copies.
THRESHOLD = 0.6
#: Articles with fewer shingles than this are never grouped (short texts match by chance).
MIN_SHINGLES = 40
#: The datasketch seed and scheme: signatures stored in an index must all use the same permutations.
SEED = 1
SCHEME = "affine32"

SCHEMA = """
CREATE TABLE wire_sigs(article INTEGER PRIMARY KEY, sig BLOB NOT NULL);
CREATE TABLE wire_bands(band INTEGER NOT NULL, bucket INTEGER NOT NULL, article INTEGER NOT NULL);
CREATE INDEX wire_bands_key ON wire_bands(band, bucket);
CREATE INDEX wire_bands_article ON wire_bands(article);
"""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PERMS: tuple[np.ndarray, np.ndarray] | None = None


def shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i:i + SHINGLE]).encode("utf-8") for i in range(max(0, len(words) - SHINGLE + 1))}


def signature(text: str) -> np.ndarray | None:
    """The MinHash signature (uint32, NUM_PERM values) of ``text``, or None when it is too short."""
    from datasketch import MinHash

    sh = shingles(text)
    if len(sh) < MIN_SHINGLES:
        return None
    global _PERMS
    m = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=_PERMS, scheme=SCHEME)
    _PERMS = m.permutations  # generating them is most of the cost of a small MinHash
    m.update_batch(list(sh))
    return m.hashvalues.astype(np.uint32)


def buckets(sig: np.ndarray) -> list[tuple[int, int]]:
    out = []
    for b in range(BANDS):
        digest = hashlib.blake2b(sig[b * ROWS:(b + 1) * ROWS].tobytes(), digest_size=8).digest()
        out.append((b, int.from_bytes(digest, "little", signed=True)))
    return out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard similarity of two signatures."""
    return float(np.mean(a == b))


def match(sig: np.ndarray, candidates: Callable[[list[tuple[int, int]]], Iterable[int]],
          lookup: Callable[[int], tuple[np.ndarray, int | None] | None]) -> tuple[int, int] | None:
    """The wire group a new signature joins and the copy it matched: (group, copy), or None.

    ``candidates`` gives the articles sharing a (band, bucket) with it; ``lookup`` an article's
    signature and current group. The group of a pair's first copy is that copy's row id.
    """
    best: tuple[float, int, int] | None = None  # similarity, group, the copy
    for other in sorted(set(candidates(buckets(sig)))):
        row = lookup(other)
        if row is None:
            continue
        s = similarity(sig, row[0])
        if s >= THRESHOLD and (best is None or s > best[0]):
            best = (s, int(row[1] if row[1] is not None else other), other)
    return None if best is None else (best[1], best[2])


def add(db: sqlite3.Connection, article: int, sig: np.ndarray | None) -> int | None:
    """Store ``article``'s signature and bands (SQLite); return the wire group it joins (the group
    of its most similar copy, which is marked as that group's too), or None when it is no copy of
    anything indexed."""
    if sig is None:
        return None

    def candidates(keys: list[tuple[int, int]]) -> set[int]:
        out: set[int] = set()
        for band, bucket in keys:
            out.update(r[0] for r in db.execute(
                "SELECT article FROM wire_bands WHERE band=? AND bucket=?", (band, bucket)))
        return out

    def lookup(other: int) -> tuple[np.ndarray, int | None] | None:
        row = db.execute("SELECT w.sig, a.wire FROM wire_sigs w JOIN articles a ON a.id = w.article "
                         "WHERE w.article=?", (other,)).fetchone()
        return None if row is None else (np.frombuffer(row[0], dtype=np.uint32), row[1])

    found = match(sig, candidates, lookup)
    if found is not None:  # the first copy found starts the group
        db.execute("UPDATE articles SET wire=? WHERE id=? AND wire IS NULL", (found[0], found[1]))
    db.execute("INSERT OR REPLACE INTO wire_sigs(article, sig) VALUES (?, ?)", (article, sig.tobytes()))
    db.executemany("INSERT INTO wire_bands(band, bucket, article) VALUES (?, ?, ?)",
                   [(b, k, article) for b, k in buckets(sig)])
    return None if found is None else found[0]


def remove(db: sqlite3.Connection, articles: Sequence[int]) -> None:
    """Forget the signatures of removed articles (their copies keep their group)."""
    for i in range(0, len(articles), 500):
        chunk = list(articles[i:i + 500])
        marks = ",".join("?" * len(chunk))
        db.execute(f"DELETE FROM wire_sigs WHERE article IN ({marks})", chunk)
        db.execute(f"DELETE FROM wire_bands WHERE article IN ({marks})", chunk)
