"""``/sources [query]``: the indexed articles, ten to a page, with ◀ ▶ buttons."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

import discord
from discord import app_commands
from discord.ext import commands

from ..render import normalise, render_sources_page
from ..send import message_kwargs, respond
from ..views import SOURCES_QUERY_MAX, sources_view

if TYPE_CHECKING:
    from ..client import NewsBot

log = logging.getLogger(__name__)


class SourcesCog(commands.Cog, name="Sources"):
    """Lists what the bot has read."""

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="sources", description="List the news articles I can quote from")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.describe(query="Only the articles whose title or outlet contains this")
    async def sources(
        self,
        interaction: discord.Interaction,
        # Optional[...] because a Range is an object, not a type: `Range[...] | None` can't be evaluated.
        query: Optional[app_commands.Range[str, 1, SOURCES_QUERY_MAX]] = None,  # noqa: UP045
    ) -> None:
        query = normalise(query)[:SOURCES_QUERY_MAX] or None
        await interaction.response.defer(thinking=True)
        articles = await self.bot.workers.lookup(self.bot.require_engine().sources, query)
        page = render_sources_page(articles, 0, query=query)
        await respond(interaction, page.payload, view=sources_view(page.page, page.pages, query))

    async def turn_page(self, interaction: discord.Interaction, page: int, query: str | None) -> None:
        """A ◀ / ▶ click: edit the message to show ``page`` (clamped to the pages there are now).

        Acknowledged first (a deferred update): under load the lookup may wait its turn, and
        Discord allows only 3 seconds for the first response.
        """
        await interaction.response.defer()
        articles = await self.bot.workers.lookup(self.bot.require_engine().sources, query)
        rendered = render_sources_page(articles, page, query=query)
        view = sources_view(rendered.page, rendered.pages, query)
        await interaction.edit_original_response(view=view, **message_kwargs(rendered.payload))


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(SourcesCog(bot))
