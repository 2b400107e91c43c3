"""From a question to a cited answer: hybrid retrieval, sentence scoring, choice and citation.

1. Dense (FAISS, cosine) and lexical (SQLite FTS5, BM25) candidates are pooled.
2. Each candidate sentence gets features: its cosine, its normalised BM25, the cosine and term
   coverage of its neighbourhood (the sentences around it), and whether it adds words the question
   does not already contain (an answer must say something new).
3. A logistic model turns the features into the probability that the sentence answers the
   question; the best one's probability is the answer's confidence. Below the threshold the engine
   declines.
4. Up to three sentences close to the best are quoted; a sentence that occurs in several articles
   is quoted once and cited to all of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np

from .embed import Embedder
from .errors import QuestionError
from .records import Answer, Citation, Quote
from .store import SentenceRow, Snapshot

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "according", "reportedly", "said", "says", "say", "week", "weeks", "year", "years", "day", "days", "recently", "recent", "new", "news", "what's", "who's", "it's"]
)
QUESTION_WORDS = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how"])


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def _stem(w: str) -> str:
    """A light stemmer for overlap features (FTS5 does the real Porter stemming for BM25)."""
    for suf in ("'s", "ies", "ing", "ed", "es", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            return w[: -len(suf)] + ("y" if suf == "ies" else "")
    return w


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every term quoted, so no user text is ever read as FTS syntax."""
    seen: list[str] = []
    for t in terms:
        t = t.replace('"', "")
        if t and t not in seen:
            seen.append(t)
    return " OR ".join(f'"{t}"' for t in seen)


def clean_question(question: str, max_chars: int) -> str:
    """The question with control characters removed; QuestionError when empty or too long."""
    if not isinstance(question, str):
        raise QuestionError("The question must be text.")
    q = "".join(" " if unicodedata.category(c).startswith("C") else c for c in question)
    q = " ".join(q.split())
    if not q:
        raise QuestionError("Please ask a question: it was empty.")
    if len(q) > max_chars:
        raise QuestionError(
            f"That question is {len(q):,} characters long; please keep it under {max_chars:,}."
        )
    return q


@dataclass(frozen=True)
class Weights:
    """The answer model: logistic regression over the features below (fitted on news-dev)."""

    bias: float = -7.0
    cos: float = 6.0
    bm25: float = 1.5
    ctx_cos: float = 1.0
    coverage: float = 3.0
    ctx_coverage: float = 1.0
    novelty: float = 1.0
    answer_type: float = 0.5
    question_like: float = -2.0
    short: float = -1.0
    threshold: float = 0.30

    FEATURES = ("cos", "bm25", "ctx_cos", "coverage", "ctx_coverage", "novelty", "answer_type",
                "question_like", "short")

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, f) for f in self.FEATURES], dtype=np.float64)


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    @property
    def active(self) -> bool:
        return bool(self.source or self.since or self.until)


@dataclass
class Candidate:
    row: SentenceRow
    features: np.ndarray
    prob: float = 0.0


