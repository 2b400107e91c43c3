"""Domain state and Discord's rules, shared by the REST API and the gateway.

Everything in :class:`Core` runs on the fake server's event loop (single-threaded); the public,
thread-safe API lives in :mod:`.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import constants as C
from .records import (
    ConnectionRecord,
    FakeInteraction,
    HeartbeatMiss,
    RateLimitRecord,
    Rejection,
    RequestRecord,
    _Bridge,
)
from .validation import (
    ApiError,
    FormErrors,
    check_not_empty,
    validate_autocomplete,
    validate_command,
    validate_commands,
    validate_message_body,
    validate_modal,
)
from .world import FakeChannel, FakeUser, SnowflakeGenerator, World, WorldIds, iso_now

if TYPE_CHECKING:
    from .gateway import Gateway

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

USER_MENTION_RE = re.compile(r"<@!?(\d+)>")
ROLE_MENTION_RE = re.compile(r"<@&(\d+)>")


class FakeDiscordError(Exception):
    """A test used the fake in a way a real Discord user could not (unknown command, bad option ...)."""


@dataclass
class MessageMeta:
    """Fake-side bookkeeping for a stored message."""

    source: str
    ephemeral: bool = False
    deleted: bool = False
    allowed_mentions: JSON | None = None
    interaction_id: int | None = None
    loading: bool = False


@dataclass
class UploadedFile:
    """A file uploaded with a message (served back under ``/attachments/...``)."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class RateLimitRule:
    """A pending ``rate_limit_next`` injection."""

    method: str
    pattern: re.Pattern[str]
    retry_after: float
    remaining: int
    is_global: bool = False


@dataclass
class CommandStore:
    """Synced application commands: ``None`` key for global, guild id for guild commands."""

    by_scope: dict[int | None, list[JSON]] = field(default_factory=dict)
    ids: dict[tuple[int | None, int, str], int] = field(default_factory=dict)


