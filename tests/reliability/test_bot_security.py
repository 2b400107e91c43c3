"""Security of the real bot process against the local Discord stand-in: the token comes only from the
environment or a git-ignored .env and never reaches a log line; admin commands refuse users without
the permission, from a server or a DM; hostile questions get a clear, inert reply.

The bot runs with the hashing embedder (PROBE_HASHING, see bot_probe.py) so it starts in seconds.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakediscord import FakeDiscord, FakeDiscordError
from fakediscord import constants as C
from relutil import ROOT, ProbedBot, bot_env, corpus_v1, corpus_v2, write_corpus

from index.embed import HashingEmbedder
from index.loaders import load_corpus
from index.stores.build import build_index

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

EMB = HashingEmbedder()
#: Looks like a real bot token (base64 id . timestamp . HMAC) and is easy to find in a log.
TOKEN = "MTEyMzQ1Njc4OTAxMjM0NTY3OA.GsecrT.reliability-token-must-never-be-logged-0123456789"
SECRET_PART = TOKEN.rsplit(".", 1)[1]
FAIL_QUESTION = "please trigger the injected failure"
LIVE_MENTION = re.compile(r"<@!?\d+>|<@&\d+>|<#\d+>|@everyone|@here", re.IGNORECASE)
MASKED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")


def _texts(message: dict) -> list[str]:  # type: ignore[type-arg]
    out = [message.get("content") or ""]
    for e in message.get("embeds") or []:
        out += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        out += [f.get("name", "") + "\n" + f.get("value", "") for f in e.get("fields") or []]
    return [t for t in out if t]


def _assert_inert(message: dict) -> None:  # type: ignore[type-arg]
    assert message["allowed_mentions"] is not None and message["allowed_mentions"].get("parse") == []
    assert message["mentions"] == [] and message["mention_roles"] == [] and message["mention_everyone"] is False
    for text in _texts(message):
        assert not LIVE_MENTION.search(text), text
        assert not MASKED_LINK.search(text) or "**Sources**" in text, text


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sec-index")
    build_index(root / "ix", load_corpus(write_corpus(root / "c", corpus_v1())), EMB)
    return root / "ix"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbedBot]:
    """One bot for the module: the token only in its .env file, logging at DEBUG, no guild id (so its
    commands are global and could be offered in DMs)."""
    workdir = tmp_path_factory.mktemp("sec-bot")
    env = bot_env(fake, index_dir=index_dir, workdir=workdir, cooldown=0, hashing=True, guild=False,
                  token_in_env=False, extra={"NEWSBOT_LOG_LEVEL": "DEBUG", "PROBE_FAIL_QUESTION": FAIL_QUESTION})
    assert "DISCORD_TOKEN" not in env
    proc = ProbedBot(env, workdir, env_file_text=f"DISCORD_TOKEN={TOKEN}\n").start()
    try:
        proc.wait_ready(fake)
        yield proc
    finally:
        code = proc.stop()
        # After everything the module did (answers, errors, reloads, refusals, hostile questions, stop).
        for n, line in enumerate(proc.output.splitlines(), 1):
            assert TOKEN not in line and SECRET_PART not in line, f"the token is in log line {n}"
        assert code == 0, proc.output[-3000:]


@pytest.fixture(autouse=True)
def rules_kept(fake: FakeDiscord, bot: ProbedBot) -> Iterator[None]:
    before = len(fake.rejections)
    yield
    assert fake.rejections[before:] == [], f"the fake refused requests:\n{bot.output[-3000:]}"


# -- the token --------------------------------------------------------------------------------------


def test_dotenv_is_git_ignored_and_no_token_is_committed() -> None:
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False).returncode == 0
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert ".env" not in tracked
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^DISCORD_TOKEN=\s*$", example, re.M), "the example must not carry a token"
    # Nothing tracked outside the tests looks like a bot token (id.timestamp.hmac, base64url).
    token_like = re.compile(rb"[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}")
    for name in tracked:
        path = ROOT / name
        if name.startswith("tests/") or not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        assert not token_like.search(path.read_bytes()), f"{name} holds something that looks like a bot token"


def test_settings_never_show_the_token() -> None:
    from bot.config import BotSettings as Settings

    s = Settings.from_env({"DISCORD_TOKEN": TOKEN})
    assert s.discord_token.reveal() == TOKEN
    for text in (repr(s), str(s), repr(s.discord_token), f"{s.discord_token}", str(vars(s))):
        assert TOKEN not in text and SECRET_PART not in text


def test_token_from_dotenv_never_reaches_a_log_line(fake: FakeDiscord, bot: ProbedBot, index_dir: Path,
                                                   tmp_path: Path) -> None:
    """Start-up (done), an answer, a decline, a cooldown-free burst, an error with a traceback, a
    failed /reload: then every line the bot wrote is searched for the token."""
    answer = fake.send_slash("ask", {"question": "Why did the dock workers strike?"}).wait_response(30)
    assert answer["embeds"] or answer["content"]
    fake.send_slash("ask", {"question": "What is the capital of Mars?"}).wait_response(30)
    failed = fake.send_slash("ask", {"question": FAIL_QUESTION})
    apology = failed.wait_response(30)
    assert "went wrong" in apology["content"], apology
    # A reload that fails: the index is damaged by a rebuild that is then cut short.
    build_index(index_dir, load_corpus(write_corpus(tmp_path / "c2", corpus_v2())), EMB)
    manifest = index_dir / "manifest.json"
    good = manifest.read_bytes()
    manifest.write_bytes(good[: len(good) // 2])
    try:
        reply = fake.send_slash("reload", user="owner").wait_response(30)
        assert "still serving the old index" in reply["content"], reply
        assert "rebuild" in reply["content"]  # the fix is named
        # Still serving the old index: the library story is only in the first build.
        old = fake.send_slash("sources", {"query": "Library"}).wait_response(30)
        assert "Library fines" in "\n".join(_texts(old)), old
    finally:
        manifest.write_bytes(good)
    out = bot.output
    assert "injected failure" in out and "Traceback" in out, "the error path was not exercised"
    assert "reload failed" in out
    for n, line in enumerate(out.splitlines(), 1):
        assert TOKEN not in line and SECRET_PART not in line, f"the token is in log line {n}: {line[:200]}"
    assert bot.proc is not None
    cmdline = Path(f"/proc/{bot.proc.pid}/cmdline").read_bytes()
    assert SECRET_PART.encode() not in cmdline
    feedback = (bot.workdir / "feedback.sqlite3").read_bytes()
    assert SECRET_PART.encode() not in feedback


# -- admin commands -----------------------------------------------------------------------------------


def _reload_command(fake: FakeDiscord) -> dict:  # type: ignore[type-arg]
    return next(c for c in fake.commands() if c["name"] == "reload")


def test_reload_is_not_offered_in_dms_or_to_members(fake: FakeDiscord) -> None:
    command = _reload_command(fake)
    assert command["default_member_permissions"] == str(C.P_MANAGE_GUILD)
    assert command.get("dm_permission") is False or (command.get("contexts") and 1 not in command["contexts"])
    for user in ("user", "admin", "owner"):
        with pytest.raises(FakeDiscordError, match="DM|dm_permission"):
            fake.send_slash("reload", user=user, guild=False)
    with pytest.raises(FakeDiscordError, match="cannot see command"):
        fake.send_slash("reload", user="user")


def _open_reload_everywhere(fake: FakeDiscord, open_: bool) -> None:
    """What a Discord-side change (or a stale command cache) could do: offer /reload to anyone, anywhere."""
    def apply() -> None:
        for c in fake.core.commands.by_scope.get(None, []):
            if c["name"] == "reload":
                if open_:
                    c["_saved"] = {k: c.get(k) for k in ("contexts", "dm_permission", "default_member_permissions")}
                    c.update(contexts=None, dm_permission=True, default_member_permissions=None)
                else:
                    c.update(c.pop("_saved"))
    fake._run(apply)  # noqa: SLF001 - test-only tampering with the fake's command registry


@pytest.mark.parametrize("user", ["user", "admin", "owner"])
def test_reload_from_a_dm_is_refused_by_the_bot_itself(fake: FakeDiscord, bot: ProbedBot, user: str) -> None:
    generation_line = bot.output.count("index reloaded")
    _open_reload_everywhere(fake, True)
    try:
        interaction = fake.send_slash("reload", user=user, guild=False)
        reply = interaction.wait_response(30)
    finally:
        _open_reload_everywhere(fake, False)
    assert reply["ephemeral"] is True and "server" in reply["content"].lower(), reply
    assert "Reloaded" not in reply["content"]
    assert bot.output.count("index reloaded") == generation_line


def test_reload_in_a_server_without_manage_server_is_refused(fake: FakeDiscord, bot: ProbedBot) -> None:
    reader = fake.add_user("reader-no-perms")
    _open_reload_everywhere(fake, True)
    try:
        replies = [fake.send_slash("reload", user=u).wait_response(30) for u in ("user", reader)]
    finally:
        _open_reload_everywhere(fake, False)
    for reply in replies:
        assert reply["ephemeral"] is True and "Manage Server" in reply["content"], reply
    admin = fake.send_slash("reload", user="admin").wait_response(60)
    assert admin["content"].startswith("Reloaded the index"), admin


# -- hostile questions at the bot ---------------------------------------------------------------------

BOT_QUESTIONS = [
    "   ", "\u200b", "🔥🚀🎉", "👩‍👩‍👧‍👦", '"', '"unterminated', "*", "NEAR(dock strike, 2)", "strike OR ferry",
    "AND", "(", "))((", "^strike", "text: strike", "'; DROP TABLE sentences; --",
    "@everyone why did the dock workers strike?", "@here who was elected?", "<@123456789012345678> who?",
    "<@&123456789012345678> ping the role", "[click me](https://evil.example) why did the ferry stop?",
    "**bold** __under__ ~~strike~~ `code` ```block``` > quote ||spoiler|| # heading -# small",
    "\x1b[31mwho\x1b[0m was \x07elected?", "\u202ewho was elected mayor?", "x" * 500,
]


@pytest.mark.parametrize("question", BOT_QUESTIONS, ids=range(len(BOT_QUESTIONS)))
def test_hostile_question_by_slash_command_gets_a_clear_inert_reply(fake: FakeDiscord, question: str) -> None:
    interaction = fake.send_slash("ask", {"question": question})
    reply = interaction.wait_response(30)
    assert interaction.ack_latency is not None and interaction.ack_latency < 3.0
    assert _texts(reply), reply
    assert "went wrong" not in (reply.get("content") or "")
    _assert_inert(reply)


def test_slash_questions_discord_would_refuse_are_refused_by_the_schema(fake: FakeDiscord) -> None:
    for question in ("", "x" * 501, "why " * 2500):
        with pytest.raises(FakeDiscordError, match="length"):
            fake.send_slash("ask", {"question": question})


@pytest.mark.parametrize("question", ["", "x" * 1970, "@everyone <@&1> [a](https://evil.example) why?",
                                      "\u202e\x00\x07 who?", "🔥" * 300])
def test_hostile_question_by_mention_gets_a_clear_inert_reply(fake: FakeDiscord, question: str) -> None:
    since = fake.mark()
    sent = fake.send_message(question, mentions_bot=True)
    reply = fake.wait_message(
        lambda m: (m.get("message_reference") or {}).get("message_id") == sent["id"], 30, since=since)
    assert _texts(reply)
    assert "went wrong" not in (reply.get("content") or "")
    _assert_inert(reply)
