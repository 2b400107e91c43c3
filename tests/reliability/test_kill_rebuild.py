"""A rebuild killed with SIGKILL at any stage leaves the previous index loadable and answering the same;
the next rebuild completes.

Each kill is real: a subprocess runs ``newsbot rebuild`` (the CLI's own code, with the hashing
embedder) and its ``build_index`` hook sends SIGKILL to itself at the chosen stage.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from relutil import answers_of, corpus_v1, corpus_v2, run_driver, stray_files, write_corpus

from index.embed import HashingEmbedder
from index.errors import IndexNotFoundError
from index.loaders import load_corpus
from index.stores.build import build_index
from index.stores.embedded import Snapshot, read_manifest

EMB = HashingEmbedder()

#: The stages a kill lands on: before anything is written, while parsing, between embedding chunks,
#: while writing and renaming files, and just before and after the manifest commit.
STAGES = [
    "locked", "opened", "diffed", "removed", "parse:0", "parse:3", "parse:5", "parsed",
    "embed:512", "embed:1024", "embed:1536", "embed:last", "embedded", "indexed",  # "indexed": newer store.py
    "db-closed", "written", "synced", "renamed-db", "renamed", "manifest", "committed",
]


#: Stages that only some versions of build_index report (a kill there is skipped when absent).
OPTIONAL = {"indexed"}


class Reference:
    """The index before the rebuild (v1) and what a clean rebuild to v2 gives."""

    def __init__(self, root: Path) -> None:
        self.v1_corpus = write_corpus(root / "corpus-v1", corpus_v1())
        self.v2_corpus = write_corpus(root / "corpus-v2", corpus_v2())
        self.v1_index = root / "ix-v1"
        build_index(self.v1_index, load_corpus(self.v1_corpus), EMB)
        self.v1 = answers_of(self.v1_index, EMB)
        # A clean incremental rebuild to v2, recording every stage it passes.
        self.stages: list[str] = []
        inc = root / "ix-v2-incremental"
        shutil.copytree(self.v1_index, inc)
        build_index(inc, load_corpus(self.v2_corpus), EMB, hook=self.stages.append)
        self.v2 = answers_of(inc, EMB)
        full = root / "ix-v2-full"
        shutil.copytree(self.v1_index, full)
        build_index(full, load_corpus(self.v2_corpus), EMB, full=True)
        self.v2_full = answers_of(full, EMB)
        fresh = root / "ix-v2-fresh"
        build_index(fresh, load_corpus(self.v2_corpus), EMB)
        self.v2_fresh = answers_of(fresh, EMB)

    def stage(self, name: str) -> str:
        if name == "embed:last":
            return [s for s in self.stages if s.startswith("embed:")][-1]
        return name


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    r = Reference(tmp_path_factory.mktemp("kill-ref"))
    assert r.v1[0] == 1 and r.v2[0] == 2
    assert r.v1[1] != r.v2[1], "v2 must answer differently, or a kill test could not tell the builds apart"
    return r


def test_reference_build_passes_every_stage_the_kills_aim_at(ref: Reference) -> None:
    embeds = [s for s in ref.stages if s.startswith("embed:")]
    assert len(embeds) == 4, embeds  # four 512-sentence chunks: kills land between them
    missing = [s for s in STAGES if ref.stage(s) not in ref.stages and s not in OPTIONAL]
    assert not missing, f"build_index no longer reports stages {missing}; stages now: {ref.stages}"
    assert len({ref.stage(s) for s in STAGES} & set(ref.stages)) >= 20


def _rebuild(corpus: Path, ix: Path, *extra: str, kill_at: str | None = None):  # type: ignore[no-untyped-def]
    return run_driver(["rebuild", "--corpus", str(corpus), "--index", str(ix), "--quiet", *extra], kill_at=kill_at)


def _assert_complete_rebuild(corpus: Path, ix: Path, expected: tuple, *extra: str) -> None:  # type: ignore[type-arg]
    """The next rebuild (the CLI's code, run in this process to save a start-up) completes, with the
    answers of an uninterrupted rebuild, under a generation number never used before."""
    before = _generation(ix)
    import index.embed
    from index.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index.embed, "load_embedder", lambda *_a, **_k: EMB)
        mp.setattr(index.embed, "model_fingerprint", lambda *_a, **_k: EMB.fingerprint)
        assert main(["rebuild", "--corpus", str(corpus), "--index", str(ix), "--quiet", *extra]) == 0
    generation, replies = answers_of(ix, EMB)
    assert replies == expected[1]
    assert generation >= max(before, 1)
    assert stray_files(ix) == [], "the rebuild after a crash must clean up the crashed build's files"
    gens = sorted(p.name for p in ix.glob("gen-*"))
    assert len(gens) <= 6, f"old generations pile up: {gens}"  # the current one and at most two before


def _generation(ix: Path) -> int:
    try:
        return int(read_manifest(ix)["generation"])
    except IndexNotFoundError:
        return 0


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_during_incremental_rebuild(stage: str, ref: Reference, tmp_path: Path) -> None:
    if stage in OPTIONAL and stage not in ref.stages:
        pytest.skip(f"this build_index has no {stage!r} stage")
    ix = tmp_path / "ix"
    shutil.copytree(ref.v1_index, ix)
    killed = _rebuild(ref.v2_corpus, ix, kill_at=ref.stage(stage))
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    # The index still loads, and answers exactly as one of the two builds: the old one until the
    # manifest is replaced, the new one after.
    generation, replies = answers_of(ix, EMB)
    assert replies == (ref.v2 if stage == "committed" else ref.v1)[1]
    assert generation == (2 if stage == "committed" else 1)
    # The next rebuild takes the lock the dead process held, and completes.
    _assert_complete_rebuild(ref.v2_corpus, ix, ref.v2)


@pytest.mark.parametrize("stage", ["parse:3", "embed:1024", "written", "renamed-db", "manifest"])
def test_sigkill_during_full_rebuild(stage: str, ref: Reference, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    shutil.copytree(ref.v1_index, ix)
    killed = _rebuild(ref.v2_corpus, ix, "--full", kill_at=ref.stage(stage))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert answers_of(ix, EMB) == ref.v1  # the same generation, the same answers
    _assert_complete_rebuild(ref.v2_corpus, ix, ref.v2_full, "--full")


@pytest.mark.parametrize("stage", ["parse:0", "embed:512", "renamed", "manifest"])
def test_sigkill_during_first_build_leaves_a_clear_no_index_error(stage: str, ref: Reference, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    killed = _rebuild(ref.v2_corpus, ix, kill_at=ref.stage(stage))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for load in (read_manifest, Snapshot.open):
        with pytest.raises(IndexNotFoundError, match="newsbot rebuild"):
            load(ix)
    _assert_complete_rebuild(ref.v2_corpus, ix, ref.v2_fresh)


def test_repeated_crashes_then_a_clean_rebuild(ref: Reference, tmp_path: Path) -> None:
    """Crashed builds of the same generation, one after another, never confuse the next one."""
    ix = tmp_path / "ix"
    shutil.copytree(ref.v1_index, ix)
    for stage, extra in [("renamed", ()), ("parse:3", ("--full",)), ("synced", ()), ("renamed-db", ("--full",))]:
        killed = _rebuild(ref.v2_corpus, ix, *extra, kill_at=stage)
        assert killed.returncode == -signal.SIGKILL, (stage, killed.stderr)
        assert answers_of(ix, EMB) == ref.v1, stage
    _assert_complete_rebuild(ref.v2_corpus, ix, ref.v2)
    # And back: v1 again, incrementally, over the files the crashes left.
    done = _rebuild(write_corpus(tmp_path / "back", corpus_v1()), ix)
    assert done.returncode == 0, done.stderr
    gen, replies = answers_of(ix, EMB)
    assert replies == ref.v1[1]
