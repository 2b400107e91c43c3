"""Settings: every one is listed in .env.example; the live-news ones parse as documented."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
from support import ROOT

from index.config import Settings, parse_duration
from index.errors import ConfigError


def test_every_setting_is_listed_in_env_example() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    assert {f.metadata["env"] for f in fields(Settings)} <= listed


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
                           "NEWSBOT_RETENTION_DAYS": "30", "NEWSBOT_WATCH": "1"})
    assert s.feed_interval == 600 and s.retention_days == 30 and s.watch
    assert s.allow_private_urls == ("intranet.example", "10.0.0.0/8")
    assert Settings.from_env({"NEWSBOT_ALLOW_PRIVATE_URLS": "1"}).allow_private_urls == ("*",)
    assert Settings.from_env({}).allow_private_urls == () and not Settings.from_env({}).watch
    s = Settings.from_env({}, corpus_dir="/srv/news")
    assert str(s.state_dir) == "/srv/news/.newsbot" and str(s.web_dir) == "/srv/news/web"


@pytest.mark.parametrize(("name", "value"), [("NEWSBOT_FEED_INTERVAL", "often"), ("NEWSBOT_ALLOW_PRIVATE_URLS", "10.0.0.0/99"),
                                             ("NEWSBOT_RETENTION_DAYS", "0"), ("NEWSBOT_FETCH_MAX_BYTES", "10"),
                                             ("NEWSBOT_CONTACT_URL", "ftp://x"), ("NEWSBOT_WATCH", "maybe")])
def test_bad_live_news_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (30, "30s"), (90, "1m30s"), (900, "15m"), (5400, "1h30m"),
                                                (18727, "5h12m"), (86400, "1d")])
def test_durations_are_written_as_they_are_read(seconds: float, text: str) -> None:
    from index.config import format_duration

    assert format_duration(seconds) == text
    if seconds:
        assert parse_duration(text) == pytest.approx(seconds, abs=60 if seconds > 3600 else 0)
