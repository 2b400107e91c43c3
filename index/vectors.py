"""The vector index: which FAISS structure holds the sentence vectors, chosen by corpus size.

Every index maps FAISS ids to ``sentences.id`` and answers ``search``, ``reconstruct``, ``add`` and
``remove`` by id, so an incremental rebuild only touches the vectors of changed articles.

Kinds (``IndexSpec.kind``):

- ``flat``: exact inner-product search (``IndexIDMap2`` over ``IndexFlatIP`` or a flat scalar /
  product quantizer). The default while exact search stays fast: up to :data:`FLAT_MAX` vectors.
- ``ivf``: an inverted file (k-means cells, ``nprobe`` of them searched) with a hash-table direct
  map, so vectors can be reconstructed and removed by id. The default above :data:`FLAT_MAX`;
  ``nprobe`` is tuned at training time until recall@10 against exact search reaches
  :data:`TARGET_RECALL` on a sample of the stored vectors (leave-one-out).
- ``hnsw``: a graph; fast, but FAISS cannot remove vectors from it, so a removal rebuilds the graph
  from the stored vectors (no re-embedding). Only on request.

Storage (``IndexSpec.storage``): ``f32`` (exact), ``f16`` (half the memory, recall ~1.0), ``sq8``
(a quarter), ``pq`` (product quantization, ``pq_m`` bytes a vector; lossy: check the recall in
docs/BENCHMARKS.md before choosing it).

faiss is imported only inside functions: nothing heavy happens at import time.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexMismatchError, NewsbotError

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "hnsw")
STORAGES = ("f32", "f16", "sq8", "pq")
#: Up to this many vectors, exact search (``flat``) is the automatic choice (see docs/BENCHMARKS.md).
FLAT_MAX = 150_000
#: An IVF index is only chosen (and only kept) above this size: hysteresis so it does not flap.
IVF_MIN = FLAT_MAX // 2
#: recall@10 against exact search that the automatic ``nprobe`` tuning aims for.
TARGET_RECALL = 0.97
#: Cells of an IVF index are retrained when the corpus has grown this many times since training.
RETRAIN_GROWTH = 4.0


class VectorIndexError(NewsbotError):
    """The requested vector index cannot be built or used as asked."""


@dataclass(frozen=True)
class IndexSpec:
    """How the vectors are indexed; recorded in the manifest and re-applied on load."""

    kind: str = "flat"
    storage: str = "f32"
    nlist: int = 0  # ivf: number of cells
    nprobe: int = 0  # ivf: cells searched per query
    hnsw_m: int = 32  # hnsw: links per node
    ef_search: int = 96  # hnsw: candidate list while searching
    ef_construction: int = 80  # hnsw: candidate list while building
    pq_m: int = 48  # pq: sub-quantizers (bytes per vector)
    trained_on: int = 0  # how many vectors the index was trained on (ivf, sq8, pq)
    recall_at_10: float | None = None  # measured against exact search when the index was trained

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise VectorIndexError(f"index type {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.storage not in STORAGES:
            raise VectorIndexError(f"vector storage {self.storage!r} is not one of {', '.join(STORAGES)}")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> IndexSpec:
        """The spec a manifest records; ``"flat"`` (schema-1 manifests) means flat f32."""
        if data is None or data == "flat":
            return cls()
        if not isinstance(data, dict):
            raise IndexMismatchError(f"unknown index type {data!r} in the manifest: rebuild with `newsbot rebuild --full`")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except (TypeError, VectorIndexError) as e:
            raise IndexMismatchError(f"{e}: rebuild with `newsbot rebuild --full`") from e

    def describe(self) -> str:
        if self.kind == "ivf":
            return f"ivf{self.nlist}-{self.storage} (nprobe {self.nprobe})"
        if self.kind == "hnsw":
            return f"hnsw{self.hnsw_m}-{self.storage} (efSearch {self.ef_search})"
        return f"flat-{self.storage}"


@dataclass(frozen=True)
class VectorOptions:
    """What the user asked for (``auto`` lets the size decide)."""

    kind: str = "auto"
    storage: str = "auto"
    nprobe: int = 0  # 0: tuned to TARGET_RECALL

    def __post_init__(self) -> None:
        if self.kind not in ("auto", *KINDS):
            raise VectorIndexError(f"index type {self.kind!r} is not one of auto, {', '.join(KINDS)}")
        if self.storage not in ("auto", *STORAGES):
            raise VectorIndexError(f"vector storage {self.storage!r} is not one of auto, {', '.join(STORAGES)}")


def default_nlist(n: int) -> int:
    """Cells for ``n`` vectors: about sqrt(n), a power of two in [64, 4096].

    More cells search faster but train slower (k-means cost grows with cells x sample size); at 1M
    vectors 1024 cells train in well under a minute on two cores.
    """
    if n <= 0:
        return 64
    return int(min(4096, max(64, 2 ** round(math.log2(math.sqrt(n))))))


def choose_spec(n: int, options: VectorOptions = VectorOptions(), current: IndexSpec | None = None) -> IndexSpec:
    """The index for ``n`` vectors: exact while it stays fast, then IVF (f16) with tuned nprobe.

    With ``current`` (the index being updated), the kind only changes past a hysteresis band, and an
    IVF index keeps its cells until the corpus has grown :data:`RETRAIN_GROWTH` times.
    """
    kind = options.kind
    if kind == "auto":
        if current is not None and current.kind == "ivf":
            kind = "ivf" if n > IVF_MIN else "flat"
        else:
            kind = "ivf" if n > FLAT_MAX else "flat"
    storage = options.storage
    if storage == "auto":
        storage = "f16" if kind == "ivf" else "f32"
    if current is not None and current.kind == kind and current.storage == storage:
        if kind != "ivf":
            return current
        grown = current.trained_on > 0 and n > RETRAIN_GROWTH * current.trained_on
        if not grown and (not options.nprobe or options.nprobe == current.nprobe):
            return current
    nlist = default_nlist(n) if kind == "ivf" else 0
    return IndexSpec(kind=kind, storage=storage, nlist=nlist, nprobe=options.nprobe)


def _sq_type(storage: str) -> Any:
    import faiss

    return {"f16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}[storage]


def new_index(spec: IndexSpec, dimension: int) -> Any:
    """An empty FAISS index for ``spec`` (inner product: the vectors are unit length)."""
    import faiss

    ip = faiss.METRIC_INNER_PRODUCT
    if spec.storage == "pq" and dimension % spec.pq_m:
        raise VectorIndexError(f"pq_m={spec.pq_m} does not divide the dimension {dimension}")
    if spec.kind == "flat":
        if spec.storage == "f32":
            base = faiss.IndexFlatIP(dimension)
        elif spec.storage == "pq":
            base = faiss.IndexPQ(dimension, spec.pq_m, 8, ip)
        else:
            base = faiss.IndexScalarQuantizer(dimension, _sq_type(spec.storage), ip)
        return faiss.IndexIDMap2(base)
    if spec.kind == "hnsw":
        if spec.storage == "f32":
            base = faiss.IndexHNSWFlat(dimension, spec.hnsw_m, ip)
        elif spec.storage == "pq":
            # Graph search over PQ codes is slow to build and loses most of the recall.
            raise VectorIndexError("HNSW with pq storage is not offered: use ivf with pq, or hnsw with f16/sq8")
        else:
            base = faiss.IndexHNSWSQ(dimension, _sq_type(spec.storage), spec.hnsw_m, ip)
        base.hnsw.efConstruction = spec.ef_construction
        base.hnsw.efSearch = spec.ef_search
        return faiss.IndexIDMap2(base)
    quantizer = faiss.IndexFlatIP(dimension)
    nlist = spec.nlist or default_nlist(0)
    if spec.storage == "f32":
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, ip)
    elif spec.storage == "pq":
        index = faiss.IndexIVFPQ(quantizer, dimension, nlist, spec.pq_m, 8, ip)
    else:
        # Without residuals: the codes of unit vectors stay in range, and search is cheaper.
        index = faiss.IndexIVFScalarQuantizer(quantizer, dimension, nlist, _sq_type(spec.storage), ip, False)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index owns (and frees) its quantizer
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = spec.nprobe or 1
    return index


def _ivf(index: Any) -> Any:
    import faiss

    return faiss.extract_index_ivf(index) if hasattr(index, "nprobe") or hasattr(index, "invlists") else None


def is_trained(index: Any) -> bool:
    return bool(index.is_trained)


def train(index: Any, vectors: np.ndarray, *, seed: int = 1234, max_points: int | None = None) -> int:
    """Train ``index`` on a sample of ``vectors`` (no-op for indexes that need none); returns the sample size."""
    if index.is_trained:
        return 0
    import faiss

    faiss.omp_set_num_threads(build_threads())  # undo search()'s one-thread setting
    n = len(vectors)
    ivf = _ivf(index)
    cap = max_points or (max(64 * ivf.nlist, 50_000) if ivf is not None else 50_000)
    cap = min(cap, n, 256 * (ivf.nlist if ivf is not None else 1024))
    if ivf is not None and n < ivf.nlist:
        raise VectorIndexError(f"{n} vectors are too few to train an IVF index with {ivf.nlist} cells")
    sample = vectors
    if n > cap:
        sample = vectors[np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return len(sample)


def add(index: Any, ids: np.ndarray, vectors: np.ndarray) -> None:
    if len(ids) == 0:
        return
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))


def supports_remove(spec: IndexSpec) -> bool:
    return spec.kind != "hnsw"


def remove(index: Any, ids: Sequence[int] | np.ndarray) -> int:
    """Remove vectors by id; returns how many went. HNSW cannot: VectorIndexError (rebuild it instead)."""
    import faiss

    if len(ids) == 0:
        return 0
    base = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(base, faiss.IndexHNSW):
        raise VectorIndexError("an HNSW index cannot remove vectors: rebuild it from the remaining vectors")
    return int(index.remove_ids(np.asarray(ids, dtype=np.int64)))


def reconstruct(index: Any, ids: Sequence[int]) -> np.ndarray:
    """The stored vectors of ``ids`` (decoded, so approximate for f16/sq8/pq storage)."""
    if len(ids) == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    keys = np.asarray(ids, dtype=np.int64)
    try:
        return index.reconstruct_batch(keys)
    except RuntimeError:
        return np.vstack([index.reconstruct(int(i)) for i in keys])


def all_vectors(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of everything in ``index``, to move the vectors into an index of another kind."""
    import faiss

    n = int(index.ntotal)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, index.d), dtype=np.float32)
    if isinstance(index, faiss.IndexIDMap2):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return ids, faiss.downcast_index(index.index).reconstruct_n(0, n)
    ivf = faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
    ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return ids, reconstruct(index, ids.tolist())


