"""The message context menu "Check against the news" (Apps -> Check against the news, on any message).

It takes the message's words as a claim and replies with the sentences of the articles that bear
on it, each cited (the same retrieval and calibrated decline as ``/ask``), or says the articles
don't cover it. The bot quotes; it does not rule on the claim. Private by default (``/settings
checks``): a check is about someone else's message. The server's asking role and the per-user
cooldown apply, as for ``/ask`` (:meth:`AskCog.admitted`).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.conversation import is_chitchat

from ..render import Payload, render_check
from ..send import respond
from .ask import AskCog

if TYPE_CHECKING:
    from ..client import NewsBot

log = logging.getLogger(__name__)

CHECK_MENU = "Check against the news"
NO_TEXT = "That message has no words I can check against the news."
NOT_A_CLAIM = "That message doesn't say anything I could check against the news."
OWN_ANSWER = "That is one of my answers: its sources are listed under it (and the Passages button shows them)."

_MARKUP = re.compile(r"<a?:\w+:\d+>|<@[!&]?\d+>|<#\d+>|<t:\d+(?::\w)?>")


def claim_text(message: discord.Message, limit: int) -> tuple[str, bool]:
    """The words of ``message`` to check (its text, else its embeds' titles and descriptions, as a
    news bot posts them), without mentions or custom emoji, cut at a word to ``limit`` characters;
    and whether it was cut."""
    text = message.content or ""
    if not text.strip():
        text = "\n".join(part for e in message.embeds for part in (e.title, e.description) if part)
    text = " ".join(_MARKUP.sub(" ", text).split())
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut), True


class CheckCog(commands.Cog, name="Check"):
    """The "Check against the news" context menu."""

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        # A context menu can't be a decorated cog method: it is made here and added to the tree.
        self.menu = app_commands.ContextMenu(
            name=CHECK_MENU, callback=self.check_message,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def check_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Check ``message``'s claim: refusals and problems privately and at once; the check deferred
        (within Discord's 3 seconds) then answered, privately unless the server chose public checks."""
        me = self.bot.user
        if me is not None and message.author.id == me.id:
            await respond(interaction, Payload(content=OWN_ANSWER), ephemeral=True)
            return
        claim, cut = claim_text(message, self.bot.settings.max_question_chars)
        problem = NO_TEXT if not claim else NOT_A_CLAIM if is_chitchat(claim) else None
        if problem is not None:
            await respond(interaction, Payload(content=problem), ephemeral=True)
            return
        ask = self.bot.get_cog("Ask")
        assert isinstance(ask, AskCog)
        config = await ask.admitted(interaction, "a claim check")
        if config is None:
            return
        private = not config.public_checks
        outcome = await ask.deferred_answer(interaction, claim, private=private, asked_at=message.created_at)
        if outcome is None:
            return
        log.info("checked a claim (%d characters%s): %s", len(claim), ", cut" if cut else "",
                 "quoted" if outcome.answered else "not covered")
        await respond(interaction, render_check(outcome.answer, link=message.jump_url), view=outcome.view,
                      ephemeral=private)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(CheckCog(bot))
