"""``/ask``, questions by mention, and the Passages / feedback buttons under answers.

The cog parses input, runs the engine in a worker thread and hands the result to
:mod:`bot.render`; nothing here decides what an answer says.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.errors import NewsbotError, QuestionError, StoreUnavailableError
from index.records import Answer

from ..cooldown import cooldown_message
from ..feedback import UP, StoredAnswer, new_answer_id
from ..render import (
    PassageEntry,
    Payload,
    answer_summary,
    normalise,
    render_answer,
    render_decline,
    render_notice,
    render_passages,
    thread_name,
)
from ..send import APOLOGY, NO_MENTIONS, message_kwargs, respond
from ..views import answer_view

if TYPE_CHECKING:
    from ..client import NewsBot

log = logging.getLogger(__name__)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- pure helpers -------------------------------------------------------------------------


def parse_date(value: str | None, name: str) -> dt.date | None:
    """An ISO date (YYYY-MM-DD) or None; raises ValueError with a message for the user."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"`{name}` must be a date like 2024-05-31 (YYYY-MM-DD).") from None


def match_outlet(source: str | None, outlets: Sequence[str]) -> str | None:
    """The known outlet named ``source`` (case and spacing ignored), or None if there is none."""
    if source is None:
        return None
    want = normalise(source).casefold()
    return next((o for o in outlets if normalise(o).casefold() == want), None)


def outlet_choices(outlets: Iterable[str], current: str, limit: int = 25) -> list[str]:
    """Autocomplete: outlets containing what was typed, those starting with it first."""
    cur = normalise(current).casefold()
    hits = [o for o in outlets if cur in o.casefold()]
    hits.sort(key=lambda o: (not o.casefold().startswith(cur), o.casefold()))
    return hits[:limit]


def question_from_message(
    content: str,
    *,
    bot_id: int,
    role_ids: Iterable[int] = (),
    mentioned: bool,
    in_own_thread: bool,
) -> str | None:
    """The question in a message, or None when the message is not addressed to the bot.

    A message is addressed to the bot when it mentions the bot (or the bot's own role) or
    is posted in a thread the bot started. Mentions of the bot are removed from the question;
    the result may be empty (a bare mention).
    """
    if not mentioned and not in_own_thread:
        return None
    text = re.sub(rf"<@!?{int(bot_id)}>", " ", content)
    for role_id in role_ids:
        text = text.replace(f"<@&{int(role_id)}>", " ")
    return " ".join(text.split())


#: What a question gets while the index's database is unreachable (it is retried on the next question).
UNAVAILABLE = "Sorry, I can't reach the news archive right now. Please ask again in a minute."
#: What a 👍 / 👎 gets while the database that keeps the votes is unreachable.
VOTE_UNAVAILABLE = "Sorry, I can't record your vote right now. Please try again in a minute."


@dataclass(frozen=True, slots=True)
class Outcome:
    """An answer rendered for sending: the payload, its buttons (if any) and the answer."""

    payload: Payload
    view: discord.ui.View | None
    answer: Answer
    answer_id: str | None = None

    @property
    def answered(self) -> bool:
        return self.answer_id is not None


HELP_TEXT = (
    "Ask me a question about the news articles I have, e.g. "
    "`@newsbot what did the minister say about rail fares?`, or use `/ask`."
)


# --- the cog ------------------------------------------------------------------------------


