"""The bot: a ``commands.Bot`` that loads the engine once in ``setup_hook`` and syncs its commands.

Intents: the default ones plus **message content**, a privileged intent that must be switched
on for the application in the Discord developer portal (Bot -> Privileged Gateway Intents ->
Message Content Intent). Without it Discord refuses the connection (close code 4014) and
``python -m bot`` exits with a message saying so. The bot needs it to read follow-up
questions in its own threads, which carry no mention.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import discord
from discord import app_commands
from discord.ext import commands

from index.config import Settings

from .cooldown import Cooldown
from .feedback import FeedbackStore
from .live import Live
from .render import choice_text
from .send import NO_MENTIONS, apologise
from .views import DYNAMIC_ITEMS
from .workers import Workers

if TYPE_CHECKING:
    import datetime as dt

    from index.records import Answer, ArticleInfo, PassageView

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.ask", "bot.cogs.sources", "bot.cogs.admin", "bot.cogs.feeds")


class EngineLike(Protocol):
    """What the bot needs of :class:`index.engine.Engine` (tests pass a fake)."""

    def ask(
        self, question: str, *, source: str | None = None, since: dt.date | None = None, until: dt.date | None = None
    ) -> Answer: ...

    def sources(self, query: str | None = None) -> list[ArticleInfo]: ...

    def passage(self, sentence_id: int) -> PassageView: ...

    def reload(self) -> Any: ...

    def index_changed(self) -> bool: ...

    @property
    def info(self) -> dict[str, Any]: ...


def open_engine(settings: Settings) -> EngineLike:
    """Load the model and the index (slow: seconds). Call it in a worker thread."""
    from index.engine import Engine  # heavy imports (torch, faiss) happen here, not at import time

    return Engine.open(settings)


class NewsTree(app_commands.CommandTree):
    """The command tree; its error handler turns every failure into a reply and a log line."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.NoPrivateMessage):
            text = "That command only works in a server."
        elif isinstance(error, app_commands.MissingPermissions):
            text = "You need the Manage Server permission for that."
        elif isinstance(error, app_commands.CommandOnCooldown):
            text = f"Slow down a little: try again in {max(1, round(error.retry_after))} s."
        elif isinstance(error, app_commands.CheckFailure):
            text = "You can't use that command here."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("error in /%s", command, exc_info=error)
            await apologise(interaction)
            return
        log.info("refused /%s: %s", interaction.command.name if interaction.command else "?", type(error).__name__)
        await apologise(interaction, text)


class NewsBot(commands.Bot):
    """newsbot. Construct cheaply; ``setup_hook`` (run by ``start``) loads everything heavy."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine_factory: Callable[[Settings], EngineLike] = open_engine,
    ) -> None:
        # newsbot never joins a voice channel: don't warn at start-up that voice libraries are missing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: needed for follow-ups in the bot's threads
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: on_message below runs no text commands
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            tree_cls=NewsTree,
            help_command=None,
        )
        self.settings = settings
        self.engine_factory = engine_factory
        self.engine: EngineLike | None = None
        self.store: FeedbackStore | None = None
        self.cooldown = Cooldown(settings.cooldown_seconds)
        self.workers = Workers()
        self.outlets: tuple[str, ...] = ()
        self.live: Live | None = None
        self._announced = False

    def __repr__(self) -> str:  # never shows settings (the token is redacted there anyway)
        return f"<NewsBot user={self.user!s}>"

    async def setup_hook(self) -> None:
        """Open the feedback store, load the engine (in a thread), start following the index (and
        feeds), add the cogs, sync commands."""
        settings = self.settings
        self.store = await asyncio.to_thread(FeedbackStore.open, settings.feedback_db)
        log.info("loading the engine (index %s)", settings.index_dir)
        self.engine = await asyncio.to_thread(self.engine_factory, settings)
        await self.refresh_outlets()
        self.live = Live(self)
        await self.live.start()
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for name in EXTENSIONS:
            await self.load_extension(name)
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Sync the slash commands: to DISCORD_GUILD_ID when set (instant), else globally."""
        guild_id = self.settings.discord_guild_id
        if guild_id:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s: %s", len(synced), guild_id, ", ".join(c.name for c in synced))
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands: %s", len(synced), ", ".join(c.name for c in synced))
        # The model and index are loaded for good: move them out of the garbage collector's way, so
        # that a full collection during a burst of questions does not pause the event loop.
        gc.collect()
        gc.freeze()

    async def refresh_outlets(self) -> None:
        """Cache the outlet names for ``/ask source`` autocomplete (after loading and reloading)."""
        engine = self.require_engine()
        articles = await self.workers.lookup(engine.sources)
        names = {choice_text(a.source or "") for a in articles}
        self.outlets = tuple(sorted((n for n in names if n), key=str.casefold))

    def require_engine(self) -> EngineLike:
        if self.engine is None:
            raise RuntimeError("the engine is not loaded yet")
        return self.engine

    def require_store(self) -> FeedbackStore:
        if self.store is None:
            raise RuntimeError("the feedback store is not open yet")
        return self.store

    async def on_ready(self) -> None:
        if self._announced:
            log.info("reconnected as %s", self.user)
            return
        self._announced = True
        info = self.engine.info if self.engine is not None else {}
        log.info(
            "newsbot ready as %s (id %s): %s articles, %s sentences, index built %s",
            self.user, self.user.id if self.user else "?",
            info.get("articles", "?"), info.get("sentences", "?"), info.get("built_at", "?"),
        )

    async def on_message(self, message: discord.Message, /) -> None:
        """Questions by mention are handled by the Ask cog's listener; there are no text commands."""

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("error in event %s", event_method)
        interaction = next((a for a in args if isinstance(a, discord.Interaction)), None)
        if interaction is not None:
            await apologise(interaction)

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()
            self.live = None
        await super().close()
        self.workers.shutdown()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None
