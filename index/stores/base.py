"""The seam between the engine and storage: a store, the readers it opens, the writer it applies
changes with. One backend per file beside this one (embedded: FAISS + SQLite in a folder;
postgres: PostgreSQL + pgvector); :mod:`index.stores` picks one from the settings.

A :class:`Reader` is one consistent view of the index (a generation): everything an answer needs
comes from one reader, so an answer never mixes two builds. Searches take their filters (outlet,
dates) as a :class:`SearchFilter` and apply them inside the search, so a filtered search still
returns ``k`` candidates when there are that many.

A :class:`Batch` is one transaction of the writer: the shared build (index/stores/build.py)
diffs, removes, parses, embeds and adds through it, then commits; nothing it did is visible
before the commit, and an abandoned or killed batch leaves the last committed state answering.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..embed import Embedder
from ..records import ArticleInfo, PassageView
from ..terms import TermStats

#: Called with a stage name at each step of a build (tests kill builds at chosen stages).
StepFn = Callable[[str], None]


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


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which articles a search may return: outlet (a case-insensitive part of its name) and
    publication days (inclusive; an undated article fails any date bound)."""

    source: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    @property
    def active(self) -> bool:
        return bool((self.source or "").strip() or self.since or self.until)

    def admits(self, article: ArticleRow, day: dt.date | None) -> bool:
        src = (self.source or "").strip().lower()
        if src and src not in (article.source or "").lower():
            return False
        if self.since or self.until:
            if day is None:
                return False
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True


@dataclass(frozen=True)
class StoreInfo:
    """What /about and ``newsbot status`` show of a reader's view."""

    backend: str
    generation: int
    articles: int
    sentences: int
    model: str
    built_at: str | None

    def to_json(self) -> dict[str, object]:
        return {"backend": self.backend, "articles": self.articles, "sentences": self.sentences,
                "built_at": self.built_at, "model": self.model, "generation": self.generation}


class Reader(ABC):
    """One consistent view of the index; safe to share between threads."""

    #: Term statistics (document frequencies) of the view's sentences, for BM25 weights.
    term_stats: TermStats
    #: The newest publication day of any article (None when no article is dated).
    newest_day: dt.date | None

    @property
    @abstractmethod
    def info(self) -> StoreInfo: ...

    @property
    def total_sentences(self) -> int:
        return self.info.sentences

    # -- searches: (sentence id, score), best first --------------------------------------------

    @abstractmethod
    def dense(self, qvec: np.ndarray, k: int, where: SearchFilter | None = None) -> list[tuple[int, float]]:
        """The ``k`` sentences nearest to a unit vector (inner product), among those ``where`` admits."""

    @abstractmethod
    def lexical(self, terms: Sequence[str], k: int, where: SearchFilter | None = None) -> list[tuple[int, float]]:
        """The ``k`` best sentences by BM25 that contain any of ``terms`` (stemmed terms, as
        :func:`index.terms.terms` makes them; never query syntax), among those ``where`` admits."""

    # -- look-ups ------------------------------------------------------------------------------

    @abstractmethod
    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these sentences, in order."""

    def similarities(self, qvec: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """The inner products of these sentences' stored vectors with ``qvec``, in order."""
        return self.vectors(ids) @ qvec if ids else np.zeros(0, dtype=np.float32)

    @abstractmethod
    def sentences(self, ids: Sequence[int]) -> dict[int, SentenceRow]:
        """These sentences (absent ids are left out)."""

    @abstractmethod
    def neighbours(self, rows: Sequence[SentenceRow], window: int = 1) -> dict[tuple[int, int], SentenceRow]:
        """Sentences within ``window`` positions of each row in its article, keyed by (article, idx)."""

    @abstractmethod
    def article_sentences(self, article_ids: Sequence[int]) -> dict[int, list[SentenceRow]]:
        """Every sentence of these articles, in order."""

    @abstractmethod
    def articles_mentioning(self, article_ids: Iterable[int], words: Sequence[str]) -> set[int]:
        """Those of the given articles that contain every one of ``words`` (stemmed terms)."""

    @abstractmethod
    def article(self, article_id: int) -> ArticleRow: ...

    @abstractmethod
    def day_of(self, article_id: int) -> dt.date | None:
        """The article's publication day (None when unknown)."""

    @abstractmethod
    def wire_copies(self, article_id: int) -> list[int]:
        """The other articles that carry the same story text (wire copy), oldest first."""

    @abstractmethod
    def has_articles_between(self, start: dt.date, end: dt.date) -> bool:
        """Whether any article was published from ``start`` to ``end`` (both included)."""

    @abstractmethod
    def article_infos(self) -> list[ArticleInfo]: ...

    @abstractmethod
    def passage_view(self, sentence_id: int) -> PassageView | None: ...

    @abstractmethod
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ParsedSentence:
    passage: int  # index into the article's passages
    idx: int
    start: int
    end: int
    text: str
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedArticle:
    """An article split into passages and sentences with their terms: the parse step's output,
    what a backend writes (``body``: the text the wire-copy fingerprint is taken of)."""

    article: Any  # records.Article
    passages: tuple[tuple[int, int, int], ...]  # (idx, start, end)
    sentences: tuple[ParsedSentence, ...]
    body: str


