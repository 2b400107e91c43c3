"""The answerer with the deterministic hashing embedder: mechanics, not model quality."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import write

from index.answer import CONFIDENCE_FEATURES, RANK_FEATURES
from index.config import Settings
from index.engine import Engine
from index.errors import NewsbotError, QuestionError
from index.loaders import load_corpus
from index.stores.build import build_index
from index.when import question_window


@pytest.fixture
def engine(tmp_path: Path, hashing_embedder) -> Engine:  # type: ignore[no-untyped-def]
    c = tmp_path / "c"
    write(c / "a.md", "---\ntitle: Port strike\nsource: Daily Post\nurl: https://daily.test/strike\npublished: 2024-01-02\n---\n"
          "Dock workers at the harbour walked out on Monday over pay.\n"
          "The strike closed three container terminals for a week.\n")
    write(c / "b.md", "---\ntitle: Strike wire copy\nsource: Evening News\npublished: 2024-03-05\n---\n"
          "Dock workers at the harbour walked out on Monday over pay.\n"
          "Union leaders met the port authority on Friday.\n")
    write(c / "c.md", "---\ntitle: Bakery prize\nsource: Weekly\npublished: 2024-02-03\n---\n"
          "A village bakery won the national bread award for its sourdough loaf.\n")
    ix = tmp_path / "ix"
    build_index(ix, load_corpus(c), hashing_embedder)
    # The hashing embedder's cosines are far lower than a real model's: a threshold to match.
    return Engine.open(Settings.from_env({}, index_dir=ix, min_confidence=0.1), embedder=hashing_embedder)


def test_answer_quotes_verbatim_with_citations(engine: Engine) -> None:
    ans = engine.ask("Which bakery won the national bread award?")
    assert ans.answered and ans.quotes[0].text.startswith("A village bakery won")
    q = ans.quotes[0]
    cited = {c.n: c for c in ans.citations}[q.citation]
    assert (cited.title, cited.source, cited.published) == ("Bakery prize", "Weekly", "2024-02-03")
    js = ans.to_json()
    assert set(js) >= {"question", "answered", "confidence", "sentences", "citations"}
    assert set(js["sentences"][0]) >= {"text", "citation", "score"}
    assert set(js["citations"][0]) >= {"n", "article_id", "title", "source", "url", "published"}


def test_same_sentence_in_two_outlets_is_quoted_once_and_cited_to_both(engine: Engine) -> None:
    ans = engine.ask("Did dock workers at the harbour walk out over pay on Monday?")
    texts = [q.text for q in ans.quotes]
    assert texts.count("Dock workers at the harbour walked out on Monday over pay.") == 1
    first = ans.quotes[0]
    assert first.text.startswith("Dock workers") and len(first.citations) == 2
    outlets = {c.source for c in ans.citations if c.n in first.citations}
    assert outlets == {"Daily Post", "Evening News"}


def test_link_opens_the_article_at_the_quote(engine: Engine) -> None:
    ans = engine.ask("How many container terminals did the strike close?")
    c = next(c for c in ans.citations if c.source == "Daily Post")
    assert c.url == "https://daily.test/strike"
    assert c.link and c.link.startswith("https://daily.test/strike#:~:text=")


def test_filters_by_outlet_and_date(engine: Engine) -> None:
    ans = engine.ask("dock workers walked out over pay", source="evening news")
    assert ans.answered and {c.source for c in ans.citations} == {"Evening News"}
    ans = engine.ask("dock workers walked out over pay", since=dt.date(2024, 2, 1))
    assert all(c.published >= "2024-02-01" for c in ans.citations)  # type: ignore[operator]
    ans = engine.ask("dock workers walked out over pay", until=dt.date(2023, 1, 1))
    assert not ans.answered and "filters" in ans.message


def test_declines_when_nothing_answers(engine: Engine) -> None:
    ans = engine.ask("Who won the 2024 Champions League final?")
    assert not ans.answered and ans.quotes == () and "don't say" in ans.message


@pytest.mark.parametrize("question", ["", "   ", "\x00\x07\n\t"])
def test_empty_questions_are_refused_clearly(engine: Engine, question: str) -> None:
    with pytest.raises(QuestionError, match="empty"):
        engine.ask(question)


def test_overlong_question_is_refused_clearly(engine: Engine) -> None:
    with pytest.raises(QuestionError, match="10,000 characters"):
        engine.ask("x" * 10_000)


@pytest.mark.parametrize("question", ['"', "*", "NEAR", "a OR b", "x AND (y", "🙂🙂🙂", "<@123> @everyone **bold**",
                                      "col:value", "what\x00is\x1bthis"])
def test_odd_questions_never_raise(engine: Engine, question: str) -> None:
    ans = engine.ask(question)
    assert isinstance(ans.answered, bool)


def test_sources_and_passages(engine: Engine) -> None:
    infos = engine.sources()
    assert [a.title for a in infos] == ["Strike wire copy", "Bakery prize", "Port strike"]
    assert [a.title for a in engine.sources("weekly")] == ["Bakery prize"]
    ans = engine.ask("How many container terminals did the strike close?")
    q = next(q for q in ans.quotes if "terminals" in q.text)
    view = engine.passage(q.sentence_id)
    assert view.text[view.hl_start:view.hl_end] == q.text and "Dock workers" in view.text
    with pytest.raises(NewsbotError):
        engine.passage(999_999)


def test_reload_keeps_serving_when_the_new_index_is_broken(engine: Engine, tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    before = engine.ask("Which bakery won the national bread award?").quotes[0].text
    (tmp_path / "ix" / "manifest.json").write_text("{broken")
    with pytest.raises(NewsbotError, match="damaged"):
        engine.reload()
    assert engine.ask("Which bakery won the national bread award?").quotes[0].text == before


def test_lexical_search_is_capped_by_the_sentences_it_matches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full-text search takes the question's rarest terms first and stops before their
    sentences exceed the cap, but always keeps the rarest one."""
    import index.answer as answer_mod

    a = engine._state.answerer
    monkeypatch.setattr(a.stats, "df", {"rare": 2, "mid": 5, "common": 9, "absent": 0})
    monkeypatch.setattr(a.stats, "n", 1000)
    monkeypatch.setattr(answer_mod, "LEXICAL_POSTINGS", 7)
    assert a.lexical_terms(["common", "mid", "rare", "absent"]) == ["rare", "mid"]
    monkeypatch.setattr(answer_mod, "LEXICAL_POSTINGS", 1)
    assert a.lexical_terms(["common", "mid", "rare"]) == ["rare"]
    monkeypatch.setattr(answer_mod, "LEXICAL_POSTINGS", 100)
    assert a.lexical_terms(["common", "mid", "rare"], limit=2) == ["rare", "mid"]


