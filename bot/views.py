"""Buttons that keep working after a restart: ``discord.ui.DynamicItem`` with meaningful custom ids.

Custom ids (at most 100 characters):

* ``nb:passages:<answer_id>``: show the passages around an answer's quotes;
* ``nb:fb:up:<answer_id>`` / ``nb:fb:down:<answer_id>``: 👍 / 👎 feedback;
* ``nb:src:<p|n>:<page>:<query>``: the previous / next page of ``/sources`` from ``page``.

The answer itself lives in the feedback database under ``answer_id``, so the bot needs no
memory of the message. The callbacks only route to the cogs, which do the work.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import discord

from .feedback import ANSWER_ID_RE, DOWN, UP
from .render import CUSTOM_ID_LIMIT, dlen
from .send import guarded

log = logging.getLogger(__name__)

#: The longest ``/sources`` query: the query rides in the page buttons' custom ids.
SOURCES_QUERY_MAX = 40

_ID = ANSWER_ID_RE.pattern
PASSAGES_TEMPLATE = re.compile(rf"nb:passages:(?P<answer_id>{_ID})")
FEEDBACK_TEMPLATE = re.compile(rf"nb:fb:(?P<vote>up|down):(?P<answer_id>{_ID})")
SOURCES_TEMPLATE = re.compile(r"nb:src:(?P<direction>[pn]):(?P<page>\d{1,6}):(?P<query>.*)", re.DOTALL)

_VOTE_NAMES = {UP: "up", DOWN: "down"}
_VOTES = {v: k for k, v in _VOTE_NAMES.items()}


@dataclass(frozen=True, slots=True)
class CustomId:
    """A decoded custom id. ``kind`` is ``passages``, ``feedback`` or ``sources``."""

    kind: str
    answer_id: str | None = None
    vote: int | None = None
    direction: str | None = None
    page: int | None = None
    query: str | None = None


def _checked(custom_id: str) -> str:
    if dlen(custom_id) > CUSTOM_ID_LIMIT:
        raise ValueError(f"custom id longer than {CUSTOM_ID_LIMIT}: {custom_id!r}")
    return custom_id


def passages_custom_id(answer_id: str) -> str:
    if not ANSWER_ID_RE.fullmatch(answer_id):
        raise ValueError(f"not an answer id: {answer_id!r}")
    return _checked(f"nb:passages:{answer_id}")


def feedback_custom_id(answer_id: str, vote: int) -> str:
    if not ANSWER_ID_RE.fullmatch(answer_id):
        raise ValueError(f"not an answer id: {answer_id!r}")
    return _checked(f"nb:fb:{_VOTE_NAMES[vote]}:{answer_id}")


def sources_custom_id(direction: str, page: int, query: str | None) -> str:
    """The id of a page button: ``direction`` ``p`` (previous) or ``n`` (next) from ``page``."""
    if direction not in {"p", "n"} or not 0 <= page <= 999_999:
        raise ValueError(f"bad page button: {direction!r} {page!r}")
    return _checked(f"nb:src:{direction}:{page}:{query or ''}")


def parse_custom_id(custom_id: str) -> CustomId | None:
    """Decode one of the bot's custom ids (None if it isn't one)."""
    if m := PASSAGES_TEMPLATE.fullmatch(custom_id):
        return CustomId("passages", answer_id=m["answer_id"])
    if m := FEEDBACK_TEMPLATE.fullmatch(custom_id):
        return CustomId("feedback", answer_id=m["answer_id"], vote=_VOTES[m["vote"]])
    if m := SOURCES_TEMPLATE.fullmatch(custom_id):
        return CustomId("sources", direction=m["direction"], page=int(m["page"]), query=m["query"] or None)
    return None


def _cog(interaction: discord.Interaction, name: str) -> Any:
    cog = interaction.client.get_cog(name)  # type: ignore[attr-defined]
    if cog is None:
        raise RuntimeError(f"the {name} cog is not loaded")
    return cog


class PassagesButton(discord.ui.DynamicItem[discord.ui.Button], template=PASSAGES_TEMPLATE):
    """"Passages": an ephemeral reply with the passage around each quoted sentence."""

    def __init__(self, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Passages", emoji="📄", style=discord.ButtonStyle.secondary,
                custom_id=passages_custom_id(answer_id),
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> PassagesButton:
        return cls(match["answer_id"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await guarded(interaction, lambda: _cog(interaction, "Ask").show_passages(interaction, self.answer_id))


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=FEEDBACK_TEMPLATE):
    """👍 / 👎: stores the vote with a hash of the user id."""

    def __init__(self, answer_id: str, vote: int) -> None:
        super().__init__(
            discord.ui.Button(
                emoji="👍" if vote == UP else "👎", style=discord.ButtonStyle.secondary,
                custom_id=feedback_custom_id(answer_id, vote),
            )
        )
        self.answer_id = answer_id
        self.vote = vote

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(match["answer_id"], _VOTES[match["vote"]])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await guarded(interaction, lambda: _cog(interaction, "Ask").record_vote(interaction, self.answer_id, self.vote))


class SourcesPageButton(discord.ui.DynamicItem[discord.ui.Button], template=SOURCES_TEMPLATE):
    """◀ / ▶ under ``/sources``: edits the message to the previous / next page."""

    def __init__(self, direction: str, page: int, query: str | None, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label="◀" if direction == "p" else "▶", style=discord.ButtonStyle.secondary,
                custom_id=sources_custom_id(direction, page, query), disabled=disabled,
            )
        )
        self.direction = direction
        self.page = page
        self.query = query

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> SourcesPageButton:
        return cls(match["direction"], int(match["page"]), match["query"] or None)

    @property
    def target(self) -> int:
        """The page this button goes to."""
        return self.page - 1 if self.direction == "p" else self.page + 1

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await guarded(interaction, lambda: _cog(interaction, "Sources").turn_page(interaction, self.target, self.query))


#: Register these with ``client.add_dynamic_items`` so clicks on old messages are handled.
DYNAMIC_ITEMS = (PassagesButton, FeedbackButton, SourcesPageButton)


def answer_view(answer_id: str) -> discord.ui.View:
    """Passages, 👍 and 👎 under an answer."""
    view = discord.ui.View(timeout=None)
    view.add_item(PassagesButton(answer_id))
    view.add_item(FeedbackButton(answer_id, UP))
    view.add_item(FeedbackButton(answer_id, DOWN))
    return view


def sources_view(page: int, pages: int, query: str | None) -> discord.ui.View | None:
    """◀ ▶ under a page of ``/sources`` (None when everything fits on one page)."""
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(SourcesPageButton("p", page, query, disabled=page <= 0))
    view.add_item(SourcesPageButton("n", page, query, disabled=page >= pages - 1))
    return view
