"""``/ask``, questions by mention, and the Passages / feedback buttons (and 👎 form) under answers.

The cog parses input, runs the engine in a worker thread and hands the result to
:mod:`bot.render`; nothing here decides what an answer says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from index.conversation import contextualise, is_chitchat
from index.errors import NewsbotError, QuestionError, StoreUnavailableError
from index.records import Answer

from ..cooldown import cooldown_message
from ..feedback import DOWN, UP, FeedbackCounts, StoredAnswer, new_answer_id
from ..guilds import DEFAULT, GuildConfig
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
from ..send import APOLOGY, NO_MENTIONS, guarded, message_kwargs, respond
from ..views import answer_view, decline_view, feedback_form, read_form

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


@dataclass(frozen=True, slots=True)
class Window:
    """The publication window a question was asked over, and how the answer names it."""

    since: dt.date | None = None
    until: dt.date | None = None
    label: str = ""


#: ``since`` choices: (value, what the autocomplete shows, days back; None: the start of the year).
SINCE_CHOICES: tuple[tuple[str, str, int | None], ...] = (
    ("24h", "Last 24 hours", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
    ("year", "This year", None),
)
_SINCE_WORDS = {
    **{v: v for v, _, _ in SINCE_CHOICES},
    **{name.lower(): v for v, name, _ in SINCE_CHOICES},
    "1d": "24h", "24 hours": "24h", "today": "24h", "day": "24h", "7 days": "7d", "week": "7d", "1w": "7d",
    "this week": "7d", "last week": "7d", "30 days": "30d", "month": "30d", "this month": "30d",
    "last month": "30d", "this year": "year",
}


def parse_since(value: str | None, today: dt.date) -> tuple[dt.date | None, str]:
    """``since`` as a date and a label for the answer: a choice (``24h``, ``7d``, ``30d``, ``year``,
    or their names) counted back from ``today``, or an ISO date. Raises ValueError for the user."""
    if value is None or not value.strip():
        return None, ""
    key = _SINCE_WORDS.get(" ".join(value.strip().lower().split()))
    for v, name, days in SINCE_CHOICES:
        if key == v:
            since = today.replace(month=1, day=1) if days is None else today - dt.timedelta(days=days)
            return since, f"{name.lower()} (since {since.isoformat()})"
    try:
        since = parse_date(value, "since")
    except ValueError:
        raise ValueError("`since` must be one of the choices (last 24 hours, 7 days, 30 days, this year) "
                         "or a date like 2024-05-31 (YYYY-MM-DD).") from None
    return since, f"since {since.isoformat()}" if since else ""


def window_label(since: dt.date | None, since_label: str, until: dt.date | None) -> str:
    """How the answer names its window: "Articles from the last 7 days (since 2026-11-26)"."""
    if since is None and until is None:
        return ""
    parts = [since_label or (f"since {since.isoformat()}" if since else "")]
    if until is not None:
        parts.append(f"until {until.isoformat()}")
    text = " ".join(p for p in parts if p)
    return "Articles " + ("from the " + text if text.startswith(("last", "this")) else text)


def since_choices(current: str, today: dt.date) -> list[tuple[str, str]]:
    """Autocomplete for ``since``: the choices matching what was typed, and a typed date as itself."""
    cur = current.strip().lower()
    out = [(name, v) for v, name, _ in SINCE_CHOICES if not cur or cur in name.lower() or cur == v]
    if _DATE.fullmatch(current.strip()):
        out.insert(0, (current.strip(), current.strip()))
    elif not out:
        out = [(name, v) for v, name, _ in SINCE_CHOICES]
    return out


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
#: What each kind of vote gets (privately), once stored.
THANKS = {
    "up": "Thanks! Glad it helped. 👍",
    "down": "Thanks for telling me what was wrong; it's noted for whoever runs this bot. 👎",
    "miss": "Thanks: noted as a question the articles should have answered.",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """An answer (or a decline) rendered for sending: the payload, its buttons (if any), the answer
    and the id it is stored under (None if it could not be stored)."""

    payload: Payload
    view: discord.ui.View | None
    answer: Answer
    answer_id: str | None = None

    @property
    def answered(self) -> bool:
        return self.answer.answered and bool(self.answer.quotes)


#: What a mention or a DM that is thanks or a greeting gets (a thread or an ask channel: nothing).
CHITCHAT_REPLY = "Glad to help! Ask me anything about the news, e.g. `@newsbot what did the minister say about rail fares?`"


@dataclass(frozen=True, slots=True)
class Asked:
    """A message for the bot: its text (mentions removed), how it reached the bot, the server's settings.

    ``kind``: ``mention``, ``thread`` (a follow-up in the bot's thread), ``channel`` (an ask-the-news
    channel or forum post) or ``dm``.
    """

    text: str
    kind: str
    config: GuildConfig


def ask_refusal(config: GuildConfig, user: discord.abc.User) -> str | None:
    """Why ``user`` may not ask under the server's settings (None: they may)."""
    if config.ask_role is None:
        return None
    if isinstance(user, discord.Member):
        if config.may_ask({r.id for r in user.roles}, is_admin=user.guild_permissions.manage_guild):
            return None
        role = user.guild.get_role(config.ask_role)
        name = f"the **{discord.utils.escape_markdown(role.name)}** role" if role else "the role the admins chose"
    else:
        name = "the role the admins chose"
    return f"Only members with {name} can ask me in this server. A server admin can change that with `/settings role`."


