"""Evaluate newsbot on ../shared/eval/news-dev and the seed questions; write docs/EVAL.md.

    make eval            # or: .venv/bin/python scripts/eval_newsdev.py [--index DIR]

Builds (or reuses, incrementally) an index of the news-dev articles outside the repo, answers every
question with newsbot and with the two baselines over the same sentences, and records the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.config import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.engine import Engine  # noqa: E402
from index.evaluate import evaluate, load_questions  # noqa: E402
from index.loaders import load_corpus  # noqa: E402
from index.store import build_index  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=ROOT / "data" / "eval-news-dev", help="index folder for news-dev")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "EVAL.md", help="where to write the report")
    ap.add_argument("--json", type=Path, help="also write per-question results as JSON")
    args = ap.parse_args()
    settings = replace(Settings.from_env(), index_dir=args.index)
    embedder = load_embedder(settings)
    report = build_index(args.index, load_corpus(EVAL / "news-dev" / "articles.jsonl"), embedder,
                         progress=lambda d, t: print(f"embedding {d}/{t}", file=sys.stderr) if d % 10240 < 512 else None)
    print(report.summary(), file=sys.stderr)
    engine = Engine.open(settings, embedder=embedder)
    news = evaluate(engine, load_questions(EVAL / "news-dev" / "questions.jsonl"), progress=True)
    print(news.report())

    seed_dir = args.index.parent / "eval-seed"
    build_index(seed_dir, load_corpus(ROOT / "corpus"), embedder)
    seed = evaluate(Engine.open(replace(settings, index_dir=seed_dir), embedder=embedder),
                    load_questions(EVAL / "seed-dev.jsonl"))
    print(seed.report())
    best_base = max(news.bm25["acc@1"], news.cosine["acc@1"])
    if news.decline_rate >= 0.8 and news.answer_rate >= 0.85:
        decline_note = "The decline target (≥ 80% declined with ≥ 85% answered) is met."
    else:
        decline_note = f"""Not met: the decline rate. At the threshold that answers ≥ 85% of answerable questions,
{100 * news.decline_rate:.0f}% of the out-of-corpus ones are declined, not 80%. They are mostly about the same
recurring events as the corpus in a later year (a later final, a later cruise-ship outbreak, a later
bankruptcy), and the best sentence for them looks like an answer. One signal tells some apart and is
used: a number in the question (a year, an amount) that the best article never mentions
(`numbers_missing`, cross-validated decline 68% → 71%). About 40 more confidence features were tried
under cross-validation and did not help: coverage of the question by the best article, by its
title, by the best paragraph or by the rarest terms; names missing from the article; agreement of
the dense and BM25 results; score gaps between articles. The confidence's out-of-fold AUC is about
0.83; 80% declined at 85% answered needs about 0.91, which would take a model that reads the
question and the sentence together (a cross-encoder; none can be installed here). Also, 23 of the
149 answerable questions have no correct sentence among the candidates at all, so answering 85% of
them means answering some from wrong sentences."""
    model = json.loads((ROOT / "index" / "answer_model.json").read_text(encoding="utf-8"))
    cv = model["cross_validated"]
    md = f"""# Answer quality

Produced by `make eval` (`.venv/bin/python scripts/eval_newsdev.py`) on {dt.date.today().isoformat()},
Python {platform.python_version()}, model {engine.info['model']}, backend {settings.backend}.
The same numbers for any question set: `newsbot eval ARTICLES.jsonl QUESTIONS.jsonl`.

Metric (../shared/eval/README.md): a quoted sentence is correct when it contains a gold answer
(case- and quote-insensitive) or 80% of its words longer than two letters. *acc@1* looks at the
first quoted sentence, *acc@3* at the first three. newsbot's strict row counts a declined
answerable question as wrong; its "best sentence" row ignores the decline threshold and is the one
comparable with the baselines, which never decline. The baselines rank the same sentences: BM25
alone (SQLite FTS5) and the model's cosine alone (exact FAISS search).

## news-dev ({news.articles} articles, {news.sentences} sentences)

```
{news.report()}
```

- acc@1 (best sentence) vs the better baseline: {100 * news.engine_rank_acc1:.1f}% vs {100 * best_base:.1f}%
  (**{100 * (news.engine_rank_acc1 - best_base):+.1f} points**; strict: {100 * (news.engine_acc1 - best_base):+.1f} points).
- Out-of-corpus questions declined: **{100 * news.decline_rate:.1f}%**; answerable questions answered: **{100 * news.answer_rate:.1f}%**.
- Warm `ask` p50 / floor p50: **{news.latency_ms['p50'] / max(news.floor_ms['p50'], 1e-9):.2f}×** (floor: encoding the question plus an
  exact FAISS search over the same {news.sentences} vectors, measured in the same run).

## Seed corpus (../shared/eval/seed-dev.jsonl)

```
{seed.report()}
```

The answer model (index/answer_model.json) was fitted on news-dev by `scripts/fit_weights.py`
(a listwise logistic ranker over {len(model['rank']['features'])} features and a logistic confidence over
{len(model['confidence']['features'])}), so the news-dev numbers above are in-sample. Its 5-fold
cross-validated numbers (folds by question), the honest estimate for new questions:
rank acc@1 {100 * cv['rank_acc1']:.1f}%, strict acc@1 {100 * cv['strict_acc1']:.1f}%, answer rate
{100 * cv['answer_rate']:.1f}%, decline rate {100 * cv['decline_rate']:.1f}%. The seed questions are not used for fitting.

{decline_note}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"news_dev": news.per_question, "seed": seed.per_question}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
