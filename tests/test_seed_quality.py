"""The seed corpus with the real packaged model: every dev question right, every other declined."""

from __future__ import annotations

import json

import pytest
from support import SHARED
from test_clean_split import SEED_BOILERPLATE

from index.evaluate import is_correct

pytestmark = pytest.mark.model

QUESTIONS = [json.loads(line) for line in (SHARED / "eval" / "seed-dev.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("q", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
def test_seed_dev_question(seed_engine, q) -> None:  # type: ignore[no-untyped-def]
    ans = seed_engine.ask(q["question"])
    for quote in ans.quotes:
        assert quote.text not in SEED_BOILERPLATE
    if not q["answerable"]:
        assert not ans.answered, f"should decline, quoted {[x.text for x in ans.quotes]}"
        return
    assert ans.answered, f"declined with confidence {ans.confidence:.2f}"
    first = ans.quotes[0]
    assert is_correct(first.text, q["answers"]), f"first quote is wrong: {first.text}"
    # The quote is verbatim from the cited article, at its offsets.
    from support import ROOT

    from index.loaders import load_corpus

    arts = {a.id: a for a in load_corpus(ROOT / "corpus").articles}
    assert arts[first.article_id].text[first.start:first.end] == first.text


def test_disagreeing_articles_are_both_quoted(seed_engine) -> None:  # type: ignore[no-untyped-def]
    ans = seed_engine.ask("Who is the leader of Liverpool City Council?")
    joined = " ".join(q.text for q in ans.quotes)
    assert "Liam Robertson" in joined and "Liam Robinson" in joined
    cited_articles = {c.article_id for c in ans.citations}
    assert cited_articles == {"000_58346f7b7de47b31", "001_21befda17cf27a6e"}


def test_the_answer_inside_the_quote_is_marked_at_its_offsets(seed_engine) -> None:  # type: ignore[no-untyped-def]
    ans = seed_engine.ask("Where is Chery opening its European headquarters?")
    first = ans.quotes[0]
    marked = [first.text[a:b] for a, b in first.answer_spans]
    assert "Liverpool" in marked
    assert "Chery" not in marked  # named in the question
