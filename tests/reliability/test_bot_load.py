"""Load: a burst of 200 /ask interactions from 50 users against the real bot process (real model, seed
index) and the local Discord stand-in. Every interaction is acknowledged within Discord's 3 s, then
answered or refused by the cooldown with a clear message; the event loop never stalls over 100 ms.

The loop is measured inside the bot process by tests/reliability/bot_probe.py (a 10 ms ticker's
lateness, with the loop thread's CPU time, plus asyncio debug mode's slow-callback reports).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakediscord import FakeDiscord
from fakediscord import constants as C
from relutil import ProbedBot, bot_env

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(300)]

TOKEN = "MTEyMzQ1Njc4OTAxMjM0NTY3OA.GloadT.load-test-token-must-never-be-logged-0123456789"
USERS = 50
ASKS = 200
COOLDOWN_S = 5.0
DEADLINE_S = 3.0  # Discord's window for the first response
STALL_MS = 100.0
QUESTIONS = [
    "Where is Chery opening its European headquarters?",
    "Who is the leader of Liverpool City Council?",
    "How many cars a year can the Halewood plant produce?",
    "Which brands does Chery sell in the UK?",
    "Who won the 2024 Champions League final?",
]
COOLDOWN_REPLY = re.compile(r"^You're asking a bit fast: try again in \d+ s\.$")


def _wait_for_mark(bot: ProbedBot, timeout: float = 10.0) -> None:
    mtime = (bot.workdir / "mark").stat().st_mtime
    deadline = time.monotonic() + timeout
    while bot.stats().get("mark") != mtime:
        assert time.monotonic() < deadline, "the probe did not start a fresh measurement"
        time.sleep(0.05)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbedBot]:
    workdir = tmp_path_factory.mktemp("load-bot")
    env = bot_env(fake, index_dir=seed_index, workdir=workdir, cooldown=COOLDOWN_S,
                  extra={"PROBE_MARK_FILE": str(workdir / "mark"),
                         **{k: v for k, v in os.environ.items() if k.startswith("PROBE_")}})
    proc = ProbedBot(env, workdir).start()
    try:
        proc.wait_ready(fake, timeout=180)
        yield proc
    finally:
        code = proc.stop()
        assert TOKEN not in proc.output
        assert code == 0, proc.output[-3000:]


def test_burst_of_200_asks_from_50_users(fake: FakeDiscord, bot: ProbedBot, tmp_path: Path) -> None:
    users = [fake.add_user(f"reader{i:02d}") for i in range(USERS)]
    fake.send_slash("ask", {"question": QUESTIONS[0]}, user="user").wait_response(60)  # warm the model up
    before = bot.stats()
    (bot.workdir / "mark").touch()  # measure the loop from here on
    _wait_for_mark(bot)
    rejections = len(fake.rejections)

    started = time.monotonic()
    interactions = [fake.send_slash("ask", {"question": QUESTIONS[i % len(QUESTIONS)]}, user=users[i % USERS])
                    for i in range(ASKS)]
    burst_s = time.monotonic() - started
    deadline = time.monotonic() + 180
    replies = [i.wait_response(max(1.0, deadline - time.monotonic())) for i in interactions]
    total_s = time.monotonic() - started
    time.sleep(1.2)  # one more probe dump after the burst
    stats = bot.stats()

    acks = [i.ack_latency for i in interactions]
    assert all(a is not None for a in acks)
    late = [(i.id, i.ack_latency) for i in interactions if i.ack_latency >= DEADLINE_S]
    answered = [i for i in interactions if i.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE]
    refused = [i for i in interactions if i.callback_type == C.CB_CHANNEL_MESSAGE]
    numbers = {
        "burst_s": round(burst_s, 2), "total_s": round(total_s, 2), "answered": len(answered), "refused": len(refused),
        "ack_ms": {"p50": round(1000 * statistics.median(acks), 1), "p95": round(1000 * _pct(acks, 0.95), 1),
                   "max": round(1000 * max(acks), 1)},
        "ack_ms_deferred": {"p50": round(1000 * statistics.median([i.ack_latency for i in answered]), 1),
                            "max": round(1000 * max(i.ack_latency for i in answered), 1)},
        "loop": {k: stats.get(k) for k in ("samples", "max_lag_ms", "p99_lag_ms", "max_busy_ms",
                                           "max_callback_ms", "max_callback_cpu_ms", "gc_max_ms",
                                           "gc_max_ms_on_loop", "gc_full_collections")},
        "slowest_callbacks": stats.get("slowest_callbacks"),
        "heartbeat_misses": [round(m.gap_s, 2) for m in fake.heartbeat_misses],
        "loop_worst": stats.get("worst"), "slow_callbacks": stats.get("slow_callbacks"),
        "loop_start_up": {k: before.get(k) for k in ("max_lag_ms", "max_busy_ms", "gc_max_ms")},
    }
    (tmp_path / "load.json").write_text(json.dumps(numbers, indent=2))
    print("\nLOAD", json.dumps(numbers))

    assert late == [], f"acknowledged after {DEADLINE_S} s: {late}"
    assert len(answered) + len(refused) == ASKS
    # Each user is answered at once and then refused until the cooldown ends.
    by_user: dict[int, list] = {}  # type: ignore[type-arg]
    for interaction, reply in zip(interactions, replies, strict=True):
        by_user.setdefault(interaction.user_id, []).append((interaction, reply))
        if interaction.callback_type == C.CB_CHANNEL_MESSAGE:
            assert reply["ephemeral"] is True and COOLDOWN_REPLY.match(reply["content"]), reply
        else:
            assert reply["embeds"] or reply["content"], reply
            assert "went wrong" not in (reply["content"] or "")
    for uid, items in by_user.items():
        times = [i.dispatched_at for i, _ in items if i.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE]
        assert times, f"user {uid} was never answered"
        assert all(b - a >= COOLDOWN_S - 0.5 for a, b in zip(times, times[1:])), f"cooldown not applied for {uid}"
    assert fake.rejections[rejections:] == [], bot.output[-3000:]
    # The event loop: no callback of the bot held it for 100 ms. (The wall-clock lag, heartbeat gaps
    # and the loop's total work per tick are reported above: on a machine shared with other work they
    # also measure time the process was not scheduled or waited for the GIL; see docs/RELIABILITY.md.)
    assert stats["samples"] > 20
    assert stats["max_callback_cpu_ms"] < STALL_MS, stats["slowest_callbacks"]
    assert not stats["slow_callbacks"], stats["slow_callbacks"]
