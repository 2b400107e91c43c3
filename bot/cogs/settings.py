"""``/settings``: where and for whom the bot answers in this server (Manage Server only).

Every subcommand replies privately with the server's settings as they now are. ``default_permissions``
hides the group from members without Manage Server, but a server admin can change that in
Server Settings -> Integrations, so :meth:`SettingsCog.interaction_check` checks again at run time.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from ..guilds import GuildConfig
from ..render import render_settings
from ..send import respond

if TYPE_CHECKING:
    from ..client import NewsBot

log = logging.getLogger(__name__)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
@app_commands.allowed_installs(guilds=True, users=False)
class SettingsCog(commands.GroupCog, group_name="settings",
                  group_description="Where and for whom I answer in this server (Manage Server only)"):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage
        if not interaction.permissions.manage_guild:
            log.info("refused /settings for a user without Manage Server in guild %s", interaction.guild_id)
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def _update(self, interaction: discord.Interaction, note: str = "", **changes: object) -> None:
        """Apply ``changes`` to the server's settings, store them, and show the result privately."""
        assert interaction.guild_id is not None  # interaction_check
        store = self.bot.require_guild_settings()
        await interaction.response.defer(ephemeral=True, thinking=True)
        config = await self.bot.workers.lookup(store.get, interaction.guild_id)
        if changes:
            config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
            await self.bot.workers.lookup(store.put, interaction.guild_id, config)
            log.info("guild %s settings changed by an admin: %s", interaction.guild_id, sorted(changes))
        await respond(interaction, render_settings(config, note), ephemeral=True)

    async def _config(self, interaction: discord.Interaction) -> GuildConfig:
        assert interaction.guild_id is not None
        return await self.bot.workers.lookup(self.bot.require_guild_settings().get, interaction.guild_id)

    @app_commands.command(name="show", description="Show this server's settings")
    async def show(self, interaction: discord.Interaction) -> None:
        await self._update(interaction)

    @app_commands.command(name="mention-channel", description="Answer mentions in a channel, or stop")
    @app_commands.describe(channel="The channel", answer="Answer mentions there (True) or not (False)")
    async def mention_channel(
        self, interaction: discord.Interaction,
        channel: discord.TextChannel, answer: bool,
    ) -> None:
        config = await self._config(interaction)
        channels = set(config.mention_channels)
        if answer:
            channels.add(channel.id)
            note = f"Mentions are now answered in {channel.mention}" + (
                "." if len(channels) > 1 else " only (and in the ask-the-news channels).")
        elif not channels:
            note = ("Mentions are answered in every channel. To limit them, turn them on for the channels "
                    "where they should be answered: the others are then left alone.")
        else:
            channels.discard(channel.id)
            note = (f"Mentions are no longer answered in {channel.mention}." if channels else
                    "No channel is listed any more, so mentions are answered in every channel again.")
        await self._update(interaction, note, mention_channels=frozenset(channels))

    @app_commands.command(name="everywhere", description="Answer mentions in every channel again")
    async def everywhere(self, interaction: discord.Interaction) -> None:
        await self._update(interaction, "Mentions are answered in every channel.", mention_channels=frozenset())

    @app_commands.command(name="ask-channel",
                          description="Take every message (or every new forum post) in a channel as a question")
    @app_commands.describe(channel="A text channel, or a forum (each new post is a question)",
                           enabled="Take its messages as questions (True) or stop (False)")
    @app_commands.rename(enabled="on")
    async def ask_channel(self, interaction: discord.Interaction,
                          channel: discord.TextChannel | discord.ForumChannel, enabled: bool) -> None:
        config = await self._config(interaction)
        channels = set(config.ask_channels)
        if enabled:
            channels.add(channel.id)
            kind = "new post" if channel.type == discord.ChannelType.forum else "message"
            note = f"Every {kind} in {channel.mention} is now taken as a question."
        else:
            channels.discard(channel.id)
            note = f"Messages in {channel.mention} are no longer taken as questions."
        await self._update(interaction, note, ask_channels=frozenset(channels))

    @app_commands.command(name="role", description="Only members with this role may ask (leave empty: everyone)")
    @app_commands.describe(role="The role needed to ask; leave it out to let everyone ask")
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        if role is not None and role.is_default():
            role = None  # @everyone
        note = f"Only members with {role.mention} may ask now." if role else "Everyone may ask now."
        await self._update(interaction, note, ask_role=role.id if role else None)

    @app_commands.command(name="answers", description="Answer in public (everyone sees it) or privately")
    @app_commands.describe(visibility="Who sees the answers by default")
    @app_commands.choices(visibility=[app_commands.Choice(name="public", value="public"),
                                      app_commands.Choice(name="private (only the asker)", value="private")])
    async def answers(self, interaction: discord.Interaction, visibility: app_commands.Choice[str]) -> None:
        private = visibility.value == "private"
        note = ("Answers to /ask are now private to the asker; mentions still get a reply "
                "in the channel (a message can't be private)." if private else "Answers are now public.")
        await self._update(interaction, note, private=private)

    @app_commands.command(name="checks", description="Whether \"Check against the news\" replies in public or privately")
    @app_commands.describe(visibility="Who sees a claim check (default: only the member who ran it)")
    @app_commands.choices(visibility=[app_commands.Choice(name="private (only the member who ran it)", value="private"),
                                      app_commands.Choice(name="public", value="public")])
    async def checks(self, interaction: discord.Interaction, visibility: app_commands.Choice[str]) -> None:
        public = visibility.value == "public"
        note = ("Claim checks are now public: everyone in the channel sees what the articles say about the message."
                if public else "Claim checks are now private to the member who runs them.")
        await self._update(interaction, note, public_checks=public)

    @app_commands.command(name="threads", description="Whether an /ask answer opens a thread for follow-ups")
    @app_commands.describe(enabled="Open a thread under each public /ask answer")
    @app_commands.rename(enabled="on")
    async def threads(self, interaction: discord.Interaction, enabled: bool) -> None:
        note = ("Public /ask answers now open a thread: follow-ups there need no mention." if enabled else
                "/ask answers no longer open threads (answers to mentions still do).")
        await self._update(interaction, note, threads=enabled)

    @app_commands.command(name="reset", description="Back to the defaults: everyone, every channel, public")
    async def reset(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None  # interaction_check
        await self.bot.workers.lookup(self.bot.require_guild_settings().reset, interaction.guild_id)
        await self._update(interaction, "Back to the defaults.")


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(SettingsCog(bot))
