"""Synthetic corpora for the scale benchmarks: generated text and generated vectors, no model.

Vectors are drawn around real sentence vectors (the news-dev index), so neighbourhoods look like a
real corpus's rather than uniform noise: ``x = normalize(a + 0.7 (b - mean) + 0.4 z)`` with ``a``,
``b`` random real vectors and ``z`` isotropic Gaussian noise of unit expected norm. On 93k vectors
this gives a median nearest-neighbour cosine of 0.60 (real: 0.62) and a median 10th-neighbour
cosine of 0.38 (real: 0.49): neighbours are a little farther apart than in real text, which makes
approximate search slightly harder than on real data, not easier.

Text is drawn from the news-dev vocabulary with its word frequencies, so full-text (BM25) postings
have realistic lengths. Text and vector of a sentence are unrelated: the benchmarks measure speed,
memory and recall against exact search, not answer quality.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from index.loaders import LoadResult, article_fingerprint
from index.records import Article

BETA, SIGMA = 0.7, 0.4


def real_vectors(faiss_path: Path) -> np.ndarray:
    """Every vector of a flat newsbot index (the news-dev index)."""
    from index import vectors as vec

    index = vec.load(faiss_path, vec.IndexSpec())
    return vec.all_vectors(index)[1]


def generate_vectors(seed_vectors: np.ndarray, n: int, *, seed: int = 0, chunk: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = seed_vectors.mean(0)
    d = seed_vectors.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        a = seed_vectors[rng.integers(0, len(seed_vectors), m)]
        b = seed_vectors[rng.integers(0, len(seed_vectors), m)]
        z = rng.standard_normal((m, d), dtype=np.float32) / np.sqrt(d)
        y = a + BETA * (b - mean) + SIGMA * z
        out[start:start + m] = y / np.linalg.norm(y, axis=1, keepdims=True)
    return out


class SyntheticEmbedder:
    """An Embedder whose vectors come from :func:`generate_vectors`, seeded by the text's hash."""

    name = "synthetic"
    fingerprint = "synthetic-v1"

    def __init__(self, seed_vectors: np.ndarray) -> None:
        self.seed_vectors = seed_vectors
        self.dimension = int(seed_vectors.shape[1])
        self.mean = seed_vectors.mean(0)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        h = hashlib.blake2b("\n".join(texts).encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(h, "little"))
        n, d, sv = len(texts), self.dimension, self.seed_vectors
        a = sv[rng.integers(0, len(sv), n)]
        b = sv[rng.integers(0, len(sv), n)]
        z = rng.standard_normal((n, d), dtype=np.float32) / np.sqrt(d)
        y = a + BETA * (b - self.mean) + SIGMA * z
        return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def vocabulary(articles_jsonl: Path, size: int = 30_000) -> tuple[list[str], np.ndarray]:
    """The most frequent words of the news-dev articles and their probabilities."""
    counts: collections.Counter[str] = collections.Counter()
    word = re.compile(r"[A-Za-z][a-z]{2,}")
    with articles_jsonl.open(encoding="utf-8") as fh:
        for line in fh:
            counts.update(w.lower() for w in word.findall(json.loads(line).get("text", "")))
    common = counts.most_common(size)
    words = [w for w, _ in common]
    p = np.asarray([c for _, c in common], dtype=np.float64)
    return words, p / p.sum()


def generate_corpus(n_sentences: int, words: list[str], probs: np.ndarray, *, seed: int = 0,
                    per_article: int = 48, id_prefix: str = "syn") -> LoadResult:
    """About ``n_sentences`` sentences in articles of ``per_article`` sentences (paragraphs of 4)."""
    rng = np.random.default_rng(seed)
    n_articles = max(1, n_sentences // per_article)
    lengths = rng.integers(8, 24, size=n_articles * per_article)
    tokens = rng.choice(len(words), size=int(lengths.sum()), p=probs)
    pos = 0
    arts = []
    w = np.asarray(words, dtype=object)
    for i in range(n_articles):
        paras, sent = [], []
        for j in range(per_article):
            k = int(lengths[i * per_article + j])
            s = " ".join(w[tokens[pos:pos + k]])
            pos += k
            sent.append(s[0].upper() + s[1:] + ".")
            if len(sent) == 4:
                paras.append(" ".join(sent))
                sent = []
        if sent:
            paras.append(" ".join(sent))
        title = " ".join(w[tokens[pos - 6:pos]]).title()
        day = 1 + i % 28
        art = Article(id=f"{id_prefix}-{i:07d}", title=title, text="\n\n".join(paras), source="Synthetic Wire",
                      url=f"https://example.org/{id_prefix}/{i}", published=f"2024-01-{day:02d}",
                      path=f"synthetic.jsonl:{i + 1}")
        arts.append(replace(art, fingerprint=article_fingerprint(art)))
    return LoadResult(articles=arts, files=1)
