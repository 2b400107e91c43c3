"""End to end: the bot's live news (``/feeds``, ``/add``, the in-process watcher, following the index).

One bot for the module, with its watcher on (``NEWSBOT_WATCH=1``), over an index of the seed corpus
built with the real model; the news web is :class:`newsserver.NewsServer`, a real HTTP server on
127.0.0.1 serving feeds, article pages and a robots.txt. The bot is never told to ``/reload``: it
answers from what its watcher indexed by following the index's generations
(``NEWSBOT_INDEX_POLL_SECONDS=1``). Every test checks that the fake refused nothing the bot sent
and that no gateway heartbeat was late (the watcher works off the event loop). The last test
restarts the bot.

Run with ``-s`` to see how long an item published in a followed feed took to be answered from.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e_harness import (
    ROOT,
    TOKEN,
    BotProcess,
    ask,
    assert_quiet,
    message_texts,
    running_bot,
    wait_for,
)
from fakediscord import FakeDiscord, FakeDiscordError
from fakediscord import constants as C
from newsserver import Item, NewsServer, article_page, rss

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(240)]

TODAY = dt.date.today()
ZWSP = "\u200b"
DEADLINE = 3.0  # Discord's window for the first response to an interaction
FRESH_WITHIN = 60.0  # an item published in a followed feed is answered within this
MAX_FAILURES = 2

ROBOTS = "User-agent: *\nDisallow: /private/\n"

# Stories the seed corpus (Chery's European headquarters in Liverpool) knows nothing about.
STORIES = {
    "bridge": ("Council approves river Wyre footbridge", [
        "The town council voted on Tuesday to build a new footbridge across the river Wyre, officials said.",
        "The footbridge will cost 4.5 million pounds and is due to open in the spring of 2028.",
        "Residents had campaigned for a safer crossing near the primary school for more than a decade.",
    ]),
    "library": ("City library reopens after flood repairs", [
        "The central library in Carlisle reopened on Monday after eighteen months of repairs following the floods.",
        "Engineers replaced the basement archive and installed new pumps to protect the collection.",
        "Librarians said more than ten thousand books had been restored by specialist conservators.",
    ]),
    "ferry": ("Island Ferries adds winter sailings to Craignure", [
        "Island Ferries will add three extra winter sailings between Oban and Craignure from January.",
        "The operator said demand from commuters had doubled since the new timetable began last year.",
        "Each extra sailing will carry up to forty cars and two hundred passengers, the company said.",
    ]),
    "observatory": ("Kielder observatory to install a larger telescope", [
        "The Kielder observatory will install a new 80-centimetre telescope in March, its trust said on Friday.",
        "The telescope will be the largest public instrument in northern England, according to the trust.",
        "Astronomers said the dark skies over Kielder forest make it one of the best sites in Europe.",
    ]),
    "quarry": ("Stanton quarry expansion refused", [
        "The national park authority refused the Stanton quarry expansion on Thursday after a public inquiry.",
        "The operator had wanted to extract another two million tonnes of gritstone over fifteen years.",
    ]),
    "orchard": ("Community orchard planted at Hexham", [
        "Volunteers planted two hundred apple trees at the new Hexham community orchard on Saturday.",
        "The orchard on the old railway sidings will grow thirty local varieties of apple, organisers said.",
    ]),
}
FERRY_QUESTION = "How many extra winter sailings will Island Ferries add between Oban and Craignure?"
BRIDGE_QUESTION = "How much will the new footbridge across the river Wyre cost?"
OBSERVATORY_QUESTION = "What telescope will the Kielder observatory install?"
ORCHARD_QUESTION = "How many apple trees were planted at the Hexham community orchard?"
LIDO_QUESTION = "When will the Hathersage lido reopen?"
EVIL_URL = "http://evil.example/x"


@dataclass
class Feed:
    """A feed the news server serves: its path, title and items (republished on every change)."""

    web: NewsServer
    path: str
    title: str
    items: list[Item] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.web.url(self.path)

    def publish(self, *items: Item) -> None:
        self.items.extend(items)
        self.web.route(self.path, rss(self.items, title=self.title, link=self.web.url("/")),
                       content_type="application/rss+xml; charset=utf-8")


def story(web: NewsServer, name: str, path: str | None = None) -> tuple[str, Item]:
    """Serve the story's article page; its URL and the feed item linking to it."""
    title, paragraphs = STORIES[name]
    path = path or f"/news/{name}"
    web.route(path, article_page(title, paragraphs, site="Border Gazette", published=TODAY, author="Ann Reporter"))
    url = web.url(path)
    return url, Item(title, url, guid=f"story-{name}", published=dt.datetime.now(dt.UTC))


