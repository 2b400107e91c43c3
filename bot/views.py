"""Buttons that keep working after a restart: ``discord.ui.DynamicItem`` with meaningful custom ids.

Custom ids (at most 100 characters):

* ``nb:passages:<answer_id>``: show the passages around an answer's quotes;
* ``nb:fb:up:<answer_id>`` / ``nb:fb:down:<answer_id>``: 👍 / 👎 feedback (👎 opens the form);
* ``nb:fb:miss:<answer_id>``: "This should have been answered", under a decline;
* ``nb:src:<p|n>:<page>:<query>``: the previous / next page of ``/sources`` from ``page``.

And the 👎 form (a modal): ``nb:fbm:<answer_id>:<nonce>``, its fields :data:`REASON_FIELD` and
:data:`COMMENT_FIELD`. The form is never kept in memory (discord.py would route its submission by
custom id alone, so two people's forms for one answer would collide, and a restart would lose
them): the Ask cog reads every submission from ``on_interaction``.

The answer itself lives in the feedback database under ``answer_id``, so the bot needs no
memory of the message. The callbacks only route to the cogs, which do the work.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

import discord

from .feedback import ANSWER_ID_RE, COMMENT_MAX, FORM_REASONS, REASONS, FeedbackCounts
from .render import CUSTOM_ID_LIMIT, dlen
from .send import guarded

log = logging.getLogger(__name__)

#: The longest ``/sources`` query: the query rides in the page buttons' custom ids.
SOURCES_QUERY_MAX = 40

_ID = ANSWER_ID_RE.pattern
PASSAGES_TEMPLATE = re.compile(rf"nb:passages:(?P<answer_id>{_ID})")
FEEDBACK_TEMPLATE = re.compile(rf"nb:fb:(?P<vote>up|down|miss):(?P<answer_id>{_ID})")
FORM_TEMPLATE = re.compile(rf"nb:fbm:(?P<answer_id>{_ID}):(?P<nonce>[0-9a-f]{{8}})")
#: The 👎 form's fields.
REASON_FIELD, COMMENT_FIELD = "reason", "comment"
SOURCES_TEMPLATE = re.compile(r"nb:src:(?P<direction>[pn]):(?P<page>\d{1,6}):(?P<query>.*)", re.DOTALL)

#: What a feedback button says: 👍, 👎, or that a decline should have been an answer.
VOTE_KINDS = ("up", "down", "miss")
MISSED_LABEL = "This should have been answered"


@dataclass(frozen=True, slots=True)
class CustomId:
    """A decoded custom id. ``kind`` is ``passages``, ``feedback``, ``form`` or ``sources``."""

    kind: str
    answer_id: str | None = None
    vote: str | None = None  # one of VOTE_KINDS
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


def feedback_custom_id(answer_id: str, vote: str) -> str:
    if not ANSWER_ID_RE.fullmatch(answer_id) or vote not in VOTE_KINDS:
        raise ValueError(f"not an answer id and vote: {answer_id!r} {vote!r}")
    return _checked(f"nb:fb:{vote}:{answer_id}")


def form_custom_id(answer_id: str) -> str:
    """A 👎 form's id: the answer's, and a nonce of its own (each form opened is another modal)."""
    if not ANSWER_ID_RE.fullmatch(answer_id):
        raise ValueError(f"not an answer id: {answer_id!r}")
    return _checked(f"nb:fbm:{answer_id}:{secrets.token_hex(4)}")


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
        return CustomId("feedback", answer_id=m["answer_id"], vote=m["vote"])
    if m := FORM_TEMPLATE.fullmatch(custom_id):
        return CustomId("form", answer_id=m["answer_id"])
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


def _vote_button(answer_id: str, vote: str, count: int) -> discord.ui.Button:
    """👍 / 👎 with how many gave it (once someone has), or the decline's button."""
    custom_id = feedback_custom_id(answer_id, vote)
    if vote == "miss":
        label = f"{MISSED_LABEL} · {count}" if count else MISSED_LABEL
        return discord.ui.Button(label=label, emoji="🙋", style=discord.ButtonStyle.secondary, custom_id=custom_id)
    return discord.ui.Button(emoji="👍" if vote == "up" else "👎", label=str(count) if count else None,
                             style=discord.ButtonStyle.secondary, custom_id=custom_id)


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=FEEDBACK_TEMPLATE):
    """👍 (stores the vote), 👎 (opens the form whose submission stores it), or "This should have
    been answered" under a decline; each with a hash of the user id."""

    def __init__(self, answer_id: str, vote: str, count: int = 0) -> None:
        super().__init__(_vote_button(answer_id, vote, count))
        self.answer_id = answer_id
        self.vote = vote

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(match["answer_id"], match["vote"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await guarded(interaction, lambda: _cog(interaction, "Ask").on_vote_button(interaction, self.answer_id, self.vote))


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


def answer_view(answer_id: str, counts: FeedbackCounts = FeedbackCounts()) -> discord.ui.View:
    """Passages, 👍 and 👎 under an answer (with the votes so far, once there are some)."""
    view = discord.ui.View(timeout=None)
    view.add_item(PassagesButton(answer_id))
    view.add_item(FeedbackButton(answer_id, "up", counts.up))
    view.add_item(FeedbackButton(answer_id, "down", counts.down))
    return view


def decline_view(answer_id: str, counts: FeedbackCounts = FeedbackCounts()) -> discord.ui.View:
    """"This should have been answered" under a decline (with how many said so)."""
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(answer_id, "miss", counts.down))
    return view


def feedback_form(answer_id: str) -> discord.ui.Modal:
    """The 👎 form: what was wrong (one of :data:`~bot.feedback.FORM_REASONS`) and an optional comment.

    Stopped before it is sent, so discord.py does not keep it: the submission is read by the Ask
    cog's ``on_interaction`` (with :func:`form_answers`), the same before and after a restart.
    """
    form = discord.ui.Modal(title="What was wrong with this answer?", custom_id=form_custom_id(answer_id))
    reasons = discord.ui.Select(
        custom_id=REASON_FIELD, placeholder="Pick one", min_values=1, max_values=1, required=True,
        options=[discord.SelectOption(label=REASONS[key], value=key) for key in FORM_REASONS],
    )
    comment = discord.ui.TextInput(
        custom_id=COMMENT_FIELD, style=discord.TextStyle.paragraph, required=False, max_length=COMMENT_MAX,
        placeholder="e.g. the article says the opposite, or where the right answer is",
    )
    form.add_item(discord.ui.Label(text="What was wrong?", component=reasons))
    form.add_item(discord.ui.Label(text="Anything else? (optional)", component=comment))
    form.stop()
    return form


@dataclass(frozen=True, slots=True)
class FormAnswer:
    """A submitted 👎 form: the answer it is about, the reason picked, the comment (if any)."""

    answer_id: str
    reason: str
    comment: str | None


def read_form(data: dict[str, Any]) -> FormAnswer | None:
    """The 👎 form in a MODAL_SUBMIT's ``data`` (None if the modal is not one of ours). A reason
    that is not one the form offers reads as ``other``."""
    parsed = parse_custom_id(str(data.get("custom_id", "")))
    if parsed is None or parsed.kind != "form" or parsed.answer_id is None:
        return None
    answers = form_answers(data)
    picked = answers.get(REASON_FIELD)
    reason = picked[0] if isinstance(picked, list) and picked and picked[0] in FORM_REASONS else "other"
    comment = answers.get(COMMENT_FIELD)
    return FormAnswer(parsed.answer_id, reason, comment if isinstance(comment, str) and comment.strip() else None)


def form_answers(data: dict[str, Any]) -> dict[str, str | list[str]]:
    """A submitted modal's inputs by custom id: a text input's text, a select's list of values."""
    found: dict[str, str | list[str]] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if "custom_id" in component and ("value" in component or "values" in component):
                found[component["custom_id"]] = component.get("values", component.get("value", ""))
            walk(component.get("components") or [])
            if isinstance(component.get("component"), dict):
                walk([component["component"]])

    walk(data.get("components") or [])
    return found


def sources_view(page: int, pages: int, query: str | None) -> discord.ui.View | None:
    """◀ ▶ under a page of ``/sources`` (None when everything fits on one page)."""
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(SourcesPageButton("p", page, query, disabled=page <= 0))
    view.add_item(SourcesPageButton("n", page, query, disabled=page >= pages - 1))
    return view
