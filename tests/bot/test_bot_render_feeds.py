"""What the feed commands say: counts, reasons, each feed's health; within Discord's limits, with
feed-supplied text (titles, URLs, errors) escaped."""

from __future__ import annotations

import time

from bot.render import payload_problems, render_article_added, render_feed_added, render_feeds
from index.feeds import Feed
from index.ingest import FeedResult, PageResult, RoundReport


def feed(i: int, **kw) -> Feed:  # type: ignore[no-untyped-def]
    base = dict(id=i, url=f"https://news.example/{i}/rss", title=f"Feed {i}", interval_s=900.0, added_at=0.0,
                last_fetch_at=time.time() - 60, last_status=200, last_error=None, etag=None, last_modified=None,
                body_sha=None, items=10, next_due_at=time.time() + 840, failures=0, disabled=False,
                disabled_reason=None, notify_channel=None, articles=7)
    base.update(kw)
    return Feed(**base)  # type: ignore[arg-type]


def test_feed_added_says_how_many_items_and_new_articles() -> None:
    pages = [PageResult(f"https://n.example/{i}", "new") for i in range(21)]
    pages += [PageResult("https://n.example/d", "duplicate"),
              PageResult("https://n.example/r", "skipped", reason="robots.txt disallows it")]
    report = RoundReport(feeds=[FeedResult("https://n.example/rss", "N **News**", items=24, pages=pages)])
    text = render_feed_added(report, 600).content
    assert text.startswith("Feed added: 24 items, 21 new articles indexed (1 already indexed, 1 skipped).")
    assert "robots.txt disallows it" in text and "every 10m" in text
    assert "N \\*\\*News\\*\\*" in text  # a feed's title is text, not markdown


def test_feed_added_but_not_indexed_says_so() -> None:
    report = RoundReport(feeds=[FeedResult("https://n.example/rss", items=2, pages=[PageResult("u", "new")])],
                         index_error="the index is locked")
    assert "fetched but not indexed yet" in render_feed_added(report, 900).content


def test_article_added_replies() -> None:
    assert render_article_added(PageResult("u", "new", "id", "Big news"), True).content.startswith("Added: Big news.")
    assert render_article_added(PageResult("u", "changed", "id", "Big news"), True).content.startswith("Updated:")
    assert render_article_added(PageResult("u", "duplicate", "id", "Big"), True).content.startswith("Already indexed")
    refused = render_article_added(PageResult("ftp://x", "skipped", reason="not an http(s) URL"), False).content
    assert refused == "Not added: ftp://x: not an http(s) URL."


def test_feeds_list_shows_health_and_disabled_feeds() -> None:
    listed = render_feeds([feed(1), feed(2, failures=2, last_error="HTTP 503", last_status=503),
                           feed(3, disabled=True, disabled_reason="6 failures in a row, the last: HTTP 500")])
    assert not payload_problems(listed)
    desc = listed.embeds[0]["description"]
    assert "https://news.example/1/rss" in desc and "7 articles taken" in desc and "HTTP 200" in desc
    assert "next fetch <t:" in desc  # a Discord timestamp, in the reader's time zone
    assert "2 failures in a row (HTTP 503)" in desc
    assert "**disabled**: 6 failures in a row, the last: HTTP 500" in desc
    assert listed.embeds[0]["footer"]["text"] == "3 feeds · 1 disabled"


def test_feeds_list_fits_however_many_feeds() -> None:
    many = render_feeds([feed(i, title="T" * 300, url="https://news.example/" + "x" * 500) for i in range(200)])
    assert not payload_problems(many)
    assert "more (`newsbot feeds list` shows them all)" in many.embeds[0]["description"]
    assert render_feeds([]).content.startswith("No feeds yet")