# --- the module's world ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def web() -> Iterator[NewsServer]:
    with NewsServer() as server:
        server.route("/robots.txt", ROBOTS, content_type="text/plain")
        yield server


@pytest.fixture(scope="module")
def live_index(module_dir: Path, real_embedder) -> Path:  # type: ignore[no-untyped-def]
    """The seed corpus indexed with the real model; the bot's corpus folder is beside it (the
    watcher writes the articles it fetches there, under web/)."""
    from index.loaders import load_corpus
    from index.stores.build import build_index

    corpus = module_dir / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    build_index(module_dir / "index", load_corpus(corpus), real_embedder, corpus_dir=corpus)
    return module_dir / "index"


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, web: NewsServer, live_index: Path, module_dir: Path) -> Iterator[BotProcess]:
    extra = {
        "NEWSBOT_WATCH": "1",
        "NEWSBOT_INDEX_POLL_SECONDS": "1",
        "NEWSBOT_ALLOW_PRIVATE_URLS": "1",  # the news web is on 127.0.0.1
        "NEWSBOT_HOST_DELAY_SECONDS": "0",
        "NEWSBOT_FEED_INTERVAL": "2s",
        "NEWSBOT_FEED_MAX_FAILURES": str(MAX_FAILURES),
        "NEWSBOT_FETCH_TIMEOUT_SECONDS": "10",
    }
    with running_bot(fake, live_index, module_dir / "bot", extra=extra) as process:
        yield process


@pytest.fixture(autouse=True)
def rules_kept(fake: FakeDiscord, bot: BotProcess) -> Iterator[None]:
    """Whatever a test does, Discord refuses nothing the bot sends and no heartbeat is late."""
    before = len(fake.rejections)
    yield
    assert fake.rejections[before:] == [], f"the fake refused requests:\n{bot.tail()}"
    assert fake.heartbeat_misses == [], "the bot's event loop was blocked past a heartbeat"
    assert fake.unhandled_routes == []
    assert "Traceback" not in bot.output, bot.tail()


# --- helpers ---------------------------------------------------------------------------------------


def slash(fake: FakeDiscord, name: str, options: dict[str, str] | None = None, *, user: str = "admin",
          timeout: float = 60.0, **where: int) -> tuple[int | None, dict]:
    """``/name options`` as ``user`` (a Moderator, with Manage Server, by default): the type of the
    initial response (acknowledged within Discord's 3 s) and the first message the user sees."""
    interaction = fake.send_slash(name, options or {}, user=user, **where)
    reply = interaction.wait_response(timeout)
    assert interaction.ack_latency is not None and interaction.ack_latency < DEADLINE, interaction.ack_latency
    return interaction.callback_type, reply


def private_text(reply: dict) -> str:
    """The content of an ephemeral reply sent with no mentions allowed."""
    assert reply["ephemeral"] is True, reply
    assert_quiet(reply)
    return reply["content"] or ""


def cites(reply: dict, url: str, expect: str) -> bool:
    """The answer quotes ``expect`` and links its source to ``url`` (the citation's masked link)."""
    if not reply["embeds"]:
        return False
    description = reply["embeds"][0]["description"]
    quotes, _, sources = description.partition("**Sources**")
    # The link is the article's URL, with a text fragment that scrolls to the quote.
    return expect in quotes.replace("**", "") and re.search(rf"\]\({re.escape(url)}(#:~:text=[^)\s]*)?\)", sources) is not None


