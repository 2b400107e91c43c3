"""The fake gateway: HELLO / IDENTIFY / READY / HEARTBEAT / RESUME over a websocket.

Dispatches carry sequence numbers and are kept per session so a RESUME replays what the
client missed. Transport compression (``compress=zlib-stream``) is honoured when asked for.

Sharding, as Discord routes it: a session identified with ``shard = [shard_id, num_shards]`` gets
the events of the guilds with ``(guild_id >> 22) % num_shards == shard_id`` and, only when
``shard_id`` is 0, the events that belong to no guild (DMs); an unsharded session is ``[0, 1]``.
Each session is routed on its own, so several sessions may identify the same shard (or use
different ``num_shards``) and then all of them get its events, which Discord allows for
zero-downtime hand-overs. An invalid shard array closes with 4010; a session that would handle more
than ``max_guilds_per_shard`` guilds closes with 4011 (sharding required).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import constants as C
from .records import ConnectionRecord, HeartbeatMiss, Rejection, SessionRecord
from .world import JSON, shard_of

if TYPE_CHECKING:
    from .core import Core

_log = logging.getLogger(__name__)

GUILD_EVENTS_PREFIXES = ("GUILD_", "CHANNEL_", "THREAD_")
#: Events whose ``d`` is the guild itself (its id under ``id``, not ``guild_id``).
GUILD_OBJECT_EVENTS = {"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"}
MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}
GATEWAY_RATE_LIMIT = 120
GATEWAY_RATE_WINDOW_S = 60.0


@dataclass
class Session:
    """A gateway session (what IDENTIFY creates and RESUME continues)."""

    id: str
    intents: int
    shard: tuple[int, int] | None
    seq: int = 0
    events: list[tuple[int, str]] = field(default_factory=list)
    connection: Connection | None = None
    invalidated: bool = False
    disconnected_at: float | None = None

    def routes(self, guild_id: int | None) -> bool:
        """Whether this session gets the events of ``guild_id`` (``None``: events of no guild, DMs)."""
        shard_id, count = self.shard or (0, 1)
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, count) == shard_id


def event_guild(event: str, data: JSON) -> int | None:
    """The guild an event belongs to, ``None`` for DMs and other guild-less events."""
    raw = data.get("id") if event in GUILD_OBJECT_EVENTS else data.get("guild_id")
    return int(raw) if raw is not None else None


@dataclass
class Connection:
    """Live websocket plus its record."""

    record: ConnectionRecord
    ws: web.WebSocketResponse
    request: web.Request
    compressor: Any = None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    session: Session | None = None
    ready: bool = False
    closing: bool = False
    event_times: deque[float] = field(default_factory=deque)
    miss_reported_for: float | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class Gateway:
    """Gateway websocket server bound to a :class:`~.core.Core`."""

    def __init__(
        self,
        core: Core,
        *,
        compression: bool = True,
        close_on_heartbeat_miss: bool = True,
        resume_window_s: float = 120.0,
        allowed_privileged_intents: int = C.PRIVILEGED_INTENTS,
        max_guilds_per_shard: int = C.MAX_GUILDS_PER_SHARD,
    ) -> None:
        self.core = core
        self.max_guilds_per_shard = max_guilds_per_shard
        self.compression = compression
        self.close_on_heartbeat_miss = close_on_heartbeat_miss
        self.resume_window_s = resume_window_s
        self.allowed_privileged_intents = allowed_privileged_intents
        self.sessions: dict[str, Session] = {}
        self.connections: list[Connection] = []
        self.identify_count = 0
        self.resume_count = 0
        self.ready_count = 0
        self.guild_create_delay_s = 0.0
        """Seconds between READY and the guild's GUILD_CREATE on a new session (Discord sends the
        guilds after READY, lazily; until then the guild is unavailable to the client)."""
        self._ids = itertools.count(1)
        self.resume_url = ""

    # ------------------------------------------------------------------ sessions / dispatch
    def live_sessions(self) -> list[Session]:
        """Sessions that receive dispatches (connected, or disconnected but still resumable)."""
        now = time.monotonic()
        result = []
        for session in self.sessions.values():
            if session.invalidated:
                continue
            disconnected = session.connection is None and session.disconnected_at is not None
            if disconnected and now - (session.disconnected_at or now) > self.resume_window_s:
                continue
            result.append(session)
        return result

    def _wants(self, session: Session, event: str, data: JSON) -> bool:
        intents = session.intents
        if event in MESSAGE_EVENTS:
            needed = C.INTENT_GUILD_MESSAGES if "guild_id" in data else C.INTENT_DIRECT_MESSAGES
            return bool(intents & needed)
        if event.startswith(GUILD_EVENTS_PREFIXES):
            return bool(intents & C.INTENT_GUILDS)
        return True

    def _filter(self, session: Session, event: str, data: JSON) -> JSON:
        """Strip message content for sessions without the MESSAGE_CONTENT intent (as Discord does)."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or session.intents & C.INTENT_MESSAGE_CONTENT:
            return data
        if "guild_id" not in data:
            return data
        bot_id = str(self.core.ids.bot_id)
        if data.get("author", {}).get("id") == bot_id or any(m.get("id") == bot_id for m in data.get("mentions", [])):
            return data
        scrubbed = dict(data)
        scrubbed.update(content="", embeds=[], attachments=[], components=[])
        scrubbed.pop("poll", None)
        return scrubbed

    def _send_dispatch(self, session: Session, event: str, data: JSON) -> None:
        session.seq += 1
        text = json.dumps({"op": C.OP_DISPATCH, "t": event, "s": session.seq, "d": data})
        session.events.append((session.seq, text))
        conn = session.connection
        if conn is not None and conn.ready and not conn.closing:
            conn.queue.put_nowait(text)

    def dispatch(self, event: str, data: JSON) -> list[str]:
        """Send a dispatch to every live session whose shard gets it and that wants it (intents);
        returns the ids of those sessions."""
        guild_id = event_guild(event, data)
        sent = []
        for session in self.live_sessions():
            if session.routes(guild_id) and self._wants(session, event, data):
                self._send_dispatch(session, event, self._filter(session, event, data))
                sent.append(session.id)
        return sent

    def guild_available(self, guild_id: int) -> list[str]:
        """GUILD_CREATE of a guild the bot joined, to the sessions of its shard (members only to
        those with the GUILD_MEMBERS intent); returns their ids."""
        sent = []
        for session in self.live_sessions():
            if session.routes(guild_id) and session.intents & C.INTENT_GUILDS:
                members = bool(session.intents & C.INTENT_GUILD_MEMBERS)
                payload = self.core.world.guild_create_payload(guild_id, with_members=members)
                payload.pop("unavailable")  # a guild joined, not one of READY's unavailable guilds
                self._send_dispatch(session, "GUILD_CREATE", payload)
                sent.append(session.id)
        self.core.notify()
        return sent

    def session_records(self) -> list[SessionRecord]:
        """Every session identified so far (oldest first), with what it was sent."""
        world = self.core.world
        return [
            SessionRecord(
                id=s.id,
                shard=s.shard,
                intents=s.intents,
                guild_ids=tuple(g for g in world.guilds if s.routes(g)),
                connected=s.connection is not None,
                invalidated=s.invalidated,
                events=tuple(json.loads(text) for _, text in s.events),
            )
            for s in self.sessions.values()
        ]

    @staticmethod
    def _send_op(conn: Connection, op: int, data: Any) -> None:
        if not conn.closing:
            conn.queue.put_nowait(json.dumps({"op": op, "d": data, "s": None, "t": None}))

    # ------------------------------------------------------------------ websocket handler
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``/`` and ``/resume``."""
        ws = web.WebSocketResponse(autoclose=True, max_msg_size=0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="websocket upgrade expected")
        await ws.prepare(request)
        query = dict(request.query)
        record = ConnectionRecord(id=next(self._ids), path=request.path, query=query, opened_at=time.monotonic())
        self.core.connections.append(record)
        conn = Connection(record=record, ws=ws, request=request)
        if self.compression and query.get("compress") == "zlib-stream":
            conn.compressor = zlib.compressobj()
        self.connections.append(conn)
        conn.tasks.append(asyncio.create_task(self._writer(conn), name=f"fake-gw-writer-{record.id}"))
        _log.debug("gateway connection %s opened on %s %s", record.id, request.path, query)
        try:
            if query.get("v") not in (None, str(C.API_VERSION)):
                await self._close(conn, C.CLOSE_INVALID_VERSION, "server")
            elif query.get("encoding", "json") != "json":
                await self._close(conn, C.CLOSE_DECODE_ERROR, "server")
            else:
                self._send_op(conn, C.OP_HELLO, {"heartbeat_interval": self.core.heartbeat_interval_ms, "_trace": ["fake-discord"]})
                record.hello_at = time.monotonic()
                conn.tasks.append(asyncio.create_task(self._monitor(conn), name=f"fake-gw-monitor-{record.id}"))
                async for msg in ws:
                    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                        raw = msg.data if isinstance(msg.data, str) else msg.data.decode("utf-8", "replace")
                        await self._on_frame(conn, raw)
                    elif msg.type == WSMsgType.ERROR:
                        break
                    if conn.closing:
                        break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            await self._finish(conn)
        return ws

    async def _finish(self, conn: Connection) -> None:
        record = conn.record
        record.closed_at = time.monotonic()
        if record.closed_by is None:
            record.closed_by = "client"
            record.close_code = conn.ws.close_code
        conn.closing = True
        self._detach(conn)
        if record.closed_by == "client" and record.close_code in (1000, 1001) and conn.session is not None:
            conn.session.invalidated = True
        conn.queue.put_nowait(None)
        for task in conn.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(ValueError):
            self.connections.remove(conn)
        _log.debug("gateway connection %s closed (%s, %s)", record.id, record.closed_by, record.close_code)
        self.core.notify()

    def _detach(self, conn: Connection) -> None:
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            session.disconnected_at = time.monotonic()

    async def _writer(self, conn: Connection) -> None:
        while True:
            text = await conn.queue.get()
            if text is None:
                return
            try:
                if conn.compressor is not None:
                    data = conn.compressor.compress(text.encode()) + conn.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await conn.ws.send_bytes(data)
                else:
                    await conn.ws.send_str(text)
            except (ConnectionResetError, RuntimeError) as exc:
                _log.debug("gateway connection %s: send failed: %s", conn.record.id, exc)
                return

    async def _monitor(self, conn: Connection) -> None:
        interval = self.core.heartbeat_interval_ms / 1000.0
        limit = interval * 1.5
        step = min(interval / 4, 0.25)
        record = conn.record
        while not conn.closing:
            await asyncio.sleep(step)
            last = record.heartbeats[-1] if record.heartbeats else record.hello_at
            if last is None or conn.closing:
                continue
            gap = time.monotonic() - last
            if gap <= limit or conn.miss_reported_for == last:
                continue
            conn.miss_reported_for = last
            miss = HeartbeatMiss(
                connection_id=record.id,
                session_id=conn.session.id if conn.session else None,
                gap_s=gap,
                interval_s=interval,
                timestamp=time.time(),
                closed_connection=self.close_on_heartbeat_miss,
            )
            self.core.heartbeat_misses.append(miss)
            _log.warning("gateway connection %s missed heartbeats for %.2fs (interval %.2fs)", record.id, gap, interval)
            self.core.notify()
            if self.close_on_heartbeat_miss:
                await self._close(conn, C.CLOSE_UNKNOWN_ERROR, "heartbeat")
                return

    async def _close(self, conn: Connection, code: int, by: str) -> None:
        """Close a connection from the server side with ``code``."""
        if conn.closing:
            return
        conn.closing = True
        conn.record.closed_by = by
        conn.record.close_code = code
        self._detach(conn)
        conn.queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await conn.ws.close(code=code, message=b"fake discord closed the connection")

    def abort(self, conn: Connection) -> None:
        """Drop the TCP connection without a close frame (an abnormal closure, 1006)."""
        if conn.closing:
            return
        conn.closing = True
        conn.record.closed_by = "abort"
        conn.record.close_code = 1006
        self._detach(conn)
        conn.queue.put_nowait(None)
        transport = conn.request.transport
        if transport is not None:
            transport.abort()

    # ------------------------------------------------------------------ client frames
    def _gateway_reject(self, conn: Connection, code: int, message: str) -> None:
        self.core.rejections.append(
            Rejection(method="GATEWAY", path=conn.record.path, status=code, code=code, message=message, errors=None,
                      timestamp=time.time())
        )

    async def _on_frame(self, conn: Connection, raw: str) -> None:
        now = time.monotonic()
        conn.event_times.append(now)
        while conn.event_times and now - conn.event_times[0] > GATEWAY_RATE_WINDOW_S:
            conn.event_times.popleft()
        if len(conn.event_times) > GATEWAY_RATE_LIMIT:
            self._gateway_reject(conn, C.CLOSE_RATE_LIMITED, "You are being rate limited.")
            await self._close(conn, C.CLOSE_RATE_LIMITED, "server")
            return
        try:
            msg = json.loads(raw)
            op = msg["op"]
            data = msg.get("d")
        except (ValueError, KeyError, TypeError):
            self._gateway_reject(conn, C.CLOSE_DECODE_ERROR, "Error while decoding payload.")
            await self._close(conn, C.CLOSE_DECODE_ERROR, "server")
            return
        conn.record.received_ops.append(op)
        if op == C.OP_HEARTBEAT:
            conn.record.heartbeats.append(now)
            conn.record.heartbeat_payloads.append(data)
            self._send_op(conn, C.OP_HEARTBEAT_ACK, None)
            self.core.notify()
        elif op == C.OP_IDENTIFY:
            await self._identify(conn, data or {})
        elif op == C.OP_RESUME:
            await self._resume(conn, data or {})
        elif op not in C.CLIENT_OPS:
            self._gateway_reject(conn, C.CLOSE_UNKNOWN_OPCODE, f"Unknown opcode {op}.")
            await self._close(conn, C.CLOSE_UNKNOWN_OPCODE, "server")
        elif conn.session is None:
            self._gateway_reject(conn, C.CLOSE_NOT_AUTHENTICATED, "Not authenticated.")
            await self._close(conn, C.CLOSE_NOT_AUTHENTICATED, "server")
        elif op == C.OP_PRESENCE:
            self.core.presences.append(data)
            self.core.notify()
        elif op == C.OP_REQUEST_MEMBERS:
            self._members_chunk(conn.session, data or {})

    def _token_ok(self, token: Any) -> bool:
        return token in (self.core.token, f"Bot {self.core.token}")

    async def _may_authenticate(self, conn: Connection, data: JSON) -> bool:
        """IDENTIFY and RESUME alike: refuse (and close) a second login or a wrong token."""
        if conn.session is not None:
            self._gateway_reject(conn, C.CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            await self._close(conn, C.CLOSE_ALREADY_AUTHENTICATED, "server")
            return False
        if not self._token_ok(data.get("token")):
            self._gateway_reject(conn, C.CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            await self._close(conn, C.CLOSE_AUTHENTICATION_FAILED, "server")
            return False
        return True

    async def _identify(self, conn: Connection, data: JSON) -> None:
        if not await self._may_authenticate(conn, data):
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            self._gateway_reject(conn, C.CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            await self._close(conn, C.CLOSE_INVALID_INTENTS, "server")
            return
        if intents & C.PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            self._gateway_reject(conn, C.CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            await self._close(conn, C.CLOSE_DISALLOWED_INTENTS, "server")
            return
        shard = data.get("shard")
        shard_tuple: tuple[int, int] | None = None
        if shard is not None:
            valid = (
                isinstance(shard, list) and len(shard) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
                and 0 <= shard[0] < shard[1]
            )
            if not valid:
                self._gateway_reject(conn, C.CLOSE_INVALID_SHARD, "Invalid shard.")
                await self._close(conn, C.CLOSE_INVALID_SHARD, "server")
                return
            shard_tuple = (int(shard[0]), int(shard[1]))
        session = Session(id=secrets.token_hex(16), intents=intents, shard=shard_tuple)
        world = self.core.world
        guild_ids = [g for g in world.guilds if session.routes(g)]
        if len(guild_ids) > self.max_guilds_per_shard:
            self._gateway_reject(conn, C.CLOSE_SHARDING_REQUIRED, "Sharding required.")
            await self._close(conn, C.CLOSE_SHARDING_REQUIRED, "server")
            return
        self.sessions[session.id] = session
        session.connection = conn
        conn.session = session
        conn.ready = True
        conn.record.identified = True
        conn.record.session_id = session.id
        conn.record.shard = shard_tuple
        self.identify_count += 1
        ready: JSON = {
            "v": C.API_VERSION,
            "user": world.me_payload(),
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "application": {"id": str(self.core.ids.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        if shard_tuple is not None:
            ready["shard"] = list(shard_tuple)
        self._send_dispatch(session, "READY", ready)
        if guild_ids and intents & C.INTENT_GUILDS:
            members = bool(intents & C.INTENT_GUILD_MEMBERS)

            def guild_create() -> None:
                if not session.invalidated:
                    for guild_id in guild_ids:
                        if guild_id in world.guilds:
                            payload = world.guild_create_payload(guild_id, with_members=members)
                            self._send_dispatch(session, "GUILD_CREATE", payload)
                    self.core.notify()

            if self.guild_create_delay_s > 0:
                asyncio.get_running_loop().call_later(self.guild_create_delay_s, guild_create)
            else:
                guild_create()
        self.ready_count += 1
        _log.debug("gateway connection %s identified: session %s intents %s shard %s", conn.record.id, session.id,
                   intents, shard_tuple)
        self.core.notify()

    async def _resume(self, conn: Connection, data: JSON) -> None:
        if not await self._may_authenticate(conn, data):
            return
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session not in self.live_sessions():
            _log.debug("gateway connection %s: resume of unknown/invalid session, sending op 9", conn.record.id)
            self._send_op(conn, C.OP_INVALIDATE_SESSION, False)
            self.core.notify()
            return
        old = session.connection
        if old is not None and old is not conn:
            await self._close(old, C.CLOSE_UNKNOWN_ERROR, "server")
        seq = data.get("seq")
        session.connection = conn
        session.disconnected_at = None
        conn.session = session
        conn.record.session_id = session.id
        conn.record.shard = session.shard
        conn.record.resumed = True
        missed = [text for s, text in session.events if seq is None or s > int(seq)]
        for text in missed:
            conn.queue.put_nowait(text)
        conn.ready = True
        conn.queue.put_nowait(json.dumps({"op": C.OP_DISPATCH, "t": "RESUMED", "s": None, "d": {"_trace": ["fake-discord"]}}))
        self.resume_count += 1
        _log.debug("gateway connection %s resumed session %s (replayed %d)", conn.record.id, session.id, len(missed))
        self.core.notify()

    def _members_chunk(self, session: Session, data: JSON) -> None:
        world = self.core.world
        raw_guild = str(data.get("guild_id") or "")
        guild_id = int(raw_guild) if raw_guild.isdigit() and int(raw_guild) in world.guilds else self.core.ids.guild_id
        if not session.routes(guild_id):
            return  # Discord answers member requests only for the guilds of the session's shard
        wanted = {int(x) for x in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()
        members = [
            u for u in world.guild_members() if (not wanted or u.id in wanted) and u.username.lower().startswith(query)
        ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": str(guild_id),
            "members": [world.member_payload(u, guild_id=guild_id) for u in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [str(x) for x in wanted - {u.id for u in members}],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ test controls
    async def drop(self, code: int | None, invalidate: bool) -> int:
        """Close every live connection (``code=None``: abort the TCP connection). Returns how many."""
        conns = [c for c in self.connections if not c.closing]
        for conn in conns:
            if invalidate and conn.session is not None:
                conn.session.invalidated = True
            if code is None:
                self.abort(conn)
            else:
                asyncio.create_task(self._close(conn, code, "server"))
        self.core.notify()
        return len(conns)

    async def send_reconnect(self) -> int:
        """Send op 7 RECONNECT to every live connection."""
        conns = [c for c in self.connections if not c.closing and c.ready]
        for conn in conns:
            self._send_op(conn, C.OP_RECONNECT, None)
        return len(conns)

    async def send_invalid_session(self, resumable: bool) -> int:
        """Send op 9 INVALID_SESSION; when not resumable the sessions are dropped."""
        conns = [c for c in self.connections if not c.closing and c.ready]
        for conn in conns:
            if not resumable and conn.session is not None:
                conn.session.invalidated = True
            self._send_op(conn, C.OP_INVALIDATE_SESSION, resumable)
        return len(conns)

    async def shutdown(self) -> None:
        """Close all connections (used by ``FakeDiscord.stop``)."""
        for conn in list(self.connections):
            await self._close(conn, 1001, "server")
