"""``newsbot feedback``: what people told the bot about its answers (a ``newsbot.commands`` add-on).

Reads the bot's feedback store (NEWSBOT_FEEDBACK_DB, or the database of NEWSBOT_DATABASE_URL):
the vote counts, the reasons given in the 👎 form, the questions voted down most (with their
comments), and ``--export FILE`` writes every vote as JSON Lines for a spreadsheet or an eval set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .config import BotSettings
from .feedback import DOWN, REASONS, FeedbackReport, FeedbackStoreError, open_feedback_store

if TYPE_CHECKING:
    from index.config import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``newsbot feedback`` to the ``newsbot`` command's subcommands."""
    p = subparsers.add_parser(
        "feedback", help="the votes on the bot's answers: counts, reasons, the questions voted down most",
        description="What people told the Discord bot about its answers: the 👍 / 👎 counts, the reasons given "
                    "in the 👎 form, and the questions voted down most (with their comments).",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--top", type=_positive, default=10, metavar="N",
                   help="how many of the questions voted down most to list (default 10)")
    p.add_argument("--export", type=Path, metavar="FILE",
                   help="also write every vote as JSON Lines to FILE ('-' for standard output)")
    p.set_defaults(func=feedback, report=True)  # a report: no INFO log lines over it


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def feedback(args: argparse.Namespace, _settings: Settings) -> int:
    """Print the report (and write the export); 1 with a message when there is nothing to read."""
    settings = BotSettings.from_env()
    if not settings.uses_database and not settings.feedback_db.exists():
        print(f"No feedback yet: {settings.feedback_db} does not exist (the Discord bot creates it when it "
              "starts; set NEWSBOT_FEEDBACK_DB if it keeps it elsewhere).", file=sys.stderr)
        return 1
    try:
        store = open_feedback_store(settings)
    except FeedbackStoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with store:
        report = store.report(top=args.top)
        rows = store.feedback_rows() if args.export is not None else []
    if args.export is not None:
        exported = export(rows, args.export)
        if str(args.export) != "-":
            print(f"Exported {exported} votes to {args.export}", file=sys.stderr)
        if str(args.export) == "-":
            return 0
    if args.json:
        json.dump(report.to_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report, sys.stdout)
    return 0


def export(rows: list[dict[str, Any]], path: Path) -> int:
    """Every vote as one JSON object a line (``vote``: ``up`` or ``down``; ``reason``: a key of
    :data:`~bot.feedback.REASONS` or null; ``voter``: the keyed hash, the same for one person),
    to ``path`` atomically, or to standard output for ``-``. Returns how many."""
    lines = [json.dumps(_export_row(r), ensure_ascii=False) + "\n" for r in rows]
    if str(path) == "-":
        sys.stdout.writelines(lines)
        return len(lines)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise FeedbackStoreError(f"cannot write {path}: {e}") from e
    return len(lines)


def _export_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "answer_id": row["answer_id"], "question": row["question"], "answer": row["answer"],
        "vote": "down" if row["vote"] == DOWN else "up", "reason": row["reason"], "comment": row["comment"],
        "voter": row["user_hash"], "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def _reason(key: str) -> str:
    return REASONS.get(key, key).split(" (")[0].lower()


def print_report(report: FeedbackReport, out: TextIO) -> None:
    """The report for reading in a terminal."""
    out.write(f"{report.votes} votes ({report.up} up, {report.down} down) on {report.answers} stored answers "
              "and declines\n")
    if report.reasons:
        out.write("Why: " + ", ".join(f"{_reason(k)} {n}" for k, n in report.reasons.items()) + "\n")
    if not report.voted_down:
        out.write("No answer has been voted down.\n")
        return
    out.write("\nVoted down most:\n")
    for i, v in enumerate(report.voted_down, 1):
        why = ", ".join(f"{_reason(k)} {n}" for k, n in v.reasons.items())
        out.write(f"{i:>3}. {v.question}\n     {v.down} down, {v.up} up{f' ({why})' if why else ''}"
                  f", last {v.last_at}  [answer {v.answer_id}]\n")
        for comment in v.comments:
            out.write(f"     \u201c{' '.join(comment.split())}\u201d\n")