def answered_from(fake: FakeDiscord, question: str, url: str, expect: str, timeout: float) -> tuple[dict, int]:
    """Ask ``question`` until the answer quotes ``expect`` and cites ``url``: the answer and the asks."""
    deadline = time.monotonic() + timeout
    asks = 0
    while True:
        asks += 1
        started = time.monotonic()
        _, reply = ask(fake, question, timeout=60)
        if cites(reply, url, expect):
            return reply, asks
        if time.monotonic() > deadline:
            raise AssertionError(f"not answered from {url} within {timeout:.0f} s ({asks} asks); last answer:\n"
                                 + "\n".join(message_texts(reply)))
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))  # pace the polls: about two asks a second


def autocomplete(fake: FakeDiscord, current: str, *, user: str = "admin") -> list[dict]:
    """The choices ``/feeds remove url:`` offers while ``current`` is typed."""
    interaction = fake.send_autocomplete("feeds remove", {"url": current}, focused="url", user=user)
    response = interaction.wait_callback(10)
    assert response["type"] == C.CB_AUTOCOMPLETE_RESULT and interaction.ack_latency < DEADLINE
    return response["data"]["choices"]


@pytest.fixture(scope="module")
def live_feed(fake: FakeDiscord, web: NewsServer, bot: BotProcess) -> tuple[Feed, int | None, dict]:
    """A feed of two stories, added with ``/feeds add url every:2s`` by a member with Manage Server:
    the feed, the type of the initial response and the reply."""
    news = Feed(web, "/border/feed.xml", "Border Gazette: latest")
    news.publish(*(story(web, name)[1] for name in ("bridge", "library")))
    callback, reply = slash(fake, "feeds add", {"url": news.url, "every": "2s"})
    return news, callback, reply


# --- 1. a feed, then a new item in it, answered without /reload ------------------------------------


def test_a_new_item_in_a_followed_feed_is_answered_without_reload(
        fake: FakeDiscord, web: NewsServer, bot: BotProcess, live_feed: tuple[Feed, int | None, dict],
        record_property: Callable[[str, object], None]) -> None:
    news, callback, reply = live_feed
    assert callback == C.CB_DEFERRED_CHANNEL_MESSAGE  # fetching takes a moment: "thinking…"
    text = private_text(reply)
    assert text.startswith("Feed added: 2 items, 2 new articles indexed."), text
    assert f"Border Gazette: latest · {news.url} · every 2s" in text
    # The two articles are answered from at once (the reply came after the bot switched to them).
    _, answer = ask(fake, BRIDGE_QUESTION)
    assert cites(answer, web.url("/news/bridge"), "4.5 million pounds"), message_texts(answer)
    assert_quiet(answer)

    _, before = ask(fake, FERRY_QUESTION)  # not in the index yet
    assert not cites(before, web.url("/news/ferry"), "three extra winter sailings")
    ferry_url, item = story(web, "ferry")
    news.publish(item)
    published = time.monotonic()
    answer, asks = answered_from(fake, FERRY_QUESTION, ferry_url, "three extra winter sailings", FRESH_WITHIN)
    fresh = time.monotonic() - published
    record_property("item_to_answer_s", round(fresh, 1))
    print(f"\nitem published -> answered from it: {fresh:.1f} s ({asks} asks)")

    [embed] = answer["embeds"]
    assert embed["title"] == FERRY_QUESTION and embed["description"].startswith("> ")
    assert "Border Gazette" in embed["description"].split("**Sources**", 1)[1]
    assert_quiet(answer)
    # Nobody reloaded: the bot followed the watcher's new index generation by itself.
    assert not [i for i in fake.interactions if i.name == "reload"]
    assert "now answering from index generation" in bot.output
    assert len(web.hits("/news/ferry")) == 1  # the watcher fetched the new page once


# --- 2. /feeds list and /feeds remove --------------------------------------------------------------