class AskCog(commands.Cog, name="Ask"):
    """Answers questions from ``/ask`` and mentions."""

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.ask_command = self._build_ask_command()

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.ask_command)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.ask_command.name)

    def _build_ask_command(self) -> app_commands.Command:
        """``/ask``: built per instance so the question's max_length comes from the settings."""
        cog = self

        async def ask(
            interaction: discord.Interaction,
            question: str,
            source: str | None = None,
            since: str | None = None,
            until: str | None = None,
        ) -> None:
            await cog.ask_slash(interaction, question, source=source, since=since, until=until)

        # The limit is a setting, so it can't be written in the (string) annotation above.
        ask.__annotations__["question"] = app_commands.Range[str, 1, self.bot.settings.max_question_chars]
        ask = app_commands.describe(
            question="What do you want to know?",
            source="Only articles from this outlet",
            since="Only articles published on or after this date (YYYY-MM-DD)",
            until="Only articles published on or before this date (YYYY-MM-DD)",
        )(ask)
        command = app_commands.command(name="ask", description="Ask a question about the news articles")(ask)

        async def source_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=o, value=o) for o in outlet_choices(cog.bot.outlets, current)]

        command.autocomplete("source")(source_autocomplete)
        return command

    # --- answering ---

    async def answer(
        self,
        question: str,
        *,
        source: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        asked_at: dt.datetime | None = None,
    ) -> Outcome:
        """Ask the engine (in a worker thread), render, and store an answer for its buttons.

        ``asked_at``: when the question was sent (Discord's timestamp, UTC), which "this week" in it
        refers to. Raises QuestionError (with a message for the user) when the question can't be asked.
        """
        engine = self.bot.require_engine()
        asked_on = asked_at.date() if asked_at is not None else None
        answer = await self.bot.workers.answer(engine.ask, question, source=source, since=since, until=until,
                                               asked_on=asked_on)
        if not answer.answered or not answer.quotes:
            log.info("declined: %r", question[:80])
            return Outcome(render_decline(answer), None, answer)
        payload = render_answer(answer)
        answer_id = new_answer_id()
        record = StoredAnswer.from_answer(answer_id, answer, answer_summary(payload))
        await self.bot.workers.lookup(self.bot.require_store().save_answer, record)
        log.info("answered %s with %d quotes (confidence %.2f)", answer_id, len(answer.quotes), answer.confidence)
        return Outcome(payload, answer_view(answer_id), answer, answer_id)

    def _check_question(self, question: str) -> str | None:
        """A message for the user when the question can't be asked as it is (before the engine)."""
        limit = self.bot.settings.max_question_chars
        if not question.strip():
            return HELP_TEXT
        if len(question) > limit:
            return f"Your question is too long ({len(question)} characters); please keep it under {limit}."
        return None

    async def ask_slash(
        self,
        interaction: discord.Interaction,
        question: str,
        *,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> None:
        """``/ask question [source] [since] [until]``."""
        problem = self._check_question(question)
        outlet = None
        since_date = until_date = None
        if problem is None:
            try:
                since_date = parse_date(since, "since")
                until_date = parse_date(until, "until")
            except ValueError as e:
                problem = str(e)
            else:
                if since_date and until_date and since_date > until_date:
                    problem = "`since` must not be after `until`."
        if problem is None and source is not None:
            outlet = match_outlet(source, self.bot.outlets)
            if outlet is None:
                await respond(
                    interaction,
                    render_notice("I have no articles from “{}”. See `/sources` for the outlets I know.", source),
                    ephemeral=True,
                )
                return
        if problem is not None:
            await respond(interaction, Payload(content=problem), ephemeral=True)
            return
        wait = self.bot.cooldown.hit(interaction.user.id)
        if wait:
            await respond(interaction, Payload(content=cooldown_message(wait)), ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        try:
            outcome = await self.answer(question, source=outlet, since=since_date, until=until_date,
                                        asked_at=interaction.created_at)
        except QuestionError as e:
            await respond(interaction, render_notice("{}", str(e)))
            return
        except StoreUnavailableError as e:
            log.warning("cannot answer: %s", e)
            await respond(interaction, Payload(content=UNAVAILABLE))
            return
        await respond(interaction, outcome.payload, view=outcome.view)

    # --- mentions ---

    def _addressed(self, message: discord.Message) -> str | None:
        """The question in ``message`` if it is for the bot, else None."""
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None or message.author.id == me.id:
            return None
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return None
        role_ids: list[int] = []
        if message.guild is not None and message.guild.self_role is not None:
            role_ids.append(message.guild.self_role.id)
        mentioned = me.id in message.raw_mentions or any(r in message.raw_role_mentions for r in role_ids)
        channel = message.channel
        in_own_thread = isinstance(channel, discord.Thread) and channel.owner_id == me.id
        return question_from_message(
            message.content, bot_id=me.id, role_ids=role_ids, mentioned=mentioned, in_own_thread=in_own_thread
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        question = self._addressed(message)
        if question is None:
            return
        try:
            await self.answer_message(message, question)
        except Exception:  # noqa: BLE001 - the edge: log the traceback, apologise, never go silent
            log.exception("error answering message %s", message.id)
            try:
                await message.reply(APOLOGY, allowed_mentions=NO_MENTIONS, mention_author=False)
            except discord.HTTPException as e:
                log.warning("could not send the apology for message %s: %s", message.id, e)

    async def answer_message(self, message: discord.Message, question: str) -> None:
        """Answer a question asked by mention (or in the bot's thread) with a reply."""

        async def reply(payload: Payload, view: discord.ui.View | None = None) -> discord.Message:
            kwargs = message_kwargs(payload)
            if view is not None:
                kwargs["view"] = view
            return await message.reply(mention_author=False, **kwargs)

        problem = self._check_question(question)
        if problem is not None:
            await reply(Payload(content=problem))
            return
        wait = self.bot.cooldown.hit(message.author.id)
        if wait:
            await reply(Payload(content=cooldown_message(wait)))
            return
        try:
            await message.channel.typing()
        except discord.HTTPException as e:  # a typing indicator is a nicety
            log.debug("typing indicator failed: %s", e)
        try:
            outcome = await self.answer(question, asked_at=message.created_at)
        except QuestionError as e:
            await reply(render_notice("{}", str(e)))
            return
        except StoreUnavailableError as e:
            log.warning("cannot answer: %s", e)
            await reply(Payload(content=UNAVAILABLE))
            return
        sent = await reply(outcome.payload, outcome.view)
        if outcome.answered and isinstance(message.channel, discord.TextChannel):
            try:  # follow-ups in the thread need no mention
                await sent.create_thread(name=thread_name(question), auto_archive_duration=1440)
            except discord.HTTPException as e:
                log.warning("could not start a thread on message %s: %s", sent.id, e)

    # --- buttons ---

    def _passage_entries(self, record: StoredAnswer) -> list[PassageEntry]:
        """Look up the passage of each quote (blocking: run in a worker thread)."""
        engine = self.bot.require_engine()
        entries = []
        for q in record.quotes:
            first = record.citation(q.citations[0]) if q.citations else None
            base = {
                "citations": q.citations,
                "title": first.title if first else "",
                "source": first.source if first else None,
                "published": first.published if first else None,
                "link": (first.link or first.url) if first else None,
            }
            try:
                view = engine.passage(q.sentence_id)
            except NewsbotError as e:
                entries.append(PassageEntry(**base, note=f"This passage is no longer available: {e}"))
                continue
            quoted = view.text[view.hl_start : view.hl_end]
            if normalise(quoted) != normalise(q.text):  # the index was rebuilt and ids moved
                entries.append(PassageEntry(**base, note="This passage is no longer in the index (it was rebuilt)."))
                continue
            entries.append(PassageEntry(**base, passage=view))
        return entries

    async def show_passages(self, interaction: discord.Interaction, answer_id: str) -> None:
        """The Passages button: an ephemeral reply with each quote in its passage."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            record = await self.bot.workers.lookup(self.bot.require_store().get_answer, answer_id)
        except StoreUnavailableError as e:
            log.warning("cannot show the passages of %s: %s", answer_id, e)
            await respond(interaction, Payload(content=UNAVAILABLE), ephemeral=True)
            return
        if record is None:
            await respond(interaction, Payload(content="I no longer have the details of this answer; please ask again."),
                          ephemeral=True)
            return
        entries = await self.bot.workers.lookup(self._passage_entries, record)
        await respond(interaction, render_passages(entries), ephemeral=True)

    async def record_vote(self, interaction: discord.Interaction, answer_id: str, vote: int) -> None:
        """👍 / 👎: store the vote (with a hash of the user id) and thank the user.

        Acknowledged first: the write may wait for the database, and Discord allows 3 seconds.
        """
        await interaction.response.defer(ephemeral=True, thinking=True)
        question = answer = ""
        message = interaction.message
        if message is not None and message.embeds:  # only used if the stored answer is gone
            question = message.embeds[0].title or ""
            answer = message.embeds[0].description or ""
        try:
            await self.bot.workers.lookup(
                self.bot.require_store().record_feedback, answer_id, interaction.user.id, vote,
                question=question, answer=answer,
            )
        except StoreUnavailableError as e:
            log.warning("cannot record feedback on %s: %s", answer_id, e)
            await respond(interaction, Payload(content=VOTE_UNAVAILABLE), ephemeral=True)
            return
        log.info("feedback %s on %s", "up" if vote == UP else "down", answer_id)
        thanks = "Thanks! Glad it helped. 👍" if vote == UP else "Thanks for telling me. I'll note that it missed. 👎"
        await respond(interaction, Payload(content=thanks), ephemeral=True)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(AskCog(bot))
