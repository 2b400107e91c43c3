"""A damaged index is detected at load with an error that names the fix; a running engine asked to
reload a damaged index keeps serving the one it has."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from relutil import QUESTIONS, answers_of, corpus_v1, corpus_v2, write_corpus

from index.config import Settings
from index.embed import HashingEmbedder
from index.engine import Engine
from index.errors import NewsbotError
from index.loaders import load_corpus
from index.stores.build import build_index
from index.stores.embedded import MANIFEST, Snapshot, read_manifest

EMB = HashingEmbedder()


@pytest.fixture(scope="module")
def good_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corrupt")
    ix = root / "ix"
    build_index(ix, load_corpus(write_corpus(root / "c1", corpus_v1())), EMB)
    return ix


def _file(ix: Path, kind: str) -> Path:
    return ix / read_manifest(ix)["files"][kind]


def _flip(path: Path, offset: int, n: int) -> None:
    """Damage ``n`` bytes at ``offset`` without changing the file's size."""
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def apply(ix: Path) -> None:
        m = json.loads((ix / MANIFEST).read_text())
        change(m)
        (ix / MANIFEST).write_text(json.dumps(m))
    return apply


def _raw_manifest(text: str | bytes) -> Callable[[Path], None]:
    def apply(ix: Path) -> None:
        (ix / MANIFEST).write_bytes(text if isinstance(text, bytes) else text.encode())
    return apply


def _sentence_text_offset(db: Path) -> int:
    """Where a sentence's text is stored in the SQLite file (to damage the text, not the structure)."""
    data = db.read_bytes()
    needle = b"Passengers waited four hours at the pier."
    first = data.find(needle)
    assert first >= 0
    return first + 11


#: Damage done to an index, by the file it touches.
DAMAGE: dict[str, Callable[[Path], None]] = {
    # FAISS file
    "faiss-truncated": lambda ix: _truncate(_file(ix, "faiss")),
    "faiss-empty": lambda ix: _file(ix, "faiss").write_bytes(b""),
    "faiss-missing": lambda ix: _file(ix, "faiss").unlink(),
    "faiss-appended": lambda ix: _file(ix, "faiss").open("ab").write(b"\0" * 64),
    "faiss-header": lambda ix: _flip(_file(ix, "faiss"), 0, 8),
    "faiss-ntotal": lambda ix: _flip(_file(ix, "faiss"), 8, 32),
    "faiss-replaced-by-sqlite": lambda ix: _file(ix, "faiss").write_bytes(
        _file(ix, "sqlite").read_bytes()[: _file(ix, "faiss").stat().st_size]),
    # SQLite file
    "sqlite-truncated": lambda ix: _truncate(_file(ix, "sqlite")),
    "sqlite-missing": lambda ix: _file(ix, "sqlite").unlink(),
    "sqlite-header": lambda ix: _flip(_file(ix, "sqlite"), 0, 16),
    "sqlite-page": lambda ix: _flip(_file(ix, "sqlite"), 4096, 512),
    "sqlite-zeroed": lambda ix: _file(ix, "sqlite").write_bytes(b"\0" * _file(ix, "sqlite").stat().st_size),
    # manifest
    "manifest-missing": lambda ix: (ix / MANIFEST).unlink(),
    "manifest-empty": _raw_manifest(""),
    "manifest-truncated": lambda ix: _truncate(ix / MANIFEST, 0.6),
    "manifest-not-utf8": _raw_manifest(b"\xff\xfe{}"),
    "manifest-a-list": _raw_manifest("[1, 2, 3]"),
    "manifest-nested-too-deep": _raw_manifest("[" * 100_000 + "]" * 100_000),
    "manifest-schema": _edit_manifest(lambda m: m.update(schema=99)),
    "manifest-counts": _edit_manifest(lambda m: m["counts"].update(sentences=m["counts"]["sentences"] + 1)),
    "manifest-counts-not-a-mapping": _edit_manifest(lambda m: m.update(counts="many")),
    "manifest-sizes": _edit_manifest(lambda m: m["sizes"].update(faiss=m["sizes"]["faiss"] - 1)),
    "manifest-files-renamed": _edit_manifest(lambda m: m["files"].update(sqlite="gen-999999.sqlite3")),
    "manifest-files-missing": _edit_manifest(lambda m: m.pop("files")),
    "manifest-files-outside": _edit_manifest(lambda m: m["files"].update(sqlite="../c1/port.md")),
    "manifest-model": _edit_manifest(lambda m: m["model"].update(sha256="0" * 64)),
    "manifest-model-not-a-mapping": _edit_manifest(lambda m: m.update(model="minilm")),
    "manifest-dimension": _edit_manifest(lambda m: m["model"].update(dimension=768)),
    "manifest-generation-missing": _edit_manifest(lambda m: m.pop("generation")),
    "manifest-built-at-missing": _edit_manifest(lambda m: m.pop("built_at")),
}

