"""End to end: the commands say where they may be used (servers, DMs, user installs), as a globally
synced bot (a real install: no DISCORD_GUILD_ID) shows them, and a DM gets its answer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import TOKEN, BotProcess, message_texts, running_bot
from fakediscord import FakeDiscord, FakeDiscordError

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.timeout(180)]

GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2
GUILD_INSTALL, USER_INSTALL = 0, 1


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bot(fake: FakeDiscord, seed_index: Path, module_dir: Path) -> Iterator[BotProcess]:
    shutil.copytree(seed_index, module_dir / "index")
    with running_bot(fake, module_dir / "index", module_dir / "bot", guild=False) as process:
        yield process


def test_each_command_declares_its_contexts_and_installs(fake: FakeDiscord, bot: BotProcess) -> None:
    commands = {c["name"]: c for c in fake.commands()}
    for name in ("ask", "sources", "help", "about"):  # for members anywhere, and for a user's own install
        assert sorted(commands[name]["contexts"]) == [GUILD, BOT_DM, PRIVATE_CHANNEL], name
        assert sorted(commands[name]["integration_types"]) == [GUILD_INSTALL, USER_INSTALL], name
    for name in ("settings", "reload", "feeds", "add"):  # a server's admins only
        assert commands[name]["contexts"] == [GUILD], name
        assert commands[name]["integration_types"] == [GUILD_INSTALL], name


def test_ask_in_a_dm_is_answered_and_server_commands_are_not_offered_there(fake: FakeDiscord, bot: BotProcess) -> None:
    interaction = fake.send_slash("ask", {"question": "Where is Chery opening its European headquarters?"},
                                  guild=False)
    reply = interaction.wait_response(30)
    assert "Liverpool" in "\n".join(message_texts(reply)) and reply["ephemeral"] is False
    help_reply = fake.send_slash("help", guild=False).wait_response(30)
    assert help_reply["embeds"] and help_reply["ephemeral"] is True
    with pytest.raises(FakeDiscordError, match="not allowed in bot DMs"):
        fake.send_slash("settings show", user="admin", guild=False)
    assert fake.rejections == []
