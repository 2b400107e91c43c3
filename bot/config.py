"""The bot's settings: the engine's :class:`index.config.Settings` plus what only the Discord bot reads.

:class:`BotSettings` is built the same way (``BotSettings.from_env()``: the environment over ``.env``),
so ``python -m bot`` reads one set of variables; the engine and the ``newsbot`` command never see the
Discord ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.config import PROJECT_ROOT, Secret, Settings, _bool, _opt_int, _path
from index.errors import ConfigError


def _shard_ids(value: str) -> tuple[int, ...]:
    """NEWSBOT_SHARD_IDS: shard numbers and ranges, ``0,1``, ``0-3`` or ``0-3,6`` (sorted, each once)."""
    ids: list[int] = []
    for part in (p.strip() for p in value.split(",")):
        first, dash, last = part.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise ValueError(f"{part!r} is not a shard number or a range like 0-3")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"the range {part!r} runs backwards")
        ids.extend(range(low, high + 1))
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"shard {twice[0]} is listed twice")
    return tuple(sorted(ids))


@dataclass(frozen=True)
class BotSettings(Settings):
    """Every setting the Discord bot reads: the engine's and these. Each names its variable in ``metadata``."""

    discord_token: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "DISCORD_TOKEN", "parse": Secret}
    )
    discord_guild_id: int | None = field(
        default=None, metadata={"env": "DISCORD_GUILD_ID", "parse": _opt_int}
    )
    cooldown_seconds: float = field(
        default=5.0, metadata={"env": "NEWSBOT_COOLDOWN_SECONDS", "parse": float}
    )
    feedback_db: Path = field(
        default=PROJECT_ROOT / "data" / "feedback.sqlite3",
        metadata={"env": "NEWSBOT_FEEDBACK_DB", "parse": _path},
    )
    # The key user ids are hashed with in the votes (empty: a key file made next to feedback_db).
    secret_key: Secret = field(
        default_factory=lambda: Secret(""), metadata={"env": "NEWSBOT_SECRET_KEY", "parse": Secret}
    )
    # Several processes: one per range of Discord shards (only the one with shard 0 syncs commands
    # and runs the NEWSBOT_WATCH watcher).
    shard_count: int | None = field(default=None, metadata={"env": "NEWSBOT_SHARD_COUNT", "parse": _opt_int})
    shard_ids: tuple[int, ...] = field(default=(), metadata={"env": "NEWSBOT_SHARD_IDS", "parse": _shard_ids})
    # The feed watcher in the bot's process, and how often the bot looks for a rebuilt index.
    watch: bool = field(default=False, metadata={"env": "NEWSBOT_WATCH", "parse": _bool})
    index_poll_seconds: float = field(default=2.0, metadata={"env": "NEWSBOT_INDEX_POLL_SECONDS", "parse": float})
    # Only for tests against a local Discord stand-in: where discord.py sends REST and gateway traffic.
    discord_api_base: str = field(default="", metadata={"env": "NEWSBOT_DISCORD_API_BASE", "parse": str})
    discord_gateway: str = field(default="", metadata={"env": "NEWSBOT_DISCORD_GATEWAY", "parse": str})

    def validate(self) -> None:
        super().validate()
        if self.cooldown_seconds < 0:
            raise ConfigError("NEWSBOT_COOLDOWN_SECONDS must not be negative")
        if self.shard_count is not None and self.shard_count < 1:
            raise ConfigError("NEWSBOT_SHARD_COUNT must be at least 1 (or empty: one unsharded connection)")
        if self.shard_ids and self.shard_count is None:
            raise ConfigError("NEWSBOT_SHARD_IDS needs NEWSBOT_SHARD_COUNT (the total number of shards of the bot)")
        if self.shard_ids and self.shard_count is not None and max(self.shard_ids) >= self.shard_count:
            raise ConfigError(f"NEWSBOT_SHARD_IDS: shard {max(self.shard_ids)} does not exist with "
                              f"NEWSBOT_SHARD_COUNT={self.shard_count} (shards are numbered 0 to {self.shard_count - 1})")
        if self.index_poll_seconds <= 0:
            raise ConfigError("NEWSBOT_INDEX_POLL_SECONDS must be positive")
