"""How fast the real bot answers ``/ask``: dispatch -> defer and dispatch -> follow-up, against the fake Discord.

Starts the local fake Discord (tests/fakediscord) and the real bot process (``python -m bot``) on
the seed corpus, sends ``/ask`` interactions one after another with a mix of seed questions
(answered and declined), and reports p50 / p95 of

* **dispatch -> defer**: from the fake sending INTERACTION_CREATE to it accepting the bot's
  deferred response (Discord's 3-second deadline applies to this one);
* **dispatch -> follow-up**: from the same dispatch to the follow-up message with the answer.

Both are measured on the fake's clock, so they include the gateway hop, discord.py, the engine
(embedding the question, search, choosing sentences), rendering and the REST calls.

    .venv/bin/python scripts/bench_bot_latency.py            # 100 questions, writes docs/BOT_LATENCY.md
    .venv/bin/python scripts/bench_bot_latency.py -n 20 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # fakediscord lives with the tests

QUESTIONS = (
    "Where is Chery opening its European headquarters?",
    "Which brands does Chery sell in the UK?",
    "Who is the leader of Liverpool City Council?",
    "How many cars a year can the Halewood plant produce?",
    "What will the new Chery HQ support?",
    "Could Chery build cars in JLR factories?",
    "How much did JLR invest in Halewood?",
    "When will Chery's new European base open?",
    "Who won the 2024 Champions League final?",
    "What is the capital of Australia?",
)

READY_LINE = "newsbot ready as"


@dataclass(frozen=True)
class Sample:
    question: str
    answered: bool
    defer_s: float
    followup_s: float


def build_seed_index(index_dir: Path, corpus: Path) -> None:
    """Index ``corpus`` with the packaged model (what the tests' ``seed_index`` fixture does)."""
    from index.config import Settings
    from index.embed import load_embedder
    from index.loaders import load_corpus
    from index.stores.build import build_index

    build_index(index_dir, load_corpus(corpus), load_embedder(Settings.from_env({})))


def start_bot(fake, index_dir: Path, workdir: Path) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEWSBOT_"))}
    env.update(fake.env(token_var="DISCORD_TOKEN", guild_var="DISCORD_GUILD_ID"))
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "NEWSBOT_INDEX_DIR": str(index_dir),
            "NEWSBOT_FEEDBACK_DB": str(workdir / "feedback.sqlite3"),
            "NEWSBOT_COOLDOWN_SECONDS": "0",  # one user asks every question
        }
    )
    empty = workdir / "empty.env"
    empty.write_text("", encoding="utf-8")
    log = (workdir / "bot.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "--env-file", str(empty), "--log-level", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while READY_LINE not in log.read_text(encoding="utf-8", errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the bot did not start:\n{log.read_text(encoding='utf-8', errors='replace')[-3000:]}")
        time.sleep(0.1)


def ask_once(fake, question: str, timeout: float = 60.0) -> Sample:  # type: ignore[no-untyped-def]
    interaction = fake.send_slash("ask", {"question": question})
    reply = interaction.wait_response(timeout)
    followup = next(
        m for m in reversed(fake.messages) if m["interaction_id"] == interaction.id and m["source"] == "followup"
    )
    if interaction.ack_latency is None:
        raise RuntimeError(f"/ask {question!r} was never acknowledged")
    return Sample(question, bool(reply["embeds"]), interaction.ack_latency,
                  followup["recorded_at"] - interaction.dispatched_at)


def ask_burst(fake, n: int, timeout: float = 120.0) -> list[Sample]:  # type: ignore[no-untyped-def]
    """``n`` /ask dispatched at once (as the e2e concurrency test does), each timed like :func:`ask_once`."""
    interactions = [fake.send_slash("ask", {"question": QUESTIONS[i % len(QUESTIONS)]}) for i in range(n)]
    replies = [i.wait_response(timeout) for i in interactions]
    followed = {m["interaction_id"]: m["recorded_at"] for m in fake.messages if m["source"] == "followup"}
    return [
        Sample(i.payload["data"]["options"][0]["value"], bool(r["embeds"]), float(i.ack_latency or "nan"),
               followed[i.id] - i.dispatched_at)
        for i, r in zip(interactions, replies, strict=True)
    ]


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    out = {}
    for name, values in (("defer", [s.defer_s for s in samples]), ("followup", [s.followup_s for s in samples])):
        out[name] = {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values),
                     "mean": sum(values) / len(values)}
    return out


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x >= 0.1 else f"{x * 1000:.1f} ms"