HELP_TEXT = (
    "Ask me a question about the news articles I have, e.g. "
    "`@newsbot what did the minister say about rail fares?`, or use `/ask`."
)


# --- the cog ------------------------------------------------------------------------------


class AskCog(commands.Cog, name="Ask"):
    """Answers questions from ``/ask``, mentions, the bot's threads, ask-the-news channels and DMs."""

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
            since="Only recent articles: last 24 hours, 7 days, 30 days, this year, or a date (YYYY-MM-DD)",
            until="Only articles published on or before this date (YYYY-MM-DD)",
        )(ask)
        # Servers, DMs with the bot and group DMs; installed to a server or by a user for themselves.
        ask = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(ask)
        ask = app_commands.allowed_installs(guilds=True, users=True)(ask)
        command = app_commands.command(name="ask", description="Ask a question about the news articles")(ask)

        async def source_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=o, value=o) for o in outlet_choices(cog.bot.outlets, current)]

        async def since_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            today = interaction.created_at.date()
            return [app_commands.Choice(name=n, value=v) for n, v in since_choices(current, today)]

        command.autocomplete("source")(source_autocomplete)
        command.autocomplete("since")(since_autocomplete)
        return command

    # --- answering ---

    async def answer(
        self,
        question: str,
        *,
        source: str | None = None,
        window: Window = Window(),
        asked_at: dt.datetime | None = None,
    ) -> Outcome:
        """Ask the engine (in a worker thread), render, and store an answer for its buttons.

        ``asked_at``: when the question was sent (Discord's timestamp, UTC), which "this week" in it
        refers to. Raises QuestionError (with a message for the user) when the question can't be asked.
        """
        engine = self.bot.require_engine()
        asked_on = asked_at.date() if asked_at is not None else None
        answer = await self.bot.workers.answer(engine.ask, question, source=source, since=window.since,
                                               until=window.until, asked_on=asked_on)
        answer_id = new_answer_id()
        if not answer.answered or not answer.quotes:
            log.info("declined %s: %r", answer_id, question[:80])
            payload = render_decline(answer, window=window.label)
            declined = dataclasses.replace(answer, quotes=(), citations=())
            record = StoredAnswer.from_answer(answer_id, declined, answer_summary(payload))
            try:  # for its "This should have been answered" button; the decline is sent either way
                await self.bot.workers.lookup(self.bot.require_store().save_answer, record)
            except StoreUnavailableError as e:
                log.warning("cannot store the decline %s (sent without its button): %s", answer_id, e)
                return Outcome(payload, None, answer)
            return Outcome(payload, decline_view(answer_id), answer, answer_id)
        payload = render_answer(answer, window=window.label)
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

    def _window(self, since: str | None, until: str | None, today: dt.date) -> Window:
        """The ``since`` / ``until`` options as a window; raises ValueError with a message for the user."""
        since_date, since_label = parse_since(since, today)
        until_date = parse_date(until, "until")
        if since_date and until_date and since_date > until_date:
            raise ValueError("`since` must not be after `until`.")
        return Window(since_date, until_date, window_label(since_date, since_label, until_date))

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
        window = Window()
        if problem is None:
            try:
                window = self._window(since, until, interaction.created_at.date())
            except ValueError as e:
                problem = str(e)
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
        config = await self.admitted(interaction, "/ask")
        if config is None:
            return
        private = config.private
        outcome = await self.deferred_answer(interaction, question, private=private, asked_at=interaction.created_at,
                                             source=outlet, window=window)
        if outcome is None:
            return
        await respond(interaction, outcome.payload, view=outcome.view, ephemeral=private)
        if config.threads and not private and outcome.answered and isinstance(interaction.channel, discord.TextChannel):
            sent = await interaction.original_response()
            await self._open_thread(sent, outcome.answer.question)

    async def admitted(self, interaction: discord.Interaction, what: str) -> GuildConfig | None:
        """The server's settings if the user may ask now; else None, once they have been told why,
        privately (the server's asking role, or the per-user cooldown)."""
        config = await self.bot.guild_config(interaction.guild_id)
        refusal = ask_refusal(config, interaction.user)
        if refusal is not None:
            log.info("refused %s in guild %s: the member lacks the asking role", what, interaction.guild_id)
            await respond(interaction, Payload(content=refusal), ephemeral=True)
            return None
        wait = self.bot.cooldown.hit(interaction.user.id)
        if wait:
            await respond(interaction, Payload(content=cooldown_message(wait)), ephemeral=True)
            return None
        return config

    async def deferred_answer(
        self, interaction: discord.Interaction, question: str, *, private: bool, asked_at: dt.datetime,
        source: str | None = None, window: Window = Window(),
    ) -> Outcome | None:
        """Defer the interaction (privately if ``private``), then answer ``question``; a question that
        can't be asked, or an unreachable archive, is told to the user and gives None."""
        await interaction.response.defer(thinking=True, ephemeral=private)
        try:
            return await self.answer(question, source=source, window=window, asked_at=asked_at)
        except QuestionError as e:
            await respond(interaction, render_notice("{}", str(e)), ephemeral=private)
        except StoreUnavailableError as e:
            log.warning("cannot answer: %s", e)
            await respond(interaction, Payload(content=UNAVAILABLE), ephemeral=private)
        return None

    async def _open_thread(self, sent: discord.Message, question: str) -> None:
        """Open a thread on an answer, for follow-ups without a mention, and remember its question."""
        try:
            thread = await sent.create_thread(name=thread_name(question), auto_archive_duration=1440)
        except discord.HTTPException as e:
            log.warning("could not start a thread on message %s: %s", sent.id, e)
            return
        await self._remember(thread.id, question)

    async def _remember(self, thread_id: int, question: str) -> None:
        try:
            await self.bot.workers.lookup(self.bot.require_thread_memory().remember, thread_id, question)
        except StoreUnavailableError as e:  # the thread still works; its follow-ups are read on their own
            log.warning("cannot remember the question of thread %s: %s", thread_id, e)

    # --- messages: mentions, the bot's threads, ask-the-news channels, DMs ---

    async def _addressed(self, message: discord.Message) -> Asked | None:
        """What ``message`` asks the bot, if it is for the bot here (the server's settings say where)."""
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None or message.author.id == me.id:
            return None
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return None
        role_ids: list[int] = []
        if message.guild is not None and message.guild.self_role is not None:
            role_ids.append(message.guild.self_role.id)
        text = question_from_message(message.content, bot_id=me.id, role_ids=role_ids, mentioned=True,
                                     in_own_thread=False) or ""
        if message.guild is None:  # a direct message (or a group DM): always for the bot
            return Asked(text, "dm", DEFAULT)
        mentioned = me.id in message.raw_mentions or any(r in message.raw_role_mentions for r in role_ids)
        channel = message.channel
        thread = channel if isinstance(channel, discord.Thread) else None
        home = thread.parent_id if thread is not None else channel.id
        config = await self.bot.guild_config(message.guild.id)
        if thread is not None and thread.owner_id == me.id:
            kind = "thread"
        elif mentioned:
            kind = "mention"
        elif thread is None and channel.id in config.ask_channels:
            kind = "channel"
        elif thread is not None and home in config.ask_channels and isinstance(thread.parent, discord.ForumChannel):
            # A new post in an ask-the-news forum (its first message has the thread's id) is a question;
            # later messages in the post are its follow-ups.
            kind = "channel" if message.id == thread.id else "thread"
        else:
            return None
        if kind != "channel" and not config.mentions_allowed_in(home):
            log.debug("ignoring a message in channel %s: not one the settings of guild %s answer in",
                      channel.id, message.guild.id)
            return None
        return Asked(text, kind, config)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        try:
            asked = await self._addressed(message)
            if asked is not None:
                await self.answer_message(message, asked)
        except Exception:  # noqa: BLE001 - the edge: log the traceback, apologise, never go silent
            log.exception("error answering message %s", message.id)
            try:
                await message.reply(APOLOGY, allowed_mentions=NO_MENTIONS, mention_author=False)
            except discord.HTTPException as e:
                log.warning("could not send the apology for message %s: %s", message.id, e)

    async def _refuse_privately(self, message: discord.Message, text: str) -> None:
        """A refusal for a message: by DM, never in the channel; if the member's DMs are closed, only logged."""
        try:
            await message.author.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as e:
            log.info("could not tell user %s why they were refused: %s", message.author.id, e)

    async def answer_message(self, message: discord.Message, asked: Asked) -> None:
        """Answer a question asked by mention, in the bot's thread, in an ask-the-news channel or by DM."""

        async def reply(payload: Payload, view: discord.ui.View | None = None) -> discord.Message:
            kwargs = message_kwargs(payload)
            if view is not None:
                kwargs["view"] = view
            return await message.reply(mention_author=False, **kwargs)

        text = asked.text
        quiet = asked.kind in {"thread", "channel"}  # no one called the bot by name: say nothing needless
        if not text.strip():
            if not quiet:
                await reply(Payload(content=HELP_TEXT))
            return
        if is_chitchat(text):
            if not quiet:
                await reply(Payload(content=CHITCHAT_REPLY))
            return
        refusal = ask_refusal(asked.config, message.author)
        if refusal is not None:
            log.info("refused a question in guild %s: the member lacks the asking role", message.guild and message.guild.id)
            await self._refuse_privately(message, refusal)
            return
        problem = self._check_question(text)
        if problem is not None:
            await reply(Payload(content=problem))
            return
        wait = self.bot.cooldown.hit(message.author.id)
        if wait:
            await reply(Payload(content=cooldown_message(wait)))
            return
        question = text
        if asked.kind == "thread":  # a follow-up: read with the question the thread is about
            earlier = await self._thread_question(message.channel.id)
            question = contextualise(text, earlier)
            if question != text:
                log.info("follow-up %r read as %r", text[:60], question[:120])
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
        if not outcome.answered:
            return
        if isinstance(message.channel, discord.TextChannel):  # follow-ups in the thread need no mention
            await self._open_thread(sent, question)
        elif asked.kind == "channel" or (asked.kind == "thread" and question == text):
            # A forum post's question, or a new question of its own in a thread: what follow-ups follow.
            await self._remember(message.channel.id, question)

    async def _thread_question(self, thread_id: int) -> str | None:
        try:
            return await self.bot.workers.lookup(self.bot.require_thread_memory().question, thread_id)
        except StoreUnavailableError as e:
            log.warning("cannot read the question of thread %s: %s", thread_id, e)
            return None

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

    async def on_vote_button(self, interaction: discord.Interaction, answer_id: str, vote: str) -> None:
        """👍 and "This should have been answered" store the vote; 👎 opens the form (a modal must be
        the first response, so nothing is stored until it is submitted)."""
        if vote == "down":
            await interaction.response.send_modal(feedback_form(answer_id))
            return
        await self.store_vote(interaction, answer_id, vote, reason="missed" if vote == "miss" else None)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """The 👎 form's submissions (the form is never kept in memory: :func:`bot.views.feedback_form`)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        form = read_form(dict(interaction.data or {}))
        if form is None:
            return
        await guarded(interaction, lambda: self.store_vote(
            interaction, form.answer_id, "down", reason=form.reason, comment=form.comment))

    async def store_vote(
        self, interaction: discord.Interaction, answer_id: str, kind: str, *,
        reason: str | None = None, comment: str | None = None,
    ) -> None:
        """Store a vote of ``kind`` (``up``, ``down`` or ``miss``: a down vote on a decline) with a
        hash of the user id, show the counts on the message's buttons, and thank the user privately.

        Acknowledged first as an update of the message (type 6): the write may wait for the
        database, and Discord allows 3 seconds.
        """
        await interaction.response.defer()
        question = answer = ""
        message = interaction.message
        if message is not None and message.embeds:  # only used if the stored answer is gone
            question = message.embeds[0].title or ""
            answer = message.embeds[0].description or ""
        store = self.bot.require_store()
        user_id = interaction.user.id

        def vote_and_count() -> FeedbackCounts:  # one trip to the lookup pool
            store.record_feedback(answer_id, user_id, UP if kind == "up" else DOWN, reason=reason, comment=comment,
                                  question=question, answer=answer)
            return store.counts(answer_id)

        try:
            counts = await self.bot.workers.lookup(vote_and_count)
        except StoreUnavailableError as e:
            log.warning("cannot record feedback on %s: %s", answer_id, e)
            await respond(interaction, Payload(content=VOTE_UNAVAILABLE), ephemeral=True)
            return
        log.info("feedback %s on %s%s", kind, answer_id, f" ({reason})" if reason else "")
        await self._show_counts(interaction, answer_id, kind, counts)
        await respond(interaction, Payload(content=THANKS[kind]), ephemeral=True)

    async def _show_counts(self, interaction: discord.Interaction, answer_id: str, kind: str,
                           counts: FeedbackCounts) -> None:
        """Put the vote counts on the buttons of the message voted on (a nicety: the vote is stored)."""
        if interaction.message is None:
            return
        view = decline_view(answer_id, counts) if kind == "miss" else answer_view(answer_id, counts)
        try:
            await interaction.edit_original_response(view=view)
        except discord.HTTPException as e:
            log.info("cannot show the vote counts on the message of %s: %s", answer_id, e)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(AskCog(bot))
