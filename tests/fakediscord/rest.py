"""The fake REST API (``/api/v10/...``): routing, auth, rate-limit headers, body parsing, logging."""

from __future__ import annotations

import copy
import json
import logging
import math
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import constants as C
from .core import Core, UploadedFile
from .records import RateLimitRecord, RequestRecord
from .validation import ApiError
from .world import JSON

if TYPE_CHECKING:
    from .gateway import Gateway

_log = logging.getLogger(__name__)

Reply = tuple[int, Any]
ID = r"(?P<{}>\d+)"


@dataclass
class RestRequest:
    """A parsed API request handed to route handlers."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    uploads: list[UploadedFile] = field(default_factory=list)

    def int(self, name: str) -> int:
        """An id path parameter as int."""
        return int(self.params[name])

    def flag(self, name: str) -> bool:
        """A boolean query parameter (``true`` / ``1``)."""
        return self.query.get(name, "").lower() in ("1", "true")


Handler = Callable[[RestRequest], Awaitable[Reply]]


@dataclass
class Route:
    """One API route."""

    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    auth: bool
    major: str | None


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name in re.findall(r"\{(\w+)\}", template):
        group = rf"(?P<{name}>[^/]+)" if name in ("token", "emoji", "message_ref") else ID.format(name)
        pattern = pattern.replace(re.escape("{" + name + "}"), group)
    return re.compile(f"^{pattern}$")


class Rest:
    """aiohttp request handler implementing the API routes discord.py uses."""

    def __init__(
        self, core: Core, gateway: Gateway, *, bucket_limit: int = 50, bucket_window_s: float = 1.0,
        recommended_guilds_per_shard: int = C.RECOMMENDED_GUILDS_PER_SHARD,
    ) -> None:
        self.core = core
        self.recommended_guilds_per_shard = recommended_guilds_per_shard
        self.gateway = gateway
        self.bucket_limit = bucket_limit
        self.bucket_window_s = bucket_window_s
        self.gateway_url = ""
        self._buckets: dict[str, tuple[float, int]] = {}
        self.routes: list[Route] = []
        self._register()

    # ------------------------------------------------------------------ routing table
    def _add(self, method: str, template: str, handler: Handler, *, auth: bool = True, major: str | None = None) -> None:
        self.routes.append(Route(method, template, _compile(template), handler, auth, major))

    def _register(self) -> None:
        a = self._add
        a("GET", "/gateway", self.get_gateway, auth=False)
        a("GET", "/gateway/bot", self.get_gateway_bot)
        a("GET", "/users/@me", self.get_me)
        a("PATCH", "/users/@me", self.get_me)
        a("POST", "/users/@me/channels", self.create_dm)
        a("GET", "/users/{user_id}", self.get_user)
        a("GET", "/oauth2/applications/@me", self.get_application)
        a("GET", "/applications/@me", self.get_application)
        a("PATCH", "/applications/@me", self.get_application)
        app = "/applications/{application_id}"
        a("GET", app + "/commands", self.list_commands)
        a("PUT", app + "/commands", self.put_commands)
        a("POST", app + "/commands", self.post_command)
        a("GET", app + "/commands/{command_id}", self.get_command)
        a("PATCH", app + "/commands/{command_id}", self.patch_command)
        a("DELETE", app + "/commands/{command_id}", self.delete_command)
        guild_cmds = app + "/guilds/{guild_id}/commands"
        a("GET", guild_cmds, self.list_commands, major="guild_id")
        a("PUT", guild_cmds, self.put_commands, major="guild_id")
        a("POST", guild_cmds, self.post_command, major="guild_id")
        a("GET", guild_cmds + "/permissions", self.empty_list, major="guild_id")
        a("GET", guild_cmds + "/{command_id}", self.get_command, major="guild_id")
        a("PATCH", guild_cmds + "/{command_id}", self.patch_command, major="guild_id")
        a("DELETE", guild_cmds + "/{command_id}", self.delete_command, major="guild_id")
        a("GET", app + "/emojis", self.empty_items)
        a("GET", app + "/entitlements", self.empty_list)
        a("GET", app + "/skus", self.empty_list)
        ch = "/channels/{channel_id}"
        a("GET", ch, self.get_channel, major="channel_id")
        a("PATCH", ch, self.patch_channel, major="channel_id")
        a("GET", ch + "/messages", self.list_messages, major="channel_id")
        a("POST", ch + "/messages", self.post_message, major="channel_id")
        a("GET", ch + "/messages/{message_id}", self.get_message, major="channel_id")
        a("PATCH", ch + "/messages/{message_id}", self.patch_message, major="channel_id")
        a("DELETE", ch + "/messages/{message_id}", self.delete_message, major="channel_id")
        a("POST", ch + "/messages/{message_id}/threads", self.thread_from_message, major="channel_id")
        a("PUT", ch + "/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction, major="channel_id")
        a("DELETE", ch + "/messages/{message_id}/reactions/{emoji}/@me", self.remove_reaction, major="channel_id")
        a("POST", ch + "/threads", self.thread_without_message, major="channel_id")
        a("PUT", ch + "/thread-members/@me", self.join_thread, major="channel_id")
        a("DELETE", ch + "/thread-members/@me", self.leave_thread, major="channel_id")
        a("GET", ch + "/thread-members", self.thread_members, major="channel_id")
        a("POST", ch + "/typing", self.typing, major="channel_id")
        g = "/guilds/{guild_id}"
        a("GET", g, self.get_guild, major="guild_id")
        a("GET", g + "/channels", self.guild_channels, major="guild_id")
        a("GET", g + "/roles", self.guild_roles, major="guild_id")
        a("GET", g + "/members", self.guild_members, major="guild_id")
        a("GET", g + "/members/{user_id}", self.guild_member, major="guild_id")
        a("GET", g + "/threads/active", self.active_threads, major="guild_id")
        a("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback, auth=False,
          major="interaction_id")
        wh = "/webhooks/{application_id}/{token}"
        a("POST", wh, self.webhook_post, auth=False, major="token")
        a("GET", wh + "/messages/{message_ref}", self.webhook_get, auth=False, major="token")
        a("PATCH", wh + "/messages/{message_ref}", self.webhook_patch, auth=False, major="token")
        a("DELETE", wh + "/messages/{message_ref}", self.webhook_delete, auth=False, major="token")

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        path_matched = False
        for route in self.routes:
            m = route.regex.match(path)
            if m is None:
                continue
            path_matched = True
            if route.method == method:
                return route, m.groupdict(), True
        return None, {}, path_matched

    # ------------------------------------------------------------------ HTTP plumbing
    @staticmethod
    def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
        """A reply with ``Content-Type: application/json`` exactly (discord.py compares the header verbatim)."""
        all_headers = dict(headers or {})
        if data is None:
            return web.Response(status=status, headers=all_headers)
        all_headers["Content-Type"] = "application/json"
        return web.Response(status=status, body=json.dumps(data).encode(), headers=all_headers)

    def _bucket_headers(self, route: Route, params: dict[str, str]) -> tuple[dict[str, str], float | None]:
        """Sliding rate-limit window per (route, major parameter). Returns headers and retry_after if exhausted."""
        bucket_hash = format(abs(hash((route.method, route.template))) % (1 << 40), "x")
        key = f"{bucket_hash}:{params.get(route.major or '', '')}"
        now = time.monotonic()
        start, count = self._buckets.get(key, (now, 0))
        if now - start >= self.bucket_window_s:
            start, count = now, 0
        count += 1
        self._buckets[key] = (start, count)
        reset_after = max(0.001, self.bucket_window_s - (now - start))
        remaining = max(0, self.bucket_limit - count)
        headers = {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
        }
        return headers, reset_after if count > self.bucket_limit else None

    @staticmethod
    def _rate_limited_response(retry_after: float, bucket: str, *, is_global: bool) -> web.Response:
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Scope": "global" if is_global else "user",
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        return Rest.json_response(429, body, headers)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if request.content_type == "multipart/form-data":
            payload: Any = None
            indexed: list[tuple[int, UploadedFile]] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                name = getattr(part, "name", None) or ""
                if name == "payload_json":
                    payload = json.loads(await part.text())  # type: ignore[union-attr]
                elif name.startswith("files["):
                    data = bytes(await part.read())  # type: ignore[union-attr]
                    filename = getattr(part, "filename", None) or "file"
                    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
                    index = int(re.sub(r"\D", "", name) or 0)
                    indexed.append((index, UploadedFile(filename, guessed, data)))
            return payload, [f for _, f in sorted(indexed, key=lambda x: x[0])]
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError as exc:
            raise ApiError(400, C.E_INVALID_JSON, "The request body contains invalid JSON.") from exc

    def _interaction_id_for(self, route: Route | None, params: dict[str, str]) -> int | None:
        if route is None:
            return None
        if "interaction_id" in params:
            return int(params["interaction_id"])
        token = params.get("token")
        interaction = self.core.interactions_by_token.get(token or "")
        return interaction.id if interaction else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every ``/api/v10/...`` request."""
        core = self.core
        method = request.method.upper()
        path = request.path[len(C.API_PREFIX):] or "/"
        query = dict(request.query)
        route, params, path_matched = self._match(method, path)
        body: Any = None
        status = 500
        error_code: int | None = None
        try:
            injected = self._take_injection(method, path)
            if injected is not None:
                retry_after, is_global = injected
                bucket = "injected"
                core.rate_limited.append(RateLimitRecord(method, path, retry_after, bucket, True, time.time()))
                status = 429
                return self._rate_limited_response(retry_after, bucket, is_global=is_global)
            try:
                if route is None:
                    core.unhandled.append((method, path))
                    if path_matched:
                        raise ApiError(405, C.E_GENERAL, "405: Method Not Allowed")
                    raise ApiError(404, C.E_GENERAL, "404: Not Found")
                if route.auth and request.headers.get("Authorization") != f"Bot {core.token}":
                    raise ApiError(401, C.E_GENERAL, "401: Unauthorized")
                headers, retry_after = ({}, None)
                if route.major != "interaction_id":
                    headers, retry_after = self._bucket_headers(route, params)
                if retry_after is not None:
                    bucket = headers["X-RateLimit-Bucket"]
                    core.rate_limited.append(RateLimitRecord(method, path, retry_after, bucket, False, time.time()))
                    core.reject(method, path, ApiError(429, C.E_GENERAL, "You are being rate limited."))
                    status = 429
                    return self._rate_limited_response(retry_after, bucket, is_global=False)
                body, uploads = await self._read_body(request)
                status, data = await route.handler(RestRequest(method, path, params, query, body, uploads))
                return self.json_response(status, data, headers)
            except ApiError as exc:
                status = exc.status
                error_code = exc.code
                core.reject(method, path, exc, body, self._interaction_id_for(route, params))
                return self.json_response(exc.status, exc.body())
        except Exception:  # noqa: BLE001 - a bug in the fake must surface as a 500, not a hung client
            _log.exception("fake discord: error handling %s %s", method, path)
            status = 500
            return self.json_response(500, {"message": "500: Internal Server Error", "code": 0})
        finally:
            core.requests.append(
                RequestRecord(
                    method=method,
                    path=path,
                    query=query,
                    status=status,
                    timestamp=time.time(),
                    monotonic=time.monotonic(),
                    body=copy.deepcopy(body),
                    route=f"{route.method} {route.template}" if route else "",
                    error_code=error_code,
                )
            )
            core.notify()

    def _take_injection(self, method: str, path: str) -> tuple[float, bool] | None:
        for rule in self.core.rate_limit_rules:
            if rule.remaining > 0 and rule.method in ("*", method) and rule.pattern.search(path):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.core.rate_limit_rules.remove(rule)
                return rule.retry_after, rule.is_global
        return None

    # ------------------------------------------------------------------ checks
    def _check_app(self, req: RestRequest) -> None:
        if req.int("application_id") != self.core.ids.application_id:
            raise ApiError(403, C.E_MISSING_ACCESS, "Missing Access")

    def _check_guild(self, req: RestRequest, *, commands: bool = False) -> int:
        guild_id = req.int("guild_id")
        if guild_id not in self.core.world.guilds:
            if commands:
                raise ApiError(403, C.E_MISSING_ACCESS, "Missing Access")
            raise ApiError(404, C.E_UNKNOWN_GUILD, "Unknown Guild")
        return guild_id

    def _scope(self, req: RestRequest) -> int | None:
        self._check_app(req)
        return self._check_guild(req, commands=True) if "guild_id" in req.params else None

    @staticmethod
    def _json_object(req: RestRequest) -> JSON:
        if not isinstance(req.body, dict):
            raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body",
                           {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used"}]})
        return req.body

    # ------------------------------------------------------------------ handlers: misc
    async def get_gateway(self, req: RestRequest) -> Reply:
        """GET /gateway."""
        return 200, {"url": self.gateway_url}

    async def get_gateway_bot(self, req: RestRequest) -> Reply:
        """GET /gateway/bot: the recommended shard count is one per ``recommended_guilds_per_shard`` guilds."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
        shards = max(1, math.ceil(len(self.core.world.guilds) / self.recommended_guilds_per_shard))
        return 200, {"url": self.gateway_url, "shards": shards, "session_start_limit": limit}

    async def get_me(self, req: RestRequest) -> Reply:
        """GET (or PATCH) /users/@me."""
        return 200, self.core.world.me_payload()

    async def get_user(self, req: RestRequest) -> Reply:
        """GET /users/{id}."""
        user = self.core.world.users.get(req.int("user_id"))
        if user is None:
            raise ApiError(404, C.E_UNKNOWN_USER, "Unknown User")
        return 200, user.payload()

    async def create_dm(self, req: RestRequest) -> Reply:
        """POST /users/@me/channels."""
        body = self._json_object(req)
        user = self.core.world.users.get(int(body.get("recipient_id") or 0))
        if user is None:
            raise ApiError(404, C.E_UNKNOWN_USER, "Unknown User")
        return 200, self.core.world.channel_payload(self.core.world.dm_channel_for(user))

    async def get_application(self, req: RestRequest) -> Reply:
        """GET /oauth2/applications/@me and /applications/@me."""
        return 200, self.core.world.application_payload()

    async def empty_list(self, req: RestRequest) -> Reply:
        """Routes that always answer ``[]``."""
        if "application_id" in req.params:
            self._check_app(req)
        return 200, []

    async def empty_items(self, req: RestRequest) -> Reply:
        """Routes that answer ``{"items": []}``."""
        self._check_app(req)
        return 200, {"items": []}

    # ------------------------------------------------------------------ handlers: commands
    async def list_commands(self, req: RestRequest) -> Reply:
        """GET application commands."""
        scope = self._scope(req)
        return 200, copy.deepcopy(self.core.commands.by_scope.get(scope, []))

    async def put_commands(self, req: RestRequest) -> Reply:
        """PUT bulk overwrite."""
        scope = self._scope(req)
        return 200, self.core.sync_commands(scope, req.body)

    async def post_command(self, req: RestRequest) -> Reply:
        """POST one command."""
        scope = self._scope(req)
        return 201, self.core.upsert_command(scope, self._json_object(req))

    async def get_command(self, req: RestRequest) -> Reply:
        """GET one command."""
        scope = self._scope(req)
        return 200, copy.deepcopy(self.core.find_command(scope, req.int("command_id")))

    async def patch_command(self, req: RestRequest) -> Reply:
        """PATCH one command."""
        scope = self._scope(req)
        return 200, self.core.edit_command(scope, req.int("command_id"), self._json_object(req))

    async def delete_command(self, req: RestRequest) -> Reply:
        """DELETE one command."""
        scope = self._scope(req)
        self.core.delete_command(scope, req.int("command_id"))
        return 204, None

    # ------------------------------------------------------------------ handlers: channels
    async def get_channel(self, req: RestRequest) -> Reply:
        """GET /channels/{id}."""
        return 200, self.core.world.channel_payload(self.core.channel(req.int("channel_id")))

    async def patch_channel(self, req: RestRequest) -> Reply:
        """PATCH /channels/{id}."""
        return 200, self.core.edit_channel(req.int("channel_id"), self._json_object(req))

    async def list_messages(self, req: RestRequest) -> Reply:
        """GET /channels/{id}/messages (newest first, limit/before/after/around)."""
        channel_id = req.int("channel_id")
        self.core.channel(channel_id)
        try:
            limit = int(req.query.get("limit", "50"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            raise ApiError(400, C.E_INVALID_FORM_BODY, "Invalid Form Body", {"limit": {"_errors": [
                {"code": "NUMBER_TYPE_MAX", "message": "int value should be between 1 and 100."}]}})
        history = self.core.channel_history(channel_id)
        if "before" in req.query:
            history = [m for m in history if int(m["id"]) < int(req.query["before"])]
            history = history[-limit:]
        elif "after" in req.query:
            history = [m for m in history if int(m["id"]) > int(req.query["after"])][:limit]
        elif "around" in req.query:
            around = int(req.query["around"])
            older = [m for m in history if int(m["id"]) <= around][-(limit // 2 + 1):]
            newer = [m for m in history if int(m["id"]) > around][: limit - len(older)]
            history = older + newer
        else:
            history = history[-limit:]
        return 200, copy.deepcopy(list(reversed(history)))

    async def post_message(self, req: RestRequest) -> Reply:
        """POST /channels/{id}/messages."""
        body = self._json_object(req)
        return 200, copy.deepcopy(self.core.create_channel_message(req.int("channel_id"), body, req.uploads))

    async def get_message(self, req: RestRequest) -> Reply:
        """GET /channels/{id}/messages/{id}."""
        self.core.channel(req.int("channel_id"))
        return 200, copy.deepcopy(self.core.visible_message(req.int("channel_id"), req.int("message_id")))

    async def patch_message(self, req: RestRequest) -> Reply:
        """PATCH /channels/{id}/messages/{id}."""
        body = self._json_object(req)
        updated = self.core.edit_channel_message(req.int("channel_id"), req.int("message_id"), body, req.uploads)
        return 200, copy.deepcopy(updated)

    async def delete_message(self, req: RestRequest) -> Reply:
        """DELETE /channels/{id}/messages/{id}."""
        self.core.delete_channel_message(req.int("channel_id"), req.int("message_id"))
        return 204, None

    async def thread_from_message(self, req: RestRequest) -> Reply:
        """POST /channels/{id}/messages/{id}/threads."""
        body = self._json_object(req)
        return 201, self.core.start_thread_from_message(req.int("channel_id"), req.int("message_id"), body)

    async def thread_without_message(self, req: RestRequest) -> Reply:
        """POST /channels/{id}/threads."""
        return 201, self.core.start_thread(req.int("channel_id"), self._json_object(req))

    async def add_reaction(self, req: RestRequest) -> Reply:
        """PUT .../reactions/{emoji}/@me."""
        self.core.visible_message(req.int("channel_id"), req.int("message_id"))
        self.core.reactions.append(
            {"channel_id": req.int("channel_id"), "message_id": req.int("message_id"), "emoji": req.params["emoji"],
             "added": True, "at": time.monotonic()}
        )
        return 204, None

    async def remove_reaction(self, req: RestRequest) -> Reply:
        """DELETE .../reactions/{emoji}/@me."""
        self.core.visible_message(req.int("channel_id"), req.int("message_id"))
        self.core.reactions.append(
            {"channel_id": req.int("channel_id"), "message_id": req.int("message_id"), "emoji": req.params["emoji"],
             "added": False, "at": time.monotonic()}
        )
        return 204, None

    def _thread(self, req: RestRequest) -> Any:
        channel = self.core.channel(req.int("channel_id"))
        if not channel.is_thread:
            raise ApiError(400, C.E_INVALID_CHANNEL_TYPE, "Cannot execute action on this channel type")
        return channel

    async def join_thread(self, req: RestRequest) -> Reply:
        """PUT /channels/{id}/thread-members/@me."""
        self._thread(req).members.add(self.core.ids.bot_id)
        return 204, None

    async def leave_thread(self, req: RestRequest) -> Reply:
        """DELETE /channels/{id}/thread-members/@me."""
        self._thread(req).members.discard(self.core.ids.bot_id)
        return 204, None

    async def thread_members(self, req: RestRequest) -> Reply:
        """GET /channels/{id}/thread-members."""
        thread = self._thread(req)
        return 200, [
            {"id": str(thread.id), "user_id": str(uid), "join_timestamp": thread.created_at, "flags": 0}
            for uid in sorted(thread.members)
        ]

    async def typing(self, req: RestRequest) -> Reply:
        """POST /channels/{id}/typing."""
        channel = self.core.channel(req.int("channel_id"))
        self.core.typing.append((channel.id, time.monotonic()))
        return 204, None

    # ------------------------------------------------------------------ handlers: guild
    async def get_guild(self, req: RestRequest) -> Reply:
        """GET /guilds/{id}."""
        guild_id = self._check_guild(req)
        data = self.core.world.guild_payload(guild_id)
        if req.flag("with_counts"):
            data["approximate_member_count"] = len(self.core.world.guild_members())
            data["approximate_presence_count"] = 0
        return 200, data

    async def guild_channels(self, req: RestRequest) -> Reply:
        """GET /guilds/{id}/channels."""
        guild_id = self._check_guild(req)
        world = self.core.world
        return 200, [world.channel_payload(c) for c in world.guild_channels(guild_id) if not c.is_thread]

    async def guild_roles(self, req: RestRequest) -> Reply:
        """GET /guilds/{id}/roles."""
        guild_id = self._check_guild(req)
        return 200, [r.payload() for r in self.core.world.roles_of(guild_id).values()]

    async def guild_members(self, req: RestRequest) -> Reply:
        """GET /guilds/{id}/members."""
        guild_id = self._check_guild(req)
        world = self.core.world
        return 200, [world.member_payload(u, guild_id=guild_id) for u in world.guild_members()]

    async def guild_member(self, req: RestRequest) -> Reply:
        """GET /guilds/{id}/members/{user_id}."""
        guild_id = self._check_guild(req)
        user = self.core.world.users.get(req.int("user_id"))
        if user is None or not user.in_guild:
            raise ApiError(404, C.E_UNKNOWN_MEMBER, "Unknown Member")
        return 200, self.core.world.member_payload(user, guild_id=guild_id)

    async def active_threads(self, req: RestRequest) -> Reply:
        """GET /guilds/{id}/threads/active."""
        guild_id = self._check_guild(req)
        world = self.core.world
        threads = [c for c in world.guild_channels(guild_id) if c.is_thread and not c.archived]
        members = [
            {"id": str(t.id), "user_id": str(self.core.ids.bot_id), "join_timestamp": t.created_at, "flags": 0}
            for t in threads
            if self.core.ids.bot_id in t.members
        ]
        return 200, {"threads": [world.channel_payload(t) for t in threads], "members": members}

    # ------------------------------------------------------------------ handlers: interactions
    async def interaction_callback(self, req: RestRequest) -> Reply:
        """POST /interactions/{id}/{token}/callback (``with_response`` decides 200 JSON vs 204)."""
        result = self.core.interaction_callback(req.int("interaction_id"), req.params["token"], req.body, req.uploads)
        return (200, result) if req.flag("with_response") else (204, None)

    async def webhook_post(self, req: RestRequest) -> Reply:
        """POST /webhooks/{app}/{token}: an interaction follow-up (``wait`` decides 200 vs 204)."""
        interaction = self.core.webhook_interaction(req.int("application_id"), req.params["token"])
        payload = self.core.followup(interaction, self._json_object(req), req.uploads)
        return (200, copy.deepcopy(payload)) if req.flag("wait") else (204, None)

    async def webhook_get(self, req: RestRequest) -> Reply:
        """GET /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self.core.webhook_interaction(req.int("application_id"), req.params["token"])
        return 200, self.core.webhook_get(interaction, req.params["message_ref"])

    async def webhook_patch(self, req: RestRequest) -> Reply:
        """PATCH /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self.core.webhook_interaction(req.int("application_id"), req.params["token"])
        updated = self.core.webhook_edit(interaction, req.params["message_ref"], self._json_object(req), req.uploads)
        return 200, copy.deepcopy(updated)

    async def webhook_delete(self, req: RestRequest) -> Reply:
        """DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        interaction = self.core.webhook_interaction(req.int("application_id"), req.params["token"])
        self.core.webhook_delete(interaction, req.params["message_ref"])
        return 204, None

    # ------------------------------------------------------------------ CDN
    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """GET /attachments/{id}/{filename}: bytes of an uploaded file."""
        upload = self.core.files.get(int(request.match_info["attachment_id"]))
        if upload is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=upload.data, headers={"Content-Type": upload.content_type})
