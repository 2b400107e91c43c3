"""Fitting the answer model (index/answer_models/<backend>.json), and the splits that score it honestly.

Used by scripts/fit_weights.py (which writes the model) and scripts/eval_newsdev.py (which scores
models fitted without the questions they are scored on, through the engine itself).

1. Every question's candidate sentences and their features come from the engine
   (:meth:`index.answer.Answerer.candidates`), so fitting and serving compute the same features.
2. Ranking: a listwise logistic model (softmax over a question's candidates; the target spreads
   over the candidates that contain a gold answer, by the eval rule), L2-regularised, L-BFGS.
3. Confidence: a logistic regression over the best candidate and the question's features, whose
   target is "the corpus answers this question" (the question set's ``answerable``).
4. The decline threshold: the highest confidence that still answers ``answer_rate`` of the
   answerable training questions.

Each question is asked on its record's ``date``: one that says "this week" with no article from
then is declined by a rule (Answerer.stale), so it is scored as declined and left out of the
confidence's fit.

Splits: :func:`chronological_split` (fitted on the earlier weeks, scored on the later ones: the
headline, since a deployed model only ever meets questions asked after it was fitted) and
:func:`folds` (5-fold cross-validation, folds by question).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .answer import CONFIDENCE_FEATURES as _CONFIDENCE
from .answer import RANK_FEATURES, Answerer, AnswerModel
from .evaluate import Question, is_correct
from .stores.base import Reader
from .when import question_window

_IN_WINDOW = RANK_FEATURES.index("in_window")


@dataclass(frozen=True)
class FitParams:
    answer_rate: float = 0.88  # share of answerable training questions to answer
    l2: float = 5.0  # L2 regularisation of the ranking model
    conf_l2: float = 5.0  # L2 regularisation of the confidence model
    margin: float = 1.0  # further quotes within this many logits of the best


@dataclass(frozen=True)
class QuestionData:
    """One question's candidates as the engine sees them."""

    question: Question
    x: np.ndarray  # (candidates, rank features)
    y: np.ndarray  # 1 where the candidate contains a gold answer
    qf: np.ndarray  # the question's confidence features (the best candidate's filled in by the model)
    missing: np.ndarray  # (candidates, 2): numbers_missing, out_of_window
    empty_window: bool  # the question says when, and no article is from then


def collect(reader: Reader, answerer: Answerer, questions: Sequence[Question]) -> list[QuestionData]:
    data = []
    for q in questions:
        window = question_window(q.question, q.asked_on)
        cands, qf = answerer.candidates(q.question, answerer.embedder.encode([q.question])[0], window=window)
        x = np.vstack([c.features for c in cands]) if cands else np.zeros((0, len(RANK_FEATURES)))
        y = np.array([q.answerable and is_correct(c.row.text, q.answers) for c in cands], dtype=float)
        missing = np.array([[c.numbers_missing, c.out_of_window] for c in cands], dtype=float).reshape(-1, 2)
        empty = window is not None and not reader.has_articles_between(window.start, window.end)
        data.append(QuestionData(q, x, y, qf, missing, empty))
    return data


