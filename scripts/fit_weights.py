"""Fit the answer model (index.answer.Weights) on a question set, with cross-validated results.

    python scripts/fit_weights.py --index DIR --questions ../shared/eval/news-dev/questions.jsonl

Collects the features of every candidate sentence of every question, labels a candidate positive
when it contains a gold answer (the eval rule), fits an L2-regularised logistic regression, and
picks the decline threshold. Prints the weights to paste into ``Weights`` and 5-fold
cross-validated acc@1 / answer rate / decline rate, so the numbers are not only in-sample.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.answer import Weights  # noqa: E402
from index.config import Settings  # noqa: E402
from index.engine import Engine  # noqa: E402
from index.evaluate import is_correct, load_questions  # noqa: E402


def fit_lr(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 3000, lr: float = 0.5) -> tuple[np.ndarray, float]:
    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs = (x - mu) / sd
    w = np.zeros(x.shape[1])
    b = 0.0
    pos_w = (len(y) - y.sum()) / max(y.sum(), 1)  # balance the classes
    sw = np.where(y == 1, pos_w, 1.0)
    sw = sw / sw.mean()
    for _ in range(iters):
        z = xs @ w + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) * sw
        w -= lr * (xs.T @ g / len(y) + l2 * w / len(y))
        b -= lr * g.mean()
    # back to raw feature scale
    return w / sd, b - float((w / sd) @ mu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--questions", type=Path, required=True)
    ap.add_argument("--dump", type=Path, help="save features as JSON for inspection")
    args = ap.parse_args()
    engine = Engine.open(Settings.from_env(index_dir=args.index))
    ans = engine._state.answerer
    qs = load_questions(args.questions)
    data = []
    for q in qs:
        qvec = engine.embedder.encode([q.question])[0]
        cands = ans.candidates(q.question, qvec)
        feats = np.vstack([c.features for c in cands]) if cands else np.zeros((0, len(Weights.FEATURES)))
        labels = np.array([is_correct(c.row.text, q.answers) if q.answerable else False for c in cands], dtype=float)
        data.append((q, feats, labels))
    names = Weights.FEATURES

    def run(train_idx: list[int], test_idx: list[int]) -> tuple[Weights, dict[str, float]]:
        x = np.vstack([data[i][1] for i in train_idx if data[i][0].answerable and len(data[i][1])])
        y = np.concatenate([data[i][2] for i in train_idx if data[i][0].answerable and len(data[i][1])])
        w, b = fit_lr(x, y)
        weights = Weights(bias=b, **{n: float(v) for n, v in zip(names, w)})

        def best(i: int) -> tuple[float, bool]:
            q, f, lab = data[i]
            if not len(f):
                return 0.0, False
            z = f @ weights.vector() + weights.bias
            j = int(np.argmax(z))
            return float(1 / (1 + np.exp(-z[j]))), bool(lab[j])

        # threshold: maximise answer rate subject to >= 80% declines on the training fold (with margin)
        tr = [best(i) + (data[i][0].answerable,) for i in train_idx]
        ths = sorted({p for p, _, _ in tr})
        chosen = 0.5
        best_score = -1.0
        for t in ths:
            dec = np.mean([p < t for p, _, a in tr if not a]) if any(not a for _, _, a in tr) else 1
            answ = np.mean([p >= t for p, _, a in tr if a])
            score = min(dec / 0.85, 1.0) + min(answ / 0.9, 1.0)
            if score > best_score:
                best_score, chosen = score, t
        weights = replace(weights, threshold=float(chosen))
        te = [best(i) + (data[i][0].answerable,) for i in test_idx]
        ans_ = [(p, ok) for p, ok, a in te if a]
        un = [p for p, ok, a in te if not a]
        return weights, {
            "rank_acc1": float(np.mean([ok for _, ok in ans_])),
            "acc1": float(np.mean([ok and p >= chosen for p, ok in ans_])),
            "answer_rate": float(np.mean([p >= chosen for p, _ in ans_])),
            "decline_rate": float(np.mean([p < chosen for p in un])) if un else float("nan"),
        }

    idx = list(range(len(data)))
    rng = np.random.default_rng(0)
    rng.shuffle(idx)
    folds = [idx[k::5] for k in range(5)]
    cv = []
    for k in range(5):
        test = folds[k]
        train = [i for i in idx if i not in set(test)]
        cv.append(run(train, test)[1])
    full_w, full_stats = run(idx, idx)
    print("5-fold cross-validated:", {k: round(float(np.mean([c[k] for c in cv])), 3) for k in cv[0]})
    print("in-sample:", {k: round(v, 3) for k, v in full_stats.items()})
    print("Weights(" + ", ".join(f"{n}={getattr(full_w, n):.3f}" for n in ("bias", *names, "threshold")) + ")")
    if args.dump:
        args.dump.write_text(json.dumps([{"q": q.question, "f": f.tolist(), "y": y.tolist()} for q, f, y in data]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
