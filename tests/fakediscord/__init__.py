"""A local fake Discord (REST API + gateway websocket on 127.0.0.1) for the real discord.py client.

In-process::

    from fakediscord import FakeDiscord, point_discord_py_at

    with FakeDiscord() as fake, point_discord_py_at(fake):
        ...  # run a discord.Client against it

Subprocess bot (``python -m bot``)::

    with FakeDiscord() as fake:
        env = {**os.environ, **fake.env(), "<TOKEN VAR>": fake.token}
        proc = subprocess.Popen([sys.executable, "-m", "bot"], env=env)
        fake.wait_ready(30)
"""

from __future__ import annotations

from . import constants
from .core import FakeDiscordError
from .records import (
    ConnectionRecord,
    FakeInteraction,
    HeartbeatMiss,
    RateLimitRecord,
    Rejection,
    RequestRecord,
    SessionRecord,
)
from .server import ENV_API_BASE, ENV_GATEWAY, FakeDiscord, point_discord_py_at
from .validation import ApiError, embed_size
from .world import WorldIds, shard_of

__all__ = [
    "ENV_API_BASE",
    "ENV_GATEWAY",
    "ApiError",
    "ConnectionRecord",
    "FakeDiscord",
    "FakeDiscordError",
    "FakeInteraction",
    "HeartbeatMiss",
    "RateLimitRecord",
    "Rejection",
    "RequestRecord",
    "SessionRecord",
    "WorldIds",
    "constants",
    "embed_size",
    "point_discord_py_at",
    "shard_of",
]