#: Threads for training and bulk adds (None: every core). Tests set 1.
BUILD_THREADS: int | None = None


def build_threads() -> int:
    return BUILD_THREADS or os.cpu_count() or 1


#: Below this many queries a search runs on one thread (see :func:`search`).
SERIAL_BELOW = 20


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, ids) of each query row.

    A question is one query: FAISS would still start its OpenMP team, and on a busy two-core
    machine the threads' synchronisation cost 3-5x the search itself (docs/BENCHMARKS.md). So small
    batches run on the calling thread alone (the setting is per thread; :func:`train` restores it).
    """
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    if len(q) < SERIAL_BELOW:
        faiss.omp_set_num_threads(1)
    return index.search(q, k)


def set_nprobe(index: Any, nprobe: int) -> None:
    """Search ``nprobe`` cells of an IVF index per query (capped at its cell count)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = max(1, min(int(nprobe), ivf.nlist))


def apply_search_params(index: Any, spec: IndexSpec) -> None:
    """Set the query-time knobs the manifest records (not all are stored in the FAISS file)."""
    import faiss

    if spec.kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = max(1, spec.nprobe)
    elif spec.kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = spec.ef_search


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, *, chunk: int = 65_536) -> np.ndarray:
    """Row positions of the exact top ``k`` of each query (blocked, so memory stays bounded)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        s = queries @ vectors[start:start + chunk].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        ps = np.take_along_axis(s, part, axis=1)
        cat_s = np.concatenate([best_s, ps], axis=1)
        cat_i = np.concatenate([best_i, part + start], axis=1)
        top = np.argsort(-cat_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cat_s, top, axis=1)
        best_i = np.take_along_axis(cat_i, top, axis=1)
    return best_i


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the true top ``k`` that ``found`` (ids, -1 for none) contains."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k if hits else 1.0


def tune_nprobe(index: Any, ids: np.ndarray, vectors: np.ndarray, *, target: float = TARGET_RECALL,
                queries: int = 200, k: int = 10, seed: int = 99, margin: int = 1) -> tuple[int, float]:
    """The smallest power-of-two ``nprobe`` whose recall@k against exact search reaches ``target``.

    Queries are stored vectors (leave-one-out: each query's own vector is not counted), so the check
    needs no model; docs/BENCHMARKS.md compares it with recall on real questions.
    """
    import faiss

    ivf = faiss.extract_index_ivf(index)
    n = len(vectors)
    rng = np.random.default_rng(seed)
    pick = rng.choice(n, min(queries, n), replace=False)
    q = np.ascontiguousarray(vectors[pick], dtype=np.float32)
    truth_pos = exact_top_k(vectors, q, k + 1)
    truth = []
    for row, own in zip(truth_pos, pick):
        truth.append([int(ids[p]) for p in row if p != own][:k])
    truth_arr = np.asarray(truth, dtype=np.int64)
    own_ids = ids[pick]
    nprobe, previous = 1, -1.0
    while True:
        ivf.nprobe = nprobe
        _, found = index.search(q, k + 1)
        hits = [len({i for i in row if i != own} & set(t.tolist())) for row, own, t in zip(found, own_ids, truth_arr)]
        recall = float(np.mean(hits)) / k
        # Lossy storage (sq8, pq) caps recall below the target whatever nprobe: stop at the plateau.
        if recall >= target or nprobe >= ivf.nlist or recall - previous < 0.002:
            break
        previous = recall
        nprobe = min(ivf.nlist, nprobe * 2)
    # ``margin`` multiplies the result. Leave-one-out turned out stricter than real questions: on
    # news-dev it needs nprobe 64 for 0.97, where the questions reach 0.985 (docs/BENCHMARKS.md),
    # so no margin by default.
    nprobe = min(ivf.nlist, nprobe * margin)
    ivf.nprobe = nprobe
    _, found = index.search(q, k + 1)
    hits = [len({i for i in row if i != own} & set(t.tolist())) for row, own, t in zip(found, own_ids, truth_arr)]
    return nprobe, float(np.mean(hits)) / k


def build(spec: IndexSpec, ids: np.ndarray, vectors: np.ndarray, dimension: int) -> tuple[Any, IndexSpec]:
    """An index of ``spec`` holding ``vectors`` (trained on them first); the spec as built.

    For IVF without a fixed ``nprobe`` the recall against exact search is measured and ``nprobe``
    raised until it reaches :data:`TARGET_RECALL`.
    """
    n = len(ids)
    if spec.kind == "ivf":
        nlist = min(spec.nlist or default_nlist(n), max(1, n // 39))  # k-means wants >= 39 points a cell
        if nlist < 16:
            log.info("too few vectors (%d) for an IVF index: using exact search", n)
            spec = replace(spec, kind="flat", nlist=0, nprobe=0)
        else:
            spec = replace(spec, nlist=nlist)
    import faiss

    faiss.omp_set_num_threads(build_threads())  # adding and tuning use every core
    index = new_index(spec, dimension)
    trained = train(index, vectors) if n and not index.is_trained else 0
    if trained:
        spec = replace(spec, trained_on=n)
    elif not index.is_trained:
        raise VectorIndexError(f"a {spec.describe()} index needs vectors to train on")
    add(index, ids, vectors)
    if spec.kind == "ivf":
        if spec.nprobe:
            apply_search_params(index, spec)
        else:
            nprobe, recall = tune_nprobe(index, ids, vectors)
            spec = replace(spec, nprobe=nprobe, recall_at_10=round(recall, 4))
            log.info("IVF index with %d cells: nprobe %d gives recall@10 %.3f against exact search",
                     spec.nlist, nprobe, recall)
    apply_search_params(index, spec)
    return index, spec


def save(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load(path: Path, spec: IndexSpec) -> Any:
    """Read a FAISS file and re-apply the search parameters the manifest records."""
    import faiss

    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        raise IndexMismatchError(
            f"{path} cannot be read ({str(e).splitlines()[0]}): rebuild with `newsbot rebuild --full`"
        ) from e
    apply_search_params(index, spec)
    return index
