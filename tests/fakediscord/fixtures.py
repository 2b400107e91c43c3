"""Optional pytest fixtures. Use them from a test module or conftest with::

    from fakediscord.fixtures import fake_discord, fake_discord_in_process  # noqa: F401
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from .server import FakeDiscord, point_discord_py_at

_log = logging.getLogger(__name__)


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    """A started :class:`FakeDiscord` (for a bot subprocess: pass ``fake_discord.env()`` to it)."""
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def fake_discord_in_process(fake_discord: FakeDiscord) -> Iterator[FakeDiscord]:
    """The same fake with this process's discord.py pointed at it (``Route.BASE`` / ``DEFAULT_GATEWAY``)."""
    with point_discord_py_at(fake_discord):
        yield fake_discord
