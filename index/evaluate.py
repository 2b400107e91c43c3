"""``newsbot eval``: answer quality on a question set, beside two baselines over the same sentences.

Metrics (see ../shared/eval/README.md): a quoted sentence is correct when it contains a gold answer
(case- and quote-insensitive), or at least 80% of the gold answer's words longer than two letters.

- acc@1 / acc@3: over the answerable questions, the first / first three quoted sentences; a
  question the engine declines counts as wrong (the strict reading).
- rank acc@1: the same, ignoring the decline threshold (the engine's best sentence), comparable to
  the baselines, which never decline.
- answer rate: answerable questions answered; decline rate: unanswerable questions declined.
- Baselines: BM25 alone (SQLite FTS5 over the same sentences) and the model's cosine alone (exact
  FAISS search over the same vectors), each quoting its top sentence(s).
- Latency of a warm ``ask``, beside the floor: encoding the question plus an exact FAISS search.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import NewsbotError
from .terms import content_words
from .when import parse_day, question_window

log = logging.getLogger(__name__)

_QUOTES = re.compile(r"[\"'“”‘’`´]")


def _norm(text: str) -> str:
    return " ".join(_QUOTES.sub("", text.lower()).split())


def is_correct(sentence: str, answers: Sequence[str]) -> bool:
    """Does ``sentence`` contain one of the gold ``answers`` (the eval set's rule)?"""
    s = _norm(sentence)
    s_words = set(re.findall(r"\w+", s))
    for a in answers:
        a_norm = _norm(a)
        if a_norm and a_norm in s:
            return True
        long_words = [w for w in re.findall(r"\w+", a_norm) if len(w) > 2]
        if long_words and sum(w in s_words for w in long_words) / len(long_words) >= 0.8:
            return True
    return False


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    answerable: bool
    asked_on: dt.date | None = None  # the record's "date": "this week" in the question means that week


def _asked_on(value: object) -> dt.date | None:
    """A question record's date ("2024-05-07", "2024/05/07", or with a time after it), read as
    articles' dates are (index/when.py), but a bad one is an error, not an unknown date."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise TypeError(f"its date must be text, not {value!r}")
    day = parse_day(value)
    if day is None:
        raise ValueError(f"its date {value!r} is not a date like 2024-05-07")
    return day


def load_questions(path: Path) -> list[Question]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
                out.append(Question(str(o["id"]), o["question"], list(o.get("answers") or []),
                                    bool(o.get("answerable", True)), _asked_on(o.get("date"))))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise NewsbotError(f"{path}:{lineno}: not a question record ({e})") from e
    return out


@dataclass
class SystemScore:
    name: str
    top1: int = 0
    top3: int = 0
    answerable: int = 0

    def row(self) -> dict[str, float]:
        n = max(self.answerable, 1)
        return {"acc@1": self.top1 / n, "acc@3": self.top3 / n}


@dataclass
class EvalResult:
    n_questions: int = 0
    n_answerable: int = 0
    n_unanswerable: int = 0
    engine_acc1: float = 0.0
    engine_acc3: float = 0.0
    engine_rank_acc1: float = 0.0
    engine_rank_acc3: float = 0.0
    answer_rate: float = 0.0
    decline_rate: float = 0.0
    bm25: dict[str, float] = field(default_factory=dict)
    cosine: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    floor_ms: dict[str, float] = field(default_factory=dict)
    sentences: int = 0
    articles: int = 0
    threshold: float = 0.0
    #: Questions asked on their record's date that say when ("this week": index/when.py), and the
    #: answer and decline rates had every question been asked with no date.
    with_window: int = 0
    dates_used: bool = True
    undated_answer_rate: float = 0.0
    undated_decline_rate: float = 0.0
    undated_acc1: float = 0.0  # strict (declines count as wrong)
    extra_quotes: int = 0  # second and third quotes of answerable questions
    extra_correct_share: float = 0.0  # the share of them that contain a gold answer
    per_question: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> str:
        pct = lambda x: f"{100 * x:5.1f}%"  # noqa: E731
        lines = [
            f"questions: {self.n_questions} ({self.n_answerable} answerable, {self.n_unanswerable} out of corpus); "
            f"index: {self.articles} articles, {self.sentences} sentences; threshold {self.threshold:.2f}",
            "",
            f"{'system':<28}{'acc@1':>8}{'acc@3':>8}",
            f"{'newsbot (declines = wrong)':<28}{pct(self.engine_acc1):>8}{pct(self.engine_acc3):>8}",
            f"{'newsbot (best sentence)':<28}{pct(self.engine_rank_acc1):>8}{pct(self.engine_rank_acc3):>8}",
            f"{'BM25 alone':<28}{pct(self.bm25['acc@1']):>8}{pct(self.bm25['acc@3']):>8}",
            f"{'cosine alone':<28}{pct(self.cosine['acc@1']):>8}{pct(self.cosine['acc@3']):>8}",
            "",
            f"answer rate on answerable questions: {pct(self.answer_rate)}",
            f"decline rate on out-of-corpus questions: {pct(self.decline_rate)}",
            f"second and third quotes: {self.extra_quotes}, of which correct: {pct(self.extra_correct_share).strip()}",
            (f"{self.with_window} questions say when (\"this week\", \"recently\") and were read against their "
             f"date; asked with no date, acc@1 (declines = wrong) and the rates would be "
             f"{pct(self.undated_acc1).strip()}, {pct(self.undated_answer_rate).strip()} and "
             f"{pct(self.undated_decline_rate).strip()}" if self.with_window else
             "no question says when (\"this week\") on a date" if self.dates_used else
             "the questions' dates were ignored (--ignore-dates)"),
            f"warm ask latency: p50 {self.latency_ms['p50']:.1f} ms, p95 {self.latency_ms['p95']:.1f} ms; "
            f"floor (encode + exact FAISS search): p50 {self.floor_ms['p50']:.1f} ms, p95 {self.floor_ms['p95']:.1f} ms; "
            f"ratio of p50s {self.latency_ms['p50'] / max(self.floor_ms['p50'], 1e-9):.2f}",
        ]
        return "\n".join(lines)


def _pcts(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    if not xs:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    return {"p50": statistics.median(xs), "p95": xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))],
            "mean": statistics.fmean(xs)}


def evaluate(engine: Any, questions: list[Question], *, progress: bool = False, use_dates: bool = True) -> EvalResult:
    """Answer every question with ``engine`` and with both baselines; score them all.

    Each question is asked on its record's date (``use_dates``), as a user asks on a given day: a
    question that says "this week" means that week. The questions that say when are asked a second
    time with no date, for the rates without that reading.
    """
    snap = engine._state.snapshot  # noqa: SLF001 - the baselines read the same snapshot
    res = EvalResult(n_questions=len(questions), sentences=snap.total_sentences,
                     articles=snap.info.articles, threshold=engine._state.answerer.threshold)  # noqa: SLF001
    bm25, cosine = SystemScore("bm25"), SystemScore("cosine")
    e_top1 = e_top3 = r_top1 = r_top3 = answered = declined = undated_answered = undated_declined = undated_top1 = 0
    res.dates_used = use_dates
    latencies: list[float] = []
    floors: list[float] = []
    # Warm up: the first call pays for lazy initialisation.
    engine.ask(questions[0].question if questions else "warm up")
    for i, q in enumerate(questions):
        asked_on = q.asked_on if use_dates else None
        window = question_window(q.question, asked_on)
        t0 = time.perf_counter()
        ans = engine.ask(q.question, asked_on=asked_on)
        latencies.append((time.perf_counter() - t0) * 1e3)
        undated = engine.ask(q.question) if window is not None else ans
        res.with_window += window is not None
        t0 = time.perf_counter()
        qvec = engine.embedder.encode([q.question])[0]
        dense = snap.dense(qvec, 10)
        floors.append((time.perf_counter() - t0) * 1e3)
        lex = snap.lexical(list(dict.fromkeys(content_words(q.question))), 3)
        # The engine's ranking with the threshold ignored.
        answerer = engine._state.answerer  # noqa: SLF001
        ranked = [c.row.text for c in answerer.rank(*answerer.candidates(q.question, qvec, window=window)).candidates]
        texts = snap.sentences([i for i, _ in dense[:3]] + [i for i, _ in lex[:3]])
        dense_t = [texts[i].text for i, _ in dense[:3] if i in texts]
        lex_t = [texts[i].text for i, _ in lex[:3] if i in texts]
        quoted = [x.text for x in ans.quotes]
        rec: dict[str, Any] = {"id": q.id, "question": q.question, "answerable": q.answerable,
                               "answered": ans.answered, "confidence": round(ans.confidence, 4),
                               "quotes": quoted[:3], "window": window.phrase if window else None}
        if q.answerable:
            res.n_answerable += 1
            for sc, got in ((bm25, lex_t), (cosine, dense_t)):
                sc.answerable += 1
                sc.top1 += bool(got) and is_correct(got[0], q.answers)
                sc.top3 += any(is_correct(t, q.answers) for t in got[:3])
            ok1 = bool(quoted) and is_correct(quoted[0], q.answers)
            ok3 = any(is_correct(t, q.answers) for t in quoted[:3])
            e_top1 += ok1
            e_top3 += ok3
            r_top1 += bool(ranked) and is_correct(ranked[0], q.answers)
            r_top3 += any(is_correct(t, q.answers) for t in ranked[:3])
            answered += ans.answered
            undated_answered += undated.answered
            undated_top1 += bool(undated.quotes) and is_correct(undated.quotes[0].text, q.answers)
            rec.update(correct1=ok1, correct3=ok3, best=ranked[0] if ranked else None,
                       best_correct=bool(ranked) and is_correct(ranked[0], q.answers),
                       extra_correct=[is_correct(t, q.answers) for t in quoted[1:3]])
        else:
            res.n_unanswerable += 1
            declined += not ans.answered
            undated_declined += not undated.answered
        res.per_question.append(rec)
        if progress and (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(questions)} questions", file=sys.stderr)
    n = max(res.n_answerable, 1)
    res.engine_acc1, res.engine_acc3 = e_top1 / n, e_top3 / n
    res.engine_rank_acc1, res.engine_rank_acc3 = r_top1 / n, r_top3 / n
    res.answer_rate = answered / n
    res.decline_rate = declined / max(res.n_unanswerable, 1)
    res.undated_answer_rate = undated_answered / n
    res.undated_decline_rate = undated_declined / max(res.n_unanswerable, 1)
    res.undated_acc1 = undated_top1 / n
    res.bm25, res.cosine = bm25.row(), cosine.row()
    res.latency_ms, res.floor_ms = _pcts(latencies), _pcts(floors)
    extra = [ok for r in res.per_question for ok in r.get("extra_correct", ())]
    res.extra_quotes, res.extra_correct_share = len(extra), (sum(extra) / len(extra) if extra else 0.0)
    return res


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """acc@1, acc@3 (declines = wrong), answer and decline rates, and the share of second and third
    quotes that are correct, from :attr:`EvalResult.per_question` records (of one or several runs)."""
    ans = [r for r in records if r["answerable"]]
    ooc = [r for r in records if not r["answerable"]]
    extra = [ok for r in ans for ok in r.get("extra_correct", ())]

    def mean(xs: list[bool]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    return {"acc@1": mean([r["correct1"] for r in ans]), "acc@3": mean([r["correct3"] for r in ans]),
            "answered": mean([r["answered"] for r in ans]), "declined": mean([not r["answered"] for r in ooc]),
            "extra_quotes": len(extra), "extra_correct": mean(extra), "answerable": len(ans), "out_of_corpus": len(ooc)}


def eval_index_dir(settings: Settings, articles: Path) -> Path:
    """Where the index of an eval corpus lives by default: data/eval-<hash of the file's path>."""
    key = hashlib.sha256(str(articles.resolve()).encode()).hexdigest()[:12]
    return settings.index_dir.parent / f"eval-{key}"


def main(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .embed import load_embedder
    from .engine import Engine
    from .loaders import load_corpus
    from .stores.build import build_index

    index_dir = args.index or eval_index_dir(settings, args.articles)
    settings = replace(settings, index_dir=index_dir)
    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    embedder = load_embedder(settings)
    loaded = load_corpus(args.articles)
    report = build_index(index_dir, loaded, embedder, corpus_dir=args.articles,
                         progress=lambda d, t: print(f"  embedding {d}/{t}", file=sys.stderr) if t and d % 8192 < 512 else None)
    print(report.summary(), file=sys.stderr)
    engine = Engine.open(settings, embedder=embedder)
    honest = None
    if len(questions) >= MIN_REFIT_QUESTIONS and not args.ignore_dates:
        from .fit import honest_scores

        honest = honest_scores(engine, questions, progress=True)
        print(honest_report(honest))
        print()
    res = evaluate(engine, questions, progress=True, use_dates=not args.ignore_dates)
    print(("With the shipped answer model (fitted on news-dev: in-sample when these are news-dev's questions):\n"
           if honest else "") + res.report())
    if args.json:
        out = {**res.__dict__, "honest": honest}
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


#: Fewer questions than this are too few to refit the answer model on part of them.
MIN_REFIT_QUESTIONS = 40


def honest_report(honest: dict[str, dict[str, Any]]) -> str:
    """The held-out and cross-validated lines of :func:`index.fit.honest_scores`."""
    h, cv = honest["held_out"], honest["cross_validated"]

    def line(name: str, d: dict[str, Any]) -> str:
        return (f"{name:<34}acc@1 {100 * d['acc@1']:5.1f}%  acc@3 {100 * d['acc@3']:5.1f}%  answered "
                f"{100 * d['answered']:5.1f}%  declined {100 * d['declined']:5.1f}%  extra quotes correct "
                f"{100 * d['extra_correct']:5.1f}% of {d['extra_quotes']}")

    dates = h["test_dates"]
    return "\n".join([
        "Scores of models that never saw the questions they answer (declines = wrong):",
        line("held out (later weeks)", h),
        line("5-fold cross-validated", cv),
        f"held out: fitted on {h['train']} questions, asked {h['test']}: answerable ones of {dates['answerable']}, "
        f"out-of-corpus ones of {dates['out_of_corpus']}",
    ])
