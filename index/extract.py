"""From fetched bytes to records: feeds (feedparser) and article pages (trafilatura).

Everything here is pure (bytes in, records out) and CPU-bound: the ingester runs it off the
event loop. Feed and page content is untrusted: feedparser gets the bytes (never a URL or a path,
which it would open itself) and drops entity declarations (no "billion laughs"); titles and names
are reduced to plain text; pages lose the elements a reader never sees before extraction.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import yarl

from .loaders import _authors, _norm_date, _strip_hidden

log = logging.getLogger(__name__)

#: The longest title or name kept from a feed or page.
MAX_TITLE_CHARS = 300


class NotAFeedError(ValueError):
    """The bytes are not an RSS or Atom feed (the message says what they look like)."""


class NoArticleError(ValueError):
    """A page has no article text to index (the message says why)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of a feed, reduced to what newsbot uses."""

    key: str  # guid, else normalised link, else title and date
    link: str | None  # normalised absolute http(s) URL
    title: str | None
    published: str | None  # YYYY-MM-DD
    authors: tuple[str, ...]
    signature: str  # changes when the entry is updated (its date or title)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """An article page's text and metadata (the feed entry's fields fill what the page lacks)."""

    text: str
    title: str | None
    source: str | None
    published: str | None
    authors: tuple[str, ...]
    canonical: str | None  # the page's canonical URL (normalised), when it is on the same site
    warnings: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------------------------
# URLs


def normalise_url(url: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL in a canonical spelling, tracking parameters (utm_*, fbclid, ...)
    and the fragment dropped; None for anything else."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    try:
        u = yarl.URL(url)
        if base and not u.is_absolute():
            u = yarl.URL(base).join(u)
    except (ValueError, TypeError):
        return None
    if u.scheme not in ("http", "https") or not u.host:
        return None
    import courlan

    try:
        norm = courlan.normalize_url(str(u.with_fragment(None)))
    except (ValueError, TypeError, AttributeError):
        return None
    return norm.split("#", 1)[0] if norm else None


def site_of(url: str) -> str:
    """The registrable domain of ``url`` (``edition.cnn.com`` -> ``cnn.com``), else its host."""
    import courlan

    host = (yarl.URL(url).host or "").lower()
    try:
        domain = courlan.extract_domain(url)
    except (ValueError, TypeError, AttributeError):
        domain = None
    return (domain or host).lower()


def outlet_of(url: str) -> str:
    """A readable outlet name from a URL's host (``www.example.com`` -> ``example.com``)."""
    host = (yarl.URL(url).host or "").lower()
    return host[4:] if host.startswith("www.") else host


# --------------------------------------------------------------------------------------------
# Text


_SPACE = re.compile(r"\s+")


def plain(text: object, limit: int = MAX_TITLE_CHARS) -> str | None:
    """``text`` as one line of plain text (markup dropped, entities decoded), or None."""
    if not isinstance(text, str):
        return None
    s = text
    if "<" in s or "&" in s:
        import html

        from lxml import etree
        from lxml import html as lxml_html

        try:
            s = lxml_html.fragment_fromstring(s, create_parent="div").text_content()
        except (ValueError, etree.ParserError):
            s = re.sub(r"<[^>]*>", " ", s)
        s = html.unescape(s)
    s = _SPACE.sub(" ", s.replace("\x00", "")).strip()
    if not s:
        return None
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------------------------
# Feeds


def _entry_date(entry: Mapping[str, object]) -> str | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # type: ignore[arg-type]
        if value:
            try:
                return dt.datetime.fromtimestamp(calendar.timegm(value), dt.UTC).date().isoformat()  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def _entry_authors(entry: Mapping[str, object]) -> tuple[str, ...]:
    names: list[str] = []
    for a in entry.get("authors") or []:  # type: ignore[union-attr]
        name = plain(a.get("name")) if isinstance(a, Mapping) else None
        if name:
            names.append(name)
    if not names and entry.get("author"):
        return _authors(plain(entry.get("author")))
    return tuple(names[:20])


