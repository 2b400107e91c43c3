"""End to end: the real bot process (``python -m bot``) on the seed corpus against the fake Discord.

One bot for the module (the model takes seconds to load); the last test restarts it. Every test
checks that the fake refused nothing the bot sent and that no gateway heartbeat was late.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import (
    ROOT,
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

from bot.feedback import hash_user_id

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(180)]

QUESTION = "Where is Chery opening its European headquarters?"
OFF_TOPIC = "Who won the 2024 Champions League final?"
MIXED_QUESTIONS = [
    QUESTION,
    "Who is the leader of Liverpool City Council?",
    "How many cars a year can the Halewood plant produce?",
    "Which brands does Chery sell in the UK?",
    OFF_TOPIC,
]
DEADLINE = 3.0  # Discord's window for the first response to an interaction

FERRY_QUESTION = "Where will the new Mersey ferry terminal be built?"
FERRY_ARTICLE = """---
id: ferry
title: New Mersey ferry terminal approved
source: Wirral Globe
published: 2025-03-02
---
A new Mersey ferry terminal will be built at Woodside in Birkenhead, the council said on Monday.
The terminal is expected to open in 2027 and will replace the ageing landing stage.
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, seed_index: Path, module_dir: Path) -> Iterator[BotProcess]:
    # A copy of the seed index: the /reload test rebuilds it with one more article.
    index_dir = module_dir / "index"
    shutil.copytree(seed_index, index_dir)
    # Cooldown 0: the concurrency test asks 50 questions at once as one user.
    with running_bot(fake, index_dir, module_dir / "bot", cooldown=0) as process:
        yield process


@pytest.fixture(autouse=True)
def rules_kept(fake: FakeDiscord, bot: BotProcess) -> Iterator[None]:
    """Whatever a test does, Discord refuses nothing the bot sends and no heartbeat is late."""
    with rules_kept_by(fake, bot):
        yield


def assert_cited_answer(message: dict, question: str, expect: str) -> str:
    """An answer embed: the question as title, a quote with [1], the source list, three buttons."""
    [embed] = message["embeds"]
    assert embed["title"] == question
    description = embed["description"]
    assert description.startswith("> ") and "[1]" in description and expect in description, description
    assert "**Sources**" in description and "**[1]**" in description
    assert embed["footer"]["text"].startswith("Confidence ")
    ids = custom_ids(message)
    assert len(ids) == 3 and ids[0].startswith("nb:passages:"), ids
    answer_id = ids[0].removeprefix("nb:passages:")
    assert ids[1:] == [f"nb:fb:up:{answer_id}", f"nb:fb:down:{answer_id}"]
    assert_quiet(message)
    return answer_id


# --- commands --------------------------------------------------------------------------------------


def test_command_schema_synced(fake: FakeDiscord) -> None:
    commands = {c["name"]: c for c in fake.commands(fake.ids.guild_id)}
    assert set(commands) == {"ask", "sources", "reload", "feeds", "add", "help", "about", "settings",
                             "Check against the news"}
    assert fake.commands() == []  # DISCORD_GUILD_ID set: nothing global
    options = {o["name"]: o for o in commands["ask"]["options"]}
    assert list(options) == ["question", "source", "since", "until"]
    question = options["question"]
    assert question["type"] == C.OPT_STRING and question["required"] is True
    assert question["min_length"] == 1 and question["max_length"] == 500
    assert options["source"]["autocomplete"] is True and not options["source"].get("required")
    assert not options["since"].get("required") and not options["until"].get("required")
    [query] = commands["sources"]["options"]
    assert query["name"] == "query" and not query.get("required") and query["max_length"] == 40
    assert commands["reload"]["default_member_permissions"] == str(C.P_MANAGE_GUILD)
    # Every slash command says what it does; the context menu has none, as Discord stores it.
    assert all(c["description"] for c in commands.values() if c["type"] == C.CMD_CHAT_INPUT)
    assert commands["Check against the news"]["description"] == ""


def test_ask_is_deferred_then_answered_with_citations(fake: FakeDiscord) -> None:
    interaction, reply = ask(fake, QUESTION)
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE  # "newsbot is thinking…"
    assert interaction.ack_latency is not None and interaction.ack_latency < DEADLINE
    assert reply["source"] == "followup" and reply["ephemeral"] is False
    assert reply["id"] == str(interaction.original_message_id)  # the follow-up fills the deferred message
    assert_cited_answer(reply, QUESTION, "Liverpool")
    source_line = reply["embeds"][0]["description"].split("**Sources**", 1)[1]
    assert "Motoring Research" in source_line or "Chery" in source_line


