"""Run the fake Discord standalone: ``cd tests && python -m fakediscord [--port N]``.

Prints the environment a bot needs, then serves until Ctrl-C. Handy for poking at a bot by hand.
"""

from __future__ import annotations

import argparse
import logging
import threading

from .server import FakeDiscord

_log = logging.getLogger(__name__)


def main() -> None:
    """Parse arguments, start the fake, print its env, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m fakediscord", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--token", default="test-token", help="the bot token the fake accepts")
    parser.add_argument("--heartbeat-ms", type=int, default=41250, help="gateway heartbeat interval")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    with FakeDiscord(args.token, args.heartbeat_ms, port=args.port) as fake:
        for key, value in fake.env(guild_var="DISCORD_GUILD_ID").items():
            print(f"export {key}={value}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            _log.info("stopping")


if __name__ == "__main__":
    main()
