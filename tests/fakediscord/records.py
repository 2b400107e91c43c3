"""Records the fake keeps for tests: REST requests, rejections, gateway connections, interactions."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import constants as C

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")


@dataclass
class RequestRecord:
    """One REST request the fake answered. ``path`` is relative to the API base (``/channels/1/messages``)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    timestamp: float
    """``time.time()`` when the reply was sent."""
    monotonic: float
    body: Any = None
    """Parsed JSON body (``payload_json`` for multipart), ``None`` when there was none."""
    route: str = ""
    """The matched route template, e.g. ``POST /channels/{channel_id}/messages``."""
    error_code: int | None = None


@dataclass
class Rejection:
    """A request (or gateway action) the fake refused because a Discord rule was broken."""

    method: str
    path: str
    status: int
    code: int
    message: str
    errors: JSON | None
    timestamp: float
    body: Any = None
    interaction_id: int | None = None


@dataclass
class RateLimitRecord:
    """A 429 the fake sent (``injected`` for ``rate_limit_next``, else a real bucket overflow)."""

    method: str
    path: str
    retry_after: float
    bucket: str
    injected: bool
    timestamp: float


@dataclass
class HeartbeatMiss:
    """The client did not heartbeat for more than 1.5 intervals (a blocked event loop)."""

    connection_id: int
    session_id: str | None
    gap_s: float
    interval_s: float
    timestamp: float
    closed_connection: bool


@dataclass
class ConnectionRecord:
    """One gateway websocket connection."""

    id: int
    path: str
    query: dict[str, str]
    opened_at: float
    """``time.monotonic()``."""
    hello_at: float | None = None
    heartbeats: list[float] = field(default_factory=list)
    """Monotonic arrival time of every op 1 HEARTBEAT."""
    heartbeat_payloads: list[Any] = field(default_factory=list)
    session_id: str | None = None
    shard: tuple[int, int] | None = None
    """``(shard_id, num_shards)`` of the session (from IDENTIFY), ``None`` when unsharded."""
    identified: bool = False
    resumed: bool = False
    closed_at: float | None = None
    close_code: int | None = None
    closed_by: str | None = None
    """``"client"``, ``"server"`` (``drop_gateway`` / protocol error), ``"heartbeat"`` or ``"abort"``."""
    received_ops: list[int] = field(default_factory=list)

    def heartbeat_gaps(self, now: float | None = None) -> list[float]:
        """Gaps between HELLO and the first heartbeat and between consecutive heartbeats.

        The time from the last heartbeat to the close (or, for a connection still open, to
        ``now``) is included, so a client that is blocked right now, or was dropped for it, shows up.
        """
        points = ([self.hello_at] if self.hello_at is not None else []) + list(self.heartbeats)
        gaps = [b - a for a, b in zip(points, points[1:], strict=False)]
        end = self.closed_at if self.closed_at is not None else now
        if points and end is not None:
            gaps.append(end - points[-1])
        return gaps


@dataclass(frozen=True)
class SessionRecord:
    """A gateway session as a test sees it (``FakeDiscord.sessions``)."""

    id: str
    shard: tuple[int, int] | None
    """``(shard_id, num_shards)`` from IDENTIFY; ``None`` when the client did not shard."""
    intents: int
    guild_ids: tuple[int, ...]
    """The guilds whose events this session receives."""
    connected: bool
    invalidated: bool
    events: tuple[JSON, ...]
    """Every dispatch sent to the session, oldest first: ``{"t": name, "s": seq, "d": data}``."""

    def received(self, event: str, predicate: Callable[[JSON], bool] | None = None) -> list[JSON]:
        """The ``d`` of each ``event`` dispatch this session got (that ``predicate`` accepts)."""
        return [e["d"] for e in self.events if e["t"] == event and (predicate is None or predicate(e["d"]))]


class _Bridge(Protocol):
    """What interactions need from the server to wait across threads."""

    def _call_sync(self, factory: Callable[[], Awaitable[T]], timeout: float) -> T: ...

    async def _call_async(self, factory: Callable[[], Awaitable[T]], timeout: float) -> T: ...

    async def _wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T: ...


