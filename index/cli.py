"""The ``newsbot`` command: rebuild the index, ask questions, list sources, evaluate, run."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from . import logs
from .config import Settings
from .errors import ConfigError, IndexMismatchError, IndexNotFoundError, NewsbotError, QuestionError
from .highlight import pieces
from .records import Answer

if TYPE_CHECKING:
    from .feeds import Feed

log = logging.getLogger("newsbot")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2024-05-01") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="newsbot",
        description="Answer questions about news articles by quoting the sentences that answer them, with citations.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def index_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--index", type=Path, metavar="DIR",
                        help="index folder (default: NEWSBOT_INDEX_DIR or data/index)")

    r = sub.add_parser("rebuild", help="build or update the index from the corpus folder")
    r.add_argument("--corpus", type=Path, metavar="DIR", help="corpus folder (default: NEWSBOT_CORPUS_DIR or corpus/)")
    index_arg(r)
    r.add_argument("--full", action="store_true", help="start over instead of updating incrementally")
    r.add_argument("--wait", action="store_true", help="wait for another running rebuild instead of exiting")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    a = sub.add_parser("ask", help="answer a question (or one question per line from standard input)")
    a.add_argument("question", nargs="*", help="the question; omit it to read questions from standard input")
    index_arg(a)
    a.add_argument("--json", action="store_true", help="print one JSON object per question")
    a.add_argument("--source", metavar="OUTLET", help="only articles from this outlet")
    a.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="only articles published on or after this date")
    a.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="only articles published on or before this date")
    a.add_argument("--asked-on", type=_date, metavar="YYYY-MM-DD",
                   help='the day "this week" or "recently" in a question refers to (default: today)')

    s = sub.add_parser("sources", help="list the indexed articles")
    s.add_argument("query", nargs="?", help="only articles whose title or outlet contains this")
    index_arg(s)
    s.add_argument("--json", action="store_true", help="print one JSON object per article")

    e = sub.add_parser("eval", help="measure answer quality on a question set, beside two baselines")
    e.add_argument("articles", type=Path, help="articles, JSON Lines (id, url, title, source, published, text)")
    e.add_argument("questions", type=Path, help="questions, JSON Lines (id, question, answers, answerable)")
    index_arg(e)
    e.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    e.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    e.add_argument("--ignore-dates", action="store_true",
                   help="ask every question with no date, as if its \"date\" field were absent")

    def where_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--corpus", type=Path, metavar="DIR",
                        help="corpus folder, where fetched articles and the feed list are kept (default: "
                             "NEWSBOT_CORPUS_DIR or corpus/)")
        index_arg(sp)

    f = sub.add_parser("feeds", help="follow RSS and Atom feeds: add, list, remove")
    fsub = f.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fa = fsub.add_parser("add", help="follow a feed: fetch it now, index its articles, then every DURATION")
    fa.add_argument("url", help="the feed's URL (RSS or Atom)")
    fa.add_argument("--every", type=_duration, default=None, metavar="DURATION",
                    help="how often to fetch it: 30s, 10m, 1h, ... (default: NEWSBOT_FEED_INTERVAL or 15m)")
    fa.add_argument("--quiet", action="store_true", help="no progress bar")
    where_args(fa)
    fl = fsub.add_parser("list", help="the followed feeds and their health")
    fl.add_argument("--json", action="store_true", help="print one JSON object per feed")
    where_args(fl)
    fr = fsub.add_parser("remove", help="stop following a feed (its articles stay indexed)")
    fr.add_argument("url", help="the feed's URL, as `feeds list` shows it")
    where_args(fr)

    ing = sub.add_parser("ingest", help="fetch these article pages now and index them")
    ing.add_argument("urls", nargs="+", metavar="URL", help="article page URLs")
    ing.add_argument("--quiet", action="store_true", help="no progress bar")
    where_args(ing)

    w = sub.add_parser("watch", help="fetch due feeds and index what is new, forever (SIGTERM or Ctrl-C stops it)")
    w.add_argument("--once", action="store_true", help="one round over the due feeds, then exit (for cron)")
    w.add_argument("--all", action="store_true", help="make every feed due (with --once: fetch them all now)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    where_args(w)

    db = sub.add_parser("db", help="the PostgreSQL index (NEWSBOT_DATABASE_URL): migrate, status")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dsub.add_parser("migrate", help="apply the schema migrations the database lacks")
    ds = dsub.add_parser("status", help="schema version, counts, newest article, build state, replica lag")
    ds.add_argument("--json", action="store_true", help="one JSON object")

    run = sub.add_parser("run", help="start the Discord bot if DISCORD_TOKEN is set, else a terminal chat")
    run.add_argument("--corpus", type=Path, metavar="DIR", help="corpus folder to index if needed")
    index_arg(run)
    for entry in entry_points(group="newsbot.commands"):  # e.g. `newsbot feedback`, from the bot package
        try:
            register = entry.load()
        except ImportError as e:  # a broken add-on must not take the engine's commands down with it
            log.warning("the `newsbot %s` command is unavailable: %s", entry.name, e)
            continue
        register(sub)
    return p


class Frontend(Protocol):
    """What ``newsbot run`` starts instead of the terminal chat: found through the ``newsbot.frontends``
    entry points (the Discord bot registers one), so this package never imports a front end."""

    def configured(self) -> bool:
        """Whether its settings (e.g. DISCORD_TOKEN) are there, so ``run`` should start it."""
        ...

    def main(self, argv: Sequence[str]) -> int: ...


def configured_frontend() -> Frontend | None:
    """The first installed front end whose settings are present, or None (the terminal chat)."""
    for entry in entry_points(group="newsbot.frontends"):
        frontend: Frontend = entry.load()
        if frontend.configured():
            return frontend
    return None


def _duration(value: str) -> float:
    from .config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(corpus_dir=getattr(args, "corpus", None))
    if getattr(args, "index", None) is not None:
        if settings.uses_database:
            raise ConfigError("--index names an index folder, but NEWSBOT_DATABASE_URL is set: the index lives "
                              "in that database. Unset NEWSBOT_DATABASE_URL to use a folder, or drop --index")
        settings = Settings.from_env(index_dir=args.index, corpus_dir=getattr(args, "corpus", None))
    return settings


# -- rebuild -----------------------------------------------------------------------------------


class _Progress:
    """A progress bar on a terminal, a log line every 10% elsewhere."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total == 0:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="sent", desc="embedding", file=sys.stderr)
            self.bar.n = done
            self.bar.refresh()
            if done >= total:
                self.bar.close()
            return
        decile = done * 10 // total
        if decile != self.last_decile:
            self.last_decile = decile
            log.info("embedding: %d/%d sentences (%d%%)", done, total, done * 100 // total)


def rebuild(settings: Settings, *, full: bool = False, wait: bool = False, quiet: bool = False,
            embedder: object | None = None) -> int:
    from .embed import load_embedder
    from .loaders import load_corpus
    from .stores import build_index, open_store

    loaded = load_corpus(settings.corpus_dir)
    log.info("read %d articles from %d files in %s", len(loaded.articles), loaded.files, settings.corpus_dir)
    if not loaded.articles:
        log.error("no articles found in %s: add .md, .txt, .jsonl or .html files", settings.corpus_dir)
        return 1
    if not full and embedder is None and not settings.uses_database and _up_to_date_locked(settings, loaded, wait=wait):
        print(f"index in {settings.index_dir} is up to date: {len(loaded.articles)} articles", file=sys.stderr)
        for w in loaded.warnings:
            print(f"warning: skipped {w}", file=sys.stderr)
        return 0
    emb = embedder or load_embedder(settings)
    store = open_store(settings)
    try:
        report = build_index(store, loaded, emb, full=full, progress=_Progress(quiet),  # type: ignore[arg-type]
                             wait=wait)
    finally:
        store.close()
    print(report.summary(), file=sys.stderr)
    for w in loaded.warnings:
        print(f"warning: skipped {w}", file=sys.stderr)
    return 0


def _up_to_date_locked(settings: Settings, loaded: object, *, wait: bool) -> bool:
    """:func:`_up_to_date`, asked while holding the rebuild lock: a rebuild that is running may be
    about to change the answer (``--wait`` waits for it; otherwise a clear error)."""
    from .stores.embedded import rebuild_lock

    with rebuild_lock(settings.index_dir, wait=wait):
        return _up_to_date(settings, loaded)


def _up_to_date(settings: Settings, loaded: object) -> bool:
    """True when the index already holds exactly these articles, embedded by the configured model
    (checked without loading the model, which takes seconds)."""
    from .embed import model_fingerprint
    from .stores.embedded import Snapshot, corpus_fingerprint, read_manifest

    try:
        manifest = read_manifest(settings.index_dir)
        Snapshot.verify_files(settings.index_dir, manifest)
    except (IndexNotFoundError, IndexMismatchError):
        return False
    fps = [a.fingerprint for a in loaded.articles]
    return (manifest.get("corpus", {}).get("fingerprint") == corpus_fingerprint(fps)
            and manifest.get("model", {}).get("sha256") == model_fingerprint(settings))


# -- ask -----------------------------------------------------------------------------------------


BOLD, PLAIN = "\033[1m", "\033[0m"


def format_answer(answer: Answer, *, bold: bool = False) -> str:
    """The answer as plain text for a terminal; ``bold`` marks each quote's answer (ANSI bold)."""
    if not answer.answered:
        return f"{answer.message}\n(confidence {answer.confidence:.2f})"
    lines = []
    for q in answer.quotes:
        marks = "".join(f"[{n}]" for n in q.citations)
        text = "".join(f"{BOLD}{p}{PLAIN}" if answer else p for p, answer in pieces(q.text, q.answer_spans)) \
            if bold else q.text
        lines.append(f"“{text}” {marks}")
    lines.append("")
    lines.append("Sources:")
    for c in answer.citations:
        meta = ", ".join(x for x in (c.source, c.published) if x)
        lines.append(f"  [{c.n}] {c.title}" + (f" ({meta})" if meta else ""))
        if c.link or c.url:
            lines.append(f"      {c.link or c.url}")
    lines.append(f"(confidence {answer.confidence:.2f})")
    return "\n".join(lines)


def _answer_stream(engine: object, questions: TextIO, out: TextIO, args: argparse.Namespace, *, prompt: bool) -> int:
    from .engine import Engine

    assert isinstance(engine, Engine)
    failures = 0
    while True:
        if prompt:
            out.write("\nquestion> ")
            out.flush()
        line = questions.readline()
        if not line:
            break
        q = line.strip()
        if not q:
            continue
        if q.lower() in {"quit", "exit", ":q"} and prompt:
            break
        failures += _answer_one(engine, q, out, args)
    return 0 if failures == 0 else 1


def _answer_one(engine: object, question: str, out: TextIO, args: argparse.Namespace) -> int:
    try:
        answer = engine.ask(question, source=getattr(args, "source", None),
                            since=getattr(args, "since", None), until=getattr(args, "until", None),
                            asked_on=getattr(args, "asked_on", None) or dt.date.today())
    except QuestionError as e:
        if getattr(args, "json", False):
            out.write(json.dumps({"question": question, "answered": False, "error": str(e)}) + "\n")
        else:
            out.write(f"{e}\n")
        out.flush()
        return 1
    if getattr(args, "json", False):
        out.write(json.dumps(answer.to_json(), ensure_ascii=False) + "\n")
    else:
        out.write(format_answer(answer, bold=logs.is_terminal(out) and not os.environ.get("NO_COLOR")) + "\n")
    out.flush()
    return 0


def ask(settings: Settings, args: argparse.Namespace) -> int:
    from .engine import Engine

    with logs.Status("Loading the model and the index…"):
        engine = Engine.open(settings)
    if args.question:
        return _answer_one(engine, " ".join(args.question), sys.stdout, args)
    return _answer_stream(engine, sys.stdin, sys.stdout, args, prompt=sys.stdin.isatty() and not args.json)


def sources(settings: Settings, args: argparse.Namespace) -> int:
    from .engine import list_sources
    from .stores import open_store

    # Listing needs no model: the index alone.
    snap = open_store(settings).open()
    infos = list_sources(snap, args.query)
    for a in infos:
        if args.json:
            print(json.dumps(a.to_json(), ensure_ascii=False))
        else:
            meta = ", ".join(x for x in (a.source, a.published) if x)
            print(f"- {a.title}" + (f" ({meta})" if meta else "") + (f"\n  {a.url}" if a.url else ""))
    if not args.json:
        print(f"{len(infos)} article(s)", file=sys.stderr)
    return 0


# -- live news: feeds, ingest, watch ---------------------------------------------------------------


def _ingester(settings: Settings, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .ingest import Ingester

    return Ingester(settings, progress=_Progress(getattr(args, "quiet", False)))


def _print_round(report: object) -> None:
    """What a round left out, and why (what it took is logged as it is taken, and counted after)."""
    from .ingest import RoundReport

    assert isinstance(report, RoundReport)
    for p in report.all_pages():
        if p.status in ("skipped", "failed"):
            print(f"  {p.line()}", file=sys.stderr)
    if report.index_error:
        print(f"warning: {report.index_error}", file=sys.stderr)


def feed_lines(feeds: Sequence[Feed], now: float | None = None) -> list[str]:
    """``feeds list`` as text, a few lines a feed."""
    import time

    from .config import format_duration

    now = time.time() if now is None else now

    def when(t: float | None) -> str:
        if t is None:
            return "never"
        d = t - now
        stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{stamp} ({'in ' + format_duration(d) if d > 0 else format_duration(-d) + ' ago'})"

    lines = []
    for f in feeds:
        state = f"DISABLED ({f.disabled_reason})" if f.disabled else f"next fetch {when(f.next_due_at)}"
        status = f"HTTP {f.last_status}" if f.last_status else ("no answer" if f.last_fetch_at else "no fetch yet")
        lines.append(f"{f.url}\n  {f.title or '(untitled)'}; every {format_duration(f.interval_s)}; "
                     f"{f.articles} articles taken\n  last fetch {when(f.last_fetch_at)}, {status}"
                     + (f", error: {f.last_error}" if f.last_error else "")
                     + f"\n  {f.failures} failures in a row; {state}")
    return lines


def feeds(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from .feeds import open_feed_store
    from .ingest import FeedRefused

    if args.feeds_command == "list":
        store = open_feed_store(settings)
        try:
            listed = store.feeds()
        finally:
            store.close()
        if args.json:
            for feed in listed:
                print(json.dumps(feed.to_json(), ensure_ascii=False))
        else:
            for line in feed_lines(listed):
                print(line)
            print(f"{len(listed)} feed(s)", file=sys.stderr)
        return 0

    async def go() -> int:
        async with _ingester(settings, args) as ing:
            if args.feeds_command == "remove":
                gone = await ing.remove_feed(args.url)
                if gone is None:
                    print(f"error: not following {args.url} (see `newsbot feeds list`)", file=sys.stderr)
                    return 1
                print(f"feed removed: {gone.url} ({gone.articles} articles stay indexed)")
                return 0
            try:
                report = await ing.add_feed(args.url, every=args.every)
            except FeedRefused as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            _print_round(report)
            result = report.feeds[0]
            indexed = "indexed" if report.indexed else "fetched (NOT indexed yet: see the warning above)"
            print(f"feed added: {result.items} items, {result.count('new')} new articles {indexed}"
                  + (f", {result.count('duplicate')} already indexed" if result.count("duplicate") else "")
                  + (f", {result.count('skipped') + result.count('failed')} skipped"
                     if result.count("skipped") + result.count("failed") else ""))
            return 0 if report.indexed else 1

    return asyncio.run(go())


def ingest(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    async def go() -> int:
        async with _ingester(settings, args) as ing:
            report = await ing.ingest(args.urls)
        _print_round(report)
        print(report.summary())
        ok = report.indexed and all(p.status not in ("failed", "skipped") for p in report.pages)
        return 0 if ok else 1

    return asyncio.run(go())


def watch(settings: Settings, args: argparse.Namespace) -> int:
    """``newsbot watch``: rounds forever (or ``--once``); SIGTERM or Ctrl-C stop it between steps."""
    import asyncio
    import signal

    from .ingest import background_priority

    background_priority()  # a watcher is background work: answers (the bot) come first

    async def go() -> int:
        async with _ingester(settings, args) as ing:
            loop = asyncio.get_running_loop()
            signals = 0

            def on_signal(name: str) -> None:
                nonlocal signals
                signals += 1
                if signals > 1:  # a second Ctrl-C: stop now (the index is atomic; the next run resumes)
                    log.warning("%s again: stopping now", name)
                    os._exit(130)
                log.info("%s: stopping after the current step (again to stop at once)", name)
                ing.stop()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig.name)
            try:
                if args.once:
                    report = await ing.run_round(all_feeds=args.all)
                    _print_round(report)
                    print(report.summary())
                    return 0 if report.indexed or ing.stopping.is_set() else 1
                log.info("watching %d feeds (SIGTERM or Ctrl-C stops)", len(await ing.feeds()))
                await ing.watch(all_first=args.all)
                log.info("stopped")
                return 0
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    return asyncio.run(go())


# -- db --------------------------------------------------------------------------------------------


def database(settings: Settings, args: argparse.Namespace) -> int:
    """``newsbot db migrate|status``: the PostgreSQL backend's schema and state."""
    if not settings.uses_database:
        raise ConfigError("`newsbot db` needs NEWSBOT_DATABASE_URL=postgresql://…: the index is a folder now "
                          f"({settings.index_dir})")
    from .stores.postgres import SCHEMA_VERSION, PostgresStore, migrate, schema_version, status

    store = PostgresStore.from_settings(settings)
    try:
        if args.db_command == "migrate":
            conn = store.connect_primary(migrate_first=False)
            try:
                before = schema_version(conn)
                applied = migrate(conn)
            finally:
                conn.close()
            if applied:
                print(f"migrated {store.describe()} from schema version {before} to {applied[-1]}", file=sys.stderr)
            else:
                print(f"{store.describe()} is at schema version {before}, the latest ({SCHEMA_VERSION})", file=sys.stderr)
            return 0
        info = status(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    labels = [("database", "database"), ("schema_version", "schema version"), ("replica", "replica"),
              ("replay_lag_seconds", "replay lag (s)"), ("generation", "generation"), ("built_at", "built at"),
              ("articles", "articles"), ("sentences", "sentences"), ("newest_article", "newest article"),
              ("model", "model"), ("vector_type", "vectors"), ("size_bytes", "index size (bytes)"),
              ("build_running", "build running"), ("feeds", "feeds"), ("feeds_disabled", "feeds disabled"),
              ("fetched_articles", "fetched articles"), ("stored_answers", "stored answers"), ("votes", "votes")]
    for key, label in labels:
        if key in info:
            print(f"{label:>20}: {info[key]}")
    if info.get("schema_version", 0) < info.get("schema_latest", 0):
        print(f"the schema is behind this newsbot ({info['schema_latest']}): run `newsbot db migrate`", file=sys.stderr)
    return 0


# -- run -------------------------------------------------------------------------------------------


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``make run``: the bot when a token is configured, else a terminal chat over the index."""
    from .embed import load_embedder
    from .engine import Engine
    from .stores import open_store

    store = open_store(settings)
    try:
        empty = store.fingerprints() is None
    finally:
        store.close()
    embedder = None
    if empty:
        print(f"No index yet in {store.describe()}: building it from {settings.corpus_dir}.", file=sys.stderr)
        with logs.Status("Loading the model…"):
            embedder = load_embedder(settings)
        code = rebuild(settings, embedder=embedder)
        if code:
            return code
    frontend = configured_frontend()
    if frontend is not None:
        return frontend.main([])
    if embedder is None:
        with logs.Status("Loading the model…"):
            embedder = load_embedder(settings)  # once, even after a first build
    try:
        engine = Engine.open(settings, embedder=embedder)
    except IndexMismatchError as e:
        if settings.uses_database:
            raise  # a shared archive is rebuilt on purpose, not as a side effect of `run`
        # The folder was built by another model or embedding backend (NEWSBOT_BACKEND changed):
        # build it again for this one, as a first run builds it.
        print(f"{e}\nRebuilding {settings.index_dir} for the configured model.", file=sys.stderr)
        code = rebuild(settings, full=True, embedder=embedder)
        if code:
            return code
        engine = Engine.open(settings, embedder=embedder)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"newsbot: {engine.info['articles']} articles indexed. Ask a question (Ctrl-D to quit).\n"
              "No DISCORD_TOKEN is set, so this is the terminal chat; see README.md to run the Discord bot.")
    args.json = False
    return _answer_stream(engine, sys.stdin, sys.stdout, args, prompt=interactive)


def _log_level(settings: Settings, args: argparse.Namespace) -> str:
    """The terminal chat (``ask``, and ``run`` with no bot) and the reports of add-on commands that
    ask for it (``set_defaults(report=True)``) show their output, not log lines, unless
    NEWSBOT_LOG_LEVEL asks for them; other commands log newsbot's progress at INFO."""
    chat = args.command == "ask" or (args.command == "run" and configured_frontend() is None)
    quiet = chat or getattr(args, "report", False)
    return "WARNING" if quiet and not os.environ.get("NEWSBOT_LOG_LEVEL") else settings.log_level


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        logs.configure(_log_level(settings, args), verbose=args.verbose)
        if args.command != "eval":
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if args.command == "rebuild":
            return rebuild(settings, full=args.full, wait=args.wait, quiet=args.quiet)
        if args.command == "ask":
            return ask(settings, args)
        if args.command == "sources":
            return sources(settings, args)
        if args.command == "eval":
            from .evaluate import main as eval_main

            return eval_main(settings, args)
        if args.command == "run":
            return run(settings, args)
        if args.command == "feeds":
            return feeds(settings, args)
        if args.command == "ingest":
            return ingest(settings, args)
        if args.command == "watch":
            return watch(settings, args)
        if args.command == "db":
            return database(settings, args)
        if hasattr(args, "func"):  # a subcommand from the newsbot.commands entry points
            return int(args.func(args, settings))
    except NewsbotError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 2
