"""Run ``newsbot rebuild`` for real in this process, with the fast hashing embedder and a stage hook.

Used by the reliability tests as a subprocess, so that a rebuild can be killed with SIGKILL at a
chosen stage of ``index.stores.build_index`` (the ``hook`` callback), or held at one while another
process tries to rebuild the same index::

    python tests/reliability/rebuild_driver.py [--kill-at STAGE] [--hold-at STAGE --hold-file F
        --release-file F] [--log FILE] -- rebuild --corpus DIR --index DIR [--full] [--wait]

Everything after ``--`` goes to the real ``index.cli.main``: argument parsing, logging, the lock,
error messages and exit codes are the CLI's own; only the model is swapped for the hashing embedder.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

#: A hold never lasts longer than this (the test that holds a rebuild may have died).
MAX_HOLD_S = 60.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kill-at", metavar="STAGE", help="SIGKILL this process when build_index reaches STAGE")
    p.add_argument("--hold-at", metavar="STAGE", help="pause at STAGE until --release-file exists")
    p.add_argument("--hold-file", type=Path, help="created when the hold begins")
    p.add_argument("--release-file", type=Path, help="the hold ends when this file exists")
    p.add_argument("--log", type=Path, help="append 'PID STAGE MONOTONIC_NS' for every stage to FILE")
    p.add_argument("cli", nargs=argparse.REMAINDER, help="arguments of `newsbot` (after --)")
    args = p.parse_args(argv)
    cli_args = args.cli[1:] if args.cli[:1] == ["--"] else args.cli

    import index.embed
    import index.stores
    from index.cli import main as cli_main
    from index.embed import HashingEmbedder

    def hook(stage: str) -> None:
        if args.log is not None:
            fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{os.getpid()} {stage} {time.monotonic_ns()}\n".encode())
            finally:
                os.close(fd)
        if stage == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if stage == args.hold_at:
            assert args.hold_file is not None and args.release_file is not None
            args.hold_file.touch()
            deadline = time.monotonic() + MAX_HOLD_S
            while not args.release_file.exists() and time.monotonic() < deadline:
                time.sleep(0.01)

    # The CLI loads the configured model; these runs use the hashing embedder instead.
    index.embed.load_embedder = lambda *_a, **_k: HashingEmbedder()  # type: ignore[assignment]
    index.embed.model_fingerprint = lambda *_a, **_k: HashingEmbedder.fingerprint  # type: ignore[assignment]
    index.stores.build_index = functools.partial(index.stores.build_index, hook=hook)  # type: ignore[assignment]
    return cli_main(cli_args)


if __name__ == "__main__":
    sys.exit(main())
