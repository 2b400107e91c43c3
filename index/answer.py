"""From a question to a cited answer: hybrid retrieval, sentence scoring, choice and citation.

1. Dense (FAISS, cosine) and lexical (SQLite FTS5, BM25) candidates are pooled. The full-text
   search runs in a thread while the vectors are searched, and is capped by the number of
   sentences its terms match, so it stays cheap on a large archive.
2. Every pooled sentence gets the cheap features (cosine, BM25, coverage of the question's terms);
   the best 32 by those get the rest: the cosine and term coverage of the neighbourhood (the
   sentences around it), whether it adds words the question does not already contain (an answer
   must say something new), the answer type, shared phrases.
3. A logistic model turns the features into the probability that the sentence answers the
   question; the best one's probability is the answer's confidence. Below the threshold the engine
   declines. A question that says when ("this week", read against the day it is asked:
   index/when.py) prefers articles from then, and is declined when no article is from then.
4. Up to three sentences close to the best are quoted; a sentence that occurs in several articles
   is quoted once and cited to all of them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np

from .embed import Embedder
from .errors import ConfigError, QuestionError
from .highlight import UNANNOUNCED, answer_spans
from .records import Answer, Citation, Quote
from .stores.base import Reader, SearchFilter, SentenceRow
from .terms import STOPWORDS, TermStats, canon, members, raw_words, stem, terms, words
from .when import Window, question_window

log = logging.getLogger(__name__)

#: One fitted answer model per embedding backend (their vectors differ a little): ``<backend>.json``.
MODELS_DIR = Path(__file__).with_name("answer_models")
MODEL_FILE = MODELS_DIR / "torch.json"


def model_file(backend: str) -> Path:
    """The answer model fitted for ``backend``, or the torch backend's when none was fitted for it."""
    path = MODELS_DIR / f"{backend}.json"
    return path if path.is_file() else MODEL_FILE

#: The most sentences a question's full-text search may match (see Answerer.lexical_terms).
LEXICAL_POSTINGS = 4000

#: What being from the question's window ("this week": index/when.py) adds to a sentence's pre-ranking.
WINDOW_PRERANK = 0.25

#: Threads for the full-text searches that overlap the vector search (SQLite and FAISS release
#: the GIL). Shared by every snapshot's Answerer, so a reload starts no threads.
_LEXICAL_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="newsbot-fts")


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


#: Features of a candidate sentence, in the order of the ranking weights.
RANK_FEATURES = (
    "cos", "bm25", "ctx_cos", "coverage", "ctx_coverage", "novelty", "answer_type", "question_like", "short",
    "art_best", "art_votes", "art_mean3", "entities", "number_for_number_q", "entities_for_name_q", "lead",
    "rel_cos", "phrase", "in_window",
)
#: Features of a question's best candidate, for the confidence (does the corpus answer this at all?).
# (No feature here may depend on the corpus's size: "does the corpus know this word?" is a strong
# signal on a large corpus and noise on a small one, so only names the corpus never mentions count.)
# "numbers_missing": the question names a number (a year, an amount, a count) that the best
# candidate's article never mentions, so that article is about another year's or another figure's
# event. Article-level, so it means the same on a corpus of any size.
# (When the question says when, "this week", and no article is from then, Answerer.stale declines
# it before the confidence is consulted.)
_IN_WINDOW = RANK_FEATURES.index("in_window")
CONFIDENCE_FEATURES = ("z_top", "max_coverage", "max_ctx_coverage", "max_cos", "q_unknown_names", "numbers_missing")


