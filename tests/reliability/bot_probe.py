"""Run the real bot (``bot.__main__.main``) with an event-loop stall probe, for the reliability tests.

    python tests/reliability/bot_probe.py [bot arguments]

Everything the bot does is its own; this wrapper only adds, through environment variables:

``PROBE_OUT=FILE``
    Measure the event loop: a task sleeps 10 ms at a time and records how late it wakes (the
    loop's lag: how long something else held the loop), with the CPU time the loop's thread
    used meanwhile (a late wake with little CPU means the thread was not running: descheduled,
    or waiting for the GIL). Written as JSON to FILE every second and at exit.
    Each callback the loop runs (``asyncio.Handle._run``: task steps, I/O and timer callbacks) is
    timed too, by the wall clock and by the loop thread's CPU time: the longest are reported.
``PROBE_ASYNCIO_DEBUG=1``
    Also run the loop in asyncio debug mode, which names each callback slower than 100 ms (it
    slows the loop itself down, so the numbers above are worse with it).
``PROBE_HASHING=1``
    Load the engine with the hashing embedder instead of the model (an index built with it).
``PROBE_FAIL_QUESTION=TEXT``
    ``Engine.ask`` raises RuntimeError for this question: the bot's error path, with a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PROBE_INTERVAL_S = 0.010
SLOW_CALLBACK_S = 0.100


class _SlowCallbacks(logging.Handler):
    """Collects asyncio's debug-mode "Executing <handle> took N seconds" reports."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Executing "):
            self.reports.append(msg[:300])


def _install_test_doubles() -> None:
    if os.environ.get("PROBE_GC_FREEZE") == "1":  # diagnosis: what gc.freeze() after start-up would change
        from bot.client import NewsBot

        real_setup = NewsBot.setup_hook

        async def setup_hook(self):  # type: ignore[no-untyped-def]
            await real_setup(self)
            gc.collect()
            gc.freeze()

        NewsBot.setup_hook = setup_hook  # type: ignore[method-assign]
    if os.environ.get("PROBE_HASHING") == "1":
        import index.engine
        from index.embed import HashingEmbedder

        index.engine.load_embedder = lambda *_a, **_k: HashingEmbedder()  # type: ignore[assignment]
    fail = os.environ.get("PROBE_FAIL_QUESTION")
    if fail:
        from index.engine import Engine

        real_ask = Engine.ask

        def ask(self, question, **kwargs):  # type: ignore[no-untyped-def]
            if question == fail:
                raise RuntimeError("injected failure for the reliability tests")
            return real_ask(self, question, **kwargs)

        Engine.ask = ask  # type: ignore[method-assign]


def main() -> int:
    import bot.__main__ as bot_main

    _install_test_doubles()
    out = os.environ.get("PROBE_OUT")
    if not out:
        return bot_main.main(sys.argv[1:])

    real_run = bot_main.run
    slow = _SlowCallbacks()
    logging.getLogger("asyncio").addHandler(slow)
    lags: list[tuple[float, float, float]] = []  # (monotonic time, lag s, loop-thread CPU s meanwhile)
    gc_pauses: list[tuple[int, float, bool]] = []  # (generation, seconds, on the loop's thread)
    gc_started: dict[int, float] = {}
    loop_thread = threading.main_thread()

    def on_gc(phase: str, info: dict) -> None:  # type: ignore[type-arg]
        tid = threading.get_ident()
        if phase == "start":
            gc_started[tid] = time.perf_counter()
        elif tid in gc_started:
            gc_pauses.append((info["generation"], time.perf_counter() - gc_started.pop(tid),
                              tid == loop_thread.ident))

    gc.callbacks.append(on_gc)

    def dump() -> None:
        worst = sorted(lags, key=lambda x: x[1])
        data = {
            "samples": len(lags),
            "mark": seen_mark[0],
            "max_lag_ms": round(1000 * worst[-1][1], 1) if worst else None,
            "p99_lag_ms": round(1000 * worst[int(0.99 * (len(worst) - 1))][1], 1) if worst else None,
            "max_busy_ms": round(1000 * max((min(lag, cpu) for _, lag, cpu in lags), default=0.0), 1),
            "worst": [{"t": round(t, 3), "lag_ms": round(1000 * lag, 1), "cpu_ms": round(1000 * cpu, 1)}
                      for t, lag, cpu in worst[-10:]],
            "slow_callbacks": slow.reports[-50:],
            "max_callback_ms": round(1000 * max((w for w, _, _ in callbacks), default=0.0), 1),
            "max_callback_cpu_ms": round(1000 * max((c for _, c, _ in callbacks), default=0.0), 1),
            "slowest_callbacks": [{"wall_ms": round(1000 * w, 1), "cpu_ms": round(1000 * c, 1), "what": what}
                                  for w, c, what in sorted(callbacks, reverse=True)[:5]],
            "gc_max_ms": round(1000 * max((p for _, p, _ in gc_pauses), default=0.0), 1),
            "gc_max_ms_on_loop": round(1000 * max((p for _, p, on in gc_pauses if on), default=0.0), 1),
            "gc_full_collections": sum(1 for g, _, _ in gc_pauses if g == 2),
        }
        tmp = out + ".tmp"
        Path(tmp).write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, out)

    # Every callback the loop runs (task steps included) is timed: wall clock and the loop thread's CPU.
    callbacks: list[tuple[float, float, str]] = []  # the slowest: (wall s, CPU s, what)
    real_handle_run = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        real_handle_run(handle)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        if wall >= 0.02 or cpu >= 0.02:
            callbacks.append((wall, cpu, repr(handle)[:160]))
            if len(callbacks) > 400:
                callbacks.sort(reverse=True)
                del callbacks[100:]

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]

    mark = os.environ.get("PROBE_MARK_FILE")
    seen_mark: list[float] = [0.0]

    def reset_on_mark() -> None:
        """A test touches PROBE_MARK_FILE to start a fresh measurement (say, after start-up)."""
        try:
            mtime = os.stat(mark).st_mtime if mark else 0.0
        except OSError:
            return
        if mtime != seen_mark[0]:
            seen_mark[0] = mtime
            lags.clear()
            gc_pauses.clear()
            callbacks.clear()
            slow.reports.clear()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        last_dump = loop.time()
        while True:
            start, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(PROBE_INTERVAL_S)
            now = loop.time()
            lags.append((time.monotonic(), max(0.0, now - start - PROBE_INTERVAL_S), time.thread_time() - cpu))
            if now - last_dump >= 0.5:
                last_dump = now
                reset_on_mark()
                dump()

    async def run(settings, **options):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        if os.environ.get("PROBE_ASYNCIO_DEBUG") == "1":  # names slow callbacks, but slows the loop down
            loop.set_debug(True)
            loop.slow_callback_duration = SLOW_CALLBACK_S
        task = asyncio.create_task(probe())
        try:
            await real_run(settings, **options)
        finally:
            task.cancel()
            dump()

    bot_main.run = run  # main() looks it up when it starts the loop
    return bot_main.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
