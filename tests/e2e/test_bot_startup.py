"""End to end: ``python -m bot`` refuses to run without a usable token, says why, and never prints it.

These bots stop before loading the engine (login comes first), so no model is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import TOKEN, BotProcess, bot_env
from fakediscord import FakeDiscord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

WRONG_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.wrong-secret.bm90LXRoZS1yaWdodC10b2tlbg"


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord(token=TOKEN) as server:
        yield server


def run_to_exit(env: dict[str, str], workdir: Path, timeout: float = 45.0) -> tuple[int, str]:
    bot = BotProcess(env, workdir).start()
    try:
        code = bot.wait_exit(timeout)
    finally:
        bot.stop()
    return code, bot.output


def test_missing_token_exits_with_a_clear_message(tmp_path: Path) -> None:
    env = bot_env(None, index_dir=tmp_path / "index", feedback_db=tmp_path / "feedback.sqlite3")
    env["DISCORD_TOKEN"] = ""
    code, output = run_to_exit(env, tmp_path)
    assert code == 2, output
    assert "DISCORD_TOKEN is not set" in output and "developer portal" in output
    assert "Traceback" not in output


def test_rejected_token_exits_non_zero_without_printing_it(fake: FakeDiscord, tmp_path: Path) -> None:
    env = bot_env(fake, index_dir=tmp_path / "index", feedback_db=tmp_path / "feedback.sqlite3")
    env["DISCORD_TOKEN"] = WRONG_TOKEN
    code, output = run_to_exit(env, tmp_path)
    assert code == 1, output
    assert "Discord rejected DISCORD_TOKEN (401 Unauthorized)" in output
    assert "Traceback" not in output
    for secret in (WRONG_TOKEN, *WRONG_TOKEN.split(".")[1:]):
        assert secret not in output
    assert [(r.status, r.path) for r in fake.rejections] == [(401, "/users/@me")]
    assert fake.identify_count == 0

