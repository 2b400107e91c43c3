"""Typed records passed between the stages of the pipeline.

Loading -> cleaning -> splitting -> embedding -> indexing -> retrieving -> choosing sentences ->
rendering. Every sentence keeps its article id and character offsets into the article text, so
every quoted sentence can be traced back to its place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Article:
    """One article as loaded from the corpus, with its text ready for splitting."""

    id: str
    title: str
    text: str
    source: str | None = None  # the outlet, e.g. "Motoring Research"
    url: str | None = None
    published: str | None = None  # ISO date, YYYY-MM-DD
    authors: tuple[str, ...] = ()
    path: str = ""  # where it came from, relative to the corpus folder (":LINE" for JSON Lines)
    fingerprint: str = ""  # sha256 of everything above: a change means re-embedding


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like block of an article's text, classified by the cleaner."""

    start: int
    end: int
    kind: str  # "body", "heading" or "boilerplate"
    reason: str = ""  # why it is not body text (for logs and tests)


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of an article: ``article.text[start:end] == text``."""

    article_id: str
    passage: int  # index of its passage within the article
    index: int  # index of the sentence within the article
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A run of consecutive body sentences (a paragraph, or part of a long one)."""

    article_id: str
    index: int
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class CorpusWarning:
    """A problem with one input file (or one line of it); the file or line is skipped."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source of an answer."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    link: str | None = None  # url that opens the article at the quoted sentence, where possible

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Quote:
    """A verbatim sentence of an answer, cited to one or more articles (``citations`` are n's)."""

    text: str
    citation: int  # the first citation number
    score: float
    sentence_id: int  # primary key of the sentence in the index
    article_id: str
    start: int
    end: int
    also_cited: tuple[int, ...] = ()  # the same sentence found in other articles
    #: Where the sentence holds what the question asks for (offsets into ``text``; index/highlight.py).
    answer_spans: tuple[tuple[int, int], ...] = ()

    @property
    def citations(self) -> tuple[int, ...]:
        return (self.citation, *self.also_cited)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citation": self.citation,
            "citations": list(self.citations),
            "score": round(self.score, 4),
            "article_id": self.article_id,
            "start": self.start,
            "end": self.end,
            "answer_spans": [list(sp) for sp in self.answer_spans],
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """The engine's reply to a question: 1-3 quotes with citations, or a decline."""

    question: str
    answered: bool
    confidence: float
    quotes: tuple[Quote, ...] = ()
    citations: tuple[Citation, ...] = ()
    message: str = ""  # the decline message when not answered
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "confidence": round(self.confidence, 4),
            "sentences": [q.to_json() for q in self.quotes],
            "citations": [c.to_json() for c in self.citations],
            **({"message": self.message} if self.message else {}),
        }


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    """An indexed article as listed by ``sources``."""

    id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    sentences: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PassageView:
    """The passage around a quoted sentence; ``text[hl_start:hl_end]`` is the sentence."""

    sentence_id: int
    article_id: str
    text: str
    hl_start: int
    hl_end: int
