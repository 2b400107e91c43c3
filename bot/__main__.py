"""``python -m bot``: run newsbot on Discord.

Exit codes: 0 after a clean stop (Ctrl-C, SIGTERM), 1 when the bot can't run (token rejected,
intent not enabled, no usable index, another error), 2 for a configuration problem (no
DISCORD_TOKEN, an invalid setting).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import BotSettings

log = logging.getLogger("bot")

EPILOG = """\
settings (environment variables, or a .env file in the project folder):
  DISCORD_TOKEN               the bot's token (required)
  DISCORD_GUILD_ID            sync the slash commands to this server only (instant); else globally
  NEWSBOT_INDEX_DIR           the index to answer from (build it with `newsbot rebuild`)
  NEWSBOT_FEEDBACK_DB         SQLite file for stored answers and 👍/👎 feedback (with
                              NEWSBOT_DATABASE_URL they are kept in the database instead)
  NEWSBOT_SECRET_KEY          the key voters' ids are hashed with (default: one made once in
                              data/feedback.key); the same in every process sharing a database
  NEWSBOT_COOLDOWN_SECONDS    per-user pause between questions (default 5)
  NEWSBOT_MAX_QUESTION_CHARS  longest question accepted (default 500)
  NEWSBOT_LOG_LEVEL           DEBUG, INFO (default), WARNING, ...
  NEWSBOT_SHARD_COUNT         the bot's number of Discord shards (alone: this process runs them all)
  NEWSBOT_SHARD_IDS           the shards this process runs: 0,1 or 0-3 (needs NEWSBOT_SHARD_COUNT);
                              only the process with shard 0 syncs commands and runs NEWSBOT_WATCH
  NEWSBOT_DISCORD_API_BASE    tests only: REST base URL, e.g. http://127.0.0.1:8080/api/v10
  NEWSBOT_DISCORD_GATEWAY     tests only: gateway URL, e.g. ws://127.0.0.1:8080/gateway

The bot needs the privileged Message Content Intent (developer portal -> Bot) for follow-up
questions in its threads. Commands: /ask, /sources, /help, /about and, on a message, Apps -> Check
against the news; for Manage Server /settings, /feeds, /add, /reload; or mention it, or DM it.
`newsbot feedback` reports the votes.
"""

NO_TOKEN = (
    "newsbot: DISCORD_TOKEN is not set. Put it in the environment or in the project's .env file "
    "(see .env.example); get it from the Discord developer portal, Applications -> your app -> Bot."
)
BAD_TOKEN = (
    "newsbot: Discord rejected DISCORD_TOKEN (401 Unauthorized). Check that it is the current bot token "
    "(developer portal -> Bot -> Reset Token) and that nothing else was pasted with it."
)
#: Gateway close codes that need the operator: the shard settings are wrong or too few.
GATEWAY_REFUSED = {
    4010: "newsbot: Discord refused the shard (close code 4010). Check NEWSBOT_SHARD_IDS and NEWSBOT_SHARD_COUNT: "
          "each shard id must be below the shard count.",
    4011: "newsbot: Discord requires sharding (close code 4011): the bot is in too many servers for one "
          "connection. Set NEWSBOT_SHARD_COUNT (Discord allows at most 2,500 servers a shard and recommends "
          "about 1,000), and NEWSBOT_SHARD_IDS to split the shards between processes.",
}
NO_INTENT = (
    "newsbot: Discord refused the Message Content Intent. Switch it on in the developer portal "
    "(Applications -> your app -> Bot -> Privileged Gateway Intents -> Message Content Intent)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Run newsbot on Discord: answers questions about the indexed news articles by quoting them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--env-file", type=Path, default=None, metavar="PATH",
        help="read settings from this .env file instead of the project's .env (the environment still wins)",
    )
    parser.add_argument(
        "--log-level", default=None, metavar="LEVEL",
        help="logging level (DEBUG, INFO, WARNING, ...); overrides NEWSBOT_LOG_LEVEL",
    )
    return parser


def configure_logging(level: str) -> None:
    """Log to stderr. Only the entry point configures handlers."""
    from index import logs

    name = level.strip().upper()
    numeric = logging.getLevelName(name)
    logs.configure(numeric if isinstance(numeric, int) else logging.INFO)
    if not isinstance(numeric, int):
        log.warning("unknown log level %r; using INFO", level)
    # discord.py's connection events (logged in, shard ready, resumed) are worth seeing.
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLogger("bot").level))


def use_test_endpoints(api_base: str, gateway: str) -> None:
    """Point discord.py at a local Discord stand-in (tests only).

    REST calls, interaction responses and webhooks all build their URLs from
    ``discord.http.Route.BASE``. A plain (unsharded) client, and a sharded one given its shard count
    (``NEWSBOT_SHARD_COUNT``), connect to ``DiscordWebSocket.DEFAULT_GATEWAY`` directly; they never
    ask ``GET /gateway/bot``. On a resume they use the ``resume_gateway_url`` from READY, which the
    stand-in sets to itself.
    """
    import discord.gateway
    import discord.http
    import yarl

    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
        log.warning("using a test Discord REST API at %s", discord.http.Route.BASE)
    if gateway:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        log.warning("using a test Discord gateway at %s", gateway)


async def run(settings: BotSettings, **bot_options: Any) -> None:
    """Run the bot until it is closed (SIGTERM closes it cleanly)."""
    from .client import NewsBot

    bot = NewsBot(settings, **bot_options)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows / not in the main thread
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(bot.close()))
    try:
        async with bot:
            await bot.start(settings.discord_token.reveal())
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    import aiohttp
    import discord

    from index.errors import ConfigError, NewsbotError

    from .config import BotSettings

    if args.env_file is not None and not args.env_file.is_file():
        print(f"newsbot: --env-file {args.env_file} is not a file", file=sys.stderr)
        return 2
    try:
        settings = BotSettings.from_env(dotenv=args.env_file, log_level=args.log_level)
    except ConfigError as e:
        print(f"newsbot: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if not settings.discord_token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    use_test_endpoints(settings.discord_api_base, settings.discord_gateway)
    try:
        asyncio.run(run(settings))
    except discord.LoginFailure:
        print(BAD_TOKEN, file=sys.stderr)
        return 1
    except discord.PrivilegedIntentsRequired:
        print(NO_INTENT, file=sys.stderr)
        return 1
    except discord.ConnectionClosed as e:
        if e.code not in GATEWAY_REFUSED:
            log.exception("newsbot stopped: Discord closed the gateway connection")
            return 1
        print(GATEWAY_REFUSED[e.code], file=sys.stderr)
        return 1
    except NewsbotError as e:
        print(f"newsbot: {e}", file=sys.stderr)
        return 1
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        log.debug("connection failure", exc_info=True)
        print(f"newsbot: cannot reach Discord ({type(e).__name__}: {e}). Check the network and try again.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("stopped (interrupted)")
        return 0
    except Exception:  # noqa: BLE001 - the edge: a logged traceback and a non-zero exit
        log.exception("newsbot stopped after an unexpected error")
        return 1
    log.info("stopped")
    return 0


class _Frontend:
    """``newsbot run``'s way in (the ``newsbot.frontends`` entry point): the bot when DISCORD_TOKEN is set."""

    @staticmethod
    def configured() -> bool:
        from .config import BotSettings

        return bool(BotSettings.from_env().discord_token)

    @staticmethod
    def main(argv: Sequence[str]) -> int:
        return main(argv)


frontend = _Frontend()


if __name__ == "__main__":
    sys.exit(main())
