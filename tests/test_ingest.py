"""Live news end to end in one process: a real HTTP server on 127.0.0.1 serving feeds, pages and
robots.txt; the real fetcher, feed parser, extractor, article files and incremental index; the
fast hashing embedder (the real model is not what these tests are about)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from newsserver import Item, NewsServer, article_page, rss

from index.cli import main
from index.config import Settings
from index.embed import HashingEmbedder
from index.feeds import open_feed_store
from index.ingest import Ingester
from index.loaders import load_corpus
from index.stores.embedded import Snapshot, indexed_fingerprints

TODAY = dt.date.today()
EMB = HashingEmbedder()

STORIES = {
    "bridge": ("Council approves river bridge", [
        "The town council voted on Tuesday to build a new footbridge across the river Wyre, officials said.",
        "The footbridge will cost 4.5 million pounds and is due to open in the spring of 2028.",
        "Residents had campaigned for a safer crossing near the primary school for more than a decade.",
    ]),
    "ferry": ("Ferry operator adds winter sailings", [
        "Island Ferries will add three extra winter sailings between Oban and Craignure from January.",
        "The operator said demand from commuters had doubled since the new timetable began last year.",
        "Each extra sailing will carry up to forty cars and two hundred passengers, the company said.",
    ]),
    "library": ("City library reopens after flood repairs", [
        "The central library reopened on Monday after eighteen months of repairs following the floods.",
        "Engineers replaced the basement archive and installed new pumps to protect the collection.",
        "Librarians said more than ten thousand books had been restored by specialist conservators.",
    ]),
}


def settings_for(root: Path, **env: str) -> Settings:
    base = {"NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_HOST_DELAY_SECONDS": "0", "NEWSBOT_MIN_CONFIDENCE": "0",
            "NEWSBOT_FETCH_TIMEOUT_SECONDS": "5", "NEWSBOT_CONNECT_TIMEOUT_SECONDS": "2"}
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    return Settings.from_env({**base, **env}, corpus_dir=root / "corpus", index_dir=root / "index")


def serve_story(web: NewsServer, name: str, *, site: str = "Test Gazette", path: str | None = None,
                canonical: str | None = None, paragraphs: list[str] | None = None, **route: Any) -> str:
    title, paras = STORIES[name]
    path = path or f"/news/{name}"
    web.route(path, article_page(title, paragraphs or paras, site=site, published=TODAY, author="Ann Reporter",
                                 canonical=canonical), **route)
    return web.url(path)


def feed(web: NewsServer, path: str, items: list[Item], **route: Any) -> str:
    web.route(path, rss(items), content_type="application/rss+xml; charset=utf-8", **route)
    return web.url(path)


def run(settings: Settings, action: Any) -> Any:
    """Run ``action(ingester)`` in a fresh ingester (what one CLI command does)."""
    async def go() -> Any:
        async with Ingester(settings, embedder=EMB) as ing:
            return await action(ing)
    return asyncio.run(go())


def register(settings: Settings, url: str, every: float = 900.0) -> None:
    store = open_feed_store(settings)
    store.add_feed(url, every)
    store.close()


def page_hits(web: NewsServer) -> list[str]:
    return [r.path for r in web.requests if r.path.startswith("/news/")]


@pytest.fixture
def web() -> Iterator[NewsServer]:
    with NewsServer() as server:
        yield server


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's commands: the hashing embedder instead of the real model, and the test settings."""
    import index.embed
    import index.engine

    monkeypatch.setattr(index.embed, "load_embedder", lambda settings: EMB)
    monkeypatch.setattr(index.engine, "load_embedder", lambda settings: EMB)
    for key, value in {"NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_HOST_DELAY_SECONDS": "0",
                       "NEWSBOT_MIN_CONFIDENCE": "0"}.items():
        monkeypatch.setenv(key, value)


def cli(settings: Settings, *args: str) -> int:
    """``newsbot ARGS`` on this installation's folders."""
    where = ["--index", str(settings.index_dir)]
    if args[0] in ("feeds", "ingest", "watch", "rebuild"):
        where += ["--corpus", str(settings.corpus_dir)]
    return main([*args, *where])


# --- the whole path --------------------------------------------------------------------------------


