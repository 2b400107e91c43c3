"""Questions answered while rebuilds and reloads run always see one consistent index: every quote is
verbatim in the article (of the same build) that its citation names, at the offsets it gives."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from relutil import md, write_corpus

from index.config import Settings
from index.embed import HashingEmbedder
from index.engine import Engine
from index.errors import NewsbotError
from index.loaders import load_corpus
from index.records import Answer
from index.stores.build import build_index

EMB = HashingEmbedder()
TOPICS = {
    "port": ("Port strike", ["dock workers at the harbour walked out over pay",
                             "the strike closed {n} container terminals",
                             "shipping lines diverted {n} vessels to Rotterdam"]),
    "ferry": ("Ferry cancelled", ["the island ferry was cancelled because of thick fog",
                                  "passengers waited {n} hours at the pier",
                                  "the operator promised refunds for every ticket"]),
    "storm": ("Storm damage", ["a winter storm knocked down power lines across the valley",
                               "{n} thousand homes lost electricity overnight",
                               "crews restored most connections by Tuesday evening"]),
    "mayor": ("Mayor elected", ["Maria Lopez was elected mayor of the city",
                                "she won {n} percent of the vote",
                                "turnout reached a record high in the north"]),
}
QUESTIONS = ["Why did the dock workers walk out?", "How many container terminals closed?",
             "Why was the ferry cancelled?", "How long did passengers wait at the pier?",
             "How many homes lost electricity?", "Who was elected mayor?", "What share of the vote did she win?"]

ROUNDS = 8  # rebuilds (alternately full, which reuses sentence ids, and incremental)
MAX_SECONDS = 25.0
ASKERS = 3
MAX_ASKS_PER_THREAD = 3000


def edition(v: int) -> dict[str, tuple[str, str]]:
    """Every article in edition ``v``: the same ids, different text, lengths and offsets."""
    rng = random.Random(v)
    out = {}
    for key, (title, sentences) in TOPICS.items():
        lead = " ".join(f"Edition {v} note {i} about the {key} story." for i in range(v % 3))
        body = " ".join(s.format(n=rng.randint(2, 99)).capitalize() + f" (edition {v})." for s in sentences)
        out[key] = (f"{title} edition {v}", f"{lead}\n\n{body}" if lead else body)
    return out


def write_edition(folder: Path, v: int) -> dict[str, str]:
    arts = edition(v)
    write_corpus(folder, {f"{k}.md": md(t, b) for k, (t, b) in arts.items()})
    # What the loader makes of each file is the text quotes must come from.
    return {a.id: a.text for a in load_corpus(folder).articles}


def check(answer: Answer, texts_by_edition: dict[int, dict[str, str]]) -> None:
    """The answer comes from one build: quotes verbatim at their offsets in the cited articles."""
    if not answer.answered:
        return
    editions = {int(c.title.rsplit(" ", 1)[1]) for c in answer.citations}
    assert len(editions) == 1, f"citations from several builds: {answer.citations}"
    texts = texts_by_edition[editions.pop()]
    by_n = {c.n: c for c in answer.citations}
    for q in answer.quotes:
        for n in q.citations:
            art = by_n[n].article_id
            assert q.text in texts[art], f"quote {q.text!r} is not in article {art!r} of its build"
        assert by_n[q.citation].article_id == q.article_id
        assert texts[q.article_id][q.start:q.end] == q.text, "offsets from another build"


def test_answers_during_rebuild_and_reload_never_mix_builds(tmp_path: Path) -> None:
    corpus, ix = tmp_path / "corpus", tmp_path / "ix"
    texts = {0: write_edition(corpus, 0)}
    build_index(ix, load_corpus(corpus), EMB)
    engine = Engine.open(Settings.from_env({}, index_dir=ix), embedder=EMB)
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = [0] * ASKERS

    def asker(k: int) -> None:
        rng = random.Random(k)
        try:
            while not stop.is_set() and counts[k] < MAX_ASKS_PER_THREAD:
                check(engine.ask(rng.choice(QUESTIONS)), texts)
                counts[k] += 1
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=asker, args=(k,), daemon=True) for k in range(ASKERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + MAX_SECONDS
    generations = []
    try:
        for v in range(1, ROUNDS + 1):
            if stop.is_set() or time.monotonic() > deadline:
                break
            texts[v] = write_edition(corpus, v)
            build_index(ix, load_corpus(corpus), EMB, full=v % 2 == 0)
            engine.reload()
            generations.append(engine.info["generation"])
            time.sleep(0.05)  # let the askers run against this build too
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    if errors:
        raise errors[0]
    assert len(generations) >= 4, "too few rebuilds ran to prove anything"
    assert sum(counts) >= 50, counts
    print(f"\n{sum(counts)} answers checked across {len(generations)} rebuilds")
    # The last build answers from the last edition only.
    check(engine.ask(QUESTIONS[0]), {max(texts): texts[max(texts)]})


@pytest.mark.parametrize("full", [True, False], ids=["full-rebuild", "incremental-rebuild"])
def test_passage_of_an_old_answer_after_reload_is_its_own_or_a_clear_error(tmp_path: Path, full: bool) -> None:
    """The bot's "show passage" button carries a sentence id from the answer; after a rebuild and
    reload that id may name another sentence. The passage shown must contain the quoted sentence,
    or the engine must say the passage is gone."""
    corpus, ix = tmp_path / "corpus", tmp_path / "ix"
    write_edition(corpus, 1)
    build_index(ix, load_corpus(corpus), EMB)
    engine = Engine.open(Settings.from_env({}, index_dir=ix), embedder=EMB)
    answers = [a for a in (engine.ask(q) for q in QUESTIONS) if a.answered]
    assert answers
    write_edition(corpus, 2)
    build_index(ix, load_corpus(corpus), EMB, full=full)
    engine.reload()
    for a in answers:
        for q in a.quotes:
            try:
                view = engine.passage(q.sentence_id)
            except NewsbotError as e:
                assert "ask again" in str(e)
                continue
            assert view.text[view.hl_start:view.hl_end] == q.text, (
                f"'show passage' for {q.text!r} shows {view.text[view.hl_start:view.hl_end]!r} from another build")