def test_off_topic_question_is_declined(fake: FakeDiscord) -> None:
    interaction, reply = ask(fake, OFF_TOPIC)
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE and interaction.ack_latency < DEADLINE
    assert reply["embeds"] == [] and reply["content"] and "Liverpool" not in reply["content"]  # no quotes
    [button] = [c for row in reply["components"] for c in row["components"]]  # only "should have been answered"
    assert button["label"] == "This should have been answered" and button["custom_id"].startswith("nb:fb:miss:")
    assert "don't" in reply["content"] or "can't" in reply["content"], reply["content"]
    assert_quiet(reply)


def test_invalid_date_gets_a_private_hint(fake: FakeDiscord) -> None:
    interaction, reply = ask(fake, QUESTION, since="next tuesday")
    assert interaction.callback_type == C.CB_CHANNEL_MESSAGE and reply["ephemeral"] is True
    assert "YYYY-MM-DD" in reply["content"]


def test_sources_lists_every_article(fake: FakeDiscord) -> None:
    interaction = fake.send_slash("sources")
    reply = interaction.wait_response(30)
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE and interaction.ack_latency < DEADLINE
    [embed] = reply["embeds"]
    lines = embed["description"].splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["**1.**", "**2.**"]
    assert all("Chery" in line for line in lines)
    assert embed["footer"]["text"] == "Page 1 of 1 · 2 articles"
    assert reply["components"] == []  # one page: no ◀ ▶
    assert_quiet(reply)


def test_passages_button_shows_each_quote_in_context(fake: FakeDiscord) -> None:
    _, answer = ask(fake, QUESTION)
    answer_id = assert_cited_answer(answer, QUESTION, "Liverpool")
    press = fake.send_component(answer, f"nb:passages:{answer_id}", user="admin")
    shown = press.wait_response(30)
    assert press.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE and press.ack_latency < DEADLINE
    assert shown["ephemeral"] is True
    assert shown["embeds"], shown
    first = shown["embeds"][0]
    assert first["title"].startswith("[1] ")
    assert "**" in first["description"] and "Liverpool" in first["description"]  # the quote, in bold, in context
    assert_quiet(shown)


# --- messages --------------------------------------------------------------------------------------


def ask_by_mention(fake: FakeDiscord, question: str, **where: int) -> tuple[dict, dict]:
    mark = fake.mark()
    sent = fake.send_message(question, mentions_bot=True, **where)
    reply = fake.wait_message(
        lambda m: m["event"] == "create" and (m.get("message_reference") or {}).get("message_id") == sent["id"],
        30, since=mark,
    )
    return sent, reply


def test_mention_is_answered_as_a_reply_with_a_thread(fake: FakeDiscord) -> None:
    sent, reply = ask_by_mention(fake, QUESTION)
    assert reply["type"] == C.MSG_REPLY and reply["channel_id"] == sent["channel_id"]
    assert reply["allowed_mentions"]["replied_user"] is False  # the reply doesn't ping the asker
    assert_cited_answer(reply, QUESTION, "Liverpool")
    thread = fake.wait_until(lambda f: next((t for t in f.threads() if t["id"] == reply["id"]), None), 15,
                             "the answer's thread")
    assert thread["owner_id"] == str(fake.ids.bot_id) and thread["name"] == QUESTION


def test_follow_up_in_the_bots_thread_needs_no_mention(fake: FakeDiscord) -> None:
    _, reply = ask_by_mention(fake, "Which city is getting Chery's new European base?")
    thread = fake.wait_until(lambda f: next((t for t in f.threads() if t["id"] == reply["id"]), None), 15,
                             "the answer's thread")
    mark = fake.mark()
    follow_up = fake.send_message("Who is the leader of Liverpool City Council?", thread=int(thread["id"]))
    assert follow_up["mentions"] == []
    answer = fake.wait_message(
        lambda m: (m.get("message_reference") or {}).get("message_id") == follow_up["id"], 30, since=mark
    )
    assert answer["channel_id"] == thread["id"]
    text = "\n".join(message_texts(answer))
    assert "Robertson" in text or "Robinson" in text, text
    assert all(t["parent_id"] == str(fake.ids.channel_id) for t in fake.threads())  # no thread in a thread


def test_other_bots_and_unaddressed_messages_are_ignored(fake: FakeDiscord) -> None:
    mark = fake.mark()
    from_bot = fake.send_message(QUESTION, author="other_bot", mentions_bot=True)
    unaddressed = fake.send_message(QUESTION)  # no mention, not in the bot's thread
    # A question after them: once it is answered, the earlier two have been seen (and ignored).
    sentinel, _ = ask_by_mention(fake, QUESTION)
    replies = [m for m in fake.messages[mark:] if m["source"] != "user"]
    referenced = {(m.get("message_reference") or {}).get("message_id") for m in replies}
    assert sentinel["id"] in referenced
    assert from_bot["id"] not in referenced and unaddressed["id"] not in referenced
    assert len([m for m in replies if m["event"] == "create"]) == 1


