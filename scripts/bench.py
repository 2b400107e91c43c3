"""``make bench``: how building, answering and memory grow with the corpus.

Every number is a ratio against a baseline measured in the same run (this machine is shared and
timings are noisy); medians throughout. Results go to docs/bench-data/*.json, the report to
docs/BENCHMARKS.md and plots to docs/img/*.png.

Steps (``--steps``, default all; each bounded to a few minutes on two cores):

- ``embed``: rebuild throughput (sentences/s, articles/s) of each backend against the model's raw
  sentence-transformers ``encode`` (torch) of the same sentences, and the embedding cache.
- ``quality``: ``newsbot eval`` on news-dev with each backend: acc@1, and warm ``ask`` p50/p95
  against the floor (encoding the question plus an exact FAISS search over the same vectors).
  Builds the news-dev indexes under ``--work`` the first time (about 15 min for torch).
- ``vectors``: each index type on generated vectors (10k, 100k, 1M) and on the real news-dev
  vectors: recall@10 against exact search, search latency, bytes, build time.
- ``serve``: generated corpora of 10k, 100k, 1M sentences built through the store; a fresh process
  per size and backend measures start-up to the first answer, warm ``ask`` p50/p95 against the
  floor, and peak RSS; then 10 articles are added to the largest index.
- ``report``: docs/BENCHMARKS.md and the plots, from the JSON files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

T_START = time.perf_counter()  # the start of a child process, for start-up time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
NEWS_DEV = Path(os.environ.get("NEWSBOT_NEWS_DEV", ROOT.parent / "shared" / "eval" / "news-dev"))
OUT = ROOT / "docs" / "bench-data"
WORK = ROOT / "data" / "bench"
SIZES = (10_000, 100_000, 1_000_000)
PY = sys.executable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return float(s[min(len(s) - 1, int(round(q * (len(s) - 1))))]) if s else float("nan")


def save(name: str, data: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data["machine"] = machine()
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    print(f"wrote {OUT / name}.json", file=sys.stderr)


def load(name: str) -> dict[str, Any] | None:
    p = OUT / f"{name}.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def machine() -> dict[str, Any]:
    import psutil

    cpu = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "load_avg": os.getloadavg()[0],
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def settings(backend: str, index_dir: Path | None = None):  # type: ignore[no-untyped-def]
    from index.config import Settings

    return Settings.from_env({"NEWSBOT_BACKEND": backend}, **({"index_dir": index_dir} if index_dir else {}))


def questions(limit: int | None = None) -> list[str]:
    qs = [json.loads(line)["question"] for line in (NEWS_DEV / "questions.jsonl").open(encoding="utf-8") if line.strip()]
    return qs[:limit] if limit else qs


def nd_index(backend: str) -> Path:
    return WORK / f"nd-{backend}"


# ---------------------------------------------------------------------------------------------
# embed: rebuild throughput against the raw encode


def step_embed(args: argparse.Namespace) -> None:
    from index.embed import load_embedder
    from index.loaders import LoadResult, load_corpus
    from index.stores.build import build_index

    corpus = load_corpus(NEWS_DEV / "articles.jsonl")
    # A fixed sample: whole articles, every 9th, until about --sample sentences.
    from index.clean import classify
    from index.split import split_article

    arts, texts = [], []
    for a in corpus.articles[::9]:
        sents, _ = split_article(a.id, a.text, classify(a.text))
        arts.append(a)
        texts += [s.text for s in sents]
        if len(texts) >= args.sample:
            break
    distinct = list(dict.fromkeys(texts))
    sample = LoadResult(articles=arts, files=1)
    backends = ["torch", "onnx", "onnx-int8"]
    embedders = {b: load_embedder(settings(b)) for b in backends}
    raw = embedders["torch"]._model  # noqa: SLF001 - the baseline: sentence-transformers itself
    res: dict[str, list[float]] = {"raw-torch-encode": [], **{f"rebuild-{b}": [] for b in backends}}
    # CPU seconds (all threads of this process) beside wall seconds: on a shared machine the wall
    # clock also counts the time other processes held the cores, CPU time much less so.
    cpu: dict[str, list[float]] = {k: [] for k in res}
    work = WORK / "embed"
    for rep in range(args.reps):
        t, c = time.perf_counter(), _cpu_s()
        raw.encode(distinct, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        res["raw-torch-encode"].append(time.perf_counter() - t)
        cpu["raw-torch-encode"].append(_cpu_s() - c)
        for b in backends:
            shutil.rmtree(work, ignore_errors=True)
            t, c = time.perf_counter(), _cpu_s()
            rep_ = build_index(work, sample, embedders[b], full=True)
            res[f"rebuild-{b}"].append(time.perf_counter() - t)
            cpu[f"rebuild-{b}"].append(_cpu_s() - c)
            assert rep_.sentences == len(texts), (rep_.sentences, len(texts))
        print(f"embed rep {rep}: " + ", ".join(f"{k} {v[-1]:.1f}s ({cpu[k][-1]:.1f} cpu-s)" for k, v in res.items()),
              file=sys.stderr)
    # The cache: a second full rebuild of the same articles takes every vector from it.
    cached = []
    for _ in range(args.reps):
        t = time.perf_counter()
        r = build_index(work, sample, embedders["torch"], full=True)
        cached.append(time.perf_counter() - t)
    shutil.rmtree(work, ignore_errors=True)
    # Boilerplate across the whole of news-dev: how many sentences are repeats.
    all_texts = []
    for a in corpus.articles:
        sents, _ = split_article(a.id, a.text, classify(a.text))
        all_texts += [s.text for s in sents]
    base = median(res["raw-torch-encode"])
    out = {
        "sample": {"articles": len(arts), "sentences": len(texts), "distinct": len(distinct)},
        "seconds": res,
        "median_s": {k: median(v) for k, v in res.items()},
        "sentences_per_s": {k: len(texts) / median(v) for k, v in res.items()},
        "articles_per_s": {k: len(arts) / median(v) for k, v in res.items()},
        "ratio_vs_raw": {k: base / median(v) for k, v in res.items()},
        "cpu_seconds": cpu,
        "cpu_ratio_vs_raw": {k: median(cpu["raw-torch-encode"]) / median(v) for k, v in cpu.items()},
        "per_rep_ratio_vs_raw": {k: [r / x for r, x in zip(res["raw-torch-encode"], v)] for k, v in res.items()},
        "rebuild_from_cache_s": cached,
        "cache_ratio_vs_raw": base / median(cached),
        "cache_hits_second_build": r.cached,
        "news_dev": {"sentences": len(all_texts), "distinct": len(set(all_texts))},
    }
    save("embed", out)


# ---------------------------------------------------------------------------------------------
# quality: newsbot eval per backend


def step_quality(args: argparse.Namespace) -> None:
    out: dict[str, Any] = {}
    for b in args.backends:
        js = OUT / f"eval-{b}.json"
        OUT.mkdir(parents=True, exist_ok=True)
        cmd = [PY, "-m", "index", "eval", str(NEWS_DEV / "articles.jsonl"), str(NEWS_DEV / "questions.jsonl"),
               "--index", str(nd_index(b)), "--json", str(js)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NEWSBOT_BACKEND": b}, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"eval with {b} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(js.read_text(encoding="utf-8"))
        r.pop("per_question", None)
        r["wall_s"] = time.perf_counter() - t
        r["build_summary"] = next((line for line in proc.stderr.splitlines() if line.startswith("index")), "")
        out[b] = r
        print(f"quality {b}: acc@1 {r['engine_acc1']:.3f}, p50 {r['latency_ms']['p50']:.1f} ms, "
              f"floor {r['floor_ms']['p50']:.1f} ms", file=sys.stderr)
    save("quality", out)


# ---------------------------------------------------------------------------------------------
# vectors: index types against exact search


def _search_stats(index: Any, queries: Any, truth: Any, k: int = 10) -> dict[str, float]:
    from index import vectors as vec

    times, found = [], []
    vec.search(index, queries[:1], k)  # warm
    for q in queries:
        t = time.perf_counter()
        _, ids = vec.search(index, q, k)
        times.append((time.perf_counter() - t) * 1e3)
        found.append(ids[0])
    import numpy as np

    return {"p50_ms": median(times), "p95_ms": pct(times, 0.95), "recall_at_10": vec.recall_at_k(np.asarray(found), truth, k)}


VECTOR_CONFIGS = [
    ("flat-f32", {"kind": "flat", "storage": "f32"}),
    ("flat-f16", {"kind": "flat", "storage": "f16"}),
    ("ivf-f32", {"kind": "ivf", "storage": "f32"}),
    ("ivf-f16", {"kind": "ivf", "storage": "f16"}),
    ("ivf-sq8", {"kind": "ivf", "storage": "sq8"}),
    ("ivf-pq48", {"kind": "ivf", "storage": "pq", "pq_m": 48}),
    ("hnsw32-f32", {"kind": "hnsw", "storage": "f32"}),
]


def step_vectors(args: argparse.Namespace) -> None:
    import numpy as np
    from bench_synth import generate_vectors, real_vectors

    from index import vectors as vec
    from index.embed import load_embedder

    real = real_vectors(_nd_faiss("torch"))
    qv = load_embedder(settings("torch")).encode(questions())
    datasets = [("news-dev (real)", real)] + [(f"{n:,} generated", None) for n in args.sizes]
    rows = []
    hnsw_rate = None
    tmp = WORK / "vec.faiss"
    WORK.mkdir(parents=True, exist_ok=True)
    for (label, data), n in zip(datasets, [len(real), *args.sizes]):
        x = data if data is not None else generate_vectors(real, n, seed=n)
        ids = np.arange(1, len(x) + 1, dtype=np.int64)
        truth = ids[vec.exact_top_k(x, qv, 10)]
        for name, cfg in VECTOR_CONFIGS:
            if name.startswith("hnsw") and hnsw_rate and n / hnsw_rate > args.max_build_s:
                rows.append({"data": label, "n": n, "index": name, "skipped": f"build would take ~{n / hnsw_rate:.0f}s"})
                continue
            spec = vec.IndexSpec(**cfg, nlist=vec.default_nlist(n) if cfg["kind"] == "ivf" else 0)
            t = time.perf_counter()
            index, built = vec.build(spec, ids, x, x.shape[1])
            build_s = time.perf_counter() - t
            if name.startswith("hnsw"):
                hnsw_rate = n / build_s
            vec.save(index, tmp)
            row = {"data": label, "n": n, "index": name, "spec": built.to_json(), "build_s": build_s,
                   "bytes": tmp.stat().st_size, **_search_stats(index, qv, truth)}
            if name == "ivf-f16":
                ivf = __import__("faiss").extract_index_ivf(index)
                curve = {}
                for npb in (1, 2, 4, 8, 16, 32, 64, 128):
                    if npb > ivf.nlist:
                        break
                    ivf.nprobe = npb
                    curve[npb] = _search_stats(index, qv, truth)
                ivf.nprobe = built.nprobe
                row["nprobe_curve"] = curve
            rows.append(row)
            print(f"vectors {label} {name}: recall {row['recall_at_10']:.3f} p50 {row['p50_ms']:.2f} ms "
                  f"{row['bytes'] / 2**20:.0f} MiB build {build_s:.1f}s", file=sys.stderr)
            del index
        del x
    tmp.unlink(missing_ok=True)
    save("vectors", {"rows": rows, "queries": "the 199 news-dev questions, embedded by all-MiniLM-L6-v2 (torch)"})


def _nd_faiss(backend: str) -> Path:
    m = json.loads((nd_index(backend) / "manifest.json").read_text(encoding="utf-8"))
    return nd_index(backend) / m["files"]["faiss"]


# ---------------------------------------------------------------------------------------------
# serve: generated corpora through the store, one fresh process per measurement


def synth_index(n: int) -> Path:
    return WORK / f"synth-{n}"


def step_serve(args: argparse.Namespace) -> None:
    from bench_synth import SyntheticEmbedder, generate_corpus, real_vectors, vocabulary

    from index.stores.build import build_index
    from index.stores.embedded import read_manifest

    seeds = real_vectors(_nd_faiss("torch"))
    words, probs = vocabulary(NEWS_DEV / "articles.jsonl")
    emb = SyntheticEmbedder(seeds)
    prev = load("serve") or {}
    results: dict[str, Any] = {"sizes": dict(prev.get("sizes", {})), "news-dev": prev.get("news-dev", {})}
    for n in args.sizes:
        d = synth_index(n)
        corpus = generate_corpus(n, words, probs, seed=n)
        built = None
        try:
            m = read_manifest(d)
            ok = m["counts"]["articles"] == len(corpus.articles)
        except Exception:  # noqa: BLE001 - any doubt: build it again
            ok = False
        if not ok:
            shutil.rmtree(d, ignore_errors=True)
            t = time.perf_counter()
            rep = build_index(d, corpus, emb, use_cache=False)
            built = {"seconds": time.perf_counter() - t, "sentences": rep.sentences, "articles": rep.articles}
            print(f"serve: built {d} in {built['seconds']:.0f}s", file=sys.stderr)
        else:
            built = prev.get("sizes", {}).get(str(n), {}).get("build")
        m = read_manifest(d)
        entry: dict[str, Any] = {"build": built, "manifest_index": m.get("index"), "counts": m["counts"],
                                 "files_bytes": m.get("sizes")}
        for b in args.backends:
            entry[b] = r = _child("serve", d, b, args.questions)
            print(f"serve {n} {b}: first answer {r['startup_s']:.1f}s, p50 {r['p50_ms']:.1f} ms "
                  f"(floor {r['floor_p50_ms']:.1f}), rss {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
        results["sizes"] = {k: v for k, v in results["sizes"].items() if not k.startswith(f"{n}-np")}
        results["sizes"][str(n)] = entry
        if (m.get("index") or {}).get("kind") == "ivf":
            # The rebuild tunes nprobe on stored vectors (leave-one-out), which is stricter than
            # questions: measure recall@10 of the real questions against exact search by nprobe, and
            # serve again with the smallest nprobe that reaches 0.95 (what NEWSBOT_NPROBE sets).
            entry["question_curve"] = curve = question_curve(d, args.backends[-1])
            ok = [int(k) for k, v in curve.items() if v["recall_at_10"] >= 0.95]
            if ok and min(ok) < m["index"]["nprobe"]:
                npq = min(ok)
                alt: dict[str, Any] = {"manifest_index": {**m["index"], "nprobe": npq}, "counts": m["counts"],
                                       "files_bytes": m.get("sizes"),
                                       "note": f"NEWSBOT_NPROBE={npq}: recall@10 {curve[str(npq)]['recall_at_10']:.3f} "
                                               "on the news-dev questions"}
                for b in args.backends:
                    alt[b] = r = _child("serve", d, b, args.questions, nprobe=npq)
                    print(f"serve {n} nprobe {npq} {b}: p50 {r['p50_ms']:.1f} ms (floor {r['floor_p50_ms']:.1f})",
                          file=sys.stderr)
                results["sizes"][f"{n}-np{npq}"] = alt
        if n == max(args.sizes):
            # Adding 10 articles to the indexed corpus: an incremental rebuild, against the full build.
            extra = generate_corpus(480, words, probs, seed=7, id_prefix="new")
            grown = type(corpus)(articles=corpus.articles + extra.articles, files=1)
            times = []
            for i in range(2):
                if i:
                    build_index(d, corpus, emb, use_cache=False)  # back to the original
                t = time.perf_counter()
                rep = build_index(d, grown, emb, use_cache=False)
                times.append(time.perf_counter() - t)
            entry["add_10_articles"] = {"seconds": times, "added": rep.added, "embedded": rep.embedded,
                                        "full": rep.full, "index": read_manifest(d).get("index")}
            print(f"serve: adding 10 articles to {n} took {times}", file=sys.stderr)
            build_index(d, corpus, emb, use_cache=False)
        save("serve", results)


def step_serve_news_dev(args: argparse.Namespace) -> None:
    """The real corpus too: news-dev served by each backend (added to serve.json)."""
    results = load("serve") or {"sizes": {}}
    results.pop("machine", None)
    nd: dict[str, Any] = {}
    for b in args.backends:
        if (nd_index(b) / "manifest.json").is_file():
            nd[b] = _child("serve", nd_index(b), b, args.questions)
    results["news-dev"] = nd
    save("serve", results)


def question_curve(index_dir: Path, backend: str) -> dict[str, dict[str, float]]:
    """recall@10 (against exact search over the same stored vectors) and search p50 of the news-dev
    questions on an IVF index, by nprobe."""
    import faiss

    from index import vectors as vec
    from index.embed import load_embedder
    from index.stores.embedded import read_manifest

    m = read_manifest(index_dir)
    index = vec.load(index_dir / m["files"]["faiss"], vec.IndexSpec.from_json(m["index"]))
    ids, x = vec.all_vectors(index)
    qv = load_embedder(settings(backend)).encode(questions())
    truth = ids[vec.exact_top_k(x, qv, 10)]
    del x
    ivf = faiss.extract_index_ivf(index)
    curve = {}
    npb = 8
    while npb <= ivf.nlist:
        ivf.nprobe = npb
        curve[str(npb)] = _search_stats(index, qv, truth)
        print(f"question curve nprobe {npb}: recall {curve[str(npb)]['recall_at_10']:.3f} "
              f"p50 {curve[str(npb)]['p50_ms']:.1f} ms", file=sys.stderr)
        npb *= 2
    return curve


def _child(mode: str, index_dir: Path, backend: str, n_questions: int, nprobe: int | None = None) -> dict[str, Any]:
    cmd = [PY, str(Path(__file__).resolve()), "--child", mode, "--index", str(index_dir), "--backend", backend,
           "--questions", str(n_questions), *(["--nprobe", str(nprobe)] if nprobe else [])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise SystemExit(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(args: argparse.Namespace) -> None:
    """A serving process: start-up to the first answer, warm latency, peak RSS (one JSON line)."""
    from index.embed import load_embedder
    from index.engine import Engine
    from index.stores.embedded import EmbeddedStore, Snapshot

    s = settings(args.backend, args.index)
    emb = load_embedder(s)
    qs = questions(args.questions)
    if args.child == "serve":
        # Snapshot.open without the model check: generated corpora carry a synthetic fingerprint.
        snap = Snapshot.open(args.index, nprobe=args.nprobe)
        engine = Engine(s, emb, snap, EmbeddedStore(s.index_dir))
        engine.ask(qs[0])
        startup = time.perf_counter() - T_START
        rss_loaded = _rss_mib()
        for q in qs[1:11]:
            engine.ask(q)
        peak = _peak_rss_mib()  # serving only: before the floor's exact index is loaded
        # The floor, interleaved with the asks question by question in this same process, so both
        # see the same machine: encoding the question plus an exact search over the same vectors.
        exact = _exact_index(args.index, snap)
        times, floors = [], []
        for q in qs:
            t = time.perf_counter()
            engine.ask(q)
            times.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            vec_search(exact, emb.encode([q]), 10)
            floors.append((time.perf_counter() - t) * 1e3)
        out = {"startup_s": startup, "p50_ms": median(times), "p95_ms": pct(times, 0.95), "n": len(times),
               "floor_p50_ms": median(floors), "floor_p95_ms": pct(floors, 0.95),
               "rss_after_first_answer_mib": rss_loaded, "peak_rss_mib": peak,
               "index": snap.manifest.get("index", snap.manifest.get("index_type")), "nprobe": args.nprobe}
    else:
        # The floor: encoding the question plus an exact FAISS search over the same vectors.
        import faiss

        from index import vectors as vec
        from index.stores.embedded import read_manifest

        m = read_manifest(args.index)
        stored = vec.load(args.index / m["files"]["faiss"], vec.IndexSpec.from_json(m.get("index", "flat")))
        ids, x = vec.all_vectors(stored)
        del stored
        exact = faiss.IndexIDMap2(faiss.IndexFlatIP(x.shape[1]))
        exact.add_with_ids(x, ids)
        del x
        emb.encode([qs[0]])
        exact.search(emb.encode([qs[0]]), 10)
        times = []
        for q in qs:
            t = time.perf_counter()
            exact.search(emb.encode([q]), 10)
            times.append((time.perf_counter() - t) * 1e3)
        out = {"p50_ms": median(times), "p95_ms": pct(times, 0.95), "n": len(times)}
    print(json.dumps(out))


def vec_search(index: Any, q: Any, k: int) -> Any:
    from index.vectors import search

    return search(index, q, k)


def _exact_index(index_dir: Path, snap: Any) -> Any:
    """Exact search over the snapshot's vectors: the index itself when it is flat float32."""
    import faiss

    from index import vectors as vec

    spec = vec.IndexSpec.from_json(snap.manifest.get("index", snap.manifest.get("index_type")))
    if spec.kind == "flat" and spec.storage == "f32":
        return snap.faiss
    ids, x = vec.all_vectors(snap.faiss)
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(x.shape[1]))
    exact.add_with_ids(x, ids)
    return exact


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that across
    fork and execve, so a child would report its parent's peak (here, the 1M-sentence build's)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="embed,quality,vectors,serve,serve-news-dev,report",
                   help="comma-separated steps to run (embed, quality, vectors, serve, serve-news-dev, report)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="generated corpus sizes, in sentences")
    p.add_argument("--backends", default="torch,onnx-int8", help="embedding backends to serve and evaluate")
    p.add_argument("--sample", type=int, default=2500, help="sentences in the throughput sample")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each throughput measurement")
    p.add_argument("--questions", type=int, default=60, help="news-dev questions asked per serving process")
    p.add_argument("--max-build-s", type=float, default=240.0, help="skip an HNSW build expected to take longer")
    p.add_argument("--child", choices=["serve", "floor"], help=argparse.SUPPRESS)
    p.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--nprobe", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.backends = [b for b in args.backends.split(",") if b]
    if args.child:
        child(args)
        return 0
    if not NEWS_DEV.is_dir():
        print(f"the benchmarks need the news-dev set in {NEWS_DEV}", file=sys.stderr)
        return 1
    steps = args.steps.split(",")
    if "embed" in steps:
        step_embed(args)
    if "quality" in steps:
        step_quality(args)
    if "vectors" in steps:
        step_vectors(args)
    if "serve" in steps:
        step_serve(args)
    if "serve-news-dev" in steps:
        step_serve_news_dev(args)
    if "report" in steps:
        from bench_report import write_report

        write_report(OUT, ROOT / "docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
