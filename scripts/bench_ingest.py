"""Live news, measured: freshness, ingest throughput, and answer latency while ingesting.

Everything runs on this machine: the "web" is a local HTTP server in a subprocess (real sockets,
ETag / 304, one host), Discord is the tests' stand-in (tests/fakediscord), the bot is the real
process (``python -m bot``) with the packaged model.

Steps (``--steps``, default all):

* ``throughput``: ``--pages`` news-dev articles (default 500) served as HTML pages behind one RSS
  feed. **Ingest**: ``Ingester.add_feed`` in this process (fetch, extract, write the files, embed,
  index) into an empty index. **Rebuild**: ``build_index`` of the very files the ingest wrote, into
  another empty index (each run has its own empty embedding cache). Articles per minute, ingest
  over rebuild, repetitions interleaved.
* ``freshness``: the bot with its watcher (``NEWSBOT_WATCH=1``), a feed fetched every 10 s, over an
  index of ``--base`` news-dev articles. ``--items`` new items (default 20) are published one at a
  time, at random moments; after each, ``/ask`` is sent every second with a question only that item
  answers, until the answer cites it. Time from publication to that answer: p50 / p95. With
  ``--watcher process`` a separate ``newsbot watch`` process feeds the bot instead.
* ``generation``: what one round's new index generation costs to write and to open, on the base
  index and (when ``make eval`` has built it) all of news-dev.
* ``under-ingest``: warm ``ask`` latency (the engine in this process, questions from news-dev and the
  items above) while idle, and while a watcher ingests ``--pages`` pages: in a separate ``newsbot``
  process, and in this process (as ``NEWSBOT_WATCH=1`` runs it in the bot). Idle blocks before and
  after each busy phase; p50 busy over p50 idle.

    .venv/bin/python scripts/bench_ingest.py                     # everything, writes docs/INGEST.md
    .venv/bin/python scripts/bench_ingest.py --steps freshness --items 5 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

NEWS_DEV = Path(os.environ.get("NEWSBOT_NEWS_DEV", ROOT.parent / "shared" / "eval" / "news-dev"))
DATA = ROOT / "docs" / "bench-data"
PY = sys.executable


def pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def news_dev(n: int, skip: int = 0) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (NEWS_DEV / "articles.jsonl").open(encoding="utf-8") if line.strip()]
    return rows[skip:skip + n]


# --------------------------------------------------------------------------------------------
# The web: static files behind a real HTTP server in a subprocess (ETag, 304)


def serve(directory: Path, port_file: Path) -> None:
    types = {".xml": "application/rss+xml; charset=utf-8", ".html": "text/html; charset=utf-8",
             ".txt": "text/plain; charset=utf-8"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = (directory / self.path.split("?")[0].lstrip("/")).resolve()
            if not path.is_relative_to(directory) or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = path.read_bytes()
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", types.get(path.suffix, "application/octet-stream"))
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_file.write_text(str(httpd.server_address[1]))
    httpd.serve_forever()


class Web:
    """A folder served by :func:`serve` in a subprocess."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        port_file = self.dir.parent / f".{self.dir.name}.port"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen([PY, __file__, "serve", str(self.dir), str(port_file)])
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("the page server did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def url(self, rel: str) -> str:
        return f"http://127.0.0.1:{self.port}/{rel}"

    def write(self, rel: str, data: bytes) -> None:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def publish_pages(web: Web, articles: Sequence[dict[str, Any]], feed_rel: str = "feed.xml") -> list[str]:
    """Each article as a page, and one RSS feed listing them all; the page URLs."""
    from newsserver import Item, article_page, rss

    from index.loaders import _norm_date

    items, urls = [], []
    for i, a in enumerate(articles):
        rel = f"news/{i:04d}.html"
        day = _norm_date(a.get("published"))
        published = dt.date.fromisoformat(day) if day else None
        paras = [p for p in a["text"].split("\n") if p.strip()]
        web.write(rel, article_page(a.get("title") or f"Article {i}", paras, site=a.get("source") or "News",
                                    published=published, author=", ".join(a.get("authors") or []) or None))
        urls.append(web.url(rel))
        items.append(Item(a.get("title") or f"Article {i}", web.url(rel), guid=f"nd-{a['id']}", published=published))
    web.write(feed_rel, rss(items, title="news-dev"))
    return urls


def live_settings(root: Path, **env: str):  # type: ignore[no-untyped-def]
    from index.config import Settings

    base = {"NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_HOST_DELAY_SECONDS": "0", "NEWSBOT_LOG_LEVEL": "WARNING"}
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    return Settings.from_env({**base, **env}, corpus_dir=root / "corpus", index_dir=root / "index")


# --------------------------------------------------------------------------------------------
# throughput


def step_throughput(args: argparse.Namespace, work: Path, emb: Any) -> dict[str, Any]:
    from index.ingest import Ingester
    from index.loaders import load_corpus
    from index.stores.build import build_index

    web = Web(work / "web-throughput")
    try:
        publish_pages(web, news_dev(args.pages))
        runs: dict[str, list[dict[str, float]]] = {"ingest": [], "rebuild": []}
        for rep in range(args.reps):
            root = work / f"tp-ingest-{rep}"
            shutil.rmtree(root, ignore_errors=True)
            s = live_settings(root)

            async def go(s: Any = s) -> Any:
                async with Ingester(s, embedder=emb) as ing:
                    return await ing.add_feed(web.url("feed.xml"))

            t0 = time.perf_counter()
            report = asyncio.run(go())
            seconds = time.perf_counter() - t0
            n = report.feeds[0].count("new")
            assert report.index is not None and report.index.articles == n, report.summary()
            runs["ingest"].append({"seconds": seconds, "articles": n, "sentences": report.index.sentences,
                                   "per_min": n / seconds * 60, "load": loadavg()})
            print(f"ingest #{rep + 1}: {n} articles in {seconds:.1f}s = {n / seconds * 60:.0f}/min", flush=True)

            other = work / f"tp-rebuild-{rep}"
            shutil.rmtree(other, ignore_errors=True)
            shutil.copytree(s.corpus_dir / "web", other / "corpus" / "web")
            t0 = time.perf_counter()
            built = build_index(other / "index", load_corpus(other / "corpus"), emb)
            seconds = time.perf_counter() - t0
            runs["rebuild"].append({"seconds": seconds, "articles": built.articles, "sentences": built.sentences,
                                    "per_min": built.articles / seconds * 60, "load": loadavg()})
            print(f"rebuild #{rep + 1}: {built.articles} articles in {seconds:.1f}s = "
                  f"{built.articles / seconds * 60:.0f}/min", flush=True)
            shutil.rmtree(root / "index", ignore_errors=True)
            shutil.rmtree(other, ignore_errors=True)
    finally:
        web.close()
    ing = statistics.median(r["per_min"] for r in runs["ingest"])
    reb = statistics.median(r["per_min"] for r in runs["rebuild"])
    return {"pages": args.pages, "runs": runs, "ingest_per_min": ing, "rebuild_per_min": reb, "ratio": ing / reb,
            "per_rep_ratio": [a["per_min"] / b["per_min"] for a, b in zip(runs["ingest"], runs["rebuild"])]}


# --------------------------------------------------------------------------------------------
# Items only one article answers

_SYL = ["bra", "ven", "tor", "lis", "mok", "dar", "pel", "quin", "sar", "thol", "vek", "zan", "rud", "fel", "gor"]


def _name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(_SYL) for _ in range(parts)).capitalize()