class Batch(ABC):
    """One transaction of a writer (see the module's docstring)."""

    #: The number of the state this batch commits (a generation).
    generation: int
    #: True when the batch starts from an empty index (a full rebuild).
    fresh: bool

    @abstractmethod
    def have(self) -> dict[str, tuple[int, str]]:
        """Every indexed article: ext id -> (row id, fingerprint)."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Articles and sentences the index holds now."""

    @abstractmethod
    def remove(self, article_rows: Sequence[int]) -> None:
        """Delete these articles with their sentences and vectors."""

    @abstractmethod
    def add(self, parsed: Sequence[ParsedArticle], vectors: np.ndarray, step: StepFn) -> None:
        """Insert these articles; ``vectors`` holds one row per sentence, in order."""

    @abstractmethod
    def commit(self, step: StepFn) -> dict[str, int]:
        """Make everything visible at once; the counts after it."""

    @abstractmethod
    def abandon(self) -> None:
        """Drop everything the batch did."""


class Store(ABC):
    """A configured index: opens readers, starts batches, answers cheap questions about it."""

    name: str

    @abstractmethod
    def open(self, embedder: Embedder | None = None) -> Reader:
        """The current state, checked (against ``embedder``'s model when given)."""

    @abstractmethod
    def stamp(self) -> object:
        """A cheap token that changes when a new state is committed (asked every second or two)."""

    @abstractmethod
    def fingerprints(self) -> dict[str, str] | None:
        """Article id -> fingerprint of everything indexed (None when there is no index), without a model."""

    @abstractmethod
    def begin(self, embedder: Embedder, *, full: bool, partial: bool, wait: bool, step: StepFn) -> Batch:
        """Start a batch: holds the store's write lock until it is committed or abandoned.

        ``partial``: the batch changes some articles and keeps the rest, so it needs an index to
        start from (IndexNotFoundError when there is none)."""

    def embedding_cache_path(self) -> Any:
        """Where this store keeps its embedding cache (None: none)."""
        return None

    def describe(self) -> str:
        return self.name

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections."""


def admitted(articles: Mapping[int, ArticleRow], days: Mapping[int, dt.date | None], where: SearchFilter) -> set[int]:
    """The article ids ``where`` admits, from in-memory article tables."""
    return {i for i, a in articles.items() if where.admits(a, days.get(i))}


def check_model(recorded: Mapping[str, Any], embedder: Embedder, where: str) -> None:
    """IndexMismatchError unless ``where`` (an index) was built by ``embedder``'s model and backend
    (``recorded``: the name, fingerprint and dimension the index keeps)."""
    from ..embed import backend_of
    from ..errors import IndexMismatchError

    if recorded.get("sha256") == embedder.fingerprint and recorded.get("dimension") == embedder.dimension:
        return
    built = f"{recorded.get('name')!r} on the {backend_of(str(recorded.get('sha256') or ''))} backend"
    wanted = f"{embedder.name!r} on the {backend_of(embedder.fingerprint)} backend"
    if recorded.get("dimension") != embedder.dimension:
        built += f" (dimension {recorded.get('dimension')})"
        wanted += f" (dimension {embedder.dimension})"
    raise IndexMismatchError(
        f"{where} was built with model {built}, but newsbot is configured for {wanted}: rebuild it with "
        "`newsbot rebuild --full`, or set NEWSBOT_BACKEND (and NEWSBOT_MODEL) back to what built it")