def test_feeds_list_shows_the_feeds_health(fake: FakeDiscord, live_feed: tuple[Feed, int | None, dict]) -> None:
    news, _, _ = live_feed
    callback, reply = slash(fake, "feeds list")
    assert callback == C.CB_CHANNEL_MESSAGE and reply["ephemeral"] is True
    assert_quiet(reply)
    [embed] = reply["embeds"]
    assert embed["title"] == "Feeds I follow"
    block = next(b for b in embed["description"].split("\n\n") if news.url in b)
    head, url, health, state = block.split("\n")
    assert head == "**Border Gazette: latest** · every 2s" and url == news.url
    assert re.fullmatch(rf"last fetch <t:\d+:R> \(HTTP 200\) · {len(news.items)} articles taken", health), health
    assert re.fullmatch(r"next fetch <t:(\d+):R>", state), state
    next_fetch = int(re.fullmatch(r"next fetch <t:(\d+):R>", state)[1])
    assert time.time() - 5 <= next_fetch <= time.time() + 5  # every 2 s
    assert embed["footer"]["text"].endswith("· 0 disabled")


def test_feeds_remove_offers_the_feed_and_keeps_its_articles(fake: FakeDiscord, web: NewsServer,
                                                            live_feed: tuple[Feed, int | None, dict]) -> None:
    news, _, _ = live_feed
    # A second feed, at an address longer than an autocomplete choice's value may be (100
    # characters): it is left out of the choices (Discord would refuse them all), never cut.
    long_feed = Feed(web, "/syndication/" + "regional-news-for-the-north-of-england/" * 3 + "feed.xml",
                     "Northern Wire")
    long_feed.publish()
    assert len(long_feed.url) > 100
    _, added = slash(fake, "feeds add", {"url": long_feed.url, "every": "1h"})
    assert private_text(added).startswith("Feed added: 0 items, 0 new articles indexed."), added["content"]

    choices = autocomplete(fake, "border")
    assert choices == [{"name": f"Border Gazette: latest · {news.url}", "value": news.url}]
    everything = autocomplete(fake, "")
    assert {"name": f"Border Gazette: latest · {news.url}", "value": news.url} in everything
    assert all(len(c["value"]) <= 100 and 1 <= len(c["name"]) <= 100 for c in everything)
    assert not [c for c in everything if "syndication" in c["value"]]
    assert autocomplete(fake, "no such feed") == []

    articles = len(news.items)
    callback, reply = slash(fake, "feeds remove", {"url": news.url})
    assert callback == C.CB_CHANNEL_MESSAGE
    assert private_text(reply) == f"Feed removed: {news.url}. Its {articles} articles stay in the index."
    assert autocomplete(fake, "border") == []
    _, listed = slash(fake, "feeds list")
    assert news.url not in "\n".join(message_texts(listed))
    _, again = slash(fake, "feeds remove", {"url": news.url})
    assert private_text(again).startswith(f"I don't follow {news.url}")
    # Its articles are still answered from.
    _, answer = ask(fake, BRIDGE_QUESTION)
    assert cites(answer, web.url("/news/bridge"), "4.5 million pounds"), message_texts(answer)
    _, removed = slash(fake, "feeds remove", {"url": long_feed.url})
    assert private_text(removed).startswith(f"Feed removed: {long_feed.url}.")


def test_feeds_add_refuses_what_it_cannot_follow(fake: FakeDiscord, web: NewsServer) -> None:
    callback, reply = slash(fake, "feeds add", {"url": web.url("/border/feed.xml"), "every": "soon"})
    assert callback == C.CB_CHANNEL_MESSAGE  # refused at once, nothing fetched
    assert private_text(reply) == "`every` must be a duration like 30s, 10m or 1h."

    url, _ = story(web, "observatory", path="/news/not-a-feed")
    refusals = {
        url: f"Not added: cannot follow {url}: it is ",  # an article page, not a feed
        web.url("/no/feed.xml"): f"Not added: cannot follow {web.url('/no/feed.xml')}: HTTP 404 Not Found",
        "ftp://files.example/feed.xml": "Not added: cannot follow ftp://files.example/feed.xml: ",
    }
    for target, expect in refusals.items():
        callback, reply = slash(fake, "feeds add", {"url": target})
        assert callback == C.CB_DEFERRED_CHANNEL_MESSAGE
        text = private_text(reply)
        assert text.startswith(expect), text
    _, listed = slash(fake, "feeds list")
    listed_text = "\n".join(message_texts(listed))
    assert not any(target in listed_text for target in refusals)


