"""One conformance suite for every index backend (index/stores/base.py): the FAISS + SQLite folder
and PostgreSQL + pgvector (a real server, tests/pgserver.py). Each test runs once per backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexLockedError, IndexNotFoundError
from index.loaders import LoadResult
from index.records import Article
from index.stores.base import SearchFilter, Store
from index.stores.build import build_index, update_index

OUTLETS = ["Harbour Gazette", "Valley Times", "Coast Courier", "Metro Daily"]
TOPICS = ["dock strike", "bakery prices", "river flooding", "council budget", "school closures",
          "bridge repairs", "football final", "library hours"]


def _article(n: int, *, outlet: str | None = None, day: str | None = None, text: str | None = None) -> Article:
    topic = TOPICS[n % len(TOPICS)]
    body = text or " ".join(
        f"Sentence {k} of report {n} says the {topic} in town number {n} continued for day {k}. "
        for k in range(6)) + f"Officials said item{n} would cost {1000 + n} pounds."
    return Article(
        id=f"art-{n}", title=f"Report {n} on the {topic}", text=body,
        source=outlet or OUTLETS[n % len(OUTLETS)], url=f"https://news.example/{n}",
        published=day or (dt.date(2026, 1, 1) + dt.timedelta(days=n)).isoformat(),
        path=f"web/{n}.md", fingerprint=f"fp-{n}-{hash(body) & 0xffff}",
    )


def corpus(n: int = 40, extra: list[Article] | None = None) -> LoadResult:
    return LoadResult([_article(i) for i in range(n)] + (extra or []), [], n)


@pytest.fixture(params=["embedded", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A function that gives a store of this backend (each call: the same index)."""
    made: list[Store] = []

    def make() -> Store:
        if request.param == "embedded":
            from index.stores.embedded import EmbeddedStore

            store: Store = EmbeddedStore(tmp_path / "ix")
        else:
            from index.stores.postgres import PostgresStore

            store = PostgresStore(request.getfixturevalue("pg_url"), cache_path=tmp_path / "cache.sqlite3")
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