def _sig(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """The feed's title and entries. A feed that parses with errors keeps the entries that parsed
    (the problem is in ``warnings``); bytes that hold no feed at all raise NotAFeedError."""
    import feedparser

    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    hdrs["content-location"] = url
    # A file object, never bytes or a string: feedparser would open a string that looks like a URL or path.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=hdrs, sanitize_html=True, resolve_relative_uris=True)
    warnings: list[str] = []
    if not parsed.get("version") and not parsed.entries:
        head = body[:2048].lstrip().lower()
        ctype = hdrs.get("content-type", "")
        if "html" in ctype or head.startswith((b"<!doctype html", b"<html")):
            raise NotAFeedError("an HTML page, not an RSS or Atom feed")
        problem = parsed.get("bozo_exception")
        raise NotAFeedError(f"not an RSS or Atom feed ({problem or 'no feed elements found'})")
    if parsed.get("bozo"):
        warnings.append(f"the feed is malformed ({parsed.get('bozo_exception')}); kept the {len(parsed.entries)} entries that parsed")
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    for e in parsed.entries:
        link = None
        for candidate in [e.get("link"), *[x.get("href") for x in e.get("links") or [] if x.get("rel") == "alternate"]]:
            link = normalise_url(candidate, url)
            if link:
                break
        title = plain(e.get("title"))
        published = _entry_date(e)
        guid = e.get("id") if isinstance(e.get("id"), str) and e.get("id", "").strip() else None
        if guid:
            key = "guid:" + guid.strip()[:1000]
        elif link:
            key = "link:" + link
        elif title:
            key = "title:" + _sig(title, published)
        else:
            warnings.append("an entry with no guid, link or title was skipped")
            continue
        if key in seen:
            warnings.append(f"duplicate entry {key[:120]!r}: kept the first")
            continue
        seen.add(key)
        updated = dict.get(e, "updated")  # not e.get: feedparser maps a missing "updated" to "published", warning
        updated = updated if isinstance(updated, str) else None
        entries.append(FeedEntry(key, link, title, published, _entry_authors(e), _sig(updated or published, title)))
    return ParsedFeed(plain(parsed.feed.get("title")), tuple(entries), tuple(warnings))


# --------------------------------------------------------------------------------------------
# Pages


def _decode_html(body: bytes, headers: Mapping[str, str]) -> str:
    m = re.search(r"charset=[\"']?([\w.:-]+)", headers.get("content-type", ""), re.I)
    if m:
        try:
            return body.decode(m.group(1), errors="replace")
        except LookupError:
            pass
    from trafilatura.utils import decode_file

    return str(decode_file(body))


def extract_page(body: bytes, url: str, headers: Mapping[str, str] | None = None,
                 entry: FeedEntry | None = None) -> Page:
    """The article in a fetched page, with its metadata; the feed ``entry``'s fields fill what
    the page lacks. Raises NoArticleError with the reason when there is nothing to index."""
    import trafilatura

    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    ctype = hdrs.get("content-type", "").split(";")[0].strip().lower()
    if ctype and not ("html" in ctype or ctype in ("text/plain", "application/xml", "text/xml")):
        raise NoArticleError(f"not a web page (Content-Type {ctype})")
    if b"\x00" in body[:4096]:
        raise NoArticleError("not a web page (binary content)")
    html = _strip_hidden(_decode_html(body, hdrs))
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=False, favor_precision=True)
    data = {} if doc is None else (doc.as_dict() if hasattr(doc, "as_dict") else dict(doc))
    text = (data.get("text") or "").strip()
    if not text:
        raise NoArticleError("no article text could be extracted from the page")
    canonical = normalise_url(data.get("url"), url)
    warnings: list[str] = []
    if canonical and site_of(canonical) != site_of(url):
        warnings.append(f"ignored a canonical URL on another site ({canonical})")
        canonical = None
    published = _norm_date(data.get("date"))
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    if published and published > tomorrow:  # a date in the future is a guess, not a publication date
        published = None
    return Page(
        text=text,
        title=plain(data.get("title")) or (entry.title if entry else None),
        source=plain(data.get("sitename"), 120),
        published=published or (entry.published if entry else None),
        authors=_authors(plain(data.get("author"))) or (entry.authors if entry else ()),
        canonical=canonical,
        warnings=tuple(warnings),
    )
