"""Logging for the commands and the bot: newsbot's own lines, and no library noise.

Libraries log their internals at INFO (faiss probes its CPU builds with a ModuleNotFoundError for
each one it lacks, sentence-transformers announces every load) and transformers draws a progress
bar while it reads the weights. None of it helps the person running newsbot, so libraries log
warnings and errors only, and no progress bar is drawn, unless ``--verbose`` (or
``NEWSBOT_LOG_LEVEL=DEBUG``) asks for everything.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

#: newsbot's own loggers; everything else is a library.
OWN = ("newsbot", "index", "bot")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str | int = "INFO", *, verbose: bool = False, stream: TextIO | None = None) -> None:
    """newsbot's loggers at ``level`` (DEBUG with ``verbose``), libraries at WARNING (DEBUG with
    ``verbose``), one stderr handler; and no library progress bars unless ``verbose``."""
    own = logging.DEBUG if verbose else _level(level)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose or own <= logging.DEBUG else logging.WARNING)
    for name in OWN:
        logging.getLogger(name).setLevel(own)
    if not verbose:
        quiet_libraries()


def quiet_libraries() -> None:
    """No progress bars from the model libraries (read when they are imported, and again here in
    case they already were)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    return value if isinstance(value, int) else logging.INFO


def is_terminal(stream: TextIO) -> bool:
    """A terminal that shows control sequences (not a pipe or a file, not TERM=dumb)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class Status:
    """One status line on a terminal ("Loading the model…"), rubbed out when the work is done;
    nothing at all when ``stream`` is not a terminal (a pipe, a file, CI)."""

    def __init__(self, text: str, stream: TextIO | None = None) -> None:
        self.text = text
        self.stream = stream or sys.stderr
        self.shown = is_terminal(self.stream)

    def __enter__(self) -> Status:
        if self.shown:
            self.stream.write(self.text)
            self.stream.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
