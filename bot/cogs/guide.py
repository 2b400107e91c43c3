"""``/help`` (how to ask) and ``/about`` (what the index holds, how fresh it is, the feeds followed)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from ..render import render_about, render_help
from ..send import message_kwargs, respond

if TYPE_CHECKING:
    from ..client import NewsBot

log = logging.getLogger(__name__)


class GuideCog(commands.Cog, name="Guide"):
    """What members need to know to use the bot."""

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="How to ask me about the news, the filters and the buttons")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(**message_kwargs(render_help()), ephemeral=True)

    @app_commands.command(name="about", description="How many articles I have read, from which outlets, how fresh")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def about(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        engine = self.bot.require_engine()
        articles = await self.bot.workers.lookup(engine.sources, None)
        live = self.bot.live
        feeds = await live.ingester.feeds() if live is not None and live.ingester is not None else None
        backend = getattr(engine.embedder, "backend", "")
        model = f"{engine.embedder.name}" + (f" ({backend})" if backend else "")
        await respond(interaction, render_about(engine.info, articles, feeds, model), ephemeral=True)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(GuideCog(bot))
