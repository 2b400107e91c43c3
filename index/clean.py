"""Classify an article's lines into body text, headings and page boilerplate.

The text itself is never altered (quotes must stay verbatim and offsets exact): the cleaner returns
:class:`Block` spans with a kind, and only ``body`` blocks are split into quotable sentences.
"""

from __future__ import annotations

import re

from .records import Block

_END_PUNCT = re.compile(r"[.!?…。][\"'”’»)\]]*\s*$|[\"”’»]\s*$")

# Calls to action and page furniture that are never part of the story.
_CTA = re.compile(
    r"^(find out more|learn more|read more|see more|click here|sign up|sign-up|subscribe|"
    r"download( the)? app|watch( now| live)?|listen( now)?|shop now|get the (app|newsletter)|"
    r"advertisement|sponsored( content)?|show caption|hide caption|view gallery|image \d+ of \d+|"
    r"share( this)?( article| story)?|share on \w+|continue reading|skip to content|"
    r"follow us( on \w+)?|related( articles| stories| coverage)?|most read|recommended( for you)?|"
    r"all rights reserved|(c) \d{4}|© .*|copyright .*|cookie(s)? policy|privacy policy|terms of (use|service))"
    r"[\s.:!>»…]*$",
    re.I,
)
# "Label: <imperative>" promo lines, e.g. "Prep for the polls: See who is running ...".
_PROMO_LABEL = re.compile(
    r"^[^.:!?]{2,60}:\s+(see|read|text|shop|sign up|sign-up|subscribe|get|watch|listen|download|join|"
    r"click|follow|find|discover|explore|try|check out|catch up|stay|don't miss|the latest)\b",
    re.I,
)
_PROMO_WORDS = re.compile(
    r"\b(newsletter|sign up|sign-up|subscribe|subscription|free trial|podcast|our app|"
    r"deals?|curated by our editors|voter guide|in your inbox)\b",
    re.I,
)
_LIST_HEADER = re.compile(r"^(also read|read more|read also|more|related|see also|more from \w+|you may also like|"
                          r"more on this( story)?|trending|latest news|top stories)\s*[:\-–—]?\s*$", re.I)
_BYLINE = re.compile(
    r"^(by|written by|reporting by|words by|photos? by|edited by|additional reporting by)\s+"
    r"[A-Z][\w.'’-]*(\s+[A-Z][\w.'’-]*){0,4}(\s*(,|and|&)\s*[A-Z][\w.'’-]*(\s+[A-Z][\w.'’-]*){0,4})*"
    r"(\s*[,|–—-]\s*.{0,60})?$"
)
_DATELINE = re.compile(
    r"^((published|updated|posted|last updated|first published)\b.{0,80}|"
    r"[\w .,()'-]{0,40}\s[—–-]{1,2}\s*)$",
    re.I,
)
_CAPTION = re.compile(
    r"(\((photo|image|picture|credit)s?\b[^)]*\)\s*$|\b(getty images|afp|reuters|ap photo|shutterstock|"
    r"associated press|pa media|alamy|imago)\s*[)\]]?\s*$|^(photo|image|picture|credit|caption)s?\s*:)",
    re.I,
)
_CONTACT = re.compile(
    r"(^(contact|reach|email|e-mail|follow)\b.{0,120}(@|\bat\b|twitter|instagram|facebook|x\.com)|"
    r"^[^\s@]+@[^\s@]+\.\w+$)",  # one "@": "a@a@a@..." would otherwise take quadratic time
    re.I,
)


def _words(line: str) -> int:
    return len(line.split())


#: Boilerplate lines are short. Longer lines skip the unanchored patterns below, whose running time
#: on a long hostile line (one "word" of a megabyte has no spaces to count) would grow quadratically.
_SHORT_LINE_CHARS = 600


def _line_kind(line: str) -> tuple[str, str]:
    """Classify one stripped line on its own: (kind, reason)."""
    if line.startswith("#"):
        return "heading", "markdown heading"
    if _CTA.match(line):
        return "boilerplate", "call to action"
    if _LIST_HEADER.match(line):
        return "boilerplate", "related-links header"
    if _words(line) <= 40 and len(line) <= _SHORT_LINE_CHARS and (
        _PROMO_LABEL.match(line) or (_PROMO_WORDS.search(line) and ":" in line[:60])
    ):
        return "boilerplate", "promo line"
    if _BYLINE.match(line):
        return "boilerplate", "byline"
    if _words(line) <= 12 and _DATELINE.match(line):
        return "boilerplate", "dateline"
    if _words(line) <= 30 and len(line) <= _SHORT_LINE_CHARS and _CAPTION.search(line):
        return "boilerplate", "caption or credit"
    if _words(line) <= 30 and len(line) <= _SHORT_LINE_CHARS and _CONTACT.search(line):
        return "boilerplate", "contact line"
    if not _END_PUNCT.search(line):
        return "heading", "no closing punctuation"
    if _words(line) < 4:
        return "heading", "too short for a sentence"
    if line.endswith("?") and _words(line) <= 14:
        return "heading", "question heading"
    return "body", ""


def classify(text: str) -> list[Block]:
    """Split ``text`` into line blocks and classify each one."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for raw in text.split("\n"):
        start, end = pos, pos + len(raw)
        pos = end + 1
        lead = len(raw) - len(raw.lstrip())
        trail = len(raw.rstrip())
        if trail > lead:
            spans.append((start + lead, start + trail))
    kinds = [list(_line_kind(text[s:e])) for s, e in spans]

    for i, (s, e) in enumerate(spans):
        line = text[s:e]
        # A related-links header swallows the headline list below it (lines without a full stop).
        if kinds[i][1] == "related-links header" or (line.isupper() and line.rstrip().endswith(":")):
            kinds[i] = ["boilerplate", "related-links header"]
            j = i + 1
            while j < len(spans) and kinds[j][0] != "body":
                kinds[j] = ["boilerplate", "related-links list"]
                j += 1
        # A call to action takes its promo block with it: a heading-like line and up to two short
        # lines between it and the call.
        if kinds[i][1] == "call to action":
            for back in (1, 2, 3):
                j = i - back
                if j < 0:
                    break
                if kinds[j][0] == "heading":
                    for k in range(j, i):
                        kinds[k] = ["boilerplate", "promo block"]
                    break
                if _words(text[spans[j][0]:spans[j][1]]) > 40:
                    break
    return [Block(s, e, k, r) for (s, e), (k, r) in zip(spans, kinds)]