def test_feeds_add_fetches_each_page_once_while_the_watcher_runs(fake: FakeDiscord, web: NewsServer) -> None:
    from index.ingest import Ingester

    # The page, on another site than the feed, takes longer to answer the first time than the
    # watcher ever sleeps between its rounds.
    slow = inspect.signature(Ingester.watch).parameters["max_sleep"].default + 1.5
    title, paragraphs = STORIES["quarry"]
    page = article_page(title, paragraphs, site="Peak Post", published=TODAY)
    asked: list[float] = []

    def slow_the_first_time() -> bytes:
        asked.append(time.monotonic())
        if len(asked) == 1:
            time.sleep(slow)
        return page

    with NewsServer() as other_site:
        other_site.route("/news/quarry", slow_the_first_time)
        url = other_site.url("/news/quarry")
        quarry = Feed(web, "/quarry/feed.xml", "Quarry news")
        quarry.publish(Item(title, url, guid="quarry", published=dt.datetime.now(dt.UTC)))
        try:
            _, reply = slash(fake, "feeds add", {"url": quarry.url, "every": "1h"}, timeout=90)
            assert private_text(reply).startswith("Feed added: 1 items, 1 new articles indexed."), reply["content"]
            with contextlib.suppress(AssertionError):  # a second fetch comes at once, if it comes
                wait_for(lambda: len(other_site.hits("/news/quarry")) > 1, 3, "a second fetch of the page")
            assert len(other_site.hits("/news/quarry")) == 1, "the page was fetched twice for one /feeds add"
            assert len(web.hits(quarry.path)) == 1, "the feed was fetched twice for one /feeds add"
        finally:
            slash(fake, "feeds remove", {"url": quarry.url})


# --- 3. /add -----------------------------------------------------------------------------------------


def test_add_takes_one_article_page(fake: FakeDiscord, web: NewsServer) -> None:
    url, _ = story(web, "observatory")
    callback, reply = slash(fake, "add", {"url": url})
    assert callback == C.CB_DEFERRED_CHANNEL_MESSAGE
    title = STORIES["observatory"][0]
    assert private_text(reply) == f"Added: {title}. It is indexed: ask away."
    _, answer = ask(fake, OBSERVATORY_QUESTION)  # at once: the reply came after the switch
    assert cites(answer, url, "80-centimetre telescope"), message_texts(answer)
    _, again = slash(fake, "add", {"url": url})
    assert private_text(again) == f"Already indexed: {title}."


def test_add_refuses_what_is_not_an_article(fake: FakeDiscord, web: NewsServer) -> None:
    web.route("/news/empty", "<!doctype html><html><head><title>Home</title></head><body>"
                             "<nav><a href='/'>Home</a></nav><footer>© Test Gazette</footer></body></html>")
    empty = web.url("/news/empty")
    _, reply = slash(fake, "add", {"url": empty})
    assert private_text(reply) == (f"Not added: {empty}: no article text could be extracted from the page "
                                   "(only its links and menus).")

    web.route("/private/memo", article_page(*STORIES["orchard"], published=TODAY))
    private = web.url("/private/memo")
    _, reply = slash(fake, "add", {"url": private})
    assert private_text(reply) == f"Not added: {private}: robots.txt disallows it."
    assert web.hits("/robots.txt") and web.hits("/private/memo") == []  # robots.txt was asked, the page never

    missing = web.url("/news/gone")
    _, reply = slash(fake, "add", {"url": missing})
    assert private_text(reply) == f"Not added: {missing}: HTTP 404 Not Found."

    for not_web in ("ftp://files.example/story.txt", "javascript:alert(1)", "not a link"):
        _, reply = slash(fake, "add", {"url": not_web})
        text = private_text(reply)
        assert text.startswith("Not added: ") and "not an http(s) URL" in text, text
    _, answer = ask(fake, ORCHARD_QUESTION)  # none of it was indexed
    assert not any("Hexham" in t for t in message_texts(answer))


