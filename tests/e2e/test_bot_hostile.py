"""End to end on a corpus built to break things: mentions and masked links in article text,
sentences longer than a Discord embed, many sources, and enough articles for several pages.

One bot for the module, on an index of the seed corpus plus the articles of :mod:`e2e_corpora`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_corpora import (
    EVIL_URL,
    HOSTILE_QUESTION,
    LIGHTHOUSE_ARTICLES,
    LONG_ARTICLES,
    LONG_QUESTION,
    MANY_QUESTION,
    write_hostile_corpus,
)
from e2e_harness import (
    TOKEN,
    BotProcess,
    ask,
    assert_quiet,
    custom_ids,
    message_texts,
    running_bot,
)
from fakediscord import FakeDiscord, embed_size
from fakediscord import constants as C

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(180)]

ZWSP = "\u200b"
ARTICLES = 2 + 1 + LONG_ARTICLES + LIGHTHOUSE_ARTICLES
MASKED_LINK_RE = re.compile(r"\]\((?P<url>[^)\s]*)\)")

HOSTILE_QUESTIONS = [
    HOSTILE_QUESTION,
    "Who asked volunteers to arrive early at the harbour festival?",
    "Where are tickets for the harbour festival fireworks sold?",
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def hostile_index(module_dir: Path, real_embedder, fake: FakeDiscord) -> Path:  # type: ignore[no-untyped-def]
    from index.loaders import load_corpus
    from index.stores.build import build_index

    # The role mention names a real role of the fake guild: unescaped, it would ping Moderators.
    corpus = write_hostile_corpus(module_dir / "corpus", fake.ids.moderator_role_id)
    index_dir = module_dir / "index"
    build_index(index_dir, load_corpus(corpus), real_embedder)
    return index_dir


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, hostile_index: Path, module_dir: Path) -> Iterator[BotProcess]:
    with running_bot(fake, hostile_index, module_dir / "bot", cooldown=0) as process:
        yield process


@pytest.fixture(autouse=True)
def rules_kept(fake: FakeDiscord, bot: BotProcess) -> Iterator[None]:
    before = len(fake.rejections)
    yield
    assert fake.rejections[before:] == [], f"the fake refused requests:\n{bot.tail()}"
    assert fake.heartbeat_misses == []


def assert_harmless(message: dict) -> str:
    """No live mention or foreign masked link anywhere in the message; returns its text."""
    assert_quiet(message)
    text = "\n".join(message_texts(message))
    assert not re.search(r"@(everyone|here)", text), text  # each "@" is followed by a zero-width space
    assert not re.search(r"<@[!&]?\d", text) and "<#" not in text, text
    for m in MASKED_LINK_RE.finditer(text):  # the bot's own links only (to the articles)
        assert m["url"].startswith("https://news.example/"), (m["url"], text)
    return text


def assert_within_limits(message: dict) -> None:
    assert len(message.get("content") or "") <= 2000
    assert len(message.get("embeds") or []) <= 10
    for e in message.get("embeds") or []:
        assert len(e.get("description") or "") <= 4096 and len(e.get("title") or "") <= 256
    assert sum(embed_size(e) for e in message.get("embeds") or []) <= 6000


# --- hostile text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("question", HOSTILE_QUESTIONS)
def test_mentions_and_masked_links_in_articles_are_quoted_harmlessly(fake: FakeDiscord, question: str) -> None:
    _, reply = ask(fake, question)
    assert reply["embeds"], reply["content"]
    text = assert_harmless(reply)
    description = reply["embeds"][0]["description"]
    assert "harbour festival" in description
    # The hostile parts are still there for the reader, just inert.
    assert f"@{ZWSP}everyone" in text and f"<{ZWSP}@{ZWSP}&{fake.ids.moderator_role_id}>" in text
    assert "\\[click here\\]" in text and EVIL_URL in text


def test_a_hostile_question_is_echoed_harmlessly(fake: FakeDiscord) -> None:
    role = f"<@&{fake.ids.moderator_role_id}>"
    question = f"@everyone {role} [click here]({EVIL_URL}) when do the harbour festival fireworks start?"
    _, reply = ask(fake, question)
    title = reply["embeds"][0]["title"]
    assert_harmless(reply)
    assert title.startswith(f"@{ZWSP}everyone <{ZWSP}@{ZWSP}&") and "9pm" in reply["embeds"][0]["description"]


def test_a_mention_reply_and_its_thread_are_harmless(fake: FakeDiscord) -> None:
    mark = fake.mark()
    sent = fake.send_message(f"@everyone {HOSTILE_QUESTION}", mentions_bot=True)
    reply = fake.wait_message(lambda m: (m.get("message_reference") or {}).get("message_id") == sent["id"],
                              30, since=mark)
    assert_harmless(reply)
    assert reply["allowed_mentions"].get("replied_user") is False
    thread = fake.wait_until(lambda f: next((t for t in f.threads() if t["id"] == reply["id"]), None), 15, "thread")
    assert 1 <= len(thread["name"]) <= 100


def test_passages_and_sources_are_harmless(fake: FakeDiscord) -> None:
    _, reply = ask(fake, HOSTILE_QUESTIONS[2])
    passages_id = custom_ids(reply)[0]
    shown = fake.send_component(reply, passages_id).wait_response(30)
    assert shown["ephemeral"] is True
    text = assert_harmless(shown)
    assert "\\[click here\\]" in text
    page = fake.send_slash("sources", {"query": "harbour"}).wait_response(30)
    text = assert_harmless(page)
    assert f"@{ZWSP}everyone Harbour festival" in text and "Gazette" in text


# --- long answers ----------------------------------------------------------------------------------


def test_an_answer_longer_than_the_limits_is_trimmed_not_rejected(fake: FakeDiscord) -> None:
    interaction, reply = ask(fake, LONG_QUESTION)
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE
    [embed] = reply["embeds"]
    description = embed["description"]
    assert_within_limits(reply)
    assert "Tideway" in description and "…" in description  # the ~4,500-character quote was cut
    assert "**Sources**" in description and "**[1]**" in description  # the sources survive the cut
    assert_quiet(reply)
    # The passage around that sentence is as long: trimmed the same way.
    shown = fake.send_component(reply, custom_ids(reply)[0]).wait_response(30)
    assert_within_limits(shown)
    assert "Tideway" in shown["embeds"][0]["description"]


def test_a_long_mention_question_gets_a_fitting_reply_and_thread_name(fake: FakeDiscord) -> None:
    question = LONG_QUESTION + " " + " ".join(["Please quote the inquiry's findings in full."] * 6)
    assert len(question) > 300
    mark = fake.mark()
    sent = fake.send_message(question, mentions_bot=True)
    reply = fake.wait_message(lambda m: (m.get("message_reference") or {}).get("message_id") == sent["id"],
                              30, since=mark)
    assert_within_limits(reply)
    assert reply["embeds"] and "Tideway" in reply["embeds"][0]["description"]
    thread = fake.wait_until(lambda f: next((t for t in f.threads() if t["id"] == reply["id"]), None), 15, "thread")
    assert len(thread["name"]) <= 100 and thread["name"].startswith("What did the Tideway")


def test_an_answer_citing_many_articles(fake: FakeDiscord) -> None:
    _, reply = ask(fake, MANY_QUESTION)
    assert_within_limits(reply)
    description = reply["embeds"][0]["description"]
    quotes = [line for line in description.split("\n\n") if line.startswith("> ")]
    assert len(quotes) >= 2 and all("Gull Rock lighthouse" in q for q in quotes)
    sources = description.split("**Sources**", 1)[1]
    numbers = [int(n) for n in re.findall(r"\*\*\[(\d+)\]\*\*", sources)]
    assert len(numbers) >= 3 and numbers == list(range(1, len(numbers) + 1)), sources
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", description.split("**Sources**", 1)[0])}
    assert cited == set(numbers)  # every marker has its source line, and the reverse


# --- paging ----------------------------------------------------------------------------------------


def page_through(fake: FakeDiscord, query: str | None = None) -> tuple[list[str], list[str]]:
    """Open ``/sources`` and press ▶ until it is disabled; returns every line and every footer."""
    options = {"query": query} if query else {}
    first = fake.send_slash("sources", options).wait_response(30)
    message_id = first["id"]
    lines = first["embeds"][0]["description"].splitlines()
    footers = [first["embeds"][0]["footer"]["text"]]
    current = first
    while True:
        buttons = {c["label"]: c for row in current["components"] for c in row["components"]}
        assert set(buttons) == {"◀", "▶"}
        if buttons["▶"].get("disabled"):
            break
        press = fake.send_component(message_id, buttons["▶"]["custom_id"])
        current = press.wait_response(30)
        # Acknowledged at once (a deferred update), then the message is edited in place.
        assert press.callback_type == C.CB_DEFERRED_UPDATE_MESSAGE and press.ack_latency < 3.0
        assert current["id"] == message_id and current["source"] == "edit"
        assert_harmless(current)
        lines += current["embeds"][0]["description"].splitlines()
        footers.append(current["embeds"][0]["footer"]["text"])
        assert len(footers) <= 10, "the pages never end"
    back = fake.send_component(message_id, buttons["◀"]["custom_id"]).wait_response(30)
    assert back["embeds"][0]["footer"]["text"] == footers[-2]
    return lines, footers


def test_sources_pages_through_every_article(fake: FakeDiscord) -> None:
    lines, footers = page_through(fake)
    pages = -(-ARTICLES // 10)
    assert footers == [f"Page {p} of {pages} · {ARTICLES} articles" for p in range(1, pages + 1)]
    assert [int(re.match(r"\*\*(\d+)\.\*\*", line)[1]) for line in lines] == list(range(1, ARTICLES + 1))
    text = "\n".join(lines)
    for n in range(1, LIGHTHOUSE_ARTICLES + 1):
        assert text.count(f"Gull Rock lighthouse restoration report {n:02d}]") == 1
    assert text.count("Tideway barrier inquiry findings, part") == LONG_ARTICLES
    assert text.count("Chery") == 2 and text.count("Harbour festival") == 1


def test_sources_query_pages_through_its_matches(fake: FakeDiscord) -> None:
    lines, footers = page_through(fake, "lighthouse")
    assert len(lines) == LIGHTHOUSE_ARTICLES and footers[-1] == f"Page 3 of 3 · {LIGHTHOUSE_ARTICLES} articles"
    assert all("Gull Rock lighthouse" in line for line in lines)


# --- buttons under load ----------------------------------------------------------------------------


def test_buttons_pressed_during_a_burst_of_questions_are_acknowledged_in_time(fake: FakeDiscord) -> None:
    """Quick clicks must not queue behind slow questions: each is acknowledged within Discord's 3 s."""
    page = fake.send_slash("sources").wait_response(30)
    _, answer = ask(fake, MANY_QUESTION)
    next_page = next(c for c in custom_ids(page) if c.startswith("nb:src:n:"))
    vote = next(c for c in custom_ids(answer) if c.startswith("nb:fb:up:"))
    burst = [fake.send_slash("ask", {"question": q})  # 102 questions, then the two clicks
             for q in [LONG_QUESTION, MANY_QUESTION, HOSTILE_QUESTION] * 34]
    presses = [fake.send_component(page["id"], next_page), fake.send_component(answer, vote, user="admin")]
    results = [presses[0].wait_response(60), presses[1].wait_response(60, index=1)]  # the vote: counts, then thanks
    acks = {p.name: p.ack_latency for p in presses + burst}
    assert all(a is not None and a < 3.0 for a in acks.values()), sorted(acks.values())[-5:]
    assert "Page 2 of 3" in results[0]["embeds"][0]["footer"]["text"]
    assert "Thanks" in results[1]["content"]
    for interaction in burst:
        assert interaction.wait_response(120)["embeds"]  # and every question is answered
