"""Pure rendering: engine records -> Discord payloads that fit Discord's limits by construction.

Nothing here talks to Discord. Every function takes records and returns plain data
(:class:`Payload`: message content plus embeds as API dicts), so the whole of *what the bot
says* can be tested without a client. Two rules hold for every payload built here:

* **Limits.** Content <= 2000, embed title <= 256, description <= 4096, field name <= 256,
  field value <= 1024, footer <= 2048, <= 25 fields, <= 10 embeds and <= 6000 characters of
  embed text per message. Lengths are counted in UTF-16 code units (:func:`dlen`), which is
  never less than Python's ``len``, so the payload fits whichever way Discord counts.
  Renderers budget their text, and :func:`fit_payload` enforces the limits again at the end.
* **Escaping.** Article text, titles, outlets, questions and engine messages go through
  :func:`escape`: no markdown, no mentions (``@everyone``, ``@here``, ``<@id>``, ``<@&id>``,
  ``<#id>``), no masked links, no custom emoji or timestamps. Only the renderer's own
  templates add markdown, and only its own masked links (to http(s) URLs it has re-encoded
  with :func:`safe_url`) contain ``](``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from discord.utils import escape_markdown, escape_mentions

from index.config import format_duration
from index.highlight import pieces
from index.records import Answer, ArticleInfo, Citation, PassageView

if TYPE_CHECKING:
    from .guilds import GuildConfig

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELDS_LIMIT = 25
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
EMBEDS_LIMIT = 10
TOTAL_LIMIT = 6000
CUSTOM_ID_LIMIT = 100
THREAD_NAME_LIMIT = 100
CHOICE_LIMIT = 100

ELLIPSIS = "…"
ZWSP = "\u200b"

ANSWER_COLOUR = 0x5865F2
PASSAGE_COLOUR = 0x4F545C
SOURCES_COLOUR = 0x3BA55C

#: Articles per page of ``/sources``.
SOURCES_PER_PAGE = 10

DECLINE_TEXT = "The articles I have don't cover that, so I can't answer it."

# Placeholders for [ and ] while discord.utils.escape_markdown runs: its masked-link pattern
# (\[.+\]\(.+\)) backtracks badly on text with many brackets, and we escape brackets ourselves.
_LBRACKET = "\ue000"
_RBRACKET = "\ue001"
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), None)
# Control characters that are not whitespace (whitespace is collapsed to single spaces instead).
_CONTROL = re.compile(
    "[" + re.escape("".join(chr(c) for c in range(0xA0) if unicodedata.category(chr(c)) == "Cc" and not chr(c).isspace()))
    + "]"
)
_EVERYONE_HERE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
_ORDERED_LIST = re.compile(r"^(\d+)\.(?=\s|$)")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?")
# Everything else in a path, query or fragment is percent-encoded, so a URL can't close a
# masked link early, open markdown, or carry a mention.
_URL_SAFE = "/:?#!$&'+,;=%~-._"
URL_LIMIT = 512


# --- payloads -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payload:
    """A message to send: content and embeds (Discord API dicts). Either may be empty."""

    content: str = ""
    embeds: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class SourcesPage:
    """One page of ``/sources``: its payload, its number (0-based) and the page count."""

    payload: Payload
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class PassageEntry:
    """One quoted sentence to show in context, for :func:`render_passages`.

    ``passage`` is None when the sentence is no longer in the index; ``note`` says why.
    """

    citations: tuple[int, ...]
    title: str
    source: str | None = None
    published: str | None = None
    link: str | None = None
    passage: PassageView | None = None
    note: str = ""


# --- lengths and truncation ---------------------------------------------------------------


def dlen(text: str) -> int:
    """The length of ``text`` in UTF-16 code units: what Discord may count, never below ``len``."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _width(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def truncate(text: str, limit: int, *, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` (by :func:`dlen`), ending in ``ellipsis`` when cut."""
    if dlen(text) <= limit:
        return text
    if limit <= 0:
        return ""
    if dlen(ellipsis) > limit:
        ellipsis = ""
    budget = limit - dlen(ellipsis)
    used = 0
    end = 0
    for i, ch in enumerate(text):
        w = _width(ch)
        if used + w > budget:
            break
        used += w
        end = i + 1
    return text[:end].rstrip() + ellipsis


# --- escaping -----------------------------------------------------------------------------


def normalise(text: str | None) -> str:
    """One line of text: whitespace runs collapsed, control and bidi-override characters gone."""
    if not text:
        return ""
    text = text.translate(_BIDI).replace(_LBRACKET, "\ufffd").replace(_RBRACKET, "\ufffd")
    return " ".join(_CONTROL.sub("", text).split())


