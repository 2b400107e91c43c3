"""The engine: the model and the index loaded once, answering questions from any thread."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from .answer import Answerer, AnswerModel
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import NewsbotError
from .records import Answer, ArticleInfo, PassageView
from .stores import open_store
from .stores.base import Reader, SearchFilter, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _State:
    snapshot: Reader
    answerer: Answerer


def list_sources(snapshot: Reader, query: str | None = None) -> list[ArticleInfo]:
    """The articles of a view of the index, newest first; with ``query``, those whose title or outlet match."""
    infos = snapshot.article_infos()
    if query and query.strip():
        q = query.strip().lower()
        infos = [a for a in infos if q in a.title.lower() or q in (a.source or "").lower()]
    return sorted(infos, key=lambda a: (a.published or "", a.title), reverse=True)


class Engine:
    """Answers questions over one index. ``ask`` is thread-safe and never mixes two builds."""

    def __init__(self, settings: Settings, embedder: Embedder, snapshot: Reader, store: Store,
                 stamp: object = None, model: AnswerModel | None = None) -> None:
        """``model``: the answer model (default: the one fitted for the embedder's backend)."""
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.model = model or AnswerModel.for_backend(getattr(embedder, "backend", "torch"))
        self._state = self._make_state(snapshot)
        self._reload_lock = threading.Lock()
        self._seen = stamp

    def _make_state(self, snapshot: Reader) -> _State:
        return _State(snapshot, Answerer(snapshot, self.embedder, self.model, threshold=self.settings.min_confidence))

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None, store: Store | None = None,
             model: AnswerModel | None = None) -> Engine:
        """Load the model (unless given) and the index; raises a NewsbotError that says how to fix it."""
        if embedder is None:
            embedder = load_embedder(settings)
        store = store or open_store(settings)
        stamp = store.stamp()  # before opening: a commit meanwhile is noticed next time
        snapshot = store.open(embedder)
        info = snapshot.info
        log.info("index loaded from %s: %s articles, %s sentences (generation %s)", store.describe(),
                 info.articles, info.sentences, info.generation)
        return cls(settings, embedder, snapshot, store, stamp, model)

    def ask(self, question: str, *, source: str | None = None, since: dt.date | None = None,
            until: dt.date | None = None, asked_on: dt.date | None = None) -> Answer:
        """Answer ``question`` (raises QuestionError when it is empty or too long).

        ``asked_on``: the day it is asked, which "this week" or "recently" in it refer to.
        """
        state = self._state  # one snapshot for the whole answer
        return state.answerer.answer(
            question, filters=SearchFilter(source, since, until), asked_on=asked_on,
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

    def index_changed(self) -> bool:
        """Whether a new state of the index was committed since this engine last opened it: one
        ``stat`` of the manifest, or one small query, cheap enough to ask every second or two."""
        return self.store.stamp() != self._seen

    def reload(self) -> dict[str, object]:
        """Open the index anew after a rebuild. On failure the old index keeps serving.

        Answers already under way finish on the snapshot they started with; the old snapshot is
        closed when the last of them lets go of it.
        """
        with self._reload_lock:
            stamp = self.store.stamp()  # before opening: a commit meanwhile is noticed next time
            try:
                snapshot = self.store.open(self.embedder)  # raises, old state intact
            except NewsbotError:
                self._seen = stamp  # not tried again until the index changes again
                raise
            state = self._make_state(snapshot)
            info = snapshot.info.to_json()
            self._state = state
            self._seen = stamp
            log.info("index reloaded: generation %s", info["generation"])
            return info

    @property
    def info(self) -> dict[str, object]:
        return self._state.snapshot.info.to_json()
