"""``/reload``: re-open the index after a rebuild, without a restart (server admins only)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.errors import NewsbotError

from ..render import Payload, render_notice
from ..send import respond

if TYPE_CHECKING:
    from ..client import NewsBot

log = logging.getLogger(__name__)


class AdminCog(commands.Cog, name="Admin"):
    """Commands for the people who run the bot."""

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self._lock = asyncio.Lock()

    @app_commands.command(name="reload", description="Reload the index after a rebuild (Manage Server only)")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.default_permissions(manage_guild=True)
    async def reload(self, interaction: discord.Interaction) -> None:
        # default_permissions is only a default that server admins can change: check at run time too.
        if interaction.guild is None:
            await respond(interaction, Payload(content="`/reload` only works in a server."), ephemeral=True)
            return
        if not interaction.permissions.manage_guild:
            log.info("refused /reload for a user without Manage Server in guild %s", interaction.guild_id)
            await respond(
                interaction, Payload(content="You need the Manage Server permission to reload the index."),
                ephemeral=True,
            )
            return
        if self._lock.locked():
            await respond(interaction, Payload(content="A reload is already running."), ephemeral=True)
            return
        async with self._lock:
            await interaction.response.defer(ephemeral=True, thinking=True)
            engine = self.bot.require_engine()
            try:
                await self.bot.workers.answer(engine.reload)
            except NewsbotError as e:
                log.warning("reload failed, still serving the old index: %s", e)
                await respond(
                    interaction, render_notice("Reload failed; I'm still serving the old index. {}", str(e)),
                    ephemeral=True,
                )
                return
            await self.bot.refresh_outlets()
        info = engine.info
        log.info("index reloaded by guild %s: %s", interaction.guild_id, info)
        await respond(
            interaction,
            render_notice(
                "Reloaded the index: {} articles, {} sentences (built {}).",
                str(info.get("articles", "?")), str(info.get("sentences", "?")), str(info.get("built_at", "?")),
            ),
            ephemeral=True,
        )


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(AdminCog(bot))