@dataclass(frozen=True)
class AnswerModel:
    """Ranking weights (a listwise logistic model over candidates) and the confidence model (a
    logistic regression over the best candidate), fitted by scripts/fit_weights.py."""

    rank: np.ndarray
    conf: np.ndarray
    conf_bias: float
    threshold: float
    margin: float = 1.0  # further quotes score within this many logits of the best

    @classmethod
    def for_backend(cls, backend: str) -> AnswerModel:
        return cls.load(model_file(backend))

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> AnswerModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rank = data["rank"]
            conf = data["confidence"]
            if tuple(rank["features"]) != RANK_FEATURES or tuple(conf["features"]) != CONFIDENCE_FEATURES:
                raise ValueError("its features are not this version's")
            return cls(np.array(rank["weights"], dtype=np.float64), np.array(conf["weights"], dtype=np.float64),
                       float(conf["bias"]), float(data["threshold"]), float(data.get("margin", 1.0)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"the answer model {path} cannot be used ({e}): reinstall newsbot, "
                              "or refit it with scripts/fit_weights.py") from e


@dataclass
class Candidate:
    row: SentenceRow
    features: np.ndarray
    z: float = 0.0  # ranking score (logit)
    numbers_missing: float = 0.0  # 1 when the question has a number this sentence's article lacks
    out_of_window: float = 0.0  # 1 when the question says when and this sentence's article is from another time


@dataclass
class Ranked:
    """A question's candidates, scored and sorted, with the question-level confidence."""

    candidates: list[Candidate]
    confidence: float
    qfeatures: np.ndarray


class Answerer:
    """Answers questions from one :class:`Reader` (a view of the index) with one :class:`Embedder`."""

    def __init__(self, reader: Reader, embedder: Embedder, model: AnswerModel | None = None,
                 *, threshold: float | None = None, k_dense: int = 64, k_lexical: int = 64,
                 prerank: int = 32) -> None:
        self.store = reader
        self.embedder = embedder
        self.model = model or AnswerModel.load()
        self.threshold = self.model.threshold if threshold is None else threshold
        self.k_dense = k_dense
        self.k_lexical = k_lexical
        self.prerank = prerank

    @property
    def stats(self) -> TermStats:
        return self.store.term_stats

    def lexical_terms(self, qterms: Sequence[str], limit: int = 6) -> list[str]:
        """The question's terms worth a BM25 search: the rarest ones, none that is in most sentences.

        FTS5 scores every sentence that matches (about 3 us each here), so the terms' sentences are
        capped at :data:`LEXICAL_POSTINGS` in all: on a large archive the common words of a question
        would cost far more than they add to what the rare ones find.
        """
        df = self.stats.df
        cap = max(0.2 * self.stats.n, 50)
        chosen: list[str] = []
        total = 0
        for t in sorted((t for t in qterms if 0 < df.get(t, 0) <= cap), key=lambda t: df.get(t, 0)):
            if len(chosen) == limit or (chosen and total + df[t] > LEXICAL_POSTINGS):
                break
            chosen.append(t)
            total += df[t]
        return chosen

    def lexical(self, question: str, filters: SearchFilter = SearchFilter()) -> list[tuple[int, float]]:
        """The question's BM25 candidates (sentence id, score): needs no embedding, so
        :meth:`answer` runs it in a thread while the vectors are searched."""
        chosen = self.lexical_terms(terms(question))
        return self.store.lexical(chosen, self.k_lexical, filters) if chosen else []

    def candidates(self, question: str, qvec: np.ndarray, filters: SearchFilter = SearchFilter(),
                   lexical: Future[list[tuple[int, float]]] | None = None, *,
                   window: Window | None = None) -> tuple[list[Candidate], np.ndarray]:
        """Pooled dense and lexical candidates with their features, and the question's features.

        Two stages: every pooled sentence gets the cheap features (cosine, BM25, coverage of the
        question's terms); only the :attr:`prerank` best by cosine plus half the coverage get the
        rest (neighbourhood, novelty, answer type, shared phrases), which cost a look-up or a
        tokenisation each. The pre-ranking keeps the full ranking's choice for about 98% of the
        news-dev questions (scripts/fit_weights.py fits on what it keeps).

        ``window``: the dates the question's "this week" or "recently" refers to (index/when.py),
        from which articles are preferred.
        """
        stats = self.stats
        qterms = terms(question)
        # Weights by synonym group: "halted" in a sentence counts for "stopped" in the question.
        qweights: dict[str, float] = {}
        for t in qterms:
            qweights[canon(t)] = max(qweights.get(canon(t), 0.0), stats.idf(t))
        idf_total = sum(qweights.values()) or 1.0
        # A sentence's stored terms, looked up directly: each maps to the question's synonym key.
        q_key = {m: c for c in qweights for m in members(c)}
        dense = self.store.dense(qvec, self.k_dense, filters)
        lex = lexical.result() if lexical is not None else self.lexical(question, filters)
        ids = list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in lex]))
        rows = self.store.sentences(ids)
        ids = [i for i in ids if i in rows]
        q_names = {stem(w.lower()) for k, w in enumerate(raw_words(question)) if k > 0 and w[:1].isupper()}
        q_unknown_names = min(sum(1 for t in q_names if stats.df.get(t, 0) == 0), 3)
        if not ids:
            return [], np.array([0, 0, 0, 0, q_unknown_names, 0], dtype=np.float64)
        cos_of = dict(dense)
        need = [i for i in ids if i not in cos_of]
        if need:
            for i, v in zip(need, self.store.similarities(qvec, need)):
                cos_of[i] = float(v)

        # Stage 1, every pooled sentence: cosine, BM25 (distinct terms, tf = 1) and coverage.
        pool = [rows[i] for i in ids]
        cos_all = np.array([cos_of[r.id] for r in pool])
        matched = []
        bm25_all = np.zeros(len(pool))
        cov_all = np.zeros(len(pool))
        for k, r in enumerate(pool):
            s_terms = r.terms.split()
            m = {q_key[t] for t in s_terms if t in q_key}
            w = sum(qweights[c] for c in m)
            matched.append(m)
            bm25_all[k] = w * stats.tf_part(len(s_terms))
            cov_all[k] = w / idf_total
        by_article: dict[int, list[float]] = {}
        for r, c in zip(pool, cos_all):
            by_article.setdefault(r.article, []).append(float(c))
        most = max(len(v) for v in by_article.values())
        day = self.store.day_of
        in_window = np.zeros(len(pool))
        if window is not None:
            in_window[:] = [day(r.article) is not None and day(r.article) in window for r in pool]
        keep = np.argsort(-(cos_all + 0.5 * cov_all + WINDOW_PRERANK * in_window), kind="stable")[: self.prerank]

        # Stage 2, the kept sentences: their neighbourhoods and the costlier features.
        matched_of = {r.id: m for r, m in zip(pool, matched)}

        def matched_terms(row: SentenceRow) -> set[str]:
            m = matched_of.get(row.id)
            if m is None:
                m = matched_of[row.id] = {q_key[t] for t in row.terms.split() if t in q_key}
            return m

        cand_rows = [pool[k] for k in keep]
        neigh = self.store.neighbours(cand_rows, window=1)
        n_ids = [r.id for r in neigh.values() if r.id not in cos_of]
        if n_ids:
            for i, v in zip(n_ids, self.store.similarities(qvec, n_ids)):
                cos_of[i] = float(v)
        qwords = [stem(w) for w in words(question)]
        qword_set = set(qwords)
        q_ngrams = {tuple(qwords[i:i + n]) for n in (2, 3, 4) for i in range(len(qwords) - n + 1)}
        qtype = question_type(question)
        f = np.zeros((len(cand_rows), len(RANK_FEATURES)), dtype=np.float64)
        f[:, 0] = cos = cos_all[keep]
        f[:, 1] = bm25_all[keep] / max(bm25_all.max(), 1e-9)
        f[:, 3] = cov_all[keep]
        f[:, 16] = cos - cos_all.max()
        for k, (r, pk) in enumerate(zip(cand_rows, keep)):
            around = [a for a in (neigh.get((r.article, r.idx - 1)), neigh.get((r.article, r.idx + 1))) if a]
            ctx = matched[pk].union(*(matched_terms(a) for a in around))
            novelty, answer_type, ents, has_num = _novelty(r.text, qword_set, qtype)
            f[k, 2] = max([cos_of.get(a.id, -1.0) for a in around] + [cos[k]])
            f[k, 4] = sum(qweights[c] for c in ctx) / idf_total
            f[k, 5] = novelty
            f[k, 6] = answer_type
            f[k, 7] = 1.0 if r.text.rstrip("\"'”’ )").endswith("?") else 0.0
            f[k, 8] = 1.0 if len(r.text.split()) < 6 else 0.0
            arts = sorted(by_article[r.article], reverse=True)
            f[k, 9] = arts[0]
            f[k, 10] = len(arts) / most
            f[k, 11] = sum(arts[:3]) / len(arts[:3])
            f[k, 12] = ents
            f[k, 13] = has_num if qtype == "number" else 0.0
            f[k, 14] = ents if qtype == "name" else 0.0
            f[k, 15] = 1.0 / (1.0 + r.idx)
            f[k, 17] = _longest_shared_phrase(q_ngrams, r.text)
            f[k, 18] = in_window[pk]
        # Numbers (years, amounts, counts) are looked up in whole articles (FTS), only when the question has any.
        q_numbers = [t for t in qterms if any(ch.isdigit() for ch in t)]
        with_numbers = self.store.articles_mentioning({r.article for r in cand_rows}, q_numbers) if q_numbers else set()
        # An article of unknown date is not held against a question that says when.
        dated = [window is not None and day(r.article) is not None for r in cand_rows]
        cands = [Candidate(r, f[k], numbers_missing=float(bool(q_numbers) and r.article not in with_numbers),
                           out_of_window=float(dated[k] and not f[k, 18]))
                 for k, r in enumerate(cand_rows)]
        # z_top and numbers_missing come from the best candidate, once ranked (rank()).
        qf = np.array([0.0, cov_all.max(), f[:, 4].max(), cos_all.max(), q_unknown_names, 0.0])
        return cands, qf

    def rank(self, cands: list[Candidate], qf: np.ndarray) -> Ranked:
        """Score, sort, and compute the confidence that the articles answer the question."""
        if not cands:
            return Ranked([], 0.0, qf)  # nothing retrieved: nothing to be confident about
        zs = np.vstack([c.features for c in cands]) @ self.model.rank
        for c, z in zip(cands, zs):
            c.z = float(z)
        cands.sort(key=lambda c: c.z, reverse=True)
        qf = qf.copy()
        # Being from the question's week helps a sentence win, but is no evidence that it answers:
        # the confidence sees the best score without that part.
        qf[0] = cands[0].z - self.model.rank[_IN_WINDOW] * cands[0].features[_IN_WINDOW]
        qf[5] = cands[0].numbers_missing
        zc = float(self.model.conf @ qf + self.model.conf_bias)
        return Ranked(cands, 1.0 / (1.0 + math.exp(-zc)), qf)

    # -- answering ------------------------------------------------------------------------------

    def stale(self, window: Window | None, ranked: Ranked) -> bool:
        """The question says when ("this week") and no article is from then, while the best
        candidate's article is dated (outside it): whatever it says, it is about another time."""
        return (window is not None and bool(ranked.candidates) and bool(ranked.candidates[0].out_of_window)
                and not self.store.has_articles_between(window.start, window.end))

    def answer(self, question: str, *, filters: SearchFilter = SearchFilter(), asked_on: dt.date | None = None,
               max_chars: int = 500) -> Answer:
        """``asked_on``: the day the question is asked, which "this week" or "recently" in it refer
        to (index/when.py); None reads no time into the question."""
        q = clean_question(question, max_chars)
        window = question_window(q, asked_on)
        t0 = time.perf_counter()
        qvec = self.embedder.encode([q])[0]
        t1 = time.perf_counter()
        # The full-text search needs no vector: it runs on another core while the vectors are
        # searched (one thread; the encoder uses every core, so it is not overlapped with that).
        lexical = _LEXICAL_POOL.submit(self.lexical, q, filters)
        ranked = self.rank(*self.candidates(q, qvec, filters, lexical, window=window))
        t2 = time.perf_counter()
        timings = {"encode": (t1 - t0) * 1e3, "retrieve": (t2 - t1) * 1e3}
        if self.stale(window, ranked):
            newest = self.store.newest_day  # not None: the best candidate's article is dated
            return Answer(q, False, 0.0,
                          message=f"The articles don't say: the question asks about {window.phrase!r} "
                                  f"({window.start.isoformat()} to {window.end.isoformat()}), and none of them "
                                  f"is from then (the newest is from {newest}).",
                          timings_ms=timings)
        if not ranked.candidates or ranked.confidence < self.threshold:
            where = " matching those filters" if filters.active else ""
            return Answer(q, False, ranked.confidence,
                          message=f"The articles{where} don't say: nothing in them answers this question.",
                          timings_ms=timings)
        answer = self._compose(q, ranked)
        answer.timings_ms.update(timings)
        return answer

    def _cite_wire_copies(self, cands: Sequence[Candidate], chosen: list[tuple[int, list[int]]]) -> None:
        """Cite the wire copies of a quoted article (the same story under other outlets' URLs,
        recognised at indexing) that carry the quoted sentence, even when their copy of it is not
        among the candidates."""
        copies = {k: [a for a in self.store.wire_copies(cands[k].row.article) if a not in extra]
                  for k, extra in chosen}
        wanted = sorted({a for ids in copies.values() for a in ids})
        if not wanted:
            return
        texts = self.store.article_sentences(wanted)
        for k, extra in chosen:
            quote = cands[k].row.text
            for a in copies[k]:
                if any(_near_duplicate(quote, s.text) for s in texts.get(a, ())):
                    extra.append(a)

    def _compose(self, question: str, ranked: Ranked) -> Answer:
        cands = ranked.candidates
        top = cands[0].z
        zs = np.array([c.z for c in cands])
        probs = np.exp(zs - top)
        probs /= probs.sum()
        chosen: list[tuple[int, list[int]]] = []  # candidate index, other articles with the same sentence
        for k, c in enumerate(cands):
            if len(chosen) == 3 or top - c.z > 2 * self.model.margin:
                break
            # Another article's best sentence gets a wider margin: where articles disagree (or
            # corroborate), both are quoted and cited.
            other_article = all(cands[j].row.article != c.row.article for j, _ in chosen)
            if top - c.z > self.model.margin and not other_article:
                continue
            dup = next((x for x in chosen if _near_duplicate(cands[x[0]].row.text, c.row.text)), None)
            if dup is not None:
                if _same_sentence(cands[dup[0]].row.text, c.row.text) and c.row.article != cands[dup[0]].row.article \
                        and c.row.article not in dup[1]:
                    dup[1].append(c.row.article)
                continue
            chosen.append((k, []))
        # Later candidates may be copies (the same sentence in another outlet) of chosen ones: cite
        # them too. Copies score alike, so only the head of the list is worth comparing.
        for c in cands[:32]:
            for k, extra in chosen:
                first = cands[k].row
                if c.row.article != first.article and c.row.article not in extra and _same_sentence(first.text, c.row.text):
                    extra.append(c.row.article)
        self._cite_wire_copies(cands, chosen)
        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        quotes: list[Quote] = []

        def cite(article_rowid: int, sentence_text: str) -> int:
            if article_rowid not in numbers:
                a = self.store.article(article_rowid)
                numbers[article_rowid] = len(numbers) + 1
                citations.append(Citation(numbers[article_rowid], a.ext_id, a.title, a.source, a.url,
                                          a.published, fragment_link(a.url, sentence_text)))
            return numbers[article_rowid]

        qtype = question_type(question)
        for k, extra in chosen:
            row = cands[k].row
            n = cite(row.article, row.text)
            also = tuple(cite(a, row.text) for a in extra)
            ext = self.store.article(row.article).ext_id
            quotes.append(Quote(row.text, n, float(probs[k]), row.id, ext, row.start, row.end, also,
                                answer_spans(qtype, question, row.text)))
        return Answer(question, True, ranked.confidence, tuple(quotes), tuple(citations))