class FakeInteraction:
    """An interaction the fake dispatched and everything the client did with it.

    Attributes are written on the fake's event loop; read them after a ``wait_*`` call.
    """

    def __init__(
        self,
        bridge: _Bridge,
        *,
        interaction_id: int,
        token: str,
        type: int,
        name: str,
        payload: JSON,
        user_id: int,
        channel_id: int,
        guild_id: int | None,
        deadline_s: float,
        token_ttl_s: float,
        message_id: int | None = None,
    ) -> None:
        self._bridge = bridge
        self.id = interaction_id
        self.token = token
        self.type = type
        self.name = name
        """Command name (``"group sub"`` for subcommands) or the component / modal custom_id."""
        self.payload = payload
        """The INTERACTION_CREATE ``d`` the client received."""
        self.user_id = user_id
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.deadline_s = deadline_s
        self.token_ttl_s = token_ttl_s
        self.message_id = message_id
        """For component interactions: the message the component is on."""
        self.dispatched_at = time.monotonic()
        self.dispatched_wall = time.time()
        self.callback: JSON | None = None
        """The accepted initial response body ``{"type": ..., "data": ...}``."""
        self.callback_at: float | None = None
        self.callback_attempts: list[tuple[float, JSON, int]] = []
        """Every POST to the callback endpoint: (monotonic time, body, status)."""
        self.original_message_id: int | None = None
        self.followups: list[JSON] = []
        """Messages created by POST /webhooks/{app}/{token} (snapshots)."""
        self.edits: list[JSON] = []
        """Results of PATCH .../messages/@original or .../messages/{id} (snapshots)."""
        self.visible: list[JSON] = []
        """Messages a user would see, in order (type 4/7 responses, follow-ups, edits after a defer)."""
        self.errors: list[Rejection] = []
        """Error replies the client got for this interaction."""
        self.modal: JSON | None = None
        self.autocomplete_choices: list[JSON] | None = None
        self.delivered_to: list[str] = []
        """Ids of the gateway sessions INTERACTION_CREATE went to (those of the guild's shard)."""

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} name={self.name!r} callback={self.callback_type}>"

    # ------------------------------------------------------------------ derived state
    @property
    def callback_type(self) -> int | None:
        """Type of the accepted initial response (4, 5, 6, 7, 8, 9 ...) or ``None``."""
        return None if self.callback is None else int(self.callback["type"])

    @property
    def acknowledged(self) -> bool:
        """Whether an initial response was accepted."""
        return self.callback is not None

    @property
    def ack_latency(self) -> float | None:
        """Seconds between dispatch and the accepted initial response."""
        return None if self.callback_at is None else self.callback_at - self.dispatched_at

    @property
    def deferred(self) -> bool:
        """Whether the initial response was a defer (type 5 or 6)."""
        return self.callback_type in (C.CB_DEFERRED_CHANNEL_MESSAGE, C.CB_DEFERRED_UPDATE_MESSAGE)

    def expired(self, now: float | None = None) -> bool:
        """Whether the interaction token is past its 15 minute lifetime."""
        return ((now or time.monotonic()) - self.dispatched_at) > self.token_ttl_s

    # ------------------------------------------------------------------ waiting
    def wait_callback(self, timeout: float = 5.0) -> JSON:
        """Block until the initial response arrived; returns ``{"type", "data", "latency_s"}``."""
        return self._bridge._call_sync(lambda: self._wait_callback(timeout), timeout)

    async def async_wait_callback(self, timeout: float = 5.0) -> JSON:
        """Awaitable :meth:`wait_callback` for use inside another event loop."""
        return await self._bridge._call_async(lambda: self._wait_callback(timeout), timeout)

    def wait_response(self, timeout: float = 5.0, index: int = 0) -> JSON:
        """Block until the ``index``-th visible message exists and return it.

        The first visible message is the type 4 / 7 response, or the first follow-up or
        ``@original`` edit after a defer. The dict is the Discord message payload plus
        ``allowed_mentions`` (as sent), ``ephemeral`` (bool) and ``source``.
        """
        return self._bridge._call_sync(lambda: self._wait_visible(timeout, index), timeout)

    async def async_wait_response(self, timeout: float = 5.0, index: int = 0) -> JSON:
        """Awaitable :meth:`wait_response` for use inside another event loop."""
        return await self._bridge._call_async(lambda: self._wait_visible(timeout, index), timeout)

    async def _wait_callback(self, timeout: float) -> JSON:
        def ready() -> JSON | None:
            if self.callback is None:
                return None
            return {**copy.deepcopy(self.callback), "latency_s": self.ack_latency}

        return await self._bridge._wait_for(ready, timeout, f"initial response to {self!r}")

    async def _wait_visible(self, timeout: float, index: int) -> JSON:
        def ready() -> JSON | None:
            return copy.deepcopy(self.visible[index]) if len(self.visible) > index else None

        return await self._bridge._wait_for(ready, timeout, f"visible message #{index} of {self!r}")
