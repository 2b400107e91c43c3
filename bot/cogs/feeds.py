"""``/feeds add|list|remove`` and ``/add``: what the bot follows (Manage Server only, in a server).

Replies say what happened ("Feed added: 24 items, 21 new articles indexed") or why it was
refused. The work is the ingester's (:mod:`index.ingest`); this cog parses input and renders.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Optional

import discord
from discord import app_commands
from discord.ext import commands

from index.config import parse_duration
from index.errors import NewsbotError

from ..render import choice_text, render_article_added, render_feed_added, render_feeds, render_notice
from ..send import respond

if TYPE_CHECKING:
    from index.ingest import Ingester

    from ..client import NewsBot

log = logging.getLogger(__name__)

URL_MAX = 2000
#: Past this a reply says the work goes on in the background (an interaction lasts 15 minutes).
REPLY_WITHIN_S = 600.0


class FeedsCog(commands.Cog, name="Feeds"):
    """Feeds and article links, for the people who run the bot."""

    feeds = app_commands.Group(
        name="feeds", description="The news feeds I follow (Manage Server only)", guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
    )

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self._background: set[asyncio.Task[object]] = set()

    async def _ingester(self, interaction: discord.Interaction) -> Ingester | None:
        """The ingester, after checking the member may use it; None (with a reply) when not."""
        if interaction.guild is None:
            await respond(interaction, render_notice("That command only works in a server."), ephemeral=True)
            return None
        # default_permissions is only a default that server admins can change: check at run time too.
        if not interaction.permissions.manage_guild:
            log.info("refused /%s for a user without Manage Server in guild %s",
                     interaction.command.qualified_name if interaction.command else "?", interaction.guild_id)
            await respond(interaction, render_notice("You need the Manage Server permission for that."), ephemeral=True)
            return None
        live = self.bot.live
        if live is None or live.ingester is None:
            why = live.unavailable if live is not None and live.unavailable else "it is not set up"
            await respond(interaction, render_notice("Feeds are unavailable here: {}.", why), ephemeral=True)
            return None
        return live.ingester

    async def _in_time(self, interaction: discord.Interaction, work: asyncio.Task[object]) -> object | None:
        """The work's result, or None after replying that it goes on in the background."""
        try:
            return await asyncio.wait_for(asyncio.shield(work), REPLY_WITHIN_S)
        except TimeoutError:
            self._background.add(work)
            work.add_done_callback(self._background.discard)
            await respond(interaction, render_notice(
                "Still fetching: the articles appear in answers as they are indexed. `/feeds list` shows progress."),
                ephemeral=True)
            return None

    @feeds.command(name="add", description="Follow an RSS or Atom feed: its new articles are indexed as they appear")
    @app_commands.describe(url="The feed's address (RSS or Atom)",
                           every="How often to look at it: 30s, 10m, 1h, ... (default 15m)")
    async def add(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, URL_MAX],
                  every: Optional[app_commands.Range[str, 1, 20]] = None) -> None:  # noqa: UP045
        ingester = await self._ingester(interaction)
        if ingester is None:
            return
        try:
            interval = parse_duration(every) if every else self.bot.settings.feed_interval
        except ValueError:
            await respond(interaction, render_notice("`every` must be a duration like 30s, 10m or 1h."), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        work = asyncio.ensure_future(ingester.add_feed(url.strip(), every=interval, notify_channel=interaction.channel_id))
        try:
            report = await self._in_time(interaction, work)
        except NewsbotError as e:
            log.info("refused /feeds add %s: %s", url, e)
            await respond(interaction, render_notice("Not added: {}", str(e)), ephemeral=True)
            return
        if report is None:
            return
        log.info("feed added by guild %s: %s", interaction.guild_id, report.summary())  # type: ignore[attr-defined]
        if self.bot.live is not None:
            await self.bot.live.follow_once()  # answer from the new articles straight away
        await respond(interaction, render_feed_added(report, interval), ephemeral=True)

    @feeds.command(name="list", description="The feeds I follow, and how each is doing")
    async def list_(self, interaction: discord.Interaction) -> None:
        ingester = await self._ingester(interaction)
        if ingester is None:
            return
        await respond(interaction, render_feeds(await ingester.feeds()), ephemeral=True)

    @feeds.command(name="remove", description="Stop following a feed (its articles stay)")
    @app_commands.describe(url="The feed's address, as /feeds list shows it")
    async def remove(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, URL_MAX]) -> None:
        ingester = await self._ingester(interaction)
        if ingester is None:
            return
        gone = await ingester.remove_feed(url.strip())
        if gone is None:
            await respond(interaction, render_notice("I don't follow {} (`/feeds list` shows what I do).", url),
                          ephemeral=True)
            return
        log.info("feed removed by guild %s: %s", interaction.guild_id, gone.url)
        await respond(interaction, render_notice(
            "Feed removed: {}. Its {} articles stay in the index.", gone.url, str(gone.articles)), ephemeral=True)

    @remove.autocomplete("url")
    async def remove_url(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        live = self.bot.live
        if live is None or live.ingester is None or not interaction.permissions.manage_guild:
            return []
        cur = current.strip().casefold()
        choices = []
        for f in await live.ingester.feeds():
            name = choice_text(f"{f.title} · {f.url}" if f.title else f.url) or choice_text(f.url)
            if name and len(f.url) <= URL_MAX and (cur in f.url.casefold() or cur in (f.title or "").casefold()):
                choices.append(app_commands.Choice(name=name, value=f.url))
        return choices[:25]

    @app_commands.command(name="add", description="Add one news article by its link (Manage Server only)")
    @app_commands.describe(url="The article's address")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.default_permissions(manage_guild=True)
    async def add_article(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, URL_MAX]) -> None:
        ingester = await self._ingester(interaction)
        if ingester is None:
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        work = asyncio.ensure_future(ingester.ingest([url.strip()]))
        report = await self._in_time(interaction, work)
        if report is None:
            return
        page = report.pages[0]  # type: ignore[attr-defined]
        log.info("/add by guild %s: %s", interaction.guild_id, page.line())
        if self.bot.live is not None and page.status in ("new", "changed"):
            await self.bot.live.follow_once()
        await respond(interaction, render_article_added(page, report.indexed), ephemeral=True)  # type: ignore[attr-defined]


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(FeedsCog(bot))
