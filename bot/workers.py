"""Worker threads for blocking calls, in two pools so quick lookups never queue behind slow questions.

``asyncio.to_thread`` shares the loop's one default pool among everything. Under a burst of
questions that pool's queue fills with ``engine.ask`` calls (tens of milliseconds each); a
feedback write, a ``/sources`` page or the store write that completes an answer then waits
behind *every* question that arrived before it, so all answers of a burst arrive together at
its end and a button's reply can miss Discord's 3-second window.

* :meth:`Workers.answer`: the engine's heavy work (``ask``, ``reload``), at most a few at once:
  the model already uses every core for one question, so more threads only add contention.
* :meth:`Workers.lookup`: quick reads and writes (``sources``, ``passage``, the feedback store).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


#: The longest a user waits for an answer before the bot apologises (an answer takes well under 1 s).
ANSWER_TIMEOUT_S = 60.0


def default_answer_threads() -> int:
    """Threads for engine questions: one per core, between 1 and 4."""
    return max(1, min(4, os.cpu_count() or 1))


class Workers:
    """Two thread pools; threads start on first use, so constructing one is cheap."""

    def __init__(self, answer_threads: int | None = None, lookup_threads: int = 2,
                 answer_timeout: float = ANSWER_TIMEOUT_S) -> None:
        self._answer = ThreadPoolExecutor(answer_threads or default_answer_threads(), thread_name_prefix="newsbot-answer")
        self._lookup = ThreadPoolExecutor(lookup_threads, thread_name_prefix="newsbot-lookup")
        self.answer_timeout = answer_timeout

    async def answer(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a heavy engine call (``ask``, ``reload``) in the answer pool.

        Raises TimeoutError after ``answer_timeout`` seconds (queueing included), so that a stuck
        engine becomes an apology to the user instead of a "thinking…" that never ends.
        """
        return await asyncio.wait_for(self._run(self._answer, fn, *args, **kwargs), self.answer_timeout)

    async def lookup(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a quick blocking call (index lookups, the feedback store) in the lookup pool."""
        return await self._run(self._lookup, fn, *args, **kwargs)

    @staticmethod
    async def _run(pool: ThreadPoolExecutor, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        # As asyncio.to_thread does: carry the context (log records keep their context vars).
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    def shutdown(self) -> None:
        """Stop taking work; queued calls are cancelled, running ones finish in the background."""
        self._answer.shutdown(wait=False, cancel_futures=True)
        self._lookup.shutdown(wait=False, cancel_futures=True)