_VERBISH = frozenset(
    ["is", "are", "was", "were", "did", "does", "do", "has", "have", "had", "will", "would", "can", "could", "should", "may", "might", "happened", "happens", "caused", "causes", "made", "makes", "led", "leads", "prompted", "stopped", "halted", "forced"]
)


def question_type(question: str) -> str:
    """What kind of answer the question wants: "number", "date", "name" or "other"."""
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|big|large|tall|fast)\b|\bwhat (percent|percentage|number|amount)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|day|date|month|time)\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q) or re.search(r"\bwhat is the name\b", q):
        return "name"
    m = re.search(r"\b(which|what)\s+([\w'’-]+)", q)
    if m:
        nxt = m.group(2)
        # "What stopped ...", "What did ...": an event or a cause, not a name.
        if nxt in _VERBISH or (nxt.endswith("ed") and len(nxt) > 4):
            return "other"
        return "name"
    return "other"


_MONTHS = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\b(19|20)\d\d\b", re.I)


@lru_cache(maxsize=1 << 16)
def _token(t: str) -> tuple[str, bool, bool, bool]:
    """(stem of the lower-cased token, a stop word, capitalised, has a digit), computed once a token."""
    low = t.lower()
    return stem(low.replace("’", "'")), low in STOPWORDS, t[:1].isupper(), _HAS_DIGIT(t) is not None


