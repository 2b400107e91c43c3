"""Shards: the bot class the settings pick, and which process syncs commands and runs the watcher.

No network: ``setup_hook`` runs with the fake engine and a stand-in ingester; the end-to-end
tests (tests/e2e/test_bot_shards.py) run shard processes against the fake Discord.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest
from discord.ext import commands

from bot import client as bot_client
from bot.client import NewsBot, ShardedNewsBot, describe_shards, runs_shard_zero, shard_options
from bot.config import BotSettings as Settings


def sharded(settings: Settings, count: int | None, ids: tuple[int, ...] = ()) -> Settings:
    return dataclasses.replace(settings, shard_count=count, shard_ids=ids)


@pytest.mark.parametrize(("count", "ids", "options", "zero", "text"), [
    (None, (), {}, True, "unsharded (one gateway connection)"),
    (2, (), {"shard_count": 2}, True, "all 2 shards in this process"),
    (2, (0, 1), {"shard_count": 2, "shard_ids": [0, 1]}, True, "all 2 shards in this process"),
    (2, (1,), {"shard_count": 2, "shard_ids": [1]}, False, "shard 1 of 2"),
    (8, (4, 5, 6, 7), {"shard_count": 8, "shard_ids": [4, 5, 6, 7]}, False, "shards 4-7 of 8"),
    (8, (0, 3), {"shard_count": 8, "shard_ids": [0, 3]}, True, "shards 0, 3 of 8"),
])
def test_the_settings_pick_the_bot_class_and_its_shards(  # type: ignore[no-untyped-def]
    settings: Settings, count: int | None, ids: tuple[int, ...], options: dict[str, Any], zero: bool, text: str
) -> None:
    s = sharded(settings, count, ids)
    assert shard_options(s) == options and runs_shard_zero(s) is zero and describe_shards(s) == text
    bot = NewsBot(s)
    if count is None:  # unchanged: a plain Bot on one unsharded connection (it never asks /gateway/bot)
        assert type(bot) is NewsBot and not isinstance(bot, commands.AutoShardedBot)
        assert bot.shard_count is None and bot.shard_id is None
    else:
        assert type(bot) is ShardedNewsBot and isinstance(bot, commands.AutoShardedBot)
        assert bot.shard_count == count and bot.shard_ids == (list(ids) if ids else None)
    assert bot.runs_shard_zero is zero


class StubIngester:
    """Stands in for index.ingest.Ingester: records whether the watcher was started."""

    watched: list[bool] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stop = asyncio.Event()

    async def __aenter__(self) -> StubIngester:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def watch(self) -> None:
        StubIngester.watched.append(True)
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()

    async def disabled_unannounced(self) -> list[Any]:
        raise AssertionError("only the process running shard 0 announces disabled feeds")


@pytest.mark.parametrize(("count", "ids", "primary"), [(None, (), True), (2, (), True), (2, (0,), True),
                                                       (2, (1,), False), (4, (2, 3), False)])
def test_only_the_process_with_shard_zero_syncs_commands_and_watches_feeds(  # type: ignore[no-untyped-def]
    settings: Settings, engine, store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    count: int | None, ids: tuple[int, ...], primary: bool,
) -> None:
    import index.ingest

    monkeypatch.setattr(index.ingest, "Ingester", StubIngester)
    monkeypatch.setattr(bot_client, "open_feedback_store", lambda _settings: store)
    monkeypatch.setattr(StubIngester, "watched", [])
    monkeypatch.setattr(bot_client.gc, "freeze", lambda: None)  # leave the test process's collector alone
    if primary:
        monkeypatch.setattr(StubIngester, "disabled_unannounced", lambda self: asyncio.sleep(0, []))
    caplog.set_level(logging.INFO)
    synced: list[bool] = []

    async def scenario() -> None:
        bot = NewsBot(dataclasses.replace(sharded(settings, count, ids), watch=True), engine_factory=lambda s: engine)
        monkeypatch.setattr(bot, "sync_commands", lambda: asyncio.sleep(0, synced.append(True)))
        try:
            await bot.setup_hook()
            assert bot.live is not None
            await bot.live.announce_disabled()
            await asyncio.sleep(0.05)  # let the watcher task start
        finally:
            if bot.live is not None:
                await bot.live.close()

    asyncio.run(scenario())
    assert synced == ([True] if primary else [])
    assert StubIngester.watched == ([True] if primary else [])
    if count is not None:
        assert f"running {describe_shards(sharded(settings, count, ids))}" in caplog.text
    if not primary:
        assert "not syncing the commands: the process running shard 0 does" in caplog.text
        assert "not watching feeds in this process (NEWSBOT_WATCH=1)" in caplog.text


@pytest.mark.timeout(60)
def test_sharding_required_is_reported_and_sharding_fixes_it(  # type: ignore[no-untyped-def]
    tmp_path, engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Too many guilds for one connection: Discord closes it with 4011, ``python -m bot`` says to set
    NEWSBOT_SHARD_COUNT (exit 1); with it, both shards connect in one process."""
    import discord
    from fakediscord import FakeDiscord, point_discord_py_at

    import bot.__main__ as main_module

    monkeypatch.setattr(bot_client.gc, "freeze", lambda: None)
    with FakeDiscord(max_guilds_per_shard=1) as fake, point_discord_py_at(fake):
        fake.add_guild("Second", shard=(1 - fake.shard_of(fake.ids.guild_id, 2), 2))
        env = {"DISCORD_TOKEN": fake.token, "NEWSBOT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"),
               "NEWSBOT_CORPUS_DIR": str(tmp_path / "corpus"), "NEWSBOT_INDEX_DIR": str(tmp_path / "index")}

        async def start(settings: Settings) -> NewsBot:
            bot = NewsBot(settings, engine_factory=lambda s: engine)
            monkeypatch.setattr(bot, "before_identify_hook", lambda *a, **k: asyncio.sleep(0))
            runner = asyncio.create_task(bot.start(fake.token))
            ready = asyncio.create_task(bot.wait_until_ready())
            try:
                done, _ = await asyncio.wait({runner, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
                if runner in done:
                    runner.result()  # raises what stopped the bot
                assert ready in done, "the bot was not ready in time"
                return bot
            finally:
                ready.cancel()
                await bot.close()
                await asyncio.gather(runner, return_exceptions=True)

        with pytest.raises(discord.ConnectionClosed) as refused:
            asyncio.run(start(Settings.from_env(env)))
        assert refused.value.code == 4011
        bot = asyncio.run(start(Settings.from_env({**env, "NEWSBOT_SHARD_COUNT": "2"})))
        assert sorted(s.shard for s in fake.sessions if s.shard) == [(0, 2), (1, 2)]
        assert sorted(g.id for g in bot.guilds) == sorted(fake.guild_ids())

    async def refused_run(settings: Settings) -> None:
        raise refused.value

    monkeypatch.setattr(main_module, "run", refused_run)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    empty = tmp_path / "empty.env"
    empty.write_text("")
    assert main_module.main(["--env-file", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "Discord requires sharding (close code 4011)" in err and "NEWSBOT_SHARD_COUNT" in err
