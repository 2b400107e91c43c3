"""Relative time in a question ("this week", "yesterday", "recently"), read against the day it was asked.

"Which chain filed for bankruptcy this week?" asks about the week it is asked in: an article from two
years earlier about another chain's bankruptcy does not answer it, however close its words. The
answer engine prefers articles from the question's window and lowers its confidence when the best
sentence comes from outside it (index/answer.py); a question with no such phrase, or asked on an
unknown day, has no window and is answered from articles of any date.

The windows are deliberately generous (news of "this week" is often published a few days either
side, and "recently" is loose): they are meant to tell this week from another year, not Tuesday
from Thursday.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Window:
    """The dates a question's relative time phrase covers (both ends included)."""

    start: dt.date
    end: dt.date
    phrase: str  # the words that set it, as the question wrote them

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# "Black Friday", "Super Tuesday": named days, not a day of this week.
_NOT_NAMED_DAY = "".join(f"(?<!{w} )" for w in ("black", "cyber", "super", "good", "ash", "easter", "bloody", "holy", "giving"))
_S = "(?:[’']s)?"  # "this week's"
_SEASONS = "summer|winter|spring|fall|autumn|season"
# (pattern, days before the asking day, days after it); the first match wins, so the narrower
# phrases come first. "this year" is handled apart (a calendar year).
_RULES: tuple[tuple[re.Pattern[str], int, int], ...] = tuple(
    (re.compile(p, re.I), before, after)
    for p, before, after in (
        (r"\b(today|tonight|yesterday|this morning|this afternoon|this evening|last night)\b", 3, 1),
        (rf"\b(on |last |this )?{_NOT_NAMED_DAY}({_WEEKDAYS})\b", 9, 1),
        (rf"\b(this|last|past|the past|this past|earlier this|later this) (week|weekend){_S}\b", 14, 3),
        (rf"\b(this|last|past|the past|this past|earlier this) month{_S}\b", 45, 5),
        (r"\brecent(ly)?\b|\b(last|past) (few|several|two|three) (days|weeks)\b", 90, 3),
        (rf"\b(this|last|this past) ({_SEASONS}){_S}\b", 200, 60),
    )
)
_THIS_YEAR = re.compile(rf"\b(this|so far this|earlier this|later this) year{_S}\b", re.I)
_LAST_YEAR = re.compile(rf"\blast year{_S}\b", re.I)


def question_window(question: str, asked_on: dt.date | None) -> Window | None:
    """The dates the question's relative time phrase refers to, or None (no phrase, or no asking day).

    >>> question_window("Which team won on Sunday?", dt.date(2024, 3, 12))
    Window(start=datetime.date(2024, 3, 3), end=datetime.date(2024, 3, 13), phrase='on Sunday')
    """
    if asked_on is None:
        return None
    for pattern, before, after in _RULES:
        m = pattern.search(question)
        if m:
            return Window(asked_on - before * _DAY, asked_on + after * _DAY, m.group(0))
    m = _THIS_YEAR.search(question)
    if m:
        # News of early January is often about the year before; a little slack at the start.
        return Window(dt.date(asked_on.year, 1, 1) - 14 * _DAY, dt.date(asked_on.year, 12, 31), m.group(0))
    m = _LAST_YEAR.search(question)
    if m:
        # Last year's events are often reported or reviewed early in this one.
        return Window(dt.date(asked_on.year - 1, 1, 1) - 14 * _DAY, dt.date(asked_on.year, 1, 31), m.group(0))
    return None


def parse_day(text: str | None) -> dt.date | None:
    """A published date as stored ("2024-05-07", or with a time after it), or None."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip()[:10].replace("/", "-"))
    except ValueError:
        return None
