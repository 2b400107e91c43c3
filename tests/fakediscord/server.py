"""``FakeDiscord``: a local Discord (REST + gateway) on 127.0.0.1 for the real discord.py client.

The server runs an aiohttp app on its own event loop in a daemon thread, so it serves an
in-process client (any loop, any thread) and a bot in a subprocess alike. Public methods are
thread-safe: they hop onto the fake's loop with ``run_coroutine_threadsafe``. Methods that
wait come in two flavours: ``wait_x`` blocks the calling thread (use it from a sync test while
the bot runs elsewhere) and ``async_wait_x`` is awaitable from another event loop (use it
inside the in-process client's loop; never block that loop with a sync ``wait_x``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from . import constants as C
from .core import Core, RateLimitRule
from .gateway import Gateway
from .records import (
    ConnectionRecord,
    FakeInteraction,
    HeartbeatMiss,
    RateLimitRecord,
    Rejection,
    RequestRecord,
    SessionRecord,
)
from .rest import Rest
from .world import JSON, WorldIds, shard_of

_log = logging.getLogger(__name__)

T = TypeVar("T")

ENV_API_BASE = "NEWSBOT_DISCORD_API_BASE"
ENV_GATEWAY = "NEWSBOT_DISCORD_GATEWAY"


class FakeDiscord:
    """A fake Discord API + gateway bound to ``127.0.0.1`` on a free port.

    Usage::

        with FakeDiscord() as fake:
            env = {**os.environ, **fake.env()}          # for ``python -m bot``
            ...
            fake.wait_ready(10)
            interaction = fake.send_slash("ask", {"question": "what happened?"})
            reply = interaction.wait_response(10)
    """

    def __init__(
        self,
        token: str = "test-token",
        heartbeat_interval_ms: int = 1000,
        *,
        ids: WorldIds | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        interaction_deadline_s: float = C.INTERACTION_DEADLINE_S,
        interaction_token_ttl_s: float = C.INTERACTION_TOKEN_TTL_S,
        gateway_compression: bool = True,
        close_on_heartbeat_miss: bool = True,
        allowed_privileged_intents: int = C.PRIVILEGED_INTENTS,
        rest_bucket_limit: int = 50,
        rest_bucket_window_s: float = 1.0,
        max_guilds_per_shard: int = C.MAX_GUILDS_PER_SHARD,
        recommended_guilds_per_shard: int = C.RECOMMENDED_GUILDS_PER_SHARD,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("FakeDiscord only binds to loopback")
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ids = ids or WorldIds()
        self._host = host
        self._requested_port = port
        self._options = {
            "interaction_deadline_s": interaction_deadline_s,
            "interaction_token_ttl_s": interaction_token_ttl_s,
            "gateway_compression": gateway_compression,
            "close_on_heartbeat_miss": close_on_heartbeat_miss,
            "allowed_privileged_intents": allowed_privileged_intents,
            "rest_bucket_limit": rest_bucket_limit,
            "rest_bucket_window_s": rest_bucket_window_s,
            "max_guilds_per_shard": max_guilds_per_shard,
            "recommended_guilds_per_shard": recommended_guilds_per_shard,
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._core: Core | None = None
        self._gateway: Gateway | None = None
        self._rest: Rest | None = None

    # ================================================================== lifecycle
    def start(self) -> FakeDiscord:
        """Start serving (idempotent). Returns ``self``."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        sock.listen(128)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fakediscord-{self._port}", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure:
            self._thread = None
            raise RuntimeError("FakeDiscord failed to start") from failure[0]
        _log.info("fake discord listening on %s (gateway %s)", self.api_base, self.gateway_url)
        return self

    async def _serve(self, sock: socket.socket) -> None:
        opts = self._options
        core = Core(
            token=self.token,
            ids=self.ids,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            interaction_deadline_s=float(opts["interaction_deadline_s"]),
            interaction_token_ttl_s=float(opts["interaction_token_ttl_s"]),
            bridge=self,
        )
        core.base_url = self.base_url
        gateway = Gateway(
            core,
            compression=bool(opts["gateway_compression"]),
            close_on_heartbeat_miss=bool(opts["close_on_heartbeat_miss"]),
            allowed_privileged_intents=int(opts["allowed_privileged_intents"]),
            max_guilds_per_shard=int(opts["max_guilds_per_shard"]),
        )
        gateway.resume_url = self.resume_gateway_url
        core.gateway = gateway
        rest = Rest(core, gateway, bucket_limit=int(opts["rest_bucket_limit"]),
                    bucket_window_s=float(opts["rest_bucket_window_s"]),
                    recommended_guilds_per_shard=int(opts["recommended_guilds_per_shard"]))
        rest.gateway_url = self.gateway_url
        self._core, self._gateway, self._rest = core, gateway, rest
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", C.API_PREFIX + "/{tail:.*}", rest.handle)
        app.router.add_get("/", gateway.handle)
        app.router.add_get("/resume", gateway.handle)
        app.router.add_get("/gateway", gateway.handle)
        app.router.add_get("/attachments/{attachment_id:\\d+}/{filename}", rest.attachment)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    def stop(self) -> None:
        """Close gateway connections, stop the server and its thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return

        async def shutdown() -> None:
            if self._gateway is not None:
                await self._gateway.shutdown()
            if self._runner is not None:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = None
        self._loop = None
        _log.info("fake discord on port %s stopped", self._port)

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ================================================================== addresses
    @property
    def port(self) -> int:
        """The TCP port (after ``start()``)."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``: ``http://127.0.0.1:PORT/api/v10``."""
        return self.base_url + C.API_PREFIX

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY``: ``ws://127.0.0.1:PORT/``."""
        return "ws" + self.base_url[len("http"):] + "/"

    @property
    def resume_gateway_url(self) -> str:
        """The ``resume_gateway_url`` sent in READY (same server, path ``/resume``)."""
        return "ws" + self.base_url[len("http"):] + "/resume"

    def env(self, token_var: str | None = "DISCORD_TOKEN", guild_var: str | None = None) -> dict[str, str]:
        """Environment for a bot subprocess: ``NEWSBOT_DISCORD_API_BASE``, ``NEWSBOT_DISCORD_GATEWAY``,
        the token under ``token_var`` and, when ``guild_var`` is given, the guild id under it."""
        env = {ENV_API_BASE: self.api_base, ENV_GATEWAY: self.gateway_url}
        if token_var:
            env[token_var] = self.token
        if guild_var:
            env[guild_var] = str(self.ids.guild_id)
        return env

    # ================================================================== thread bridging
    @property
    def core(self) -> Core:
        """The loop-bound state (advanced use; touch it only from the fake's loop)."""
        if self._core is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._core

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._thread is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._loop

    def _call_sync(self, factory: Callable[[], Awaitable[T]], timeout: float) -> T:
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("blocking FakeDiscord call from the fake's own loop")

        async def runner() -> T:
            return await factory()

        future = asyncio.run_coroutine_threadsafe(runner(), loop)
        try:
            return future.result(timeout + 5.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("fake discord call timed out") from None

    async def _call_async(self, factory: Callable[[], Awaitable[T]], timeout: float) -> T:
        loop = self._running_loop()

        async def runner() -> T:
            return await factory()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(runner(), loop))

    async def _wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        return await self.core.wait_for(predicate, timeout, what)

    def _run(self, fn: Callable[[], T]) -> T:
        """Run a quick synchronous function on the fake's loop and return its result.

        Called on the fake's own thread (e.g. inside a ``wait_until`` predicate) it runs directly.
        """
        if threading.current_thread() is self._thread:
            return fn()

        async def call() -> T:
            return fn()

        return self._call_sync(call, 10.0)

    # ================================================================== records
    @property
    def requests(self) -> list[RequestRecord]:
        """Every REST request answered so far (method, path, query, status, timestamp, body ...)."""
        return list(self.core.requests)

    @property
    def rejections(self) -> list[Rejection]:
        """Every request/gateway action refused for breaking a Discord rule (4xx except injected 429s)."""
        return list(self.core.rejections)

    @property
    def rate_limited(self) -> list[RateLimitRecord]:
        """Every 429 sent (injected or real)."""
        return list(self.core.rate_limited)

    @property
    def messages(self) -> list[JSON]:
        """Snapshots of every message created / edited / deleted, oldest first.

        Each is the Discord message payload plus ``event`` ("create" | "edit" | "delete"),
        ``source`` ("channel" | "interaction" | "followup" | "user"), ``ephemeral``,
        ``allowed_mentions`` (as the client sent them), ``interaction_id`` and ``recorded_at``.
        """
        return list(self.core.messages_log)

    @property
    def heartbeat_misses(self) -> list[HeartbeatMiss]:
        """Connections that went more than 1.5 heartbeat intervals without a heartbeat."""
        return list(self.core.heartbeat_misses)

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every gateway connection (heartbeat times, identify/resume, close code ...)."""
        return list(self.core.connections)

    @property
    def interactions(self) -> list[FakeInteraction]:
        """Every interaction dispatched, oldest first."""
        return self._run(lambda: list(self.core.interactions.values()))

    @property
    def typing_events(self) -> list[tuple[int, float]]:
        """(channel_id, monotonic time) of every POST /channels/{id}/typing."""
        return list(self.core.typing)

    @property
    def reactions(self) -> list[JSON]:
        """Reactions the bot added / removed."""
        return list(self.core.reactions)

    @property
    def presences(self) -> list[JSON]:
        """op 3 presence updates the client sent."""
        return list(self.core.presences)

    @property
    def unhandled_routes(self) -> list[tuple[str, str]]:
        """(method, path) of API requests no route matched (a gap in the fake or a client bug)."""
        return list(self.core.unhandled)

    @property
    def identify_count(self) -> int:
        """How many IDENTIFYs succeeded."""
        return self._gateway.identify_count if self._gateway else 0

    @property
    def resume_count(self) -> int:
        """How many RESUMEs succeeded."""
        return self._gateway.resume_count if self._gateway else 0

    @property
    def sessions(self) -> list[SessionRecord]:
        """Every gateway session identified so far, oldest first: its shard, its guilds and every
        dispatch it was sent (to check which shard got which event)."""
        gateway = self._gateway
        if gateway is None:
            return []
        return self._run(gateway.session_records)

    def recipients(self, event: str, predicate: Callable[[JSON], bool] | None = None) -> list[SessionRecord]:
        """The sessions that were sent an ``event`` dispatch whose data ``predicate`` accepts."""
        return [s for s in self.sessions if s.received(event, predicate)]

    @property
    def intents(self) -> int | None:
        """Intents of the most recent session, ``None`` before any IDENTIFY."""
        gateway = self._gateway
        if gateway is None:
            return None
        sessions = self._run(lambda: list(gateway.sessions.values()))
        return sessions[-1].intents if sessions else None

    def max_heartbeat_gap(self) -> float:
        """Largest gap (s) between HELLO/heartbeats on any connection, including a still-open one's current gap."""
        now = time.monotonic()
        gaps = [g for conn in self.connections for g in conn.heartbeat_gaps(now)]
        return max(gaps, default=0.0)

    def mark(self) -> int:
        """Current length of ``messages``; pass it as ``since=`` to only see newer messages."""
        return len(self.core.messages_log)

    # ================================================================== world
    def add_user(
        self, username: str, *, bot: bool = False, roles: list[int] | None = None, in_guild: bool = True
    ) -> int:
        """Add a user (guild member by default) usable as ``user=username``; returns its id."""

        def add() -> int:
            user_id = self.core.new_id()
            self.core.world.add_user(user_id, username, bot=bot, roles=roles, in_guild=in_guild)
            return user_id

        return self._run(add)

    def add_guild(
        self, name: str, *, guild_id: int | None = None, shard: tuple[int, int] | None = None
    ) -> WorldIds:
        """Add a guild the bot is in, mirroring the first one (the same members with the same roles,
        a text channel ``general``); returns its ids (``guild_id``, ``channel_id``, ``moderator_role_id``,
        ``bot_role_id``; the user ids are shared). ``shard=(shard_id, num_shards)`` picks an id whose
        events go to that shard. Connected sessions of its shard get its GUILD_CREATE, as when the bot
        joins a guild."""
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"invalid shard {shard}")

        def add() -> WorldIds:
            world = self.core.world
            gid = guild_id
            if gid is None:
                base = self.core.new_id()
                gid = base
                if shard is not None:  # move the timestamp part forward onto the shard
                    gid = base + (((shard[0] - shard_of(base, shard[1])) % shard[1]) << 22)
            elif shard is not None and shard_of(gid, shard[1]) != shard[0]:
                raise ValueError(f"guild {gid} is on shard {shard_of(gid, shard[1])} of {shard[1]}, not {shard[0]}")
            guild = world.add_guild(name, gid)
            assert self._gateway is not None
            self._gateway.guild_available(gid)
            return dataclasses.replace(
                self.ids, guild_id=gid, channel_id=guild.channel_id,
                moderator_role_id=guild.role_map[self.ids.moderator_role_id],
                bot_role_id=guild.role_map[self.ids.bot_role_id],
            )

        return self._run(add)

    def guild_ids(self) -> list[int]:
        """Ids of every guild, the first (``ids.guild_id``) first."""
        return self._run(lambda: self.core.world.guild_ids())

    @staticmethod
    def shard_of(guild_id: int, shard_count: int) -> int:
        """The shard that gets the guild's events: ``(guild_id >> 22) % shard_count``."""
        return shard_of(guild_id, shard_count)

    def delay_guild_create(self, seconds: float) -> None:
        """Send the guild's GUILD_CREATE ``seconds`` after READY on the sessions identified from now
        on (0: at once, the default). On Discord the guilds come after READY, sometimes seconds after:
        until then the client has no guild, channel or member in its cache."""
        if seconds < 0:
            raise ValueError("the delay must not be negative")

        def apply() -> None:
            assert self._gateway is not None, "start the fake first"
            self._gateway.guild_create_delay_s = float(seconds)

        self._run(apply)

    def add_channel(self, name: str, *, topic: str | None = None, guild_id: int | None = None) -> int:
        """Create a guild text channel, as a server admin would (dispatched as CHANNEL_CREATE); its id."""

        def add() -> int:
            channel = self.core.world.add_text_channel(name, topic=topic, guild_id=guild_id)
            self.core.dispatch("CHANNEL_CREATE", self.core.world.channel_payload(channel))
            self.core.notify()
            return channel.id

        return self._run(add)

    def add_forum_channel(self, name: str, *, guild_id: int | None = None) -> int:
        """Create a guild forum channel (dispatched as CHANNEL_CREATE); its id."""

        def add() -> int:
            channel = self.core.world.add_forum_channel(name, guild_id=guild_id)
            self.core.dispatch("CHANNEL_CREATE", self.core.world.channel_payload(channel))
            self.core.notify()
            return channel.id

        return self._run(add)

    def user_id(self, who: str | int) -> int:
        """Id of a fake user ("user", "admin", "owner", "other_bot", "bot" or a username)."""
        return self._run(lambda: self.core.user(who).id)

    def channel(self, channel_id: int) -> JSON:
        """Current payload of a channel / thread / DM."""
        return self._run(lambda: self.core.world.channel_payload(self.core.world.channels[channel_id]))

    def threads(self) -> list[JSON]:
        """Payloads of every thread."""
        return self._run(
            lambda: [self.core.world.channel_payload(c) for c in self.core.world.channels.values() if c.is_thread]
        )

    def message(self, message_id: int | str) -> JSON:
        """Current state of a stored message."""
        return self._run(lambda: copy.deepcopy(self.core.messages_by_id[int(message_id)]))

    def commands(self, guild_id: int | None = None) -> list[JSON]:
        """The application commands the client synced (global when ``guild_id`` is None)."""
        return self._run(lambda: copy.deepcopy(self.core.commands.by_scope.get(guild_id, [])))

    def set_command_permissions(
        self, name: str, overrides: dict[str | int, bool], *, guild_id: int | None = None
    ) -> None:
        """What a server admin does in Server Settings -> Integrations: allow or deny command ``name``
        for users (by alias, name or id) or roles (by role id; the guild id is @everyone).

        Overrides beat ``default_member_permissions``, as on Discord: a member allowed here can use
        a Manage Server command without Manage Server, so the bot must check at run time.
        """

        gid = self.ids.guild_id if guild_id is None else guild_id

        def apply() -> None:
            entries = []
            for target, allowed in overrides.items():
                role = isinstance(target, int) and target in self.core.world.roles_of(gid)
                target_id = target if role else self.core.user(target).id
                kind = C.CMD_PERMISSION_ROLE if role else C.CMD_PERMISSION_USER
                entries.append({"id": str(target_id), "type": kind, "permission": bool(allowed)})
            self.core.set_command_permissions(gid, name, entries)

        self._run(apply)

    # ================================================================== waiting
    def wait_until(self, predicate: Callable[[FakeDiscord], T], timeout: float = 10.0, what: str = "condition") -> T:
        """Block until ``predicate(fake)`` is truthy (evaluated on the fake's loop after every change)."""
        return self._call_sync(lambda: self.core.wait_for(lambda: predicate(self), timeout, what), timeout)

    async def async_wait_until(
        self, predicate: Callable[[FakeDiscord], T], timeout: float = 10.0, what: str = "condition"
    ) -> T:
        """Awaitable :meth:`wait_until`."""
        return await self._call_async(lambda: self.core.wait_for(lambda: predicate(self), timeout, what), timeout)

    def _ready_predicate(self, count: int) -> Callable[[], bool]:
        return lambda: self._gateway is not None and self._gateway.ready_count >= count

    def wait_ready(self, timeout: float = 10.0, count: int = 1) -> None:
        """Block until ``count`` sessions identified and READY + GUILD_CREATE were sent."""
        self._call_sync(lambda: self.core.wait_for(self._ready_predicate(count), timeout, "gateway READY"), timeout)

    async def async_wait_ready(self, timeout: float = 10.0, count: int = 1) -> None:
        """Awaitable :meth:`wait_ready`."""
        await self._call_async(lambda: self.core.wait_for(self._ready_predicate(count), timeout, "gateway READY"), timeout)

    def _message_predicate(
        self, predicate: Callable[[JSON], bool] | None, since: int, include_user_messages: bool
    ) -> Callable[[], JSON | None]:
        def check() -> JSON | None:
            for entry in self.core.messages_log[since:]:
                if entry["source"] == "user" and not include_user_messages:
                    continue
                if predicate is None or predicate(entry):
                    return copy.deepcopy(entry)
            return None

        return check

    def wait_message(
        self,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
        include_user_messages: bool = False,
    ) -> JSON:
        """Block until an entry of ``messages[since:]`` matches ``predicate`` and return it.

        Messages written through ``send_message`` are skipped unless ``include_user_messages``.
        """
        check = self._message_predicate(predicate, since, include_user_messages)
        return self._call_sync(lambda: self.core.wait_for(check, timeout, "a matching message"), timeout)

    async def async_wait_message(
        self,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
        include_user_messages: bool = False,
    ) -> JSON:
        """Awaitable :meth:`wait_message`."""
        check = self._message_predicate(predicate, since, include_user_messages)
        return await self._call_async(lambda: self.core.wait_for(check, timeout, "a matching message"), timeout)

    # ================================================================== acting as users
    def send_slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: str | int = "user",
        guild: bool = True,
        channel_id: int | None = None,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE (type 2) for a synced chat-input command.

        ``name`` may include subcommands (``"news latest"``). ``options`` values are checked and
        typed against the synced schema (users / roles / channels by alias, name or id; attachments
        as ``{"filename", "content", "content_type"}``). ``guild=False`` sends it from the user's DM.
        Raises :class:`FakeDiscordError` if a real user could not issue this command.
        """
        return self._run(
            lambda: self.core.create_slash(name, dict(options or {}), self.core.user(user), guild, channel_id)
        )

    def send_message_command(self, name: str, message: JSON | int | str, *, user: str | int = "user") -> FakeInteraction:
        """Run the message context menu ``name`` (Apps -> name, on a message) as ``user``: INTERACTION_CREATE
        type 2 with ``data.type`` 3. Raises :class:`FakeDiscordError` if a real user could not."""
        return self._run(lambda: self.core.create_message_command(name, message, self.core.user(user)))

    def send_autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        user: str | int = "user",
        guild: bool = True,
        channel_id: int | None = None,
    ) -> FakeInteraction:
        """Dispatch an autocomplete interaction (type 4); the ``focused`` option value is the partial text."""
        return self._run(
            lambda: self.core.create_autocomplete(
                name, dict(options), focused, self.core.user(user), guild, channel_id
            )
        )

    def send_component(
        self,
        message: JSON | int | str,
        custom_id: str,
        *,
        user: str | int = "user",
        values: list[Any] | None = None,
    ) -> FakeInteraction:
        """Dispatch a component interaction (type 3): press a button / pick select ``values`` on a bot message."""
        return self._run(lambda: self.core.create_component(message, custom_id, self.core.user(user), values))

    def send_modal_submit(
        self, interaction: FakeInteraction, values: dict[str, str | list[str]], *, user: str | int | None = None
    ) -> FakeInteraction:
        """Submit the modal the bot opened in response to ``interaction`` (type 5): text for a text
        input, a list of option values for a select."""
        return self._run(
            lambda: self.core.create_modal_submit(
                interaction, values, self.core.user(user if user is not None else interaction.user_id)
            )
        )

    def send_message(
        self,
        content: str,
        *,
        author: str | int = "user",
        mentions_bot: bool = False,
        channel_id: int | None = None,
        thread: int | None = None,
        dm: bool = False,
        reply_to: JSON | int | None = None,
        embeds: list[JSON] | None = None,
    ) -> JSON:
        """Dispatch MESSAGE_CREATE for a message written by ``author`` (a user, ``"other_bot"`` or ``"bot"``).

        ``mentions_bot`` prefixes ``<@BOT_ID>`` and fills ``mentions``; ``thread`` posts in a thread;
        ``dm`` posts in the author's DM with the bot; ``reply_to`` makes it a reply. Returns the payload.
        """
        return self._run(
            lambda: self.core.create_user_message(
                content,
                author=self.core.user(author),
                mentions_bot=mentions_bot,
                channel_id=channel_id,
                thread=thread,
                dm=dm,
                reply_to=reply_to,
                embeds=embeds,
            )
        )

    def create_forum_post(self, forum_id: int, title: str, content: str, *, author: str | int = "user") -> JSON:
        """A new post in a forum by ``author``: THREAD_CREATE, then MESSAGE_CREATE of its first message
        (whose id is the thread's). Returns that message."""
        return self._run(lambda: self.core.create_forum_post(forum_id, title, content, author=self.core.user(author)))

    # ================================================================== fault injection
    def rate_limit_next(
        self, method: str, path_regex: str, retry_after: float = 0.5, count: int = 1, *, is_global: bool = False
    ) -> None:
        """Answer the next ``count`` requests matching ``method`` ("*" for any) and ``path_regex`` with 429.

        ``path_regex`` is searched in the path relative to the API base, e.g. ``r"^/webhooks/"``.
        """
        rule = RateLimitRule(method.upper(), re.compile(path_regex), retry_after, count, is_global)
        self._run(lambda: self.core.rate_limit_rules.append(rule))

    def drop_gateway(self, code: int | None = 4000, *, invalidate_session: bool = False) -> int:
        """Close every gateway connection with ``code`` (``None``: abort TCP, an abnormal 1006 closure).

        The session stays resumable unless ``invalidate_session``. Returns how many were dropped.
        """
        gateway = self._gateway
        assert gateway is not None
        return self._call_sync(lambda: gateway.drop(code, invalidate_session), 10.0)

    def request_reconnect(self) -> int:
        """Send op 7 RECONNECT on every live connection (the client should resume)."""
        gateway = self._gateway
        assert gateway is not None
        return self._call_sync(gateway.send_reconnect, 10.0)

    def invalidate_session(self, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION (``resumable`` is its ``d``)."""
        gateway = self._gateway
        assert gateway is not None
        return self._call_sync(lambda: gateway.send_invalid_session(resumable), 10.0)


@contextlib.contextmanager
def point_discord_py_at(fake: FakeDiscord | None = None, *, api_base: str | None = None,
                        gateway_url: str | None = None) -> Iterator[None]:
    """Temporarily set ``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` (in-process tests)."""
    import discord.gateway
    import discord.http
    import yarl

    base = api_base or (fake.api_base if fake else None)
    gateway = gateway_url or (fake.gateway_url if fake else None)
    if base is None or gateway is None:
        raise ValueError("give a FakeDiscord or both api_base and gateway_url")
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