def test_watch_once_indexes_each_item_and_ask_cites_its_link(tmp_path: Path, web: NewsServer, cli_env: None,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_for(tmp_path)
    urls = {name: serve_story(web, name) for name in STORIES}
    feed_url = feed(web, "/feed.xml", [Item(STORIES[n][0], u, guid=f"id-{n}", published=TODAY) for n, u in urls.items()])
    register(s, feed_url)

    assert cli(s, "watch", "--once") == 0
    out = capsys.readouterr()
    assert "3 new articles" in out.out, out

    assert cli(s, "sources", "--json") == 0
    listed = {a["url"]: a for a in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(listed) == set(urls.values())
    for name, url in urls.items():
        assert listed[url]["title"] == STORIES[name][0]
        assert listed[url]["source"] == "Test Gazette"
        assert listed[url]["published"] == TODAY.isoformat()

    assert cli(s, "ask", "--json", "How much will the new footbridge across the river Wyre cost?") == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answered"], answer
    assert "4.5 million pounds" in answer["sentences"][0]["text"]
    cited = answer["citations"][answer["sentences"][0]["citation"] - 1]
    assert cited["url"] == urls["bridge"] and cited["link"].startswith(urls["bridge"] + "#:~:text=")

    # The fetched articles are files of the corpus: a rebuild from them alone is the same index.
    before, requests = indexed_fingerprints(s.index_dir), len(web.requests)
    assert cli(s, "rebuild", "--quiet") == 0
    assert "up to date" in capsys.readouterr().err  # the watcher's fingerprints are the loader's
    assert cli(s, "rebuild", "--full", "--quiet") == 0
    assert indexed_fingerprints(s.index_dir) == before
    assert len(web.requests) == requests  # no network


def test_feeds_add_list_remove(tmp_path: Path, web: NewsServer, cli_env: None,
                               capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_for(tmp_path)
    url = feed(web, "/feed.xml", [Item(STORIES[n][0], serve_story(web, n), guid=n, published=TODAY) for n in STORIES])
    assert cli(s, "feeds", "add", url, "--every", "10m", "--quiet") == 0
    assert "feed added: 3 items, 3 new articles indexed" in capsys.readouterr().out
    assert cli(s, "feeds", "list", "--json") == 0
    [row] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["url"] == url and row["title"] == "Test News" and row["every_s"] == 600
    assert row["articles"] == 3 and row["last_status"] == 200 and row["failures"] == 0 and not row["disabled"]
    assert row["next_due"] > row["last_fetch"]
    assert cli(s, "feeds", "list") == 0
    text = capsys.readouterr().out
    assert url in text and "3 articles taken" in text and "HTTP 200" in text and "next fetch" in text
    assert cli(s, "feeds", "remove", url) == 0
    assert "3 articles stay indexed" in capsys.readouterr().out
    assert cli(s, "feeds", "remove", url) == 1
    assert "not following" in capsys.readouterr().err
    assert len(Snapshot.open(s.index_dir).articles()) == 3


def test_feeds_add_refuses_what_is_not_a_feed(tmp_path: Path, web: NewsServer, cli_env: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_for(tmp_path)
    page = serve_story(web, "bridge")
    assert cli(s, "feeds", "add", page) == 1
    assert "it is an HTML page, not an RSS or Atom feed" in capsys.readouterr().err
    assert cli(s, "feeds", "add", "ftp://example.com/feed") == 1
    assert "only http and https" in capsys.readouterr().err
    assert open_feed_store(s).feeds() == []


def test_add_feed_refuses_private_addresses_unless_allowed(tmp_path: Path, web: NewsServer) -> None:
    from index.ingest import FeedRefused

    s = settings_for(tmp_path, NEWSBOT_ALLOW_PRIVATE_URLS="0")
    url = feed(web, "/feed.xml", [])
    with pytest.raises(FeedRefused, match="loopback address: refused"):
        run(s, lambda ing: ing.add_feed(url))
    assert web.requests == []  # refused before any request was sent


# --- conditional requests, and only what is new ------------------------------------------------------


def test_second_round_is_conditional_and_a_new_item_brings_exactly_that_article(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    items = [Item(STORIES["bridge"][0], serve_story(web, "bridge"), guid="b", published=TODAY)]
    modified = "Tue, 01 Dec 2026 09:00:00 GMT"
    url = feed(web, "/feed.xml", items, etag='"v1"', last_modified=modified)
    first = run(s, lambda ing: ing.add_feed(url))
    assert first.feeds[0].count("new") == 1 and first.index is not None

    second = run(s, lambda ing: ing.run_round(all_feeds=True))
    assert second.feeds[0].status == "not-modified" and second.index is None
    last = web.hits("/feed.xml")[-1]
    assert last.headers["if-none-match"] == '"v1"' and last.headers["if-modified-since"] == modified
    assert page_hits(web) == ["/news/bridge"]  # no page fetched again

    items.append(Item(STORIES["ferry"][0], serve_story(web, "ferry"), guid="f", published=TODAY))
    feed(web, "/feed.xml", items, etag='"v2"', last_modified=modified)
    third = run(s, lambda ing: ing.run_round(all_feeds=True))
    assert [p.status for p in third.feeds[0].pages] == ["new"]
    assert page_hits(web) == ["/news/bridge", "/news/ferry"]
    assert third.index is not None and (third.index.added, third.index.changed, third.index.removed) == (1, 0, 0)
    assert len(indexed_fingerprints(s.index_dir) or {}) == 2


def test_a_feed_without_validators_that_did_not_change_costs_no_parse_and_no_page(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    url = feed(web, "/feed.xml", [Item("B", serve_story(web, "bridge"), guid="b", published=TODAY)])
    run(s, lambda ing: ing.add_feed(url))
    again = run(s, lambda ing: ing.run_round(all_feeds=True))
    assert again.feeds[0].status == "unchanged"
    assert "if-none-match" not in web.hits("/feed.xml")[-1].headers  # sent only when known
    assert page_hits(web) == ["/news/bridge"]


# --- identity and duplicates --------------------------------------------------------------------------


def test_one_article_through_two_feeds_and_a_tracking_variant_of_its_link(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    link = serve_story(web, "bridge")
    a = feed(web, "/a.xml", [Item("Bridge", link, guid="feed-a-1", published=TODAY)])
    b = feed(web, "/b.xml", [Item("Bridge!", link + "?utm_source=rss&utm_medium=feed", guid="feed-b-9", published=TODAY)])
    run(s, lambda ing: ing.add_feed(a))
    second = run(s, lambda ing: ing.add_feed(b))
    assert [p.status for p in second.feeds[0].pages] == ["duplicate"]
    assert page_hits(web) == ["/news/bridge"]  # the variant was recognised before fetching
    assert list(indexed_fingerprints(s.index_dir) or {}) == [link]
    assert [f.articles for f in open_feed_store(s).feeds()] == [1, 1]


def test_the_canonical_url_makes_two_addresses_one_article(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    main_url = serve_story(web, "ferry", path="/news/ferry")
    mirror = serve_story(web, "ferry", path="/amp/ferry-amp", canonical=main_url)
    run(s, lambda ing: ing.ingest([main_url]))
    report = run(s, lambda ing: ing.ingest([mirror]))
    assert report.pages[0].status == "duplicate" and report.pages[0].article_id == main_url
    assert list(indexed_fingerprints(s.index_dir) or {}) == [main_url]


def test_a_canonical_url_on_another_site_is_ignored(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    url = serve_story(web, "ferry", canonical="https://victim.example/news/ferry")
    report = run(s, lambda ing: ing.ingest([url]))
    assert report.pages[0].status == "new" and report.pages[0].article_id == url


def test_wire_copy_on_another_outlet_is_quoted_once_and_cited_to_both(tmp_path: Path) -> None:
    from index.engine import Engine

    s = settings_for(tmp_path)
    wire_text = [*STORIES["library"][1], "The library will open until eight in the evening on weekdays from next week.",
                 "A spokesperson for the city said the repairs had cost 2.3 million pounds in total."]
    with NewsServer("127.0.0.1") as one, NewsServer("127.0.0.2") as two:
        a = serve_story(one, "library", site="Northern Echo", paragraphs=wire_text)
        b = serve_story(two, "library", site="Southern Star", path="/local/library-reopens",
                        paragraphs=[*wire_text, "Additional reporting by the Southern Star newsroom staff."])
        run(s, lambda ing: ing.ingest([a, b]))
    engine = Engine.open(s, embedder=EMB)
    answer = engine.ask("How much did the library flood repairs cost in total?")
    assert answer.answered
    top = answer.quotes[0]
    assert "2.3 million pounds" in top.text
    assert len(top.citations) == 2
    assert {answer.citations[n - 1].source for n in top.citations} == {"Northern Echo", "Southern Star"}
    assert sum("2.3 million" in q.text for q in answer.quotes) == 1  # quoted once


def test_a_changed_article_replaces_its_old_text(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    paras = list(STORIES["bridge"][1])
    link = serve_story(web, "bridge", paragraphs=paras)
    items = [Item("Bridge", link, guid="b", published=TODAY)]
    url = feed(web, "/feed.xml", items)
    run(s, lambda ing: ing.add_feed(url))

    paras[1] = "The footbridge will now cost 6.2 million pounds after the design was changed, officials said."
    serve_story(web, "bridge", paragraphs=paras)
    updated = dt.datetime.now(dt.UTC).replace(microsecond=0)
    feed(web, "/feed.xml", [Item("Bridge (updated)", link, guid="b", published=TODAY, updated=updated)])
    report = run(s, lambda ing: ing.run_round(all_feeds=True))
    assert [p.status for p in report.feeds[0].pages] == ["changed"]
    assert report.index is not None and report.index.changed == 1 and report.index.added == 0

    snap = Snapshot.open(s.index_dir)
    [art] = snap.articles()
    texts = [r.text for r in snap.article_sentences([art.id])[art.id]]
    assert any("6.2 million" in t for t in texts) and not any("4.5 million" in t for t in texts)
    assert len(list(s.web_dir.rglob("*.md"))) == 1  # replaced in place, not a second file

    # The same through `ingest` of the link: a changed page replaces the article again.
    paras[2] = "Work on the footbridge will start in March, the council confirmed on Friday."
    serve_story(web, "bridge", paragraphs=paras)
    again = run(s, lambda ing: ing.ingest([link]))
    assert again.pages[0].status == "changed"


# --- manners ------------------------------------------------------------------------------------------


def test_robots_disallow_means_the_page_is_never_requested(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    web.route("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    ok = serve_story(web, "bridge")
    secret = serve_story(web, "ferry", path="/private/ferry")
    url = feed(web, "/feed.xml", [Item("ok", ok, guid="1", published=TODAY), Item("no", secret, guid="2", published=TODAY)])
    report = run(s, lambda ing: ing.add_feed(url))
    statuses = {p.url: (p.status, p.reason) for p in report.feeds[0].pages}
    assert statuses[secret] == ("skipped", "robots.txt disallows it")
    assert web.hits("/private/ferry") == []
    assert len(web.hits("/robots.txt")) == 1  # cached per host
    # Skipped for good: the next round does not ask again.
    feed(web, "/feed.xml", [Item("ok", ok, guid="1", published=TODAY), Item("no", secret, guid="2", published=TODAY),
                            Item("x", serve_story(web, "library"), guid="3", published=TODAY)])
    nxt = run(s, lambda ing: ing.run_round(all_feeds=True))
    assert [p.url for p in nxt.feeds[0].pages] == [web.url("/news/library")]


def test_the_per_host_delay_is_kept(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path, NEWSBOT_HOST_DELAY_SECONDS="0.4")
    url = feed(web, "/feed.xml", [Item(n, serve_story(web, n), guid=n, published=TODAY) for n in STORIES])
    run(s, lambda ing: ing.add_feed(url))
    times = [r.at for r in web.requests]
    assert len(times) == 5  # the feed, robots.txt, three pages: one host, one at a time
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.38, gaps


def test_the_user_agent_names_newsbot_and_its_contact(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path, NEWSBOT_CONTACT_URL="https://example.org/newsbot-contact")
    run(s, lambda ing: ing.ingest([serve_story(web, "bridge")]))
    agent = web.hits("/news/bridge")[0].headers["user-agent"]
    assert agent.startswith("newsbot/") and "https://example.org/newsbot-contact" in agent


# --- storage ------------------------------------------------------------------------------------------


def test_fetched_articles_are_markdown_files_with_their_metadata(tmp_path: Path, web: NewsServer) -> None:
    s = settings_for(tmp_path)
    url = serve_story(web, "ferry")
    run(s, lambda ing: ing.ingest([url]))
    [path] = list(s.web_dir.rglob("*.md"))
    loaded = load_corpus(s.corpus_dir)
    [art] = loaded.articles
    assert (art.id, art.url, art.title, art.source, art.published, art.authors) == (
        url, url, STORIES["ferry"][0], "Test Gazette", TODAY.isoformat(), ("Ann Reporter",))
    assert path.read_text(encoding="utf-8").startswith("---\nid: ")
    assert "Island Ferries will add three extra winter sailings" in art.text
    assert "All rights reserved" not in art.text and "Home" not in art.text.split("\n")[0]


def test_retention_skips_old_items_and_drops_articles_as_they_age(tmp_path: Path, web: NewsServer) -> None:
    import time

    s = settings_for(tmp_path, NEWSBOT_RETENTION_DAYS="30")
    old_day = TODAY - dt.timedelta(days=90)
    title, paras = STORIES["library"]
    web.route("/news/old", article_page(title, paras, published=old_day))
    url = feed(web, "/feed.xml", [Item("old", web.url("/news/old"), guid="o", published=old_day),
                                  Item("new", serve_story(web, "bridge"), guid="n", published=TODAY)])
    report = run(s, lambda ing: ing.add_feed(url))
    assert {p.status for p in report.feeds[0].pages} == {"new", "skipped"}
    assert web.hits("/news/old") == []  # too old: never fetched
    assert list(indexed_fingerprints(s.index_dir) or {}) == [web.url("/news/bridge")]

    # An article that ages past the retention period: its file and its index entry go.
    store = open_feed_store(s)
    [kept] = store.articles()
    store.put_article(dataclasses.replace(kept, published=None, fetched_at=time.time() - 40 * 86400), [])
    path = s.corpus_dir / kept.path
    store.close()
    aged = run(s, lambda ing: ing.run_round(all_feeds=True))
    assert aged.expired == 1 and not path.exists()
    assert indexed_fingerprints(s.index_dir) == {}
    assert web.hits("/news/old") == [] and len(web.hits("/news/bridge")) == 1  # neither fetched again


def test_two_installations_never_mix(tmp_path: Path, web: NewsServer) -> None:
    one, two = settings_for(tmp_path / "one"), settings_for(tmp_path / "two")
    url = feed(web, "/feed.xml", [Item("b", serve_story(web, "bridge"), guid="b", published=TODAY)])
    run(one, lambda ing: ing.add_feed(url))
    assert open_feed_store(two).feeds() == []
    assert indexed_fingerprints(two.index_dir) is None
    assert not two.web_dir.exists()
    assert one.state_dir.is_relative_to(one.corpus_dir) and one.web_dir.is_relative_to(one.corpus_dir)


def test_an_article_whose_canonical_url_differs_is_still_updated_from_its_own_address(tmp_path: Path,
                                                                                       web: NewsServer) -> None:
    s = settings_for(tmp_path)
    canonical = web.url("/stories/ferry-winter-sailings")
    paras = list(STORIES["ferry"][1])
    link = serve_story(web, "ferry", path="/news/ferry-7", canonical=canonical, paragraphs=paras)
    first = run(s, lambda ing: ing.ingest([link]))
    assert first.pages[0].status == "new" and first.pages[0].article_id == canonical
    paras[0] = "Island Ferries will add five extra winter sailings between Oban and Craignure from January."
    serve_story(web, "ferry", path="/news/ferry-7", canonical=canonical, paragraphs=paras)
    again = run(s, lambda ing: ing.ingest([link]))
    assert again.pages[0].status == "changed"
    [art] = load_corpus(s.corpus_dir).articles
    assert art.url == canonical and "five extra winter sailings" in art.text


def test_temporary_files_of_a_writer_that_died_are_swept(tmp_path: Path, web: NewsServer) -> None:
    import subprocess
    import sys

    s = settings_for(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = s.web_dir / "127.0.0.1"
    folder.mkdir(parents=True)
    stale = folder / f".story-abc.md.{dead.stdout.strip()}.140.tmp"
    live = folder / f".story-def.md.{os.getppid()}.140.tmp"  # a writer still running
    stale.write_text("half an article")
    live.write_text("being written")
    run(s, lambda ing: ing.ingest([serve_story(web, "bridge")]))
    assert not stale.exists() and live.exists()
    assert [p.name for p in folder.glob("*.md")] and len(load_corpus(s.corpus_dir).articles) == 1


def test_watch_goes_on_after_a_round_that_failed_unexpectedly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = settings_for(tmp_path)

    async def scenario() -> int:
        async with Ingester(s, embedder=EMB) as ing:
            calls = 0

            async def flaky(**_kw: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise RuntimeError("the disk is full")
                ing.stop()
                return await Ingester.run_round(ing)

            ing.run_round = flaky  # type: ignore[method-assign]
            await ing.watch(max_sleep=0.05)
            return calls

    assert asyncio.run(scenario()) == 2
    assert "the round failed; trying again" in caplog.text and "the disk is full" in caplog.text


# --- the feed state in PostgreSQL, shared by machines -----------------------------------------------


def test_watchers_on_two_machines_share_the_feed_state_and_the_index_in_the_database(
        tmp_path: Path, web: NewsServer, pg_url: str) -> None:
    """Two installations (two corpus folders, as on two machines) on one database: what one watcher
    fetched the other never fetches again, a new item is taken once, both are answered from the one
    index, and another process (``newsbot feeds list``) sees the same feeds. No feeds.sqlite3 anywhere."""
    import subprocess
    import sys

    from support import ROOT

    from index.engine import Engine

    one = settings_for(tmp_path / "one", NEWSBOT_DATABASE_URL=pg_url)
    two = settings_for(tmp_path / "two", NEWSBOT_DATABASE_URL=pg_url)
    items = [Item(STORIES[n][0], serve_story(web, n), guid=n, published=TODAY) for n in ("bridge", "ferry")]
    url = feed(web, "/feed.xml", items, etag='"v1"')
    first = run(one, lambda ing: ing.add_feed(url, every=600))
    assert first.feeds[0].count("new") == 2 and first.indexed

    listed = subprocess.run([sys.executable, "-m", "index", "feeds", "list", "--json", "--corpus", str(two.corpus_dir)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "NEWSBOT_DATABASE_URL": pg_url, "HF_HUB_OFFLINE": "1"})
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(x) for x in listed.stdout.splitlines()]
    assert (row["url"], row["articles"], row["last_status"], row["every_s"]) == (url, 2, 200, 600)

    # The other machine: the feed is known, its entries too; nothing is fetched again.
    again = run(two, lambda ing: ing.run_round(all_feeds=True))
    assert again.feeds[0].status == "not-modified" and page_hits(web) == ["/news/bridge", "/news/ferry"]
    items.append(Item(STORIES["library"][0], serve_story(web, "library"), guid="library", published=TODAY))
    feed(web, "/feed.xml", items, etag='"v2"')
    newer = run(two, lambda ing: ing.run_round(all_feeds=True))
    assert [p.status for p in newer.feeds[0].pages] == ["new"] and newer.index is not None
    assert newer.index.added == 1 and page_hits(web) == ["/news/bridge", "/news/ferry", "/news/library"]
    assert run(one, lambda ing: ing.run_round(all_feeds=True)).feeds[0].status == "not-modified"

    # The article files stay where they were fetched; the index (and so every answer) has all three.
    assert len(list(one.web_dir.rglob("*.md"))) == 2 and len(list(two.web_dir.rglob("*.md"))) == 1
    engine = Engine.open(one, embedder=EMB)
    try:
        assert engine.info["articles"] == 3
        answer = engine.ask("How many books did conservators restore at the central library?")
    finally:
        engine.store.close()
    assert answer.answered and answer.quotes[0].article_id == web.url("/news/library")
    [state] = [f for f in run(one, lambda ing: ing.feeds())]
    assert state.articles == 3 and state.etag == '"v2"'
    assert not any((s.state_dir / "feeds.sqlite3").exists() for s in (one, two))
