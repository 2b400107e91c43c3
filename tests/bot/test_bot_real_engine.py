"""The bot's flows over the real engine and the seed index (real packaged model: slower)."""

from __future__ import annotations

import asyncio

import pytest

from bot.cogs.ask import AskCog
from bot.cogs.sources import SourcesCog
from bot.render import payload_problems, render_answer

pytestmark = pytest.mark.model


@pytest.fixture
def real_bot(newsbot, seed_engine):  # type: ignore[no-untyped-def]
    newsbot.engine = seed_engine
    asyncio.run(newsbot.refresh_outlets())
    return newsbot


def test_answer_passages_and_sources_over_the_real_engine(real_bot, store, make_interaction) -> None:  # type: ignore[no-untyped-def]
    assert real_bot.outlets
    cog = AskCog(real_bot)
    it = make_interaction()
    asyncio.run(cog.ask_slash(it, "Where is Chery opening its European headquarters?"))
    kw = it.last()
    embed = kw["embeds"][0]
    assert "[1]" in embed.description and "**Sources**" in embed.description
    aid = [c["custom_id"] for row in kw["view"].to_components() for c in row["components"]][0].rsplit(":", 1)[1]
    stored = store.get_answer(aid)
    assert stored is not None and stored.quotes

    # every quoted sentence is found again in its passage, in bold
    entries = cog._passage_entries(stored)
    assert all(e.passage is not None for e in entries), [e.note for e in entries]
    it = make_interaction()
    asyncio.run(cog.show_passages(it, aid))
    assert all("**" in e.description for e in it.last()["embeds"])

    it = make_interaction()
    sources = SourcesCog(real_bot)
    asyncio.run(sources.sources.callback(sources, it, None))
    assert "articles" in it.last()["embeds"][0].footer.text


def test_real_answers_fit(seed_engine) -> None:  # type: ignore[no-untyped-def]
    for q in ["Which brands does Chery already sell in the UK?", "What is the capital of Mars?", "fares"]:
        assert payload_problems(render_answer(seed_engine.ask(q))) == []
