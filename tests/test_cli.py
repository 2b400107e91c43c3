"""The ``newsbot`` command, run as a user runs it (a subprocess), on the seed corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, write

from index.cli import main


def newsbot(*args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "NEWSBOT_LOG_LEVEL": "WARNING", **(env or {})}
    return subprocess.run([sys.executable, "-m", "index", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    r = newsbot("ask", "--index", str(tmp_path / "none"), "anything?")
    assert r.returncode == 1
    assert "no index in" in r.stderr and "newsbot rebuild" in r.stderr


def test_help_lists_every_command() -> None:
    r = newsbot("--help")
    assert r.returncode == 0
    for cmd in ("rebuild", "ask", "sources", "eval", "run"):
        assert cmd in r.stdout


def test_bad_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["ask", "--since", "last tuesday", "q"])
    assert e.value.code == 2 and "not a date" in capsys.readouterr().err


def test_rebuild_reports_skipped_files_and_indexes_the_rest(tmp_path: Path, monkeypatch, hashing_embedder, capsys) -> None:  # type: ignore[no-untyped-def]
    import index.embed

    monkeypatch.setattr(index.embed, "load_embedder", lambda settings: hashing_embedder)
    corpus = tmp_path / "c"
    write(corpus / "ok.md", "---\ntitle: Fine\n---\nA perfectly good sentence about ferries.\n")
    write(corpus / "bad.jsonl", '{"id": "x", "text": "Good line one here."}\nnot json\n')
    code = main(["rebuild", "--corpus", str(corpus), "--index", str(tmp_path / "ix"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    assert "indexed 2 articles" in err and "bad.jsonl:2" in err and "malformed JSON" in err


@pytest.mark.model
def test_ask_reads_questions_from_stdin_and_prints_json_lines(seed_index: Path) -> None:
    qs = "Where is Chery opening its European headquarters?\n\nWho won the 2024 Champions League final?\n"
    r = newsbot("ask", "--json", "--index", str(seed_index), stdin=qs)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["answered"] for x in lines] == [True, False]
    first = lines[0]
    assert set(first) >= {"question", "answered", "confidence", "sentences", "citations"}
    assert "Liverpool" in first["sentences"][0]["text"]
    n = first["sentences"][0]["citation"]
    cit = {c["n"]: c for c in first["citations"]}[n]
    assert set(cit) >= {"n", "article_id", "title", "source", "url", "published"}


@pytest.mark.model
def test_ask_text_output_and_sources(seed_index: Path) -> None:
    r = newsbot("ask", "--index", str(seed_index), "Who is JLR's new chief executive?")
    assert r.returncode == 0 and "Balaji" in r.stdout and "Sources:" in r.stdout and "[1]" in r.stdout
    r = newsbot("sources", "--json", "--index", str(seed_index))
    arts = [json.loads(line) for line in r.stdout.splitlines()]
    assert {a["id"] for a in arts} == {"000_58346f7b7de47b31", "001_21befda17cf27a6e"}
    assert {a["source"] for a in arts} == {"Motoring Research", None}


@pytest.mark.model
def test_index_built_by_another_model_is_refused(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.loaders import load_corpus
    from index.stores.build import build_index

    build_index(tmp_path / "ix", load_corpus(ROOT / "corpus"), hashing_embedder)
    r = newsbot("ask", "--index", str(tmp_path / "ix"), "Where is Chery opening its HQ?")
    assert r.returncode == 1
    assert "hashing-test-embedder" in r.stderr and "newsbot rebuild --full" in r.stderr


def test_eval_prints_metrics_beside_both_baselines(tmp_path: Path, monkeypatch, hashing_embedder, capsys) -> None:  # type: ignore[no-untyped-def]
    import index.embed

    monkeypatch.setattr(index.embed, "load_embedder", lambda settings: hashing_embedder)
    arts = tmp_path / "a.jsonl"
    write(arts, "\n".join(json.dumps(x) for x in [
        {"id": "1", "title": "Bakery", "source": "w.test", "published": "2024-01-01", "url": None, "authors": [],
         "text": "A village bakery in Kent won the national bread award.\nIts sourdough impressed judges."},
        {"id": "2", "title": "Ferry", "source": "d.test", "published": "2024-01-02", "url": None, "authors": [],
         "text": "The island ferry was cancelled because of thick fog on Tuesday."},
    ]) + "\n")
    qs = tmp_path / "q.jsonl"
    write(qs, "\n".join(json.dumps(x) for x in [
        {"id": "q1", "question": "Which bakery won the national bread award?", "answers": ["Kent"], "answerable": True},
        {"id": "q2", "question": "Why was the island ferry cancelled?", "answers": ["fog"], "answerable": True},
        {"id": "q3", "question": "Who won the snooker world championship?", "answers": [], "answerable": False},
        # Asked two years after the newest article, about "this week": declined on its date, not without it.
        {"id": "q4", "question": "Why was the island ferry cancelled this week?", "answers": ["fog"],
         "answerable": False, "date": "2026/01/07"},
    ]) + "\n")
    out = tmp_path / "r.json"
    monkeypatch.setenv("NEWSBOT_MIN_CONFIDENCE", "0")  # the hashing embedder's scores are low
    assert main(["eval", str(arts), str(qs), "--index", str(tmp_path / "ix"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for label in ("acc@1", "acc@3", "BM25 alone", "cosine alone", "answer rate", "decline rate", "floor"):
        assert label in text
    assert "1 questions say when" in text
    res = json.loads(out.read_text())
    assert res["n_answerable"] == 2 and res["n_unanswerable"] == 2 and len(res["per_question"]) == 4
    q4 = res["per_question"][3]
    assert q4["window"] == "this week" and not q4["answered"]
    assert res["decline_rate"] == 0.5 and res["undated_decline_rate"] == 0.0
    assert main(["eval", str(arts), str(qs), "--index", str(tmp_path / "ix"), "--json", str(out), "--ignore-dates"]) == 0
    assert "dates were ignored" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["with_window"] == 0 and res["per_question"][3]["answered"]


def test_ask_reads_this_week_against_asked_on(tmp_path: Path, monkeypatch, hashing_embedder, capsys) -> None:  # type: ignore[no-untyped-def]
    import index.engine

    monkeypatch.setattr(index.engine, "load_embedder", lambda settings: hashing_embedder)
    from index.loaders import load_corpus
    from index.stores.build import build_index

    write(tmp_path / "c" / "f.md", "---\ntitle: Ferry\npublished: 2024-01-02\n---\n"
          "The island ferry was cancelled because of thick fog on Tuesday.\n")
    build_index(tmp_path / "ix", load_corpus(tmp_path / "c"), hashing_embedder)
    monkeypatch.setenv("NEWSBOT_MIN_CONFIDENCE", "0")
    q = "Why was the island ferry cancelled this week?"
    assert main(["ask", "--json", "--index", str(tmp_path / "ix"), "--asked-on", "2024-01-04", q]) == 0
    assert json.loads(capsys.readouterr().out)["answered"]
    assert main(["ask", "--json", "--index", str(tmp_path / "ix"), "--asked-on", "2025-03-01", q]) == 0
    assert not json.loads(capsys.readouterr().out)["answered"]
    # With no --asked-on, "this week" is today's week (long after this article).
    assert main(["ask", "--index", str(tmp_path / "ix"), q]) == 0
    assert "none of them is from then" in capsys.readouterr().out


def test_question_dates_are_read_or_named_when_bad(tmp_path: Path) -> None:
    import datetime as dt

    from index.errors import NewsbotError
    from index.evaluate import load_questions

    qs = write(tmp_path / "q.jsonl", '{"id": "a", "question": "q?", "date": "2024/05/07"}\n'
                                     '{"id": "b", "question": "q?", "date": null}\n'
                                     '{"id": "c", "question": "q?", "date": "2024-05-07T09:00:00"}\n')
    assert [q.asked_on for q in load_questions(qs)] == [dt.date(2024, 5, 7), None, dt.date(2024, 5, 7)]
    write(qs, '{"id": "a", "question": "q?"}\n{"id": "b", "question": "q?", "date": "last week"}\n')
    with pytest.raises(NewsbotError, match=r"q.jsonl:2: .*'last week' is not a date"):
        load_questions(qs)


def test_is_correct_follows_the_eval_rule() -> None:
    from index.evaluate import is_correct

    assert is_correct("Trump met “Ron DeSantis” on Sunday.", ["Ron DeSantis"])
    assert is_correct("It was Gov. RON DESANTIS.", ["ron desantis"])
    assert is_correct("The Florida governor Ron (R) DeSantis spoke", ["Ron DeSantis"])  # 80% of long words
    assert not is_correct("Ron spoke on Sunday.", ["Ron DeSantis"])


def test_ask_prints_the_answer_and_no_library_noise(seed_index: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NEWSBOT_LOG_LEVEL"}
    r = subprocess.run([sys.executable, "-m", "index", "ask", "--index", str(seed_index),
                        "Where is Chery opening its European headquarters?"],
                       capture_output=True, text=True, cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=180)
    assert r.returncode == 0 and "Liverpool" in r.stdout
    # No faiss CPU probing, no model-loading lines or progress bar, no status line (not a terminal).
    assert r.stderr == ""
    assert "\033[" not in r.stdout  # bold only on a terminal


def test_logging_keeps_newsbot_lines_and_drops_library_chatter() -> None:
    import io
    import logging

    from index import logs

    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in logs.OWN})
    try:
        logs.configure("INFO", stream=out)
        logging.getLogger("faiss.loader").info("Loading faiss with AVX512 support.")
        logging.getLogger("sentence_transformers.base.model").info("Loading SentenceTransformer model")
        logging.getLogger("index.engine").info("index loaded")
        logging.getLogger("urllib3.connectionpool").warning("a real warning")
        text = out.getvalue()
        assert "index loaded" in text and "a real warning" in text
        assert "faiss" not in text and "SentenceTransformer" not in text
        logs.configure("INFO", verbose=True, stream=out)
        logging.getLogger("faiss.loader").debug("probing")
        assert "probing" in out.getvalue()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        for n, level in saved[2].items():
            logging.getLogger(n).setLevel(level)


def test_the_status_line_is_shown_and_rubbed_out_on_a_terminal_only() -> None:
    import io

    from index.logs import Status

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    with Status("Loading the model…", tty):
        assert tty.getvalue() == "Loading the model…"
    assert tty.getvalue().endswith("\r\033[K")
    with Status("Loading the model…", pipe):
        pass
    assert pipe.getvalue() == ""


def test_the_readme_transcript_is_what_the_terminal_chat_prints(seed_index: Path) -> None:
    """README.md shows a piped question and its answer: the output must still be exactly that."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```console\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("$ printf '")
    question = block[0].split("'", 2)[1].removesuffix("\\n")
    env = {k: v for k, v in os.environ.items() if k != "NEWSBOT_LOG_LEVEL"}
    r = subprocess.run([sys.executable, "-m", "index", "ask", "--index", str(seed_index)], input=question + "\n",
                       capture_output=True, text=True, cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=180)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines() == block[1:]


@pytest.mark.model
def test_run_rebuilds_a_folder_built_by_another_backend_and_answers(tmp_path: Path) -> None:
    env = {"NEWSBOT_INDEX_DIR": str(tmp_path / "ix"), "NEWSBOT_CORPUS_DIR": str(ROOT / "corpus")}
    r = newsbot("rebuild", env={**env, "NEWSBOT_BACKEND": "torch"})
    assert r.returncode == 0, r.stderr
    r = newsbot("run", stdin="Where is Chery opening its European headquarters?\n", env={**env, "NEWSBOT_BACKEND": "onnx-int8"})
    assert r.returncode == 0, r.stderr
    assert "on the torch backend" in r.stderr and "Rebuilding" in r.stderr
    assert "Liverpool" in r.stdout


def test_run_finds_the_discord_bot_through_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """`newsbot run` starts the bot when DISCORD_TOKEN is set, without the engine's CLI importing it."""
    import bot.__main__
    from index.cli import configured_frontend

    monkeypatch.setenv("DISCORD_TOKEN", "a.b.c")
    assert configured_frontend() is bot.__main__.frontend
    monkeypatch.setenv("DISCORD_TOKEN", "")
    assert configured_frontend() is None
