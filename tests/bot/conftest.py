"""Fixtures for the bot's unit tests: a fake engine, answers, settings, a store and interactions.

``FakeEngine`` implements the methods of :class:`index.engine.Engine` that the bot calls; the
end-to-end tests use the real engine.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.config import BotSettings as Settings
from index.errors import NewsbotError, QuestionError
from index.records import Answer, ArticleInfo, Citation, PassageView, Quote

ARTICLES = [
    ArticleInfo(f"a{i}", f"Article number {i}", "Daily Planet" if i % 2 else "The Courier",
                f"https://news.example/{i}", f"2024-05-{i % 28 + 1:02d}", 10)
    for i in range(1, 24)
]

PASSAGE_TEXT = (
    "The council met on Tuesday. Rail fares will rise by 5% in March, the minister said. "
    "Unions called the rise unfair."
)


def make_answer(
    question: str = "Will rail fares rise?",
    quotes: list[str] | None = None,
    *,
    titles: list[str] | None = None,
    confidence: float = 0.82,
) -> Answer:
    """An answer with one quote per text, each cited to its own article."""
    quotes = ["Rail fares will rise by 5% in March, the minister said."] if quotes is None else quotes
    titles = titles or [f"Fares story {i + 1}" for i in range(len(quotes))]
    citations = tuple(
        Citation(
            n=i + 1, article_id=f"a{i + 1}", title=titles[i % len(titles)], source="Daily Planet",
            url=f"https://news.example/{i + 1}", published="2024-05-01",
            link=f"https://news.example/{i + 1}#:~:text=Rail%20fares",
        )
        for i in range(len(quotes))
    )
    qs = tuple(
        Quote(text=t, citation=i + 1, score=0.8, sentence_id=100 + i, article_id=f"a{i + 1}", start=28, end=28 + len(t))
        for i, t in enumerate(quotes)
    )
    return Answer(question=question, answered=True, confidence=confidence, quotes=qs, citations=citations)


def decline(question: str = "What is the capital of Mars?") -> Answer:
    return Answer(question=question, answered=False, confidence=0.1, message="The articles don't cover that.")


@dataclass
class FakeEngine:
    """A stand-in for index.engine.Engine with canned answers and a call log."""

    answers: dict[str, Answer] = field(default_factory=dict)
    articles: list[ArticleInfo] = field(default_factory=lambda: list(ARTICLES))
    passages: dict[int, PassageView] = field(default_factory=dict)
    max_chars: int = 500
    fail_reload: str | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    reloads: int = 0

    def ask(self, question: str, *, source: str | None = None, since: dt.date | None = None,
            until: dt.date | None = None, asked_on: dt.date | None = None) -> Answer:
        self.calls.append(("ask", (question, source, since, until, asked_on)))
        if not question.strip():
            raise QuestionError("Please ask a question.")
        if len(question) > self.max_chars:
            raise QuestionError(f"That question is too long (over {self.max_chars} characters).")
        return self.answers.get(question) or decline(question)

    def sources(self, query: str | None = None) -> list[ArticleInfo]:
        self.calls.append(("sources", query))
        if query:
            q = query.lower()
            return [a for a in self.articles if q in a.title.lower() or q in (a.source or "").lower()]
        return list(self.articles)

    def passage(self, sentence_id: int) -> PassageView:
        self.calls.append(("passage", sentence_id))
        if sentence_id not in self.passages:
            raise NewsbotError("that passage is no longer in the index (it was rebuilt): ask again")
        return self.passages[sentence_id]

    changed: bool = False  # what index_changed() says (the bot's index follower asks it)

    def index_changed(self) -> bool:
        return self.changed

    @property
    def embedder(self):  # type: ignore[no-untyped-def]
        from index.embed import HashingEmbedder

        return HashingEmbedder()

    def reload(self) -> dict[str, object]:
        self.calls.append(("reload", None))
        self.changed = False
        if self.fail_reload:
            raise NewsbotError(self.fail_reload)
        self.reloads += 1
        return self.info

    @property
    def info(self) -> dict[str, object]:
        return {"articles": len(self.articles), "sentences": 230, "built_at": "2024-06-01T00:00:00+00:00",
                "model": "fake"}


def passage_for(answer: Answer, i: int = 0) -> PassageView:
    """A passage whose highlighted sentence is quote ``i`` of ``answer``."""
    q = answer.quotes[i]
    text = "The council met on Tuesday. " + q.text + " Unions called the rise unfair."
    start = text.index(q.text)
    return PassageView(q.sentence_id, q.article_id, text, start, start + len(q.text))


@pytest.fixture
def answer() -> Answer:
    return make_answer()


@pytest.fixture
def engine(answer: Answer) -> FakeEngine:
    eng = FakeEngine(answers={answer.question: answer})
    eng.passages[answer.quotes[0].sentence_id] = passage_for(answer)
    return eng


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"DISCORD_TOKEN": "fake.token.value", "NEWSBOT_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
         "NEWSBOT_INDEX_DIR": str(tmp_path / "index"), "NEWSBOT_CORPUS_DIR": str(tmp_path / "corpus"),
         "NEWSBOT_COOLDOWN_SECONDS": "5"}
    )


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    from bot.feedback import open_feedback_store

    s = open_feedback_store(Settings.from_env({"NEWSBOT_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3")}))
    yield s
    s.close()


# --- a minimal stand-in for discord.Interaction (only what the cogs touch) ---

_ids = itertools.count(1000)


class FakeResponse:
    def __init__(self, log: list[tuple[str, dict[str, Any]]]) -> None:
        self._log = log
        self._done = False

    def is_done(self) -> bool:
        return self._done

    async def defer(self, **kwargs: Any) -> None:
        assert not self._done, "responded twice"
        self._done = True
        self._log.append(("defer", kwargs))

    async def send_message(self, **kwargs: Any) -> None:
        assert not self._done, "responded twice"
        self._done = True
        self._log.append(("send_message", kwargs))

    async def edit_message(self, **kwargs: Any) -> None:
        assert not self._done, "responded twice"
        self._done = True
        self._log.append(("edit_message", kwargs))

    async def send_modal(self, modal: Any) -> None:
        assert not self._done, "a modal must be the first response"
        self._done = True
        self._log.append(("send_modal", {"modal": modal}))


class FakeFollowup:
    def __init__(self, log: list[tuple[str, dict[str, Any]]]) -> None:
        self._log = log

    async def send(self, **kwargs: Any) -> None:
        self._log.append(("followup", kwargs))


#: When the fake interactions and messages were sent (Discord's timestamps are UTC).
SENT_AT = dt.datetime(2024, 5, 7, 23, 30, tzinfo=dt.UTC)


class FakeInteraction:
    """Records every reply as (kind, kwargs) in ``sent``."""

    def __init__(self, user_id: int = 42, *, manage_guild: bool = False, guild: bool = True,
                 message: Any = None, created_at: dt.datetime = SENT_AT) -> None:
        self.id = next(_ids)
        self.created_at = created_at
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.user = SimpleNamespace(id=user_id)
        self.response = FakeResponse(self.sent)
        self.followup = FakeFollowup(self.sent)
        self.permissions = SimpleNamespace(manage_guild=manage_guild)
        self.guild = SimpleNamespace(id=1) if guild else None
        self.guild_id = 1 if guild else None
        self.message = message
        self.data: dict[str, Any] = {}
        self.command = None

    async def edit_original_response(self, **kwargs: Any) -> None:
        assert self.response.is_done(), "edited the original response before responding"
        self.sent.append(("edit_original", kwargs))

    def replies(self) -> list[dict[str, Any]]:
        return [kw for kind, kw in self.sent if kind != "defer"]

    def last(self) -> dict[str, Any]:
        return self.replies()[-1]


@pytest.fixture
def make_interaction():  # type: ignore[no-untyped-def]
    return FakeInteraction


# --- the helpers above, as fixtures (test modules don't import conftest) ---


@pytest.fixture(name="make_answer")
def _make_answer_fixture():  # type: ignore[no-untyped-def]
    return make_answer


@pytest.fixture(name="decline")
def _decline_fixture():  # type: ignore[no-untyped-def]
    return decline


@pytest.fixture
def articles() -> list[ArticleInfo]:
    return list(ARTICLES)


@pytest.fixture(name="passage_for")
def _passage_for_fixture():  # type: ignore[no-untyped-def]
    return passage_for


@pytest.fixture
def newsbot(settings: Settings, engine: FakeEngine, store):  # type: ignore[no-untyped-def]
    """A NewsBot with the fake engine and a temporary store, as setup_hook would leave it (no network)."""
    from bot.client import NewsBot
    from bot.guilds import GuildSettings, ThreadMemory

    bot = NewsBot(settings, engine_factory=lambda s: engine)
    bot.engine = engine
    bot.store = store
    bot.guild_settings = GuildSettings(store.db)
    bot.thread_memory = ThreadMemory(store.db)
    bot.outlets = ("Daily Planet", "The Courier")
    return bot