# --- 4. who may use them -----------------------------------------------------------------------------


def test_feed_commands_need_manage_server_and_a_server(fake: FakeDiscord, web: NewsServer) -> None:
    commands = {c["name"]: c for c in fake.commands(fake.ids.guild_id)}
    for name in ("feeds", "add"):
        assert commands[name]["default_member_permissions"] == str(C.P_MANAGE_GUILD)
        assert commands[name].get("contexts") == [0] or commands[name].get("dm_permission") is False, commands[name]
    assert {o["name"] for o in commands["feeds"]["options"]} == {"add", "list", "remove"}

    # Discord hides them from members without Manage Server...
    for name, options in (("feeds list", {}), ("feeds add", {"url": web.url("/x.xml")}), ("add", {"url": "http://a.b/"})):
        with pytest.raises(FakeDiscordError, match="cannot see command"):
            fake.send_slash(name, options, user="user")
    with pytest.raises(FakeDiscordError, match="cannot see command"):
        fake.send_autocomplete("feeds remove", {"url": ""}, focused="url", user="user")
    # ...and nobody has them in a DM.
    for user in ("user", "admin"):
        with pytest.raises(FakeDiscordError, match="not available in DMs"):
            fake.send_slash("feeds list", user=user, guild=False)
        with pytest.raises(FakeDiscordError, match="not available in DMs"):
            fake.send_slash("add", {"url": "http://a.b/"}, user=user, guild=False)

    # A server admin may open them to anyone (Integrations settings): the bot checks at run time.
    sneaky = Feed(web, "/sneaky/feed.xml", "Sneaky")
    sneaky.publish(story(web, "orchard")[1])
    fake.set_command_permissions("feeds", {"user": True})
    fake.set_command_permissions("add", {"user": True})
    try:
        for name, options in (("feeds add", {"url": sneaky.url}), ("feeds list", {}),
                              ("feeds remove", {"url": sneaky.url}), ("add", {"url": web.url("/news/orchard")})):
            callback, reply = slash(fake, name, options, user="user")
            assert callback == C.CB_CHANNEL_MESSAGE, name
            assert private_text(reply) == "You need the Manage Server permission for that.", name
        assert autocomplete(fake, "", user="user") == []
    finally:
        fake.set_command_permissions("feeds", {})
        fake.set_command_permissions("add", {})
    assert web.hits(sneaky.path) == [] and web.hits("/news/orchard") == []  # nothing was fetched
    _, listed = slash(fake, "feeds list")
    assert sneaky.url not in "\n".join(message_texts(listed))


# --- 5. a failing feed is disabled, and that is said once where it was added --------------------------


@pytest.fixture(scope="module")
def newsdesk(fake: FakeDiscord, bot: BotProcess) -> int:
    """A second text channel, created while the bot runs (it learns of it from CHANNEL_CREATE)."""
    return fake.add_channel("newsdesk", topic="Where the feeds are managed")


def is_notice(m: dict) -> bool:
    """A message the bot posted in a channel on its own saying it stopped following a feed."""
    return m["source"] == "channel" and m["event"] == "create" and "stopped following" in (m.get("content") or "")


