"""A per-user cooldown shared by ``/ask`` and mentions."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable


class Cooldown:
    """One use per ``seconds`` for each key (a user id).

    :meth:`hit` records a use and returns 0.0, or returns the seconds left when the key is
    still cooling down (and records nothing). Runs on the event loop; not thread-safe.
    """

    #: Forget expired keys once this many are held, so memory stays bounded.
    PRUNE_AT = 4096

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self.seconds = float(seconds)
        self._clock = clock
        self._last: dict[Hashable, float] = {}

    def retry_after(self, key: Hashable) -> float:
        """Seconds until ``key`` may go again (0.0 when it may now)."""
        last = self._last.get(key)
        if last is None:
            return 0.0
        return max(0.0, last + self.seconds - self._clock())

    def hit(self, key: Hashable) -> float:
        """Use the cooldown for ``key``: 0.0 if allowed (and recorded), else the seconds left."""
        if self.seconds <= 0:
            return 0.0
        wait = self.retry_after(key)
        if wait > 0:
            return wait
        if len(self._last) >= self.PRUNE_AT:
            self._prune()
        self._last[key] = self._clock()
        return 0.0

    def reset(self, key: Hashable | None = None) -> None:
        """Forget ``key`` (or every key)."""
        if key is None:
            self._last.clear()
        else:
            self._last.pop(key, None)

    def _prune(self) -> None:
        now = self._clock()
        self._last = {k: t for k, t in self._last.items() if t + self.seconds > now}

    def __len__(self) -> int:
        return len(self._last)


def cooldown_message(seconds: float) -> str:
    """The reply to a user on cooldown: ``You're asking a bit fast: try again in 3 s.``"""
    return f"You're asking a bit fast: try again in {max(1, math.ceil(seconds))} s."