def test_an_empty_store_has_no_index(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    assert store.fingerprints() is None
    with pytest.raises(IndexNotFoundError):
        store.open(hashing_embedder)
    with pytest.raises(IndexNotFoundError):  # a partial batch needs an index to start from
        update_index(store, [_article(1)], [], hashing_embedder)


def test_build_counts_fingerprints_and_up_to_date(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    loaded = corpus()
    report = build_index(store, loaded, hashing_embedder)
    assert report.full and report.added == 40 and report.sentences > 40 * 6
    assert store.fingerprints() == {a.id: a.fingerprint for a in loaded.articles}
    reader = store.open(hashing_embedder)
    assert (reader.info.articles, reader.info.sentences) == (40, report.sentences)
    assert reader.total_sentences == report.sentences
    again = build_index(store, loaded, hashing_embedder)
    assert again.up_to_date and again.sentences == report.sentences


def test_dense_finds_a_stored_sentence_first_and_scores_descend(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(), hashing_embedder)
    r = store.open(hashing_embedder)
    text = f"Sentence 3 of report 17 says the {TOPICS[17 % len(TOPICS)]} in town number 17 continued for day 3."
    hits = r.dense(hashing_embedder.encode([text])[0], 10)
    assert len(hits) == 10
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    top = r.sentences([hits[0][0]])[hits[0][0]]
    assert top.text == text and r.article(top.article).ext_id == "art-17"
    assert hits[0][1] == pytest.approx(1.0, abs=2e-3)  # unit vectors: the sentence itself
    vecs = r.vectors([i for i, _ in hits])
    assert vecs.shape == (10, hashing_embedder.dimension)
    assert np.allclose(vecs @ hashing_embedder.encode([text])[0], [s for _, s in hits], atol=5e-3)


def test_filters_apply_inside_the_dense_search_and_still_fill_k(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    """One outlet holds 2 of 202 articles: a filtered search still returns k of its sentences."""
    rare = [_article(500 + i, outlet="Island Bulletin") for i in range(2)]
    store = make_store()
    build_index(store, LoadResult([_article(i) for i in range(200)] + rare, [], 202), hashing_embedder)
    r = store.open(hashing_embedder)
    q = hashing_embedder.encode(["dock strike in the harbour"])[0]
    hits = r.dense(q, 10, SearchFilter(source="island"))
    assert len(hits) == 10
    assert {r.article(r.sentences([i])[i].article).source for i, _ in hits} == {"Island Bulletin"}
    since, until = dt.date(2026, 2, 1), dt.date(2026, 2, 5)
    dated = r.dense(q, 50, SearchFilter(since=since, until=until))
    days = {r.day_of(r.sentences([i])[i].article) for i, _ in dated}
    assert dated and all(d is not None and since <= d <= until for d in days)
    in_window = {i for i, a in enumerate(r.article_infos()) if a.published and since.isoformat() <= a.published
                 <= until.isoformat()}
    expected = sum(a.sentences for k, a in enumerate(r.article_infos()) if k in in_window)
    assert len(in_window) == 5 and len(dated) == expected  # every sentence of the five articles, not fewer
    assert r.dense(q, 10, SearchFilter(source="no such outlet")) == []


def test_lexical_bm25_terms_filters_and_no_query_syntax(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(), hashing_embedder)
    r = store.open(hashing_embedder)
    hits = r.lexical(["item17"], 5)
    assert len(hits) == 1 and "item17" in r.sentences([hits[0][0]])[hits[0][0]].text
    both = r.lexical(["bakery", "item9"], 20)
    texts = [r.sentences([i])[i].text for i, _ in both]
    assert "item9" in texts[0] and all("bakery" in t for t in texts[1:])  # the rare term weighs most
    assert [s for _, s in both] == sorted((s for _, s in both), reverse=True)
    only = r.lexical(["bakery"], 100, SearchFilter(source="valley"))
    assert only and all(r.article(r.sentences([i])[i].article).source == "Valley Times" for i, _ in only)
    for hostile in (['"unbalanced'], ["NEAR(dock strike)"], ["a AND (b"], ["col:text"], ["'; DROP TABLE x; --"]):
        assert r.lexical(hostile, 5) == [] or all(isinstance(i, int) for i, _ in r.lexical(hostile, 5))
    assert r.lexical([], 5) == []


def test_neighbours_by_position_article_sentences_and_numbers(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(), hashing_embedder)
    r = store.open(hashing_embedder)
    [(sid, _)] = r.lexical(["item5"], 1)
    row = r.sentences([sid])[sid]
    every = r.article_sentences([row.article])[row.article]
    assert [s.idx for s in every] == list(range(len(every)))
    assert every[row.idx] == row
    near = r.neighbours([row], window=1)
    assert set(near) == {(row.article, row.idx - 1)}  # the last sentence: no neighbour after it
    assert near[(row.article, row.idx - 1)].text == every[row.idx - 1].text
    art = r.article(row.article)
    others = {a: r.sentences([i])[i].article for a, (i, _) in zip(range(3), r.lexical(["bakery"], 3))}
    ids = {row.article, *others.values()}
    assert r.articles_mentioning(ids, ["1005"]) == {row.article}
    assert r.articles_mentioning(ids, ["1005", "pound"]) == {row.article}
    assert r.articles_mentioning(ids, ["1005", "zzz"]) == set()
    view = r.passage_view(sid)
    assert view is not None and view.article_id == art.ext_id
    assert view.text[view.hl_start:view.hl_end] == row.text
    assert r.passage_view(-1) is None


def test_days_and_windows(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(10, [_article(99, day=None)]), hashing_embedder)
    r = store.open(hashing_embedder)
    assert r.newest_day == dt.date(2026, 1, 1) + dt.timedelta(days=99)
    ids = {r.article(i).ext_id: i for i in (r.sentences([s])[s].article for s, _ in r.lexical(["sentence"], 500))}
    assert r.day_of(ids["art-3"]) == dt.date(2026, 1, 4)
    assert r.has_articles_between(dt.date(2026, 1, 4), dt.date(2026, 1, 4))
    assert not r.has_articles_between(dt.date(2026, 1, 20), dt.date(2026, 3, 1))
    infos = {i.id: i for i in r.article_infos()}
    assert len(infos) == 11 and infos["art-3"].source == OUTLETS[3]
    assert infos["art-3"].sentences == len(r.article_sentences([ids["art-3"]])[ids["art-3"]]) > 5


def test_an_update_adds_replaces_and_removes_and_old_readers_keep_answering(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(10), hashing_embedder)
    stamp = store.stamp()
    old = store.open(hashing_embedder)
    [(old_sid, _)] = old.lexical(["item4"], 1)
    old_article = old.sentences([old_sid])[old_sid].article
    changed = _article(4, text="The harbour reopened on Friday after the strike ended. " * 3 + "Officials said itemfour.")
    report = update_index(store, [changed, _article(77)], ["art-5"], hashing_embedder)
    assert (report.added, report.changed, report.removed) == (1, 1, 1)
    assert store.stamp() != stamp
    fps = store.fingerprints()
    assert fps is not None and set(fps) == {f"art-{i}" for i in (0, 1, 2, 3, 4, 6, 7, 8, 9, 77)}
    assert fps["art-4"] == changed.fingerprint
    new = store.open(hashing_embedder)
    assert new.lexical(["item4"], 5) == [] and len(new.lexical(["itemfour"], 5)) == 1
    assert new.info.generation > old.info.generation
    assert old.article(old_article).ext_id == "art-4"  # a reader keeps its own article table
    # A full rebuild leaves the generation before it readable, for answers under way.
    build_index(store, corpus(10), hashing_embedder, full=True)
    newest = store.open(hashing_embedder)
    assert newest.info.articles == 10 and newest.lexical(["item4"], 5)
    assert new.lexical(["itemfour"], 5)  # the generation before the rebuild still answers


def test_a_failed_batch_changes_nothing(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(10), hashing_embedder)
    before, stamp = store.fingerprints(), store.stamp()

    def fail(stage: str) -> None:
        if stage == "indexed":
            raise RuntimeError("killed at " + stage)

    with pytest.raises(RuntimeError):
        update_index(store, [_article(50)], ["art-1"], hashing_embedder, hook=fail)
    with pytest.raises(RuntimeError):
        build_index(store, corpus(3), hashing_embedder, full=True, hook=fail)
    assert store.fingerprints() == before and store.stamp() == stamp
    assert store.open(hashing_embedder).info.articles == 10
    assert update_index(store, [_article(50)], [], hashing_embedder).added == 1  # the lock was released


def test_one_writer_at_a_time(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(5), hashing_embedder)
    held = store.begin(hashing_embedder, full=False, partial=True, wait=False, step=lambda _s: None)
    try:
        with pytest.raises(IndexLockedError, match="--wait"):
            build_index(make_store(), corpus(6), hashing_embedder)
    finally:
        held.abandon()
    assert build_index(make_store(), corpus(6), hashing_embedder).added == 1


def test_wire_copies_are_grouped(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    story = " ".join(f"The wire story sentence number {k} tells of events at the port and the mayor's reply {k}."
                     for k in range(12))
    a = _article(300, outlet="Wire One", text=story)
    b = _article(301, outlet="Wire Two", text=story + " Local editors added a line.")
    store = make_store()
    build_index(store, corpus(5, [a, b]), hashing_embedder)
    r = store.open(hashing_embedder)
    by_ext = {}
    for sid, _ in r.lexical(["wire"], 100):
        art = r.sentences([sid])[sid].article
        by_ext[r.article(art).ext_id] = art
    assert r.wire_copies(by_ext["art-300"]) == [by_ext["art-301"]]
    assert r.wire_copies(by_ext["art-301"]) == [by_ext["art-300"]]
    plain = next(i for i, _ in r.lexical(["item1"], 1))
    assert r.wire_copies(r.sentences([plain])[plain].article) == []


def test_similarities_are_the_stored_vectors_inner_products(make_store, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    build_index(store, corpus(5), hashing_embedder)
    r = store.open(hashing_embedder)
    q = hashing_embedder.encode(["the council budget"])[0]
    ids = [i for i, _ in r.dense(q, 12)][::-1]
    assert np.allclose(r.similarities(q, ids), r.vectors(ids) @ q, atol=2e-3)
    assert np.allclose(r.similarities(q, ids), sorted((s for _, s in r.dense(q, 12))), atol=2e-3)
    assert r.similarities(q, []).shape == (0,)