def test_disabled_feeds_are_announced_once_in_the_channel_they_were_added_in(
        fake: FakeDiscord, web: NewsServer, bot: BotProcess, newsdesk: int) -> None:
    flaky = Feed(web, "/flaky/feed.xml", "Flaky Times")
    flaky.publish()
    _, reply = slash(fake, "feeds add", {"url": flaky.url, "every": "1s"}, channel_id=newsdesk)
    assert private_text(reply).startswith("Feed added: 0 items"), reply["content"]
    gone = Feed(web, "/gone/feed.xml", "Gone Gazette")
    gone.publish()
    _, reply = slash(fake, "feeds add", {"url": gone.url, "every": "1s"}, channel_id=newsdesk)
    assert private_text(reply).startswith("Feed added: 0 items"), reply["content"]
    mark = fake.mark()
    switched = time.monotonic()
    web.route(flaky.path, "oops", status=500, content_type="text/plain")
    # The other moves to a site that is down: no HTTP answer at all (the connection is refused).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/feed.xml"
    web.route(gone.path, "", status=301, headers={"Location": dead})

    fake.wait_until(lambda f: len([m for m in f.messages[mark:] if is_notice(m)]) >= 2, 30, "two notices")
    notices = {url: m for m in fake.messages[mark:] if is_notice(m) for url in (flaky.url, gone.url)
               if url in m["content"]}
    assert set(notices) == {flaky.url, gone.url}
    for url, notice in notices.items():
        assert notice["channel_id"] == str(newsdesk)  # where it was added, not the default channel
        assert f"I stopped following the feed {url} after repeated failures: {MAX_FAILURES} failures in a row, " \
               "the last: " in notice["content"], notice["content"]
        assert_quiet(notice)
    assert "the last: HTTP 500" in notices[flaky.url]["content"]
    assert "the last: cannot connect to 127.0.0.1" in notices[gone.url]["content"]
    # One fetch per failure (and perhaps one more still answered 200, on its way at the switch).
    failed_fetches = len([r for r in web.hits(flaky.path) if r.at >= switched])
    assert MAX_FAILURES <= failed_fetches <= MAX_FAILURES + 1, failed_fetches
    fetched = len(web.hits(flaky.path))

    _, listed = slash(fake, "feeds list")
    blocks = {url: next(b for b in listed["embeds"][0]["description"].split("\n\n") if url in b)
              for url in (flaky.url, gone.url)}
    assert "(HTTP 500)" in blocks[flaky.url] and f"⛔ **disabled**: {MAX_FAILURES} failures in a row" in blocks[flaky.url]
    assert "(no answer)" in blocks[gone.url] and f"⛔ **disabled**: {MAX_FAILURES} failures in a row" in blocks[gone.url]

    # Once: a later pass of the bot's follower (it answered from a generation newer than the
    # notices) did not say it again.
    companion = Feed(web, "/companion/feed.xml", "Companion")
    companion.publish()
    slash(fake, "feeds add", {"url": companion.url, "every": "1s"})
    url, item = story(web, "orchard")
    companion.publish(item)
    answered_from(fake, ORCHARD_QUESTION, url, "two hundred apple trees", FRESH_WITHIN)
    assert len([m for m in fake.messages[mark:] if is_notice(m)]) == 2
    assert len(web.hits(flaky.path)) == fetched  # and a disabled feed is fetched no more
    slash(fake, "feeds remove", {"url": companion.url})


# --- 6. untrusted text from the web ------------------------------------------------------------------


def assert_harmless(message: dict, web: NewsServer) -> str:
    """No live mention, markdown or foreign masked link from the web in the message; its text."""
    assert_quiet(message)
    text = "\n".join(message_texts(message))
    assert not re.search(r"@(everyone|here)", text), text  # each "@" is followed by a zero-width space
    assert not re.search(r"<@[!&]?\d", text) and "<#" not in text, text
    for m in re.finditer(r"\]\((?P<url>[^)\s]*)\)", text):  # masked links: the bot's own, to the articles
        assert m["url"].startswith(web.url("/")), (m["url"], text)
    assert "**Quarry**" not in text and "**at the kiosk**" not in text  # no bold from the page
    return text


