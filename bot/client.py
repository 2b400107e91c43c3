"""The bot: a ``commands.Bot`` that loads the engine once in ``setup_hook`` and syncs its commands.

Shards: with ``NEWSBOT_SHARD_COUNT`` the bot is a ``commands.AutoShardedBot`` (:class:`ShardedNewsBot`)
running every shard, or with ``NEWSBOT_SHARD_IDS`` too, only those shards, so a large bot runs as one
process per range of shards. Without them it is a plain ``commands.Bot`` on one unsharded connection,
as before (an AutoShardedBot given no count would ask Discord for a recommended one and shard by
itself). Application commands are the application's, not a shard's, and direct messages only reach
shard 0: so only the process that runs shard 0 (or the unsharded one) syncs the commands, runs the
in-process feed watcher (``NEWSBOT_WATCH=1``) and announces disabled feeds, and N processes neither
race to overwrite the commands nor each fetch every feed. Every process follows the index.

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

from .config import BotSettings
from .cooldown import Cooldown
from .feedback import FeedbackStore, open_feedback_store
from .guilds import DEFAULT, GuildConfig, GuildSettings, ThreadMemory
from .live import Live
from .render import choice_text
from .send import NO_MENTIONS, apologise
from .views import DYNAMIC_ITEMS
from .workers import Workers

if TYPE_CHECKING:
    import datetime as dt

    from index.records import Answer, ArticleInfo, PassageView

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.ask", "bot.cogs.sources", "bot.cogs.admin", "bot.cogs.feeds", "bot.cogs.guide",
              "bot.cogs.settings", "bot.cogs.check")


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


def open_engine(settings: BotSettings) -> EngineLike:
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


def shard_options(settings: BotSettings) -> dict[str, Any]:
    """The shard arguments of ``commands.AutoShardedBot`` the settings ask for (none when unsharded)."""
    if settings.shard_count is None:
        return {}
    options: dict[str, Any] = {"shard_count": settings.shard_count}
    if settings.shard_ids:
        options["shard_ids"] = list(settings.shard_ids)
    return options


def runs_shard_zero(settings: BotSettings) -> bool:
    """Whether this process runs shard 0 (or is unsharded): the one that syncs the application
    commands, gets the direct messages and runs the in-process watcher."""
    return settings.shard_count is None or not settings.shard_ids or 0 in settings.shard_ids


def describe_shards(settings: BotSettings) -> str:
    """The shards this process runs, for the logs."""
    count, ids = settings.shard_count, settings.shard_ids
    if count is None:
        return "unsharded (one gateway connection)"
    if not ids or len(ids) == count:
        return f"all {count} shard{'s' if count != 1 else ''} in this process"
    runs = ids == tuple(range(ids[0], ids[-1] + 1)) and len(ids) > 2
    listed = f"{ids[0]}-{ids[-1]}" if runs else ", ".join(map(str, ids))
    return f"shard{'s' if len(ids) != 1 else ''} {listed} of {count}"


class NewsBot(commands.Bot):
    """newsbot. Construct cheaply; ``setup_hook`` (run by ``start``) loads everything heavy.

    ``NewsBot(settings)`` with ``NEWSBOT_SHARD_COUNT`` set gives a :class:`ShardedNewsBot`.
    """

    def __new__(cls, settings: BotSettings, *args: Any, **kwargs: Any) -> NewsBot:
        if cls is NewsBot and settings.shard_count is not None:
            cls = ShardedNewsBot
        return super().__new__(cls)

    def __init__(
        self,
        settings: BotSettings,
        *,
        engine_factory: Callable[[BotSettings], EngineLike] = open_engine,
    ) -> None:
        # newsbot never joins a voice channel: don't warn at start-up that voice libraries are missing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: needed for follow-ups in the bot's threads
        sharding = shard_options(settings)
        if sharding and not isinstance(self, commands.AutoShardedBot):
            raise TypeError(f"{type(self).__name__} is not sharded: NEWSBOT_SHARD_COUNT needs a ShardedNewsBot")
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: on_message below runs no text commands
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            tree_cls=NewsTree,
            help_command=None,
            **sharding,
        )
        self.settings = settings
        self.engine_factory = engine_factory
        self.engine: EngineLike | None = None
        self.store: FeedbackStore | None = None
        self.guild_settings: GuildSettings | None = None
        self.thread_memory: ThreadMemory | None = None
        self.cooldown = Cooldown(settings.cooldown_seconds)
        self.workers = Workers()
        self.outlets: tuple[str, ...] = ()
        self.live: Live | None = None
        self._announced = False

    def __repr__(self) -> str:  # never shows settings (the token is redacted there anyway)
        return f"<{type(self).__name__} user={self.user!s}>"

    @property
    def runs_shard_zero(self) -> bool:
        """Whether this process runs shard 0 (or is unsharded): it alone syncs the commands, runs the
        NEWSBOT_WATCH watcher and announces disabled feeds."""
        return runs_shard_zero(self.settings)

    async def setup_hook(self) -> None:
        """Open the feedback store, load the engine (in a thread), start following the index (and
        feeds), add the cogs, sync commands (in the process with shard 0)."""
        settings = self.settings
        if settings.shard_count is not None:
            log.info("running %s%s", describe_shards(settings),
                     "" if self.runs_shard_zero else
                     " (the process running shard 0 syncs the commands and runs the feed watcher)")
        self.store = await asyncio.to_thread(open_feedback_store, settings)
        # The servers' settings and the threads' questions live in the same database as the votes.
        self.guild_settings = await asyncio.to_thread(GuildSettings, self.store.db)
        self.thread_memory = await asyncio.to_thread(ThreadMemory, self.store.db)
        log.info("loading the engine (index %s)", settings.index_dir)
        self.engine = await asyncio.to_thread(self.engine_factory, settings)
        await self.refresh_outlets()
        self.live = Live(self)
        await self.live.start()
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for name in EXTENSIONS:
            await self.load_extension(name)
        if self.runs_shard_zero:
            await self.sync_commands()
        else:
            log.info("not syncing the commands: the process running shard 0 does")
        # The model and index are loaded for good: move them out of the garbage collector's way, so
        # that a full collection during a burst of questions does not pause the event loop.
        gc.collect()
        gc.freeze()

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

    def require_guild_settings(self) -> GuildSettings:
        if self.guild_settings is None:
            raise RuntimeError("the guild settings are not open yet")
        return self.guild_settings

    def require_thread_memory(self) -> ThreadMemory:
        if self.thread_memory is None:
            raise RuntimeError("the thread memory is not open yet")
        return self.thread_memory

    async def guild_config(self, guild_id: int | None) -> GuildConfig:
        """A server's settings (the defaults in DMs): from the cache when fresh, else the database."""
        if guild_id is None:
            return DEFAULT
        store = self.require_guild_settings()
        cached = store.cached(guild_id)
        return cached if cached is not None else await self.workers.lookup(store.get, guild_id)

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
            "newsbot ready as %s (id %s): %s articles, %s sentences, index built %s; %s",
            self.user, self.user.id if self.user else "?",
            info.get("articles", "?"), info.get("sentences", "?"), info.get("built_at", "?"),
            describe_shards(self.settings),
        )

    async def on_shard_ready(self, shard_id: int, /) -> None:  # dispatched by AutoShardedBot only
        log.info("shard %s of %s ready", shard_id, self.shard_count)

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


class ShardedNewsBot(NewsBot, commands.AutoShardedBot):
    """newsbot as a ``commands.AutoShardedBot``: every shard of ``NEWSBOT_SHARD_COUNT`` in this
    process, or only ``NEWSBOT_SHARD_IDS``. ``NewsBot(settings)`` picks it when a count is set."""
