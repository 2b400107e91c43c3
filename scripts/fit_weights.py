"""Fit newsbot's answer model (index/answer_models/<backend>.json) on a question set, and score it honestly.

    .venv/bin/python scripts/fit_weights.py --index DIR --questions QUESTIONS.jsonl [--write]

How the model is fitted: index/fit.py. Reports, for the first quote (ranking and declines; the
engine-level figures with acc@3 are `make eval`'s):

- **held out** (the headline): fitted on the earlier weeks' questions, scored on the later weeks';
- **5-fold cross-validated** (folds by question);
- **in-sample** (fitted and scored on every question: optimistic, labelled as such).

With ``--write`` saves the model fitted on every question, with those three scores in its file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import fit  # noqa: E402
from index.answer import CONFIDENCE_FEATURES, MODEL_FILE, RANK_FEATURES, Answerer, AnswerModel  # noqa: E402
from index.config import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.evaluate import load_questions  # noqa: E402
from index.stores.embedded import Snapshot  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="index of the question set's articles")
    ap.add_argument("--questions", type=Path, required=True, help="questions (JSON Lines, the eval format)")
    ap.add_argument("--answer-rate", type=float, default=0.88, help="share of answerable questions to answer")
    ap.add_argument("--l2", type=float, default=5.0, help="L2 regularisation of the ranking model")
    ap.add_argument("--conf-l2", type=float, default=5.0, help="L2 regularisation of the confidence model")
    ap.add_argument("--margin", type=float, default=1.0, help="further quotes within this many logits of the best")
    ap.add_argument("--out", type=Path, default=MODEL_FILE, help="where --write saves the model")
    ap.add_argument("--write", action="store_true", help="save the model fitted on every question to --out")
    args = ap.parse_args()
    params = fit.FitParams(args.answer_rate, args.l2, args.conf_l2, args.margin)

    settings = Settings.from_env(index_dir=args.index)
    embedder = load_embedder(settings)
    snap = Snapshot.open(args.index, embedder)
    blank = AnswerModel(np.zeros(len(RANK_FEATURES)), np.zeros(len(CONFIDENCE_FEATURES)), 0.0, 0.5)
    questions = load_questions(args.questions)
    data = fit.collect(snap, Answerer(snap, embedder, blank), questions)

    def rounded(d: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 4) for k, v in d.items()}

    train, test = fit.chronological_split(questions)
    held_out = rounded(fit.score(fit.fit([data[i] for i in train], params), [data[i] for i in test]))
    cv = [fit.score(fit.fit([data[i] for i in range(len(data)) if i not in set(f)], params), [data[i] for i in f])
          for f in fit.folds(len(data))]
    cv_mean = {k: round(float(np.mean([c[k] for c in cv])), 4) for k in cv[0]}
    model = fit.fit(data, params)
    insample = rounded(fit.score(model, data))
    split = {"train": len(train), "test": len(test), "train_dates": fit.split_dates(questions, train),
             "test_dates": fit.split_dates(questions, test)}
    print("held out (fitted on the earlier weeks, scored on the later):", held_out, split)
    print("5-fold cross-validated:", cv_mean)
    print("in-sample (optimistic):", insample)
    print("rank weights:", dict(zip(RANK_FEATURES, np.round(model.rank, 3))))
    print("confidence weights:", dict(zip(CONFIDENCE_FEATURES, np.round(model.conf, 3))), "bias", round(model.conf_bias, 3))
    print("threshold:", round(model.threshold, 4))
    if args.write:
        about = {"fitted_on": {"questions": args.questions.name, "n": len(data), "date": dt.date.today().isoformat(),
                               "index_sentences": snap.total_sentences, "embedding": embedder.fingerprint},
                 "held_out": {**held_out, **split}, "cross_validated": cv_mean, "in_sample": insample}
        args.out.write_text(json.dumps(fit.model_json(model, about), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