def test_markdown_and_mentions_from_a_feed_are_shown_inert(fake: FakeDiscord, web: NewsServer) -> None:
    role = f"<@&{fake.ids.moderator_role_id}>"
    hostile_feed = Feed(web, "/hostile/feed.xml", f"@everyone {role} **Evil** [Wire]({EVIL_URL})")
    hostile_feed.publish()
    _, reply = slash(fake, "feeds add", {"url": hostile_feed.url, "every": "1s"})
    text = assert_harmless(reply, web)
    assert text.startswith("Feed added: 0 items") and f"@{ZWSP}everyone" in text and "\\*\\*Evil\\*\\*" in text

    title = f"@everyone **Quarry** <@123> {role} [x]({EVIL_URL}) Hathersage lido reopens"
    paragraphs = [
        "The Hathersage lido will reopen on 14 June after a 2 million pound refurbishment, @everyone was told by <@123>.",
        f"Swimmers can book sessions at [x]({EVIL_URL}) or **at the kiosk**, {role} said in a statement on Monday.",
        "The heated pool at the Hathersage lido will open from 6am every day during the summer holidays.",
    ]
    web.route("/news/lido", article_page(title, paragraphs, site="@here Peak <@123> Post", published=TODAY))
    url = web.url("/news/lido")
    hostile_feed.publish(Item(title, url, guid="lido", published=dt.datetime.now(dt.UTC)))
    answer, _ = answered_from(fake, LIDO_QUESTION, url, "14 June", FRESH_WITHIN)
    text = assert_harmless(answer, web)
    # The hostile parts are still there for the reader, just inert.
    assert f"@{ZWSP}everyone" in text and f"<{ZWSP}@123>" in text, text
    assert f"<{ZWSP}@{ZWSP}&{fake.ids.moderator_role_id}>" in text, text  # it would ping the Moderators
    assert "\\*\\*Quarry\\*\\*" in text and "\\[x\\]" in text, text

    _, listed = slash(fake, "feeds list")
    assert_harmless(listed, web)
    slash(fake, "feeds remove", {"url": hostile_feed.url})


# --- 7. a feed disabled while the bot was down -------------------------------------------------------


def test_a_feed_disabled_while_the_bot_was_down_is_announced_when_it_is_back(
        fake: FakeDiscord, web: NewsServer, bot: BotProcess, newsdesk: int, module_dir: Path,
        real_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.config import Settings
    from index.ingest import Ingester

    night = Feed(web, "/night/feed.xml", "Night Desk")
    night.publish()
    _, reply = slash(fake, "feeds add", {"url": night.url, "every": "1h"}, channel_id=newsdesk)
    assert private_text(reply).startswith("Feed added: 0 items"), reply["content"]
    assert bot.stop() == 0, bot.tail()

    # While the bot is down a separate `newsbot watch` finds the feed broken and disables it.
    web.route(night.path, "down for maintenance", status=503, content_type="text/plain")
    settings = Settings.from_env({"NEWSBOT_ALLOW_PRIVATE_URLS": "1", "NEWSBOT_HOST_DELAY_SECONDS": "0",
                                  "NEWSBOT_FEED_MAX_FAILURES": "1"},
                                 corpus_dir=module_dir / "corpus", index_dir=module_dir / "index")

    async def watch_once() -> list[str]:
        async with Ingester(settings, embedder=real_embedder) as ingester:
            report = await ingester.run_round(all_feeds=True)
        return [f.status for f in report.feeds if f.url == night.url]

    assert asyncio.run(watch_once()) == ["disabled"]

    mark = fake.mark()
    # Back, on a Discord that sends the guild a few seconds after READY (as it may): the bot's first
    # passes for disabled feeds come before it has the channel in its cache.
    fake.delay_guild_create(3.0)
    try:
        bot.start()
        bot.wait_ready(fake)
        notice = fake.wait_message(is_notice, 30, since=mark)
    finally:
        fake.delay_guild_create(0)
    assert notice["channel_id"] == str(newsdesk), notice
    assert night.url in notice["content"] and "HTTP 503" in notice["content"], notice["content"]
    assert_quiet(notice)
    _, listed = slash(fake, "feeds list")
    block = next(b for b in listed["embeds"][0]["description"].split("\n\n") if night.url in b)
    assert "⛔ **disabled**" in block and "HTTP 503" in block, block
    # Feeds disabled before the restart were announced then, and are not again.
    assert [m["content"] for m in fake.messages[mark:] if is_notice(m)] == [notice["content"]]