# --- /reload ---------------------------------------------------------------------------------------


def test_help_tells_a_member_privately_how_to_ask_filter_and_use_the_buttons(fake: FakeDiscord) -> None:
    interaction = fake.send_slash("help")
    reply = interaction.wait_response(30)
    assert interaction.callback_type == C.CB_CHANNEL_MESSAGE and reply["ephemeral"] is True
    assert interaction.ack_latency < DEADLINE
    [embed] = reply["embeds"]
    text = embed["description"]
    for needed in ("/ask", "source:", "since:", "until:", "Passages", "👍", "👎", "This should have been answered",
                   "Check against the news", "/sources", "/about"):
        assert needed in text, needed
    assert_quiet(reply)


def test_about_gives_the_real_index_figures(fake: FakeDiscord) -> None:
    interaction = fake.send_slash("about")
    reply = interaction.wait_response(30)
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE and interaction.ack_latency < DEADLINE
    assert reply["ephemeral"] is True
    [embed] = reply["embeds"]
    lines = embed["description"].splitlines()
    about = {line.split("**: ", 1)[0].lstrip("*"): line.split("**: ", 1)[1] for line in lines}
    # The seed corpus: two articles (../shared/seeds), one of them from Motoring Research.
    assert about["Articles"].startswith("2 (38 sentences)")
    assert "Motoring Research" in about["Outlets (1)"]
    assert about["Published"] == "no article is dated"  # the seed articles carry no date
    assert about["Model"] == "all-MiniLM-L6-v2 (onnx-int8)"
    assert any(k.startswith("Feeds") for k in about) and about["Index updated"] != "unknown"
    assert_quiet(reply)


def test_reload_is_refused_without_manage_server(fake: FakeDiscord) -> None:
    # Discord hides the command from members without Manage Server (default_member_permissions)...
    with pytest.raises(FakeDiscordError, match="cannot see command"):
        fake.send_slash("reload", user="user")
    # ...but a server admin can open it to anyone (Integrations settings): the bot checks too.
    fake.set_command_permissions("reload", {"user": True})
    try:
        interaction = fake.send_slash("reload", user="user")
        reply = interaction.wait_response(30)
    finally:
        fake.set_command_permissions("reload", {})
    assert interaction.callback_type == C.CB_CHANNEL_MESSAGE and reply["ephemeral"] is True
    assert "Manage Server" in reply["content"]
    assert "Reloaded" not in reply["content"]


