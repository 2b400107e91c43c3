"""The little Discord world the fake serves: one bot, a guild with a text channel, a few members.

More guilds can be added (:meth:`World.add_guild`): each mirrors the first one (the same members
with the same roles, its own role and channel ids, one text channel ``general``), so a test can
put guilds on different gateway shards.

Everything here is plain data plus payload builders producing the JSON shapes Discord (API v10)
sends; all mutation happens on the fake server's event loop.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import constants as C

_log = logging.getLogger(__name__)

JSON = dict[str, Any]


def iso_now() -> str:
    """Current UTC time as the ISO-8601 string Discord uses for timestamps."""
    return _dt.datetime.now(_dt.UTC).isoformat()


class SnowflakeGenerator:
    """Thread-safe, strictly increasing Discord snowflakes based on the current time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._counter = itertools.count()

    def next(self) -> int:
        """Return a new snowflake id (int)."""
        with self._lock:
            value = ((int(time.time() * 1000) - C.DISCORD_EPOCH_MS) << 22) | (1 << 17) | (next(self._counter) & 0xFFF)
            value = max(value, self._last + 1)
            self._last = value
            return value


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that receives a guild's events: Discord's ``(guild_id >> 22) % num_shards``."""
    return (guild_id >> 22) % shard_count


@dataclass(frozen=True)
class WorldIds:
    """Ids of the fixed world. Override any of them by passing ``FakeDiscord(ids=WorldIds(...))``."""

    application_id: int = 1100000000000000001
    """The application id; the bot user has the same id (as for every modern Discord app)."""
    guild_id: int = 1100000000000000100
    channel_id: int = 1100000000000000200
    moderator_role_id: int = 1100000000000000301
    bot_role_id: int = 1100000000000000302
    user_id: int = 1100000000000000401
    admin_id: int = 1100000000000000402
    other_bot_id: int = 1100000000000000403
    owner_id: int = 1100000000000000404

    @property
    def bot_id(self) -> int:
        """The bot user's id (equal to the application id)."""
        return self.application_id