class Answerer:
    """Answers questions from one :class:`Snapshot` with one :class:`Embedder`."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder, weights: Weights = DEFAULT_WEIGHTS,
                 *, threshold: float | None = None, k_dense: int = 64, k_lexical: int = 64) -> None:
        self.snap = snapshot
        self.embedder = embedder
        self.weights = weights
        self.threshold = weights.threshold if threshold is None else threshold
        self.k_dense = k_dense
        self.k_lexical = k_lexical
        self._idf_cache: dict[str, float] = {}

    # -- features -------------------------------------------------------------------------------

    def _idf(self, terms: Sequence[str]) -> dict[str, float]:
        missing = [t for t in terms if t not in self._idf_cache]
        if missing:
            df = self.snap.term_doc_freq([f'"{t}"' for t in missing])
            n = max(self.snap.total_sentences, 1)
            for t in missing:
                d = df[f'"{t}"']
                self._idf_cache[t] = math.log(1 + (n - d + 0.5) / (d + 0.5))
        return {t: self._idf_cache[t] for t in terms}

    def _allowed_articles(self, filters: Filters) -> set[int] | None:
        if not filters.active:
            return None
        out = set()
        src = (filters.source or "").strip().lower()
        for a in self.snap.articles():
            if src and src not in (a.source or "").lower():
                continue
            if filters.since or filters.until:
                if not a.published:
                    continue
                d = dt.date.fromisoformat(a.published)
                if filters.since and d < filters.since:
                    continue
                if filters.until and d > filters.until:
                    continue
            out.add(a.id)
        return out

    def candidates(self, question: str, qvec: np.ndarray, filters: Filters = Filters()) -> list[Candidate]:
        """Pooled dense and lexical candidates with their features."""
        qterms = list(dict.fromkeys(content_words(question)))
        match = fts_query(qterms)
        allowed = self._allowed_articles(filters)
        k_d, k_l = self.k_dense, self.k_lexical
        if allowed is not None:
            k_d = k_l = max(self.k_dense * 16, 1024)
        dense = self.snap.dense(qvec, k_d)
        lexical = self.snap.lexical(match, k_l)
        ids = list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in lexical]))
        rows = self.snap.sentences(ids)
        if allowed is not None:
            ids = [i for i in ids if i in rows and rows[i].article in allowed][: self.k_dense + self.k_lexical]
        else:
            ids = [i for i in ids if i in rows]
        if not ids:
            return []
        cos_of = dict(dense)
        need_cos = [i for i in ids if i not in cos_of]
        if need_cos:
            vecs = self.snap.reconstruct(need_cos)
            for i, v in zip(need_cos, vecs @ qvec):
                cos_of[i] = float(v)
        bm = dict(lexical)
        need_bm = [i for i in ids if i not in bm]
        if need_bm and match:
            bm.update(self.snap.lexical_for(match, need_bm))
        bm_max = max([bm.get(i, 0.0) for i in ids] + [1e-9])

        cand_rows = [rows[i] for i in ids]
        neigh = self.snap.neighbours(cand_rows, window=1)
        neigh_ids = [r.id for r in neigh.values()]
        neigh_cos = dict(zip(neigh_ids, (self.snap.reconstruct(neigh_ids) @ qvec).tolist())) if neigh_ids else {}

        idf = self._idf(qterms) if qterms else {}
        idf_total = sum(idf.values()) or 1.0
        qstems = {_stem(t): idf[t] for t in qterms}
        qword_set = set(words(question))
        qtype = _question_type(question)

        out = []
        for r in cand_rows:
            around = [neigh.get((r.article, r.idx + d)) for d in (-1, 1)]
            around = [a for a in around if a is not None]
            s_stems = {_stem(w) for w in content_words(r.text)}
            ctx_stems = set(s_stems)
            for a in around:
                ctx_stems.update(_stem(w) for w in content_words(a.text))
            coverage = sum(v for t, v in qstems.items() if t in s_stems) / idf_total
            ctx_coverage = sum(v for t, v in qstems.items() if t in ctx_stems) / idf_total
            ctx_cos = max([neigh_cos.get(a.id, -1.0) for a in around] + [cos_of[r.id]])
            novelty, answer_type = _novelty(r.text, qword_set, qtype)
            n_words = len(r.text.split())
            feats = np.array([
                cos_of[r.id],
                bm.get(r.id, 0.0) / bm_max,
                ctx_cos,
                coverage,
                ctx_coverage,
                novelty,
                answer_type,
                1.0 if r.text.rstrip("\"'”’ )").endswith("?") else 0.0,
                1.0 if n_words < 6 else 0.0,
            ])
            out.append(Candidate(r, feats))
        return out

    def score(self, cands: list[Candidate]) -> None:
        if not cands:
            return
        w = self.weights.vector()
        z = np.vstack([c.features for c in cands]) @ w + self.weights.bias
        probs = 1.0 / (1.0 + np.exp(-z))
        for c, p in zip(cands, probs):
            c.prob = float(p)

    # -- answering ------------------------------------------------------------------------------

    def answer(self, question: str, *, filters: Filters = Filters(), max_chars: int = 500) -> Answer:
        q = clean_question(question, max_chars)
        t0 = time.perf_counter()
        qvec = self.embedder.encode([q])[0]
        t1 = time.perf_counter()
        cands = self.candidates(q, qvec, filters)
        self.score(cands)
        cands.sort(key=lambda c: c.prob, reverse=True)
        t2 = time.perf_counter()
        timings = {"encode": (t1 - t0) * 1e3, "retrieve": (t2 - t1) * 1e3}
        if not cands or cands[0].prob < self.threshold:
            conf = cands[0].prob if cands else 0.0
            where = " matching those filters" if filters.active else ""
            return Answer(q, False, conf, message=f"The articles{where} don't say: nothing in them answers this question.",
                          timings_ms=timings)
        answer = self._compose(q, cands)
        answer.timings_ms.update(timings)
        return answer

    def _compose(self, question: str, cands: list[Candidate]) -> Answer:
        top = cands[0].prob
        chosen: list[tuple[Candidate, list[int]]] = []  # candidate, extra article rowids
        for c in cands:
            if len(chosen) == 3:
                break
            if chosen and (c.prob < self.threshold or c.prob < top * 0.6):
                break
            dup = next((x for x in chosen if _near_duplicate(x[0].row.text, c.row.text)), None)
            if dup is not None:
                if c.row.article != dup[0].row.article and c.row.article not in dup[1]:
                    dup[1].append(c.row.article)
                continue
            chosen.append((c, []))
        # Later candidates may be copies (same sentence, other outlet) of chosen ones: cite them too.
        for c in cands[len(chosen):]:
            for x in chosen:
                if c.row.article != x[0].row.article and c.row.article not in x[1] and _near_duplicate(x[0].row.text, c.row.text):
                    x[1].append(c.row.article)
        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        quotes: list[Quote] = []

        def cite(article_rowid: int, sentence_text: str) -> int:
            if article_rowid not in numbers:
                a = self.snap.article(article_rowid)
                numbers[article_rowid] = len(numbers) + 1
                citations.append(Citation(numbers[article_rowid], a.ext_id, a.title, a.source, a.url,
                                          a.published, fragment_link(a.url, sentence_text)))
            return numbers[article_rowid]

        for c, extra in chosen:
            n = cite(c.row.article, c.row.text)
            also = tuple(cite(a, c.row.text) for a in extra)
            ext = self.snap.article(c.row.article).ext_id
            quotes.append(Quote(c.row.text, n, c.prob, c.row.id, ext, c.row.start, c.row.end, also))
        return Answer(question, True, top, tuple(quotes), tuple(citations))


def _question_type(question: str) -> str:
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|big|large|tall|fast)\b|\bwhat (percent|percentage|number|amount)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|day|date|month|time)\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b|\bwhich (person|man|woman|company|country|city|state|team|player)\b", q):
        return "name"
    if re.search(r"\b(which|what)\b", q):
        return "name"
    return "other"


_MONTHS = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\b(19|20)\d\d\b", re.I)


def _novelty(sentence: str, qwords: set[str], qtype: str) -> tuple[float, float]:
    """(share of the sentence's content words not in the question, answer-type match)."""
    toks = _WORD.findall(sentence)
    content = [t for t in toks if t.lower() not in STOPWORDS]
    if not content:
        return 0.0, 0.0
    qstems = {_stem(w) for w in qwords}
    new = [t for t in content if _stem(t.lower()) not in qstems]
    novelty = len(new) / len(content)
    if qtype == "number":
        typed = any(any(ch.isdigit() for ch in t) for t in new) or bool(
            re.search(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|dozen)\b", sentence, re.I))
    elif qtype == "date":
        typed = bool(_MONTHS.search(sentence))
    elif qtype == "name":
        typed = any(t[0].isupper() for t in new[1:] if t) or any(t[0].isupper() for t in new if t and sentence.find(t) > 0)
    else:
        typed = novelty > 0
    return novelty, 1.0 if typed else 0.0


def _near_duplicate(a: str, b: str) -> bool:
    wa, wb = set(words(a)), set(words(b))
    if not wa or not wb:
        return a.strip() == b.strip()
    return len(wa & wb) / len(wa | wb) >= 0.8


def fragment_link(url: str | None, sentence: str) -> str | None:
    """``url`` with a text fragment (``#:~:text=start,end``) that scrolls to and highlights the quote."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    toks = sentence.split()

    def enc(ws: list[str]) -> str:
        # "-" and "," have meanings inside a text fragment, so they are escaped too.
        return quote(" ".join(ws), safe="").replace("-", "%2D")

    frag = enc(toks) if len(toks) <= 8 else f"{enc(toks[:5])},{enc(toks[-3:])}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, f":~:text={frag}"))
