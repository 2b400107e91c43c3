"""End to end: what a server admin sets with ``/settings``, obeyed on every path, kept across a restart;
threads that read a follow-up with its question; chit-chat; DMs; the ``since`` choices.

The real bot process on the seed corpus against the fake Discord, one bot for the module (the last
test restarts it on the same database). Every test checks that the fake refused nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import (
    TOKEN,
    BotProcess,
    ask,
    assert_quiet,
    custom_ids,
    message_texts,
    rules_kept_by,
    running_bot,
)
from fakediscord import FakeDiscord, FakeDiscordError
from fakediscord import constants as C

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(240)]

QUESTION = "Where is Chery opening its European headquarters?"
LEADER = "Who is the leader of Liverpool City Council?"
CHECK = "Check against the news"  # the message context menu
CLAIM = "Apparently Chery is opening a European headquarters in Liverpool 🤔 <@1100000000000000401>"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def index_dir(seed_index: Path, module_dir: Path) -> Path:
    target = module_dir / "index"
    shutil.copytree(seed_index, target)
    return target


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, index_dir: Path, module_dir: Path) -> Iterator[BotProcess]:
    with running_bot(fake, index_dir, module_dir / "bot", cooldown=0) as process:
        yield process


@pytest.fixture(autouse=True)
def rules_kept(fake: FakeDiscord, bot: BotProcess) -> Iterator[None]:
    with rules_kept_by(fake, bot):
        yield


def settings(fake: FakeDiscord, name: str, options: dict | None = None, *, user: str = "admin") -> dict:
    """``/settings <name>`` as ``user``: the private reply."""
    interaction = fake.send_slash(f"settings {name}", options or {}, user=user)
    reply = interaction.wait_response(30)
    assert reply["ephemeral"] is True, reply
    return reply


def reply_to(fake: FakeDiscord, sent: dict, mark: int, timeout: float = 30) -> dict:
    return fake.wait_message(
        lambda m: m["event"] == "create" and (m.get("message_reference") or {}).get("message_id") == sent["id"],
        timeout, since=mark,
    )


def replied(fake: FakeDiscord, sent: dict, mark: int) -> bool:
    return any((m.get("message_reference") or {}).get("message_id") == sent["id"]
               for m in fake.messages[mark:] if m["source"] != "user")


def mention(fake: FakeDiscord, text: str, **where: int) -> tuple[dict, dict]:
    mark = fake.mark()
    sent = fake.send_message(text, mentions_bot=True, **where)
    return sent, reply_to(fake, sent, mark)


def thread_of(fake: FakeDiscord, message: dict) -> dict:
    return fake.wait_until(lambda f: next((t for t in f.threads() if t["id"] == message["id"]), None), 15,
                           "the answer's thread")


# --- /settings: who may change it ----------------------------------------------------------------


def test_settings_is_for_server_managers_only(fake: FakeDiscord) -> None:
    [command] = [c for c in fake.commands(fake.ids.guild_id) if c["name"] == "settings"]
    assert command["default_member_permissions"] == str(C.P_MANAGE_GUILD)
    assert command["contexts"] == [0]  # servers only
    subcommands = {o["name"] for o in command["options"]}
    assert {"show", "mention-channel", "everywhere", "ask-channel", "role", "answers", "checks", "threads",
            "reset"} <= subcommands
    with pytest.raises(FakeDiscordError, match="cannot see command"):
        fake.send_slash("settings show", user="user")
    # A server admin may open it to everyone (Integrations): the bot still checks Manage Server.
    fake.set_command_permissions("settings", {"user": True})
    try:
        reply = settings(fake, "answers", {"visibility": "private"}, user="user")
        assert "Manage Server" in reply["content"]
        assert "public" in settings(fake, "show")["embeds"][0]["description"]  # nothing changed
    finally:
        fake.set_command_permissions("settings", {})


# --- where mentions are answered -------------------------------------------------------------------


def test_mentions_are_answered_only_in_the_channels_allowed(fake: FakeDiscord) -> None:
    newsdesk = fake.add_channel("newsdesk")
    reply = settings(fake, "mention-channel", {"channel": newsdesk, "answer": True})
    assert f"<#{newsdesk}>" in reply["embeds"][0]["description"] and "only" in reply["content"]
    try:
        mark = fake.mark()
        ignored = fake.send_message(QUESTION, mentions_bot=True)  # #general is not listed any more
        sent, answer = mention(fake, QUESTION, channel_id=newsdesk)
        assert answer["channel_id"] == str(newsdesk) and answer["embeds"]
        assert not replied(fake, ignored, mark)  # seen before the later one, and left alone
    finally:
        reply = settings(fake, "everywhere")
    assert "every channel" in reply["embeds"][0]["description"]
    _, answer = mention(fake, QUESTION)
    assert answer["embeds"]


def test_an_ask_the_news_channel_answers_plain_messages_and_ignores_chit_chat(fake: FakeDiscord) -> None:
    channel = fake.add_channel("ask-the-news")
    reply = settings(fake, "ask-channel", {"channel": channel, "on": True})
    assert "Every message" in reply["content"]
    try:
        mark = fake.mark()
        thanks = fake.send_message("thanks, that helps!", channel_id=channel)
        question = fake.send_message(QUESTION, channel_id=channel)  # no mention
        answer = reply_to(fake, question, mark)
        assert "Liverpool" in "\n".join(message_texts(answer))
        assert not replied(fake, thanks, mark)  # no "the articles don't say" for a thank-you
    finally:
        settings(fake, "ask-channel", {"channel": channel, "on": False})
    mark = fake.mark()
    plain = fake.send_message(QUESTION, channel_id=channel)
    _, sentinel = mention(fake, QUESTION, channel_id=channel)
    assert sentinel and not replied(fake, plain, mark)


# --- who may ask, and how answers are shown ---------------------------------------------------------


def test_only_the_role_chosen_may_ask_and_a_refusal_is_private(fake: FakeDiscord) -> None:
    settings(fake, "role", {"role": fake.ids.moderator_role_id})
    try:
        interaction, refusal = ask(fake, QUESTION, user="user")
        assert refusal["ephemeral"] is True and "Moderator" in refusal["content"]
        assert interaction.callback_type == C.CB_CHANNEL_MESSAGE
        _, answer = ask(fake, QUESTION, user="admin")  # the admin has the Moderator role
        assert answer["embeds"] and answer["ephemeral"] is False
        # A mention from a member without the role: no public scolding, a DM that says why.
        mark = fake.mark()
        sent = fake.send_message(QUESTION, mentions_bot=True, author="user")
        dm = fake.wait_message(lambda m: m["event"] == "create" and m["channel_id"] != str(fake.ids.channel_id),
                               30, since=mark)
        assert "Moderator" in dm["content"]
        assert fake.channel(int(dm["channel_id"]))["type"] == C.CH_DM
        assert not replied(fake, sent, mark)
        # The claim check obeys it too, privately and at once.
        said = fake.send_message(CLAIM, author="admin")
        check = fake.send_message_command(CHECK, said, user="user")
        refusal = check.wait_response(30)
        assert check.callback_type == C.CB_CHANNEL_MESSAGE and refusal["ephemeral"] is True
        assert "Moderator" in refusal["content"]
    finally:
        settings(fake, "role")  # no role: everyone
    _, answer = ask(fake, QUESTION, user="user")
    assert answer["embeds"]


def test_private_answers(fake: FakeDiscord) -> None:
    settings(fake, "answers", {"visibility": "private"})
    try:
        interaction, answer = ask(fake, QUESTION)
        assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE
        assert answer["ephemeral"] is True and answer["embeds"]
    finally:
        settings(fake, "answers", {"visibility": "public"})
    _, answer = ask(fake, QUESTION)
    assert answer["ephemeral"] is False


# --- "Check against the news" ---------------------------------------------------------------------


def test_the_check_menu_is_synced_as_discord_stores_a_context_menu(fake: FakeDiscord) -> None:
    [menu] = [c for c in fake.commands(fake.ids.guild_id) if c["name"] == CHECK]
    assert menu["type"] == C.CMD_MESSAGE and menu["description"] == "" and not menu.get("options")
    assert sorted(menu["contexts"]) == [0, 1, 2] and sorted(menu["integration_types"]) == [0, 1]


def test_a_claim_the_articles_cover_is_checked_privately_with_citations(fake: FakeDiscord) -> None:
    said = fake.send_message(CLAIM, author="admin")
    check = fake.send_message_command(CHECK, said, user="user")
    reply = check.wait_response(30)
    assert check.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE and check.ack_latency < 3.0
    assert reply["ephemeral"] is True  # a check is about someone else's message: private by default
    [embed] = reply["embeds"]
    assert embed["author"]["name"] == "Checked against the news"
    assert embed["title"] == "Apparently Chery is opening a European headquarters in Liverpool 🤔"  # the mention gone
    assert embed["url"] == f"https://discord.com/channels/{fake.ids.guild_id}/{said['channel_id']}/{said['id']}"
    assert "Liverpool" in embed["description"] and "[1]" in embed["description"]
    assert "**Sources**" in embed["description"] and "judge the claim" in embed["footer"]["text"]
    assert any(c.startswith("nb:passages:") for c in custom_ids(reply))
    assert_quiet(reply)


def test_a_claim_the_articles_never_mention_is_said_not_to_be_covered(fake: FakeDiscord) -> None:
    said = fake.send_message("The Mersey tunnels will close for a whole year from next March.", author="admin")
    reply = fake.send_message_command(CHECK, said, user="user").wait_response(30)
    assert reply["ephemeral"] is True and reply["embeds"] == []
    assert "don't cover this claim" in reply["content"]
    # Nothing to check, and the bot's own answers: said at once, privately.
    thanks = fake.send_message("thanks!", author="admin")
    assert "doesn't say anything" in fake.send_message_command(CHECK, thanks).wait_response(30)["content"]
    _, answer = ask(fake, QUESTION)
    assert "one of my answers" in fake.send_message_command(CHECK, answer).wait_response(30)["content"]


def test_public_checks_are_a_setting(fake: FakeDiscord) -> None:
    settings(fake, "checks", {"visibility": "public"})
    try:
        said = fake.send_message(CLAIM, author="admin")
        reply = fake.send_message_command(CHECK, said, user="user").wait_response(30)
        assert reply["ephemeral"] is False and reply["embeds"]
    finally:
        settings(fake, "checks", {"visibility": "private"})


# --- threads that remember -------------------------------------------------------------------------


def test_a_follow_up_is_read_with_the_threads_question(fake: FakeDiscord) -> None:
    _, answer = mention(fake, LEADER)
    thread = thread_of(fake, answer)
    mark = fake.mark()
    thanks = fake.send_message("thanks!", thread=int(thread["id"]))
    follow_up = fake.send_message("and what did he say?", thread=int(thread["id"]))
    reply = reply_to(fake, follow_up, mark)
    text = "\n".join(message_texts(reply))
    assert "huge opportunity" in text or "delighted" in text, text  # the leader's words, not a decline
    assert LEADER.rstrip("?") in reply["embeds"][0]["title"]  # the question it was read as
    assert not replied(fake, thanks, mark)
    assert_quiet(reply)
    # A question of its own in the thread becomes what the next follow-ups are read with.
    mark = fake.mark()
    topic = fake.send_message("What is Chery opening in Liverpool?", thread=int(thread["id"]))
    reply_to(fake, topic, mark)
    mark = fake.mark()
    again = fake.send_message("how many jobs?", thread=int(thread["id"]))
    assert "hundreds" in "\n".join(message_texts(reply_to(fake, again, mark)))


def test_ask_can_open_a_thread(fake: FakeDiscord) -> None:
    _, answer = ask(fake, QUESTION)
    assert not any(t["id"] == answer["id"] for t in fake.threads())  # off by default
    settings(fake, "threads", {"on": True})
    try:
        _, answer = ask(fake, "What is Chery opening in Liverpool?")
        thread = thread_of(fake, answer)
        assert thread["owner_id"] == str(fake.ids.bot_id)
        mark = fake.mark()
        follow_up = fake.send_message("how many jobs?", thread=int(thread["id"]))
        assert "hundreds" in "\n".join(message_texts(reply_to(fake, follow_up, mark)))
    finally:
        settings(fake, "threads", {"on": False})


# --- DMs and time windows --------------------------------------------------------------------------


def test_a_direct_message_is_answered(fake: FakeDiscord) -> None:
    mark = fake.mark()
    sent = fake.send_message(QUESTION, dm=True)
    answer = reply_to(fake, sent, mark)
    assert answer["channel_id"] == sent["channel_id"] and "Liverpool" in "\n".join(message_texts(answer))
    mark = fake.mark()
    thanks = fake.send_message("thank you", dm=True)
    assert "Ask me anything" in reply_to(fake, thanks, mark)["content"]  # a clear reply, not a decline


def test_since_offers_the_usual_windows_and_names_the_one_used(fake: FakeDiscord) -> None:
    complete = fake.send_autocomplete("ask", {"question": QUESTION, "since": ""}, "since")
    names = [c["name"] for c in complete.wait_callback(15)["data"]["choices"]]
    assert names == ["Last 24 hours", "Last 7 days", "Last 30 days", "This year"]
    _, reply = ask(fake, QUESTION, since="7d")  # the seed articles are undated: nothing in the window
    assert "Searched: articles from the last 7 days (since " in reply["content"], reply["content"]
    _, reply = ask(fake, QUESTION, since="next tuesday")
    assert reply["ephemeral"] is True and "last 24 hours" in reply["content"]


# --- a restart ---------------------------------------------------------------------------------------


def test_settings_survive_a_restart(fake: FakeDiscord, bot: BotProcess) -> None:
    newsdesk = fake.add_channel("newsdesk-2")
    settings(fake, "mention-channel", {"channel": newsdesk, "answer": True})
    settings(fake, "answers", {"visibility": "private"})
    assert bot.stop() == 0
    bot.start()
    bot.wait_ready(fake)
    shown = settings(fake, "show")["embeds"][0]["description"]
    assert f"<#{newsdesk}>" in shown and "private to the asker" in shown
    mark = fake.mark()
    ignored = fake.send_message(QUESTION, mentions_bot=True)
    _, answer = mention(fake, QUESTION, channel_id=newsdesk)
    assert answer["embeds"] and not replied(fake, ignored, mark)
    _, answer = ask(fake, QUESTION)
    assert answer["ephemeral"] is True
    settings(fake, "reset")


def test_each_new_post_in_an_ask_the_news_forum_is_a_question(fake: FakeDiscord) -> None:
    forum = fake.add_forum_channel("ask-the-news-forum")
    settings(fake, "ask-channel", {"channel": forum, "on": True})
    try:
        mark = fake.mark()
        post = fake.create_forum_post(forum, "Council leader", LEADER)
        answer = reply_to(fake, post, mark)
        assert answer["channel_id"] == post["channel_id"] == post["id"]  # in the post's thread
        assert "Robertson" in "\n".join(message_texts(answer)) or "Robinson" in "\n".join(message_texts(answer))
        mark = fake.mark()
        follow_up = fake.send_message("and what did he say?", thread=int(post["id"]))
        text = "\n".join(message_texts(reply_to(fake, follow_up, mark)))
        assert "huge opportunity" in text or "delighted" in text, text
    finally:
        settings(fake, "ask-channel", {"channel": forum, "on": False})
    mark = fake.mark()
    ignored = fake.create_forum_post(forum, "Another", QUESTION)
    _, sentinel = mention(fake, QUESTION)
    assert sentinel and not replied(fake, ignored, mark)
