"""The bot follows the index by itself: a new generation is noticed by a cheap check and loaded
off the event loop; with nothing new, nothing is reloaded; a failed load keeps the old index."""

from __future__ import annotations

import asyncio

from bot.live import Live


def test_follow_once_reloads_only_when_the_index_changed(newsbot, engine) -> None:  # type: ignore[no-untyped-def]
    live = Live(newsbot)

    async def scenario() -> list[bool]:
        first = await live.follow_once()
        engine.changed = True
        engine.articles = engine.articles[:3]
        second = await live.follow_once()
        third = await live.follow_once()
        return [first, second, third]

    assert asyncio.run(scenario()) == [False, True, False]
    assert engine.reloads == 1
    assert len(newsbot.outlets) == 2 and set(newsbot.outlets) <= {"Daily Planet", "The Courier"}


def test_a_generation_that_fails_to_load_keeps_the_old_one(newsbot, engine, caplog) -> None:  # type: ignore[no-untyped-def]
    live = Live(newsbot)
    engine.changed = True
    engine.fail_reload = "the new generation is damaged"
    assert asyncio.run(live.follow_once()) is False
    assert "still serving the old one" in caplog.text and "damaged" in caplog.text


def test_the_follower_wakes_at_once_when_told_something_was_indexed(newsbot, engine) -> None:  # type: ignore[no-untyped-def]
    newsbot.settings = type(newsbot.settings).from_env(
        {"NEWSBOT_INDEX_POLL_SECONDS": "60", "NEWSBOT_CORPUS_DIR": str(newsbot.settings.corpus_dir)})
    live = Live(newsbot)

    async def scenario() -> int:
        task = asyncio.create_task(live._follow())
        await asyncio.sleep(0.1)
        engine.changed = True
        live.indexed()
        for _ in range(100):
            if engine.reloads:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return engine.reloads

    assert asyncio.run(scenario()) == 1  # well before the 60 s poll
