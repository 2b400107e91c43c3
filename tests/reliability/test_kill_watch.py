"""A watcher killed with SIGKILL in the middle of a round: the previous index keeps answering, the
next round completes, and no article is lost or doubled. And ``newsbot watch`` (forever) takes an
item published while it runs, and stops cleanly on SIGTERM.

Each kill is real: a subprocess runs ``newsbot watch --once`` (the CLI's own code, with the hashing
embedder, see watch_driver.py) against a real HTTP server on 127.0.0.1, and SIGKILLs itself at the
chosen point: while an article file is being written, after it is written but not recorded, after
it is recorded but its feed entry not, before the feed's fetch is recorded, or at a stage of the
index build. The installation starts from one with a first index (two articles) and a feed that
now lists four more.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from newsserver import Item, NewsServer, article_page
from relutil import QUESTIONS, ROOT, TOPICS, stray_files
from test_ingest import EMB, TODAY, feed, register, run, settings_for

from index.config import Settings
from index.engine import Engine
from index.feeds import open_feed_store
from index.loaders import load_corpus
from index.stores.embedded import Snapshot, indexed_fingerprints, read_manifest

DRIVER = Path(__file__).resolve().parent / "watch_driver.py"
PYTHON = sys.executable

FIRST = ["port", "bakery"]  # in the index before the kill
LATER = ["ferry", "museum", "election", "storm"]  # published afterwards: the killed round takes them
LIVE = ["satellite", "library"]  # the forever-watch test's own feed
ASK = {name: next(q for q in QUESTIONS if word in q) for name, word in
       [("port", "dock workers"), ("bakery", "bakery"), ("ferry", "ferry"), ("museum", "museum"),
        ("election", "mayor"), ("storm", "storm"), ("satellite", "satellite"), ("library", "library")]}


# --------------------------------------------------------------------------------------------
# The world: a news site, a feed, and an installation with a first index


def serve(web: NewsServer, name: str) -> str:
    title, body = TOPICS[name]
    path = f"/news/{name}"
    web.route(path, article_page(title, re.split(r"(?<=\.) ", body), site="Test Gazette", published=TODAY))
    return web.url(path)


def publish(web: NewsServer, path: str, names: list[str]) -> str:
    return feed(web, path, [Item(TOPICS[n][0], web.url(f"/news/{n}"), guid=f"id-{n}", published=TODAY)
                            for n in reversed(names)])  # newest first, as feeds list them


@dataclass
class World:
    web: NewsServer
    template: Path  # corpus/ and index/ after the first round (two articles)
    feed_url: str
    urls: dict[str, str]
    first_fps: dict[str, str]

    def install(self, root: Path) -> Settings:
        """A fresh copy of the installation with the first index, in ``root``."""
        for part in ("corpus", "index"):
            shutil.copytree(self.template / part, root / part)
        return settings_for(root)

    def page_hits(self, since: int) -> list[str]:
        return [r.path for r in self.web.requests[since:] if r.path.startswith("/news/")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with NewsServer() as web:
        urls = {name: serve(web, name) for name in FIRST + LATER + LIVE}
        template = tmp_path_factory.mktemp("watch-template")
        s = settings_for(template)
        feed_url = publish(web, "/feed.xml", FIRST)
        register(s, feed_url)
        first = run(s, lambda ing: ing.run_round(all_feeds=True))
        assert first.count("new") == 2 and first.indexed, first.summary()
        fps = indexed_fingerprints(s.index_dir)
        assert fps is not None and sorted(fps) == sorted(urls[n] for n in FIRST)
        publish(web, "/feed.xml", FIRST + LATER)  # four new items since the first round
        yield World(web, template, feed_url, urls, fps)


# --------------------------------------------------------------------------------------------
# Running the driver


def driver_env(level: str = "WARNING") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "NEWSBOT_LOG_LEVEL": level,
                "NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_HOST_DELAY_SECONDS": "0",
                "NEWSBOT_FETCH_TIMEOUT_SECONDS": "5", "NEWSBOT_CONNECT_TIMEOUT_SECONDS": "2"})
    return env


def driver_cmd(s: Settings, *cli: str, kill_at: str | None = None, log: Path | None = None,
               hold: tuple[str, Path, Path] | None = None) -> list[str]:
    cmd = [PYTHON, str(DRIVER)]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    if log:
        cmd += ["--log", str(log)]
    if hold:
        cmd += ["--hold-at", hold[0], "--hold-file", str(hold[1]), "--release-file", str(hold[2])]
    return [*cmd, "--", *cli, "--quiet", "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)]


def watch_once(s: Settings, *, kill_at: str | None = None, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(driver_cmd(s, "watch", "--once", "--all", kill_at=kill_at, log=log), env=driver_env(),
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def watch_once_here(s: Settings, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    """``newsbot watch --once`` (the CLI's code) run in this process, to save a start-up: the hashing
    embedder, the driver's environment, and no lowering of this thread's CPU priority (it would be
    inherited by every later subprocess). Returns (exit code, its output)."""
    import index.embed
    import index.ingest
    from index.cli import main

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index.embed, "load_embedder", lambda *_a, **_k: EMB)
        mp.setattr(index.embed, "model_fingerprint", lambda *_a, **_k: EMB.fingerprint)
        mp.setattr(index.ingest, "background_priority", lambda: None)
        for key, value in driver_env().items():
            if key.startswith("NEWSBOT_"):
                mp.setenv(key, value)
        code = main(["watch", "--once", *extra, "--quiet", "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)])
    out = capsys.readouterr()
    return code, out.out + out.err


def events(log: Path, kind: str) -> list[str]:
    """What follows ``PID KIND`` in each ``kind`` line the driver logged (``N DETAIL`` for numbered
    events, the point for ``killed``)."""
    if not log.exists():
        return []
    return [parts[2] if len(parts) > 2 else "" for parts in (line.split(" ", 2) for line in
            log.read_text(encoding="utf-8").splitlines()) if parts[1] == kind]


def stages(log: Path) -> list[str]:
    return [e.split(" ", 1)[1] for e in events(log, "stage")]


# --------------------------------------------------------------------------------------------
# What the installation holds


def new_md_files(s: Settings, world: World) -> list[Path]:
    """Article files of the four later items (dot files, temporary copies, excluded)."""
    later = {world.urls[n] for n in LATER}
    out = []
    for p in s.web_dir.rglob("*.md"):
        if not p.name.startswith("."):
            head = p.read_text(encoding="utf-8").split("\n", 2)[1]  # "id: URL"
            if head.removeprefix("id: ") in later:
                out.append(p)
    return out


def recorded(s: Settings, feed_url: str | None = None) -> tuple[list[str], dict[str, str | None], int | None]:
    """(article ids, the feed's entries (key -> article id), its item count at its last recorded fetch);
    the feed is the installation's only one unless ``feed_url`` is given."""
    store = open_feed_store(s)
    try:
        ids = sorted(a.id for a in store.articles())
        [f] = [f for f in store.feeds() if feed_url in (None, f.url)]
        entries = {k: v[0] for k, v in store.entries(f.id).items()}
        return ids, entries, f.items
    finally:
        store.close()


def cited(s: Settings, questions: dict[str, str]) -> dict[str, list[str]]:
    """name -> the URLs cited in the answer to its question, from the index as it is now."""
    engine = Engine.open(s, embedder=EMB)
    out = {}
    for name, question in questions.items():
        answer = engine.ask(question)
        assert answer.answered, (question, answer.message)
        out[name] = [answer.citations[n - 1].url for q in answer.quotes for n in q.citations]
    return out


def assert_answers(s: Settings, world: World, names: list[str]) -> None:
    """Each of these articles' questions is answered citing that article."""
    got = cited(s, {n: ASK[n] for n in names})
    for name in names:
        assert world.urls[name] in got[name], (name, got[name])


def assert_up_to_date_rebuild(s: Settings, capsys: pytest.CaptureFixture[str], articles: int) -> None:
    """``newsbot rebuild`` (the CLI, in this process; no model is loaded when the index is up to date)."""
    import index.embed
    from index.cli import main

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index.embed, "load_embedder", lambda *_a, **_k: pytest.fail("rebuild wanted to embed something"))
        mp.setattr(index.embed, "model_fingerprint", lambda *_a, **_k: EMB.fingerprint)
        assert main(["rebuild", "--corpus", str(s.corpus_dir), "--index", str(s.index_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"is up to date: {articles} articles" in err, err
    assert "warning" not in err, err


# --------------------------------------------------------------------------------------------
# SIGKILL in the middle of a round


@dataclass(frozen=True)
class Kill:
    point: str  # watch_driver.py --kill-at
    committed: bool = False  # the kill comes after the new generation's manifest replaced the old

    @property
    def kind(self) -> str:
        return self.point.split(":")[0]

    @property
    def n(self) -> int:
        return int(self.point.split(":")[1]) if self.kind != "stage" else 0


KILLS = [
    Kill("tmp:2"),  # the second new file half-written (its temporary copy, not renamed into place)
    Kill("file:1"), Kill("file:3"),  # an article file written, not recorded
    Kill("article:2"),  # recorded, its feed entry not
    Kill("entry:4"),  # every entry recorded, the feed's fetch not, nothing indexed
    Kill("stage:locked"),  # the feed's fetch recorded, the index build just begun
    Kill("stage:parse:1"), Kill("stage:embed:*"), Kill("stage:written"), Kill("stage:renamed-db"),
    Kill("stage:manifest"),  # the last moment before the commit
    Kill("stage:committed", committed=True),  # just after it
]


def _assert_killed_where_aimed(kill: Kill, s: Settings, world: World, log: Path) -> None:
    """The state the kill left proves it landed where it was aimed."""
    later = sorted(world.urls[n] for n in LATER)
    first = sorted(world.urls[n] for n in FIRST)
    ids, entries, items = recorded(s)
    new_ids = [i for i in ids if i in later]
    new_entries = [k for k in entries if k.removeprefix("guid:id-") in LATER and entries[k] is not None]
    files = new_md_files(s, world)
    assert set(first) <= set(ids), "the first round's articles must stay recorded"
    if kill.kind == "tmp":
        # The one about to be renamed is complete (other writes may be in flight beside it).
        temps = list(s.web_dir.rglob(".*.md.*.tmp"))
        assert any(p.stat().st_size > 0 for p in temps), temps
        assert len(files) <= kill.n - 1 and len(new_ids) <= kill.n - 1
    elif kill.kind == "file":
        assert len(files) >= kill.n and len(new_ids) <= kill.n - 1, (files, new_ids)
    elif kill.kind == "article":
        assert len(new_ids) == kill.n and len(new_entries) <= kill.n - 1, (new_ids, new_entries)
    elif kill.kind == "entry":
        assert len(new_entries) == kill.n and new_ids == later, (new_entries, new_ids)
        assert items == 2, "the feed's fetch must not be recorded yet"
    else:
        assert new_ids == later and len(new_entries) == 4 and items == 6
        seen = stages(log)
        assert seen[:1] == ["locked"] and fnmatch.fnmatchcase(seen[-1], kill.point[len("stage:"):]), seen
    assert events(log, "killed") == [kill.point]
    assert events(log, "round") == [], "the round must not have finished"


@pytest.mark.parametrize("kill", KILLS, ids=[k.point for k in KILLS])
def test_sigkill_in_the_middle_of_a_round(kill: Kill, world: World, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    s = world.install(tmp_path)
    all_urls = sorted(world.urls[n] for n in FIRST + LATER)
    log = tmp_path / "events.log"

    killed = watch_once(s, kill_at=kill.point, log=log)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-3000:])
    _assert_killed_where_aimed(kill, s, world, log)

    # (1) The index left behind opens and answers: the first index, or (killed after the commit
    # point) the new one.
    fps = indexed_fingerprints(s.index_dir)
    assert fps is not None
    if kill.committed:
        assert sorted(fps) == all_urls
    else:
        assert fps == world.first_fps
    assert_answers(s, world, FIRST + (LATER if kill.committed else []))

    # (2) The next, normal round completes. It fetches again only the pages the dead process had
    # not recorded (a page recorded is never fetched twice).
    ids_after_kill = recorded(s)[0]
    expected = sorted(f"/news/{n}" for n in LATER if world.urls[n] not in ids_after_kill)
    before = len(world.web.requests)
    code, out = watch_once_here(s, capsys, "--all")
    assert code == 0, out
    assert sorted(world.page_hits(before)) == expected
    assert "NOT indexed" not in out, out

    # (3) Every published item's article is indexed exactly once, and the files and the index agree.
    assert_exactly_once(s, world, all_urls)
    assert_up_to_date_rebuild(s, capsys, len(all_urls))
    assert_answers(s, world, FIRST + LATER)
    # No temporary file of the dead process is left in the index, nor more than the current and
    # the previous generation; a half-written article file (a dot file) is never read as an article.
    assert stray_files(s.index_dir) == []
    assert set(read_manifest(s.index_dir)["files"].values()) <= {p.name for p in s.index_dir.glob("gen-*")}
    assert len(list(s.index_dir.glob("gen-*"))) <= 4, sorted(p.name for p in s.index_dir.glob("gen-*"))


def assert_exactly_once(s: Settings, world: World, all_urls: list[str]) -> None:
    snap = Snapshot.open(s.index_dir)
    try:
        ext_ids = sorted(a.ext_id for a in snap.articles())
        urls = sorted(a.url or "" for a in snap.articles())
    finally:
        snap.close()
    assert ext_ids == all_urls, "each article indexed exactly once, under its URL"
    assert urls == all_urls
    loaded = load_corpus(s.corpus_dir)
    assert loaded.warnings == [], loaded.warnings
    assert sorted(a.id for a in loaded.articles) == all_urls, "one article file per article"
    assert len([p for p in s.web_dir.rglob("*.md") if not p.name.startswith(".")]) == len(all_urls)
    assert indexed_fingerprints(s.index_dir) == {a.id: a.fingerprint for a in loaded.articles}
    ids, entries, items = recorded(s)
    assert ids == all_urls, "one recorded article per URL"
    assert entries == {f"guid:id-{n}": world.urls[n] for n in FIRST + LATER}  # entry key: the guid
    assert items == 6


# --------------------------------------------------------------------------------------------
# newsbot watch, forever


class Watcher:
    """``newsbot watch`` (no --once) through the driver, its output in a file."""

    def __init__(self, s: Settings, root: Path, *, hold: tuple[str, Path, Path] | None = None) -> None:
        self.log = root / "events.log"
        self.out = root / "watch.out"
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(driver_cmd(s, "watch", log=self.log, hold=hold), env=driver_env("INFO"),
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def output(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def rounds(self) -> list[str]:
        return events(self.log, "round")

    def wait(self, what: Callable[[], object], timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if self.proc.poll() is not None:
                raise AssertionError(f"the watcher exited with {self.proc.returncode}: {message}\n{self.output[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{message} within {timeout:.0f} s\n{self.output[-3000:]}")
            time.sleep(0.02)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"the watcher did not stop within {timeout:.0f} s of SIGTERM\n{self.output[-3000:]}") from None
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _live_install(world: World, root: Path, path: str, names: list[str]) -> tuple[Settings, str]:
    s = world.install(root)
    url = publish(world.web, path, names)
    register(s, url, every=1.0)  # followed as `newsbot feeds add URL --every 1s` records it: due now
    return s, url


def test_watch_forever_takes_an_item_published_while_it_runs_and_stops_on_sigterm(world: World, tmp_path: Path) -> None:
    s, _ = _live_install(world, tmp_path, "/live.xml", LIVE[:1])
    main_feed_hits = len(world.web.hits("/feed.xml"))
    w = Watcher(s, tmp_path)
    try:
        sat, lib = world.urls["satellite"], world.urls["library"]
        w.wait(lambda: sat in (indexed_fingerprints(s.index_dir) or {}), 30, "the live feed's first item indexed")
        w.wait(lambda: len(w.rounds()) >= 2, 10, "a second round (the feed is due every second)")
        publish(world.web, "/live.xml", LIVE)  # a new item while it runs
        published = time.monotonic()
        w.wait(lambda: lib in (indexed_fingerprints(s.index_dir) or {}), 15, "the item published while it runs indexed")
        latency = time.monotonic() - published
        # Between steps (just after a round, asleep until the feed is due again): SIGTERM stops it.
        n = len(w.rounds())
        w.wait(lambda: len(w.rounds()) > n, 10, "a round after the new item")
        code, took = w.terminate()
    finally:
        w.close()
    out = w.output
    assert code == 0, out[-3000:]
    assert took < 5, f"SIGTERM took {took:.1f}s to stop the watcher"
    assert "SIGTERM: stopping after the current step" in out and "stopped" in out.splitlines()[-1], out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert latency < 10, latency
    # Only the due feed was fetched (the other one is due in 15 minutes); each item taken once.
    assert len(world.web.hits("/feed.xml")) == main_feed_hits
    fps = indexed_fingerprints(s.index_dir)
    assert fps is not None and sorted(fps) == sorted(world.urls[n] for n in FIRST + LIVE)
    loaded = load_corpus(s.corpus_dir)
    assert sorted(a.id for a in loaded.articles) == sorted(fps)
    assert fps == {a.id: a.fingerprint for a in loaded.articles}
    assert stray_files(s.index_dir) == []
    assert_answers(s, world, ["port", *LIVE])


def test_sigterm_during_an_index_step_stops_at_the_next_stage_and_the_next_run_takes_it_up(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM while the round's index build is under way: the build stops at its next stage (the
    previous index stays, exit 0), and the next run indexes what was recorded."""
    s, _ = _live_install(world, tmp_path, "/live-held.xml", LIVE)
    held, release = tmp_path / "held", tmp_path / "release"
    w = Watcher(s, tmp_path, hold=("parsed", held, release))
    try:
        w.wait(held.exists, 30, "the index build reached the 'parsed' stage")
        w.proc.send_signal(signal.SIGTERM)
        w.wait(lambda: "SIGTERM: stopping" in w.output, 10, "the watcher saw SIGTERM")
        release.touch()
        code = w.proc.wait(15)
    finally:
        w.close()
    out = w.output
    assert code == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    seen = stages(w.log)
    assert seen[-1] == "parsed" and "embedded" not in seen, seen  # stopped at the stage boundary
    assert w.rounds() == ["1 new=2 indexed=False"]  # one round, then it stopped
    assert indexed_fingerprints(s.index_dir) == world.first_fps  # the previous index, untouched
    assert_answers(s, world, FIRST)
    ids, _, _ = recorded(s, world.web.url("/live-held.xml"))
    assert {world.urls[n] for n in LIVE} <= set(ids)  # recorded before the build began

    before = len(world.web.requests)
    code, out = watch_once_here(s, capsys)
    assert code == 0, out
    assert "NOT indexed" not in out, out
    assert world.page_hits(before) == []  # nothing fetched twice
    fps = indexed_fingerprints(s.index_dir)
    assert fps is not None and sorted(fps) == sorted(world.urls[n] for n in FIRST + LIVE)
    assert stray_files(s.index_dir) == []
    assert_answers(s, world, ["port", *LIVE])
