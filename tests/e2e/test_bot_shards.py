"""End to end: the bot as several processes, one per Discord shard, sharing one PostgreSQL archive.

Two guilds whose ids land on different shards of 2, and the seed corpus indexed once into a
PostgreSQL database (``pg_url``) with the real model. Either two ``python -m bot`` processes with
``NEWSBOT_SHARD_COUNT=2`` and ``NEWSBOT_SHARD_IDS=0`` / ``=1``, or one with only the count (an
AutoShardedBot running both shards). A question asked by mention and by ``/ask`` in each guild is
answered, with the quote and its citation, by the process whose shard owns the guild, and never by
the other: the fake routes each guild's events to its shard's session only, as Discord does, and
each process's log names the answers it gave. Only the process running shard 0 syncs the (global)
commands and runs the feed watcher. Nothing the bots send is refused; no heartbeat is late.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import ROOT, TOKEN, BotProcess, assert_quiet, bot_env, custom_ids
from fakediscord import FakeDiscord, SessionRecord, WorldIds

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(120)]

SHARDS = 2
QUESTION = "Where is Chery opening its European headquarters?"
EXPECT = "Liverpool"


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture
def guilds(fake: FakeDiscord) -> dict[int, WorldIds]:
    """The ids of each shard's guild: the fake's first guild, and a second one on the other shard of 2."""
    first = fake.shard_of(fake.ids.guild_id, SHARDS)
    other = fake.add_guild("Sports desk", shard=(1 - first, SHARDS))
    return {first: fake.ids, 1 - first: other}


@pytest.fixture
def archive(pg_url: str, real_embedder) -> str:  # type: ignore[no-untyped-def]
    """The seed corpus indexed into a fresh PostgreSQL database; its URL."""
    from index.loaders import load_corpus
    from index.stores.build import build_index
    from index.stores.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        build_index(store, load_corpus(ROOT / "corpus"), real_embedder)
    finally:
        store.close()
    return pg_url


@contextlib.contextmanager
def running_bots(fake: FakeDiscord, archive: str, workdir: Path, shard_ids: list[str | None]) -> Iterator[list[BotProcess]]:
    """One bot process per entry of ``shard_ids`` (``None``: only NEWSBOT_SHARD_COUNT), all on the same
    database (the index, the feeds, the answers and votes) and corpus folder, the watcher asked for (NEWSBOT_WATCH=1)
    and the commands synced globally (no DISCORD_GUILD_ID: there are two guilds). Started together,
    stopped cleanly; their output is checked for the token."""
    workdir.mkdir(parents=True, exist_ok=True)
    bots = []
    for ids in shard_ids:
        name = f"shards-{ids or 'all'}"
        extra = {"NEWSBOT_DATABASE_URL": archive, "NEWSBOT_SHARD_COUNT": str(SHARDS), "NEWSBOT_WATCH": "1",
                 "NEWSBOT_SECRET_KEY": "one key for every process of this bot",
                 "NEWSBOT_SHARD_IDS": ids or ""}
        env = bot_env(fake, index_dir=workdir / "index", feedback_db=workdir / f"feedback-{name}.sqlite3",
                      extra=extra, guild=False)
        bots.append(BotProcess(env, workdir, name).start())
    try:
        for bot in bots:
            bot.wait_ready(fake, synced=False)
        fake.wait_until(lambda f: f.core.commands.by_scope.get(None), 10, "global command sync")
        yield bots
    finally:
        codes = [bot.stop() for bot in bots]
    for bot, code in zip(bots, codes, strict=True):
        assert fake.token not in bot.all_output(), f"the token appeared in {bot.name}'s output"
        assert code == 0, f"{bot.name} did not stop cleanly (exit {code}):\n{bot.tail()}"


def assert_cited(message: dict, expect: str) -> str:
    """An answer: a quote with [1] containing ``expect``, its source listed, the buttons; the answer id."""
    [embed] = message["embeds"]
    description = embed["description"]
    assert description.startswith("> ") and "[1]" in description and expect in description, description
    sources = description.split("**Sources**", 1)[1]
    assert "**[1]**" in sources and ("Motoring Research" in sources or "Chery" in sources), sources
    ids = custom_ids(message)
    assert len(ids) == 3 and ids[0].startswith("nb:passages:"), ids
    assert_quiet(message)
    return ids[0].removeprefix("nb:passages:")


def ask_both_ways(fake: FakeDiscord, ids: WorldIds) -> dict[str, object]:
    """Ask QUESTION in the guild's channel by mention and by /ask: the answers and their deliveries."""
    mark = fake.mark()
    question = fake.send_message(QUESTION, mentions_bot=True, channel_id=ids.channel_id)
    reply = fake.wait_message(
        lambda m: m["event"] == "create" and m["source"] == "channel"
        and (m.get("message_reference") or {}).get("message_id") == question["id"], 30, since=mark)
    interaction = fake.send_slash("ask", {"question": QUESTION}, channel_id=ids.channel_id)
    followup = interaction.wait_response(30)
    assert reply["channel_id"] == followup["channel_id"] == str(ids.channel_id)
    assert reply["guild_id"] == followup["guild_id"] == str(ids.guild_id)
    assert interaction.ack_latency is not None and interaction.ack_latency < 3.0
    return {
        "reply": reply,
        "mention": assert_cited(reply, EXPECT),
        "slash": assert_cited(followup, EXPECT),
        "message_to": [s.id for s in fake.recipients("MESSAGE_CREATE", lambda d: d["id"] == question["id"])],
        "interaction_to": list(interaction.delivered_to),
        "replies": [m for m in fake.messages[mark:] if m["source"] != "user" and m["event"] == "create"
                    and m["channel_id"] == str(ids.channel_id)],
    }