def test_only_the_preranked_candidates_get_full_features(engine: Engine) -> None:
    """Every pooled sentence is pre-ranked; only the best ``prerank`` are scored in full, and the
    answer (the lexical search run in a thread) is the same as the synchronous path's."""
    a = engine._state.answerer
    q = "Which bakery won the national bread award?"
    qvec = a.embedder.encode([q])[0]
    full, _ = a.candidates(q, qvec)
    assert len(full) > 2
    a.prerank = 2
    try:
        cut, _ = a.candidates(q, qvec)
        assert len(cut) == 2
        # The two kept are the pool's best by the pre-ranking score (cosine plus half the coverage).
        pre = sorted(full, key=lambda c: -(c.features[0] + 0.5 * c.features[3]))[:2]
        assert [c.row.id for c in cut] == [c.row.id for c in pre]
    finally:
        a.prerank = 32
    ans = engine.ask(q)
    ranked = a.rank(*a.candidates(q, qvec))
    assert ans.quotes[0].sentence_id == ranked.candidates[0].row.id


def test_a_number_the_best_article_never_mentions_lowers_the_confidence(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    """numbers_missing: the question's number (a year, an amount) is looked up in whole articles;
    the confidence model weighs it against answering (the fitted weight is negative)."""
    c = tmp_path / "c"
    write(c / "a.md", "---\ntitle: Final\n---\nThe cup final was played in Paris.\nIt was the 2022 final.\n")
    write(c / "b.md", "---\ntitle: Budget\n---\nThe council approved a budget of 42 million pounds.\n")
    build_index(tmp_path / "ix", load_corpus(c), hashing_embedder)
    engine = Engine.open(Settings.from_env({}, index_dir=tmp_path / "ix", min_confidence=0.1), embedder=hashing_embedder)
    snap, a = engine._state.snapshot, engine._state.answerer
    ids = {x.ext_id: x.id for x in snap.articles()}
    assert snap.articles_mentioning(ids.values(), ["2022"]) == {ids["a"]}
    assert snap.articles_mentioning(ids.values(), ["2022", "paris"]) == {ids["a"]}
    assert snap.articles_mentioning(ids.values(), ["2022", "42"]) == set()
    assert snap.articles_mentioning(ids.values(), ['"2022" OR x']) == set()  # never read as FTS syntax

    def best(q: str):  # type: ignore[no-untyped-def]
        return a.rank(*a.candidates(q, hashing_embedder.encode([q])[0]))

    held = best("Where was the 2022 cup final played?")
    other_year = best("Where was the 2023 cup final played?")
    assert held.candidates[0].row.article == other_year.candidates[0].row.article == ids["a"]
    k = CONFIDENCE_FEATURES.index("numbers_missing")
    assert held.qfeatures[k] == 0.0 and other_year.qfeatures[k] == 1.0
    assert best("Where was the cup final played?").qfeatures[k] == 0.0  # no number: nothing missing
    assert a.model.conf[k] < 0 and other_year.confidence < held.confidence


@pytest.fixture
def strikes(tmp_path: Path, hashing_embedder) -> Engine:  # type: ignore[no-untyped-def]
    """Two strikes, three years apart, told in the same words; and an undated story."""
    c = tmp_path / "c"
    write(c / "old.md", "---\ntitle: Bus strike\npublished: 2021-06-01\n---\n"
          "Bus drivers in the city went on strike over pay.\n")
    write(c / "new.md", "---\ntitle: Train strike\npublished: 2024-05-06\n---\n"
          "Train drivers in the city went on strike over pay.\n")
    write(c / "nodate.md", "---\ntitle: Ferry\n---\nThe island ferry was cancelled because of thick fog.\n")
    build_index(tmp_path / "ix", load_corpus(c), hashing_embedder)
    # Threshold 0: every decline below comes from the window, not from the hashing embedder's low scores.
    return Engine.open(Settings.from_env({}, index_dir=tmp_path / "ix", min_confidence=0.0), embedder=hashing_embedder)


def test_this_week_prefers_the_articles_of_the_week_it_is_asked(strikes: Engine) -> None:
    q = "Which drivers in the city went on strike this week?"
    assert strikes._state.answerer.model.rank[RANK_FEATURES.index("in_window")] > 0
    assert strikes.ask(q, asked_on=dt.date(2024, 5, 7)).quotes[0].text.startswith("Train drivers")
    assert strikes.ask(q, asked_on=dt.date(2021, 6, 3)).quotes[0].text.startswith("Bus drivers")
    # Being from the week wins the ranking but is no evidence of an answer: the confidence's z_top leaves it out.
    a = strikes._state.answerer
    ranked = a.rank(*a.candidates(q, a.embedder.encode([q])[0], window=question_window(q, dt.date(2024, 5, 7))))
    k = RANK_FEATURES.index("in_window")
    assert ranked.candidates[0].features[k] == 1.0
    assert ranked.qfeatures[CONFIDENCE_FEATURES.index("z_top")] == pytest.approx(ranked.candidates[0].z - a.model.rank[k])


def test_this_week_with_no_article_from_then_is_declined_and_says_why(strikes: Engine) -> None:
    q = "Which drivers in the city went on strike this week?"
    ans = strikes.ask(q, asked_on=dt.date(2026, 2, 12))
    assert not ans.answered and not ans.quotes and ans.confidence == 0.0
    assert "'this week' (2026-01-29 to 2026-02-15)" in ans.message and "newest is from 2024-05-06" in ans.message
    # Asked with no day, or without saying when, the same words are answered from either strike.
    assert strikes.ask(q).answered
    assert strikes.ask("Which drivers in the city went on strike?", asked_on=dt.date(2026, 2, 12)).answered
    # Some article is from that week (another story): nothing to say about the time, the confidence decides.
    assert strikes.ask("Which bus drivers went on strike over pay this week?", asked_on=dt.date(2024, 5, 7)).answered


def test_an_undated_article_is_never_held_to_a_window(strikes: Engine) -> None:
    ans = strikes.ask("Why was the island ferry cancelled this week?", asked_on=dt.date(2026, 2, 12))
    assert ans.answered and ans.quotes[0].text.startswith("The island ferry")
