"""The answer inside a quote: where a quoted sentence holds what the question asks for.

:func:`answer_spans` finds, in a quoted sentence, the phrases of the kind the question asks for
(a number, a date, or a name: :func:`index.answer.question_type`) that the question does not
already name, as character offsets into the verbatim sentence. The bot and the terminal show them
in bold; the quote's text and its offsets are never changed.

The kinds are recognised by rules (digits and number words, month and day names and years, runs of
capitalised words), not by a named-entity model: the one maintained small English model (spaCy's)
is only available here through a third-party copy whose files could not be checked against the
published release, and its entity types did not improve held-out answers (docs/EVAL.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .terms import STOPWORDS, words

_NUMBER = re.compile(
    r"(?:[$€£¥]\s?)?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent\b|per cent\b|million\b|billion\b|trillion\b|thousand\b|bn\b))?"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"dozens|hundreds|thousands|millions|billions)\b(?:\s(?:million|billion|thousand|hundred|percent)\b)?",
    re.I,
)
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
          r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DATE = re.compile(
    rf"\b{_MONTH}\.?(?:\s\d{{1,2}}(?:st|nd|rd|th)?)?(?:,?\s(?:19|20)\d\d)?\b"
    r"|\bMay\s(?:\d{1,2}(?:st|nd|rd|th)?(?:,?\s(?:19|20)\d\d)?|(?:19|20)\d\d)\b"
    r"|\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b"
    r"|\b(?:19|20)\d\d(?:s)?\b"
)
#: The answer to "when will ...?" may be that nobody knows yet: "no date has been set", "has not
#: been announced", "yet to be scheduled".
UNANNOUNCED = re.compile(
    r"\b(?:no (?:date|timeline|timetable|time ?frame)\b|(?:not|yet to) (?:yet )?(?:been |be )?"
    r"(?:announced|set|scheduled|determined|decided|confirmed|released|disclosed)\b|\bto be (?:announced|determined|confirmed)\b)",
    re.I,
)
# A run of capitalised words, with the small words names carry inside them ("Bank of England").
_CAP = r"(?:[A-Z][\w'’.-]*|[A-Z]\.)"
_NAME = re.compile(rf"\b{_CAP}(?:\s(?:(?:of|the|de|da|van|von|al|bin)\s)?{_CAP})*")


_WHERE = re.compile(r"\bwhere\b", re.I)


def highlight_type(question_type: str, question: str) -> str:
    """The kind of phrase to show in bold: the question's type, and a place's name for "where"."""
    return "name" if question_type == "other" and _WHERE.search(question) else question_type


_DATE_OR_UNANNOUNCED = re.compile(f"{_DATE.pattern}|(?i:{UNANNOUNCED.pattern})")


def answer_spans(question_type: str, question: str, sentence: str) -> tuple[tuple[int, int], ...]:
    """(start, end) offsets in ``sentence`` of the phrases of ``question_type`` ("number", "date",
    "name"; anything else finds none) that ``question`` does not already name."""
    kind = highlight_type(question_type, question)
    pattern = {"number": _NUMBER, "date": _DATE_OR_UNANNOUNCED, "name": _NAME}.get(kind)
    if pattern is None:
        return ()
    asked = set(words(question))
    spans = []
    for m in pattern.finditer(sentence):
        start, end = m.span()
        text = m.group(0)
        if kind == "name":
            start, end, text = _trim_name(sentence, start, end)
            if not text:
                continue
        ws = [w for w in words(text) if w not in STOPWORDS]
        if not ws or all(w in asked for w in ws):
            continue  # nothing the question does not already say
        spans.append((start, end))
    return tuple(spans)


def _trim_name(sentence: str, start: int, end: int) -> tuple[int, int, str]:
    """A capitalised run without a sentence-initial common word ("The", "In") or trailing dots."""
    text = sentence[start:end]
    first, _, rest = text.partition(" ")
    if first.lower() in STOPWORDS and (start == 0 or sentence[:start].rstrip().endswith((".", '"', "“", "—", ":"))):
        if not rest:
            return start, end, ""
        start += len(first) + 1
        text = rest
    stripped = text.rstrip(".")
    end -= len(text) - len(stripped)
    if start == 0 and " " not in stripped:
        return start, end, ""  # one capitalised word opening the sentence: too often just the start
    return start, end, stripped


def pieces(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut at ``spans`` into (piece, is the answer) in order, for whoever shows the bold
    (Discord markdown, a terminal); overlapping, empty or out-of-range spans are skipped."""
    out: list[tuple[str, bool]] = []
    pos = 0
    for a, b in sorted(spans):
        if a < pos or b <= a or b > len(text):
            continue
        if a > pos:
            out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    if pos < len(text):
        out.append((text[pos:], False))
    return out