class Core:
    """All fake Discord state plus the operations both transports share."""

    def __init__(
        self,
        *,
        token: str,
        ids: WorldIds,
        heartbeat_interval_ms: int,
        interaction_deadline_s: float,
        interaction_token_ttl_s: float,
        bridge: _Bridge,
    ) -> None:
        self.token = token
        self.ids = ids
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline_s = interaction_deadline_s
        self.interaction_token_ttl_s = interaction_token_ttl_s
        self.bridge = bridge
        self.snowflakes = SnowflakeGenerator()
        self.world = World(ids, self.snowflakes)
        self.base_url = ""
        self.gateway: Gateway | None = None

        self.messages_by_id: dict[int, JSON] = {}
        self.message_meta: dict[int, MessageMeta] = {}
        self.messages_log: list[JSON] = []
        self.files: dict[int, UploadedFile] = {}
        self.commands = CommandStore()
        # Server Settings -> Integrations: per-command overrides a server admin set, keyed by
        # (guild id, command id); each a list of {"id", "type" (1 role, 2 user), "permission"}.
        self.command_permissions: dict[tuple[int, int], list[JSON]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}

        self.requests: list[RequestRecord] = []
        self.rejections: list[Rejection] = []
        self.rate_limited: list[RateLimitRecord] = []
        self.rate_limit_rules: list[RateLimitRule] = []
        self.heartbeat_misses: list[HeartbeatMiss] = []
        self.connections: list[ConnectionRecord] = []
        self.typing: list[tuple[int, float]] = []
        self.reactions: list[JSON] = []
        self.presences: list[JSON] = []
        self.unhandled: list[tuple[str, str]] = []

        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ change notification
    def notify(self) -> None:
        """Wake every waiter; they re-check their predicates."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        """Wait until ``predicate()`` returns something truthy (re-checked on every change)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"fake discord: timed out after {timeout:.1f}s waiting for {what}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.5))

    # ------------------------------------------------------------------ helpers
    def new_id(self) -> int:
        """A fresh snowflake."""
        return self.snowflakes.next()

    def dispatch(self, event: str, data: JSON) -> list[str]:
        """Send a gateway DISPATCH to every live session whose shard gets it (buffered for resumable
        ones); returns the ids of the sessions it went to."""
        if self.gateway is not None:
            return self.gateway.dispatch(event, data)
        return []

    def reject(self, method: str, path: str, error: ApiError, body: Any = None, interaction_id: int | None = None) -> None:
        """Record a refused request."""
        rejection = Rejection(
            method=method,
            path=path,
            status=error.status,
            code=error.code,
            message=error.message,
            errors=error.errors,
            timestamp=time.time(),
            body=body,
            interaction_id=interaction_id,
        )
        self.rejections.append(rejection)
        if interaction_id is not None and interaction_id in self.interactions:
            self.interactions[interaction_id].errors.append(rejection)
        _log.info("fake discord rejected %s %s: %s %s %s", method, path, error.status, error.code, error.errors or "")
        self.notify()

    def channel(self, channel_id: int) -> FakeChannel:
        """Look a channel up or raise 404 Unknown Channel."""
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise ApiError(404, C.E_UNKNOWN_CHANNEL, "Unknown Channel")
        return channel

    def user(self, who: str | int | FakeUser | JSON) -> FakeUser:
        """Resolve a user for the test-facing API (raises FakeDiscordError)."""
        try:
            return self.world.resolve_user(who)
        except KeyError as exc:
            raise FakeDiscordError(str(exc)) from exc

    # ------------------------------------------------------------------ messages
    def _mentions(self, content: str, allowed: JSON | None, author: FakeUser, channel: FakeChannel,
                  referenced: JSON | None) -> tuple[list[JSON], list[str], bool]:
        parse = None if allowed is None else set(allowed.get("parse") or [])
        allowed_users = {str(x) for x in (allowed or {}).get("users") or []}
        allowed_roles = {str(x) for x in (allowed or {}).get("roles") or []}
        user_ids: list[int] = []
        for raw in USER_MENTION_RE.findall(content):
            uid = int(raw)
            if uid in user_ids or uid not in self.world.users:
                continue
            if parse is None or "users" in parse or raw in allowed_users:
                user_ids.append(uid)
        if referenced is not None:
            replied = int(referenced["author"]["id"])
            pinged = allowed is None or bool(allowed.get("replied_user"))
            if pinged and replied not in user_ids and replied in self.world.users:
                user_ids.append(replied)
        role_ids: list[str] = []
        for raw in ROLE_MENTION_RE.findall(content):
            wanted = parse is None or "roles" in parse or raw in allowed_roles
            if int(raw) in self.world.roles_of(channel.guild_id) and raw not in role_ids and wanted:
                role_ids.append(raw)
        everyone = False
        if ("@everyone" in content or "@here" in content) and (parse is None or "everyone" in parse):
            everyone = not channel.is_dm and bool(
                self.world.permissions(author, channel.guild_id) & C.P_MENTION_EVERYONE)
        mentions = []
        for uid in user_ids:
            user = self.world.users[uid]
            entry = user.payload()
            if not channel.is_dm and user.in_guild:
                entry["member"] = self.world.member_payload(user, with_user=False, guild_id=channel.guild_id)
            mentions.append(entry)
        return mentions, role_ids, everyone

    def _attachments_from(self, body: JSON, uploads: list[UploadedFile], existing: list[JSON]) -> list[JSON]:
        """Resolve the ``attachments`` array of a body against uploaded files and kept attachments."""
        result: list[JSON] = []
        listed = body.get("attachments")
        kept_ids = {str(a.get("id")) for a in listed or [] if a.get("id") is not None}
        if listed is not None:
            result.extend(a for a in existing if a["id"] in kept_ids)
        else:
            result.extend(existing)
        descriptions = {str(a.get("id")): a for a in listed or []}
        for index, upload in enumerate(uploads):
            attachment_id = self.new_id()
            self.files[attachment_id] = upload
            extra = descriptions.get(str(index), {})
            url = f"{self.base_url}/attachments/{attachment_id}/{upload.filename}"
            entry: JSON = {
                "id": str(attachment_id),
                "filename": extra.get("filename") or upload.filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": upload.content_type,
            }
            if extra.get("description"):
                entry["description"] = extra["description"]
            result.append(entry)
        return result

    def build_message(
        self,
        *,
        channel: FakeChannel,
        author: FakeUser,
        body: JSON,
        msg_type: int,
        flags: int = 0,
        uploads: list[UploadedFile] | None = None,
        referenced: JSON | None = None,
        interaction: FakeInteraction | None = None,
    ) -> JSON:
        """A new message payload (not stored yet)."""
        content = body.get("content") or ""
        allowed = body.get("allowed_mentions")
        mentions, roles, everyone = self._mentions(content, allowed, author, channel, referenced)
        payload: JSON = {
            "id": str(self.new_id()),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": roles,
            "attachments": self._attachments_from(body, uploads or [], []),
            "embeds": [{"type": "rich", **e} for e in body.get("embeds") or []],
            "pinned": False,
            "type": msg_type,
            "flags": flags,
            "components": copy.deepcopy(body.get("components") or []),
        }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        if body.get("poll"):
            payload["poll"] = body["poll"]
        if referenced is not None:
            payload["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                **({"guild_id": referenced["guild_id"]} if "guild_id" in referenced else {}),
            }
            ref = copy.deepcopy(referenced)
            ref.pop("referenced_message", None)
            payload["referenced_message"] = ref
        if interaction is not None:
            app = str(self.ids.application_id)
            payload["webhook_id"] = app
            payload["application_id"] = app
            invoker = self.world.users[interaction.user_id]
            owners = {"0": str(interaction.guild_id)} if interaction.guild_id else {"1": str(interaction.user_id)}
            metadata: JSON = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": invoker.payload(),
                "authorizing_integration_owners": owners,
            }
            if interaction.type == C.IT_APPLICATION_COMMAND:
                metadata["name"] = interaction.name
                metadata["command_type"] = 1
            if interaction.message_id is not None:
                metadata["interacted_message_id"] = str(interaction.message_id)
            if interaction.original_message_id is not None:
                metadata["original_response_message_id"] = str(interaction.original_message_id)
            payload["interaction_metadata"] = metadata
        return payload

    def _event_payload(self, payload: JSON) -> JSON:
        """MESSAGE_CREATE / UPDATE data: the message plus ``member`` of the author in guilds."""
        data = copy.deepcopy(payload)
        if "guild_id" in data:
            author = self.world.users.get(int(data["author"]["id"]))
            if author is not None and author.in_guild and "webhook_id" not in data:
                data["member"] = self.world.member_payload(author, with_user=False, guild_id=int(data["guild_id"]))
        return data

    def log_message(self, payload: JSON, event: str) -> JSON:
        """Append a snapshot to the ``messages`` log and wake waiters."""
        meta = self.message_meta[int(payload["id"])]
        entry = copy.deepcopy(payload)
        entry.update(
            {
                "event": event,
                "source": meta.source,
                "ephemeral": meta.ephemeral,
                "allowed_mentions": copy.deepcopy(meta.allowed_mentions),
                "interaction_id": meta.interaction_id,
                "recorded_at": time.monotonic(),
            }
        )
        self.messages_log.append(entry)
        self.notify()
        return entry

    def store_message(self, payload: JSON, meta: MessageMeta, *, dispatch: bool = True) -> JSON:
        """Store a new message, log it and dispatch MESSAGE_CREATE (never for ephemeral ones)."""
        message_id = int(payload["id"])
        self.messages_by_id[message_id] = payload
        self.message_meta[message_id] = meta
        channel = self.world.channels.get(int(payload["channel_id"]))
        if channel is not None:
            channel.last_message_id = message_id
            if channel.is_thread:
                channel.message_count += 1
                channel.archived = False
        entry = self.log_message(payload, "create")
        if dispatch and not meta.ephemeral:
            self.dispatch("MESSAGE_CREATE", self._event_payload(payload))
        return entry

    def apply_edit(self, payload: JSON, body: JSON, uploads: list[UploadedFile]) -> JSON:
        """Return ``payload`` with an edit body merged in (not stored)."""
        result = copy.deepcopy(payload)
        if "content" in body:
            result["content"] = body["content"] or ""
        if "embeds" in body:
            result["embeds"] = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            result["components"] = copy.deepcopy(body["components"] or [])
        if "attachments" in body or uploads:
            result["attachments"] = self._attachments_from(body, uploads, payload.get("attachments", []))
        if body.get("flags") is not None:
            keep = result.get("flags", 0) & ~(C.MF_SUPPRESS_EMBEDS | C.MF_IS_COMPONENTS_V2)
            result["flags"] = keep | (int(body["flags"]) & (C.MF_SUPPRESS_EMBEDS | C.MF_IS_COMPONENTS_V2))
        if "content" in body or "allowed_mentions" in body:
            channel = self.world.channels[int(result["channel_id"])]
            author = self.world.users[int(result["author"]["id"])]
            allowed = body.get("allowed_mentions")
            mentions, roles, everyone = self._mentions(result["content"], allowed, author, channel, None)
            result.update(mentions=mentions, mention_roles=roles, mention_everyone=everyone)
        result["edited_timestamp"] = iso_now()
        return result

    def replace_message(self, new_payload: JSON, *, source: str | None = None, allowed: JSON | None = None) -> JSON:
        """Store an edited message, log it and dispatch MESSAGE_UPDATE."""
        message_id = int(new_payload["id"])
        meta = self.message_meta[message_id]
        if source is not None:
            meta.source = source
        if allowed is not None:
            meta.allowed_mentions = allowed
        self.messages_by_id[message_id] = new_payload
        entry = self.log_message(new_payload, "edit")
        if not meta.ephemeral:
            self.dispatch("MESSAGE_UPDATE", self._event_payload(new_payload))
        return entry

    def delete_message(self, message_id: int) -> None:
        """Mark a message deleted, log it and dispatch MESSAGE_DELETE."""
        payload = self.messages_by_id[message_id]
        meta = self.message_meta[message_id]
        meta.deleted = True
        self.log_message(payload, "delete")
        if not meta.ephemeral:
            data: JSON = {"id": payload["id"], "channel_id": payload["channel_id"]}
            if "guild_id" in payload:
                data["guild_id"] = payload["guild_id"]
            self.dispatch("MESSAGE_DELETE", data)

    def visible_message(self, channel_id: int, message_id: int) -> JSON:
        """A non-deleted, non-ephemeral message of a channel, or 404 Unknown Message."""
        payload = self.messages_by_id.get(message_id)
        meta = self.message_meta.get(message_id)
        if (
            payload is None
            or meta is None
            or meta.deleted
            or meta.ephemeral
            or int(payload["channel_id"]) != channel_id
        ):
            raise ApiError(404, C.E_UNKNOWN_MESSAGE, "Unknown Message")
        return payload

    def channel_history(self, channel_id: int) -> list[JSON]:
        """Visible messages of a channel, oldest first."""
        return [
            p
            for mid, p in self.messages_by_id.items()
            if int(p["channel_id"]) == channel_id
            and not self.message_meta[mid].deleted
            and not self.message_meta[mid].ephemeral
        ]

    def create_channel_message(self, channel_id: int, body: JSON, uploads: list[UploadedFile]) -> JSON:
        """POST /channels/{id}/messages as the bot."""
        channel = self.channel(channel_id)
        if channel.is_dm:
            recipient = self.world.users.get(channel.recipient_id or 0)
            if recipient is None or recipient.bot:
                raise ApiError(403, C.E_CANNOT_DM_USER, "Cannot send messages to this user")
        if channel.is_thread and channel.locked:
            raise ApiError(403, C.E_MISSING_PERMISSIONS, "Missing Permissions")
        if channel.type == C.CH_GUILD_FORUM:  # a forum holds posts (threads), not messages
            raise ApiError(400, C.E_NON_TEXT_CHANNEL, "Cannot send messages in a non-text channel")
        validate_message_body(body)
        referenced = None
        reference = body.get("message_reference")
        if reference and reference.get("type", 0) == 0:
            ref_id = int(reference.get("message_id") or 0)
            ref_channel = int(reference.get("channel_id") or channel_id)
            try:
                referenced = self.visible_message(ref_channel, ref_id)
            except ApiError:
                if reference.get("fail_if_not_exists", True):
                    errors = FormErrors()
                    errors.add(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
                    errors.raise_if_any()
        flags = int(body.get("flags") or 0) & (C.MF_SUPPRESS_EMBEDS | C.MF_SUPPRESS_NOTIFICATIONS | C.MF_IS_COMPONENTS_V2)
        payload = self.build_message(
            channel=channel,
            author=self.world.bot,
            body=body,
            msg_type=C.MSG_REPLY if referenced is not None else C.MSG_DEFAULT,
            flags=flags,
            uploads=uploads,
            referenced=referenced,
        )
        check_not_empty(payload)
        self.store_message(payload, MessageMeta(source="channel", allowed_mentions=body.get("allowed_mentions")))
        return payload

    def edit_channel_message(self, channel_id: int, message_id: int, body: JSON, uploads: list[UploadedFile]) -> JSON:
        """PATCH /channels/{id}/messages/{id} as the bot."""
        self.channel(channel_id)
        payload = self.visible_message(channel_id, message_id)
        if int(payload["author"]["id"]) != self.ids.bot_id:
            raise ApiError(403, C.E_CANNOT_EDIT_OTHERS, "Cannot edit a message authored by another user")
        validate_message_body(body)
        updated = self.apply_edit(payload, body, uploads)
        check_not_empty(updated)
        self.replace_message(updated, allowed=body.get("allowed_mentions"))
        return updated

    def delete_channel_message(self, channel_id: int, message_id: int) -> None:
        """DELETE /channels/{id}/messages/{id}: own messages, others need MANAGE_MESSAGES."""
        channel = self.channel(channel_id)
        payload = self.visible_message(channel_id, message_id)
        own = int(payload["author"]["id"]) == self.ids.bot_id
        may_manage = self.world.permissions(self.world.bot, channel.guild_id) & C.P_MANAGE_MESSAGES
        if not own and not channel.is_dm and not may_manage:
            raise ApiError(403, C.E_MISSING_PERMISSIONS, "Missing Permissions")
        if not own and channel.is_dm:
            raise ApiError(403, C.E_CANNOT_EDIT_OTHERS, "Cannot execute action on a DM channel")
        self.delete_message(message_id)

    # ------------------------------------------------------------------ threads
    def _thread_args(self, body: JSON) -> tuple[str, int]:
        errors = FormErrors()
        name = body.get("name")
        errors.bad_length(("name",), name, 1, C.MAX_THREAD_NAME)
        duration = body.get("auto_archive_duration", 1440)
        if duration not in C.THREAD_ARCHIVE_DURATIONS:
            errors.add(("auto_archive_duration",), "BASE_TYPE_CHOICES",
                       f"Value must be one of {sorted(C.THREAD_ARCHIVE_DURATIONS)}.")
        errors.raise_if_any()
        return str(name), int(duration)

    def _new_thread(self, thread_id: int, parent: FakeChannel, name: str, duration: int, ctype: int) -> FakeChannel:
        thread = FakeChannel(
            thread_id,
            ctype,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=self.ids.bot_id,
            auto_archive_duration=duration,
            members={self.ids.bot_id},
        )
        self.world.channels[thread_id] = thread
        data = self.world.channel_payload(thread)
        data["newly_created"] = True
        self.dispatch("THREAD_CREATE", data)
        self.notify()
        return thread

    def start_thread_from_message(self, channel_id: int, message_id: int, body: JSON) -> JSON:
        """POST /channels/{id}/messages/{id}/threads: the thread id equals the starter message id."""
        parent = self.channel(channel_id)
        if parent.is_dm or parent.is_thread:
            raise ApiError(400, C.E_INVALID_CHANNEL_TYPE, "Cannot execute action on this channel type")
        message = self.visible_message(channel_id, message_id)
        if message_id in self.world.channels:
            raise ApiError(400, C.E_THREAD_ALREADY_CREATED, "A thread has already been created for this message")
        name, duration = self._thread_args(body)
        thread = self._new_thread(message_id, parent, name, duration, C.CH_PUBLIC_THREAD)
        message["flags"] = message.get("flags", 0) | C.MF_HAS_THREAD
        message["thread"] = self.world.channel_payload(thread)
        return self.world.channel_payload(thread)

    def start_thread(self, channel_id: int, body: JSON) -> JSON:
        """POST /channels/{id}/threads (a thread without a starter message)."""
        parent = self.channel(channel_id)
        if parent.is_dm or parent.is_thread:
            raise ApiError(400, C.E_INVALID_CHANNEL_TYPE, "Cannot execute action on this channel type")
        name, duration = self._thread_args(body)
        ctype = int(body.get("type") or C.CH_PRIVATE_THREAD)
        if ctype not in (C.CH_PUBLIC_THREAD, C.CH_PRIVATE_THREAD):
            raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body",
                           {"type": {"_errors": [{"code": "BASE_TYPE_CHOICES", "message": "Invalid thread type"}]}})
        thread = self._new_thread(self.new_id(), parent, name, duration, ctype)
        return self.world.channel_payload(thread)

    def edit_channel(self, channel_id: int, body: JSON) -> JSON:
        """PATCH /channels/{id}: name/topic for text channels, name/archived/locked for threads."""
        channel = self.channel(channel_id)
        if channel.is_dm:
            raise ApiError(400, C.E_INVALID_CHANNEL_TYPE, "Cannot execute action on this channel type")
        errors = FormErrors()
        if "name" in body:
            errors.bad_length(("name",), body["name"], 1, 100)
        errors.raise_if_any()
        if "name" in body:
            channel.name = body["name"]
        if "topic" in body and not channel.is_thread:
            channel.topic = body["topic"]
        if channel.is_thread:
            for key in ("archived", "locked"):
                if key in body:
                    setattr(channel, key, bool(body[key]))
                    channel.archive_timestamp = iso_now()
            if "auto_archive_duration" in body:
                channel.auto_archive_duration = int(body["auto_archive_duration"])
        data = self.world.channel_payload(channel)
        self.dispatch("THREAD_UPDATE" if channel.is_thread else "CHANNEL_UPDATE", data)
        self.notify()
        return data

    # ------------------------------------------------------------------ application commands
    def sync_commands(self, guild_id: int | None, commands: Any) -> list[JSON]:
        """PUT bulk overwrite: validate the whole list, keep ids of unchanged (type, name)."""
        validate_commands(commands)
        stored = [self._store_command(guild_id, cmd) for cmd in commands]
        self.commands.by_scope[guild_id] = stored
        self.notify()
        return copy.deepcopy(stored)

    def _store_command(self, guild_id: int | None, command: JSON) -> JSON:
        ctype = int(command.get("type", 1))
        key = (guild_id, ctype, command["name"])
        command_id = self.commands.ids.setdefault(key, self.new_id())
        data = copy.deepcopy(command)
        data.update(
            {
                "id": str(command_id),
                "application_id": str(self.ids.application_id),
                "version": str(self.new_id()),
                "type": ctype,
                "description": command.get("description", ""),
                "default_member_permissions": (
                    None if command.get("default_member_permissions") is None
                    else str(command["default_member_permissions"])
                ),
                "nsfw": command.get("nsfw", False),
            }
        )
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        else:
            data.setdefault("contexts", None)
            data.setdefault("integration_types", [0])
        return data

    def upsert_command(self, guild_id: int | None, command: JSON) -> JSON:
        """POST a single command (creates or replaces the one with the same type and name)."""
        errors = FormErrors()
        validate_command(command, errors)
        errors.raise_if_any()
        stored = self._store_command(guild_id, command)
        scope = [c for c in self.commands.by_scope.get(guild_id, []) if c["id"] != stored["id"]]
        scope.append(stored)
        self.commands.by_scope[guild_id] = scope
        self.notify()
        return copy.deepcopy(stored)

    def find_command(self, guild_id: int | None, command_id: int) -> JSON:
        """A stored command by id, or 404 Unknown application command."""
        for command in self.commands.by_scope.get(guild_id, []):
            if int(command["id"]) == command_id:
                return command
        raise ApiError(404, C.E_UNKNOWN_COMMAND, "Unknown application command")

    def delete_command(self, guild_id: int | None, command_id: int) -> None:
        """DELETE a command."""
        command = self.find_command(guild_id, command_id)
        self.commands.by_scope[guild_id] = [c for c in self.commands.by_scope[guild_id] if c is not command]
        self.notify()

    def edit_command(self, guild_id: int | None, command_id: int, body: JSON) -> JSON:
        """PATCH a command."""
        command = self.find_command(guild_id, command_id)
        merged = {k: v for k, v in command.items() if k not in ("id", "application_id", "version", "guild_id")}
        merged.update(body)
        errors = FormErrors()
        validate_command(merged, errors)
        errors.raise_if_any()
        command.update(merged)
        command["version"] = str(self.new_id())
        self.notify()
        return copy.deepcopy(command)

    # ------------------------------------------------------------------ interactions (creation)
    def _new_interaction(
        self,
        *,
        itype: int,
        name: str,
        user: FakeUser,
        channel: FakeChannel,
        data: JSON,
        message: JSON | None = None,
    ) -> FakeInteraction:
        interaction_id = self.new_id()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        guild_id = channel.guild_id
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.ids.application_id),
            "type": itype,
            "data": data,
            "channel_id": str(channel.id),
            "channel": self.world.interaction_channel_payload(channel, user),
            "token": token,
            "version": 1,
            "app_permissions": str(self.world.permissions(self.world.bot, guild_id) if guild_id
                                   else C.EVERYONE_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild_id)} if guild_id else {"1": str(user.id)},
            "context": 0 if guild_id else 1,
            "attachment_size_limit": C.ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id is not None:
            if not user.in_guild:
                raise FakeDiscordError(f"user {user.username!r} is not a member of the guild")
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
            payload["member"] = self.world.member_payload(user, with_permissions=True, guild_id=guild_id)
        else:
            payload["user"] = user.payload()
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        interaction = FakeInteraction(
            self.bridge,
            interaction_id=interaction_id,
            token=token,
            type=itype,
            name=name,
            payload=payload,
            user_id=user.id,
            channel_id=channel.id,
            guild_id=guild_id,
            deadline_s=self.interaction_deadline_s,
            token_ttl_s=self.interaction_token_ttl_s,
            message_id=int(message["id"]) if message is not None else None,
        )
        self.interactions[interaction_id] = interaction
        self.interactions_by_token[token] = interaction
        interaction.delivered_to = self.dispatch("INTERACTION_CREATE", payload)
        interaction.dispatched_at = time.monotonic()
        interaction.dispatched_wall = time.time()
        self.notify()
        return interaction

    def _interaction_channel(self, guild: bool, channel_id: int | None, user: FakeUser) -> FakeChannel:
        if channel_id is not None:
            try:
                channel = self.channel(channel_id)
            except ApiError as exc:
                raise FakeDiscordError(f"unknown channel {channel_id}") from exc
            if channel.is_dm and channel.recipient_id != user.id:
                raise FakeDiscordError(f"{user.username!r} cannot use DM channel {channel_id}")
            return channel
        return self.world.text_channel() if guild else self.world.dm_channel_for(user)

    def _lookup_command(self, root: str, ctype: int, channel: FakeChannel) -> JSON:
        scopes: list[int | None] = [channel.guild_id, None] if channel.guild_id else [None]
        for scope in scopes:
            for command in self.commands.by_scope.get(scope, []):
                if command["name"] == root and int(command.get("type", 1)) == ctype:
                    return command
        if channel.guild_id is None and any(
            c["name"] == root for scope, cmds in self.commands.by_scope.items() if scope is not None for c in cmds
        ):
            raise FakeDiscordError(f"guild command {root!r} is not available in DMs")
        synced = {str(k): [c["name"] for c in v] for k, v in self.commands.by_scope.items()}
        raise FakeDiscordError(f"command {root!r} (type {ctype}) was not synced; synced: {synced}")

    def _check_command_access(self, command: JSON, user: FakeUser, channel: FakeChannel) -> None:
        if channel.guild_id is None:
            contexts = command.get("contexts")
            if command.get("guild_id") is not None:
                raise FakeDiscordError(f"guild command {command['name']!r} is not available in DMs")
            if contexts is not None and 1 not in contexts:
                raise FakeDiscordError(f"command {command['name']!r} is not allowed in bot DMs (contexts={contexts})")
            if command.get("dm_permission") is False:
                raise FakeDiscordError(f"command {command['name']!r} has dm_permission=false")
            return
        contexts = command.get("contexts")
        if command.get("guild_id") is None and contexts is not None and 0 not in contexts:
            raise FakeDiscordError(f"command {command['name']!r} is not allowed in guilds (contexts={contexts})")
        override = self._command_override(command, user, channel.guild_id)
        if override is False:
            raise FakeDiscordError(
                f"{user.username!r} cannot see command {command['name']!r}: a server admin denied it"
            )
        required = command.get("default_member_permissions")
        if required is not None and override is None:
            needed = int(required)
            has = self.world.permissions(user, channel.guild_id)
            if has & needed != needed:
                raise FakeDiscordError(
                    f"{user.username!r} cannot see command {command['name']!r}: "
                    f"default_member_permissions={needed} but has {has}"
                )

    def set_command_permissions(self, guild_id: int, name: str, permissions: list[JSON]) -> None:
        """Replace the overrides of the guild's (or global) command ``name`` in guild ``guild_id``."""
        for scope in (guild_id, None):
            for command in self.commands.by_scope.get(scope, []):
                if command["name"] == name:
                    self.command_permissions[(guild_id, int(command["id"]))] = copy.deepcopy(permissions)
                    self.notify()
                    return
        raise FakeDiscordError(f"command {name!r} was not synced")

    def _command_override(self, command: JSON, user: FakeUser, guild_id: int | None) -> bool | None:
        """Discord's precedence: administrators always; a user override; any allowed role, else any
        denied role; the @everyone override (role id = guild id); else None (default permissions decide)."""
        if guild_id is None or self.world.permissions(user, guild_id) & C.P_ADMINISTRATOR:
            return None
        overrides = self.command_permissions.get((guild_id, int(command["id"])), [])
        for o in overrides:
            if int(o["type"]) == C.CMD_PERMISSION_USER and int(o["id"]) == user.id:
                return bool(o["permission"])
        roles = [bool(o["permission"]) for o in overrides
                 if int(o["type"]) == C.CMD_PERMISSION_ROLE and int(o["id"]) in self.world.member_roles(user, guild_id)]
        if roles:
            return any(roles)
        for o in overrides:
            if int(o["type"]) == C.CMD_PERMISSION_ROLE and int(o["id"]) == guild_id:
                return bool(o["permission"])
        return None

    def _resolve_option(self, option: JSON, value: Any, resolved: JSON, channel: FakeChannel, focused: bool) -> Any:
        otype = option["type"]
        name = option["name"]
        if focused:
            return str(value)
        if otype == C.OPT_STRING:
            if not isinstance(value, str):
                raise FakeDiscordError(f"option {name!r} expects a string, got {value!r}")
            low, high = option.get("min_length", 0), option.get("max_length", 6000)
            if not low <= len(value) <= high:
                raise FakeDiscordError(f"option {name!r}: length must be within [{low}, {high}]")
        elif otype in (C.OPT_INTEGER, C.OPT_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FakeDiscordError(f"option {name!r} expects a number, got {value!r}")
            if otype == C.OPT_INTEGER:
                if value != int(value):
                    raise FakeDiscordError(f"option {name!r} expects an integer, got {value!r}")
                value = int(value)
            low, high = option.get("min_value"), option.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise FakeDiscordError(f"option {name!r}: {value} not within [{low}, {high}]")
        elif otype == C.OPT_BOOLEAN:
            if not isinstance(value, bool):
                raise FakeDiscordError(f"option {name!r} expects a bool, got {value!r}")
        elif otype in (C.OPT_USER, C.OPT_MENTIONABLE) and not (
            otype == C.OPT_MENTIONABLE and self._role_id(value, channel.guild_id) is not None
        ):
            user = self.user(value)
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            if channel.guild_id is not None and user.in_guild:
                member = self.world.member_payload(user, with_user=False, with_permissions=True,
                                                   guild_id=channel.guild_id)
                resolved.setdefault("members", {})[str(user.id)] = member
            return str(user.id)
        elif otype in (C.OPT_ROLE, C.OPT_MENTIONABLE):
            role_id = self._role_id(value, channel.guild_id)
            if role_id is None:
                raise FakeDiscordError(f"option {name!r}: unknown role {value!r}")
            resolved.setdefault("roles", {})[str(role_id)] = self.world.roles_of(channel.guild_id)[role_id].payload()
            return str(role_id)
        elif otype == C.OPT_CHANNEL:
            target = self._channel_for_option(value)
            types = option.get("channel_types")
            if types and target.type not in types:
                raise FakeDiscordError(f"option {name!r}: channel type {target.type} not in {types}")
            entry = self.world.channel_payload(target)
            entry["permissions"] = str(self.world.permissions(self.world.bot, target.guild_id or channel.guild_id))
            resolved.setdefault("channels", {})[str(target.id)] = entry
            return str(target.id)
        elif otype == C.OPT_ATTACHMENT:
            upload = self._upload_for_option(name, value)
            attachment_id = self.new_id()
            self.files[attachment_id] = upload
            url = f"{self.base_url}/attachments/{attachment_id}/{upload.filename}"
            resolved.setdefault("attachments", {})[str(attachment_id)] = {
                "id": str(attachment_id),
                "filename": upload.filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": upload.content_type,
                "ephemeral": True,
            }
            return str(attachment_id)
        choices = option.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise FakeDiscordError(f"option {name!r}: {value!r} is not one of the choices {choices}")
        return value

    def _role_id(self, value: Any, guild_id: int | None) -> int | None:
        roles = self.world.roles_of(guild_id)
        if isinstance(value, int) and value in roles:
            return value
        if isinstance(value, str):
            for role in roles.values():
                if role.name == value or str(role.id) == value:
                    return role.id
        return None

    def _channel_for_option(self, value: Any) -> FakeChannel:
        if isinstance(value, FakeChannel):
            return value
        if isinstance(value, str) and not value.isdigit():
            for channel in self.world.channels.values():
                if channel.name == value:
                    return channel
            raise FakeDiscordError(f"unknown channel name {value!r}")
        channel = self.world.channels.get(int(value))
        if channel is None:
            raise FakeDiscordError(f"unknown channel {value!r}")
        return channel

    @staticmethod
    def _upload_for_option(name: str, value: Any) -> UploadedFile:
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, dict):
            data = value.get("content", b"")
            if isinstance(data, str):
                data = data.encode()
            return UploadedFile(value.get("filename", "file.bin"), value.get("content_type", "application/octet-stream"), data)
        if isinstance(value, bytes):
            return UploadedFile("file.bin", "application/octet-stream", value)
        raise FakeDiscordError(f"option {name!r}: attachment must be bytes or {{filename, content, content_type}}")

    def _build_options(
        self,
        schema: list[JSON],
        given: dict[str, Any],
        resolved: JSON,
        channel: FakeChannel,
        focused: str | None,
    ) -> list[JSON]:
        known = {o["name"]: o for o in schema}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise FakeDiscordError(f"unknown option(s) {unknown}; the synced schema has {sorted(known)}")
        result: list[JSON] = []
        for option in schema:
            name = option["name"]
            if name not in given:
                if option.get("required") and focused is None:
                    raise FakeDiscordError(f"required option {name!r} is missing")
                continue
            is_focused = focused == name
            if is_focused and not option.get("autocomplete"):
                raise FakeDiscordError(f"option {name!r} has no autocomplete: Discord never sends it focused")
            entry: JSON = {
                "name": name,
                "type": option["type"],
                "value": self._resolve_option(option, given[name], resolved, channel, is_focused),
            }
            if is_focused:
                entry["focused"] = True
            result.append(entry)
        return result

    def _command_data(
        self, name: str, options: dict[str, Any], channel: FakeChannel, user: FakeUser, focused: str | None = None
    ) -> tuple[JSON, JSON]:
        parts = name.split()
        if not parts:
            raise FakeDiscordError("empty command name")
        command = self._lookup_command(parts[0], 1, channel)
        self._check_command_access(command, user, channel)
        resolved: JSON = {}
        schema = command.get("options") or []
        path = parts[1:]
        subcommand_types = (C.OPT_SUB_COMMAND, C.OPT_SUB_COMMAND_GROUP)
        has_subcommands = any(o.get("type") in subcommand_types for o in schema)
        if has_subcommands and not path:
            names = [o["name"] for o in schema]
            raise FakeDiscordError(f"command {parts[0]!r} needs a subcommand: {names}")

        def descend(level: list[JSON], remaining: list[str]) -> list[JSON]:
            if not remaining:
                if any(o.get("type") in subcommand_types for o in level):
                    raise FakeDiscordError(f"{name!r} needs a subcommand")
                return self._build_options(level, options, resolved, channel, focused)
            head = remaining[0]
            for option in level:
                if option["name"] == head and option.get("type") in subcommand_types:
                    inner = descend(option.get("options") or [], remaining[1:])
                    return [{"name": head, "type": option["type"], "options": inner}]
            raise FakeDiscordError(f"unknown subcommand {head!r} in {name!r}")

        built = descend(schema, path)
        data: JSON = {"id": command["id"], "name": command["name"], "type": 1, "options": built}
        if command.get("guild_id") is not None:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data, command

    def create_slash(
        self, name: str, options: dict[str, Any], user: FakeUser, guild: bool, channel_id: int | None
    ) -> FakeInteraction:
        """Dispatch an APPLICATION_COMMAND interaction for a synced chat-input command."""
        channel = self._interaction_channel(guild, channel_id, user)
        data, _ = self._command_data(name, options, channel, user)
        return self._new_interaction(itype=C.IT_APPLICATION_COMMAND, name=name, user=user, channel=channel, data=data)

    def create_message_command(self, name: str, message: JSON | int | str, user: FakeUser) -> FakeInteraction:
        """Dispatch an APPLICATION_COMMAND for a synced message context menu (``data.type`` 3) run by
        ``user`` on ``message``: ``target_id`` and the message in ``resolved.messages``, as Discord sends."""
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.messages_by_id.get(message_id)
        meta = self.message_meta.get(message_id)
        if stored is None or meta is None or meta.deleted:
            raise FakeDiscordError(f"unknown (or deleted) message {message_id}")
        if meta.ephemeral and meta.interaction_id is not None:
            owner = self.interactions[meta.interaction_id].user_id
            if owner != user.id:
                raise FakeDiscordError(f"ephemeral message {message_id} is only visible to user {owner}")
        channel = self.world.channels[int(stored["channel_id"])]
        if channel.is_dm and channel.recipient_id != user.id:
            raise FakeDiscordError(f"{user.username!r} cannot see DM channel {channel.id}")
        command = self._lookup_command(name, C.CMD_MESSAGE, channel)
        self._check_command_access(command, user, channel)
        data: JSON = {"id": command["id"], "name": command["name"], "type": C.CMD_MESSAGE, "target_id": str(message_id),
                      "resolved": {"messages": {str(message_id): copy.deepcopy(stored)}}}
        if command.get("guild_id") is not None:
            data["guild_id"] = command["guild_id"]
        return self._new_interaction(itype=C.IT_APPLICATION_COMMAND, name=name, user=user, channel=channel, data=data)

    def create_autocomplete(
        self, name: str, options: dict[str, Any], focused: str, user: FakeUser, guild: bool, channel_id: int | None
    ) -> FakeInteraction:
        """Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE interaction (``focused`` option is partial text)."""
        channel = self._interaction_channel(guild, channel_id, user)
        if focused not in options:
            raise FakeDiscordError(f"focused option {focused!r} must be given in options")
        data, _ = self._command_data(name, options, channel, user, focused=focused)
        return self._new_interaction(itype=C.IT_AUTOCOMPLETE, name=name, user=user, channel=channel, data=data)

    @staticmethod
    def _find_component(components: list[JSON], custom_id: str) -> JSON | None:
        for component in components:
            if component.get("custom_id") == custom_id:
                return component
            for key in ("components",):
                found = Core._find_component(component.get(key) or [], custom_id)
                if found is not None:
                    return found
            for key in ("accessory", "component"):
                child = component.get(key)
                if isinstance(child, dict):
                    found = Core._find_component([child], custom_id)
                    if found is not None:
                        return found
        return None

    def create_component(
        self, message: JSON | int | str, custom_id: str, user: FakeUser, values: list[Any] | None
    ) -> FakeInteraction:
        """Dispatch a MESSAGE_COMPONENT interaction: a click / selection on a bot message."""
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.messages_by_id.get(message_id)
        meta = self.message_meta.get(message_id)
        if stored is None or meta is None or meta.deleted:
            raise FakeDiscordError(f"unknown (or deleted) message {message_id}")
        if int(stored["author"]["id"]) != self.ids.bot_id:
            raise FakeDiscordError(f"message {message_id} was not sent by the bot")
        if meta.ephemeral and meta.interaction_id is not None:
            owner = self.interactions[meta.interaction_id].user_id
            if owner != user.id:
                raise FakeDiscordError(f"ephemeral message {message_id} is only visible to user {owner}")
        component = self._find_component(stored.get("components") or [], custom_id)
        if component is None:
            raise FakeDiscordError(f"message {message_id} has no component with custom_id {custom_id!r}")
        if component.get("disabled"):
            raise FakeDiscordError(f"component {custom_id!r} is disabled")
        ctype = int(component["type"])
        data: JSON = {"custom_id": custom_id, "component_type": ctype}
        if ctype in C.SELECT_TYPES:
            data["values"] = self._select_values(component, values or [], "select")
        elif values:
            raise FakeDiscordError("values are only for select menus")
        channel = self.world.channels[int(stored["channel_id"])]
        return self._new_interaction(
            itype=C.IT_MESSAGE_COMPONENT, name=custom_id, user=user, channel=channel, data=data, message=stored
        )

    def create_modal_submit(
        self, source: FakeInteraction, values: dict[str, str | list[str]], user: FakeUser
    ) -> FakeInteraction:
        """Dispatch a MODAL_SUBMIT for a modal the bot opened (type 9 response to ``source``).

        ``values``: a text input's text, or the list of values picked in a select (which must be among
        its options, as many as its min/max allow). What the user leaves alone is submitted as the
        modal set it (a text input's ``value``, no values for a select), and refused if required.
        """
        modal = source.modal
        if modal is None:
            raise FakeDiscordError(f"{source!r} did not open a modal")
        if user.id != source.user_id:
            raise FakeDiscordError(f"the modal of {source!r} was shown to user {source.user_id}, not {user.id}")
        submitted: list[JSON] = []
        seen: set[str] = set()
        for row in modal.get("components") or []:
            if row.get("type") == C.COMP_LABEL and isinstance(row.get("component"), dict):
                inputs = [row["component"]]
            else:
                inputs = row.get("components") or []
            answers = [self._modal_answer(component, values) for component in inputs]
            seen.update(str(component.get("custom_id")) for component in inputs)
            if row.get("type") == C.COMP_LABEL:
                submitted.extend({"type": C.COMP_LABEL, "component": a} for a in answers)
            else:
                submitted.append({"type": C.COMP_ACTION_ROW, "components": answers})
        unknown = sorted(set(values) - seen)
        if unknown:
            raise FakeDiscordError(f"modal has no fields {unknown}")
        channel = self.world.channels[source.channel_id]
        data = {"custom_id": modal["custom_id"], "components": submitted}
        message = self.messages_by_id.get(source.message_id) if source.message_id else None
        return self._new_interaction(
            itype=C.IT_MODAL_SUBMIT, name=modal["custom_id"], user=user, channel=channel, data=data, message=message
        )

    @staticmethod
    def _select_values(component: JSON, values: list[Any], what: str) -> list[str]:
        """The values picked in a select, if a user could pick them: within min/max, among the options."""
        custom_id = component.get("custom_id")
        chosen = [str(v) for v in values]
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        if not low <= len(chosen) <= high:
            raise FakeDiscordError(f"{what} {custom_id!r} needs between {low} and {high} values")
        if int(component["type"]) == C.COMP_STRING_SELECT:
            allowed = {o["value"] for o in component.get("options") or []}
            bad = [v for v in chosen if v not in allowed]
            if bad:
                raise FakeDiscordError(f"{what} {custom_id!r}: {bad} not among options {sorted(allowed)}")
        return chosen

    @staticmethod
    def _modal_answer(component: JSON, values: dict[str, str | list[str]]) -> JSON:
        """What Discord sends for one input of a submitted modal, checked against the input's rules."""
        custom_id = component.get("custom_id")
        ctype = component.get("type", C.COMP_TEXT_INPUT)
        given = values.get(custom_id) if custom_id is not None else None
        if ctype in C.SELECT_TYPES:
            if isinstance(given, str):
                raise FakeDiscordError(f"modal select {custom_id!r} takes a list of values")
            if not given and component.get("required", True):
                raise FakeDiscordError(f"modal select {custom_id!r} is required")
            chosen = Core._select_values(component, given, "modal select") if given else []
            return {"type": ctype, "custom_id": custom_id, "values": chosen}
        if isinstance(given, list):
            raise FakeDiscordError(f"modal field {custom_id!r} takes text, not a list")
        value = given if given is not None else component.get("value") or ""
        if component.get("required", True) and not value:
            raise FakeDiscordError(f"modal field {custom_id!r} is required")
        low, high = component.get("min_length", 0), component.get("max_length", 4000)
        if value and not low <= len(value) <= high:
            raise FakeDiscordError(f"modal field {custom_id!r}: length must be within [{low}, {high}]")
        return {"type": ctype, "custom_id": custom_id, "value": value}

    # ------------------------------------------------------------------ interactions (responses)
    _ALLOWED_CALLBACKS = {
        C.IT_PING: {C.CB_PONG},
        C.IT_APPLICATION_COMMAND: {C.CB_CHANNEL_MESSAGE, C.CB_DEFERRED_CHANNEL_MESSAGE, C.CB_MODAL, C.CB_LAUNCH_ACTIVITY},
        C.IT_MESSAGE_COMPONENT: {
            C.CB_CHANNEL_MESSAGE,
            C.CB_DEFERRED_CHANNEL_MESSAGE,
            C.CB_DEFERRED_UPDATE_MESSAGE,
            C.CB_UPDATE_MESSAGE,
            C.CB_MODAL,
        },
        C.IT_AUTOCOMPLETE: {C.CB_AUTOCOMPLETE_RESULT},
        C.IT_MODAL_SUBMIT: {
            C.CB_CHANNEL_MESSAGE,
            C.CB_DEFERRED_CHANNEL_MESSAGE,
            C.CB_DEFERRED_UPDATE_MESSAGE,
            C.CB_UPDATE_MESSAGE,
        },
    }

    def _visible(self, interaction: FakeInteraction, payload: JSON, source: str) -> None:
        meta = self.message_meta[int(payload["id"])]
        entry = copy.deepcopy(payload)
        entry.update(
            {
                "allowed_mentions": copy.deepcopy(meta.allowed_mentions),
                "ephemeral": meta.ephemeral,
                "source": source,
            }
        )
        interaction.visible.append(entry)

    def interaction_callback(
        self, interaction_id: int, token: str, body: Any, uploads: list[UploadedFile]
    ) -> JSON:
        """POST /interactions/{id}/{token}/callback. Returns the InteractionCallbackResponse body."""
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise ApiError(404, C.E_UNKNOWN_INTERACTION, "Unknown interaction")
        now = time.monotonic()
        try:
            result = self._callback(interaction, body, uploads, now)
        except ApiError as exc:
            interaction.callback_attempts.append((now, copy.deepcopy(body), exc.status))
            self.notify()
            raise
        interaction.callback_attempts.append((now, copy.deepcopy(body), 200))
        self.notify()
        return result

    def _callback(self, interaction: FakeInteraction, body: Any, uploads: list[UploadedFile], now: float) -> JSON:
        if interaction.acknowledged:
            raise ApiError(400, C.E_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        if now - interaction.dispatched_at > interaction.deadline_s:
            raise ApiError(404, C.E_UNKNOWN_INTERACTION, "Unknown interaction")
        if not isinstance(body, dict) or "type" not in body:
            raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body",
                           {"type": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}})
        cb_type = int(body["type"])
        data = body.get("data") or {}
        if cb_type not in self._ALLOWED_CALLBACKS.get(interaction.type, set()):
            raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body", {
                "type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                      "message": f"Interaction response type {cb_type} is invalid here"}]}})
        channel = self.world.channels[interaction.channel_id]
        resource: JSON | None = None
        message: JSON | None = None
        if cb_type == C.CB_CHANNEL_MESSAGE:
            validate_message_body(data, prefix=("data",))
            flags = int(data.get("flags") or 0) & C.CLIENT_SETTABLE_FLAGS
            message = self.build_message(
                channel=channel, author=self.world.bot, body=data, msg_type=self._response_msg_type(interaction),
                flags=flags, uploads=uploads, interaction=interaction,
            )
            check_not_empty(message)
            interaction.original_message_id = int(message["id"])
            meta = MessageMeta("interaction", bool(flags & C.MF_EPHEMERAL), allowed_mentions=data.get("allowed_mentions"),
                               interaction_id=interaction.id)
            self.store_message(message, meta)
            self._visible(interaction, message, "interaction")
        elif cb_type == C.CB_DEFERRED_CHANNEL_MESSAGE:
            flags = C.MF_LOADING | (int(data.get("flags") or 0) & C.MF_EPHEMERAL)
            message = self.build_message(
                channel=channel, author=self.world.bot, body={}, msg_type=self._response_msg_type(interaction),
                flags=flags, interaction=interaction,
            )
            interaction.original_message_id = int(message["id"])
            meta = MessageMeta("interaction", bool(flags & C.MF_EPHEMERAL), interaction_id=interaction.id, loading=True)
            self.store_message(message, meta)
        elif cb_type in (C.CB_DEFERRED_UPDATE_MESSAGE, C.CB_UPDATE_MESSAGE):
            if interaction.message_id is None:
                raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body", {"type": {"_errors": [
                    {"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "There is no message to update"}]}})
            interaction.original_message_id = interaction.message_id
            if cb_type == C.CB_UPDATE_MESSAGE:
                validate_message_body(data, prefix=("data",))
                current = self.messages_by_id[interaction.message_id]
                message = self.apply_edit(current, data, uploads)
                check_not_empty(message)
                self.replace_message(message, allowed=data.get("allowed_mentions"))
                self._visible(interaction, message, "interaction")
        elif cb_type == C.CB_AUTOCOMPLETE_RESULT:
            validate_autocomplete(data)
            interaction.autocomplete_choices = copy.deepcopy(data.get("choices"))
        elif cb_type == C.CB_MODAL:
            validate_modal(data)
            interaction.modal = copy.deepcopy(data)
        interaction.callback = {"type": cb_type, "data": copy.deepcopy(data)}
        interaction.callback_at = now
        if message is not None:
            resource = {"type": cb_type, "message": copy.deepcopy(message)}
        response: JSON = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "activity_instance_id": None,
                "response_message_id": str(interaction.original_message_id) if interaction.original_message_id else None,
                "response_message_loading": cb_type == C.CB_DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(message and message.get("flags", 0) & C.MF_EPHEMERAL),
            }
        }
        if resource is not None:
            response["resource"] = resource
        return response

    @staticmethod
    def _response_msg_type(interaction: FakeInteraction) -> int:
        return C.MSG_CHAT_INPUT_COMMAND if interaction.type == C.IT_APPLICATION_COMMAND else C.MSG_DEFAULT

    def webhook_interaction(self, application_id: int, token: str) -> FakeInteraction:
        """The interaction behind a webhook (app id, token) pair, enforcing token rules."""
        interaction = self.interactions_by_token.get(token)
        if application_id != self.ids.application_id or interaction is None:
            raise ApiError(404, C.E_UNKNOWN_WEBHOOK, "Unknown Webhook")
        if interaction.expired():
            raise ApiError(401, C.E_INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        if not interaction.acknowledged:
            raise ApiError(404, C.E_UNKNOWN_WEBHOOK, "Unknown Webhook")
        return interaction

    def followup(self, interaction: FakeInteraction, body: JSON, uploads: list[UploadedFile]) -> JSON:
        """POST /webhooks/{app}/{token}: the first follow-up after a type 5 defer fills the loading message."""
        validate_message_body(body)
        original = self.messages_by_id.get(interaction.original_message_id or 0)
        original_meta = self.message_meta.get(interaction.original_message_id or 0)
        if original is not None and original_meta is not None and original_meta.loading and not original_meta.deleted:
            merged = self.apply_edit(original, {**body, "flags": None}, uploads)
            merged["flags"] = (original.get("flags", 0) & C.MF_EPHEMERAL) | (
                int(body.get("flags") or 0) & (C.MF_SUPPRESS_EMBEDS | C.MF_IS_COMPONENTS_V2)
            )
            merged["edited_timestamp"] = None
            check_not_empty(merged)
            original_meta.loading = False
            self.replace_message(merged, source="followup", allowed=body.get("allowed_mentions"))
            payload = merged
        else:
            flags = int(body.get("flags") or 0) & C.CLIENT_SETTABLE_FLAGS
            channel = self.world.channels[interaction.channel_id]
            payload = self.build_message(
                channel=channel, author=self.world.bot, body=body, msg_type=self._response_msg_type(interaction),
                flags=flags, uploads=uploads, interaction=interaction,
            )
            check_not_empty(payload)
            meta = MessageMeta("followup", bool(flags & C.MF_EPHEMERAL), allowed_mentions=body.get("allowed_mentions"),
                               interaction_id=interaction.id)
            self.store_message(payload, meta)
        interaction.followups.append(copy.deepcopy(payload))
        self._visible(interaction, payload, "followup")
        self.notify()
        return payload

    def _webhook_target(self, interaction: FakeInteraction, message_ref: str) -> JSON:
        if message_ref == "@original":
            message_id = interaction.original_message_id
        else:
            message_id = int(message_ref)
            own = {int(m["id"]) for m in interaction.followups} | {interaction.original_message_id or 0}
            if message_id not in own:
                message_id = None
        payload = self.messages_by_id.get(message_id or 0)
        meta = self.message_meta.get(message_id or 0)
        if payload is None or meta is None or meta.deleted:
            raise ApiError(404, C.E_UNKNOWN_MESSAGE, "Unknown Message")
        return payload

    def webhook_get(self, interaction: FakeInteraction, message_ref: str) -> JSON:
        """GET /webhooks/{app}/{token}/messages/{id|@original}."""
        return copy.deepcopy(self._webhook_target(interaction, message_ref))

    def webhook_edit(self, interaction: FakeInteraction, message_ref: str, body: JSON, uploads: list[UploadedFile]) -> JSON:
        """PATCH /webhooks/{app}/{token}/messages/{id|@original}."""
        payload = self._webhook_target(interaction, message_ref)
        validate_message_body(body)
        meta = self.message_meta[int(payload["id"])]
        updated = self.apply_edit(payload, body, uploads)
        if meta.loading:
            updated["flags"] = updated.get("flags", 0) & ~C.MF_LOADING
            meta.loading = False
        check_not_empty(updated)
        self.replace_message(updated, allowed=body.get("allowed_mentions"))
        interaction.edits.append(copy.deepcopy(updated))
        self._visible(interaction, updated, "edit")
        self.notify()
        return updated

    def webhook_delete(self, interaction: FakeInteraction, message_ref: str) -> None:
        """DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        payload = self._webhook_target(interaction, message_ref)
        self.delete_message(int(payload["id"]))

    # ------------------------------------------------------------------ user-side messages
    def create_forum_post(self, forum_id: int, title: str, content: str, *, author: FakeUser) -> JSON:
        """A member's new post in a forum: a public thread (THREAD_CREATE) whose first message has the
        thread's id (MESSAGE_CREATE in the thread). Returns the message."""
        forum = self.world.channels.get(int(forum_id))
        if forum is None or forum.type != C.CH_GUILD_FORUM:
            raise FakeDiscordError(f"channel {forum_id} is not a forum")
        if not author.in_guild:
            raise FakeDiscordError(f"{author.username!r} is not a guild member")
        if not 1 <= len(title) <= C.MAX_THREAD_NAME or not content.strip():
            raise FakeDiscordError("a forum post needs a title (1-100 characters) and a message")
        thread = FakeChannel(self.new_id(), C.CH_PUBLIC_THREAD, name=title, guild_id=forum.guild_id,
                             parent_id=forum.id, owner_id=author.id, members={author.id})
        self.world.channels[thread.id] = thread
        data = self.world.channel_payload(thread)
        data["newly_created"] = True
        self.dispatch("THREAD_CREATE", data)
        body: JSON = {"content": content, "embeds": []}
        payload = self.build_message(channel=thread, author=author, body=body, msg_type=C.MSG_DEFAULT)
        payload["id"] = str(thread.id)  # a post's first message has the thread's id
        validate_message_body(body)
        self.store_message(payload, MessageMeta(source="user"))
        return copy.deepcopy(payload)

    def create_user_message(
        self,
        content: str,
        *,
        author: FakeUser,
        mentions_bot: bool,
        channel_id: int | None,
        thread: int | None,
        dm: bool,
        reply_to: JSON | int | None,
        embeds: list[JSON] | None,
    ) -> JSON:
        """A message written by a user (or another bot / the bot itself), dispatched as MESSAGE_CREATE."""
        if dm:
            if author.id == self.ids.bot_id:
                raise FakeDiscordError("the bot cannot DM itself")
            channel = self.world.dm_channel_for(author)
        else:
            target = thread if thread is not None else channel_id
            channel = self.world.text_channel() if target is None else self.world.channels.get(int(target))
            if channel is None:
                raise FakeDiscordError(f"unknown channel {target}")
            if thread is not None and not channel.is_thread:
                raise FakeDiscordError(f"channel {thread} is not a thread")
            if not channel.is_dm and not author.in_guild:
                raise FakeDiscordError(f"{author.username!r} is not a guild member")
        mention = f"<@{self.ids.bot_id}>"
        if mentions_bot and mention not in content and f"<@!{self.ids.bot_id}>" not in content:
            content = f"{mention} {content}"
        referenced = None
        if reply_to is not None:
            ref_id = int(reply_to["id"]) if isinstance(reply_to, dict) else int(reply_to)
            try:
                referenced = self.visible_message(channel.id, ref_id)
            except ApiError as exc:
                raise FakeDiscordError(f"cannot reply to message {ref_id} in channel {channel.id}") from exc
        body: JSON = {"content": content, "embeds": embeds or []}
        payload = self.build_message(
            channel=channel,
            author=author,
            body=body,
            msg_type=C.MSG_REPLY if referenced else C.MSG_DEFAULT,
            referenced=referenced,
        )
        try:
            check_not_empty(payload)
            validate_message_body(body)
        except ApiError as exc:
            raise FakeDiscordError(f"Discord would not let a user send this: {exc.body()}") from exc
        self.store_message(payload, MessageMeta(source="user"))
        return copy.deepcopy(payload)
