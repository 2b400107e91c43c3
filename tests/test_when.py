"""Relative time in questions ("this week", "recently"), read against the day they are asked."""

from __future__ import annotations

import datetime as dt

import pytest

from index.when import parse_day, question_window

ASKED = dt.date(2024, 5, 7)  # a Tuesday


@pytest.mark.parametrize(
    ("question", "phrase", "days_before", "days_after"),
    [
        ("Which airline was rocked by deadly turbulence this week?", "this week", 14, 3),
        ("What did this week’s summit agree?", "this week’s", 14, 3),
        ("A plane door panel blew out mid-air last week on which airline?", "last week", 14, 3),
        ("Who did the president meet on Sunday?", "on Sunday", 9, 1),
        ("How much was he fined Tuesday?", "Tuesday", 9, 1),
        ("What happened at the port yesterday?", "yesterday", 3, 1),
        ("Which holiday is celebrated by millions this month?", "this month", 45, 5),
        ("Which company recently attempted a test launch?", "recently", 90, 3),
        ("Which facilities were targeted in recent weeks?", "recent", 90, 3),
        ("Which airline will furlough pilots this fall?", "this fall", 200, 60),
    ],
)
def test_phrases_set_a_window_around_the_asking_day(question: str, phrase: str, days_before: int,
                                                    days_after: int) -> None:
    w = question_window(question, ASKED)
    assert w is not None and w.phrase == phrase
    assert (ASKED - w.start).days == days_before and (w.end - ASKED).days == days_after
    assert ASKED in w and w.start in w and w.end in w
    assert w.start - dt.timedelta(days=1) not in w and w.end + dt.timedelta(days=1) not in w


def test_this_year_is_the_calendar_year_with_slack_for_early_january() -> None:
    w = question_window("Which stadium hosts this year's opening ceremony?", ASKED)
    assert w is not None and w.phrase == "this year's"
    assert w.end == dt.date(2024, 12, 31) and dt.date(2023, 12, 20) in w and dt.date(2023, 12, 1) not in w


def test_last_year_is_the_calendar_year_before_and_its_reviews() -> None:
    w = question_window("Which film earned the most last year?", ASKED)
    assert w is not None and w.phrase == "last year"
    assert dt.date(2023, 6, 1) in w and dt.date(2024, 1, 31) in w and dt.date(2024, 2, 1) not in w
    assert dt.date(2022, 12, 1) not in w


@pytest.mark.parametrize(
    "question",
    [
        "Which store had the best Black Friday sales?",  # a named day, not a day of this week
        "Who won Super Tuesday in 2020?",
        "Where is Chery opening its European headquarters?",
        "Who won the 2024 Champions League final?",  # a year names its own time (numbers_missing)
        "Which weekly magazine ran the story?",  # "week" inside another word
    ],
)
def test_questions_that_do_not_say_when_have_no_window(question: str) -> None:
    assert question_window(question, ASKED) is None


def test_no_asking_day_reads_no_time_into_the_question() -> None:
    assert question_window("Which airline was rocked by turbulence this week?", None) is None


def test_the_narrowest_phrase_wins() -> None:
    w = question_window("What did the council decide this week, after months of recent delays?", ASKED)
    assert w is not None and w.phrase == "this week"


@pytest.mark.parametrize(
    ("text", "day"),
    [("2024-05-07", dt.date(2024, 5, 7)), ("2024/05/07", dt.date(2024, 5, 7)),
     ("2024-05-07T10:00:00Z", dt.date(2024, 5, 7)), (None, None), ("", None), ("May 2024", None),
     ("2024-02-30", None)],
)
def test_published_dates_parse_or_are_unknown(text: str | None, day: dt.date | None) -> None:
    assert parse_day(text) == day
