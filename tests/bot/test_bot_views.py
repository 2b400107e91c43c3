"""Custom ids: encoding, decoding, the 100-character limit; the views built from them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import views as V
from bot.feedback import DOWN, UP, new_answer_id
from bot.render import dlen


def test_answer_ids_round_trip() -> None:
    aid = new_answer_id()
    assert V.parse_custom_id(V.passages_custom_id(aid)) == V.CustomId("passages", answer_id=aid)
    assert V.parse_custom_id(V.feedback_custom_id(aid, UP)) == V.CustomId("feedback", answer_id=aid, vote=UP)
    assert V.parse_custom_id(V.feedback_custom_id(aid, DOWN)).vote == DOWN
    assert V.passages_custom_id(aid) == f"nb:passages:{aid}"
    assert V.feedback_custom_id(aid, UP) == f"nb:fb:up:{aid}"
    with pytest.raises(ValueError):
        V.passages_custom_id("bad id with spaces")


@given(st.text(max_size=V.SOURCES_QUERY_MAX), st.integers(0, 999_999), st.sampled_from(["p", "n"]))
def test_sources_ids_round_trip_within_100(query: str, page: int, direction: str) -> None:
    cid = V.sources_custom_id(direction, page, query or None)
    assert dlen(cid) <= 100
    parsed = V.parse_custom_id(cid)
    assert parsed == V.CustomId("sources", direction=direction, page=page, query=query or None)


def test_foreign_ids_are_ignored() -> None:
    for cid in ["", "nb:passages:", "nb:fb:maybe:abcdefgh", "other:thing", "nb:src:x:1:q", "nb:passages:abc"]:
        assert V.parse_custom_id(cid) is None


def test_answer_view_is_persistent() -> None:
    aid = new_answer_id()
    view = V.answer_view(aid)
    assert view.timeout is None and view.is_persistent()
    ids = [c["custom_id"] for row in view.to_components() for c in row["components"]]
    assert ids == [f"nb:passages:{aid}", f"nb:fb:up:{aid}", f"nb:fb:down:{aid}"]
    assert all(len(i) <= 100 for i in ids)


def test_sources_view() -> None:
    assert V.sources_view(0, 1, None) is None
    view = V.sources_view(0, 3, "planet")
    buttons = [c for row in view.to_components() for c in row["components"]]
    assert [b["custom_id"] for b in buttons] == ["nb:src:p:0:planet", "nb:src:n:0:planet"]
    assert [b.get("disabled", False) for b in buttons] == [True, False]
    last = [c for row in V.sources_view(2, 3, None).to_components() for c in row["components"]]
    assert [b.get("disabled", False) for b in last] == [False, True]


def test_templates_rebuild_the_items() -> None:
    import asyncio

    aid = new_answer_id()
    m = V.FEEDBACK_TEMPLATE.fullmatch(V.feedback_custom_id(aid, DOWN))
    item = asyncio.run(V.FeedbackButton.from_custom_id(None, None, m))  # type: ignore[arg-type]
    assert (item.answer_id, item.vote) == (aid, DOWN)
    m = V.SOURCES_TEMPLATE.fullmatch("nb:src:n:4:a:b")
    item = asyncio.run(V.SourcesPageButton.from_custom_id(None, None, m))  # type: ignore[arg-type]
    assert (item.target, item.query) == (5, "a:b")
