"""Per-server settings and the threads' questions: stored, cached, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.cogs.ask import parse_since, since_choices, window_label
from bot.feedback import open_feedback_store
from bot.guilds import DEFAULT, GuildConfig, GuildSettings, ThreadMemory
from bot.render import payload_problems, render_settings

GUILD = 1100000000000000100


def test_settings_are_kept_and_shared_between_processes(state_settings) -> None:  # type: ignore[no-untyped-def]
    first, second = open_feedback_store(state_settings), open_feedback_store(state_settings)
    try:
        a, b = GuildSettings(first.db), GuildSettings(second.db)
        assert a.get(GUILD) == DEFAULT
        config = GuildConfig(mention_channels=frozenset({5, 6}), ask_channels=frozenset({7}), ask_role=9,
                             private=True, threads=True, public_checks=True)
        a.put(GUILD, config)
        assert a.get(GUILD) == config and a.get(GUILD + 1) == DEFAULT
        assert b.get(GUILD) == config  # another process (a second shard) reads the same
        a.put(GUILD, GuildConfig(ask_role=None))
        assert GuildSettings(first.db).get(GUILD) == GuildConfig()
        a.reset(GUILD)
        assert GuildSettings(second.db).get(GUILD) == DEFAULT
    finally:
        first.close()
        second.close()


def test_threads_remember_their_latest_question(state_settings) -> None:  # type: ignore[no-untyped-def]
    store = open_feedback_store(state_settings)
    try:
        memory = ThreadMemory(store.db)
        assert memory.question(42) is None
        memory.remember(42, "Who leads the council?")
        memory.remember(42, "What is Chery opening in Liverpool?")
        assert ThreadMemory(store.db).question(42) == "What is Chery opening in Liverpool?"
    finally:
        store.close()


def test_stored_settings_from_a_newer_newsbot_are_read_safely() -> None:
    config = GuildConfig.from_rows({"ask_role": "12", "private": True, "a_future_setting": 3, "threads": "yes"})
    assert config == GuildConfig(ask_role=12, private=True)
    assert GuildConfig.from_rows(config.to_rows()) == config


def test_who_may_ask_and_where_mentions_are_answered() -> None:
    open_server = GuildConfig()
    assert open_server.may_ask(set()) and open_server.mentions_allowed_in(1)
    limited = GuildConfig(mention_channels=frozenset({1}), ask_channels=frozenset({2}), ask_role=7)
    assert limited.mentions_allowed_in(1) and limited.mentions_allowed_in(2) and not limited.mentions_allowed_in(3)
    assert limited.may_ask({7}) and not limited.may_ask({8}) and limited.may_ask(set(), is_admin=True)


def test_the_settings_render_within_discords_limits() -> None:
    payload = render_settings(GuildConfig(mention_channels=frozenset(range(1, 200)), ask_role=4), "x" * 3000)
    assert payload_problems(payload) == []
    assert "<@&4>" in payload.embeds[0]["description"]


TODAY = dt.date(2026, 12, 3)


@pytest.mark.parametrize(("value", "since", "label"), [
    ("24h", dt.date(2026, 12, 2), "last 24 hours (since 2026-12-02)"),
    ("Last 7 days", dt.date(2026, 11, 26), "last 7 days (since 2026-11-26)"),
    ("last week", dt.date(2026, 11, 26), "last 7 days (since 2026-11-26)"),
    ("30d", dt.date(2026, 11, 3), "last 30 days (since 2026-11-03)"),
    ("this year", dt.date(2026, 1, 1), "this year (since 2026-01-01)"),
    ("2025-05-01", dt.date(2025, 5, 1), "since 2025-05-01"),
])
def test_since_takes_the_usual_windows_or_a_date(value: str, since: dt.date, label: str) -> None:
    assert parse_since(value, TODAY) == (since, label)


def test_a_bad_since_names_the_choices() -> None:
    with pytest.raises(ValueError, match="last 24 hours, 7 days, 30 days, this year"):
        parse_since("next tuesday", TODAY)
    assert parse_since(None, TODAY) == (None, "")


def test_the_window_is_named_for_the_answer() -> None:
    assert window_label(dt.date(2026, 11, 26), "last 7 days (since 2026-11-26)", None) == \
        "Articles from the last 7 days (since 2026-11-26)"
    assert window_label(dt.date(2025, 5, 1), "since 2025-05-01", dt.date(2025, 6, 1)) == \
        "Articles since 2025-05-01 until 2025-06-01"
    assert window_label(None, "", None) == ""


def test_since_autocomplete() -> None:
    assert [v for _, v in since_choices("", TODAY)] == ["24h", "7d", "30d", "year"]
    assert since_choices("days", TODAY) == [("Last 7 days", "7d"), ("Last 30 days", "30d")]
    assert since_choices("2025-01-02", TODAY)[0] == ("2025-01-02", "2025-01-02")


def test_the_words_a_claim_check_reads() -> None:
    from types import SimpleNamespace

    from bot.cogs.check import claim_text

    def message(content: str = "", embeds: list | None = None) -> SimpleNamespace:  # type: ignore[type-arg]
        return SimpleNamespace(content=content, embeds=embeds or [])

    said = message("So <@123> says <:chery:456> Chery   is opening\nan HQ in <#789> Liverpool <t:1700000000:R>")
    assert claim_text(said, 500) == ("So says Chery is opening an HQ in Liverpool", False)  # type: ignore[arg-type]
    posted = message(embeds=[SimpleNamespace(title="Chery picks Liverpool", description="A new HQ.")])
    assert claim_text(posted, 500) == ("Chery picks Liverpool A new HQ.", False)  # type: ignore[arg-type]
    text, cut = claim_text(message("word " * 200), 500)  # type: ignore[arg-type]
    assert cut and len(text) <= 500 and text.endswith("word")
    assert claim_text(message(), 500) == ("", False)  # type: ignore[arg-type]
