"""The cogs' flows with a fake engine and a stand-in interaction (no Discord, no network)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import discord
import pytest

from bot.cogs.admin import AdminCog
from bot.cogs.ask import AskCog, match_outlet, outlet_choices, parse_date, question_from_message
from bot.cogs.sources import SourcesCog
from bot.feedback import DOWN, UP
from bot.send import APOLOGY, guarded


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def assert_safe(kwargs: dict) -> None:  # type: ignore[type-arg]
    am = kwargs["allowed_mentions"]
    assert (am.everyone, am.users, am.roles, am.replied_user) == (False, False, False, False)


def answer_id_of(kwargs: dict) -> str:  # type: ignore[type-arg]
    ids = [c["custom_id"] for row in kwargs["view"].to_components() for c in row["components"]]
    return ids[0].rsplit(":", 1)[1]


# --- pure helpers ---


def test_parse_date() -> None:
    assert parse_date("2024-05-31", "since") == dt.date(2024, 5, 31)
    assert parse_date(None, "since") is None and parse_date("  ", "since") is None
    for bad in ["2024-13-01", "31/05/2024", "20240531", "yesterday", "2024-W01-1"]:
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_date(bad, "since")


def test_outlets() -> None:
    outlets = ("Daily Planet", "The Courier", "Planet News")
    assert match_outlet("daily  PLANET", outlets) == "Daily Planet"
    assert match_outlet("Nope", outlets) is None
    assert outlet_choices(outlets, "plan") == ["Planet News", "Daily Planet"]
    assert outlet_choices(outlets, "") == ["Daily Planet", "Planet News", "The Courier"]


def test_question_from_message() -> None:
    assert question_from_message("<@99> what about fares?", bot_id=99, mentioned=True, in_own_thread=False) == (
        "what about fares?"
    )
    assert question_from_message("hey <@!99>  why? <@5>", bot_id=99, mentioned=True, in_own_thread=False) == (
        "hey why? <@5>"
    )
    assert question_from_message("<@&7> why?", bot_id=99, role_ids=[7], mentioned=True, in_own_thread=False) == "why?"
    assert question_from_message("and then?", bot_id=99, mentioned=False, in_own_thread=True) == "and then?"
    assert question_from_message("chatter", bot_id=99, mentioned=False, in_own_thread=False) is None
    assert question_from_message("<@99>", bot_id=99, mentioned=True, in_own_thread=False) == ""


# --- /ask ---


def test_ask_answers_with_embed_buttons_and_stores_it(newsbot, engine, store, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    it = make_interaction()
    run(cog.ask_slash(it, answer.question))
    assert it.sent[0] == ("defer", {"thinking": True, "ephemeral": False})
    kind, kw = it.sent[1]
    assert kind == "followup" and not kw["ephemeral"]
    assert_safe(kw)
    embed = kw["embeds"][0]
    assert "[1]" in embed.description and "**Sources**" in embed.description
    assert embed.footer.text == "Confidence 0.82"
    stored = store.get_answer(answer_id_of(kw))
    assert stored is not None and stored.question == answer.question
    assert stored.sentence_ids == [answer.quotes[0].sentence_id]
    # "this week" in a question means the week it was sent: the interaction's UTC date.
    assert engine.calls[-1] == ("ask", (answer.question, None, None, None, dt.date(2024, 5, 7)))


def test_ask_decline_is_plain(newsbot, make_interaction) -> None:  # type: ignore[no-untyped-def]
    it = make_interaction()
    run(AskCog(newsbot).ask_slash(it, "What is the capital of Mars?"))
    kw = it.last()
    assert kw["content"] == "The articles don't cover that." and kw["embeds"] == []
    # Its one button: "This should have been answered", on the decline stored under its id.
    (button,) = [c for row in kw["view"].to_components() for c in row["components"]]
    assert button["label"] == "This should have been answered" and button["custom_id"].startswith("nb:fb:miss:")
    stored = newsbot.store.get_answer(button["custom_id"].rsplit(":", 1)[1])
    assert stored is not None and stored.question == "What is the capital of Mars?" and stored.quotes == ()


def test_a_decline_the_store_cannot_keep_is_sent_without_its_button(newsbot, make_interaction, caplog) -> None:  # type: ignore[no-untyped-def]
    from index.errors import StoreUnavailableError

    def down(record) -> None:  # type: ignore[no-untyped-def]
        raise StoreUnavailableError("connection refused")

    newsbot.store.save_answer = down
    it = make_interaction()
    run(AskCog(newsbot).ask_slash(it, "What is the capital of Mars?"))
    assert it.last()["content"] == "The articles don't cover that." and "view" not in it.last()
    assert "cannot store the decline" in caplog.text


def test_ask_filters_are_parsed_and_passed(newsbot, engine, make_interaction) -> None:  # type: ignore[no-untyped-def]
    run(AskCog(newsbot).ask_slash(make_interaction(), "q?", source="daily planet", since="2024-01-01",
                                  until="2024-02-01"))
    assert engine.calls[-1] == ("ask", ("q?", "Daily Planet", dt.date(2024, 1, 1), dt.date(2024, 2, 1),
                                        dt.date(2024, 5, 7)))


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [
        ({"since": "next tuesday"}, "YYYY-MM-DD"),
        ({"until": "2024-02-30"}, "YYYY-MM-DD"),
        ({"since": "2024-03-01", "until": "2024-02-01"}, "must not be after"),
        ({"source": "Nowhere Times"}, "I have no articles from"),
    ],
)
def test_ask_bad_options_get_an_ephemeral_reply(newsbot, engine, make_interaction, kwargs, expect) -> None:  # type: ignore[no-untyped-def]
    it = make_interaction()
    run(AskCog(newsbot).ask_slash(it, "q?", **kwargs))
    (kind, kw), = it.sent
    assert kind == "send_message" and kw["ephemeral"] and expect in kw["content"]
    assert not [c for c in engine.calls if c[0] == "ask"]


def test_ask_too_long_and_question_error(newsbot, engine, make_interaction) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    it = make_interaction()
    run(cog.ask_slash(it, "x" * 501))
    assert it.sent[0][0] == "send_message" and "too long" in it.last()["content"] and it.last()["ephemeral"]
    engine.max_chars = 10  # the engine's own check, after deferring
    it = make_interaction(user_id=7)
    run(cog.ask_slash(it, "a question longer than ten"))
    assert it.sent[0][0] == "defer" and "too long" in it.last()["content"]


def test_ask_cooldown(newsbot, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    run(cog.ask_slash(make_interaction(user_id=5), answer.question))
    it = make_interaction(user_id=5)
    run(cog.ask_slash(it, answer.question))
    assert it.last()["ephemeral"] and "try again in 5 s" in it.last()["content"]
    other = make_interaction(user_id=6)
    run(cog.ask_slash(other, answer.question))
    assert other.sent[0][0] == "defer"


def test_source_autocomplete(newsbot, make_interaction) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    param = cog.ask_command._params["source"]
    choices = run(param.autocomplete(make_interaction(), "cour"))
    assert [c.value for c in choices] == ["The Courier"]
    assert cog.ask_command._params["question"].max_value == newsbot.settings.max_question_chars


# --- buttons ---


def test_passages_and_votes(newsbot, store, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    it = make_interaction()
    run(cog.ask_slash(it, answer.question))
    aid = answer_id_of(it.last())

    it = make_interaction(user_id=77)
    run(cog.show_passages(it, aid))
    assert it.sent[0] == ("defer", {"ephemeral": True, "thinking": True})
    kw = it.last()
    assert kw["ephemeral"] and "**Rail fares will rise by 5% in March, the minister said.**" in kw["embeds"][0].description
    assert_safe(kw)

    message = SimpleNamespace(embeds=[])
    run(cog.store_vote(make_interaction(user_id=77, message=message), aid, "up"))
    it = make_interaction(user_id=78, message=message)
    run(cog.store_vote(it, aid, "down", reason="outdated", comment="  There is newer news.  "))
    assert it.sent[0] == ("defer", {})  # acknowledged (as an update of the message) before the write
    # The buttons now show the votes; the thanks is private.
    edit = next(kw for kind, kw in it.sent if kind == "edit_original")
    labels = [c.get("label") for row in edit["view"].to_components() for c in row["components"]]
    assert labels == ["Passages", "1", "1"]
    assert it.last()["ephemeral"] and "Thanks" in it.last()["content"]
    rows = store.feedback_rows(aid)
    assert {r["user_hash"] for r in rows} == {store.user_hash(77), store.user_hash(78)}
    assert all(r["question"] == answer.question for r in rows)
    assert sorted((r["vote"], r["reason"] or "", r["comment"] or "") for r in rows) == [
        (DOWN, "outdated", "There is newer news."), (UP, "", "")]


def test_thumbs_down_opens_the_form_first(newsbot, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    """👎 answers with the form (a modal must be the first response) and stores nothing until it is sent."""
    cog = AskCog(newsbot)
    run(cog.ask_slash(it := make_interaction(), answer.question))
    aid = answer_id_of(it.last())
    run(cog.on_vote_button(it := make_interaction(user_id=5), aid, "down"))
    ((kind, kw),) = it.sent
    form = kw["modal"]
    assert kind == "send_modal" and form.custom_id.startswith(f"nb:fbm:{aid}:") and form.is_finished()
    payload = form.to_dict()
    select = payload["components"][0]["component"]
    assert [o["value"] for o in select["options"]] == ["wrong_quote", "outdated", "wrong_source", "other"]
    assert newsbot.store.feedback_rows(aid) == []


def test_the_should_have_been_answered_button(newsbot, make_interaction) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    run(cog.ask_slash(it := make_interaction(), "What is the capital of Mars?"))
    (button,) = [c for row in it.last()["view"].to_components() for c in row["components"]]
    aid = button["custom_id"].rsplit(":", 1)[1]
    for user in (1, 2, 1):  # the same person twice counts once
        run(cog.on_vote_button(it := make_interaction(user_id=user, message=SimpleNamespace(embeds=[])), aid, "miss"))
    edit = next(kw for kind, kw in it.sent if kind == "edit_original")
    (label,) = [c["label"] for row in edit["view"].to_components() for c in row["components"]]
    assert label == "This should have been answered · 2"
    rows = newsbot.store.feedback_rows(aid)
    assert [(r["vote"], r["reason"], r["question"]) for r in rows] == [(DOWN, "missed", "What is the capital of Mars?")] * 2


def test_passages_when_gone(newsbot, engine, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(newsbot)
    it = make_interaction()
    run(cog.show_passages(it, "unknown-answer-id"))
    assert "no longer have" in it.last()["content"]
    run(cog.ask_slash(it := make_interaction(), answer.question))
    aid = answer_id_of(it.last())
    engine.passages.clear()  # rebuilt index: the sentence is gone
    run(cog.show_passages(it := make_interaction(), aid))
    assert "no longer available" in it.last()["embeds"][0].description


def test_guarded_apologises(make_interaction) -> None:  # type: ignore[no-untyped-def]
    async def boom() -> None:
        raise RuntimeError("kaput")

    it = make_interaction()
    run(guarded(it, boom))
    assert it.last()["content"] == APOLOGY and it.last()["ephemeral"]


def test_tree_on_error_apologises(newsbot, make_interaction, caplog) -> None:  # type: ignore[no-untyped-def]
    it = make_interaction()
    error = discord.app_commands.CommandInvokeError(SimpleNamespace(name="ask"), RuntimeError("kaput"))  # type: ignore[arg-type]
    run(newsbot.tree.on_error(it, error))
    assert it.last()["content"] == APOLOGY
    assert "kaput" in caplog.text


# --- mentions ---


class FakeMessage:
    def __init__(self, content: str, *, author_id: int = 5, bot: bool = False, dm: bool = False) -> None:
        self.id = 1
        self.created_at = dt.datetime(2023, 12, 31, 23, 59, tzinfo=dt.UTC)
        self.content = content
        self.author = SimpleNamespace(id=author_id, bot=bot)
        self.webhook_id = None
        self.type = discord.MessageType.default
        self.guild = None if dm else SimpleNamespace(id=7, self_role=None)
        self.channel = SimpleNamespace(id=3, typing=self._typing)
        self.raw_mentions = [int(x) for x in __import__("re").findall(r"<@!?(\d+)>", content)]
        self.raw_role_mentions: list[int] = []
        self.replies: list[dict] = []  # type: ignore[type-arg]

    async def _typing(self) -> None:
        return None

    async def reply(self, content=None, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("content", content)
        self.replies.append(kwargs)
        return SimpleNamespace(id=2)


def with_user(bot, user_id: int = 99):  # type: ignore[no-untyped-def]
    bot._connection.user = SimpleNamespace(id=user_id)
    return bot


def test_mention_gets_a_reply(newsbot, engine, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(with_user(newsbot))
    msg = FakeMessage(f"<@99> {answer.question}")
    run(cog.on_message(msg))
    assert engine.calls[-1] == ("ask", (answer.question, None, None, None, dt.date(2023, 12, 31)))
    (kw,) = msg.replies
    assert_safe(kw)
    assert kw["mention_author"] is False
    assert "[1]" in kw["embeds"][0].description and kw["view"] is not None


def test_bots_and_unaddressed_messages_are_ignored(newsbot, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(with_user(newsbot))
    for msg in [FakeMessage(f"<@99> {answer.question}", bot=True), FakeMessage(answer.question),
                FakeMessage(f"<@99> {answer.question}", author_id=99)]:
        run(cog.on_message(msg))
        assert msg.replies == []


def test_bare_mention_and_errors_get_a_reply(newsbot, engine) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(with_user(newsbot))
    msg = FakeMessage("<@99>")
    run(cog.on_message(msg))
    assert "Ask me a question" in msg.replies[0]["content"]

    def broken(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("engine on fire")

    engine.ask = broken
    msg = FakeMessage("<@99> why?", author_id=8)
    run(cog.on_message(msg))
    assert msg.replies[0]["content"] == APOLOGY


def test_mention_cooldown_is_shared_with_ask(newsbot, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    cog = AskCog(with_user(newsbot))
    run(cog.ask_slash(make_interaction(user_id=5), answer.question))
    msg = FakeMessage(f"<@99> {answer.question}", author_id=5)
    run(cog.on_message(msg))
    assert "try again in" in msg.replies[0]["content"]


# --- /sources ---


def test_sources_pages(newsbot, make_interaction) -> None:  # type: ignore[no-untyped-def]
    cog = SourcesCog(newsbot)
    it = make_interaction()
    run(cog.sources.callback(cog, it, None))
    kw = it.last()
    assert "Page 1 of 3" in kw["embeds"][0].footer.text
    assert_safe(kw)
    it = make_interaction()
    run(cog.turn_page(it, 1, None))
    assert [kind for kind, _ in it.sent] == ["defer", "edit_original"]  # acknowledged before the lookup
    kw = it.sent[-1][1]
    assert "Page 2 of 3" in kw["embeds"][0].footer.text
    run(cog.sources.callback(cog, it := make_interaction(), "courier"))
    assert "matching “courier”" in it.last()["embeds"][0].title
    assert "Daily Planet" not in it.last()["embeds"][0].description


# --- /reload ---


def test_reload_needs_manage_guild(newsbot, engine, make_interaction) -> None:  # type: ignore[no-untyped-def]
    cog = AdminCog(newsbot)
    it = make_interaction(manage_guild=False)
    run(cog.reload.callback(cog, it))
    assert "Manage Server" in it.last()["content"] and it.last()["ephemeral"]
    it = make_interaction(manage_guild=True, guild=False)
    run(cog.reload.callback(cog, it))
    assert "only works in a server" in it.last()["content"]
    assert engine.reloads == 0
    assert cog.reload.default_permissions.manage_guild and cog.reload.guild_only


def test_reload_success_and_failure(newsbot, engine, make_interaction) -> None:  # type: ignore[no-untyped-def]
    cog = AdminCog(newsbot)
    it = make_interaction(manage_guild=True)
    run(cog.reload.callback(cog, it))
    assert engine.reloads == 1 and "Reloaded the index: 23 articles" in it.last()["content"]
    engine.fail_reload = "the index at /x was built with another model: rebuild with `newsbot rebuild`"
    it = make_interaction(manage_guild=True)
    run(cog.reload.callback(cog, it))
    assert it.last()["ephemeral"] and "still serving the old index" in it.last()["content"]
    assert "rebuild" in it.last()["content"]


def test_an_unreachable_database_gets_a_short_apology_then_answers_again(newsbot, engine, make_interaction,
                                                                         answer, caplog) -> None:  # type: ignore[no-untyped-def]
    """The index's database going away (index.errors.StoreUnavailableError) is a short apology, not a
    traceback; the next question, once it is back, is answered by the same bot."""
    from bot.cogs.ask import UNAVAILABLE
    from index.errors import StoreUnavailableError

    cog = AskCog(with_user(newsbot))
    real_ask = engine.ask

    def down(*a, **k):  # type: ignore[no-untyped-def]
        raise StoreUnavailableError("the database is unreachable (reading: connection refused)")

    engine.ask = down
    it = make_interaction(user_id=11)
    run(cog.ask_slash(it, answer.question))
    assert it.last()["content"] == UNAVAILABLE
    msg = FakeMessage(f"<@99> {answer.question}", author_id=12)
    run(cog.on_message(msg))
    assert msg.replies[0]["content"] == UNAVAILABLE
    assert "Traceback" not in caplog.text and "connection refused" in caplog.text
    engine.ask = real_ask
    it = make_interaction(user_id=13)
    run(cog.ask_slash(it, answer.question))
    assert answer.quotes[0].text in it.last()["embeds"][0].description


# --- answers and votes in PostgreSQL ---


def _on_database(newsbot, url: str, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """The bot with its answers and votes in the database at ``url`` (as setup_hook opens them)."""
    import dataclasses

    from bot.feedback import open_feedback_store
    from bot.guilds import GuildSettings, ThreadMemory
    from index.config import Secret

    newsbot.store.close()
    newsbot.settings = dataclasses.replace(newsbot.settings, database_url=Secret(url), db_timeout=timeout)
    newsbot.store = open_feedback_store(newsbot.settings)
    newsbot.guild_settings = GuildSettings(newsbot.store.db)
    newsbot.thread_memory = ThreadMemory(newsbot.store.db)
    return newsbot


@pytest.mark.pg
def test_votes_are_recorded_in_the_database(newsbot, pg_url, make_interaction, answer) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import sqlite3

    import psycopg

    cog = AskCog(_on_database(newsbot, pg_url))
    it = make_interaction()
    run(cog.ask_slash(it, answer.question))
    aid = answer_id_of(it.last())
    run(cog.store_vote(make_interaction(user_id=77), aid, "up"))
    run(cog.store_vote(make_interaction(user_id=78), aid, "up"))
    run(cog.store_vote(it := make_interaction(user_id=78), aid, "down", reason="wrong_quote"))  # changed their mind
    assert "Thanks" in it.last()["content"]
    run(cog.show_passages(it := make_interaction(user_id=77), aid))
    assert "Rail fares will rise" in it.last()["embeds"][0].description
    hashes = newsbot.store.user_hash(78), newsbot.store.user_hash(77)
    newsbot.store.close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT user_hash, vote, question, reason FROM newsbot_feedback WHERE answer_id = %s "
                            "ORDER BY vote", (aid,)).fetchall()
        [(stored,)] = conn.execute("SELECT question FROM newsbot_answers WHERE answer_id = %s", (aid,)).fetchall()
    assert rows == [(hashes[0], DOWN, answer.question, "wrong_quote"), (hashes[1], UP, answer.question, None)]
    assert stored == answer.question
    with contextlib.closing(sqlite3.connect(newsbot.settings.feedback_db)) as conn:  # the fixture's file: untouched
        assert conn.execute("SELECT count(*) FROM answers").fetchone() == (0,)


@pytest.mark.pg
def test_an_unreachable_feedback_database_gets_a_short_apology_then_records_again(  # type: ignore[no-untyped-def]
        newsbot, make_interaction, answer, tmp_path, caplog) -> None:
    """The database that keeps the votes going away: a vote, the Passages button and a question each
    get a short apology (no traceback, no crash); once it is back the same bot records votes again."""
    import time

    import pgserver

    from bot.cogs.ask import UNAVAILABLE, VOTE_UNAVAILABLE

    server = pgserver.start_primary(tmp_path / "own")
    try:
        cog = AskCog(with_user(_on_database(newsbot, pgserver.create_database(server, "votes"), timeout=1.0)))
        it = make_interaction()
        run(cog.ask_slash(it, answer.question))
        aid = answer_id_of(it.last())
        server.stop()

        run(cog.store_vote(it := make_interaction(user_id=11), aid, "up"))
        assert it.last() == {**it.last(), "content": VOTE_UNAVAILABLE, "ephemeral": True}
        run(cog.show_passages(it := make_interaction(user_id=11), aid))
        assert it.last()["content"] == UNAVAILABLE and it.last()["ephemeral"]
        run(cog.ask_slash(it := make_interaction(user_id=12), answer.question))  # answered, but cannot be kept
        assert it.last()["content"] == UNAVAILABLE
        assert "Traceback" not in caplog.text and "cannot record feedback" in caplog.text

        server.start()
        deadline = time.monotonic() + 30
        while True:  # the pool reconnects by itself
            run(cog.store_vote(it := make_interaction(user_id=11), aid, "up"))
            if "Thanks" in it.last()["content"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "Thanks" in it.last()["content"]
        assert newsbot.store.counts(aid).up == 1
        newsbot.store.close()
    finally:
        server.close()
