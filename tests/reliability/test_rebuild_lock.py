"""Two rebuilds at once: the second exits with a clear message, or with --wait queues behind the
first; their stages never interleave. Real processes, held mid-build by the driver's hook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from relutil import answers_of, corpus_v1, corpus_v2, md, run_driver, write_corpus

from index.embed import HashingEmbedder
from index.loaders import load_corpus
from index.stores.build import build_index
from index.stores.embedded import read_manifest

EMB = HashingEmbedder()
HOLD_TIMEOUT_S = 30.0


def _wait_for(path: Path, proc, timeout: float = HOLD_TIMEOUT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the first rebuild ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the first rebuild never reached its hold ({path})")
        time.sleep(0.01)


def _stages(log: Path) -> list[tuple[int, str]]:
    return [(int(pid), stage) for pid, stage, _ in (line.split() for line in log.read_text().splitlines())]


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    c1 = write_corpus(tmp_path / "c1", corpus_v1())
    c2 = write_corpus(tmp_path / "c2", corpus_v2())
    ix = tmp_path / "ix"
    build_index(ix, load_corpus(c1), EMB)
    return tmp_path, c1, c2, ix


@pytest.mark.parametrize("hold_at", ["locked", "embed:512", "renamed"])
def test_second_rebuild_exits_with_a_clear_message(setup, hold_at: str) -> None:  # type: ignore[no-untyped-def]
    tmp, _c1, c2, ix = setup
    hold, release = tmp / "held", tmp / "release"
    first = run_driver(["rebuild", "--corpus", str(c2), "--index", str(ix), "--quiet"], hold_at=hold_at,
                       hold_file=hold, release_file=release, background=True)
    try:
        _wait_for(hold, first)
        started = time.monotonic()
        second = run_driver(["rebuild", "--corpus", str(c2), "--index", str(ix), "--quiet"], timeout=30)
        assert time.monotonic() - started < 20, "the second rebuild must not hang"
        assert second.returncode == 1
        msg = second.stderr.strip().splitlines()[-1]
        assert msg.startswith("error: another rebuild of"), second.stderr
        assert f"pid {first.pid}" in msg and "--wait" in msg  # who holds it, and what to do
        assert "Traceback" not in second.stderr
        assert read_manifest(ix)["generation"] == 1  # the refused rebuild changed nothing
    finally:
        release.touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert read_manifest(ix)["generation"] == 2


def test_second_rebuild_with_wait_queues_and_never_interleaves(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, c1, c2, ix = setup
    c3 = write_corpus(tmp / "c3", {**corpus_v1(), "extra.md": md("Extra", "A third corpus adds this sentence.")})
    hold, release, log = tmp / "held", tmp / "release", tmp / "stages.log"
    first = run_driver(["rebuild", "--corpus", str(c2), "--index", str(ix), "--quiet"], hold_at="parse:2",
                       hold_file=hold, release_file=release, log=log, background=True)
    second = None
    try:
        _wait_for(hold, first)
        # The second asks for a third corpus: it must start after the first commits.
        second = run_driver(["rebuild", "--corpus", str(c3), "--index", str(ix), "--quiet", "--wait"],
                            log=log, background=True)
        time.sleep(1.0)
        assert second.poll() is None, f"--wait must queue, not exit: {second.communicate()}"
        assert not any(pid == second.pid for pid, _ in _stages(log)), "the second build ran while the first held the lock"
    finally:
        release.touch()
        first.communicate(timeout=60)
        if second is not None:
            out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0 and second is not None and second.returncode == 0, err2
    stages = _stages(log)
    pids = [pid for pid, _ in stages]
    # One whole build, then the other: no stage of the second before the first has committed.
    boundary = pids.index(second.pid)
    assert set(pids[:boundary]) == {first.pid} and set(pids[boundary:]) == {second.pid}
    assert stages[boundary - 1] == (first.pid, "committed")
    assert stages[boundary] == (second.pid, "locked")
    gen, replies = answers_of(ix, EMB)
    assert gen == 3
    fresh = tmp / "fresh"
    build_index(fresh, load_corpus(c3), EMB)
    assert replies == answers_of(fresh, EMB)[1]


def test_waiting_rebuild_does_not_report_up_to_date_while_another_changes_the_index(setup) -> None:  # type: ignore[no-untyped-def]
    """`rebuild --wait` for the corpus the index held before a running rebuild started: it must queue
    and rebuild once the other commits, not print "up to date" about an index that is about to change."""
    tmp, c1, c2, ix = setup
    hold, release = tmp / "held", tmp / "release"
    first = run_driver(["rebuild", "--corpus", str(c2), "--index", str(ix), "--quiet"], hold_at="parse:0",
                       hold_file=hold, release_file=release, background=True)
    second = None
    try:
        _wait_for(hold, first)
        second = run_driver(["rebuild", "--corpus", str(c1), "--index", str(ix), "--quiet", "--wait"], background=True)
        time.sleep(1.0)
        early = second.poll()
    finally:
        release.touch()
        first.communicate(timeout=60)
        if second is not None:
            _, err2 = second.communicate(timeout=60)
    assert early is None, f"the waiting rebuild returned at once: {err2.strip()}"
    gen, replies = answers_of(ix, EMB)
    fresh = tmp / "fresh"
    build_index(fresh, load_corpus(c1), EMB)
    assert (gen, replies) == (3, answers_of(fresh, EMB)[1]), "the index must hold the corpus of the last rebuild"
