"""Hostile questions get a clear reply, never an exception: at the engine, through the CLI (a real
process), and with the real model. (The bot level is in test_bot_hostile.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relutil import corpus_v1, run_driver, write_corpus

from index.config import Settings
from index.embed import HashingEmbedder
from index.engine import Engine
from index.errors import QuestionError
from index.loaders import load_corpus
from index.records import Answer
from index.stores.build import build_index

EMB = HashingEmbedder()

#: name -> question. Every one must give an Answer (answered or a decline) or a QuestionError.
HOSTILE = {
    "empty": "",
    "space": " ",
    "whitespace-only": " \n\t\r\u00a0\u2003\u3000 ",
    "10000-chars": "why " * 2500,
    "10000-one-word": "a" * 10_000,
    "just-over-limit": "x" * 501,
    "at-limit": "strike " * 71 + "pay",
    "control-chars": "\x00\x01\x07\x1b[31mwho\x1b[0m was \x08elected\x7f mayor?\x9b",
    "nul-only": "\x00" * 20,
    "zero-width": "\u200b\u200c\u200d\ufeff",
    "bidi-override": "\u202ewho was elected mayor?\u202c",
    "emoji-only": "🔥🚀🎉",
    "emoji-skin-tones": "👍🏽" * 100,
    "emoji-zwj": "👩‍👩‍👧‍👦 🏳️‍🌈",
    "quote": '"',
    "two-quotes": '""',
    "unterminated-quote": '"why did the dock workers strike',
    "star": "*",
    "prefix-star": "stri*",
    "near": "NEAR",
    "near-call": "NEAR(dock strike, 2)",
    "or": "strike OR ferry",
    "and": "AND",
    "and-not": "strike AND NOT ferry",
    "parens": "(",
    "close-paren": ")",
    "nested-parens": "((((strike)))",
    "caret": "^strike",
    "column-filter": "text: strike",
    "table-column": "sentences_fts: strike",
    "column-set": "{text title}: strike",
    "minus": "-strike",
    "plus": "+strike",
    "sql": "'; DROP TABLE sentences; --",
    "sql-union": "x' UNION SELECT text FROM articles --",
    "everyone": "@everyone what happened at the port?",
    "here": "@here who was elected?",
    "user-mention": "<@123456789012345678> who was elected mayor?",
    "role-channel-mentions": "<@&987654321098765432> <#123456789012345678> ping",
    "masked-link": "[click me](https://evil.test) why did the ferry stop?",
    "markdown": "**bold** __under__ ~~strike~~ `code` ```block``` > quote ||spoiler|| # heading",
    "html": "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "format-string": "%s %d {0} {question!r} %(x)s",
    "lone-surrogate": "why \ud800 strike?",
    "chinese": "港口 罢工 是 什么 原因",
    "arabic": "لماذا أضرب عمال الميناء؟",
    "single-char": "a",
    "question-mark": "?",
    "dots": "...",
    "stopwords-only": "what is the of and to",
    "numbers": "12345 67890",
    "normal": "Why did the dock workers strike?",
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("questions")
    build_index(root / "ix", load_corpus(write_corpus(root / "c", corpus_v1())), EMB)
    return Engine.open(Settings.from_env({}, index_dir=root / "ix"), embedder=EMB)


def _texts(engine: Engine) -> dict[str, str]:
    snap = engine._state.snapshot  # noqa: SLF001 - the test reads the articles back to check quotes
    return {ext: text for ext, text in snap._db.execute("SELECT ext_id, text FROM articles")}  # noqa: SLF001


def assert_clear_reply(engine: Engine, question: str) -> Answer | QuestionError:
    started = time.monotonic()
    try:
        answer = engine.ask(question)
    except QuestionError as e:
        msg = str(e)
        assert msg and len(msg) < 300 and "Traceback" not in msg
        return e
    assert time.monotonic() - started < 5
    if answer.answered:
        texts = _texts(engine)
        assert 1 <= len(answer.quotes) <= 3
        for q in answer.quotes:
            assert texts[q.article_id][q.start:q.end] == q.text
    else:
        assert answer.message and not answer.quotes
    json.dumps(answer.to_json())  # serialisable for --json and the bot's store
    return answer


@pytest.mark.parametrize("name", list(HOSTILE))
def test_engine_gives_a_clear_reply(name: str, engine: Engine) -> None:
    reply = assert_clear_reply(engine, HOSTILE[name])
    q = HOSTILE[name]
    stripped = "".join(c for c in q if c.isprintable() and not c.isspace() and c not in "\u200b\u200c\u200d\ufeff")
    if not stripped:
        assert isinstance(reply, QuestionError) and "empty" in str(reply)
    if len(q) > 500 and q.strip():
        assert isinstance(reply, QuestionError) and "500" in str(reply)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=600) | st.text(alphabet='"*()^:+-{} ANDORNEAT\x00\u202e@<>#&!`|~_[]', max_size=80))
def test_engine_never_raises_anything_but_a_question_error(engine: Engine, question: str) -> None:
    assert_clear_reply(engine, question)


def test_cli_answers_hostile_questions_from_stdin_one_json_object_each(engine: Engine, tmp_path: Path) -> None:
    """A real `newsbot ask --json` process reading one question a line (the hashing embedder stands
    in for the model); questions that cannot be sent as a line of UTF-8 text are left out."""
    questions = [q for q in HOSTILE.values()
                 if "\n" not in q and "\r" not in q and q.strip() and "\ud800" not in q and len(q) < 20_000]
    # Lines that hold only white space are skipped by the CLI, not answered.
    index_dir = engine.settings.index_dir
    done = run_driver(["ask", "--index", str(index_dir), "--json"], input="\n".join(questions) + "\n", timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    answered = [q for q in questions if "".join(q.split())]
    assert len(lines) == len(answered)
    for line in lines:
        obj = json.loads(line)
        assert "answered" in obj and ("sentences" in obj or "error" in obj)
        if not obj["answered"]:
            assert obj.get("message") or obj.get("error")


@pytest.mark.parametrize("name", ["empty", "10000-chars", "control-chars", "emoji-only", "near-call",
                                  "masked-link", "sql"])
def test_cli_answers_a_hostile_question_given_as_an_argument(name: str, engine: Engine) -> None:
    question = HOSTILE[name].replace("\x00", "")  # a process argument cannot hold a NUL byte
    done = run_driver(["ask", "--index", str(engine.settings.index_dir), question], timeout=60)
    assert done.returncode in (0, 1)
    assert "Traceback" not in done.stderr and done.stdout.strip()
    if done.returncode == 1:
        assert "question" in done.stdout.lower()


@pytest.mark.model
@pytest.mark.parametrize("name", list(HOSTILE))
def test_real_model_engine_gives_a_clear_reply(name: str, seed_engine: Engine) -> None:
    assert_clear_reply(seed_engine, HOSTILE[name])