@lru_cache(maxsize=1 << 13)
def _analysed(sentence: str) -> tuple[tuple[str, ...], tuple[tuple[str, str, bool, bool], ...]]:
    """A sentence tokenised once for every feature: the stems of all its words, and for each content
    word (token, stem, a capitalised word after the first, has a digit)."""
    stems: list[str] = []
    content: list[tuple[str, str, bool, bool]] = []
    first: dict[str, int] = {}
    for i, t in enumerate(raw_words(sentence)):
        st, stop, upper, digit = _token(t)
        stems.append(st)
        if not stop:
            content.append((t, st, upper and first.setdefault(t, i) > 0, digit))
        else:
            first.setdefault(t, i)
    return tuple(stems), tuple(content)


_HAS_DIGIT = re.compile(r"\d").search
_NUMBER_WORDS = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|hundreds?|thousands?|millions?|billions?|dozens?)\b", re.I
)


def _novelty(sentence: str, qstems: set[str], qtype: str) -> tuple[float, float, float, float]:
    """(share of content words not in the question, answer-type match, new names, new numbers)."""
    content = _analysed(sentence)[1]
    if not content:
        return 0.0, 0.0, 0.0, 0.0
    new = [c for c in content if c[1] not in qstems]
    novelty = len(new) / len(content)
    names = {c[0] for c in new if c[2]}
    has_num = 1.0 if any(c[3] for c in new) else 0.0
    if qtype == "number":
        typed = bool(has_num) or bool(_NUMBER_WORDS.search(sentence))
    elif qtype == "date":
        typed = bool(_MONTHS.search(sentence)) or bool(UNANNOUNCED.search(sentence))
    elif qtype == "name":
        typed = bool(names)
    else:
        typed = novelty > 0
    return novelty, 1.0 if typed else 0.0, min(len(names), 4) / 4, has_num


@lru_cache(maxsize=1 << 15)
def _word_set(sentence: str) -> frozenset[str]:
    return frozenset(words(sentence))


def _longest_shared_phrase(q_ngrams: set[tuple[str, ...]], sentence: str) -> float:
    """The longest run of 2-4 words the sentence shares with the question, scaled to 0-1."""
    if not q_ngrams:
        return 0.0
    ws = _analysed(sentence)[0]
    if q_ngrams.isdisjoint(zip(ws, ws[1:])):  # no shared pair of words (most sentences): C speed
        return 0.0
    for n in (4, 3):
        if any(tuple(ws[i:i + n]) in q_ngrams for i in range(len(ws) - n + 1)):
            return (n - 1) / 3
    return 1 / 3


def _same_sentence(a: str, b: str) -> bool:
    """The same words in the same order (case, spacing and punctuation aside): a copy, citable to both."""
    return _stemless_words(a) == _stemless_words(b)


@lru_cache(maxsize=1 << 15)
def _stemless_words(sentence: str) -> tuple[str, ...]:
    return tuple(words(sentence))


def _near_duplicate(a: str, b: str) -> bool:
    wa, wb = _word_set(a), _word_set(b)
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
