from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from index.clean import classify
from index.split import sentence_spans, split_article

SEED_BOILERPLATE = [
    "Discover B2B Marketing That Performs",
    "Combine business intelligence and editorial excellence to reach engaged professionals across 36 leading media platforms.",
    "Find out more",
    "ALSO READ:",
    "UK car production hits 70-year low – but EVs will drive recovery",
    "Chery to build cars in JLR UK plants?",
]


def body_lines(text: str) -> list[str]:
    return [text[b.start:b.end] for b in classify(text) if b.kind == "body"]


def test_seed_boilerplate_is_not_body() -> None:
    from support import SHARED

    for f in sorted((SHARED / "seeds").glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        body = body_lines(text)
        for line in SEED_BOILERPLATE:
            assert line not in body
        assert any("Peter Crouch" in b for b in body) or any("CJLR" in b for b in body)


def test_news_page_furniture() -> None:
    text = "\n".join([
        "By Jane Smith, USA TODAY",
        "CNN —",
        "Published 5:03 PM EDT, Mon May 1, 2023",
        "Show caption",
        "Prep for the polls: See who is running for president and compare where they stand on key issues in our Voter Guide",
        "Holiday deals: Shop this season’s top products and sales curated by our editors.",
        "The senator (Photo: Getty Images)",
        "Contact the reporter at jsmith@example.com.",
        "Texas",
        "The governor signed the bill into law on Friday, aides said.",
    ])
    assert body_lines(text) == ["The governor signed the bill into law on Friday, aides said."]


def spans(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text, 0, len(text))]


def test_splitter_handles_news_text() -> None:
    assert spans("Mr. Smith met Dr. Jones in the U.S. on Monday. They talked.") == [
        "Mr. Smith met Dr. Jones in the U.S. on Monday.", "They talked."]
    assert spans("In 2024, JLR announced a £500m investment. It made 201,283 cars in 2025.") == [
        "In 2024, JLR announced a £500m investment.", "It made 201,283 cars in 2025."]
    assert spans("The Mk2 Land Rover Freelander was produced in Halewood. Prices rose 3.5 per cent.") == [
        "The Mk2 Land Rover Freelander was produced in Halewood.", "Prices rose 3.5 per cent."]
    assert spans("“A tie-up could be a win-win,” said Prof. Bailey. “The rationale… is strong.”") == [
        "“A tie-up could be a win-win,” said Prof. Bailey.", "“The rationale… is strong.”"]
    assert spans("He said: “We won.” Then he left! Why? Nobody knows.") == [
        "He said: “We won.”", "Then he left!", "Why?", "Nobody knows."]
    assert spans("J. K. Rowling spoke at 9 a.m. on Jan. 5. It rained.") == [
        "J. K. Rowling spoke at 9 a.m. on Jan. 5.", "It rained."]


def test_headings_without_full_stops_are_their_own_blocks() -> None:
    text = "Chery to build cars in JLR UK plants?\n\nThe news is interesting. It is.\nA Heading\nMore text here now."
    sents, passages = split_article("a", text, classify(text))
    assert [s.text for s in sents] == ["The news is interesting.", "It is.", "More text here now."]
    assert all(text[s.start:s.end] == s.text for s in sents)
    assert all(text[p.start:p.end] == p.text for p in passages)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400))
def test_sentences_are_verbatim_and_ordered(text: str) -> None:
    sents, passages = split_article("x", text, classify(text))
    last = -1
    for s in sents:
        assert text[s.start:s.end] == s.text and s.text.strip() == s.text and s.text
        assert s.start >= last
        last = s.end
        assert passages[s.passage].start <= s.start and s.end <= passages[s.passage].end
