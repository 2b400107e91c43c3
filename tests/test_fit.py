"""The answer model's fitting and the splits that score it without the questions it was fitted on."""

from __future__ import annotations

import datetime as dt

import numpy as np

from index import fit
from index.answer import CONFIDENCE_FEATURES, RANK_FEATURES
from index.evaluate import Question, summarize


def _q(i: int, day: dt.date | None, answerable: bool = True) -> Question:
    return Question(id=str(i), question=f"q{i}?", answers=["x"], answerable=answerable, asked_on=day)


def test_the_held_out_questions_are_each_kinds_latest_weeks_and_no_week_is_split() -> None:
    start = dt.date(2024, 1, 1)  # a Monday
    qs = [_q(i, start + dt.timedelta(days=3 * i)) for i in range(20)]  # two or three a week
    qs += [_q(100 + i, dt.date(2026, 1, 5) + dt.timedelta(days=7 * i), answerable=False) for i in range(10)]
    qs.append(_q(999, None))
    train, test = fit.chronological_split(qs, test_share=0.3)
    assert sorted(train + test) == list(range(len(qs)))
    assert len(qs) - 1 in train  # no date: training
    for kind in (True, False):
        tr = [qs[i].asked_on for i in train if qs[i].answerable is kind and qs[i].asked_on]
        te = [qs[i].asked_on for i in test if qs[i].answerable is kind]
        assert te and max(tr) < min(te)  # later than every training question of its kind
        assert {d.isocalendar()[:2] for d in tr}.isdisjoint({d.isocalendar()[:2] for d in te})
    assert 4 <= sum(qs[i].answerable for i in test) <= 8  # about 30% of the 20 answerable ones
    assert 2 <= sum(not qs[i].answerable for i in test) <= 4


def test_folds_cover_every_question_once() -> None:
    fs = fit.folds(23)
    assert len(fs) == 5 and sorted(i for f in fs for i in f) == list(range(23))
    assert fit.folds(23) == fs  # seeded


def _data(n: int, rng: np.random.Generator) -> list[fit.QuestionData]:
    """Questions whose correct candidate has a high ``coverage``; out-of-corpus ones have a low ``max_cos``."""
    out = []
    k = RANK_FEATURES.index("coverage")
    for i in range(n):
        answerable = i % 4 != 0
        x = rng.normal(size=(12, len(RANK_FEATURES)))
        y = np.zeros(12)
        if answerable:
            j = int(rng.integers(12))
            x[j, k] += 4.0
            y[j] = 1.0
        qf = rng.normal(size=len(CONFIDENCE_FEATURES))
        qf[CONFIDENCE_FEATURES.index("max_cos")] += 3.0 if answerable else -3.0
        out.append(fit.QuestionData(_q(i, dt.date(2024, 1, 1) + dt.timedelta(days=i), answerable), x, y, qf,
                                    np.zeros((12, 2)), False))
    return out


def test_a_model_fitted_on_some_questions_ranks_and_declines_the_others() -> None:
    data = _data(120, np.random.default_rng(1))
    model = fit.fit(data[:80], fit.FitParams(answer_rate=0.9))
    s = fit.score(model, data[80:])
    assert s["rank_acc1"] >= 0.9
    assert s["answer_rate"] >= 0.8 and s["decline_rate"] >= 0.8
    assert model.rank[RANK_FEATURES.index("coverage")] > 0


def test_summarize_counts_declines_as_wrong_and_scores_extra_quotes() -> None:
    recs = [
        {"answerable": True, "answered": True, "correct1": True, "correct3": True, "extra_correct": [True, False]},
        {"answerable": True, "answered": False, "correct1": False, "correct3": False, "extra_correct": []},
        {"answerable": False, "answered": False},
        {"answerable": False, "answered": True},
    ]
    s = summarize(recs)
    assert s["acc@1"] == 0.5 and s["acc@3"] == 0.5 and s["answered"] == 0.5 and s["declined"] == 0.5
    assert s["extra_quotes"] == 2 and s["extra_correct"] == 0.5