def make_items(n: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        town, person, firm = _name(rng, 3), f"{_name(rng)} {_name(rng, 3)}", _name(rng, 2) + " Holdings"
        title = f"{town} council appoints a new harbour master"
        paras = [
            f"The council of {town} appointed {person} as the town's new harbour master on Tuesday evening.",
            f"{person} previously ran the ferry terminal operated by {firm} for eleven years.",
            f"Councillors said the appointment in {town} followed a six-month search and a public consultation.",
            f"The harbour in {town} handles about {rng.randint(20, 90)} fishing boats and a summer ferry service.",
        ]
        items.append({"slug": f"item-{i:02d}", "title": title, "paras": json.dumps(paras), "person": person,
                      "question": f"Who did the council of {town} appoint as its new harbour master?"})
    return items


def _cites(message: dict[str, Any], url: str) -> bool:
    from e2e_harness import message_texts

    return any(url in t for t in message_texts(message))


# --------------------------------------------------------------------------------------------
# freshness


def base_index(work: Path, n: int, emb: Any) -> Path:
    """An index of ``n`` news-dev articles (built once under ``work``); its folder."""
    from index.loaders import load_corpus
    from index.stores.build import build_index
    from index.stores.embedded import read_manifest

    root = work / f"base-{n}"
    corpus = root / "corpus"
    try:
        read_manifest(root / "index")
        return root
    except Exception:  # noqa: BLE001 - not built yet
        pass
    corpus.mkdir(parents=True, exist_ok=True)
    with (corpus / "news-dev.jsonl").open("w", encoding="utf-8") as fh:
        for a in news_dev(n, skip=900):
            fh.write(json.dumps(a) + "\n")
    t0 = time.perf_counter()
    report = build_index(root / "index", load_corpus(corpus), emb)
    print(f"base index: {report.summary()} ({time.perf_counter() - t0:.0f}s)", flush=True)
    return root


def step_freshness(args: argparse.Namespace, work: Path, emb: Any) -> dict[str, Any]:
    from e2e_harness import TOKEN, BotProcess, ask, bot_env
    from fakediscord import FakeDiscord
    from newsserver import Item, article_page, rss

    from index.feeds import open_feed_store

    base = base_index(work, args.base, emb)
    run_root = work / f"fresh-{args.watcher}"
    shutil.rmtree(run_root, ignore_errors=True)
    shutil.copytree(base, run_root)
    for p in (run_root / "index").glob("embcache*"):
        p.unlink()
    web = Web(work / f"web-fresh-{args.watcher}")
    items = make_items(args.items)
    published: list[Item] = []
    web.write("feed.xml", rss([], title="Harbour news"))
    store = open_feed_store(live_settings(run_root))
    store.add_feed(web.url("feed.xml"), 10.0)
    store.close()
    rng = random.Random(11)
    samples: list[dict[str, Any]] = []
    live_env = {"NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_INDEX_POLL_SECONDS": "2",
                "NEWSBOT_FEED_INTERVAL": "10s", "NEWSBOT_LOG_LEVEL": "INFO"}
    watcher = None
    try:
        with FakeDiscord(token=TOKEN) as fake:
            env = bot_env(fake, index_dir=run_root / "index", feedback_db=run_root / "feedback.sqlite3",
                          extra={**live_env, "NEWSBOT_WATCH": "1" if args.watcher == "bot" else "0"})
            bot = BotProcess(env, run_root, "bench-bot").start()
            try:
                bot.wait_ready(fake)
                if args.watcher == "process":
                    wenv = {**env, "NEWSBOT_CORPUS_DIR": str(run_root / "corpus")}
                    log = (run_root / "watcher.log").open("wb")
                    watcher = subprocess.Popen([PY, "-m", "index", "watch"], env=wenv, cwd=ROOT, stdout=log,
                                               stderr=subprocess.STDOUT)
                    time.sleep(15)  # its model loads
                for item in items:
                    time.sleep(rng.uniform(0, 10))  # a random moment in the feed's 10 s cycle
                    rel = f"news/{item['slug']}.html"
                    web.write(rel, article_page(item["title"], json.loads(item["paras"]), site="Harbour Gazette",
                                                published=dt.date.today()))
                    published.append(Item(item["title"], web.url(rel), guid=item["slug"],
                                          published=dt.datetime.now(dt.UTC)))
                    web.write("feed.xml", rss(published, title="Harbour news"))
                    t_pub = time.monotonic()
                    url = web.url(rel)
                    asks = 0
                    while True:
                        asks += 1
                        t_ask = time.monotonic()
                        _, reply = ask(fake, item["question"], timeout=60)
                        if _cites(reply, url) and any(item["person"] in t for t in _texts(reply)):
                            latency = time.monotonic() - t_pub
                            break
                        if time.monotonic() - t_pub > 180:
                            raise RuntimeError(f"{item['slug']} not answered after 180 s:\n{bot.tail()}")
                        time.sleep(max(0.0, 1.0 - (time.monotonic() - t_ask)))
                    samples.append({"item": item["slug"], "latency_s": latency, "asks": asks})
                    print(f"{item['slug']}: answered {latency:.1f}s after publication ({asks} asks)", flush=True)
            finally:
                if watcher is not None:
                    watcher.terminate()
                    watcher.wait(30)
                bot.stop()
    finally:
        web.close()
    lat = [s["latency_s"] for s in samples]
    return {"watcher": args.watcher, "interval_s": 10, "poll_s": 2, "base_articles": args.base,
            "samples": samples, "p50": statistics.median(lat), "p95": pct(lat, 0.95), "max": max(lat),
            "load": loadavg()}


def _texts(message: dict[str, Any]) -> list[str]:
    from e2e_harness import message_texts

    return message_texts(message)


# --------------------------------------------------------------------------------------------
# under-ingest


def step_under_ingest(args: argparse.Namespace, work: Path, emb: Any) -> dict[str, Any]:
    from index.config import Settings
    from index.engine import Engine
    from index.ingest import Ingester

    base = base_index(work, args.base, emb)
    engine = Engine.open(Settings.from_env({"NEWSBOT_LOG_LEVEL": "WARNING"}, index_dir=base / "index"), embedder=emb)
    questions = [json.loads(line)["question"] for line in (NEWS_DEV / "questions.jsonl").open(encoding="utf-8")][:60]
    for q in questions[:10]:
        engine.ask(q)

    def block(until: float | None = None, rounds: int = 1) -> list[float]:
        out = []
        done = 0
        while True:
            for q in questions:
                t0 = time.perf_counter()
                engine.ask(q)
                out.append((time.perf_counter() - t0) * 1000)
                if until is not None and time.monotonic() > until:
                    return out
            done += 1
            if until is None and done >= rounds:
                return out

    web = Web(work / "web-under")
    results: dict[str, Any] = {}
    try:
        publish_pages(web, news_dev(args.pages))
        for mode in ("process", "in-process"):
            idle_before = block(rounds=2)
            root = work / f"under-{mode}"
            shutil.rmtree(root, ignore_errors=True)
            s = live_settings(root)
            busy: list[float] = []
            t0 = time.monotonic()
            if mode == "process":
                env = {**os.environ, "NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_HOST_DELAY_SECONDS": "0",
                       "NEWSBOT_LOG_LEVEL": "INFO", "HF_HUB_OFFLINE": "1"}
                log_path = root / "ingest.log"
                with log_path.open("wb") as log:
                    # `watch --once --all` is what a cron watcher runs; the feed is registered first.
                    from index.feeds import open_feed_store

                    st = open_feed_store(s)
                    st.add_feed(web.url("feed.xml"), 900)
                    st.close()
                    proc = subprocess.Popen([PY, "-m", "index", "watch", "--once", "--all", "--quiet",
                                             "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)],
                                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                    while "new article" not in log_path.read_text(errors="replace"):  # past its model load
                        if proc.poll() is not None:
                            raise RuntimeError(log_path.read_text())
                        time.sleep(0.2)
                    t0 = time.monotonic()
                    while proc.poll() is None:
                        busy += block(until=time.monotonic() + 2)
                    seconds = time.monotonic() - t0
            else:
                done = threading.Event()

                def ingest(s: Any = s, done: threading.Event = done) -> None:
                    async def go() -> None:
                        async with Ingester(s, embedder=emb) as ing:
                            await ing.add_feed(web.url("feed.xml"))
                    asyncio.run(go())
                    done.set()

                th = threading.Thread(target=ingest, name="bench-ingest")
                th.start()
                while not done.is_set():
                    busy += block(until=time.monotonic() + 2)
                th.join()
                seconds = time.monotonic() - t0
            idle_after = block(rounds=2)
            idle = idle_before + idle_after
            results[mode] = {"idle_p50_ms": statistics.median(idle), "busy_p50_ms": statistics.median(busy),
                             "idle_p95_ms": pct(idle, 0.95), "busy_p95_ms": pct(busy, 0.95),
                             "ratio": statistics.median(busy) / statistics.median(idle),
                             "idle_before_p50_ms": statistics.median(idle_before),
                             "idle_after_p50_ms": statistics.median(idle_after),
                             "asks_idle": len(idle), "asks_busy": len(busy), "ingest_s": seconds, "load": loadavg()}
            print(f"{mode}: ask p50 idle {statistics.median(idle):.1f} ms, while ingesting "
                  f"{statistics.median(busy):.1f} ms ({results[mode]['ratio']:.2f}x) over {len(busy)} asks", flush=True)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        web.close()
    return {"pages": args.pages, "base_articles": args.base, "questions": len(questions), **results}


# --------------------------------------------------------------------------------------------
# generation: what one round's new generation costs, by index size


def step_generation(args: argparse.Namespace, work: Path, emb: Any) -> dict[str, Any]:
    import dataclasses

    from index.loaders import article_fingerprint
    from index.records import Article
    from index.stores.build import update_index
    from index.stores.embedded import Snapshot, read_manifest

    sources = [base_index(work, args.base, emb) / "index"]
    if (ROOT / "data" / "eval-news-dev" / "manifest.json").exists():  # `make eval` builds it
        sources.append(ROOT / "data" / "eval-news-dev")
    rows = []
    for src in sources:
        ix = work / f"gen-{src.parent.name}-{src.name}"
        shutil.rmtree(ix, ignore_errors=True)
        shutil.copytree(src, ix, ignore=shutil.ignore_patterns("embcache*"))
        m = read_manifest(ix)
        size = sum((ix / m["files"][k]).stat().st_size for k in ("sqlite", "faiss"))
        writes, opens = [], []
        for i in range(3):
            item = json.loads(make_items(3, seed=99)[i]["paras"])
            a = Article(id=f"gen-bench-{i}", title="t", text="\n".join(item), url=f"https://example.org/{i}")
            a = dataclasses.replace(a, fingerprint=article_fingerprint(a))
            t0 = time.perf_counter()
            update_index(ix, [a], [], emb)
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            Snapshot.open(ix, emb).close()
            opens.append(time.perf_counter() - t0)
        rows.append({"sentences": m["counts"]["sentences"], "articles": m["counts"]["articles"], "mib": size / 2**20,
                     "write_s": statistics.median(writes), "open_s": statistics.median(opens), "load": loadavg()})
        print(f"{m['counts']['sentences']} sentences ({size / 2**20:.0f} MiB): a generation with one new article "
              f"{statistics.median(writes):.2f}s, opening it {statistics.median(opens):.2f}s", flush=True)
        shutil.rmtree(ix, ignore_errors=True)
    return {"rows": rows}


# --------------------------------------------------------------------------------------------
# Report


def save(name: str, data: dict[str, Any]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / f"ingest-{name}.json").write_text(json.dumps(data, indent=2))


def load(name: str) -> dict[str, Any] | None:
    p = DATA / f"ingest-{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def write_report() -> None:
    tp, fresh_bot, fresh_proc, under = load("throughput"), load("freshness-bot"), load("freshness-process"), load("under-ingest")
    gen = load("generation")
    meta = load("meta") or {}
    out = ["# Live news: freshness, throughput, latency while ingesting", "",
           "Written by `scripts/bench_ingest.py` (`.venv/bin/python scripts/bench_ingest.py`; one step: "
           "`--steps freshness`). Everything runs on this machine: the web is a local HTTP server in a "
           "subprocess (real sockets, ETag and 304, one host), Discord is the tests' stand-in, the bot is "
           "the real process with the packaged all-MiniLM-L6-v2 (torch). Timings on this shared 2-core "
           "machine are noisy: ratios are measured within one run, and medians are quoted.", "",
           f"Machine: {meta.get('machine', '?')}; run {meta.get('when', '?')}.", "",
           "| target | measured | |", "|---|---|---|"]
    if fresh_bot:
        out.append(f"| item in a feed -> answered, p50 ≤ 30 s (10 s fetch interval) | p50 {fresh_bot['p50']:.1f} s, "
                   f"p95 {fresh_bot['p95']:.1f} s ({len(fresh_bot['samples'])} items, watcher in the bot) | "
                   f"**{'met' if fresh_bot['p50'] <= 30 else 'not met'}** |")
    if tp:
        out.append(f"| ingest ≥ 0.7× the rebuild's rate ({tp['pages']} pages) | {tp['ratio']:.2f}× "
                   f"({tp['ingest_per_min']:.0f} vs {tp['rebuild_per_min']:.0f} articles/min) | "
                   f"**{'met' if tp['ratio'] >= 0.7 else 'not met'}** |")
    if under:
        for mode, label in (("process", "a `newsbot watch` process"), ("in-process", "the bot's own watcher")):
            if mode in under:
                r = under[mode]
                out.append(f"| warm ask p50 while {label} ingests ≤ 1.5× idle | {r['ratio']:.2f}× "
                           f"({r['busy_p50_ms']:.1f} vs {r['idle_p50_ms']:.1f} ms) | "
                           f"**{'met' if r['ratio'] <= 1.5 else 'not met'}** |")
    if fresh_bot or fresh_proc:
        out += ["", "## Freshness: from a new item in a feed to the bot answering from it", "",
                "The feed is fetched every 10 s; the bot checks for a new index generation every 2 s "
                "(`NEWSBOT_INDEX_POLL_SECONDS`). Each item is published at a random moment of the feed's "
                "cycle (0-10 s after the previous answer); `/ask` is then sent every second with a question "
                "only that item answers, until the answer quotes it and cites its URL. The latency runs "
                "from the moment the feed file is replaced to the answer arriving at the fake Discord: "
                "the wait for the next fetch (0-10 s), the feed and page fetches, extraction, "
                "embedding, a new index generation (the SQLite copy, the FAISS file, their hashes), the "
                "bot noticing it and loading it, and the question itself.", "",
                "| watcher | base index | items | p50 | p95 | max |", "|---|---|---:|---:|---:|---:|"]
        for f in (fresh_bot, fresh_proc):
            if f:
                label = "in the bot (`NEWSBOT_WATCH=1`)" if f["watcher"] == "bot" else "a separate `newsbot watch`"
                out.append(f"| {label} | {f['base_articles']} news-dev articles | {len(f['samples'])} | "
                           f"{f['p50']:.1f} s | {f['p95']:.1f} s | {f['max']:.1f} s |")
        for f in (fresh_bot, fresh_proc):
            if f:
                out += ["", f"Per item, watcher {f['watcher']} (s): " + ", ".join(f"{s['latency_s']:.1f}" for s in f["samples"]) + "."]
        out += ["", "Most of the latency is the wait for the next fetch (uniform over the 10 s interval) and "
                "the 1 s between two questions; the rest (fetch, extract, embed one article, write a "
                "generation, the bot opening it) is 1-3 s on this index. It grows with the index: see "
                "*One round's generation* below."]
    if tp:
        out += ["", f"## Ingest throughput: {tp['pages']} pages from a local server, against a rebuild of the same "
                "articles as files", "",
                f"{tp['pages']} news-dev articles, each served as an HTML page (a news site's markup: navigation, "
                "`<article>`, footer) behind one RSS feed. **Ingest** is `Ingester.add_feed` (what `newsbot "
                "feeds add` runs): fetch the feed and every page (8 at a time, one host, no per-host delay: "
                "with the default 1 s delay one host allows at most 60 pages a minute, by design), robots.txt, "
                "extract with trafilatura, write each article's Markdown file, embed, index. **Rebuild** is "
                "`build_index` over the very files the ingest wrote, into an empty index. Both start from an "
                "empty index and an empty embedding cache, with the model already loaded.", "",
                "| run | ingest s | ingest articles/min | rebuild s | rebuild articles/min | ratio |",
                "|---|---:|---:|---:|---:|---:|"]
        for i, (a, b) in enumerate(zip(tp["runs"]["ingest"], tp["runs"]["rebuild"])):
            out.append(f"| {i + 1} | {a['seconds']:.1f} | {a['per_min']:.0f} | {b['seconds']:.1f} | {b['per_min']:.0f} "
                       f"| {a['per_min'] / b['per_min']:.2f}× |")
        out.append(f"| **median** | | **{tp['ingest_per_min']:.0f}** | | **{tp['rebuild_per_min']:.0f}** | "
                   f"**{tp['ratio']:.2f}×** |")
        r0 = tp["runs"]["ingest"][0]
        out += ["", f"{r0['articles']} articles, {r0['sentences']} sentences."]
    if under:
        out += ["", "## Warm `ask` latency while a watcher ingests", "",
                f"The engine over {under['base_articles']} news-dev articles answers {under['questions']} news-dev "
                "questions in a loop in this process: idle (two passes before and two after), and while a "
                f"watcher ingests the {under['pages']} pages above: a separate `newsbot watch --once --all` "
                "process (timed from its first article, after its model has loaded), and an ingester in this "
                "process sharing the engine's model, as the bot runs it with `NEWSBOT_WATCH=1`. Both "
                "watchers run their parsing, extraction and embedding at a lower CPU priority (nice +10).", "",
                "| watcher | idle p50 | busy p50 | ratio | idle p95 | busy p95 | asks idle / busy | ingest s |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for mode in ("process", "in-process"):
            if mode in under:
                r = under[mode]
                out.append(f"| {mode} | {r['idle_p50_ms']:.1f} ms | {r['busy_p50_ms']:.1f} ms | {r['ratio']:.2f}× | "
                           f"{r['idle_p95_ms']:.1f} ms | {r['busy_p95_ms']:.1f} ms | {r['asks_idle']} / {r['asks_busy']} "
                           f"| {r['ingest_s']:.0f} |")
    if under:
        r = under.get("process", {})
        out += ["", "What this costs: the watchers yield the CPU to questions, so while questions keep both "
                f"cores busy without a pause (this loop asks back to back) ingest slows down: the 500 pages took "
                f"{r.get('ingest_s', 0):.0f} s in the separate process and "
                f"{under.get('in-process', {}).get('ingest_s', 0):.0f} s in this one, against about "
                f"{tp['runs']['ingest'][0]['seconds']:.0f} s with no questions (above)." if tp else ""]
    if gen:
        out += ["", "## One round's generation, by index size", "",
                "A round's new and changed articles become one new generation of the FAISS + SQLite index "
                "(`index.stores.embedded.update_index`): the current database is copied, the vectors loaded, the "
                "articles added, both files written, hashed and committed by replacing the manifest; the bot "
                "then opens it (checking both files' hashes). Both costs grow with the index, whatever the "
                "round brings. Median of 3, one new article each:", "",
                "| index | files | new generation | bot opens it |", "|---|---:|---:|---:|"]
        for r in gen["rows"]:
            out.append(f"| {r['articles']} articles, {r['sentences']} sentences | {r['mib']:.0f} MiB | "
                       f"{r['write_s']:.2f} s | {r['open_s']:.2f} s |")
        out += ["", "At a few hundred thousand sentences this is still seconds; an archive of millions wants a "
                "database server that updates in place (the PostgreSQL backend of the next issue)."]
    out += ["", "## Commands", "", "```", ".venv/bin/python scripts/bench_ingest.py            # all steps, about an hour",
            ".venv/bin/python scripts/bench_ingest.py --steps freshness --watcher process",
            ".venv/bin/python scripts/bench_ingest.py --report-only   # rewrite this file from docs/bench-data/",
            "```", ""]
    (ROOT / "docs" / "INGEST.md").write_text("\n".join(out), encoding="utf-8")
    print("wrote docs/INGEST.md")


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["serve"]:
        serve(Path(sys.argv[2]).resolve(), Path(sys.argv[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="throughput,freshness,under-ingest,generation")
    p.add_argument("--pages", type=int, default=500)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--base", type=int, default=300, help="news-dev articles in the index the bot serves")
    p.add_argument("--watcher", choices=("bot", "process"), default="bot")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "newsbot-bench-ingest")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.report_only:
        write_report()
        return 0
    from index.config import Settings
    from index.embed import load_embedder

    emb = load_embedder(Settings.from_env({}))
    args.work.mkdir(parents=True, exist_ok=True)
    save("meta", {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                  "when": dt.datetime.now(dt.UTC).isoformat(timespec="minutes")})
    for step in args.steps.split(","):
        t0 = time.monotonic()
        if step == "throughput":
            save("throughput", step_throughput(args, args.work, emb))
        elif step == "freshness":
            save(f"freshness-{args.watcher}", step_freshness(args, args.work, emb))
        elif step == "under-ingest":
            save("under-ingest", step_under_ingest(args, args.work, emb))
        elif step == "generation":
            save("generation", step_generation(args, args.work, emb))
        else:
            raise SystemExit(f"unknown step {step!r}")
        print(f"step {step}: {time.monotonic() - t0:.0f}s, load {loadavg()}", flush=True)
    if not args.no_write:
        write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
