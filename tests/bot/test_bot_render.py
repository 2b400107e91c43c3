"""The pure renderer: limits by construction, escaping, markers, source lists, declines, pages."""

from __future__ import annotations

import re

import pytest

from bot import render as R
from index.records import ArticleInfo, PassageView

FORBIDDEN = re.compile(r"@everyone|@here|<@|<#|<:|<t:|</", re.IGNORECASE)


def all_text(payload: R.Payload) -> str:
    parts = [payload.content]
    for e in payload.embeds:
        parts += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        parts += [f"{f['name']}\n{f['value']}" for f in e.get("fields") or ()]
    return "\n".join(parts)


def assert_ok(payload: R.Payload) -> None:
    assert R.payload_problems(payload) == []
    assert not FORBIDDEN.search(all_text(payload)), all_text(payload)


# --- escaping ---


@pytest.mark.parametrize(
    "raw",
    ["@everyone look", "hi @here", "@EveryOne", "<@123>", "<@!123456789012345678>", "<@&123>", "<#42>",
     "<:emoji:123>", "<t:1700000000:R>", "</ask:123>", "@\u200beveryone", "@\u202eeveryone"],
)
def test_escape_neutralises_mentions(raw: str) -> None:
    out = R.escape(raw)
    assert not FORBIDDEN.search(out), out
    # still readable: only zero-width spaces and backslashes were added
    assert out.replace(R.ZWSP, "").replace("\\", "") == R.normalise(raw).replace(R.ZWSP, "").replace("\\", "")


def test_escape_markdown_and_masked_links() -> None:
    out = R.escape("**bold** __u__ `code` ||spoiler|| ~~s~~ [click](https://evil.example) \\")
    assert "**" not in out.replace("\\*", "")
    assert "](" not in out
    assert "[click\\]" in out and "\\[click" in out
    assert out.endswith("\\\\")  # a trailing backslash can't escape what follows
    assert R.escape("# Heading").startswith("\\#")
    assert R.escape("> quote").startswith("\\>")
    assert R.escape("-# small").startswith("\\-")
    assert R.escape("1. item").startswith("1\\.")


def test_escape_keeps_text_on_one_line() -> None:
    assert R.escape("a\n\nb\tc\r\nd\x00e") == "a b c de"


def test_escape_fit_never_splits_an_escape() -> None:
    raw = "*" * 50 + "@everyone " * 50
    for limit in range(1, 200, 7):
        out = R.escape_fit(raw, limit)
        assert R.dlen(out) <= limit
        assert not FORBIDDEN.search(out)
        body = out.removesuffix(R.ELLIPSIS)
        assert not re.search(r"(?<!\\)(\\\\)*\\$", body), out  # no dangling backslash
    tail = R.escape_fit("start " + "x" * 500 + " the end", 40, keep_end=True)
    assert tail.startswith(R.ELLIPSIS) and tail.endswith("the end") and R.dlen(tail) <= 40


def test_dlen_counts_utf16_units() -> None:
    assert R.dlen("abc") == 3
    assert R.dlen("😀") == 2
    assert R.dlen(R.truncate("😀" * 100, 11)) <= 11


def test_safe_url() -> None:
    assert R.safe_url("https://news.example/a b(c)[d]@e") == "https://news.example/a%20b%28c%29%5Bd%5D%40e"
    assert R.safe_url("javascript:alert(1)") is None
    assert R.safe_url("https://user@evil.example/") is None
    assert R.safe_url("ftp://x.example/") is None
    assert R.safe_url("https://news.example/" + "a" * 600) is None
    assert R.safe_url("https://news.example/x#:~:text=Rail%20fares") == "https://news.example/x#:~:text=Rail%20fares"


# --- answers ---


