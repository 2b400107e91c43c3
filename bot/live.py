"""The bot's live side: it follows the index as it changes, and takes feeds and links.

* **Following the index.** Every ``NEWSBOT_INDEX_POLL_SECONDS`` (and at once after its own
  watcher indexed something) the bot asks the engine whether the manifest was replaced (one
  ``stat``); if so it opens the new generation in a worker thread and switches to it. Answers under
  way finish on the snapshot they started with. A separate ``newsbot watch`` or ``newsbot rebuild``
  is picked up the same way.
* **Feeds and links.** An :class:`index.ingest.Ingester` for ``/feeds`` and ``/add``, using the
  engine's model. With ``NEWSBOT_WATCH=1`` it also runs the watcher's rounds in this process:
  fetching is asynchronous, parsing and embedding run in worker threads, so the event loop never
  blocks.
* **Disabled feeds** are announced once in the channel where they were added.

With several shard processes (``NEWSBOT_SHARD_IDS``) every process follows the index; only the one
running shard 0 runs the watcher and announces disabled feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord

from index.errors import NewsbotError, StoreUnavailableError

from .render import render_notice
from .send import message_kwargs

if TYPE_CHECKING:
    from index.ingest import Ingester
    from index.stores.build import BuildReport

    from .client import NewsBot

log = logging.getLogger(__name__)

#: How long a clean stop waits for the watcher's current step.
STOP_TIMEOUT_S = 30.0


class Live:
    """Started by the bot's ``setup_hook`` once the engine is loaded; closed with the bot."""

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.ingester: Ingester | None = None
        self.unavailable: str | None = None  # why /feeds and /add cannot work, when they cannot
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from index.ingest import Ingester

        settings = self.bot.settings
        engine = self.bot.require_engine()
        loop = asyncio.get_running_loop()
        ingester = Ingester(settings, embedder=lambda: engine.embedder,  # type: ignore[attr-defined]
                            on_indexed=lambda _report: loop.call_soon_threadsafe(self._wake.set))
        try:
            await ingester.__aenter__()
        except NewsbotError as e:
            self.unavailable = str(e)
            log.warning("feeds and /add are unavailable: %s", e)
        else:
            self.ingester = ingester
        self._tasks.append(asyncio.create_task(self._follow(), name="newsbot-follow-index"))
        if settings.watch and self.ingester is not None and not self.bot.runs_shard_zero:
            # N shard processes must not each fetch every feed: the one running shard 0 does.
            log.info("not watching feeds in this process (NEWSBOT_WATCH=1): the process running shard 0 does")
        elif settings.watch and self.ingester is not None:
            self._watch_task = asyncio.create_task(self._watch(), name="newsbot-watch")
            log.info("watching feeds in this process (NEWSBOT_WATCH=1)")

    def indexed(self, _report: BuildReport | None = None) -> None:
        """Something was indexed: look at the index now rather than at the next poll."""
        self._wake.set()

    async def _watch(self) -> None:
        assert self.ingester is not None
        try:
            await self.ingester.watch()
        except Exception:  # the edge of a background task: log it, the bot keeps answering
            log.exception("the feed watcher stopped after an unexpected error")

    async def _follow(self) -> None:
        interval = self.bot.settings.index_poll_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.follow_once()
                await self.announce_disabled()
            except asyncio.CancelledError:
                raise
            except StoreUnavailableError as e:  # the database is away: tried again at the next poll
                log.warning("cannot follow the index or the feeds right now: %s", e)
            except Exception:  # the edge of a background task
                log.exception("error while following the index")

    async def follow_once(self) -> bool:
        """Switch to a new index generation if there is one; True when it did."""
        engine = self.bot.require_engine()
        if not await self.bot.workers.lookup(engine.index_changed):  # type: ignore[attr-defined]
            return False
        try:
            info = await self.bot.workers.answer(engine.reload)
        except NewsbotError as e:
            log.warning("a new index generation could not be opened (still serving the old one): %s", e)
            return False
        await self.bot.refresh_outlets()
        log.info("now answering from index generation %s: %s articles, %s sentences",
                 info.get("generation"), info.get("articles"), info.get("sentences"))
        return True

    async def announce_disabled(self) -> None:
        """Say once, in the channel where a feed was added, that it was disabled.

        A channel missing from the bot's cache (not delivered by the gateway yet, right after a start,
        or a thread, or on another process's shard) is fetched, so the notice is not lost; it is
        dropped (logged) only when Discord refuses it: the channel is gone, or the bot may not see it
        or write there. Only the process running shard 0 announces, so that N processes say it once.
        """
        if self.ingester is None or not self.bot.runs_shard_zero:
            return
        for feed in await self.ingester.disabled_unannounced():
            if feed.notify_channel:
                payload = render_notice(
                    "⚠️ I stopped following the feed {} after repeated failures: {}. "
                    "`/feeds add` with the same address tries it again.", feed.url, feed.disabled_reason or "")
                try:
                    channel = self.bot.get_channel(feed.notify_channel)
                    if channel is None:
                        channel = await self.bot.fetch_channel(feed.notify_channel)
                    if isinstance(channel, discord.abc.Messageable):
                        await channel.send(**message_kwargs(payload))
                    else:
                        log.warning("cannot announce the disabled feed %s in channel %s: not a text channel",
                                    feed.url, feed.notify_channel)
                except discord.HTTPException as e:
                    log.warning("could not announce the disabled feed %s in channel %s: %s", feed.url,
                                feed.notify_channel, e)
            await self.ingester.mark_announced(feed.id)

    async def close(self) -> None:
        if self.ingester is not None:
            self.ingester.stop()
        if self._watch_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._watch_task), STOP_TIMEOUT_S)
            self._watch_task.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ingester is not None:
            await self.ingester.__aexit__(None, None, None)
            self.ingester = None