def answered_in(bot: BotProcess) -> set[str]:
    """The answer ids the bot's log says it gave."""
    return set(re.findall(r"answered (\S+) with \d+ quotes", bot.output))


def assert_rules_kept(fake: FakeDiscord, bots: list[BotProcess]) -> None:
    assert fake.rejections == [], f"the fake refused requests:\n{[b.tail() for b in bots]}"
    assert fake.heartbeat_misses == [] and fake.unhandled_routes == []
    for bot in bots:
        assert "Traceback" not in bot.output, bot.tail()


def session_of(sessions: list[SessionRecord], shard: tuple[int, int]) -> SessionRecord:
    [session] = [s for s in sessions if s.shard == shard]
    return session


def test_two_processes_on_two_shards_each_answer_their_own_guild(
    fake: FakeDiscord, guilds: dict[int, WorldIds], archive: str, tmp_path: Path
) -> None:
    import psycopg

    votes: dict[str, int] = {}
    with running_bots(fake, archive, tmp_path, ["0", "1"]) as bots:
        # Each process identified its own shard, and only that one.
        sessions = fake.sessions
        assert sorted(s.shard for s in sessions) == [(0, SHARDS), (1, SHARDS)]
        for shard in range(SHARDS):
            assert session_of(sessions, (shard, SHARDS)).guild_ids == (guilds[shard].guild_id,)
            assert f"running shard {shard} of {SHARDS}" in bots[shard].output
        # Only the process with shard 0 synced the (global) commands and runs the watcher.
        puts = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]
        assert [r.path for r in puts] == [f"/applications/{fake.ids.application_id}/commands"]
        assert {c["name"] for c in fake.commands()} >= {"ask", "sources"}
        assert "synced " in bots[0].output and "not syncing the commands" in bots[1].output
        assert re.search(r"bot\.live: watching feeds in this process", bots[0].output)
        assert re.search(r"bot\.live: not watching feeds in this process", bots[1].output)

        for shard in range(SHARDS):
            owner, other = bots[shard], bots[1 - shard]
            asked = ask_both_ways(fake, guilds[shard])
            session = session_of(fake.sessions, (shard, SHARDS))
            # The guild's events went to its shard's session only, so only its process answered.
            assert asked["message_to"] == [session.id] and asked["interaction_to"] == [session.id]
            mine = {asked["mention"], asked["slash"]}
            assert mine <= answered_in(owner), owner.tail()
            assert not mine & answered_in(other), other.tail()
            assert len(asked["replies"]) == 2  # one answer each way, nothing from the other process
            # A vote on it is taken by the same process, and kept in the database both share.
            press = fake.send_component(asked["reply"], f"nb:fb:up:{asked['mention']}")
            assert press.wait_response(30)["source"] == "edit"  # the 👍 now shows its count
            thanks = press.wait_response(30, index=1)
            assert thanks["ephemeral"] is True and "Thanks" in thanks["content"]
            votes[str(asked["mention"])] = shard
        assert_rules_kept(fake, bots)
    with psycopg.connect(archive) as conn:
        rows = conn.execute("SELECT f.answer_id, f.vote, a.question FROM newsbot_feedback f "
                            "JOIN newsbot_answers a USING (answer_id)").fetchall()
    assert sorted(r[0] for r in rows) == sorted(votes) and {(r[1], r[2]) for r in rows} == {(1, QUESTION)}
    assert not list(tmp_path.glob("feedback-*.sqlite3"))  # no process kept them in a file


def test_one_auto_sharded_process_answers_in_both_guilds(
    fake: FakeDiscord, guilds: dict[int, WorldIds], archive: str, tmp_path: Path
) -> None:
    with running_bots(fake, archive, tmp_path, [None]) as [bot]:
        sessions = fake.sessions
        assert sorted(s.shard for s in sessions) == [(0, SHARDS), (1, SHARDS)]
        assert f"all {SHARDS} shards in this process" in bot.output
        for shard in range(SHARDS):
            assert f"shard {shard} of {SHARDS} ready" in bot.output
        assert "synced " in bot.output and "not syncing" not in bot.output
        for shard in range(SHARDS):
            asked = ask_both_ways(fake, guilds[shard])
            session = session_of(fake.sessions, (shard, SHARDS))
            assert asked["message_to"] == [session.id] and asked["interaction_to"] == [session.id]
            assert {asked["mention"], asked["slash"]} <= answered_in(bot)
            assert len(asked["replies"]) == 2
        assert_rules_kept(fake, [bot])
