"""Fit newsbot's answer model (index/answer_model.json) on a question set, with cross-validation.

    .venv/bin/python scripts/fit_weights.py --index DIR --questions QUESTIONS.jsonl [--write]

1. Every question's candidate sentences and their features come from the engine itself
   (index.answer.Answerer.candidates), so training and serving compute the same features.
2. Ranking: a listwise logistic model (softmax over a question's candidates; the target spreads
   over the candidates that contain a gold answer, by the eval rule), L2-regularised, L-BFGS.
3. Confidence: a logistic regression over the best candidate and the question's features, whose
   target is "the corpus answers this question" (the question set's ``answerable``).
4. The decline threshold: the highest confidence that still answers ``--answer-rate`` of the
   answerable training questions.

Each question is asked on its record's ``date``: one that says "this week" with no article from
then is declined by a rule (Answerer.stale), so it is scored as declined and left out of the
confidence's fit.

Reports 5-fold cross-validated acc@1, answer and decline rates (folds by question) next to the
in-sample numbers, and with ``--write`` saves the model fitted on every question.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.answer import CONFIDENCE_FEATURES, MODEL_FILE, RANK_FEATURES, Answerer, AnswerModel  # noqa: E402
from index.config import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.evaluate import is_correct, load_questions  # noqa: E402
from index.stores.embedded import Snapshot  # noqa: E402
from index.when import question_window  # noqa: E402


def fit_listwise(xs: list[np.ndarray], ys: list[np.ndarray], l2: float) -> np.ndarray:
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="index of the question set's articles")
    ap.add_argument("--questions", type=Path, required=True, help="questions (JSON Lines, the eval format)")
    ap.add_argument("--answer-rate", type=float, default=0.88, help="share of answerable questions to answer")
    ap.add_argument("--l2", type=float, default=5.0, help="L2 regularisation of the ranking model")
    ap.add_argument("--conf-l2", type=float, default=5.0, help="L2 regularisation of the confidence model")
    ap.add_argument("--margin", type=float, default=1.0, help="further quotes within this many logits of the best")
    ap.add_argument("--write", action="store_true", help=f"save the model to {MODEL_FILE}")
    args = ap.parse_args()

    settings = Settings.from_env(index_dir=args.index)
    embedder = load_embedder(settings)
    snap = Snapshot.open(args.index, embedder)
    blank = AnswerModel(np.zeros(len(RANK_FEATURES)), np.zeros(len(CONFIDENCE_FEATURES)), 0.0, 0.5)
    answerer = Answerer(snap, embedder, blank)
    data = []
    for q in load_questions(args.questions):
        window = question_window(q.question, q.asked_on)
        cands, qf = answerer.candidates(q.question, embedder.encode([q.question])[0], window=window)
        x = np.vstack([c.features for c in cands]) if cands else np.zeros((0, len(RANK_FEATURES)))
        y = np.array([q.answerable and is_correct(c.row.text, q.answers) for c in cands], dtype=float)
        missing = np.array([[c.numbers_missing, c.out_of_window] for c in cands], dtype=float).reshape(-1, 2)
        # No article from the question's window: Answerer.stale declines it, whatever the model says.
        empty = window is not None and not snap.articles_between(window.start, window.end)
        data.append((q, x, y, qf, missing, empty))

    def fit(train: list[int]) -> AnswerModel:
        xs = [data[i][1] for i in train if data[i][2].sum() > 0]
        ys = [data[i][2] for i in train if data[i][2].sum() > 0]
        rank = fit_listwise(xs, ys, args.l2)
        train = [i for i in train if not stale(i, rank)]
        qx = np.array([qfeat(i, rank) for i in train])
        qy = np.array([data[i][0].answerable for i in train], dtype=float)
        cw, cb = fit_logistic(qx, qy, args.conf_l2)
        conf = 1 / (1 + np.exp(-(qx @ cw + cb)))
        threshold = float(np.quantile(conf[qy == 1], 1 - args.answer_rate))
        return AnswerModel(rank, cw, cb, threshold, args.margin)

    def stale(i: int, rank: np.ndarray) -> bool:
        # As Answerer.stale does: no article from the question's window, and the best candidate is dated.
        _, x, _, _, missing, empty = data[i]
        return empty and bool(len(x)) and bool(missing[int(np.argmax(x @ rank)), 1])

    def qfeat(i: int, rank: np.ndarray) -> np.ndarray:
        # As Answerer.rank does: the features of the question's best candidate.
        _, x, _, qf, missing, _ = data[i]
        qf = qf.copy()
        if len(x):
            best = int(np.argmax(x @ rank))
            # As Answerer.rank: z_top without the in_window part.
            k = RANK_FEATURES.index("in_window")
            qf[0], qf[5] = float(x[best] @ rank - rank[k] * x[best, k]), missing[best, 0]
        return qf

    def score(model: AnswerModel, idx: list[int]) -> dict[str, float]:
        rank_ok, strict_ok, answered, declined, n_un = [], [], [], [], 0
        for i in idx:
            q, x, y, _, _, _ = data[i]
            conf = 1 / (1 + np.exp(-(model.conf @ qfeat(i, model.rank) + model.conf_bias))) if len(x) else 0.0
            if stale(i, model.rank):
                conf = 0.0
            ok = bool(len(x)) and bool(y[int(np.argmax(x @ model.rank))])
            if q.answerable:
                rank_ok.append(ok)
                answered.append(conf >= model.threshold)
                strict_ok.append(ok and conf >= model.threshold)
            else:
                n_un += 1
                declined.append(conf < model.threshold)
        return {"rank_acc1": float(np.mean(rank_ok)), "strict_acc1": float(np.mean(strict_ok)),
                "answer_rate": float(np.mean(answered)), "decline_rate": float(np.mean(declined)) if n_un else float("nan")}

    idx = list(range(len(data)))
    rng = np.random.default_rng(0)
    rng.shuffle(idx)
    folds = [idx[k::5] for k in range(5)]
    cv = [score(fit([i for i in idx if i not in set(f)]), f) for f in folds]
    cv_mean = {k: round(float(np.mean([c[k] for c in cv])), 4) for k in cv[0]}
    model = fit(idx)
    insample = {k: round(v, 4) for k, v in score(model, idx).items()}
    print("5-fold cross-validated:", cv_mean)
    print("in-sample:", insample)
    print("rank weights:", dict(zip(RANK_FEATURES, np.round(model.rank, 3))))
    print("confidence weights:", dict(zip(CONFIDENCE_FEATURES, np.round(model.conf, 3))), "bias", round(model.conf_bias, 3))
    print("threshold:", round(model.threshold, 4))
    if args.write:
        MODEL_FILE.write_text(json.dumps({
            "about": "newsbot's answer model; fitted by scripts/fit_weights.py. Do not edit by hand.",
            "fitted_on": {"questions": args.questions.name, "n": len(data), "date": dt.date.today().isoformat(),
                          "index_sentences": snap.total_sentences},
            "cross_validated": cv_mean, "in_sample": insample,
            "rank": {"features": list(RANK_FEATURES), "weights": [float(v) for v in model.rank]},
            "confidence": {"features": list(CONFIDENCE_FEATURES), "weights": [float(v) for v in model.conf],
                           "bias": model.conf_bias},
            "threshold": model.threshold, "margin": model.margin,
        }, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {MODEL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
