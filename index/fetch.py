"""Fetching feeds and article pages: one aiohttp session, guarded and polite.

* **Addresses.** Only http and https. A URL whose host is, or resolves to, a loopback, private,
  link-local, multicast, reserved or unspecified address is refused before any request is sent;
  the check runs again for every redirect, and the connector's resolver refuses such addresses
  too, so a name that resolves differently the second time (DNS rebinding) cannot slip through.
  ``NEWSBOT_ALLOW_PRIVATE_URLS`` lifts this for everything (``1``) or for listed hosts and networks.
* **Limits.** Connect and total timeouts, a size cap on the (decompressed) body, at most
  :data:`MAX_REDIRECTS` redirects, redirect loops named as such; a host that lets
  :data:`HOST_TIMEOUTS_BEFORE_PAUSE` requests in a row time out is not asked again for a while.
* **Manners.** A User-Agent naming newsbot and a contact URL; conditional requests (``ETag``,
  ``Last-Modified``), sent only when known; a delay between two requests to the same host; for
  article pages, robots.txt (cached per host, its ``Crawl-delay`` honoured; while it is unreachable
  the host's pages wait: FetchError kind "robots").
* **Refusals** are logged (a warning naming the URL, and the URL that redirected there).

Failures raise :class:`FetchError`, whose ``kind`` says what happened and whose ``retry_after``
carries a server's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import ipaddress
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.robotparser import RobotFileParser

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from . import __version__
from .errors import NewsbotError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
#: How long a host's robots.txt is trusted before it is fetched again.
ROBOTS_TTL_S = 6 * 3600.0
#: How long an unreachable robots.txt (5xx, timeout) keeps the host's pages off limits.
ROBOTS_ERROR_TTL_S = 600.0
#: The longest ``Crawl-delay`` honoured (a larger one would stall a round).
MAX_CRAWL_DELAY_S = 30.0
#: The longest robots.txt read.
ROBOTS_MAX_BYTES = 512 * 1024
#: After this many timeouts in a row from one host, its requests fail at once (kind "timeout") for
#: HOST_PAUSE_S: requests to a host go one at a time, so a host that holds every connection open
#: would otherwise cost a whole timeout per page and stall the round for all feeds.
HOST_TIMEOUTS_BEFORE_PAUSE = 2
HOST_PAUSE_S = 60.0

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
               "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1")
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


class FetchError(NewsbotError):
    """A URL could not be fetched. ``kind``: refused, robots, timeout, too-large, redirects,
    http (``status`` set) or network."""

    def __init__(self, url: str, kind: str, reason: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.kind = kind
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchOptions:
    """How the fetcher behaves; built from :class:`index.config.Settings` by :meth:`from_settings`."""

    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_bytes: int = 10 * 1024 * 1024
    host_delay: float = 1.0
    concurrency: int = 8
    allow_private: tuple[str, ...] = ()
    contact_url: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> FetchOptions:
        return cls(timeout=settings.fetch_timeout, connect_timeout=settings.connect_timeout,
                   max_bytes=settings.fetch_max_bytes, host_delay=settings.host_delay,
                   concurrency=settings.fetch_concurrency, allow_private=settings.allow_private_urls,
                   contact_url=settings.contact_url)

    @property
    def user_agent(self) -> str:
        contact = f"; +{self.contact_url}" if self.contact_url else ""
        return f"newsbot/{__version__} (news question bot{contact})"


@dataclass(frozen=True)
class Fetched:
    """A response: ``status`` 200 (``body`` set) or 304 (not modified: nothing to read)."""

    url: str  # after redirects
    status: int
    body: bytes
    headers: Mapping[str, str]
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --------------------------------------------------------------------------------------------
# Which addresses may be reached


@dataclass(frozen=True)
class UrlPolicy:
    """Which URLs may be fetched. ``allow``: ``("*",)`` for every address, else host names and
    networks (``10.0.0.0/8``) whose private addresses are allowed (intranet feeds, tests)."""

    allow: tuple[str, ...] = ()

    @property
    def allow_all(self) -> bool:
        return "*" in self.allow

    def _allowed_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow

    def _allowed_ip(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        for item in self.allow:
            with contextlib.suppress(ValueError):
                if ip in ipaddress.ip_network(item, strict=False):
                    return True
        return False

    def check_url(self, url: str) -> yarl.URL:
        """The parsed URL, or FetchError(kind="refused") for a scheme, form or literal address
        that may not be fetched."""
        try:
            u = yarl.URL(url.strip())
        except (ValueError, TypeError) as e:
            raise FetchError(url, "refused", f"not a valid URL ({e})") from None
        if u.scheme not in ("http", "https"):
            raise FetchError(url, "refused", f"only http and https URLs can be fetched, not {u.scheme or 'a bare path'!r}")
        if not u.host:
            raise FetchError(url, "refused", "the URL has no host name")
        if u.user is not None or u.password is not None:
            raise FetchError(url, "refused", "URLs with a user name or password are not accepted")
        with contextlib.suppress(ValueError):
            self.check_address(u.host, u.host)
        return u

    def check_address(self, host: str, address: str) -> None:
        """FetchError(kind="refused") when ``address`` (which ``host`` resolved to) may not be reached;
        ValueError when ``address`` is not an IP address."""
        ip = ipaddress.ip_address(address.split("%")[0])
        if self.allow_all or self._allowed_host(host) or self._allowed_ip(ip):
            return
        why = _why_private(ip)
        if why:
            article = "an" if why[0] in "aeiou" else "a"
            raise FetchError(host, "refused", f"{host} is {'' if host == address else f'at {address}, '}"
                                              f"{article} {why} address: refused (NEWSBOT_ALLOW_PRIVATE_URLS lifts this)")


def _why_private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of non-public address ``ip`` is, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _why_private(ip.ipv4_mapped)
    for name in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if not ip.is_global:
        return "non-public"
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing the addresses the policy refuses (checked on the
    addresses the connection will actually use)."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for r in results:
            self.policy.check_address(host, r["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()


# --------------------------------------------------------------------------------------------
# Politeness: a delay per host, robots.txt


class HostThrottle:
    """One request at a time per host, at least ``delay`` seconds apart (end of one to start of the next)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._locks: dict[str, asyncio.Lock] = {}
        self._next: dict[str, float] = {}
        self.extra: dict[str, float] = {}  # a host's Crawl-delay, when larger than ``delay``

    @contextlib.asynccontextmanager
    async def slot(self, host: str):  # type: ignore[no-untyped-def]
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            wait = self._next.get(host, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._next[host] = time.monotonic() + max(self.delay, self.extra.get(host, 0.0))


@dataclass
class _Robots:
    parser: RobotFileParser
    expires: float
    unreachable: str | None = None  # why robots.txt could not be read (its pages wait until it can)


def _host_key(u: yarl.URL) -> str:
    return f"{u.scheme}://{(u.host or '').lower()}:{u.port}"


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut at ``limit`` characters (it ends up in ``feeds list``)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(v)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


# --------------------------------------------------------------------------------------------
# The fetcher


class Fetcher:
    """The HTTP client of the watcher. Use as ``async with Fetcher(options) as f: await f.get(url)``."""

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self.policy = UrlPolicy(self.options.allow_private)
        self.throttle = HostThrottle(self.options.host_delay)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._robots: dict[str, _Robots] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._timeouts: dict[str, int] = {}  # host -> timeouts in a row
        self._paused: dict[str, float] = {}  # host -> until when its requests fail at once
        self.requests = 0  # requests sent (tests and the benchmark read it)

    async def __aenter__(self) -> Fetcher:
        self._resolver = GuardedResolver(self.policy)
        connector = aiohttp.TCPConnector(resolver=self._resolver, limit=max(4, self.options.concurrency * 2),
                                         ttl_dns_cache=60)
        timeout = aiohttp.ClientTimeout(total=self.options.timeout, connect=self.options.connect_timeout,
                                        sock_read=self.options.timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": self.options.user_agent},
            trust_env=False, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _check_hop(self, url: str, original: str | None = None) -> yarl.URL:
        """The URL, refused (FetchError, logged) when its scheme or the addresses its host resolves to
        may not be reached. ``original``: the URL whose redirect led here."""
        try:
            return await self._resolve_hop(url)
        except FetchError as e:
            if e.kind == "refused":
                via = f" (redirected from {original})" if original and original != url else ""
                log.warning("refused to fetch %s%s: %s", url, via, e.reason)
            raise

    async def _resolve_hop(self, url: str) -> yarl.URL:
        u = self.policy.check_url(url)
        host = u.host or ""
        try:
            ipaddress.ip_address(host)
            return u  # a literal address: check_url checked it
        except ValueError:
            pass
        if self.policy.allow_all or self.policy._allowed_host(host):
            return u
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, u.port or 0, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise FetchError(url, "network", f"cannot resolve {host} ({e})") from None
        for info in infos:
            self.policy.check_address(host, str(info[4][0]))
        return u

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str = PAGE_ACCEPT, max_bytes: int | None = None) -> Fetched:
        """GET ``url``, following up to :data:`MAX_REDIRECTS` redirects (each checked like the first).

        ``etag``/``last_modified`` make the request conditional (sent only when known).
        """
        if self._session is None:
            raise RuntimeError("use the Fetcher as an async context manager")
        limit = max_bytes or self.options.max_bytes
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: list[str] = []
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            u = await self._check_hop(current, url)
            if str(u) in seen:
                raise FetchError(url, "redirects", f"redirect loop ({' -> '.join([*seen, str(u)])})")
            seen.append(str(u))
            key = _host_key(u)
            async with self.throttle.slot(key):
                self._check_paused(url, u, key)
                self.requests += 1
                try:
                    result = await self._request(url, u, headers, limit)
                except FetchError as e:
                    self._count_timeout(u, key, e)
                    raise
                self._timeouts.pop(key, None)
            if isinstance(result, Fetched):
                return result
            current = result
        raise FetchError(url, "redirects", f"more than {MAX_REDIRECTS} redirects ({' -> '.join(seen)})")

    def _check_paused(self, original: str, u: yarl.URL, key: str) -> None:
        until = self._paused.get(key)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._paused[key]
            return
        raise FetchError(original, "timeout", f"timed out: {u.host} did not answer {HOST_TIMEOUTS_BEFORE_PAUSE} "
                                              f"requests in a row, so it is not asked again for {left:.0f} s")

    def _count_timeout(self, u: yarl.URL, key: str, e: FetchError) -> None:
        if e.kind != "timeout":
            self._timeouts.pop(key, None)
            return
        n = self._timeouts.get(key, 0) + 1
        self._timeouts[key] = n
        if n >= HOST_TIMEOUTS_BEFORE_PAUSE:
            self._timeouts.pop(key, None)
            self._paused[key] = time.monotonic() + HOST_PAUSE_S
            log.warning("%s did not answer %d requests in a row: its requests fail at once for %.0f s",
                        u.host, n, HOST_PAUSE_S)

    async def _request(self, original: str, u: yarl.URL, headers: dict[str, str], limit: int) -> Fetched | str:
        """One request: a response, or the next URL of a redirect."""
        assert self._session is not None
        try:
            async with self._session.get(u, headers=headers, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    location = resp.headers.get("Location")
                    if not location:
                        raise FetchError(original, "http", f"HTTP {resp.status} redirect without a Location",
                                         status=resp.status)
                    try:
                        return str(u.join(yarl.URL(location)))
                    except ValueError as e:
                        raise FetchError(original, "http", f"bad redirect Location {location[:200]!r} ({e})",
                                         status=resp.status) from None
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
                if resp.status == 304:
                    return Fetched(str(u), 304, b"", hdrs, hdrs.get("etag"), hdrs.get("last-modified"))
                if resp.status != 200:
                    raise FetchError(original, "http", f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                     status=resp.status, retry_after=parse_retry_after(hdrs.get("retry-after")))
                if resp.content_length is not None and resp.content_length > limit:
                    raise FetchError(original, "too-large",
                                     f"the response is {resp.content_length:,} bytes, over the {limit:,}-byte limit")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > limit:
                        raise FetchError(original, "too-large", f"the response is over the {limit:,}-byte limit")
                return Fetched(str(u), 200, bytes(body), hdrs, hdrs.get("etag"), hdrs.get("last-modified"))
        except FetchError as e:
            if e.url != original:  # raised by the resolver, which knows only the host
                raise FetchError(original, e.kind, e.reason, status=e.status, retry_after=e.retry_after) from None
            raise
        except TimeoutError:
            raise FetchError(original, "timeout", f"timed out: no complete answer within {self.options.timeout:g} s") from None
        except aiohttp.ClientConnectorError as e:
            raise FetchError(original, "network", f"cannot connect to {u.host} ({e.os_error or e})") from None
        except aiohttp.ClientResponseError as e:  # the answer could not be read as HTTP (status line, headers)
            raise FetchError(original, "network", f"not a valid HTTP answer ({_one_line(e.message)})") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise FetchError(original, "network", _one_line(f"{type(e).__name__}: {e}")) from None

    # -- robots.txt ---------------------------------------------------------------------------------

    async def allowed_by_robots(self, url: str) -> bool:
        """Whether robots.txt of ``url``'s host lets newsbot fetch it (and records its Crawl-delay).
        FetchError(kind="robots") while robots.txt is unreachable (5xx, timeout): nothing of the
        host may be fetched for now, but that is no answer, so the page is tried again later."""
        try:
            u = self.policy.check_url(url)
        except FetchError as e:
            log.warning("refused to fetch %s: %s", url, e.reason)
            raise
        key = _host_key(u)
        now = time.monotonic()
        entry = self._robots.get(key)
        if entry is None or entry.expires < now:
            async with self._robots_locks.setdefault(key, asyncio.Lock()):
                entry = self._robots.get(key)
                if entry is None or entry.expires < time.monotonic():
                    entry = await self._load_robots(u)
                    self._robots[key] = entry
        if entry.unreachable is not None:
            raise FetchError(url, "robots", f"robots.txt of {u.host} is unreachable ({entry.unreachable}): "
                                            "its pages wait until it can be read")
        agent = "newsbot"
        delay = entry.parser.crawl_delay(agent)
        if delay:
            with contextlib.suppress(TypeError, ValueError):
                self.throttle.extra[key] = min(float(delay), MAX_CRAWL_DELAY_S)
        return entry.parser.can_fetch(agent, str(u))

    async def _load_robots(self, u: yarl.URL) -> _Robots:
        robots_url = str(u.with_path("/robots.txt").with_query(None).with_fragment(None))
        parser = RobotFileParser(robots_url)
        ttl = ROBOTS_TTL_S
        unreachable = None
        try:
            got = await self.get(robots_url, accept="text/plain, */*;q=0.1", max_bytes=ROBOTS_MAX_BYTES)
            text = got.body.decode("utf-8", errors="replace")
            parser.parse(text.splitlines())
        except FetchError as e:
            if e.kind == "http" and e.status is not None and 400 <= e.status < 500:
                parser.allow_all = True  # no robots.txt: everything is allowed (RFC 9309 2.3.1.3)
            else:
                # Unreachable (5xx, timeout): assume everything is disallowed for now (RFC 9309 2.3.1.4).
                log.warning("robots.txt of %s is unreachable (%s): its pages wait until it can be read", u.host, e.reason)
                parser.disallow_all = True
                ttl = ROBOTS_ERROR_TTL_S
                unreachable = e.reason
        parser.modified()
        return _Robots(parser, time.monotonic() + ttl, unreachable)