@dataclass
class FakeUser:
    """A user of the fake world; ``roles`` are guild role ids (the guild member's roles)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    roles: list[int] = field(default_factory=list)
    in_guild: bool = True
    joined_at: str = field(default_factory=iso_now)

    def payload(self) -> JSON:
        """Discord user object."""
        data: JSON = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "bot": self.bot,
        }
        return data


@dataclass
class FakeRole:
    """A guild role."""

    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> JSON:
        """Discord role object."""
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class FakeChannel:
    """A guild text channel, a thread, or a DM channel."""

    id: int
    type: int
    name: str = ""
    guild_id: int | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    recipient_id: int | None = None
    position: int = 0
    topic: str | None = None
    last_message_id: int | None = None
    message_count: int = 0
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    created_at: str = field(default_factory=iso_now)
    archive_timestamp: str = field(default_factory=iso_now)
    members: set[int] = field(default_factory=set)

    @property
    def is_thread(self) -> bool:
        """True for thread channels."""
        return self.type in C.THREAD_TYPES

    @property
    def is_dm(self) -> bool:
        """True for DM channels."""
        return self.type == C.CH_DM


@dataclass
class FakeGuild:
    """A guild: its roles, its first text channel and how the first guild's roles map onto its own.

    Every guild has the same members (the users with ``in_guild``); a user's roles in a guild are
    the ``role_map`` images of ``FakeUser.roles`` (role ids of the first guild).
    """

    id: int
    name: str
    channel_id: int
    roles: dict[int, FakeRole]
    role_map: dict[int, int]
    created_at: str = field(default_factory=iso_now)


class World:
    """The users, guilds, roles and channels the fake serves, with Discord payload builders.

    Methods taking ``guild_id`` default to the first guild (``ids.guild_id``).
    """

    def __init__(self, ids: WorldIds, snowflakes: SnowflakeGenerator, guild_name: str = "Newsroom") -> None:
        self.ids = ids
        self.snowflakes = snowflakes
        roles = {
            ids.guild_id: FakeRole(ids.guild_id, "@everyone", C.EVERYONE_PERMISSIONS, position=0),
            ids.moderator_role_id: FakeRole(ids.moderator_role_id, "Moderator", C.MODERATOR_PERMISSIONS, position=1),
            ids.bot_role_id: FakeRole(
                ids.bot_role_id, "NewsBot", C.BOT_ROLE_PERMISSIONS, position=2, managed=True, bot_id=ids.bot_id
            ),
        }
        self.guilds: dict[int, FakeGuild] = {
            ids.guild_id: FakeGuild(ids.guild_id, guild_name, ids.channel_id, roles, {r: r for r in roles})
        }
        self.users: dict[int, FakeUser] = {}
        self.aliases: dict[str, int] = {}
        self.add_user(ids.bot_id, "newsbot", bot=True, roles=[ids.bot_role_id], alias="bot")
        self.add_user(ids.user_id, "alice", alias="user")
        self.add_user(ids.admin_id, "admin", roles=[ids.moderator_role_id], alias="admin")
        self.add_user(ids.other_bot_id, "otherbot", bot=True, alias="other_bot")
        self.add_user(ids.owner_id, "owner", alias="owner")
        self.channels: dict[int, FakeChannel] = {
            ids.channel_id: FakeChannel(
                ids.channel_id, C.CH_GUILD_TEXT, name="general", guild_id=ids.guild_id, topic="News talk"
            )
        }

    # ---------------------------------------------------------------- guilds
    def guild(self, guild_id: int | None = None) -> FakeGuild:
        """A guild by id (the first guild when ``None``); KeyError for an unknown id."""
        return self.guilds[self.ids.guild_id if guild_id is None else guild_id]

    @property
    def roles(self) -> dict[int, FakeRole]:
        """The first guild's roles."""
        return self.guild().roles

    @property
    def guild_name(self) -> str:
        """The first guild's name."""
        return self.guild().name

    def add_guild(self, name: str, guild_id: int) -> FakeGuild:
        """A new guild mirroring the first: the same members with the same roles, a channel ``general``."""
        if guild_id in self.guilds or guild_id in self.channels:
            raise ValueError(f"id {guild_id} is already taken")
        first = self.guild()
        role_map: dict[int, int] = {}
        roles: dict[int, FakeRole] = {}
        for role in first.roles.values():
            new_id = guild_id if role.id == first.id else self.snowflakes.next()
            role_map[role.id] = new_id
            roles[new_id] = FakeRole(new_id, role.name, role.permissions, position=role.position,
                                     managed=role.managed, bot_id=role.bot_id)
        channel = FakeChannel(self.snowflakes.next(), C.CH_GUILD_TEXT, name="general", guild_id=guild_id,
                              topic="News talk")
        self.channels[channel.id] = channel
        guild = FakeGuild(guild_id, name, channel.id, roles, role_map)
        self.guilds[guild_id] = guild
        return guild

    def guild_ids(self, shard: tuple[int, int] | None = None) -> list[int]:
        """Ids of the guilds, or of those whose events go to ``shard`` = ``(shard_id, num_shards)``."""
        if shard is None:
            return list(self.guilds)
        return [g for g in self.guilds if shard_of(g, shard[1]) == shard[0]]

    def member_roles(self, user: FakeUser, guild_id: int | None = None) -> list[int]:
        """The user's role ids in the guild."""
        guild = self.guild(guild_id)
        return [guild.role_map[r] for r in user.roles if r in guild.role_map]

    def roles_of(self, guild_id: int | None) -> dict[int, FakeRole]:
        """The roles of a guild (the first guild's for ``None``, e.g. in DMs)."""
        return self.guild(guild_id).roles

    # ---------------------------------------------------------------- users
    def add_user(
        self,
        user_id: int,
        username: str,
        *,
        bot: bool = False,
        roles: list[int] | None = None,
        alias: str | None = None,
        in_guild: bool = True,
    ) -> FakeUser:
        """Register a user (a guild member unless ``in_guild`` is False)."""
        user = FakeUser(user_id, username, bot=bot, roles=list(roles or []), in_guild=in_guild)
        self.users[user_id] = user
        self.aliases[alias or username] = user_id
        return user

    def resolve_user(self, who: str | int | FakeUser | JSON) -> FakeUser:
        """Find a user by alias ("user", "admin", "owner", "other_bot", "bot"), username, id or payload."""
        if isinstance(who, FakeUser):
            return who
        if isinstance(who, dict):
            who = int(who["id"])
        if isinstance(who, str):
            if who in self.aliases:
                return self.users[self.aliases[who]]
            for user in self.users.values():
                if user.username == who:
                    return user
            if who.isdigit():
                who = int(who)
            else:
                raise KeyError(f"unknown fake user {who!r}; known: {sorted(self.aliases)}")
        if who not in self.users:
            raise KeyError(f"unknown fake user id {who}")
        return self.users[who]

    @property
    def bot(self) -> FakeUser:
        """The bot user."""
        return self.users[self.ids.bot_id]

    # ---------------------------------------------------------------- permissions
    def permissions(self, user: FakeUser, guild_id: int | None = None) -> int:
        """Guild-level permission integer of ``user`` (owner / administrator get everything)."""
        if user.id == self.ids.owner_id:
            return C.ALL_PERMISSIONS
        guild = self.guild(guild_id)
        perms = guild.roles[guild.id].permissions
        for role_id in self.member_roles(user, guild.id):
            role = guild.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        if perms & C.P_ADMINISTRATOR:
            return C.ALL_PERMISSIONS
        return perms

    # ---------------------------------------------------------------- channels
    def text_channel(self, guild_id: int | None = None) -> FakeChannel:
        """The guild's (first) text channel."""
        return self.channels[self.guild(guild_id).channel_id]

    def add_text_channel(self, name: str, *, topic: str | None = None, guild_id: int | None = None) -> FakeChannel:
        """A new guild text channel (after the existing ones)."""
        if not 1 <= len(name) <= 100:
            raise ValueError("a channel name is 1-100 characters")
        guild = self.guild(guild_id)
        position = 1 + max((c.position for c in self.channels.values()
                            if c.type == C.CH_GUILD_TEXT and c.guild_id == guild.id), default=-1)
        channel = FakeChannel(self.snowflakes.next(), C.CH_GUILD_TEXT, name=name, guild_id=guild.id,
                              position=position, topic=topic)
        self.channels[channel.id] = channel
        return channel

    def add_forum_channel(self, name: str, *, guild_id: int | None = None) -> FakeChannel:
        """A new guild forum channel: members post threads in it, not messages."""
        if not 1 <= len(name) <= 100:
            raise ValueError("a channel name is 1-100 characters")
        guild = self.guild(guild_id)
        position = 1 + max((c.position for c in self.channels.values() if c.guild_id == guild.id and not c.is_thread),
                           default=-1)
        channel = FakeChannel(self.snowflakes.next(), C.CH_GUILD_FORUM, name=name, guild_id=guild.id, position=position)
        self.channels[channel.id] = channel
        return channel

    def dm_channel_for(self, user: FakeUser) -> FakeChannel:
        """Return (creating if needed) the DM channel between the bot and ``user``."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipient_id == user.id:
                return channel
        channel = FakeChannel(self.snowflakes.next(), C.CH_DM, recipient_id=user.id)
        self.channels[channel.id] = channel
        return channel

    # ---------------------------------------------------------------- payloads
    def user_payload(self, user: FakeUser) -> JSON:
        """User object."""
        return user.payload()

    def me_payload(self) -> JSON:
        """The ``/users/@me`` object of the bot (a ClientUser)."""
        data = self.bot.payload()
        data.update({"verified": True, "mfa_enabled": False, "email": None, "flags": 0, "locale": "en-US"})
        return data

    def member_payload(
        self, user: FakeUser, *, with_user: bool = True, with_permissions: bool = False, guild_id: int | None = None
    ) -> JSON:
        """Guild member object (``flags`` included: discord.py 2.7 requires it)."""
        data: JSON = {
            "roles": [str(r) for r in self.member_roles(user, guild_id)],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": user.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = user.payload()
        if with_permissions:
            data["permissions"] = str(self.permissions(user, guild_id))
        return data

    def guild_members(self) -> list[FakeUser]:
        """Users that are members of the guild."""
        return [u for u in self.users.values() if u.in_guild]

    def channel_payload(self, channel: FakeChannel) -> JSON:
        """Channel object for a text channel, thread or DM."""
        last = str(channel.last_message_id) if channel.last_message_id else None
        if channel.is_dm:
            recipient = self.users[channel.recipient_id] if channel.recipient_id else None
            return {
                "id": str(channel.id),
                "type": C.CH_DM,
                "last_message_id": last,
                "flags": 0,
                "recipients": [recipient.payload()] if recipient else [],
            }
        data: JSON = {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "last_message_id": last,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if channel.is_thread:
            data.update(
                {
                    "parent_id": str(channel.parent_id),
                    "owner_id": str(channel.owner_id),
                    "message_count": channel.message_count,
                    "total_message_sent": channel.message_count,
                    "member_count": max(1, len(channel.members)),
                    "thread_metadata": {
                        "archived": channel.archived,
                        "auto_archive_duration": channel.auto_archive_duration,
                        "archive_timestamp": channel.archive_timestamp,
                        "locked": channel.locked,
                        "create_timestamp": channel.created_at,
                        "invitable": True,
                    },
                }
            )
            if self.ids.bot_id in channel.members:
                data["member"] = {
                    "id": str(channel.id),
                    "user_id": str(self.ids.bot_id),
                    "join_timestamp": channel.created_at,
                    "flags": 1,
                }
        else:
            data.update(
                {
                    "position": channel.position,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "topic": channel.topic,
                    "parent_id": None,
                    "default_auto_archive_duration": 1440,
                }
            )
            if channel.type == C.CH_GUILD_FORUM:
                data.update({"available_tags": [], "default_reaction_emoji": None, "default_sort_order": None,
                             "default_forum_layout": 0, "default_thread_rate_limit_per_user": 0})
        return data

    def interaction_channel_payload(self, channel: FakeChannel, user: FakeUser | None) -> JSON:
        """The partial channel sent inside interactions (with the invoker's permissions in guilds)."""
        data = self.channel_payload(channel)
        if not channel.is_dm and user is not None:
            data["permissions"] = str(self.permissions(user, channel.guild_id))
        return data

    def guild_payload(self, guild_id: int | None = None) -> JSON:
        """Guild object as in GET /guilds/{id} (no members / channels)."""
        ids = self.ids
        guild = self.guild(guild_id)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(ids.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(guild.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
        }

    def guild_channels(self, guild_id: int | None = None) -> list[FakeChannel]:
        """The guild's channels and threads."""
        gid = self.guild(guild_id).id
        return [c for c in self.channels.values() if c.guild_id == gid]

    def guild_create_payload(self, guild_id: int | None = None, *, with_members: bool = True) -> JSON:
        """The GUILD_CREATE dispatch: guild plus channels, threads, roles and members.

        Without the GUILD_MEMBERS intent Discord only includes the bot's own member.
        """
        guild = self.guild(guild_id)
        data = self.guild_payload(guild.id)
        members = self.guild_members()
        listed = members if with_members else [self.bot]
        channels = self.guild_channels(guild.id)
        data.update(
            {
                "joined_at": guild.created_at,
                "large": False,
                "unavailable": False,
                "member_count": len(members),
                "members": [self.member_payload(u, guild_id=guild.id) for u in listed],
                "channels": [self.channel_payload(c) for c in channels if not c.is_thread],
                "threads": [self.channel_payload(c) for c in channels if c.is_thread and not c.archived],
                "voice_states": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
        return data

    def application_payload(self) -> JSON:
        """The application object (GET /oauth2/applications/@me)."""
        owner = self.users[self.ids.owner_id]
        return {
            "id": str(self.ids.application_id),
            "name": self.bot.username,
            "icon": None,
            "description": "newsbot (fake Discord)",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": owner.payload(),
            "team": None,
            "bot": self.me_payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }
