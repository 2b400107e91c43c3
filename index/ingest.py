"""Live news: follow feeds, take article links, keep what was fetched, index it as it arrives.

One :class:`Ingester` serves ``newsbot feeds|ingest|watch`` and the bot's ``/feeds`` and ``/add``
(and its in-process watcher, ``NEWSBOT_WATCH=1``). A round:

1. fetches each due feed (conditionally: a 304 or an unchanged body costs nothing more), parses
   it off the event loop, and picks the entries it has not seen or that were updated;
2. fetches each picked entry's page (robots.txt, a per-host delay), extracts the article and
   writes it, atomically, as a Markdown file with its metadata under ``<corpus>/web/`` (so that
   ``newsbot rebuild --full`` builds the same index again with no network), then records it;
3. indexes every recorded article whose fingerprint the index does not hold yet, as one new
   batch through the store's write lock (``index.stores.build.update_index``).

Each step is durable before the next begins, so a process killed anywhere loses nothing and
doubles nothing: an article file written but not recorded is written again (same id, same path),
an article recorded but not indexed is indexed by the next round.

Identity: an entry's key is its guid, else its normalised link, else its title and date; an
article is known by every normalised URL it was reached at, including the page's canonical URL,
so the same story through two feeds, or under a tracking-parameter variant of its link, is one
article. An article whose text changed at the same URL replaces its old version.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .config import Settings
from .embed import Embedder
from .errors import IndexMismatchError, IndexNotFoundError, NewsbotError
from .extract import FeedEntry, NoArticleError, NotAFeedError, Page, normalise_url, outlet_of, parse_feed
from .feeds import Feed, FeedStore, StoredArticle, open_feed_store
from .fetch import FEED_ACCEPT, Fetcher, FetchError, FetchOptions
from .loaders import load_paths, load_text
from .records import Article
from .stores import open_store
from .stores.base import Store
from .stores.build import BuildReport, build_index, update_index

log = logging.getLogger(__name__)

T = TypeVar("T")


class FeedRefused(NewsbotError):
    """A feed (or link) that cannot be followed, with the reason."""


class Interrupted(NewsbotError):
    """The ingester was asked to stop in the middle of a step."""


# --------------------------------------------------------------------------------------------
# Reports


@dataclass
class PageResult:
    """What became of one article link: new, changed, unchanged, duplicate, skipped or failed."""

    url: str
    status: str
    article_id: str | None = None
    title: str | None = None
    reason: str | None = None

    def line(self) -> str:
        what = f"{self.title!r} " if self.title else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{self.status}: {what}{self.url}{why}"


@dataclass
class FeedResult:
    """What one fetch of a feed did."""

    url: str
    title: str | None = None
    status: str = "fetched"  # fetched, not-modified, unchanged, failed, disabled
    http_status: int | None = None
    error: str | None = None
    items: int = 0
    pages: list[PageResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for p in self.pages if p.status == status)

    def summary(self) -> str:
        if self.status in ("failed", "disabled"):
            return f"{self.url}: {self.status} ({self.error})"
        if self.status in ("not-modified", "unchanged"):
            return f"{self.url}: {self.status}, nothing new"
        parts = [f"{self.items} items", f"{self.count('new')} new"]
        for status in ("changed", "duplicate", "skipped", "failed"):
            if self.count(status):
                parts.append(f"{self.count(status)} {status}")
        return f"{self.url}: " + ", ".join(parts)


@dataclass
class RoundReport:
    """What a round (or an ``ingest``) did, feeds and pages and the index."""

    feeds: list[FeedResult] = field(default_factory=list)
    pages: list[PageResult] = field(default_factory=list)  # links given directly (``ingest``, ``/add``)
    index: BuildReport | None = None
    index_error: str | None = None
    expired: int = 0
    seconds: float = 0.0

    def all_pages(self) -> list[PageResult]:
        return self.pages + [p for f in self.feeds for p in f.pages]

    def count(self, status: str) -> int:
        return sum(1 for p in self.all_pages() if p.status == status)

    @property
    def indexed(self) -> bool:
        """The round's articles are in the index (a new generation, or nothing needed one)."""
        return self.index_error is None

    def summary(self) -> str:
        parts = [f"{len(self.feeds)} feeds" if self.feeds else "", f"{self.count('new')} new articles",
                 f"{self.count('changed')} changed" if self.count("changed") else "",
                 f"{self.count('duplicate')} already indexed" if self.count("duplicate") else "",
                 f"{self.count('skipped') + self.count('failed')} skipped" if self.count("skipped") + self.count("failed") else "",
                 f"{self.expired} expired" if self.expired else ""]
        index = (f"index generation {self.index.generation}" if self.index and not self.index.up_to_date
                 else "index unchanged") if self.index_error is None else f"NOT indexed: {self.index_error}"
        return ", ".join(p for p in parts if p) + f"; {index} ({self.seconds:.1f}s)"


# --------------------------------------------------------------------------------------------
# Fetched articles on disk


_SLUG = re.compile(r"[^a-z0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _slug(text: str, limit: int = 60) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:limit].strip("-")


class ArticleFiles:
    """Fetched articles as Markdown files with YAML front matter under ``<corpus>/web/<host>/``:
    the corpus loader reads them like any other article."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir

    @staticmethod
    def new_path(article_id: str) -> str:
        """A file name for a new article, relative to the corpus folder: host, slug and a hash of its id."""
        host = _slug(outlet_of(article_id).replace(".", "-dot-"), 80).replace("-dot-", ".") or "web"
        last = [p for p in article_id.split("?")[0].split("/") if p][-1:] or ["article"]
        slug = _slug(last[0]) or "article"
        digest = hashlib.sha1(article_id.encode("utf-8")).hexdigest()[:10]
        return f"web/{host}/{slug}-{digest}.md"

    @staticmethod
    def render(meta: dict[str, Any], text: str) -> str:
        body = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
        front = yaml.safe_dump({k: v for k, v in meta.items() if v not in (None, "", [], ())},
                               sort_keys=False, allow_unicode=True, width=10**6)
        return f"---\n{front}---\n\n{body}\n"

    def article(self, rel: str, content: str) -> Article:
        """The article the corpus loader will read from ``content`` at ``rel`` (same fingerprint)."""
        art, warning = load_text("markdown", content, rel, Path(rel))
        if art is None:
            raise NoArticleError(str(warning))
        return art

    def write(self, rel: str, content: str) -> None:
        """Write atomically: a reader (a rebuild) sees the old file or the new, never half of one."""
        path = self.corpus_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.corpus_dir / rel).unlink()

    def sweep(self) -> int:
        """Remove the temporary files of writers that died mid-write (named ``.NAME.PID.TID.tmp``);
        the files of live writers stay. Returns how many were removed."""
        removed = 0
        web = self.corpus_dir / "web"
        for tmp in web.glob("*/.*.tmp") if web.is_dir() else ():
            parts = tmp.name.split(".")
            pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                continue
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------
# The ingester


class Ingester:
    """Feeds and links in, indexed articles out. Use as ``async with Ingester(settings) as ing``.

    ``embedder`` is the model (the bot passes its own) or a function that loads it, called the
    first time something needs embedding. ``on_indexed`` is called (from a worker thread) after
    every new generation.
    """

    def __init__(self, settings: Settings, *, embedder: Embedder | Callable[[], Embedder] | None = None,
                 fetch_options: FetchOptions | None = None,
                 on_indexed: Callable[[BuildReport], None] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self._embedder = embedder
        self.fetcher = Fetcher(fetch_options or FetchOptions.from_settings(settings))
        self.files = ArticleFiles(settings.corpus_dir)
        self.on_indexed = on_indexed
        self.store: FeedStore | None = None
        self._store_of_index: Store | None = None  # where articles are indexed (index.stores)
        self._db = ThreadPoolExecutor(1, thread_name_prefix="newsbot-feeds")  # the store's one thread
        # Parsing, extraction and indexing run in threads of their own at a lower CPU priority, so
        # that in the bot's process (NEWSBOT_WATCH=1) questions keep the cores they need.
        self._parse = ThreadPoolExecutor(1, thread_name_prefix="newsbot-parse", initializer=background_priority)
        self._index = ThreadPoolExecutor(1, thread_name_prefix="newsbot-index", initializer=background_priority)
        self._pages = asyncio.Semaphore(self.fetcher.options.concurrency)
        self._index_lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self._stop_flag = threading.Event()  # the same, for the index step's thread
        self._caught_up = False  # the index holds everything recorded (checked on the first round)
        self._next_expiry = 0.0

    async def __aenter__(self) -> Ingester:
        self.store = await self._st(open_feed_store, self.settings)
        swept = await asyncio.to_thread(self.files.sweep)
        if swept:
            log.info("removed %d temporary files left by an interrupted fetch", swept)
        await self.fetcher.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fetcher.__aexit__(*exc)
        if self.store is not None:
            await self._st(self.store.close)
            self.store = None
        for pool in (self._db, self._parse, self._index):  # waits for work under way, off the event loop
            await asyncio.to_thread(pool.shutdown, True)
        if self._store_of_index is not None:
            await asyncio.to_thread(self._store_of_index.close)
            self._store_of_index = None

    def stop(self) -> None:
        """Finish the step under way, then stop (the index step stops at its next stage)."""
        self.stopping.set()
        self._stop_flag.set()

    async def _cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound parsing or extraction on the low-priority parse thread."""
        return await asyncio.get_running_loop().run_in_executor(self._parse, fn, *args)

    async def _st(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a feed-store call on the store's thread (blocking database calls, never on the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._db, lambda: fn(*args, **kwargs))

    def _store(self) -> FeedStore:
        if self.store is None:
            raise RuntimeError("use the Ingester as an async context manager")
        return self.store

    def embedder(self) -> Embedder:
        if self._embedder is None:
            from .embed import load_embedder

            self._embedder = load_embedder(self.settings)
        elif callable(self._embedder) and not hasattr(self._embedder, "encode"):
            self._embedder = self._embedder()
        return self._embedder  # type: ignore[return-value]

    # -- feeds ------------------------------------------------------------------------------------

    async def feeds(self) -> list[Feed]:
        return await self._st(self._store().feeds)

    async def disabled_unannounced(self) -> list[Feed]:
        """Disabled feeds whose disabling has not been announced yet (see :meth:`mark_announced`)."""
        return await self._st(self._store().disabled_unannounced)

    async def mark_announced(self, feed_id: int) -> None:
        await self._st(self._store().mark_announced, feed_id)

    async def add_feed(self, url: str, *, every: float | None = None, notify_channel: int | None = None) -> RoundReport:
        """Follow a feed: fetch it now (refused, with the reason, when it cannot be fetched or is
        not a feed), take its articles and index them."""
        started = time.perf_counter()
        try:
            self.fetcher.policy.check_url(url)  # says why not: the scheme, the form, a private address
            link = normalise_url(url)
            if link is None:
                raise FeedRefused(f"cannot follow {url}: it is not an http(s) URL")
            self.fetcher.policy.check_url(link)
            got = await self.fetcher.get(link, accept=FEED_ACCEPT)
            parsed = await self._cpu(parse_feed, got.body, got.url, got.headers)
        except FetchError as e:
            raise FeedRefused(f"cannot follow {url}: {e.reason}") from None
        except NotAFeedError as e:
            raise FeedRefused(f"cannot follow {url}: it is {e}") from None
        store = self._store()
        existing = await self._st(store.feed, link)
        feed = await self._st(store.add_feed, link, every or self.settings.feed_interval, title=parsed.title,
                              notify_channel=notify_channel, fetching_now=True)
        log.info("%s feed %s (%s), every %gs", "re-enabled" if existing and existing.disabled else "following",
                 link, parsed.title or "untitled", feed.interval_s)
        result = await self._take_feed(feed, got, parsed)
        report = RoundReport(feeds=[result])
        await self._finish_round(report, started)
        return report

    async def remove_feed(self, url: str) -> Feed | None:
        """Stop following a feed (its articles stay indexed)."""
        link = normalise_url(url) or url
        store = self._store()
        feed = await self._st(store.remove_feed, link)
        if feed is None and link != url:
            feed = await self._st(store.remove_feed, url)
        if feed is not None:
            log.info("stopped following %s (%d articles stay)", feed.url, feed.articles)
        return feed

    async def run_round(self, *, all_feeds: bool = False) -> RoundReport:
        """Fetch every due feed (``all_feeds``: every enabled feed), take what is new, index it."""
        started = time.perf_counter()
        store = self._store()
        feeds = [f for f in await self._st(store.feeds) if not f.disabled] if all_feeds else await self._st(store.due)
        results = await asyncio.gather(*(self._poll_safely(f) for f in feeds))
        report = RoundReport(feeds=list(results))
        await self._finish_round(report, started)
        return report

    async def ingest(self, urls: Sequence[str]) -> RoundReport:
        """Fetch these article pages now (again, if known: a changed text replaces the old) and index them."""
        started = time.perf_counter()
        pages = await asyncio.gather(*(self._take_link(u) for u in urls))
        report = RoundReport(pages=list(pages))
        await self._finish_round(report, started)
        return report

    async def watch(self, *, all_first: bool = False, max_sleep: float = 5.0) -> None:
        """Rounds until :meth:`stop`: fetch what is due, index it, sleep until the next feed is due
        (looking at the feed list again every ``max_sleep`` seconds, for feeds added meanwhile)."""
        first = True
        while not self.stopping.is_set():
            try:
                report = await self.run_round(all_feeds=all_first and first)
                if report.feeds:
                    log.info("round: %s", report.summary())
                next_due = await self._st(self._store().next_due)
            except Interrupted:
                break
            except Exception:  # noqa: BLE001 - the edge of a forever loop: log it, try again after a pause
                log.exception("the round failed; trying again in %.0f s", max_sleep)
                next_due = None
            first = False
            wait = max_sleep if next_due is None else min(max_sleep, max(0.05, next_due - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), wait)

    # -- one feed ---------------------------------------------------------------------------------

    async def _poll_safely(self, feed: Feed) -> FeedResult:
        """:meth:`_poll`, with an unexpected error costing this feed's round only (logged in full)."""
        try:
            return await self._poll(feed)
        except Exception as e:  # noqa: BLE001 - the edge of one feed's round: the other feeds go on
            log.exception("feed %s: unexpected error; the other feeds go on", feed.url)
            return FeedResult(feed.url, feed.title, status="failed", error=f"unexpected error ({type(e).__name__}: {e})")

    async def _poll(self, feed: Feed) -> FeedResult:
        """Fetch one feed (conditionally) and take its new entries; failures are recorded, never raised."""
        store = self._store()
        result = FeedResult(feed.url, feed.title)
        try:
            got = await self.fetcher.get(feed.url, etag=feed.etag, last_modified=feed.last_modified, accept=FEED_ACCEPT)
        except FetchError as e:
            return await self._feed_failed(feed, result, e.reason, e.status, e.retry_after, counts=e.status != 429)
        result.http_status = got.status
        if got.not_modified:
            result.status = "not-modified"
            await self._st(store.record_success, feed, status=304, etag=got.etag, last_modified=got.last_modified,
                           body_sha=None, title=None, items=None)
            return result
        if hashlib.sha256(got.body).hexdigest() == feed.body_sha:
            result.status = "unchanged"
            await self._st(store.record_success, feed, status=got.status, etag=got.etag,
                           last_modified=got.last_modified, body_sha=None, title=None, items=None)
            return result
        try:
            parsed = await self._cpu(parse_feed, got.body, got.url, got.headers)
        except NotAFeedError as e:
            return await self._feed_failed(feed, result, f"it is {e}", got.status, None)
        return await self._take_feed(feed, got, parsed, result)

    async def _feed_failed(self, feed: Feed, result: FeedResult, error: str, status: int | None,
                           retry_after: float | None, *, counts: bool = True) -> FeedResult:
        now = await self._st(self._store().record_failure, feed, error=error, status=status, retry_after=retry_after,
                             max_failures=self.settings.feed_max_failures, counts=counts)
        result.status, result.error, result.http_status = ("disabled" if now.disabled else "failed"), error, status
        if now.disabled:
            log.error("feed %s disabled: %s; `newsbot feeds add %s` enables it again", feed.url,
                      now.disabled_reason, feed.url)
        else:
            log.warning("feed %s failed (%s); next try in %.0fs (failure %d of %d)", feed.url, error,
                        now.next_due_at - time.time(), now.failures, self.settings.feed_max_failures)
        return result

    async def _take_feed(self, feed: Feed, got: Any, parsed: Any, result: FeedResult | None = None) -> FeedResult:
        """Take the new and updated entries of a parsed feed, then record the fetch. The feed's
        validators are kept only when every entry was settled, so that entries whose page failed
        this time are tried again next round."""
        store = self._store()
        result = result or FeedResult(feed.url, feed.title)
        result.http_status, result.title, result.items = got.status, parsed.title or feed.title, len(parsed.entries)
        result.warnings.extend(parsed.warnings)
        for w in parsed.warnings:
            log.warning("feed %s: %s", feed.url, w)
        known = await self._st(store.entries, feed.id)
        todo: list[tuple[FeedEntry, bool]] = []
        for entry in parsed.entries:
            seen = known.get(entry.key)
            if seen is None:
                todo.append((entry, False))
            elif seen[1] != entry.signature:
                todo.append((entry, seen[0] is not None))  # updated: fetch the page again
        pages = await asyncio.gather(*(self._take_entry(feed, e, updated) for e, updated in todo))
        result.pages.extend(pages)
        settled = not self.stopping.is_set() and all(p.status != "failed" for p in pages)
        await self._st(store.record_success, feed, status=got.status, etag=got.etag, last_modified=got.last_modified,
                       body_sha=hashlib.sha256(got.body).hexdigest(), title=parsed.title, items=len(parsed.entries),
                       warning="; ".join(parsed.warnings)[:500] or None, forget_validators=not settled)
        log.info("feed %s", result.summary())
        return result

    async def _take_entry(self, feed: Feed, entry: FeedEntry, updated: bool) -> PageResult:
        store = self._store()
        if self.stopping.is_set():
            return PageResult(entry.link or entry.key, "failed", title=entry.title, reason="stopped before it was fetched")
        if entry.link is None:
            await self._st(store.record_entry, feed.id, entry.key, entry.signature, skipped="the entry has no link")
            log.info("feed %s: skipped an entry with no link (%s)", feed.url, entry.title or entry.key)
            return PageResult(entry.key, "skipped", title=entry.title, reason="the entry has no link")
        cutoff = self._cutoff()
        if cutoff and entry.published and entry.published < cutoff:
            reason = f"published {entry.published}, older than NEWSBOT_RETENTION_DAYS"
            await self._st(store.record_entry, feed.id, entry.key, entry.signature, skipped=reason)
            return PageResult(entry.link, "skipped", title=entry.title, reason=reason)
        if not updated:
            known = await self._st(store.article_for, [entry.link])
            if known is not None:  # the same article through another feed, or a variant of its link
                await self._st(store.record_entry, feed.id, entry.key, entry.signature, article=known.id)
                return PageResult(entry.link, "duplicate", known.id, entry.title, "already indexed")
        result = await self._take_page(entry.link, entry=entry, feed_title=feed.title)
        if result.status == "failed":
            n = await self._st(store.record_attempt, feed.id, entry.key, entry.signature, result.reason or "")
            log.warning("feed %s: page %s failed (%s), attempt %d", feed.url, entry.link, result.reason, n)
        elif result.status == "skipped":
            await self._st(store.record_entry, feed.id, entry.key, entry.signature, skipped=result.reason)
        else:
            await self._st(store.record_entry, feed.id, entry.key, entry.signature, article=result.article_id)
        return result

    async def _take_link(self, url: str) -> PageResult:
        link = normalise_url(url)
        if link is None:
            return PageResult(url, "skipped", reason="not an http(s) URL")
        return await self._take_page(link, entry=None, feed_title=None)

    # -- one page ---------------------------------------------------------------------------------

    async def _take_page(self, url: str, *, entry: FeedEntry | None, feed_title: str | None) -> PageResult:
        """Fetch, extract and keep one article page. Skipped (for good): refused, robots.txt,
        nothing to extract. Failed (tried again later): timeouts, HTTP and network errors."""
        store = self._store()
        title = entry.title if entry else None
        async with self._pages:
            if self.stopping.is_set():
                return PageResult(url, "failed", title=title, reason="stopped before it was fetched")
            try:
                if not await self.fetcher.allowed_by_robots(url):
                    log.info("robots.txt disallows %s: skipped", url)
                    return PageResult(url, "skipped", title=title, reason="robots.txt disallows it")
                known = await self._st(store.article_for, [url])
                got = await self.fetcher.get(url, etag=known.etag if known else None,
                                             last_modified=known.last_modified if known else None)
            except FetchError as e:
                status = "skipped" if e.kind == "refused" else "failed"
                return PageResult(url, status, title=title, reason=e.reason)
        if got.not_modified and known is not None:
            return PageResult(url, "unchanged", known.id, title, "not modified")
        try:
            page = await self._cpu(_extract, got.body, got.url, got.headers, entry)
        except NoArticleError as e:
            log.info("page %s skipped: %s", url, e)
            return PageResult(url, "skipped", title=title, reason=str(e))
        except Exception as e:  # noqa: BLE001 - third-party parsers on untrusted bytes: one page fails, not the round
            log.exception("page %s could not be extracted", url)
            return PageResult(url, "failed", title=title, reason=f"the page could not be read ({type(e).__name__}: {e})")
        for w in page.warnings:
            log.warning("page %s: %s", url, w)
        return await self._keep(url, got, page, feed_title)

    async def _keep(self, url: str, got: Any, page: Page, feed_title: str | None) -> PageResult:
        """Write the article's file (when it is new or its text changed) and record it."""
        store = self._store()
        final = normalise_url(got.url) or url
        aliases = list(dict.fromkeys(u for u in (url, final, page.canonical) if u))
        target = await self._st(store.article_for, aliases)
        if target is not None and target.url not in (url, final):
            # The same article (by its canonical URL) reached at another address than the one it is
            # fetched from: one article, kept as first fetched.
            await self._st(store.put_article, target, aliases)
            return PageResult(url, "duplicate", target.id, page.title, f"the same article as {target.url}")
        article_id = target.id if target else (page.canonical or final)
        rel = target.path if target else ArticleFiles.new_path(article_id)
        content = ArticleFiles.render({
            "id": article_id, "title": page.title, "source": page.source or feed_title or outlet_of(final),
            "url": page.canonical or final, "published": page.published, "authors": list(page.authors),
            "fetched": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }, page.text)
        try:
            art = self.files.article(rel, content)
        except NoArticleError as e:
            return PageResult(url, "skipped", title=page.title, reason=str(e))
        cutoff = self._cutoff()
        if cutoff and art.published and art.published < cutoff:
            return PageResult(url, "skipped", title=art.title,
                              reason=f"published {art.published}, older than NEWSBOT_RETENTION_DAYS")
        status = "new" if target is None else ("unchanged" if target.fingerprint == art.fingerprint else "changed")
        if status != "unchanged" or not (self.files.corpus_dir / rel).is_file():
            await asyncio.to_thread(self.files.write, rel, content)
        await self._st(store.put_article, StoredArticle(
            article_id, target.url if target else final, rel, art.fingerprint, art.published, time.time(), got.etag,
            got.last_modified, False), aliases)
        if status != "unchanged":
            log.info("%s article %r (%s) from %s", status, art.title, art.source, url)
        return PageResult(url, status, article_id, art.title)

    # -- retention and the index ------------------------------------------------------------------

    async def _finish_round(self, report: RoundReport, started: float) -> None:
        report.expired = await self._expire()
        changed = report.expired or any(p.status in ("new", "changed") for p in report.all_pages())
        try:
            # The first round also indexes what an earlier process recorded but did not index (it
            # was killed); later rounds only when they took something.
            if changed or not self._caught_up:
                async with self._index_lock:
                    report.index = await self._index_pending()
                self._caught_up = True
        except Interrupted:
            report.index_error = "stopped before the index was updated (the next round does it)"
        except NewsbotError as e:
            report.index_error = str(e)
            log.error("indexing failed, the index is as it was: %s", e)
        report.seconds = time.perf_counter() - started

    def _cutoff(self) -> str | None:
        """The oldest publication day kept (NEWSBOT_RETENTION_DAYS), or None to keep everything."""
        days = self.settings.retention_days
        return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).date().isoformat() if days else None

    async def _expire(self) -> int:
        """Drop fetched articles older than NEWSBOT_RETENTION_DAYS (files and index entries; their
        feed entries stay, so they are never fetched again). Looked at once an hour."""
        cutoff = self._cutoff()
        if cutoff is None or time.monotonic() < self._next_expiry:
            return 0
        self._next_expiry = time.monotonic() + 3600
        store = self._store()

        def old(a: StoredArticle) -> bool:
            day = a.published or dt.datetime.fromtimestamp(a.fetched_at, dt.UTC).date().isoformat()
            return day < cutoff

        gone = [a for a in await self._st(store.articles) if not a.expired and old(a)]
        if not gone:
            return 0
        for a in gone:
            await asyncio.to_thread(self.files.delete, a.path)
        await self._st(store.expire, [a.id for a in gone])
        log.info("retention: dropped %d articles published before %s", len(gone), cutoff)
        return len(gone)

    async def _index_pending(self) -> BuildReport | None:
        """Index every recorded article whose fingerprint the index lacks, and remove expired ones."""
        stored = await self._st(self._store().articles)
        return await asyncio.get_running_loop().run_in_executor(self._index, self._index_sync, stored)

    def _index_sync(self, stored: Sequence[StoredArticle]) -> BuildReport | None:
        index = self._index_store()
        have = index.fingerprints()
        hook = self._hook
        if have is None:  # no index yet: build one from the whole corpus, once there is something to add
            return self._full_build(hook) if any(not a.expired for a in stored) else None
        pending = [a for a in stored if not a.expired and have.get(a.id) != a.fingerprint]
        removed = [a.id for a in stored if a.expired and a.id in have]
        if not pending and not removed:
            return None
        loaded = load_paths(self.settings.corpus_dir, [a.path for a in pending])
        if loaded.warnings:
            log.warning("%d fetched article files could not be read: %s", len(loaded.warnings),
                        "; ".join(map(str, loaded.warnings[:5])))
        try:
            report = update_index(index, loaded.articles, removed, self.embedder(), hook=hook,
                                  progress=self.progress)
        except (IndexNotFoundError, IndexMismatchError) as e:
            log.warning("cannot update the index (%s): building it from the whole corpus", e)
            return self._full_build(hook)
        self._indexed(report)
        return report

    def _index_store(self) -> Store:
        if self._store_of_index is None:
            self._store_of_index = open_store(self.settings)
        return self._store_of_index

    def _full_build(self, hook: Callable[[str], None]) -> BuildReport:
        from .loaders import load_corpus

        loaded = load_corpus(self.settings.corpus_dir)
        if not loaded.articles:
            raise NewsbotError(f"no articles to index in {self.settings.corpus_dir}")
        report = build_index(self._index_store(), loaded, self.embedder(), wait=True, hook=hook,
                             progress=self.progress)
        self._indexed(report)
        return report

    def _indexed(self, report: BuildReport) -> None:
        if report.up_to_date:
            return
        log.info("indexed: %s", report.summary())
        if self.on_indexed is not None:
            self.on_indexed(report)

    def _hook(self, stage: str) -> None:
        # Stop at a stage boundary; past the manifest the generation is committed, so let it finish.
        if self._stop_flag.is_set() and stage not in ("manifest", "committed"):
            raise Interrupted("stopped")


#: How much lower than normal the CPU priority of background work is (a nice value).
BACKGROUND_NICE = 10


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: threads have their own nice value; the worker
    threads the model starts from this thread inherit it). Elsewhere, nothing."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))


def _extract(body: bytes, url: str, headers: Any, entry: FeedEntry | None) -> Page:
    from .extract import extract_page

    return extract_page(body, url, headers, entry)
