"""Helpers of the end-to-end tests: the real bot process (``python -m bot``) against the fake Discord.

A :class:`BotProcess` runs ``python -m bot`` with environment variables pointing it at a
:class:`fakediscord.FakeDiscord`, the index and a feedback database in a temporary folder (and
an empty ``--env-file``, so a developer's ``.env`` can't leak in). Its
stdout and stderr go to a log file (a pipe could fill up and block the bot), which the tests
read for the readiness line and check for the token. Test modules start one bot per module
(the model takes seconds to load) and share it between their tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fakediscord import FakeDiscord, FakeInteraction

ROOT = Path(__file__).resolve().parents[2]

#: A token that is easy to spot: it must never appear in the bot's output.
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.e2e-secret.Zm9vYmFyLXRva2VuLXNob3VsZC1uZXZlci1sZWFr"

READY_LINE = "newsbot ready as"
START_TIMEOUT = 90.0  # model load plus command sync, on a busy machine
REPLY_TIMEOUT = 30.0

JSON = dict[str, Any]


# Loaded here, in the parent: nothing may be imported between fork and exec (another thread of
# the test process could hold the import lock).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the bot if the test process dies without stopping it (no orphaned bots)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, _SIGTERM)


class BotProcess:
    """``python -m bot`` in a subprocess, configured only through its environment."""

    def __init__(self, env: Mapping[str, str], workdir: Path, name: str = "bot") -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.starts = 0
        # An empty .env: a developer's own .env must not leak settings into the tests.
        self.env_file = workdir / "empty.env"
        self.env_file.write_text("", encoding="utf-8")

    def start(self) -> BotProcess:
        """Start the process (its output goes to ``<workdir>/<name>-<n>.log``)."""
        if self.running:
            raise RuntimeError("the bot is already running")
        self.starts += 1
        self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "--env-file", str(self.env_file)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def output(self) -> str:
        """Everything the current (or last) process wrote."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def all_output(self) -> str:
        """Everything every start of this bot wrote."""
        logs = sorted(self.workdir.glob(f"{self.name}-*.log"))
        return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in logs)

    def wait_ready(self, fake: FakeDiscord, timeout: float = START_TIMEOUT, *, synced: bool = True) -> None:
        """Wait for the readiness log line (engine loaded, commands synced, gateway READY) and, with
        ``synced``, for the commands in the fake: in DISCORD_GUILD_ID's guild when set, else global."""
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.output:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the bot exited with {self.proc.returncode} before it was ready:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot was not ready within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.1)
        if synced:
            scope = int(self.env["DISCORD_GUILD_ID"]) if self.env.get("DISCORD_GUILD_ID") else None
            fake.wait_until(lambda f: f.core.commands.by_scope.get(scope), 10, "command sync")

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL if it hangs. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def bot_env(
    fake: FakeDiscord | None,
    *,
    index_dir: Path,
    feedback_db: Path,
    cooldown: float = 0.0,
    extra: Mapping[str, str] | None = None,
    guild: bool = True,
) -> dict[str, str]:
    """The environment of a bot subprocess: the fake's endpoints and token, the index, the database.

    ``guild``: set DISCORD_GUILD_ID to the fake's (first) guild, so commands sync there; else globally."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NEWSBOT_"))}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "NEWSBOT_INDEX_DIR": str(index_dir),
            # Feeds and fetched articles live beside the index, never in the project's corpus/.
            "NEWSBOT_CORPUS_DIR": str(index_dir.parent / "corpus"),
            "NEWSBOT_FEEDBACK_DB": str(feedback_db),
            "NEWSBOT_COOLDOWN_SECONDS": str(cooldown),
            "NEWSBOT_LOG_LEVEL": "INFO",
        }
    )
    if fake is not None:
        env.update(fake.env(token_var="DISCORD_TOKEN", guild_var="DISCORD_GUILD_ID" if guild else None))
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running_bot(
    fake: FakeDiscord, index_dir: Path, workdir: Path, *, cooldown: float = 0.0, name: str = "bot",
    extra: Mapping[str, str] | None = None, guild: bool = True,
) -> Iterator[BotProcess]:
    """A started, ready bot; stopped (cleanly) afterwards, and its output checked for the token.

    ``extra``: more environment variables for the bot; ``guild``: sync the commands to the fake's
    guild (else globally, as a real install does: then they can be used in DMs). See :func:`bot_env`."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = bot_env(fake, index_dir=index_dir, feedback_db=workdir / "feedback.sqlite3", cooldown=cooldown,
                  extra=extra, guild=guild)
    bot = BotProcess(env, workdir, name)
    bot.start()
    try:
        bot.wait_ready(fake)
    except BaseException:
        bot.stop()
        raise
    yield bot
    code = bot.stop()
    assert fake.token not in bot.all_output(), "the token appeared in the bot's output"
    assert code == 0, f"the bot did not stop cleanly (exit {code}):\n{bot.tail()}"


# --- helpers for the tests -------------------------------------------------------------------------


@contextlib.contextmanager
def rules_kept_by(fake: FakeDiscord, bot: BotProcess) -> Iterator[None]:
    """Around a test: Discord refuses nothing the bot sends, no heartbeat is late, no route is unknown."""
    before = len(fake.rejections)
    yield
    assert fake.rejections[before:] == [], f"the fake refused requests:\n{bot.tail()}"
    assert fake.heartbeat_misses == [], "the bot's event loop was blocked past a heartbeat"
    assert fake.unhandled_routes == []


def new_rejections(fake: FakeDiscord, since: int) -> list[Any]:
    """Rejections recorded after index ``since`` of ``fake.rejections``."""
    return fake.rejections[since:]


def ask(fake: FakeDiscord, question: str, *, user: str = "user", timeout: float = REPLY_TIMEOUT,
        **options: str) -> tuple[FakeInteraction, JSON]:
    """``/ask question`` as ``user``: the interaction and the first message the user sees."""
    interaction = fake.send_slash("ask", {"question": question, **options}, user=user)
    return interaction, interaction.wait_response(timeout)


def message_texts(message: JSON) -> list[str]:
    """Every piece of text a message shows: content, embed titles, descriptions, fields, footers."""
    texts = [message.get("content") or ""]
    for e in message.get("embeds") or []:
        texts += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        texts += [(e.get("author") or {}).get("name") or ""]
        for f in e.get("fields") or []:
            texts += [f.get("name") or "", f.get("value") or ""]
    return [t for t in texts if t]


def custom_ids(message: JSON) -> list[str]:
    """The custom ids of a message's buttons, in order."""
    return [c["custom_id"] for row in message.get("components") or [] for c in row.get("components") or []
            if "custom_id" in c]


def assert_quiet(message: JSON) -> None:
    """The message was sent with no mentions allowed, and pinged nobody."""
    assert message["allowed_mentions"] is not None and message["allowed_mentions"].get("parse") == [], message
    assert not message["allowed_mentions"].get("users") and not message["allowed_mentions"].get("roles")
    assert message["mentions"] == [] and message["mention_roles"] == [] and message["mention_everyone"] is False


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` (in this thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)

