"""Split body text into sentences and passages, keeping exact character offsets."""

from __future__ import annotations

import re

from .records import Block, Passage, Sentence

# Tokens after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "col", "lt", "sgt", "capt", "cmdr", "adm", "maj", "gov", "sen", "rep", "pres", "supt", "insp", "det", "rev", "fr", "hon", "messrs", "mme", "mlle", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "no", "nos", "vol", "vols", "fig", "figs", "p", "pp", "ed", "eds", "est", "approx", "dept", "univ", "assn", "bros", "co", "corp", "inc", "ltd", "llc", "plc", "vs", "v", "etc", "al", "cf", "ca", "e.g", "i.e", "u.s", "u.k", "u.n", "u.s.a", "e.u", "a.m", "p.m", "d.c", "n.y", "l.a", "u.s.s", "ph.d", "b.a", "m.a", "m.d", "d.c", "ave", "blvd", "rd", "hwy", "jr.", "ret", "mph", "kg", "km", "cm", "mm", "oz", "lb", "lbs", "min", "max", "tel", "ext", "dist"]
)
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, then white space.
_BOUNDARY = re.compile(r"(?<![.!?…])([.!?…]+)([\"'”’»)\]]*)(\s+)")
_OPENERS = "\"'“‘«(["


def _token_before(text: str, end: int) -> str:
    """The word (letters and dots) that ends at ``end`` (the position of the full stop)."""
    i = end
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "."):
        i -= 1
    return text[i:end]


def _is_boundary(text: str, m: re.Match[str], limit: int) -> bool:
    punct = m.group(1)
    nxt_pos = m.end()
    if nxt_pos >= limit:
        return True
    nxt = text[nxt_pos]
    if not (nxt.isupper() or nxt.isdigit() or nxt in _OPENERS):
        return False
    if punct == ".":
        word = _token_before(text, m.start(1))
        low = word.lower()
        if low in _ABBREVIATIONS:
            return False
        if len(word) == 1 and word.isupper():  # an initial: "J. K. Rowling"
            return False
        if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):  # "U.S", "a.m" without the final dot
            return False
    return True


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans within ``text[start:end]``, stripped of surrounding white space."""
    spans: list[tuple[int, int]] = []
    seg_start = start
    for m in _BOUNDARY.finditer(text, start, end):
        if _is_boundary(text, m, end):
            spans.append((seg_start, m.start(3)))
            seg_start = m.end()
    spans.append((seg_start, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


#: A passage is at most this many sentences, or this many characters.
PASSAGE_MAX_SENTENCES = 4
PASSAGE_MAX_CHARS = 700


def split_article(article_id: str, text: str, blocks: list[Block]) -> tuple[list[Sentence], list[Passage]]:
    """Sentences and passages of the body blocks of an article.

    A passage groups consecutive body sentences, across short paragraphs (news sites often put one
    sentence in each) but never across a heading or boilerplate, up to a size limit.
    """
    sentences: list[Sentence] = []
    passages: list[Passage] = []
    group: list[tuple[int, int]] = []
    for block in blocks:
        if block.kind != "body":
            if group:
                _emit(article_id, text, group, sentences, passages)
                group = []
            continue
        for span in sentence_spans(text, block.start, block.end):
            if group and (
                len(group) >= PASSAGE_MAX_SENTENCES or span[1] - group[0][0] > PASSAGE_MAX_CHARS
            ):
                _emit(article_id, text, group, sentences, passages)
                group = []
            group.append(span)
    if group:
        _emit(article_id, text, group, sentences, passages)
    return sentences, passages


def _emit(article_id: str, text: str, group: list[tuple[int, int]],
          sentences: list[Sentence], passages: list[Passage]) -> None:
    p = len(passages)
    passages.append(Passage(article_id, p, group[0][0], group[-1][1], text[group[0][0]:group[-1][1]]))
    for s, e in group:
        sentences.append(Sentence(article_id, p, len(sentences), s, e, text[s:e]))