def test_answer_has_quotes_markers_sources_and_confidence(make_answer) -> None:
    answer = make_answer(quotes=["Fares rise by 5%.", "Unions object."], titles=["Fares up", "Unions angry"])
    payload = R.render_answer(answer)
    assert_ok(payload)
    (embed,) = payload.embeds
    desc = embed["description"]
    assert "> Fares rise by 5%. [1]" in desc
    assert "> Unions object. [2]" in desc
    assert "**Sources**" in desc
    assert "**[1]** [Fares up](https://news.example/1#:~:text=Rail%20fares) — Daily Planet — 2024-05-01" in desc
    assert "**[2]** [Unions angry](" in desc
    assert embed["footer"]["text"] == "Confidence 0.82"
    assert embed["title"] == "Will rail fares rise?"


def test_also_cited_markers(make_answer) -> None:
    answer = make_answer(quotes=["A sentence."])
    q = answer.quotes[0]
    from dataclasses import replace

    answer = replace(answer, quotes=(replace(q, also_cited=(3, 4)),))
    assert "> A sentence. [1][3][4]" in R.render_answer(answer).embeds[0]["description"]


def test_answer_escapes_article_text(make_answer) -> None:
    answer = make_answer(
        question="@everyone what?",
        quotes=["Ping @everyone and <@&123> and <@1> via [here](https://evil.example) **now**"],
        titles=["Title with @here and ](x) [y](https://evil.example)"],
    )
    payload = R.render_answer(answer)
    assert_ok(payload)
    desc = payload.embeds[0]["description"]
    # the only masked link is the renderer's own citation link
    assert desc.count("](") == 1
    assert "evil.example" in desc and "](https://evil.example" not in desc


def test_huge_answer_fits(make_answer) -> None:
    answer = make_answer(
        question="q" * 5000,
        quotes=["word " * 3000, "*_~`|@" * 2000, "😀" * 5000],
        titles=["t" * 3000, "[x](y)" * 500, "@everyone " * 300],
    )
    payload = R.render_answer(answer)
    assert_ok(payload)
    desc = payload.embeds[0]["description"]
    assert desc.count("[1]") >= 1 and "[2]" in desc and "[3]" in desc  # every quote keeps its marker


def test_many_citations_fit(make_answer) -> None:
    answer = make_answer(quotes=[f"Quote {i}." for i in range(40)], titles=["A long title " * 20])
    payload = R.render_answer(answer)
    assert_ok(payload)
    assert "more" in payload.embeds[0]["description"]


def test_decline_is_short_plain_text(decline) -> None:
    payload = R.render_decline(decline())
    assert payload.embeds == ()
    assert payload.content == "The articles don't cover that."
    assert R.render_answer(decline()) == payload
    assert R.render_decline(None).content == R.DECLINE_TEXT
    assert_ok(R.render_decline(decline()))


def test_notice_escapes_parts() -> None:
    p = R.render_notice("I have no articles from “{}”.", "@everyone <@1>")
    assert_ok(p)
    assert p.content.startswith("I have no articles from “@")


# --- passages ---


def test_passages_bold_the_sentence() -> None:
    text = "Before it. The *quoted* sentence. After it."
    start = text.index("The")
    view = PassageView(1, "a1", text, start, start + len("The *quoted* sentence."))
    entry = R.PassageEntry(citations=(1,), title="Title", source="Outlet", published="2024-01-01",
                           link="https://news.example/1", passage=view)
    payload = R.render_passages([entry, R.PassageEntry(citations=(2,), title="Gone", note="It is gone.")])
    assert_ok(payload)
    first, second = payload.embeds
    assert first["description"] == "Before it. **The \\*quoted\\* sentence.** After it."
    assert first["title"] == "[1] Title — Outlet — 2024-01-01"
    assert first["url"] == "https://news.example/1"
    assert second["description"] == "It is gone."


def test_huge_passages_fit_and_keep_the_sentence() -> None:
    before, sentence, after = "b" * 20000 + " ", "The key sentence here.", " " + "a" * 20000
    text = before + sentence + after
    view = PassageView(1, "a1", text, len(before), len(before) + len(sentence))
    entries = [R.PassageEntry(citations=(i,), title="T" * 500, passage=view) for i in range(1, 13)]
    payload = R.render_passages(entries)
    assert_ok(payload)
    assert len(payload.embeds) == R.EMBEDS_LIMIT
    assert all("**The key sentence here.**" in e["description"] for e in payload.embeds)


