"""A real HTTP server on 127.0.0.1 serving feeds, article pages and robots.txt to the live-news tests.

It answers like a web server does: ``ETag`` / ``Last-Modified`` with ``304 Not Modified`` for
conditional requests, redirects, status codes with ``Retry-After``, responses that never come,
bodies streamed chunked with no Content-Length (slowly, or without end), and it records every
request (path, headers, time) so the tests can check what newsbot sent.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    """What a path answers. ``body`` may be a callable (called per request, for changing content)."""

    body: bytes | Callable[[], bytes] = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    hang: bool = False  # never answer (until the server stops)
    delay: float = 0.0
    # Send the body with ``Transfer-Encoding: chunked`` and no Content-Length, ``repeat`` times over
    # (a large ``repeat`` makes an endless stream), pausing ``chunk_delay`` seconds between chunks.
    chunked: bool = False
    repeat: int = 1
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic()


class NewsServer:
    """``with NewsServer() as web: web.route("/feed.xml", ...); web.url("/feed.xml")``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server._handle(self)

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="newsserver", daemon=True)

    def __enter__(self) -> NewsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, body: bytes | str | Callable[[], bytes] = b"", **kwargs: Any) -> Route:
        r = Route(body.encode("utf-8") if isinstance(body, str) else body, **kwargs)
        with self._lock:
            self.routes[path] = r
        return r

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Request(h.path, {k.lower(): v for k, v in h.headers.items()}, time.monotonic()))
            route = self.routes.get(h.path)
        if route is None:
            self._send(h, 404, b"not found", "text/plain", {})
            return
        if route.hang:
            self._stop.wait(120)
            return
        if route.delay:
            time.sleep(route.delay)
        inm, ims = h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since")
        if route.status == 200 and ((route.etag and inm == route.etag) or (
                route.last_modified and ims == route.last_modified and not inm)):
            self._send(h, 304, b"", None, self._validators(route))
            return
        body = route.body() if callable(route.body) else route.body
        headers = {**self._validators(route), **route.headers}
        if route.chunked:
            self._send_chunked(h, route, body, headers)
            return
        self._send(h, route.status, body, route.content_type, headers)

    @staticmethod
    def _validators(route: Route) -> dict[str, str]:
        out = {}
        if route.etag:
            out["ETag"] = route.etag
        if route.last_modified:
            out["Last-Modified"] = route.last_modified
        return out

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str | None, headers: dict[str, str]) -> None:
        try:
            h.send_response(status)
            if ctype:
                h.send_header("Content-Type", ctype)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if status != 304:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_chunked(self, h: BaseHTTPRequestHandler, route: Route, body: bytes, headers: dict[str, str]) -> None:
        try:
            h.send_response(route.status)
            if route.content_type:
                h.send_header("Content-Type", route.content_type)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for _ in range(route.repeat):
                for i in range(0, len(body), 1024):
                    if self._stop.is_set():
                        return
                    piece = body[i:i + 1024]
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    h.wfile.flush()
                    if route.chunk_delay:
                        time.sleep(route.chunk_delay)
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


# --------------------------------------------------------------------------------------------
# Documents


def http_date(day: dt.date | dt.datetime) -> str:
    if not isinstance(day, dt.datetime):
        day = dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=dt.UTC)
    return email.utils.format_datetime(day.astimezone(dt.UTC), usegmt=True)


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None
    guid: str | None = None
    published: dt.date | dt.datetime | None = None
    updated: dt.datetime | None = None
    description: str = ""


def rss(items: Sequence[Item], title: str = "Test News", link: str = "http://127.0.0.1/") -> bytes:
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{html.escape(title)}</title>'
             f"<link>{html.escape(link)}</link><description>news</description>"]
    for it in items:
        parts.append("<item>")
        parts.append(f"<title>{html.escape(it.title)}</title>")
        if it.link:
            parts.append(f"<link>{html.escape(it.link)}</link>")
        if it.guid:
            parts.append(f'<guid isPermaLink="false">{html.escape(it.guid)}</guid>')
        if it.published:
            parts.append(f"<pubDate>{http_date(it.published)}</pubDate>")
        if it.updated:
            parts.append(f"<atom:updated xmlns:atom='http://www.w3.org/2005/Atom'>{it.updated.isoformat()}</atom:updated>")
        if it.description:
            parts.append(f"<description>{html.escape(it.description)}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def atom(items: Sequence[Item], title: str = "Test Atom News") -> bytes:
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
             f"<title>{html.escape(title)}</title><id>urn:test:feed</id><updated>2026-12-01T00:00:00Z</updated>"]
    for it in items:
        stamp = it.updated or (it.published if isinstance(it.published, dt.datetime) else None)
        if stamp is None and it.published is not None:
            stamp = dt.datetime(it.published.year, it.published.month, it.published.day, tzinfo=dt.UTC)
        parts.append("<entry>")
        parts.append(f"<title>{html.escape(it.title)}</title><id>{html.escape(it.guid or it.link or it.title)}</id>")
        if it.link:
            parts.append(f'<link rel="alternate" href="{html.escape(it.link)}"/>')
        if stamp is not None:
            parts.append(f"<updated>{stamp.isoformat()}</updated><published>{stamp.isoformat()}</published>")
        parts.append("</entry>")
    parts.append("</feed>")
    return "".join(parts).encode("utf-8")


def article_page(title: str, paragraphs: Sequence[str], *, site: str = "Test Gazette",
                 published: dt.date | None = None, author: str | None = None, canonical: str | None = None,
                 extra_head: str = "", extra_body: str = "") -> bytes:
    """A news article page as outlets publish them: metadata in the head, the story in <article>."""
    head = [f"<title>{html.escape(title)} | {html.escape(site)}</title>",
            f'<meta property="og:site_name" content="{html.escape(site)}">',
            f'<meta property="og:title" content="{html.escape(title)}">']
    if published:
        head.append(f'<meta property="article:published_time" content="{published.isoformat()}T08:00:00Z">')
    if author:
        head.append(f'<meta name="author" content="{html.escape(author)}">')
    if canonical:
        head.append(f'<link rel="canonical" href="{html.escape(canonical)}">')
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f"<!doctype html><html><head>{''.join(head)}{extra_head}</head><body>"
            f"<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
            f"<article><h1>{html.escape(title)}</h1>{body}</article>{extra_body}"
            f"<footer>© Test Gazette. All rights reserved.</footer></body></html>").encode()
