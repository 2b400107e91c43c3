"""``newsbot feedback``: the report, its JSON, the export, and what it says with nothing to read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import BotSettings
from bot.feedback import DOWN, UP, StoredAnswer, open_feedback_store
from index.cli import main


@pytest.fixture
def votes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer):  # type: ignore[no-untyped-def]
    """A feedback file with votes on two answers, and the environment that points newsbot at it."""
    import dataclasses

    path = tmp_path / "feedback.sqlite3"
    monkeypatch.setenv("NEWSBOT_FEEDBACK_DB", str(path))
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    with open_feedback_store(BotSettings.from_env({"NEWSBOT_FEEDBACK_DB": str(path)})) as s:
        s.save_answer(StoredAnswer.from_answer("answer-00000000aa", answer, "> rail fares [1]"))
        s.save_answer(StoredAnswer.from_answer(
            "answer-00000000bb", dataclasses.replace(answer, question="Who is the mayor?"), "declined"))
        s.record_feedback("answer-00000000aa", 1, DOWN, reason="outdated", comment="Fares rose again\nin May.")
        s.record_feedback("answer-00000000aa", 2, UP)
        s.record_feedback("answer-00000000bb", 1, DOWN, reason="missed")
        s.record_feedback("answer-00000000bb", 3, DOWN, reason="missed")
    return path


def test_the_report_for_reading(votes: Path, capsys: pytest.CaptureFixture[str], answer) -> None:  # type: ignore[no-untyped-def]
    assert main(["feedback"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 votes (1 up, 3 down) on 2 stored answers and declines\n")
    assert "Why: should have been answered 2, outdated 1" in out
    first, second = out.index("Who is the mayor?"), out.index(answer.question)
    assert first < second  # most voted down first
    assert "2 down, 0 up (should have been answered 2)" in out and "“Fares rose again in May.”" in out


def test_the_report_as_json(votes: Path, capsys: pytest.CaptureFixture[str], answer) -> None:  # type: ignore[no-untyped-def]
    assert main(["feedback", "--json", "--top", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["votes"], report["up"], report["down"], report["answers"]) == (4, 1, 3, 2)
    assert report["reasons"] == {"missed": 2, "outdated": 1}
    (worst,) = report["voted_down"]
    assert (worst["question"], worst["down"], worst["reasons"]) == ("Who is the mayor?", 2, {"missed": 2})


def test_the_export(votes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], answer) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "votes.jsonl"
    assert main(["feedback", "--export", str(out)]) == 0
    assert "Exported 4 votes to" in capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4 and {r["vote"] for r in rows} == {"up", "down"}
    outdated = next(r for r in rows if r["reason"] == "outdated")
    assert outdated["question"] == answer.question and outdated["comment"] == "Fares rose again\nin May."
    assert len({r["voter"] for r in rows}) == 3  # one keyed hash a person; never the id
    assert all(r["voter"] not in {"1", "2", "3"} for r in rows)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # written atomically
    assert main(["feedback", "--export", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_with_no_feedback_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSBOT_FEEDBACK_DB", str(tmp_path / "nothing.sqlite3"))
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    assert main(["feedback"]) == 1
    assert "No feedback yet" in capsys.readouterr().err and not (tmp_path / "nothing.sqlite3").exists()


def test_an_export_that_cannot_be_written_names_the_file(votes: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no-such-folder" / "votes.jsonl"
    assert main(["feedback", "--export", str(target)]) == 1
    assert f"cannot write {target}" in capsys.readouterr().err
