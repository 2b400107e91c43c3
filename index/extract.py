"""From fetched bytes to records: feeds (feedparser) and article pages (trafilatura).

Everything here is pure (bytes in, records out) and CPU-bound: the ingester runs it off the
event loop. Feed and page content is untrusted: feedparser gets the bytes (never a URL or a path,
which it would open itself) and drops entity declarations (no "billion laughs"); feeds nested
absurdly deep are refused before it sees them, and its own crashes on hostile bytes are this
feed's failure; titles and names are reduced to plain text; pages lose the elements a reader
never sees before extraction, and a page whose only text is its links and menus is no article.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
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


def _tomorrow() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()


def _entry_date(entry: Mapping[str, object]) -> str | None:
    """The entry's publication day; a date in the future is no publication date (an article dated
    2099 would never expire and would pass for the latest news)."""
    tomorrow = _tomorrow()
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # type: ignore[arg-type]
        if value:
            try:
                day = dt.datetime.fromtimestamp(calendar.timegm(value), dt.UTC).date().isoformat()  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                continue
            if day <= tomorrow:
                return day
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


def _looks_like_a_link(value: str) -> bool:
    return value.strip().lower().startswith(("http://", "https://", "/"))


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """The feed's title and entries. A feed that parses with errors keeps the entries that parsed
    (the problem is in ``warnings``); bytes that hold no feed at all raise NotAFeedError."""
    import feedparser

    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    # No Content-Location: feedparser then leaves relative URLs as they are written, and normalise_url
    # resolves links against the feed's URL itself. A guid that is no URL at all ("12345") stays
    # itself instead of becoming a made-up link on the feed's host.
    hdrs.pop("content-location", None)
    if _too_deep(body):
        raise NotAFeedError(f"not a feed newsbot reads (its elements nest more than {MAX_FEED_DEPTH} deep)")
    body = _BAD_CHARREF.sub(_charref, body)
    try:
        # A file object, never bytes or a string: feedparser would open a string that looks like a URL or path.
        parsed = feedparser.parse(io.BytesIO(body), response_headers=hdrs, sanitize_html=True,
                                  resolve_relative_uris=True)
    except (ValueError, LookupError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as e:
        # feedparser's lenient parser has bugs that hostile bytes reach (an <svg> in a broken title, an
        # encoding name that is not text): this feed cannot be read, the others can.
        raise NotAFeedError(f"a feed that cannot be parsed ({type(e).__name__}: {e})") from None
    warnings: list[str] = []
    if not parsed.get("version") and not parsed.entries:
        head = body[:2048].lstrip().lower()
        ctype = hdrs.get("content-type", "")
        if "html" in ctype or head.startswith((b"<!doctype html", b"<html")):
            raise NotAFeedError("an HTML page, not an RSS or Atom feed")
        problem = parsed.get("bozo_exception")
        raise NotAFeedError(f"not an RSS or Atom feed ({problem or 'no feed elements found'})")
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    for e in parsed.entries:
        link = None
        guid_link = e.get("link") if dict.get(e, "guidislink") and e.get("link") == e.get("id") else None
        for candidate in [e.get("link"), *[x.get("href") for x in e.get("links") or [] if x.get("rel") == "alternate"]]:
            # A guid stands for a link (RSS isPermaLink) only when it looks like one: a URL or a path
            # from the site's root, not a bare identifier.
            if candidate is not None and candidate == guid_link and not _looks_like_a_link(candidate):
                continue
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
    problem = _feed_problem(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    if problem:
        warnings.insert(0, f"{problem}; kept the {len(entries)} entries that parsed")
    return ParsedFeed(plain(parsed.feed.get("title")), tuple(entries), tuple(warnings))


#: Deeper element nesting than this is refused (libxml2's own default limit): feedparser's time
#: grows with the square of the depth, so a feed of nested elements under the size cap would hold
#: the parse thread (every feed's) for many minutes. No real feed comes near it.
MAX_FEED_DEPTH = 256


def _too_deep(body: bytes) -> bool:
    """Whether ``body`` nests elements more than MAX_FEED_DEPTH deep (libxml2 says so at once, in
    C; recover mode reads malformed feeds too, entities are not expanded, nothing is fetched)."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    with contextlib.suppress(etree.XMLSyntaxError, ValueError):
        etree.fromstring(body, parser)
    return any("excessive depth" in e.message.lower() for e in parser.error_log)


#: A numeric character reference: feedparser's lenient parser raises on those that name no
#: character (above U+10FFFF, or a surrogate) instead of reading the rest of the feed.
_BAD_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,20}));")


def _charref(m: re.Match[bytes]) -> bytes:
    code = int(m.group(1), 16) if m.group(1) is not None else int(m.group(2))
    return m.group(0) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else b"&#xFFFD;"


_ENCODING_OVERRIDE = re.compile(r"declared as (\S+), but parsed as (\S+)")


def _feed_problem(exc: object) -> str | None:
    """What is wrong with a feed feedparser flagged ("bozo"), or None when nothing is: feedparser
    also flags a feed served without a Content-Type or with a non-XML one, and a ``text/xml`` feed
    without a charset (RFC 3023's us-ascii default, which RFC 7303 dropped: the XML declaration rules)."""
    from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType

    if isinstance(exc, NonXMLContentType):
        return None
    if isinstance(exc, CharacterEncodingOverride):
        m = _ENCODING_OVERRIDE.search(str(exc))
        if m is None or m.group(1).lower() == "us-ascii":
            return None
        return f"the feed is not in the encoding it declares or implies ({m.group(1)}): read it as {m.group(2)}"
    return f"the feed is malformed ({exc})"


# --------------------------------------------------------------------------------------------
# Pages


def _decode_html(body: bytes, headers: Mapping[str, str]) -> str:
    m = re.search(r"charset=[\"']?([\w.:-]+)", headers.get("content-type", ""), re.I)
    if m:
        try:
            declared = codecs.lookup(m.group(1)).name
        except LookupError:
            declared = None
        if declared:
            if declared != "utf-8" and not body.isascii():
                # Bytes that are valid UTF-8 (and not ASCII) are UTF-8 whatever the server says: in a
                # single-byte encoding such text is all but impossible ("CafÃ©"), and mislabelled
                # servers are common.
                with contextlib.suppress(UnicodeDecodeError):
                    return body.decode("utf-8")
            return body.decode(declared, errors="replace")
    from trafilatura.utils import decode_file

    return str(decode_file(body))


_WORD = re.compile(r"\w+")


def _only_links(html: str, text: str) -> bool:
    """Whether ``text`` is made of nothing but the page's link and menu text: on a page with no
    article, trafilatura's fallback returns what there is ("Home World")."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        doc = lxml_html.document_fromstring(html)
    except (ValueError, etree.ParserError):
        return False
    for el in doc.xpath("//head | //script | //style | //nav | //a | //button | //select | //menu"):
        el.drop_tree()
    rest = set(_WORD.findall(doc.text_content().lower()))
    return not any(w in rest for w in _WORD.findall(text.lower()))


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
    if _only_links(html, text):
        raise NoArticleError("no article text could be extracted from the page (only its links and menus)")
    canonical = normalise_url(data.get("url"), url)
    warnings: list[str] = []
    if canonical and site_of(canonical) != site_of(url):
        warnings.append(f"ignored a canonical URL on another site ({canonical})")
        canonical = None
    published = _norm_date(data.get("date"))
    if published and published > _tomorrow():  # a date in the future is a guess, not a publication date
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