# --- sources ---


def test_sources_pages(articles) -> None:
    first = R.render_sources_page(articles, 0)
    assert (first.page, first.pages, first.total) == (0, 3, 23)
    desc = first.payload.embeds[0]["description"]
    assert desc.splitlines()[0] == "**1.** [Article number 1](https://news.example/1) — Daily Planet · 2024-05-02"
    assert len(desc.splitlines()) == 10
    assert first.payload.embeds[0]["footer"]["text"] == "Page 1 of 3 · 23 articles"
    last = R.render_sources_page(articles, 99)
    assert last.page == 2 and len(last.payload.embeds[0]["description"].splitlines()) == 3
    assert last.payload.embeds[0]["description"].startswith("**21.**")
    assert R.render_sources_page(articles, -5).page == 0
    for p in range(3):
        assert_ok(R.render_sources_page(articles, p).payload)


def test_sources_query_and_empty(articles) -> None:
    page = R.render_sources_page([], 0, query="@everyone")
    assert_ok(page.payload)
    assert page.pages == 1 and "No indexed articles match" in page.payload.embeds[0]["description"]
    assert R.render_sources_page([], 0).payload.embeds[0]["description"] == "The index has no articles yet."
    assert R.render_sources_page(articles[:1], 0, query="x").payload.embeds[0]["title"] == "Articles matching “x”"


def test_sources_with_huge_fields_fit() -> None:
    arts = [ArticleInfo(f"x{i}", "[t](u) @here " * 100, "<@&1> " * 50, "https://news.example/" + "p" * 500,
                        "2024-01-01", 1) for i in range(30)]
    for p in range(3):
        assert_ok(R.render_sources_page(arts, p).payload)


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (1, 1), (10, 1), (11, 2), (20, 2), (21, 3)])
def test_page_count(total: int, pages: int) -> None:
    assert R.page_count(total) == pages


# --- the last line of defence ---


def test_fit_payload_repairs_anything() -> None:
    big = {"title": "t" * 1000, "description": "d" * 10000, "footer": {"text": "f" * 5000},
           "fields": [{"name": "n" * 500, "value": "v" * 2000}] * 40}
    payload = R.fit_payload(R.Payload(content="c" * 5000, embeds=(big,) * 12))
    assert R.payload_problems(payload) == []


def test_thread_name_and_choices() -> None:
    assert R.thread_name("  what\nabout   fares?  ") == "what about fares?"
    assert R.dlen(R.thread_name("x" * 500)) <= 100
    assert R.thread_name("   ") == "newsbot answer"
    assert R.choice_text("x" * 101) is None and R.choice_text(" Daily  Planet ") == "Daily Planet"


def test_about_lists_the_dates_outlets_and_feeds() -> None:
    from types import SimpleNamespace

    from bot.render import payload_problems, render_about
    from index.records import ArticleInfo

    arts = [ArticleInfo(f"a{i}", f"T{i}", src, None, day, 10) for i, (src, day) in
            enumerate([("BBC", "2024-05-02T10:00:00"), ("CNN", "2023-11-30"), ("bbc", None), (None, "2024-06-01")])]
    feeds = [SimpleNamespace(url="https://a.example/rss", title="A *news*", disabled=False),
             SimpleNamespace(url="https://b.example/rss", title=None, disabled=True)]
    info = {"sentences": 40, "built_at": "2024-06-02T08:00:00+00:00"}
    payload = render_about(info, arts, feeds, "all-MiniLM-L6-v2 (onnx-int8)")
    text = payload.embeds[0]["description"]
    assert "**Articles**: 4 (40 sentences)" in text
    assert "**Outlets (3)**: BBC, bbc, CNN" in text
    assert "**Published**: 2023-11-30 to 2024-06-01" in text
    assert "**Feeds followed (1; 1 disabled)**: A \\*news\\*" in text  # a feed's title is escaped
    assert "**Index updated**: 2024-06-02T08:00:00+00:00" in text
    assert not payload_problems(payload)
    assert "not followed here" in render_about(info, arts, None, "m").embeds[0]["description"]
