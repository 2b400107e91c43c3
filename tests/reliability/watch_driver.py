"""Run ``newsbot watch`` for real in this process, with the hashing embedder, and kill or hold it at a
chosen point of a round.

Used by the reliability tests as a subprocess, so that a watcher can be killed with SIGKILL in the
middle of a round (or held at an index-build stage while the test sends it SIGTERM)::

    python tests/reliability/watch_driver.py [--kill-at POINT] [--hold-at STAGE --hold-file F
        --release-file F] [--log FILE] -- watch [--once] [--all] --corpus DIR --index DIR

POINT is one of:

* ``tmp:N``     the Nth article file's temporary copy is written and synced, not yet renamed into place;
* ``file:N``    the Nth article file is in place (``ArticleFiles.write`` returned), not yet recorded;
* ``article:N`` the Nth article is recorded (``FeedStore.put_article`` returned), its feed entry not yet;
* ``entry:N``   the Nth feed entry is recorded with its article (``FeedStore.record_entry``), the
  feed's fetch not yet, nor the round's indexing;
* ``stage:GLOB`` the index build reaches a stage matching GLOB (``Ingester._hook``, the hook the
  ingester passes to ``update_index`` / ``build_index``): ``stage:parse:1``, ``stage:embed:*``, ...

``--log`` appends ``PID EVENT DETAIL`` lines to FILE for every file written, article and entry
recorded, build stage and finished round (``round N``), so that a test knows where a process is.

Everything after ``--`` goes to the real ``index.cli.main``: argument parsing, logging, signal
handling and exit codes are the CLI's own; only the model is swapped for the hashing embedder.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

#: A hold never lasts longer than this (the test that holds a watcher may have died).
MAX_HOLD_S = 60.0

KINDS = ("tmp", "file", "article", "entry", "stage")


class _Counter:
    """Numbered events (1, 2, ...) from any thread; logs each and kills the process at the chosen one."""

    def __init__(self, kind_at: str | None, log: Path | None) -> None:
        self.kind, _, self.at = (kind_at or "").partition(":")
        self.log = log
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def note(self, kind: str, detail: str) -> int:
        with self.lock:
            n = self.counts[kind] = self.counts.get(kind, 0) + 1
        self.write(f"{kind} {n} {detail}")
        if kind == self.kind and kind != "stage" and str(n) == self.at:
            self.die()
        return n

    def write(self, line: str) -> None:
        if self.log is None:
            return
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {line}\n".encode())
        finally:
            os.close(fd)

    def die(self) -> None:
        self.write(f"killed {self.kind}:{self.at}")
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # SIGKILL is delivered at once; never go on


class _OsWithReplaceHook:
    """``index.ingest``'s view of ``os``: the real module, with ``replace`` announced first."""

    def __init__(self, real: Any, before_replace: Any) -> None:
        self._real = real
        self._before_replace = before_replace

    def replace(self, src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        self._before_replace(src, dst)
        self._real.replace(src, dst, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kill-at", metavar="POINT", help="SIGKILL this process at POINT (see above)")
    p.add_argument("--hold-at", metavar="STAGE", help="pause at this index-build stage until --release-file exists")
    p.add_argument("--hold-file", type=Path, help="created when the hold begins")
    p.add_argument("--release-file", type=Path, help="the hold ends when this file exists")
    p.add_argument("--log", type=Path, help="append 'PID EVENT DETAIL' for every event to FILE")
    p.add_argument("cli", nargs=argparse.REMAINDER, help="arguments of `newsbot` (after --)")
    args = p.parse_args(argv)
    cli_args = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    if args.kill_at and (args.kill_at.partition(":")[0] not in KINDS or not args.kill_at.partition(":")[2]):
        p.error(f"--kill-at {args.kill_at!r}: expected one of {', '.join(k + ':...' for k in KINDS)}")
    if args.hold_at and (args.hold_file is None or args.release_file is None):
        p.error("--hold-at needs --hold-file and --release-file")

    os.environ.setdefault("NEWSBOT_ALLOW_PRIVATE_URLS", "1")  # the test's server is on 127.0.0.1
    os.environ.setdefault("NEWSBOT_HOST_DELAY_SECONDS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import index.embed
    import index.ingest
    from index.cli import main as cli_main
    from index.embed import HashingEmbedder
    from index.feeds import FeedStore
    from index.ingest import ArticleFiles, Ingester

    events = _Counter(args.kill_at, args.log)

    # (tmp) The temporary copy of an article file is complete: announced before it is renamed.
    def before_replace(src: Any, dst: Any) -> None:
        if str(src).endswith(".tmp") and Path(dst).suffix == ".md":
            events.note("tmp", str(dst))

    index.ingest.os = _OsWithReplaceHook(os, before_replace)  # type: ignore[assignment]

    # (file) The article file is in place, not yet recorded.
    real_write = ArticleFiles.write

    @functools.wraps(real_write)
    def write(self: ArticleFiles, rel: str, content: str) -> None:
        real_write(self, rel, content)
        events.note("file", rel)

    ArticleFiles.write = write  # type: ignore[method-assign]

    # (article) The article is recorded in the feed state, its feed entry not yet.
    real_put = FeedStore.put_article

    @functools.wraps(real_put)
    def put_article(self: FeedStore, a: Any, aliases: Any) -> None:
        real_put(self, a, aliases)
        events.note("article", a.id)

    FeedStore.put_article = put_article  # type: ignore[method-assign]

    # (entry) The feed entry is recorded with the article it became.
    real_entry = FeedStore.record_entry

    @functools.wraps(real_entry)
    def record_entry(self: FeedStore, feed_id: int, key: str, signature: str, **kwargs: Any) -> None:
        real_entry(self, feed_id, key, signature, **kwargs)
        if kwargs.get("article") is not None:
            events.note("entry", str(kwargs["article"]))

    FeedStore.record_entry = record_entry  # type: ignore[method-assign]

    # (stage) The hook the ingester gives update_index / build_index.
    real_hook = Ingester._hook

    def hook(self: Ingester, stage: str) -> None:
        events.note("stage", stage)
        if events.kind == "stage" and fnmatch.fnmatchcase(stage, events.at):
            events.die()
        if args.hold_at and fnmatch.fnmatchcase(stage, args.hold_at):
            args.hold_file.touch()
            deadline = time.monotonic() + MAX_HOLD_S
            while not args.release_file.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        real_hook(self, stage)  # stops the build at a stage boundary once SIGTERM was received

    Ingester._hook = hook  # type: ignore[method-assign]

    # Rounds, so that a test knows when a watcher is between rounds.
    real_round = Ingester.run_round

    @functools.wraps(real_round)
    async def run_round(self: Ingester, **kwargs: Any) -> Any:
        report = await real_round(self, **kwargs)
        events.note("round", f"new={report.count('new')} indexed={report.indexed}")
        return report

    Ingester.run_round = run_round  # type: ignore[method-assign]

    # The CLI loads the configured model; these runs use the hashing embedder instead.
    index.embed.load_embedder = lambda *_a, **_k: HashingEmbedder()  # type: ignore[assignment]
    index.embed.model_fingerprint = lambda *_a, **_k: HashingEmbedder.fingerprint  # type: ignore[assignment]
    return cli_main(cli_args)


if __name__ == "__main__":
    sys.exit(main())
