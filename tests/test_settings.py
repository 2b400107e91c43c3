"""Settings: every one is listed in .env.example; the live-news ones parse as documented."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
from support import ROOT

from bot.config import BotSettings
from index.config import Settings, parse_duration
from index.errors import ConfigError


def test_every_setting_is_listed_in_env_example() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    assert {f.metadata["env"] for f in fields(BotSettings)} <= listed


def test_the_engine_settings_know_nothing_of_discord() -> None:
    """The Discord settings are the bot's (bot.config); the engine's settings and modules never see them."""
    engine = {f.metadata["env"] for f in fields(Settings)}
    bot_only = {f.metadata["env"] for f in fields(BotSettings)} - engine
    assert {"DISCORD_TOKEN", "DISCORD_GUILD_ID", "NEWSBOT_SHARD_COUNT", "NEWSBOT_COOLDOWN_SECONDS"} <= bot_only
    assert not any("DISCORD" in name for name in engine)
    imports = re.compile(r"^\s*(from bot\b|import bot\b|from discord\b|import discord\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "index").rglob("*.py")
                 if imports.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("1h", 3600), ("1h30m", 5400),
                                                ("2d", 172800), ("45", 45), (" 15M ", 900)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "-5m", "0s", "5m later"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_live_news_settings() -> None:
    s = Settings.from_env({"NEWSBOT_FEED_INTERVAL": "10m", "NEWSBOT_ALLOW_PRIVATE_URLS": "intranet.example, 10.0.0.0/8",
                           "NEWSBOT_RETENTION_DAYS": "30"})
    assert s.feed_interval == 600 and s.retention_days == 30
    assert s.allow_private_urls == ("intranet.example", "10.0.0.0/8")
    assert Settings.from_env({"NEWSBOT_ALLOW_PRIVATE_URLS": "1"}).allow_private_urls == ("*",)
    assert Settings.from_env({}).allow_private_urls == ()
    assert BotSettings.from_env({"NEWSBOT_WATCH": "1"}).watch and not BotSettings.from_env({}).watch
    s = Settings.from_env({}, corpus_dir="/srv/news")
    assert str(s.state_dir) == "/srv/news/.newsbot" and str(s.web_dir) == "/srv/news/web"


@pytest.mark.parametrize(("name", "value"), [("NEWSBOT_FEED_INTERVAL", "often"), ("NEWSBOT_ALLOW_PRIVATE_URLS", "10.0.0.0/99"),
                                             ("NEWSBOT_RETENTION_DAYS", "0"), ("NEWSBOT_FETCH_MAX_BYTES", "10"),
                                             ("NEWSBOT_CONTACT_URL", "ftp://x"), ("NEWSBOT_WATCH", "maybe")])
def test_bad_live_news_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        BotSettings.from_env({name: value})


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (30, "30s"), (90, "1m30s"), (900, "15m"), (5400, "1h30m"),
                                                (18727, "5h12m"), (86400, "1d")])
def test_durations_are_written_as_they_are_read(seconds: float, text: str) -> None:
    from index.config import format_duration

    assert format_duration(seconds) == text
    if seconds:
        assert parse_duration(text) == pytest.approx(seconds, abs=60 if seconds > 3600 else 0)


@pytest.mark.parametrize(("count", "ids", "expected"), [("2", "", ()), ("2", "1", (1,)), ("4", "0,1", (0, 1)),
                                                        ("8", "0-3", (0, 1, 2, 3)), ("8", " 6, 0-2 ", (0, 1, 2, 6))])
def test_shard_settings(count: str, ids: str, expected: tuple[int, ...]) -> None:
    s = BotSettings.from_env({"NEWSBOT_SHARD_COUNT": count, "NEWSBOT_SHARD_IDS": ids})
    assert s.shard_count == int(count) and s.shard_ids == expected
    unsharded = BotSettings.from_env({})
    assert unsharded.shard_count is None and unsharded.shard_ids == ()


@pytest.mark.parametrize(("env", "message"), [
    ({"NEWSBOT_SHARD_COUNT": "0"}, "NEWSBOT_SHARD_COUNT must be at least 1"),
    ({"NEWSBOT_SHARD_COUNT": "two"}, "NEWSBOT_SHARD_COUNT='two' is not valid"),
    ({"NEWSBOT_SHARD_IDS": "0"}, "NEWSBOT_SHARD_IDS needs NEWSBOT_SHARD_COUNT"),
    ({"NEWSBOT_SHARD_COUNT": "2", "NEWSBOT_SHARD_IDS": "2"}, "NEWSBOT_SHARD_IDS: shard 2 does not exist"),
    ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "0-5"}, "shard 5 does not exist with NEWSBOT_SHARD_COUNT=4"),
    ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "3-1"}, "NEWSBOT_SHARD_IDS='3-1' is not valid: .*backwards"),
    ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "0,1,1"}, "NEWSBOT_SHARD_IDS=.*shard 1 is listed twice"),
    ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "-1"}, "NEWSBOT_SHARD_IDS=.*not a shard number"),
    ({"NEWSBOT_SHARD_COUNT": "4", "NEWSBOT_SHARD_IDS": "0,,1"}, "NEWSBOT_SHARD_IDS=.*not a shard number"),
])
def test_bad_shard_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BotSettings.from_env(env)
