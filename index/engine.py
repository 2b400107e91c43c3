"""The engine: the model and the index loaded once, answering questions from any thread."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass

from .answer import Answerer, Filters
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import NewsbotError
from .records import Answer, ArticleInfo, PassageView
from .store import MANIFEST, Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _State:
    snapshot: Snapshot
    answerer: Answerer


def list_sources(snapshot: Snapshot, query: str | None = None) -> list[ArticleInfo]:
    """The articles of a snapshot, newest first; with ``query``, those whose title or outlet match."""
    infos = snapshot.article_infos()
    if query and query.strip():
        q = query.strip().lower()
        infos = [a for a in infos if q in a.title.lower() or q in (a.source or "").lower()]
    return sorted(infos, key=lambda a: (a.published or "", a.title), reverse=True)


class Engine:
    """Answers questions over one index. ``ask`` is thread-safe and never mixes two builds."""

    def __init__(self, settings: Settings, embedder: Embedder, snapshot: Snapshot) -> None:
        self.settings = settings
        self.embedder = embedder
        self._state = self._make_state(snapshot)
        self._reload_lock = threading.Lock()
        self._seen_manifest = self._manifest_stamp()

    def _make_state(self, snapshot: Snapshot) -> _State:
        return _State(snapshot, Answerer(snapshot, self.embedder, threshold=self.settings.min_confidence))

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None) -> Engine:
        """Load the model (unless given) and the index; raises a NewsbotError that says how to fix it."""
        if embedder is None:
            embedder = load_embedder(settings)
        snapshot = Snapshot.open(settings.index_dir, embedder, nprobe=settings.nprobe)
        log.info("index loaded: %s articles, %s sentences (generation %s)",
                 snapshot.manifest["counts"]["articles"], snapshot.manifest["counts"]["sentences"],
                 snapshot.manifest["generation"])
        return cls(settings, embedder, snapshot)

    def ask(self, question: str, *, source: str | None = None, since: dt.date | None = None,
            until: dt.date | None = None, asked_on: dt.date | None = None) -> Answer:
        """Answer ``question`` (raises QuestionError when it is empty or too long).

        ``asked_on``: the day it is asked, which "this week" or "recently" in it refer to.
        """
        state = self._state  # one snapshot for the whole answer
        return state.answerer.answer(
            question, filters=Filters(source, since, until), asked_on=asked_on,
            max_chars=self.settings.max_question_chars,
        )

    def sources(self, query: str | None = None) -> list[ArticleInfo]:
        """Every indexed article, or those whose title or outlet contains ``query``."""
        return list_sources(self._state.snapshot, query)

    def passage(self, sentence_id: int) -> PassageView:
        """The passage around a sentence that an answer quoted."""
        view = self._state.snapshot.passage_view(sentence_id)
        if view is None:
            raise NewsbotError("that passage is no longer in the index (it was rebuilt): ask again")
        return view

    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.settings.index_dir / MANIFEST)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def index_changed(self) -> bool:
        """Whether the index folder's manifest was replaced since this engine last opened it: one
        ``stat``, cheap enough to ask every second or two. A rebuild commits by replacing the manifest."""
        return self._manifest_stamp() != self._seen_manifest

    def reload(self) -> dict[str, object]:
        """Open the index anew after a rebuild. On failure the old index keeps serving.

        Answers already under way finish on the snapshot they started with; the old snapshot is
        closed when the last of them lets go of it.
        """
        with self._reload_lock:
            stamp = self._manifest_stamp()  # before opening: a commit meanwhile is noticed next time
            try:
                snapshot = Snapshot.open(self.settings.index_dir, self.embedder,  # raises, old state intact
                                         nprobe=self.settings.nprobe)
            except NewsbotError:
                self._seen_manifest = stamp  # not tried again until the index changes again
                raise
            state = self._make_state(snapshot)
            info = _info(snapshot)
            self._state = state
            self._seen_manifest = stamp
            log.info("index reloaded: generation %s", snapshot.manifest["generation"])
            return info

    @property
    def info(self) -> dict[str, object]:
        return _info(self._state.snapshot)


def _info(snapshot: Snapshot) -> dict[str, object]:
    m = snapshot.manifest
    return {
        "articles": m["counts"]["articles"],
        "sentences": m["counts"]["sentences"],
        "built_at": m["built_at"],
        "model": m["model"]["name"],
        "generation": m["generation"],
    }
