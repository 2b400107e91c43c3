"""The answer inside a quote, in bold: found by the question's type, the quote itself unchanged."""

from __future__ import annotations

import pytest

from bot.render import escape_bold, payload_problems, render_answer
from index.answer import question_type
from index.cli import BOLD, PLAIN, format_answer
from index.highlight import answer_spans
from index.records import Answer, Citation, Quote


def marked(question: str, sentence: str) -> list[str]:
    return [sentence[a:b] for a, b in answer_spans(question_type(question), question, sentence)]


@pytest.mark.parametrize(("question", "sentence", "expected"), [
    ("How many people were killed in the storm?", "At least 1,200 people died and damage reached $3.5 million.",
     ["1,200", "$3.5 million"]),
    ("When does the ceasefire begin?", "The ceasefire begins on March 3, 2024, at noon, officials said Monday.",
     ["March 3, 2024", "Monday"]),
    ("Which singer performed with Luke Combs?", "Folk titans Joni Mitchell and Tracy Chapman sang beside Luke Combs.",
     ["Joni Mitchell", "Tracy Chapman"]),
    ("Where is Chery opening its European headquarters?", "Chery chose Liverpool for its European base.",
     ["Liverpool"]),
    ("What did the surgeon general declare?", "Gun violence is a public health crisis, Vivek Murthy said.", []),
    ("What year did the 2024 Games open?", "The 2024 Games opened in July 2024.", ["July 2024"]),
])
def test_the_phrases_of_the_asked_kind_that_the_question_does_not_name(question, sentence, expected) -> None:  # type: ignore[no-untyped-def]
    assert marked(question, sentence) == expected


def _answer(text: str, spans: tuple[tuple[int, int], ...]) -> Answer:
    c = Citation(1, "a1", "Chery picks Liverpool", "Echo", "https://example.org/a", "2024-05-01", None)
    return Answer("Where?", True, 0.9, (Quote(text, 1, 0.9, 7, "a1", 0, len(text), (), spans),), (c,))


def test_discord_shows_the_answer_in_bold_and_keeps_everything_else_escaped() -> None:
    text = "Chery picked *Liverpool* @everyone, [click](https://evil.example) for <@123>."
    start = text.index("Liverpool")
    out = escape_bold(text, [(start, start + len("Liverpool"))])
    assert "\\***Liverpool**\\*" in out  # the sentence's own asterisks stay escaped around the bold
    assert "@everyone" not in out and "](" not in out and "<@1" not in out
    payload = render_answer(_answer(text, ((start, start + 9),)))
    assert "**Liverpool**" in payload.embeds[0]["description"]
    assert not payload_problems(payload)


def test_bad_spans_are_ignored_and_the_text_is_never_altered() -> None:
    text = "Chery chose Liverpool."
    assert escape_bold(text, [(50, 60), (5, 3)]) == "Chery chose Liverpool."
    assert escape_bold(text, [(12, 21), (14, 18)]) == "Chery chose **Liverpool**."


def test_the_terminal_shows_bold_only_when_asked() -> None:
    ans = _answer("Chery chose Liverpool.", ((12, 21),))
    assert f"{BOLD}Liverpool{PLAIN}" in format_answer(ans, bold=True)
    assert BOLD not in format_answer(ans) and "“Chery chose Liverpool.”" in format_answer(ans)


def test_a_when_question_answered_by_no_date_yet_marks_that_phrase() -> None:
    assert marked("When will the trial start?", "No date has been set for the trial.") == ["No date"]
    assert marked("When will the album come out?", "Its release date has not yet been announced.") == \
        ["not yet been announced"]