def escape(text: str | None) -> str:
    """``text`` made inert for Discord: one line, no markdown, mentions, masked links or tags.

    Uses :func:`discord.utils.escape_markdown` and :func:`discord.utils.escape_mentions`, then
    escapes every bracket (no masked links), puts a zero-width space after every ``<`` (no
    ``<@id>``, ``<@&id>``, ``<#id>``, custom emoji, timestamps or command mentions, whatever
    the id's length) and after any ``@`` before ``everyone``/``here`` in any case.
    """
    s = normalise(text)
    if not s:
        return ""
    s = s.replace("[", _LBRACKET).replace("]", _RBRACKET)
    s = escape_markdown(s)
    s = s.replace(_LBRACKET, "\\[").replace(_RBRACKET, "\\]")
    s = s.replace("\\](", "\\]" + ZWSP + "(")  # belt and braces: no "](" outside our own links
    s = escape_mentions(s)
    s = s.replace("<", "<" + ZWSP)
    s = _EVERYONE_HERE.sub("@" + ZWSP, s)
    return _ORDERED_LIST.sub(r"\1\\.", s)


def escape_fit(text: str | None, limit: int, *, keep_end: bool = False) -> str:
    """``text`` escaped (:func:`escape`) within ``limit``, cut *before* escaping so no escape is split.

    The result fits ``limit``; when cut it ends with an ellipsis (or, with ``keep_end``, keeps
    the end of the text and starts with one).
    """
    if limit <= 0 or not text:
        return ""
    # Only about ``limit`` characters can survive: don't escape megabytes to find that out.
    # (Whitespace collapses, so keep a generous margin of raw text.)
    span = 8 * (limit + 1)
    cut = len(text) > span
    if cut:
        text = text[-span:] if keep_end else text[:span]
    full = escape(text)
    if not cut and dlen(full) <= limit:
        return full
    norm = normalise(text)
    if keep_end:
        norm = norm[-(limit + 1) :]  # escaping never shortens text, so more can't fit

        def candidate(k: int) -> str:
            return ELLIPSIS + escape(norm[len(norm) - k :]).lstrip() if k else ELLIPSIS

    else:
        norm = norm[: limit + 1]

        def candidate(k: int) -> str:
            return escape(norm[:k]).rstrip() + ELLIPSIS if k else ELLIPSIS

    lo, hi = 0, len(norm)
    while lo < hi:  # the longest k whose candidate fits
        mid = (lo + hi + 1) // 2
        if dlen(candidate(mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    while lo > 0 and dlen(candidate(lo)) > limit:  # escaping is monotonic; this is a guard
        lo -= 1
    out = candidate(lo)
    return out if dlen(out) <= limit else ""


def escape_bold(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` escaped (:func:`escape`) with the character ranges ``spans`` in bold: the quote's
    answer (index/highlight.py). The text itself is unchanged; only ``**`` is added around them."""
    out = [_bold(escape(p)) if answer else _escape_keeping_spaces(p) for p, answer in pieces(text, spans)]
    return re.sub(" {2,}", " ", "".join(out)).strip()


def _bold(escaped: str) -> str:
    return f"**{escaped}**" if escaped else ""


def _escape_keeping_spaces(part: str) -> str:
    """:func:`escape` of a piece of a line, with the space at either end that escaping trims."""
    inner = escape(part)
    if not inner:
        return " " if part[:1].isspace() or part[-1:].isspace() else ""
    return (" " if part[:1].isspace() else "") + inner + (" " if part[-1:].isspace() else "")


def escape_fit_bold(text: str, spans: Sequence[tuple[int, int]], limit: int) -> str:
    """:func:`escape_bold` when it fits ``limit``, else the plain :func:`escape_fit` (cut, no bold)."""
    if spans:
        bold = escape_bold(text, spans)
        if dlen(bold) <= limit:
            return bold
    return escape_fit(text, limit)


def safe_url(url: str | None, *, limit: int = URL_LIMIT) -> str | None:
    """An http(s) URL re-encoded for use in a masked link, or None if it can't be used safely.

    Percent-encodes everything in the path, query and fragment that could close the link,
    start markdown or look like a mention (``( ) [ ] < > @ | * ` "`` and spaces among them).
    Refuses other schemes, user-info in the host, odd hosts and URLs longer than ``limit``.
    """
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not _HOST.fullmatch(parts.netloc):
        return None
    out = urlunsplit(
        (
            scheme,
            parts.netloc.lower(),
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )
    return out if len(out) <= limit else None


def link(text: str, url: str | None) -> str:
    """A masked link ``[text](url)`` when ``url`` is safe, else just ``text`` (already escaped)."""
    target = safe_url(url)
    return f"[{text}]({target})" if target else text


def markers(citations: Sequence[int]) -> str:
    """Citation markers: ``[1][3]``."""
    return "".join(f"[{int(n)}]" for n in citations)


# --- limits -------------------------------------------------------------------------------


def embed_length(embed: dict[str, Any]) -> int:
    """The characters of ``embed`` that count towards the 6000 total."""
    n = dlen(embed.get("title") or "") + dlen(embed.get("description") or "")
    n += dlen((embed.get("footer") or {}).get("text") or "")
    n += dlen((embed.get("author") or {}).get("name") or "")
    for f in embed.get("fields") or ():
        n += dlen(f.get("name") or "") + dlen(f.get("value") or "")
    return n


def payload_problems(payload: Payload) -> list[str]:
    """Every Discord limit that ``payload`` breaks (empty when it can be sent)."""
    problems: list[str] = []
    if dlen(payload.content) > CONTENT_LIMIT:
        problems.append(f"content is {dlen(payload.content)} > {CONTENT_LIMIT}")
    if not payload.content and not payload.embeds:
        problems.append("empty message")
    if len(payload.embeds) > EMBEDS_LIMIT:
        problems.append(f"{len(payload.embeds)} embeds > {EMBEDS_LIMIT}")
    total = 0
    for i, e in enumerate(payload.embeds):
        for key, limit in (("title", TITLE_LIMIT), ("description", DESCRIPTION_LIMIT)):
            if dlen(e.get(key) or "") > limit:
                problems.append(f"embed {i} {key} is {dlen(e.get(key) or '')} > {limit}")
        if dlen((e.get("footer") or {}).get("text") or "") > FOOTER_LIMIT:
            problems.append(f"embed {i} footer > {FOOTER_LIMIT}")
        if dlen((e.get("author") or {}).get("name") or "") > AUTHOR_LIMIT:
            problems.append(f"embed {i} author > {AUTHOR_LIMIT}")
        fields = e.get("fields") or ()
        if len(fields) > FIELDS_LIMIT:
            problems.append(f"embed {i} has {len(fields)} fields > {FIELDS_LIMIT}")
        for j, f in enumerate(fields):
            if not f.get("name") or dlen(f["name"]) > FIELD_NAME_LIMIT:
                problems.append(f"embed {i} field {j} name is empty or > {FIELD_NAME_LIMIT}")
            if not f.get("value") or dlen(f["value"]) > FIELD_VALUE_LIMIT:
                problems.append(f"embed {i} field {j} value is empty or > {FIELD_VALUE_LIMIT}")
        if not any((e.get("title"), e.get("description"), fields, (e.get("footer") or {}).get("text"))):
            problems.append(f"embed {i} is empty")
        total += embed_length(e)
    if total > TOTAL_LIMIT:
        problems.append(f"embeds total {total} > {TOTAL_LIMIT}")
    return problems


def fit_embed(embed: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``embed`` with every part cut to its own limit."""
    out = dict(embed)
    if out.get("title"):
        out["title"] = truncate(out["title"], TITLE_LIMIT)
    if out.get("description"):
        out["description"] = truncate(out["description"], DESCRIPTION_LIMIT)
    if out.get("footer"):
        out["footer"] = {**out["footer"], "text": truncate(out["footer"].get("text") or "", FOOTER_LIMIT)}
    if out.get("author"):
        out["author"] = {**out["author"], "name": truncate(out["author"].get("name") or "", AUTHOR_LIMIT)}
    if "fields" in out:
        out["fields"] = [
            {
                **f,
                "name": truncate(f.get("name") or ZWSP, FIELD_NAME_LIMIT) or ZWSP,
                "value": truncate(f.get("value") or ZWSP, FIELD_VALUE_LIMIT) or ZWSP,
            }
            for f in (out["fields"] or [])[:FIELDS_LIMIT]
        ]
    return out


def _shrink_embed(embed: dict[str, Any], budget: int) -> dict[str, Any]:
    """``embed`` cut to at most ``budget`` characters: description first, then fields, footer, title."""
    e = dict(embed)
    excess = embed_length(e) - max(0, budget)
    if excess > 0 and e.get("description"):
        desc = e["description"]
        e["description"] = truncate(desc, max(0, dlen(desc) - excess))
        excess -= dlen(desc) - dlen(e["description"])
    if excess > 0 and e.get("fields"):
        fields = list(e["fields"])
        while excess > 0 and fields:
            f = fields.pop()
            excess -= dlen(f["name"]) + dlen(f["value"])
        e["fields"] = fields
    for key, sub in (("footer", "text"), ("author", "name")):
        if excess > 0 and e.get(key):
            text = e[key].get(sub) or ""
            e[key] = {**e[key], sub: truncate(text, max(0, dlen(text) - excess))}
            excess -= dlen(text) - dlen(e[key][sub])
    if excess > 0 and e.get("title"):
        title = e["title"]
        e["title"] = truncate(title, max(0, dlen(title) - excess))
    for key in ("description", "title"):
        if not e.get(key):
            e.pop(key, None)
    for key, sub in (("footer", "text"), ("author", "name")):
        if key in e and not (e[key] or {}).get(sub):
            e.pop(key)
    if not e.get("fields"):
        e.pop("fields", None)
    return e


def fit_payload(payload: Payload) -> Payload:
    """``payload`` cut to Discord's limits: the last line of defence behind the renderers' budgets.

    Each part is cut to its own limit; then the 6000 total is shared out in order, so the
    first embeds are kept whole and later ones shrink or go.
    """
    content = truncate(payload.content, CONTENT_LIMIT)
    budget = TOTAL_LIMIT
    embeds = []
    for embed in payload.embeds[:EMBEDS_LIMIT]:
        e = _shrink_embed(fit_embed(embed), budget)
        if not any((e.get("title"), e.get("description"), e.get("fields"), e.get("footer"))):
            continue
        budget -= embed_length(e)
        embeds.append(e)
    if not content and not embeds:
        content = ELLIPSIS
    return Payload(content=content, embeds=tuple(embeds))


def _share(needs: Sequence[int], budget: int) -> list[int]:
    """Split ``budget`` among items needing ``needs``: small ones get all they need."""
    alloc = [0] * len(needs)
    left = budget
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    for k, i in enumerate(order):
        fair = left // (len(order) - k)
        alloc[i] = max(0, min(needs[i], fair))
        left -= alloc[i]
    return alloc


# --- answers ------------------------------------------------------------------------------


def citation_line(c: Citation, limit: int) -> str:
    """``**[1]** [Title](link) — Outlet · 2024-05-31`` within ``limit``, dropping the link if need be."""
    head = f"**[{int(c.n)}]** "
    meta = " — ".join(
        p for p in (escape_fit(c.source, 80), escape_fit(c.published, 20)) if p
    )
    tail = f" — {meta}" if meta else ""
    room = limit - dlen(head) - dlen(tail)
    title = escape_fit(c.title or "Untitled", max(1, min(200, room)))
    line = head + link(title, c.link or c.url) + tail
    if dlen(line) <= limit:
        return line
    line = head + title + tail
    return line if dlen(line) <= limit else truncate(line, limit)


def confidence_text(confidence: float) -> str:
    """``Confidence 0.82`` (a readable number whatever the engine's scale)."""
    if not math.isfinite(confidence):
        return "Confidence n/a"
    return f"Confidence {confidence:.2f}"


def render_answer(answer: Answer, *, window: str = "", author: str = "", url: str | None = None,
                  note: str = "") -> Payload:
    """An answer as one embed: quotes with [n] markers, a numbered source list, confidence, and the
    publication window searched (``window``, e.g. "Articles from the last 7 days (since 2026-11-26)").

    ``author``, ``url`` and ``note``: a line above the title, a link on it, and words after the
    footer's confidence (a claim check uses them: :func:`render_check`)."""
    if not answer.answered or not answer.quotes:
        return render_decline(answer, window=window)
    title = escape_fit(answer.question, TITLE_LIMIT) or "Answer"
    footer = " · ".join(part for part in (confidence_text(answer.confidence), window, note) if part)
    author = truncate(author, AUTHOR_LIMIT)
    budget = min(DESCRIPTION_LIMIT, TOTAL_LIMIT - dlen(title) - dlen(footer) - dlen(author))

    # The sources take at most half; each line gets a fair share of that.
    cits = list(answer.citations)
    head = "\n\n**Sources**\n"
    src_budget = budget // 2 - dlen(head)
    per_line = src_budget // max(1, len(cits)) - 1
    shown = cits
    if cits and per_line < 60:  # too many to list in full: list what fits, then a count
        fits = max(1, src_budget // 61 - 1)
        shown = cits[:fits]
        per_line = src_budget // (len(shown) + 1) - 1
    lines = [citation_line(c, per_line) for c in shown]
    if len(shown) < len(cits):
        lines.append(f"…and {len(cits) - len(shown)} more")
    sources = head + "\n".join(lines) if lines else ""

    # The quotes share what is left.
    quotes = list(answer.quotes)
    room = budget - dlen(sources)
    sep = "\n\n"
    frames = [("> ", f" {markers(q.citations)}") for q in quotes]
    fixed = [dlen(a) + dlen(b) for a, b in frames]
    # Drop quotes that can't get a useful amount of text.
    while len(quotes) > 1 and (room - sum(fixed) - dlen(sep) * (len(quotes) - 1)) // len(quotes) < 40:
        quotes.pop(), frames.pop(), fixed.pop()
    text_room = room - sum(fixed) - dlen(sep) * (len(quotes) - 1)
    needs = [dlen(escape_fit_bold(q.text, q.answer_spans, max(0, text_room))) for q in quotes]
    alloc = _share(needs, max(0, text_room))
    body = sep.join(
        pre + escape_fit_bold(q.text, q.answer_spans, a) + post
        for q, (pre, post), a in zip(quotes, frames, alloc, strict=True)
    )
    embed: dict[str, Any] = {
        "title": title,
        "description": body + sources,
        "color": ANSWER_COLOUR,
        "footer": {"text": footer},
    }
    if author:
        embed["author"] = {"name": author}
    if (safe := safe_url(url)) is not None:
        embed["url"] = safe
    return fit_payload(Payload(embeds=(embed,)))


#: A claim check: the line above the claim, and what its footer adds.
CHECK_AUTHOR = "Checked against the news"
CHECK_NOTE = "What the articles say: judge the claim by their own words"
CHECK_DECLINE = "The articles I have don't cover this claim, so I can't check it against them."


def render_check(answer: Answer, *, link: str | None = None) -> Payload:
    """A message's claim checked against the articles: the claim as the title (linking to the
    message), the sentences that bear on it as an answer's cited quotes; or a short "not covered".

    The bot quotes, it does not rule: the footer says to judge the claim by the articles' words."""
    if not answer.answered or not answer.quotes:
        return Payload(content=CHECK_DECLINE)
    return render_answer(answer, author=CHECK_AUTHOR, url=link, note=CHECK_NOTE)


def render_decline(answer: Answer | None = None, *, window: str = "") -> Payload:
    """A decline as a short plain message (saying which publication window was searched, if one was)."""
    searched = f"\n-# Searched: {window[0].lower() + window[1:]}." if window else ""
    message = escape_fit(answer.message if answer else "", CONTENT_LIMIT - dlen(searched))
    return Payload(content=(message or DECLINE_TEXT) + searched)


def render_notice(text: str, *parts: str) -> Payload:
    """A plain message of the bot's own ``text``, with ``parts`` (user or article text) escaped.

    ``text`` is a ``str.format`` template with positional ``{}`` fields for the ``parts``.
    """
    escaped = [escape_fit(p, 300) for p in parts]
    return Payload(content=truncate(text.format(*escaped), CONTENT_LIMIT))


def answer_summary(payload: Payload) -> str:
    """The text of a rendered answer, as stored with it (its embed description or content)."""
    if payload.embeds:
        return payload.embeds[0].get("description") or ""
    return payload.content


# --- passages -----------------------------------------------------------------------------


def _passage_text(view: PassageView, limit: int) -> str:
    """The passage with the quoted sentence in bold, cut around it to ``limit``."""
    text = view.text
    start = max(0, min(view.hl_start, len(text)))
    end = max(start, min(view.hl_end, len(text)))
    before, sentence, after = normalise(text[:start]), normalise(text[start:end]), normalise(text[end:])
    if not sentence:
        return escape_fit(text, limit)
    bold = escape_fit(sentence, max(1, min(limit - 6, (limit * 2) // 3)))
    core = f"**{bold}**"
    room = limit - dlen(core) - 2
    need_before = dlen(escape_fit(before, max(0, room), keep_end=True))
    need_after = dlen(escape_fit(after, max(0, room)))
    a_before, a_after = _share([need_before, need_after], max(0, room))
    left = escape_fit(before, a_before, keep_end=True) if before else ""
    right = escape_fit(after, a_after) if after else ""
    return " ".join(p for p in (left, core, right) if p)


def render_passages(entries: Sequence[PassageEntry]) -> Payload:
    """The passage around each quoted sentence, one embed each, the sentence in bold."""
    entries = list(entries)[:EMBEDS_LIMIT]
    if not entries:
        return Payload(content="There are no passages to show for this answer.")
    titles = []
    for e in entries:
        meta = " — ".join(p for p in (normalise(e.source), normalise(e.published)) if p)
        label = f"{normalise(e.title) or 'Untitled'}" + (f" — {meta}" if meta else "")
        head = markers(e.citations)[:100] + " "
        titles.append(head + escape_fit(label, TITLE_LIMIT - dlen(head)))
    per = min(DESCRIPTION_LIMIT, (TOTAL_LIMIT - sum(dlen(t) for t in titles)) // len(entries))
    embeds = []
    for e, title in zip(entries, titles, strict=True):
        if e.passage is None:
            desc = escape_fit(e.note or "This passage is no longer in the index.", per)
        else:
            desc = _passage_text(e.passage, per)
        embed: dict[str, Any] = {"title": title, "description": desc or ELLIPSIS, "color": PASSAGE_COLOUR}
        target = safe_url(e.link)
        if target:
            embed["url"] = target
        embeds.append(embed)
    return fit_payload(Payload(embeds=tuple(embeds)))


# --- sources ------------------------------------------------------------------------------


def page_count(total: int, per_page: int = SOURCES_PER_PAGE) -> int:
    """Pages needed for ``total`` items (at least one, so an empty list still has a page)."""
    return max(1, -(-total // per_page))


def clamp_page(page: int, pages: int) -> int:
    """``page`` moved into ``0 .. pages - 1``."""
    return max(0, min(page, pages - 1))


def article_line(number: int, article: ArticleInfo, limit: int) -> str:
    """``**12.** [Title](url) — Outlet · 2024-05-31`` within ``limit``, dropping the link if need be."""
    head = f"**{number}.** "
    meta = " · ".join(
        p for p in (escape_fit(article.source, 60), escape_fit(article.published, 20) or "undated") if p
    )
    tail = f" — {meta}"
    room = limit - dlen(head) - dlen(tail)
    title = escape_fit(article.title or "Untitled", max(1, min(150, room)))
    line = head + link(title, article.url) + tail
    if dlen(line) <= limit:
        return line
    line = head + title + tail
    return line if dlen(line) <= limit else truncate(line, limit)


def render_sources_page(
    articles: Sequence[ArticleInfo],
    page: int = 0,
    *,
    query: str | None = None,
    per_page: int = SOURCES_PER_PAGE,
) -> SourcesPage:
    """One page of the article list, numbered across pages, with outlet, date and link."""
    total = len(articles)
    pages = page_count(total, per_page)
    page = clamp_page(page, pages)
    q = escape_fit(query, 100) if query else ""
    title = f"Articles matching “{q}”" if q else "Indexed articles"
    if total == 0:
        desc = f"No indexed articles match “{q}”." if q else "The index has no articles yet."
        footer = "0 articles"
    else:
        chunk = articles[page * per_page : (page + 1) * per_page]
        per_line = DESCRIPTION_LIMIT // max(1, len(chunk)) - 1
        lines = [article_line(page * per_page + i + 1, a, per_line) for i, a in enumerate(chunk)]
        desc = "\n".join(lines)
        noun = "article" if total == 1 else "articles"
        footer = f"Page {page + 1} of {pages} · {total} {noun}"
    embed = {"title": title, "description": desc, "color": SOURCES_COLOUR, "footer": {"text": footer}}
    return SourcesPage(payload=fit_payload(Payload(embeds=(embed,))), page=page, pages=pages, total=total)


# --- live news: feeds and links ------------------------------------------------------------


FEEDS_COLOUR = 0xFAA61A


def _counts(pages: Sequence[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pages:
        out[p.status] = out.get(p.status, 0) + 1
    return out


def render_feed_added(report: Any, every_s: float) -> Payload:
    """``/feeds add``: "feed added: 24 items, 21 new articles indexed", and what was left out."""
    result = report.feeds[0]
    n = _counts(result.pages)
    text = f"Feed added: {result.items} items, {n.get('new', 0)} new articles indexed"
    if not report.indexed:
        text = f"Feed added: {result.items} items, {n.get('new', 0)} new articles fetched but not indexed yet"
    extra = [f"{n[k]} {label}" for k, label in (("duplicate", "already indexed"), ("changed", "updated"),
                                                 ("skipped", "skipped"), ("failed", "to try again")) if n.get(k)]
    if extra:
        text += " (" + ", ".join(extra) + ")"
    every = format_duration(every_s)
    lines = [text + "."]
    title = escape_fit(result.title, 200)
    lines.append(f"{title + ' · ' if title else ''}{escape_fit(result.url, 400)}" + (f" · every {every}" if every else ""))
    reasons = [f"• {escape_fit(p.url, 200)}: {escape_fit(p.reason, 200)}" for p in result.pages
               if p.status in ("skipped", "failed") and p.reason][:5]
    lines.extend(reasons)
    return Payload(content=truncate("\n".join(lines), CONTENT_LIMIT))


def render_article_added(page: Any, indexed: bool) -> Payload:
    """``/add``: what became of the link."""
    title = escape_fit(page.title or page.url, 300)
    if page.status in ("new", "changed"):
        verb = "Added" if page.status == "new" else "Updated"
        tail = " It is indexed: ask away." if indexed else " It is saved, but not indexed yet (see the bot's log)."
        return Payload(content=truncate(f"{verb}: {title}.{tail}", CONTENT_LIMIT))
    if page.status in ("unchanged", "duplicate"):
        return Payload(content=truncate(f"Already indexed: {title}.", CONTENT_LIMIT))
    return Payload(content=truncate(f"Not added: {escape_fit(page.url, 400)}: {escape_fit(page.reason, 400)}.",
                                    CONTENT_LIMIT))


def _when(t: float | None) -> str:
    """A Discord timestamp ("in 5 minutes", "2 hours ago", in the reader's own time zone)."""
    return "never" if t is None else f"<t:{int(t)}:R>"


def render_feeds(feeds: Sequence[Any]) -> Payload:
    """``/feeds list``: each feed with its health: last fetch and status, articles taken, next
    fetch, failures, and whether it is disabled (and why)."""
    if not feeds:
        return Payload(content="No feeds yet: `/feeds add url` follows one.")
    blocks = []
    for f in feeds:
        head = f"**{escape_fit(f.title or 'Untitled feed', 120)}** · every {format_duration(f.interval_s)}"
        url = escape_fit(f.url, 300)
        # A fetch that got no HTTP answer at all (refused, timed out) has a time but no status.
        status = f"HTTP {f.last_status}" if f.last_status else ("no answer" if f.last_fetch_at else "not fetched yet")
        health = f"last fetch {_when(f.last_fetch_at)} ({status}) · {f.articles} articles taken"
        if f.disabled:
            state = f"⛔ **disabled**: {escape_fit(f.disabled_reason, 300)}"
        else:
            state = f"next fetch {_when(f.next_due_at)}"
            if f.failures:
                state += f" · ⚠️ {f.failures} failures in a row ({escape_fit(f.last_error, 200)})"
        blocks.append("\n".join((head, url, health, state)))
    desc = ""
    for i, block in enumerate(blocks):
        more = f"\n… and {len(blocks) - i} more (`newsbot feeds list` shows them all)"
        if dlen(desc) + dlen(block) + dlen(more) + 2 > DESCRIPTION_LIMIT:
            desc += more
            break
        desc += ("\n\n" if desc else "") + block
    n = len(feeds)
    embed = {"title": "Feeds I follow", "description": desc, "color": FEEDS_COLOUR,
             "footer": {"text": f"{n} feed{'s' if n != 1 else ''} · {sum(1 for f in feeds if f.disabled)} disabled"}}
    return fit_payload(Payload(embeds=(embed,)))


# --- small things -------------------------------------------------------------------------


def thread_name(question: str) -> str:
    """A thread name from a question: one line, at most 100 characters, never empty."""
    name = truncate(normalise(question), THREAD_NAME_LIMIT)
    return name or "newsbot answer"


def choice_text(text: str) -> str | None:
    """``text`` as an autocomplete choice (<= 100 characters), or None if it would have to be cut."""
    t = normalise(text)
    return t if t and dlen(t) <= CHOICE_LIMIT else None


__all__ = [
    "Payload",
    "SourcesPage",
    "PassageEntry",
    "dlen",
    "truncate",
    "normalise",
    "escape",
    "escape_fit",
    "safe_url",
    "link",
    "markers",
    "embed_length",
    "payload_problems",
    "fit_embed",
    "fit_payload",
    "citation_line",
    "confidence_text",
    "render_answer",
    "render_decline",
    "render_notice",
    "answer_summary",
    "render_passages",
    "page_count",
    "clamp_page",
    "article_line",
    "render_sources_page",
    "render_feed_added",
    "render_article_added",
    "render_feeds",
    "thread_name",
    "choice_text",
]


# --- /help and /about -------------------------------------------------------------------------------

GUIDE_COLOUR = 0x5865F2

HELP_TEXT = """\
**Ask a question** with `/ask question:…`, or mention me in a message. I answer by quoting the \
sentences of the news articles that answer it, each with a numbered citation [1] that links to \
the article; the answer itself is in **bold**. When the articles don't say, I say so instead of \
guessing.

**Narrow it down** with the options of `/ask`:
• `source:` only one outlet, e.g. `source: BBC`
• `since:` only recent articles: pick *last 24 hours*, *last 7 days*, *last 30 days* or *this year*, or type a date, e.g. `since: 2024-05-01`; `until:` a last date. The answer says which window it searched
• a question that says when ("this week", "recently") is read against the day you ask it

**Follow-ups**: my answer to a mention opens a thread; ask more there without mentioning me ("and when?", "what about Jaecoo?"): I read it with the question before it.

**Check a claim**: on any message, open **Apps → Check against the news**: I reply (only to you, \
unless the server chose otherwise) with what the articles say about it, cited, or that they don't \
cover it. I quote; you judge.

**The buttons** under an answer: **Passages** shows each quote in its paragraph; 👍 says it was \
right and 👎 asks what was wrong (wrong quote, outdated, wrong source, or your words); under "the \
articles don't say", **This should have been answered** flags a miss. The server's admins read them.

**More**: `/sources [query]` lists the articles I can quote; `/about` says how many there are and \
how fresh; DMs work too. Members with Manage Server choose with `/settings` where and for whom I \
answer, and can `/feeds add` a feed, `/add` an article and `/reload`."""


def render_help() -> Payload:
    """``/help``: how to ask, the filters with examples, what the buttons do."""
    return fit_payload(Payload(embeds=({"title": "How to ask me about the news", "description": HELP_TEXT,
                                        "color": GUIDE_COLOUR},)))


def render_about(info: dict[str, Any], articles: Sequence[ArticleInfo], feeds: Sequence[Any] | None,
                 model: str) -> Payload:
    """``/about``: what the index holds (articles, outlets, the oldest and newest dates, when it was
    last updated), the feeds followed (None: feeds are not set up here) and the model."""
    dates = sorted(a.published[:10] for a in articles if a.published)
    outlets = sorted({a.source for a in articles if a.source}, key=lambda o: (o.lower(), o))
    shown = ", ".join(escape_fit(o, 60) for o in outlets[:15])
    if len(outlets) > 15:
        shown += f" and {len(outlets) - 15} more"
    lines = [f"**Articles**: {len(articles):,} ({int(info.get('sentences') or 0):,} sentences)",
             f"**Outlets ({len(outlets)})**: {shown or 'none named'}",
             f"**Published**: {dates[0]} to {dates[-1]}" if dates else "**Published**: no article is dated",
             f"**Index updated**: {escape_fit(str(info.get('built_at') or 'unknown'), 40)}"]
    if feeds is None:
        lines.append("**Feeds**: not followed here (the index is updated by its admins)")
    else:
        active = [f for f in feeds if not f.disabled]
        names = ", ".join(escape_fit(f.title or f.url, 60) for f in active[:10])
        more = f" and {len(active) - 10} more" if len(active) > 10 else ""
        off = f"; {len(feeds) - len(active)} disabled" if len(feeds) > len(active) else ""
        lines.append(f"**Feeds followed ({len(active)}{off})**: {names + more or 'none yet'}")
    lines.append(f"**Model**: {escape_fit(model, 120)}")
    return fit_payload(Payload(embeds=({"title": "About these news", "description": "\n".join(lines),
                                        "color": GUIDE_COLOUR},)))


# --- /settings ------------------------------------------------------------------------------------


def render_settings(config: GuildConfig, note: str = "") -> Payload:
    """A server's settings, as ``/settings`` shows them after a change (``note`` says what changed)."""

    def channels(ids: frozenset[int]) -> str:
        return ", ".join(f"<#{c}>" for c in sorted(ids))

    lines = [
        f"**Mentions answered in**: {channels(config.mention_channels) if config.mention_channels else 'every channel'}",
        f"**Ask-the-news channels** (every message, or every new forum post, is a question): "
        f"{channels(config.ask_channels) or 'none'}",
        f"**Who may ask**: {f'members with <@&{config.ask_role}>' if config.ask_role else 'everyone'}"
        " (members who can manage the server always may)",
        f"**Answers**: {'private to the asker' if config.private else 'public'}",
        f"**/ask opens a thread**: {'yes' if config.threads else 'no'} (answers to mentions always do)",
        f"**Claim checks** (Apps -> Check against the news): "
        f"{'public' if config.public_checks else 'private to the member who runs one'}",
    ]
    embed = {"title": "newsbot settings for this server", "description": "\n".join(lines), "color": GUIDE_COLOUR}
    return fit_payload(Payload(content=truncate(note, CONTENT_LIMIT), embeds=(embed,)))
