"""Custom ids: encoding, decoding, the 100-character limit; the views built from them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import views as V
from bot.feedback import FeedbackCounts, new_answer_id
from bot.render import dlen


def test_answer_ids_round_trip() -> None:
    aid = new_answer_id()
    assert V.parse_custom_id(V.passages_custom_id(aid)) == V.CustomId("passages", answer_id=aid)
    assert V.parse_custom_id(V.feedback_custom_id(aid, "up")) == V.CustomId("feedback", answer_id=aid, vote="up")
    assert V.parse_custom_id(V.feedback_custom_id(aid, "down")).vote == "down"
    assert V.parse_custom_id(V.feedback_custom_id(aid, "miss")).vote == "miss"
    assert V.passages_custom_id(aid) == f"nb:passages:{aid}"
    assert V.feedback_custom_id(aid, "up") == f"nb:fb:up:{aid}"
    form = V.form_custom_id(aid)
    assert V.parse_custom_id(form) == V.CustomId("form", answer_id=aid) and form != V.form_custom_id(aid)
    with pytest.raises(ValueError):
        V.passages_custom_id("bad id with spaces")
    with pytest.raises(ValueError):
        V.feedback_custom_id(aid, "maybe")


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
    labels = [c.get("label") for row in V.answer_view(aid, FeedbackCounts(up=3)).to_components() for c in row["components"]]
    assert labels == ["Passages", "3", None]  # a count once someone voted


def test_the_form_and_its_answers() -> None:
    import asyncio

    async def build():  # type: ignore[no-untyped-def]
        return V.feedback_form(new_answer_id())

    form = asyncio.run(build())
    payload = form.to_dict()
    assert len(payload["title"]) <= 45 and [c["type"] for c in payload["components"]] == [18, 18]
    reason, comment = (c["component"] for c in payload["components"])
    assert reason["custom_id"] == V.REASON_FIELD and (reason["min_values"], reason["max_values"]) == (1, 1)
    assert comment["custom_id"] == V.COMMENT_FIELD and comment["required"] is False
    submitted = {"custom_id": payload["custom_id"], "components": [
        {"type": 18, "id": 1, "component": {"type": 3, "id": 2, "custom_id": "reason", "values": ["outdated"]}},
        {"type": 18, "id": 3, "component": {"type": 4, "id": 4, "custom_id": "comment", "value": "old news"}}]}
    assert V.form_answers(submitted) == {"reason": ["outdated"], "comment": "old news"}
    aid = payload["custom_id"].split(":")[2]
    assert V.read_form(submitted) == V.FormAnswer(aid, "outdated", "old news")
    odd = {**submitted, "components": [  # a reason the form never offered, a blank comment
        {"type": 18, "component": {"type": 3, "custom_id": "reason", "values": ["boring"]}},
        {"type": 18, "component": {"type": 4, "custom_id": "comment", "value": "  "}}]}
    assert V.read_form(odd) == V.FormAnswer(aid, "other", None)
    assert V.read_form({"custom_id": "modal:ask", "components": []}) is None  # not ours


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
    m = V.FEEDBACK_TEMPLATE.fullmatch(V.feedback_custom_id(aid, "down"))
    item = asyncio.run(V.FeedbackButton.from_custom_id(None, None, m))  # type: ignore[arg-type]
    assert (item.answer_id, item.vote) == (aid, "down")
    m = V.SOURCES_TEMPLATE.fullmatch("nb:src:n:4:a:b")
    item = asyncio.run(V.SourcesPageButton.from_custom_id(None, None, m))  # type: ignore[arg-type]
    assert (item.target, item.query) == (5, "a:b")
