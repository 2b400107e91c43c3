from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from support import write

from index.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from index.loaders import load_corpus
from index.stores.build import build_index
from index.stores.embedded import Snapshot, read_manifest, rebuild_lock

ARTICLES = {
    "a.md": "---\ntitle: Port strike\nsource: Daily\npublished: 2024-01-02\n---\n"
            "Dock workers at the port walked out on Monday over pay.\nThe strike closed three terminals.\n",
    "b.md": "---\ntitle: Bakery prize\nsource: Weekly\npublished: 2024-02-03\n---\n"
            "A village bakery won the national bread award.\nIts sourdough impressed the judges.\n",
}


def make_corpus(root: Path, files: dict[str, str] = ARTICLES) -> Path:
    for name, text in files.items():
        write(root / name, text)
    return root


def answers_of(index_dir: Path, embedder, question: str) -> list[str]:  # type: ignore[no-untyped-def]
    from index.answer import Answerer

    snap = Snapshot.open(index_dir, embedder)
    ans = Answerer(snap, embedder, threshold=0.0).answer(question)
    snap.close()
    return [q.text for q in ans.quotes]


def test_build_writes_manifest_faiss_and_sqlite(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = make_corpus(tmp_path / "c")
    report = build_index(tmp_path / "ix", load_corpus(corpus), hashing_embedder)
    m = read_manifest(tmp_path / "ix")
    assert m["counts"] == {"articles": 2, "passages": 2, "sentences": 4, "vectors": 4}
    assert m["model"]["name"] == "hashing-test-embedder" and m["model"]["dimension"] == 384
    assert report.embedded == 4 and report.full
    snap = Snapshot.open(tmp_path / "ix", hashing_embedder)
    rows = snap.sentences([i for i, _ in snap.dense(hashing_embedder.encode(["bakery"])[0], 4)])
    for r in rows.values():  # every sentence is its article's text at its offsets
        art = snap._db.execute("SELECT text FROM articles WHERE id=?", (r.article,)).fetchone()[0]
        assert art[r.start:r.end] == r.text


def test_dense_search_matches_brute_force(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    files = {f"n{i}.txt": f"Title {i}\nSentence number {i} mentions apples {i % 7} and pears {i % 3}.\n" for i in range(60)}
    build_index(tmp_path / "ix", load_corpus(make_corpus(tmp_path / "c", files)), hashing_embedder)
    snap = Snapshot.open(tmp_path / "ix", hashing_embedder)
    ids = sorted(r for (r,) in snap._db.execute("SELECT id FROM sentences"))
    mat = snap.vectors(ids)
    q = hashing_embedder.encode(["apples 3 and pears 1"])[0]
    brute = [ids[i] for i in np.argsort(-(mat @ q), kind="stable")[:10]]
    got = [i for i, _ in snap.dense(q, 10)]
    assert np.allclose(sorted(mat @ q)[::-1][:10], [s for _, s in snap.dense(q, 10)], atol=1e-5)
    assert set(got[:5]) == set(brute[:5]) or np.allclose((mat @ q)[[ids.index(g) for g in got[:5]]],
                                                          (mat @ q)[[ids.index(b) for b in brute[:5]]])


def test_incremental_rebuild_embeds_only_what_changed(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = make_corpus(tmp_path / "c")
    ix = tmp_path / "ix"
    build_index(ix, load_corpus(corpus), hashing_embedder)
    again = build_index(ix, load_corpus(corpus), hashing_embedder)
    assert again.up_to_date and read_manifest(ix)["generation"] == 1

    write(corpus / "c.txt", "Ferry news\nThe ferry to the island was cancelled because of fog.\n")
    write(corpus / "a.md", ARTICLES["a.md"].replace("three terminals", "four terminals"))
    (corpus / "b.md").unlink()
    r = build_index(ix, load_corpus(corpus), hashing_embedder)
    assert (r.added, r.changed, r.removed, r.full) == (1, 1, 1, False)
    # The unchanged sentence of a.md comes from the cache; only the edited and new ones are embedded.
    assert r.embedded == 2 and r.cached == 1
    m = read_manifest(ix)
    assert m["generation"] == 2 and m["counts"]["articles"] == 2 and m["counts"]["vectors"] == 3
    assert not (ix / "gen-000000.faiss").exists()
    assert answers_of(ix, hashing_embedder, "ferry island fog cancelled")[0].startswith("The ferry")
    full = build_index(ix, load_corpus(corpus), hashing_embedder, full=True)
    assert full.full and full.cached == 3 and full.embedded == 0


@pytest.mark.parametrize("stage", ["locked", "opened", "diffed", "removed", "parse:0", "parsed", "embed:1", "embedded",
                                   "db-closed", "written", "synced", "renamed-db", "renamed", "manifest"])
def test_a_crash_mid_build_leaves_the_previous_index(tmp_path: Path, hashing_embedder, stage: str) -> None:  # type: ignore[no-untyped-def]
    corpus = make_corpus(tmp_path / "c")
    ix = tmp_path / "ix"
    build_index(ix, load_corpus(corpus), hashing_embedder)
    before = answers_of(ix, hashing_embedder, "bakery bread award")
    write(corpus / "c.txt", "Ferry news\nThe ferry to the island was cancelled because of fog.\n")
    (corpus / "a.md").unlink()

    def boom(at: str) -> None:
        if at == stage:
            raise KeyboardInterrupt(f"killed at {at}")

    with pytest.raises(KeyboardInterrupt):
        build_index(ix, load_corpus(corpus), hashing_embedder, hook=boom)
    assert read_manifest(ix)["generation"] == 1
    assert answers_of(ix, hashing_embedder, "bakery bread award") == before
    r = build_index(ix, load_corpus(corpus), hashing_embedder)
    assert r.articles == 2 and read_manifest(ix)["generation"] >= 2


def test_second_rebuild_is_refused_while_one_runs(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = make_corpus(tmp_path / "c")
    with rebuild_lock(tmp_path / "ix"), pytest.raises(IndexLockedError, match="another rebuild"):
        build_index(tmp_path / "ix", load_corpus(corpus), hashing_embedder)


def test_load_errors_say_how_to_fix(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.embed import HashingEmbedder

    with pytest.raises(IndexNotFoundError, match="newsbot rebuild"):
        Snapshot.open(tmp_path / "none")
    ix = tmp_path / "ix"
    build_index(ix, load_corpus(make_corpus(tmp_path / "c")), hashing_embedder)
    with pytest.raises(IndexMismatchError, match=r"dimension 384\), but .* \(dimension 128\): rebuild it with `newsbot rebuild --full`"):
        Snapshot.open(ix, HashingEmbedder(dimension=128))
    m = json.loads((ix / "manifest.json").read_text())

    def reopen_with(edit) -> None:  # type: ignore[no-untyped-def]
        (ix / "manifest.json").write_text(json.dumps(edit(json.loads(json.dumps(m)))))
        with pytest.raises(IndexMismatchError, match="rebuild"):
            Snapshot.open(ix, hashing_embedder)
        (ix / "manifest.json").write_text(json.dumps(m))

    reopen_with(lambda d: {**d, "schema": 99})
    reopen_with(lambda d: {**d, "counts": {**d["counts"], "sentences": 5}})
    reopen_with(lambda d: {k: v for k, v in d.items() if k != "files"})
    (ix / "manifest.json").write_text("{not json")
    with pytest.raises(IndexMismatchError, match="damaged"):
        Snapshot.open(ix, hashing_embedder)
    (ix / "manifest.json").write_text(json.dumps(m))
    Snapshot.open(ix, hashing_embedder).close()

    faiss_file = ix / m["files"]["faiss"]
    good = faiss_file.read_bytes()
    faiss_file.write_bytes(good[: len(good) // 2])
    with pytest.raises(IndexMismatchError, match="faiss"):
        Snapshot.open(ix, hashing_embedder)
    faiss_file.write_bytes(good)
    db_file = ix / m["files"]["sqlite"]
    raw = bytearray(db_file.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)
    db_file.write_bytes(bytes(raw))
    with pytest.raises(IndexMismatchError, match="damaged|rebuild"):
        Snapshot.open(ix, hashing_embedder)


def test_fts_search_is_safe_with_search_syntax(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    from index.terms import content_words

    build_index(tmp_path / "ix", load_corpus(make_corpus(tmp_path / "c")), hashing_embedder)
    snap = Snapshot.open(tmp_path / "ix", hashing_embedder)
    for q in ['"unbalanced', "port* OR", "NEAR(dock strike)", "a AND (b OR c", "col:text", "^start", "-minus +plus"]:
        try:
            snap.lexical(content_words(q), 5)
        except sqlite3.Error as e:  # pragma: no cover - the failure this test guards against
            pytest.fail(f"{q!r}: {e}")


def test_an_index_built_on_another_embedding_backend_is_named_in_the_refusal(tmp_path: Path, hashing_embedder) -> None:  # type: ignore[no-untyped-def]
    """A changed NEWSBOT_BACKEND (torch to onnx-int8): the message says which backend built the index."""
    from index.embed import HashingEmbedder

    ix = tmp_path / "ix"
    build_index(ix, load_corpus(make_corpus(tmp_path / "c")), hashing_embedder)
    other = HashingEmbedder()
    other.fingerprint = hashing_embedder.fingerprint + "+onnx-int8"
    with pytest.raises(IndexMismatchError, match="on the torch backend, but newsbot is configured for .* on the onnx-int8 backend"):
        Snapshot.open(ix, other)