def test_reload_by_an_admin_serves_the_rebuilt_index(fake: FakeDiscord, module_dir: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.loaders import load_corpus
    from index.stores.build import build_index

    _, before = ask(fake, FERRY_QUESTION)
    assert "Birkenhead" not in "\n".join(message_texts(before))
    corpus = module_dir / "corpus"  # the bot's corpus folder (it keeps its feeds' state there already)
    shutil.copytree(ROOT / "corpus", corpus, dirs_exist_ok=True)
    (corpus / "ferry.md").write_text(FERRY_ARTICLE, encoding="utf-8")
    build_index(module_dir / "index", load_corpus(corpus), real_embedder)  # while the bot serves the old one

    interaction = fake.send_slash("reload", user="admin")
    reply = interaction.wait_response(60)
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE and interaction.ack_latency < DEADLINE
    assert reply["ephemeral"] is True
    assert reply["content"].startswith("Reloaded the index: 3 articles"), reply["content"]
    _, after = ask(fake, FERRY_QUESTION)
    assert_cited_answer(after, FERRY_QUESTION, "Birkenhead")
    assert "Wirral Globe" in after["embeds"][0]["description"]
    _, answer = ask(fake, QUESTION)  # the old articles are still there
    assert_cited_answer(answer, QUESTION, "Liverpool")


# --- load and faults -------------------------------------------------------------------------------


def test_fifty_concurrent_asks_are_all_acknowledged_in_time(fake: FakeDiscord) -> None:
    interactions = [fake.send_slash("ask", {"question": MIXED_QUESTIONS[i % len(MIXED_QUESTIONS)]})
                    for i in range(50)]
    replies = [i.wait_response(90) for i in interactions]
    late = [(i.id, i.ack_latency) for i in interactions if i.ack_latency is None or i.ack_latency >= DEADLINE]
    assert late == [], f"acknowledged too late: {late}"
    assert all(i.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE for i in interactions)
    for interaction, reply in zip(interactions, replies, strict=True):
        question = interaction.payload["data"]["options"][0]["value"]
        if question == OFF_TOPIC:
            assert reply["embeds"] == [] and reply["content"]
        elif question == QUESTION:
            assert_cited_answer(reply, QUESTION, "Liverpool")
        else:
            assert reply["embeds"] or reply["content"]
    assert fake.max_heartbeat_gap() < 1.5 * fake.heartbeat_interval_ms / 1000
    # Answers go out as they are ready, not all at the end of the burst (no store write queued
    # behind every question: see bot/workers.py).
    done = sorted(m["recorded_at"] - i.dispatched_at for i in interactions for m in fake.messages
                  if m["interaction_id"] == i.id and m["source"] == "followup")
    assert len(done) == 50 and done[len(done) // 2] < 0.8 * done[-1], done


def test_gateway_drop_is_survived(fake: FakeDiscord) -> None:
    resumes, identifies = fake.resume_count, fake.identify_count
    fake.drop_gateway(4000)  # a close Discord sends when it restarts a gateway node: resume
    fake.wait_until(lambda f: f.resume_count > resumes, 30, "a resume after the drop")
    _, reply = ask(fake, QUESTION)
    assert_cited_answer(reply, QUESTION, "Liverpool")

    fake.drop_gateway(None)  # the TCP connection just dies (1006)
    fake.wait_until(lambda f: f.resume_count > resumes + 1, 30, "a resume after the abort")
    sent, reply = ask_by_mention(fake, QUESTION)
    assert_cited_answer(reply, QUESTION, "Liverpool")

    fake.drop_gateway(4000, invalidate_session=True)  # the session is gone: identify afresh
    fake.wait_until(lambda f: f.identify_count > identifies, 30, "a new IDENTIFY")
    fake.wait_ready(30, count=identifies + 1)
    _, reply = ask(fake, QUESTION)
    assert_cited_answer(reply, QUESTION, "Liverpool")


def test_rate_limited_follow_up_still_arrives(fake: FakeDiscord) -> None:
    before = len(fake.rate_limited)
    fake.rate_limit_next("POST", r"^/webhooks/\d+/[^/]+$", retry_after=0.5)
    interaction, reply = ask(fake, QUESTION)
    assert_cited_answer(reply, QUESTION, "Liverpool")
    [limited] = fake.rate_limited[before:]
    assert limited.injected and interaction.token in limited.path
    posts = [r for r in fake.requests if r.method == "POST" and r.path.startswith("/webhooks/")
             and interaction.token in r.path]
    assert [r.status for r in posts] == [429, 200]
    assert posts[1].monotonic - posts[0].monotonic >= 0.45  # it waited Retry-After


# --- feedback ----------------------------------------------------------------------------------------


def test_thumbs_down_opens_a_form_whose_reason_is_stored_and_reported(fake: FakeDiscord, module_dir: Path) -> None:
    """👎 answers with a form (a modal, the first response); its submission stores the reason and the
    comment, puts the count on the button and thanks privately; a decline's "This should have been
    answered" counts too; and `newsbot feedback --json` reports both."""
    import json
    import subprocess
    import sys

    _, answer = ask(fake, QUESTION)
    answer_id = assert_cited_answer(answer, QUESTION, "Liverpool")
    press = fake.send_component(answer, f"nb:fb:down:{answer_id}", user="admin")
    press.wait_callback(30)
    assert press.callback_type == C.CB_MODAL and press.ack_latency < DEADLINE
    form = press.modal
    assert form["custom_id"].startswith(f"nb:fbm:{answer_id}:")
    reason, comment = (row["component"] for row in form["components"])
    assert [o["value"] for o in reason["options"]] == ["wrong_quote", "outdated", "wrong_source", "other"]
    with pytest.raises(FakeDiscordError, match="not among options"):  # what a user cannot pick
        fake.send_modal_submit(press, {"reason": ["boring"]}, user="admin")
    with pytest.raises(FakeDiscordError, match="required"):
        fake.send_modal_submit(press, {"comment": "no reason picked"}, user="admin")
    submit = fake.send_modal_submit(press, {"reason": ["outdated"], "comment": "The plan changed in May."},
                                    user="admin")
    counted, thanks = submit.wait_response(30), submit.wait_response(30, index=1)
    assert submit.callback_type == C.CB_DEFERRED_UPDATE_MESSAGE and submit.ack_latency < DEADLINE
    assert counted["id"] == answer["id"]
    assert [c.get("label") for row in counted["components"] for c in row["components"]] == ["Passages", None, "1"]
    assert thanks["ephemeral"] is True and "what was wrong" in thanks["content"]

    _, declined = ask(fake, OFF_TOPIC)
    [miss] = custom_ids(declined)
    press = fake.send_component(declined, miss, user="admin")
    counted, thanks = press.wait_response(30), press.wait_response(30, index=1)
    assert counted["id"] == declined["id"]
    assert counted["components"][0]["components"][0]["label"] == "This should have been answered · 1"
    assert thanks["ephemeral"] is True and "should have answered" in thanks["content"]

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEWSBOT_"))}
    env["NEWSBOT_FEEDBACK_DB"] = str(module_dir / "bot" / "feedback.sqlite3")
    r = subprocess.run([sys.executable, "-m", "index", "feedback", "--json"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no library noise, no warnings
    report = {v["answer_id"]: v for v in json.loads(r.stdout)["voted_down"]}
    assert report[answer_id]["question"] == QUESTION and report[answer_id]["reasons"] == {"outdated": 1}
    assert report[answer_id]["comments"] == ["The plan changed in May."]
    declined_id = miss.rsplit(":", 1)[1]
    assert report[declined_id]["question"] == OFF_TOPIC and report[declined_id]["reasons"] == {"missed": 1}


# --- restart ---------------------------------------------------------------------------------------


def test_feedback_buttons_and_threads_survive_a_restart(fake: FakeDiscord, bot: BotProcess, module_dir: Path) -> None:
    _, answer = ask(fake, QUESTION)
    answer_id = assert_cited_answer(answer, QUESTION, "Liverpool")
    _, in_thread = ask_by_mention(fake, "Which city is getting Chery's new European base?")
    thread = fake.wait_until(lambda f: next((t for t in f.threads() if t["id"] == in_thread["id"]), None), 15,
                             "the answer's thread")

    assert bot.stop() == 0, bot.tail()
    assert "stopped" in bot.output
    ready_before = fake.identify_count
    bot.start()
    bot.wait_ready(fake)
    assert fake.identify_count == ready_before + 1

    press = fake.send_component(answer, f"nb:fb:up:{answer_id}", user="user")
    counted, thanks = press.wait_response(30), press.wait_response(30, index=1)
    assert press.callback_type == C.CB_DEFERRED_UPDATE_MESSAGE
    assert press.ack_latency is not None and press.ack_latency < DEADLINE
    assert counted["id"] == answer["id"] and counted["source"] == "edit"  # the answer's 👍 shows the vote
    assert [c.get("label") for row in counted["components"] for c in row["components"]] == ["Passages", "1", None]
    assert thanks["ephemeral"] is True and "Thanks" in thanks["content"]
    passages = fake.send_component(answer, f"nb:passages:{answer_id}", user="user").wait_response(30)
    assert passages["embeds"] and "Liverpool" in passages["embeds"][0]["description"]

    db = module_dir / "bot" / "feedback.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM feedback WHERE answer_id = ?", (answer_id,))]
        dump = "\n".join(str(tuple(r)) for r in conn.execute("SELECT * FROM feedback"))
    assert len(rows) == 1, rows
    [row] = rows
    assert row["vote"] == 1 and row["question"] == QUESTION and "Liverpool" in row["answer"]
    key = (module_dir / "bot" / "feedback.key").read_bytes().strip()  # made by the bot, for this install
    assert row["user_hash"] == hash_user_id(fake.ids.user_id, key)
    assert str(fake.ids.user_id) not in dump  # only the keyed hash is stored
    # The 👎 form opened on a message from before the restart is read by the new process too.
    press = fake.send_component(answer, f"nb:fb:down:{answer_id}", user="admin")
    press.wait_callback(30)
    submit = fake.send_modal_submit(press, {"reason": ["wrong_source"]}, user="admin")
    counted = submit.wait_response(30)
    assert [c.get("label") for row in counted["components"] for c in row["components"]] == ["Passages", "1", "1"]
    assert "what was wrong" in submit.wait_response(30, index=1)["content"]

    _, again = ask(fake, OFF_TOPIC)  # and the restarted bot answers as before
    assert again["content"] and again["embeds"] == []
    # The thread it started before the restart still takes follow-ups without a mention.
    mark = fake.mark()
    follow_up = fake.send_message("How many new jobs could the headquarters create?", thread=int(thread["id"]))
    reply = fake.wait_message(
        lambda m: (m.get("message_reference") or {}).get("message_id") == follow_up["id"], 30, since=mark
    )
    assert reply["channel_id"] == thread["id"] and "hundreds" in "\n".join(message_texts(reply))
