"""The two worker pools: quick lookups never wait behind queued engine questions."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from bot.workers import Workers

pytestmark = pytest.mark.timeout(30)


def test_lookups_do_not_queue_behind_busy_answers() -> None:
    release = threading.Event()

    async def main() -> tuple[str, list[str]]:
        workers = Workers(answer_threads=1, lookup_threads=1)
        try:
            # Five slow questions: one runs (blocked), four wait in the answer pool's queue.
            questions = [asyncio.ensure_future(workers.answer(release.wait, 10)) for _ in range(5)]
            await asyncio.sleep(0.05)
            looked_up = await asyncio.wait_for(workers.lookup(lambda: threading.current_thread().name), 5)
            assert not any(q.done() for q in questions)
            release.set()
            await asyncio.gather(*questions)
            names = await asyncio.gather(*(workers.answer(lambda: threading.current_thread().name) for _ in range(3)))
            return looked_up, names
        finally:
            release.set()
            workers.shutdown()

    looked_up, names = asyncio.run(main())
    assert looked_up.startswith("newsbot-lookup")
    assert all(n.startswith("newsbot-answer") for n in names)


def test_arguments_context_and_errors_pass_through() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def call(a: int, *, b: int) -> tuple[int, str]:
        return a + b, var.get()

    def boom() -> None:
        raise KeyError("nope")

    async def main() -> tuple[int, str]:
        workers = Workers()
        try:
            var.set("request-42")
            with pytest.raises(KeyError, match="nope"):
                await workers.lookup(boom)
            return await workers.answer(call, 1, b=2)
        finally:
            workers.shutdown()

    assert asyncio.run(main()) == (3, "request-42")


def test_a_stuck_engine_call_times_out_instead_of_hanging() -> None:
    release = threading.Event()

    async def main() -> None:
        workers = Workers(answer_threads=1, answer_timeout=0.2)
        try:
            with pytest.raises(TimeoutError):
                await workers.answer(release.wait, 10)
        finally:
            release.set()
            workers.shutdown()

    asyncio.run(main())
