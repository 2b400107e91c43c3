"""Property-based tests (hypothesis): the cleaner and the splitter keep exact offsets and lose no body
text, whatever the input; from hostile article text to a rendered Discord answer, every quote is
verbatim in its article and the message fits Discord's limits with no live mention or foreign link."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from index.answer import Answerer
from index.clean import classify
from index.embed import HashingEmbedder
from index.loaders import LoadResult, _finish
from index.records import Article
from index.split import split_article
from index.stores.build import build_index
from index.stores.embedded import Snapshot

EMB = HashingEmbedder()

# Text rich in what breaks splitters and renderers: punctuation runs, quotes, abbreviations, line
# breaks, markdown, mentions, masked links, control and astral characters.
PIECES = st.sampled_from([
    " ", "  ", "\n", "\n\n", "\t", ".", ". ", "!", "?", "…", "...", '"', "”", "'", ")", "(", "Mr. ", "U.S. ",
    "e.g. ", "No. 5", "A. B. ", "3.5", "@everyone", "@here", "<@123456789012345678>", "<@&42>", "<#7>",
    "[click](https://evil.example/x)", "](", "**", "__", "`", "```", "||", "~~", "> ", "# ", "- ", "1. ",
    "http://a.example/(b)", "\u200b", "\u202e", "\x00", "\r", "😀", "👩‍👩‍👧", "Ω", "名前", "By Ann Lee",
    "Photo: Getty Images", "Read more", "Subscribe to our newsletter:", "©2024",
])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=60).map("".join)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_cleaner_blocks_are_exact_ordered_and_trimmed(text: str) -> None:
    blocks = classify(text)
    end = -1
    for b in blocks:
        assert 0 <= b.start < b.end <= len(text) and b.start > end
        span = text[b.start:b.end]
        assert "\n" not in span and span == span.strip()
        assert b.kind in {"body", "heading", "boilerplate"}
        end = b.end
    # Every non-blank line is one block: nothing is dropped or invented.
    assert len(blocks) == sum(1 for line in text.split("\n") if line.strip())


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_splitter_keeps_offsets_and_loses_no_body_text(text: str) -> None:
    blocks = classify(text)
    sentences, passages = split_article("a", text, blocks)
    body = [b for b in blocks if b.kind == "body"]
    covered: set[int] = set()
    last = -1
    for i, s in enumerate(sentences):
        assert s.index == i and s.article_id == "a"
        assert text[s.start:s.end] == s.text and s.text == s.text.strip() and s.text
        assert s.start > last
        last = s.end
        assert any(b.start <= s.start and s.end <= b.end for b in body), "a sentence outside the body text"
        p = passages[s.passage]
        assert p.start <= s.start and s.end <= p.end and text[p.start:p.end] == p.text
        covered.update(range(s.start, s.end))
    wanted = {i for b in body for i in range(b.start, b.end) if not text[i].isspace()}
    assert wanted <= covered, "body text that is in no sentence"


# -- from hostile article text to a rendered answer ---------------------------------------------------

WORDS = st.sampled_from(["harbour", "strike", "ferry", "fog", "mayor", "storm", "council", "budget", "museum", "river", "bridge"])
SENTENCE = st.builds(
    lambda ws, mid, end: " ".join(ws[:2]).capitalize() + " " + mid + " " + " ".join(ws[2:]) + end,
    st.lists(WORDS, min_size=4, max_size=9), st.one_of(PIECES, st.text(max_size=8)), st.sampled_from([".", "!", "?", "…"]),
)
ARTICLE = st.lists(SENTENCE, min_size=1, max_size=8).map(lambda ss: "\n\n".join(" ".join(ss[i:i + 2]) for i in range(0, len(ss), 2)))
META = st.one_of(st.none(), TEXT, st.just("https://news.example/a(b)[c]<@1>"), st.just("javascript:alert(1)"))

# What Discord would turn into a ping or a link, written without escapes.
LIVE_MENTION = re.compile(r"<@!?\d+>|<@&\d+>|<#\d+>|@everyone|@here", re.IGNORECASE)
MASKED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\((?P<url>[^)\s]*)\)")


@st.composite
def corpora(draw: st.DrawFn) -> list[Article]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        out.append(_finish(Article(
            id=f"art{i}", title=draw(TEXT) or f"Article {i}", text=draw(ARTICLE), source=draw(META),
            url=draw(st.one_of(st.none(), st.just(f"https://news.example/{i}"), META)), path=f"art{i}.md",
        )))
    return out


# Each example builds an index: no shrinking (it would rebuild hundreds of them); the failing
# example is printed as found.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(corpora(), st.lists(st.lists(WORDS, min_size=1, max_size=4).map(" ".join), min_size=1, max_size=3))
def test_answers_quote_verbatim_and_render_inert(articles: list[Article], questions: list[str]) -> None:
    from bot.render import payload_problems, render_answer, safe_url

    folder = Path(tempfile.mkdtemp(prefix="newsbot-prop-"))
    try:
        build_index(folder, LoadResult(articles=articles), EMB)
        snap = Snapshot.open(folder, EMB)
        answerer = Answerer(snap, EMB, threshold=0.0)
        texts = {a.id: a.text for a in articles}
        for question in questions:
            answer = answerer.answer(question)
            citing = {c.n: c for c in answer.citations}
            for q in answer.quotes:
                assert texts[q.article_id][q.start:q.end] == q.text
                assert citing[q.citation].article_id == q.article_id
                # (further citations of near-duplicates: see the test below)
            payload = render_answer(answer)
            assert payload_problems(payload) == []
            shown = [payload.content] + [
                part for e in payload.embeds for part in (e.get("title") or "", e.get("description") or "",
                                                          (e.get("footer") or {}).get("text") or "")
            ]
            allowed = {safe_url(c.link or c.url) for c in answer.citations} | {safe_url(c.url) for c in answer.citations}
            for text in shown:
                assert not LIVE_MENTION.search(text), text
                for m in MASKED_LINK.finditer(text):
                    assert m["url"] in allowed, f"a link that no citation made: {m[0]}"
        snap.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_quote_is_never_cited_to_an_article_that_does_not_contain_it(tmp_path: Path) -> None:
    """Two outlets, one sentence apart by a "not": the quote from one must not be cited to the other
    (the engine merges citations of near-duplicate sentences, by word overlap)."""
    said = "Rail fares will rise by five percent in March, the transport minister said on Monday."
    denied = "Rail fares will not rise by five percent in March, the transport minister said on Monday."
    articles = [
        _finish(Article(id="daily", title="Fares up", text=said, source="Daily", path="daily.md")),
        _finish(Article(id="weekly", title="Fares not up", text=denied, source="Weekly", path="weekly.md")),
    ]
    build_index(tmp_path / "ix", LoadResult(articles=articles), EMB)
    snap = Snapshot.open(tmp_path / "ix", EMB)
    answer = Answerer(snap, EMB, threshold=0.0).answer("Will rail fares rise by five percent in March?")
    snap.close()
    texts = {a.id: a.text for a in articles}
    citing = {c.n: c.article_id for c in answer.citations}
    assert answer.quotes
    for q in answer.quotes:
        for n in q.citations:
            assert q.text in texts[citing[n]], f"{q.text!r} is cited to {citing[n]!r}, which says otherwise"