#: Damage that keeps every size: only a checksum of the files' contents can see it.
SILENT_DAMAGE: dict[str, Callable[[Path], None]] = {
    "faiss-vector-bytes": lambda ix: _flip(_file(ix, "faiss"), _file(ix, "faiss").stat().st_size // 2, 64),
    "sqlite-sentence-text": lambda ix: _flip(_file(ix, "sqlite"), _sentence_text_offset(_file(ix, "sqlite")), 4),
}


def _assert_clear_load_error(ix: Path) -> None:
    with pytest.raises(NewsbotError) as err:
        Snapshot.open(ix, EMB)
    msg = str(err.value)
    assert "rebuild" in msg, msg  # names the fix
    assert str(ix) in msg or "manifest" in msg or "model" in msg, msg  # and what is wrong where
    assert "Traceback" not in msg and len(msg) < 2000


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_detected_at_load_with_the_fix_named(damage: str, good_index: Path, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    DAMAGE[damage](ix)
    _assert_clear_load_error(ix)
    with pytest.raises(NewsbotError, match="rebuild"):
        Engine.open(Settings.from_env({}, index_dir=ix), embedder=EMB)


@pytest.mark.parametrize("damage", list(SILENT_DAMAGE))
def test_same_size_damage_to_contents_is_detected(damage: str, good_index: Path, tmp_path: Path) -> None:
    """Bytes changed inside the stored vectors or sentence texts: sizes and structure stay valid, so
    only a checksum in the manifest can tell. Without one, a quote could differ from its article."""
    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    SILENT_DAMAGE[damage](ix)
    _assert_clear_load_error(ix)


@pytest.mark.parametrize("damage", ["faiss-truncated", "sqlite-header", "manifest-truncated", "manifest-counts"])
def test_cli_reports_damage_in_one_line(damage: str, good_index: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from index.cli import main

    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    DAMAGE[damage](ix)
    assert main(["sources", "--index", str(ix)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "rebuild with `newsbot rebuild --full`" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_rebuild_repairs_a_damaged_index(good_index: Path, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    DAMAGE["sqlite-page"](ix)
    corpus = write_corpus(tmp_path / "c", corpus_v1())
    build_index(ix, load_corpus(corpus), EMB, full=True)  # what the error message says to run
    assert answers_of(ix, EMB)[1] == answers_of(good_index, EMB)[1]


@pytest.mark.parametrize("damage", ["faiss-truncated", "faiss-header", "sqlite-header", "sqlite-page",
                                    "manifest-truncated", "manifest-counts", "manifest-model",
                                    "manifest-generation-missing", "manifest-built-at-missing"])
def test_engine_reload_of_a_damaged_index_keeps_serving_the_old_one(damage: str, good_index: Path,
                                                                    tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    engine = Engine.open(Settings.from_env({}, index_dir=ix), embedder=EMB)
    before = [engine.ask(q) for q in QUESTIONS]
    info = engine.info
    # A rebuild to new articles, then damage to the new generation, then a reload.
    build_index(ix, load_corpus(write_corpus(tmp_path / "c2", corpus_v2())), EMB)
    DAMAGE[damage](ix)
    with pytest.raises(NewsbotError, match="rebuild"):
        engine.reload()
    assert engine.info == info
    assert [engine.ask(q) for q in QUESTIONS] == before
    assert engine.sources()  # the rest of the old index still serves too


REBUILD_OVER = [d for d in DAMAGE if d.startswith("manifest-")] + ["sqlite-header", "sqlite-page", "faiss-header",
                                                                     "faiss-truncated"]


@pytest.mark.parametrize("damage", REBUILD_OVER)
def test_a_full_rebuild_over_a_damaged_index_repairs_it(damage: str, good_index: Path, tmp_path: Path) -> None:
    """What every load error tells the user to run, `newsbot rebuild --full`, works whatever the damage."""
    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    DAMAGE[damage](ix)
    build_index(ix, load_corpus(write_corpus(tmp_path / "c", corpus_v1())), EMB, full=True)
    assert answers_of(ix, EMB)[1] == answers_of(good_index, EMB)[1]


@pytest.mark.parametrize("damage", REBUILD_OVER)
def test_an_incremental_rebuild_over_a_damaged_index_never_crashes(damage: str, good_index: Path,
                                                                   tmp_path: Path) -> None:
    """A plain `newsbot rebuild` over a damaged index repairs it, or says clearly to use --full."""
    ix = tmp_path / "ix"
    shutil.copytree(good_index, ix)
    DAMAGE[damage](ix)
    try:
        build_index(ix, load_corpus(write_corpus(tmp_path / "c", corpus_v1())), EMB)
    except NewsbotError as e:
        assert "--full" in str(e)
        return
    try:
        assert answers_of(ix, EMB)[1] == answers_of(good_index, EMB)[1]
    except NewsbotError as e:  # "up to date" over damage the cheap checks cannot see: the load error says what to do
        assert "--full" in str(e)
