"""``update_index`` (a batch of changes as one generation) and wire-copy groups (index.wire)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from index import wire
from index.errors import IndexNotFoundError
from index.loaders import LoadResult, article_fingerprint
from index.records import Article
from index.stores.build import build_index, update_index
from index.stores.embedded import Snapshot, indexed_fingerprints, read_manifest

STORY = ("The regional water company said on Monday that reservoir levels had fallen to forty per cent, the lowest "
         "autumn level since records began in 1976. A hosepipe ban covering two million homes will start on Friday "
         "and last until the reservoirs recover, the company said in a statement. Engineers are repairing leaks on "
         "the main trunk pipe between the two largest reservoirs, which lose about twelve million litres a day. "
         "Farmers in the valley have been told to expect restrictions on irrigation from the spring if the winter "
         "is dry. The company's chief executive apologised to customers and promised compensation for businesses.")


def art(id_: str, text: str, source: str = "Daily Planet") -> Article:
    a = Article(id=id_, title=f"Story {id_}", text=text, source=source, url=f"https://news.example/{id_}",
                published="2026-11-30")
    return dataclasses.replace(a, fingerprint=article_fingerprint(a))


def other(n: int) -> str:
    return (f"Story {n}: the orchestra number {n} announced a tour of {n + 3} cities starting in March, with tickets "
            f"on sale from next week. The conductor said rehearsals for the programme of symphony {n} had begun. "
            "A new concert hall will host the opening night, the first in its forty year history to sell out.")


def test_update_adds_replaces_and_removes_and_keeps_the_rest(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    ix = tmp_path / "ix"
    build_index(ix, LoadResult([art("a", other(1)), art("b", other(2)), art("c", other(3))]), hashing_embedder)
    gen = read_manifest(ix)["generation"]
    report = update_index(ix, [art("d", other(4)), art("b", other(22))], ["c", "nope"], hashing_embedder)
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, 1)
    fps = indexed_fingerprints(ix)
    assert fps is not None and set(fps) == {"a", "b", "d"}
    assert fps["b"] == art("b", other(22)).fingerprint
    assert read_manifest(ix)["generation"] > gen
    snap = Snapshot.open(ix, hashing_embedder)
    assert snap.total_sentences == sum(len(v) for v in snap.article_sentences([a.id for a in snap.articles()]).values())
    # Nothing to do: no new generation.
    again = update_index(ix, [art("a", other(1))], [], hashing_embedder)
    assert again.up_to_date and read_manifest(ix)["generation"] == report.generation


def test_update_needs_an_index(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IndexNotFoundError):
        update_index(tmp_path / "none", [art("a", other(1))], [], hashing_embedder)


def test_wire_copies_share_a_group_and_others_do_not(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    ix = tmp_path / "ix"
    copy = "WASHINGTON (AP) — " + STORY + " Additional reporting by staff."
    build_index(ix, LoadResult([art("orig", STORY, "Wire Service"), art("x", other(5))]), hashing_embedder)
    update_index(ix, [art("copy", copy, "Evening Star"), art("y", other(6))], [], hashing_embedder)
    snap = Snapshot.open(ix, hashing_embedder)
    ids = {a.ext_id: a.id for a in snap.articles()}
    assert snap.wire_copies(ids["copy"]) == [ids["orig"]]
    assert snap.wire_copies(ids["orig"]) == [ids["copy"]]
    assert snap.wire_copies(ids["x"]) == [] and snap.wire_copies(ids["y"]) == []
    # Removing the original leaves the copy alone (and a full rebuild finds the same groups).
    update_index(ix, [], ["orig"], hashing_embedder)
    snap = Snapshot.open(ix, hashing_embedder)
    assert all(snap.wire_copies(a.id) == [] for a in snap.articles())


def test_similarity_threshold_separates_copies_from_related_stories() -> None:
    a = wire.signature(STORY)
    edited = wire.signature(STORY.replace("Friday", "Saturday").replace("apologised", "said sorry"))
    related = wire.signature("Reservoir levels fell to forty per cent, the water company said. " + other(9) * 2)
    assert a is not None and edited is not None and related is not None
    assert wire.similarity(a, edited) >= wire.THRESHOLD
    assert wire.similarity(a, related) < 0.2
    assert wire.signature("Too short to compare.") is None


def test_the_engine_notices_a_new_generation_and_answers_in_flight_keep_theirs(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.config import Settings
    from index.engine import Engine

    ix = tmp_path / "ix"
    build_index(ix, LoadResult([art("a", other(1))]), hashing_embedder)
    engine = Engine.open(Settings.from_env({}, index_dir=ix, min_confidence=0.0), embedder=hashing_embedder)
    assert not engine.index_changed()
    in_flight = engine._state  # what an answer under way holds
    update_index(ix, [art("b", STORY)], [], hashing_embedder)
    assert engine.index_changed()
    info = engine.reload()
    assert info["articles"] == 2 and not engine.index_changed()
    # The old snapshot still answers (its files stay until the generation after next).
    old = in_flight.answerer.answer("Which orchestra announced a tour?")
    assert old.answered and old.citations[0].article_id == "a"
    new = engine.ask("How low have reservoir levels fallen?")
    assert new.citations[0].article_id == "b"


def test_a_generation_that_fails_to_open_is_not_retried_until_the_next_one(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.config import Settings
    from index.engine import Engine
    from index.errors import IndexMismatchError

    ix = tmp_path / "ix"
    build_index(ix, LoadResult([art("a", other(1))]), hashing_embedder)
    engine = Engine.open(Settings.from_env({}, index_dir=ix), embedder=hashing_embedder)
    update_index(ix, [art("b", other(2))], [], hashing_embedder)
    m = read_manifest(ix)
    (ix / m["files"]["faiss"]).write_bytes(b"damaged")
    assert engine.index_changed()
    with pytest.raises(IndexMismatchError):
        engine.reload()
    assert not engine.index_changed()  # the follower does not retry it every poll
    assert engine.info["articles"] == 1  # still serving the old generation
    with pytest.raises(IndexMismatchError):  # a batch cannot go on top of a damaged generation ...
        update_index(ix, [art("c", other(3))], [], hashing_embedder)
    build_index(ix, LoadResult([art("a", other(1)), art("b", other(2)), art("c", other(3))]), hashing_embedder)
    assert engine.index_changed()  # ... the watcher then rebuilds from the corpus, and that is noticed
    assert engine.reload()["articles"] == 3