def report(samples: Sequence[Sample], burst: Sequence[Sample], *, warmup: int, command: str, started: str,
           load: str) -> str:
    overall = summary(samples)
    answered = [s for s in samples if s.answered]
    declined = [s for s in samples if not s.answered]
    rows = [("all", samples, overall)]
    if answered:
        rows.append(("answered", answered, summary(answered)))
    if declined:
        rows.append(("declined", declined, summary(declined)))
    lines = [
        "# /ask latency against the local fake Discord",
        "",
        "Time from the fake Discord dispatching INTERACTION_CREATE for `/ask` to (a) accepting the bot's",
        "deferred response and (b) receiving the follow-up with the answer. The real bot process",
        "(`python -m bot`) on the seed corpus with the packaged all-MiniLM-L6-v2 on CPU; questions are sent",
        f"one after another, a mix of {len(QUESTIONS)} seed questions (answered and declined);"
        f" the first {warmup} are a warm-up and are not counted.",
        "",
        f"Measured {started} on {platform.machine()} Linux, {os.cpu_count()} CPUs (load average at the start:"
        f" {load}), Python {platform.python_version()}. The fake runs in the benchmark's process and the bot in"
        " its own, on the same machine; both clocks are the fake's.",
        "",
        "| questions | n | defer p50 | defer p95 | follow-up p50 | follow-up p95 | follow-up max |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group, s in rows:
        lines.append(
            f"| {name} | {len(group)} | {ms(s['defer']['p50'])} | {ms(s['defer']['p95'])} | "
            f"{ms(s['followup']['p50'])} | {ms(s['followup']['p95'])} | {ms(s['followup']['max'])} |"
        )
    if burst:
        b = summary(burst)
        lines += [
            "",
            f"Then {len(burst)} `/ask` dispatched at once (the end-to-end concurrency test's load):",
            "",
            "| n | defer p50 | defer p95 | defer max | follow-up p50 | follow-up p95 | follow-up max |",
            "|---|---|---|---|---|---|---|",
            f"| {len(burst)} | {ms(b['defer']['p50'])} | {ms(b['defer']['p95'])} | {ms(b['defer']['max'])} | "
            f"{ms(b['followup']['p50'])} | {ms(b['followup']['p95'])} | {ms(b['followup']['max'])} |",
        ]
    lines += [
        "",
        "The defer comes first, before any engine work, so it stays far inside Discord's 3-second window",
        "whatever the engine costs; the follow-up time is the engine's answer plus rendering and one REST call.",
        "",
        "Reproduce:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--questions", type=int, default=100, help="questions to time (default 100)")
    parser.add_argument("--warmup", type=int, default=3, help="questions asked first and not counted (default 3)")
    parser.add_argument("--burst", type=int, default=50,
                        help="then this many /ask at once, timed the same way (default 50; 0: skip)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", help="corpus to index (default: corpus/)")
    parser.add_argument("--index", type=Path, default=None,
                        help="use this built index instead of indexing --corpus into a temporary folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BOT_LATENCY.md",
                        help="where to write the report (default docs/BOT_LATENCY.md)")
    parser.add_argument("--no-write", action="store_true", help="print the numbers only")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    from fakediscord import FakeDiscord

    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="newsbot-latency-") as tmp:
        workdir = Path(tmp)
        index_dir = args.index
        if index_dir is None:
            index_dir = workdir / "index"
            print(f"indexing {args.corpus} ...", file=sys.stderr)
            build_seed_index(index_dir, args.corpus)
        with FakeDiscord(token=secrets.token_urlsafe(24)) as fake:
            proc = start_bot(fake, index_dir, workdir)
            try:
                print("starting the bot ...", file=sys.stderr)
                wait_ready(proc, workdir / "bot.log")
                fake.wait_until(lambda f: f.core.commands.by_scope.get(f.ids.guild_id), 30, "command sync")
                for i in range(args.warmup):
                    ask_once(fake, QUESTIONS[i % len(QUESTIONS)])
                samples = [ask_once(fake, QUESTIONS[i % len(QUESTIONS)]) for i in range(args.questions)]
                burst = ask_burst(fake, args.burst) if args.burst else []
                problems = fake.rejections, fake.heartbeat_misses
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if any(problems):
        print(f"the fake recorded problems: {problems}", file=sys.stderr)
        return 1
    s = summary(samples)
    print(f"{len(samples)} sequential /ask ({sum(x.answered for x in samples)} answered)")
    print(f"dispatch -> defer:     p50 {ms(s['defer']['p50'])}  p95 {ms(s['defer']['p95'])}  max {ms(s['defer']['max'])}")
    print(f"dispatch -> follow-up: p50 {ms(s['followup']['p50'])}  p95 {ms(s['followup']['p95'])}"
          f"  max {ms(s['followup']['max'])}")
    if burst:
        b = summary(burst)
        print(f"{len(burst)} concurrent /ask: defer p95 {ms(b['defer']['p95'])} max {ms(b['defer']['max'])};"
              f" follow-up p50 {ms(b['followup']['p50'])} p95 {ms(b['followup']['p95'])} max {ms(b['followup']['max'])}")
    if not args.no_write:
        shown = " ".join(["HF_HUB_OFFLINE=1", ".venv/bin/python", "scripts/bench_bot_latency.py", *(argv or sys.argv[1:])])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(samples, burst, warmup=args.warmup, command=shown, started=started, load=load),
                            encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