def fit_listwise(xs: list[np.ndarray], ys: list[np.ndarray], l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    allx = np.vstack(xs)
    mu, sd = allx.mean(0), allx.std(0) + 1e-9
    xs = [(x - mu) / sd for x in xs]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, y in zip(xs, ys):
            z = x @ w
            e = np.exp(z - z.max())
            p = e / e.sum()
            t = y * e / (y * e).sum()
            total -= np.log((y * e).sum()) - np.log(e.sum())
            grad += x.T @ (p - t)
        return total + 0.5 * l2 * w @ w, grad + l2 * w

    w = minimize(loss, np.zeros(xs[0].shape[1]), jac=True, method="L-BFGS-B").x
    return w / sd  # a shift per question does not change a softmax


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs = (x - mu) / sd

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = p[:-1], p[-1]
        pr = 1 / (1 + np.exp(-(xs @ w + b)))
        nll = -(y * np.log(pr + 1e-12) + (1 - y) * np.log(1 - pr + 1e-12)).sum()
        return nll + 0.5 * l2 * w @ w, np.append(xs.T @ (pr - y) + l2 * w, (pr - y).sum())

    p = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    w = p[:-1] / sd
    return w, float(p[-1] - w @ mu)


def stale(d: QuestionData, rank: np.ndarray) -> bool:
    """As Answerer.stale: no article from the question's window, and the best candidate is dated."""
    return d.empty_window and bool(len(d.x)) and bool(d.missing[int(np.argmax(d.x @ rank)), 1])


def question_features(d: QuestionData, rank: np.ndarray) -> np.ndarray:
    """As Answerer.rank: the question's features with its best candidate's filled in."""
    qf = d.qf.copy()
    if len(d.x):
        best = int(np.argmax(d.x @ rank))
        qf[0] = float(d.x[best] @ rank - rank[_IN_WINDOW] * d.x[best, _IN_WINDOW])  # z_top without in_window
        qf[5] = d.missing[best, 0]
    return qf


def fit(data: Sequence[QuestionData], params: FitParams = FitParams()) -> AnswerModel:
    ranked = [d for d in data if d.y.sum() > 0]
    rank = fit_listwise([d.x for d in ranked], [d.y for d in ranked], params.l2)
    kept = [d for d in data if not stale(d, rank)]
    qx = np.array([question_features(d, rank) for d in kept])
    qy = np.array([d.question.answerable for d in kept], dtype=float)
    cw, cb = fit_logistic(qx, qy, params.conf_l2)
    conf = 1 / (1 + np.exp(-(qx @ cw + cb)))
    threshold = float(np.quantile(conf[qy == 1], 1 - params.answer_rate))
    return AnswerModel(rank, cw, cb, threshold, params.margin)


def score(model: AnswerModel, data: Sequence[QuestionData]) -> dict[str, float]:
    """The first quote's accuracy as the fitted model ranks and declines (no composition)."""
    rank_ok, strict_ok, answered, declined = [], [], [], []
    for d in data:
        conf = 0.0
        if len(d.x) and not stale(d, model.rank):
            conf = float(1 / (1 + np.exp(-(model.conf @ question_features(d, model.rank) + model.conf_bias))))
        ok = bool(len(d.x)) and bool(d.y[int(np.argmax(d.x @ model.rank))])
        if d.question.answerable:
            rank_ok.append(ok)
            answered.append(conf >= model.threshold)
            strict_ok.append(ok and conf >= model.threshold)
        else:
            declined.append(conf < model.threshold)
    return {"rank_acc1": float(np.mean(rank_ok)) if rank_ok else float("nan"),
            "strict_acc1": float(np.mean(strict_ok)) if strict_ok else float("nan"),
            "answer_rate": float(np.mean(answered)) if answered else float("nan"),
            "decline_rate": float(np.mean(declined)) if declined else float("nan")}


def chronological_split(questions: Sequence[Question], test_share: float = 0.3) -> tuple[list[int], list[int]]:
    """(train, test) indices: for answerable and out-of-corpus questions apart (their dates differ by
    years here), the questions of the latest weeks, about ``test_share`` of each, are the test set;
    a week is never split. Questions with no date go to training."""
    train, test = [], []
    for kind in (True, False):
        idx = [i for i, q in enumerate(questions) if q.answerable is kind]
        dated = sorted((i for i in idx if questions[i].asked_on), key=lambda i: questions[i].asked_on)  # type: ignore[arg-type, return-value]
        train += [i for i in idx if not questions[i].asked_on]
        if not dated:
            continue
        cut = dated[min(len(dated) - 1, int(round(len(dated) * (1 - test_share))))]
        cut_week = _week(questions[cut].asked_on)  # type: ignore[arg-type]
        for i in dated:
            (test if _week(questions[i].asked_on) >= cut_week else train).append(i)  # type: ignore[arg-type]
    return sorted(train), sorted(test)


def _week(day: dt.date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso[0], iso[1]


def folds(n: int, k: int = 5, seed: int = 0) -> list[list[int]]:
    """``k`` folds of question indices, shuffled with a fixed seed."""
    idx = list(range(n))
    np.random.default_rng(seed).shuffle(idx)
    return [sorted(idx[j::k]) for j in range(k)]


def split_dates(questions: Sequence[Question], idx: Sequence[int]) -> dict[str, str | None]:
    """The first and last question date of each kind among ``idx`` (for the reports)."""
    out: dict[str, str | None] = {}
    for kind, name in ((True, "answerable"), (False, "out_of_corpus")):
        days = sorted(questions[i].asked_on for i in idx if questions[i].answerable is kind and questions[i].asked_on)  # type: ignore[type-var]
        out[name] = f"{days[0]} to {days[-1]}" if days else None
    return out


def model_json(model: AnswerModel, about: dict[str, object]) -> dict[str, object]:
    """The model file's contents: ``about`` (what it was fitted on, its scores) and the weights."""
    return {"about": "newsbot's answer model; fitted by scripts/fit_weights.py. Do not edit by hand.", **about,
            "rank": {"features": list(RANK_FEATURES), "weights": [float(v) for v in model.rank]},
            "confidence": {"features": list(_CONFIDENCE), "weights": [float(v) for v in model.conf],
                           "bias": model.conf_bias},
            "threshold": model.threshold, "margin": model.margin}


def honest_scores(engine: Any, questions: Sequence[Question], params: FitParams = FitParams(),
                  progress: bool = False) -> dict[str, dict[str, Any]]:
    """The engine's own scores (acc@1, acc@3, rates, extra quotes) with models that never saw the
    questions they answer: fitted on the earlier weeks and asked the later weeks' questions
    (``held_out``), and 5-fold cross-validated (``cross_validated``)."""
    from .engine import Engine
    from .evaluate import evaluate, summarize

    snap = engine._state.snapshot  # noqa: SLF001 - the same reader for every model
    blank = AnswerModel(np.zeros(len(RANK_FEATURES)), np.zeros(len(_CONFIDENCE)), 0.0, 0.5)
    data = collect(snap, Answerer(snap, engine.embedder, blank), questions)

    def records(model: AnswerModel, idx: Sequence[int]) -> list[dict[str, Any]]:
        other = Engine(engine.settings, engine.embedder, snap, engine.store, model=model)
        return evaluate(other, [questions[i] for i in idx]).per_question

    train, test = chronological_split(questions)
    if progress:
        print(f"  held out: fitting on {len(train)} questions, asking {len(test)}", file=sys.stderr)
    held = summarize(records(fit([data[i] for i in train], params), test))
    held.update(train=len(train), test=len(test), train_dates=split_dates(questions, train),
                test_dates=split_dates(questions, test))
    cv: list[dict[str, Any]] = []
    for j, f in enumerate(folds(len(questions))):
        if progress:
            print(f"  cross-validation: fold {j + 1} of 5", file=sys.stderr)
        rest = set(f)
        cv += records(fit([d for i, d in enumerate(data) if i not in rest], params), f)
    return {"held_out": held, "cross_validated": summarize(cv)}
