"""Property tests: whatever the article text, the payload fits Discord and carries no live mention."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import render as R
from index.records import Answer, ArticleInfo, Citation, PassageView, Quote

UNESCAPED = re.compile(r"@everyone|@here|<@|<@&|<#", re.IGNORECASE)

# Text rich in the characters that matter: markdown, mentions, brackets, astral characters.
NASTY = st.sampled_from(
    ["@everyone", "@here", "<@123>", "<@&123>", "<@!123456789012345678>", "<#1>", "[x](https://e.example)",
     "](", "**", "__", "`", "||", "~~", "> ", "# ", "-# ", "\\", "\n", "😀", "\u200b", "\u202e", "<", "@", "&"]
)
TEXT = st.lists(st.one_of(st.text(max_size=40), NASTY), max_size=30).map("".join)
LONG_TEXT = st.one_of(TEXT, st.builds(lambda t, n: t * n, TEXT, st.integers(1, 400)))
URL = st.one_of(st.none(), st.text(max_size=30), st.builds(lambda t: "https://news.example/" + t, TEXT))


def all_text(payload: R.Payload) -> str:
    parts = [payload.content]
    for e in payload.embeds:
        parts += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
    return "\n".join(parts)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    n = draw(st.integers(1, 6))
    citations = tuple(
        Citation(n=i + 1, article_id=f"a{i}", title=draw(LONG_TEXT), source=draw(st.one_of(st.none(), TEXT)),
                 url=draw(URL), published=draw(st.one_of(st.none(), TEXT)), link=draw(URL))
        for i in range(draw(st.integers(1, 12)))
    )
    quotes = tuple(
        Quote(text=draw(LONG_TEXT), citation=draw(st.integers(1, len(citations))), score=0.5, sentence_id=i,
              article_id="a", start=0, end=1,
              also_cited=tuple(draw(st.lists(st.integers(1, len(citations)), max_size=3))))
        for i in range(n)
    )
    return Answer(question=draw(LONG_TEXT), answered=True, confidence=draw(st.floats(allow_nan=True)),
                  quotes=quotes, citations=citations)


def check(payload: R.Payload, own_links: int | None = None) -> None:
    assert R.payload_problems(payload) == []
    text = all_text(payload)
    assert not UNESCAPED.search(text), text
    if own_links is not None:
        assert text.count("](") <= own_links


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers())
def test_any_answer_fits_and_is_inert(answer: Answer) -> None:
    payload = R.render_answer(answer)
    # masked links only from the renderer's own source list: at most one per citation
    check(payload, own_links=len(answer.citations))


@settings(max_examples=100, deadline=None)
@given(LONG_TEXT)
def test_any_decline_fits_and_is_inert(message: str) -> None:
    check(R.render_decline(Answer(question="q", answered=False, confidence=0.0, message=message)), own_links=0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(LONG_TEXT, LONG_TEXT, st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1,
                max_size=12))
def test_any_passages_fit_and_are_inert(items: list[tuple[str, str, int, int]]) -> None:
    entries = [
        R.PassageEntry(citations=(i + 1,), title=title, passage=PassageView(i, "a", text, min(a, b), max(a, b)))
        for i, (title, text, a, b) in enumerate(items)
    ]
    check(R.render_passages(entries), own_links=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(LONG_TEXT, TEXT, URL), max_size=25), st.integers(-3, 5), st.one_of(st.none(), TEXT))
def test_any_sources_page_fits_and_is_inert(items: list[tuple[str, str, str | None]], page: int,
                                            query: str | None) -> None:
    arts = [ArticleInfo(f"a{i}", t, s, u, "2024-01-01", 1) for i, (t, s, u) in enumerate(items)]
    rendered = R.render_sources_page(arts, page, query=query)
    assert 0 <= rendered.page < rendered.pages
    check(rendered.payload, own_links=R.SOURCES_PER_PAGE)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.integers(0, 300))
def test_escape_fit_fits_and_is_inert(text: str, limit: int) -> None:
    out = R.escape_fit(text, limit)
    assert R.dlen(out) <= limit
    assert not UNESCAPED.search(out)
    assert "](" not in out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), URL)
def test_any_claim_check_fits_and_is_inert(answer: Answer, link: str | None) -> None:
    payload = R.render_check(answer, link=link)
    check(payload, own_links=len(answer.citations))
    [embed] = payload.embeds
    assert embed["author"]["name"] == R.CHECK_AUTHOR and R.CHECK_NOTE in embed["footer"]["text"]
    assert embed.get("url") in (None, R.safe_url(link))  # a link only if it is a safe http(s) URL
    declined = R.render_check(Answer(question=answer.question, answered=False, confidence=0.1))
    assert declined.content == R.CHECK_DECLINE and declined.embeds == ()
