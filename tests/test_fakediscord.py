"""Proves the fake Discord against the REAL, unmodified discord.py client (in-process and in a subprocess).

Each client test runs a tiny ``discord.Client`` + ``app_commands.CommandTree`` (not the product bot)
with ``asyncio.run`` inside a synchronous test; the fake runs on its own loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from fakediscord import FakeDiscord, FakeDiscordError, FakeInteraction, point_discord_py_at
from fakediscord import constants as C

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
STEP_TIMEOUT = 10.0


# ---------------------------------------------------------------------------------------- the test bot
class PanelView(discord.ui.View):
    """A one-button view; pressing it edits the message (UPDATE_MESSAGE, type 7)."""

    def __init__(self, bot: MiniBot) -> None:
        super().__init__(timeout=60)
        self.bot = bot

    @discord.ui.button(label="Approve", custom_id="panel:approve", style=discord.ButtonStyle.success)
    async def approve(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]) -> None:
        self.bot.outcomes["pressed_by"] = interaction.user.id
        await interaction.response.edit_message(content=f"approved by {interaction.user.name}", view=None)


class AskModal(discord.ui.Modal, title="Ask the news desk"):
    """A modal with one text input."""

    question: discord.ui.TextInput[AskModal] = discord.ui.TextInput(label="Question", custom_id="modal:question")

    def __init__(self, bot: MiniBot) -> None:
        super().__init__(custom_id="modal:ask")
        self.bot = bot

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.bot.outcomes["modal"] = self.question.value
        await interaction.response.send_message(f"noted: {self.question.value}", ephemeral=True)


class MiniBot(discord.Client):
    """A small client exercising the interaction / message paths the product bot uses."""

    def __init__(self, guild_id: int, *, members_intent: bool = False) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = members_intent
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.guild_obj = discord.Object(guild_id)
        self.outcomes: dict[str, Any] = {}
        self.seen_messages: list[discord.Message] = []
        self._add_commands()

    async def on_message(self, message: discord.Message) -> None:
        self.seen_messages.append(message)
        if message.author.bot or self.user is None:
            return
        if isinstance(message.channel, discord.DMChannel):
            await message.channel.send(f"dm: {message.content}")
        elif isinstance(message.channel, discord.Thread):
            await message.channel.send(f"in thread: {message.content}")
        elif self.user.mentioned_in(message):
            if "thread" in message.content:
                thread = await message.create_thread(name="Follow-up")
                await thread.send("Ask follow-ups here.")
            else:
                await message.reply("pong", mention_author=False)

    def _add_commands(self) -> None:
        tree, guild = self.tree, self.guild_obj

        @tree.command(name="news", description="Latest news on a topic", guild=guild)
        @app_commands.describe(topic="What to look up", limit="How many articles")
        async def news(interaction: discord.Interaction, topic: str, limit: int = 3) -> None:
            await interaction.response.defer(thinking=True)
            embed = discord.Embed(title=f"News about {topic}", description=f"{limit} articles", url="https://news.example/1")
            embed.add_field(name="Source", value="Daily Planet")
            await interaction.followup.send(embed=embed)

        @tree.command(name="twice", description="Responds twice", guild=guild)
        async def twice(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("first")
            try:
                await interaction.response.send_message("second")
            except (discord.InteractionResponded, discord.HTTPException) as exc:
                self.outcomes["twice"] = exc

        @tree.command(name="slow", description="Responds too late", guild=guild)
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(3.5)
            try:
                await interaction.response.send_message("too late")
            except discord.HTTPException as exc:
                self.outcomes["slow"] = exc

        @tree.command(name="long", description="Too much text", guild=guild)
        async def long(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.send_message("x" * 2001)
            except discord.HTTPException as exc:
                self.outcomes["long"] = exc
                await interaction.response.send_message("x" * 2000)

        @tree.command(name="panel", description="A message with a button", guild=guild)
        async def panel(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("Pending approval", view=PanelView(self))

        @tree.command(name="modal", description="Opens a modal", guild=guild)
        async def modal(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(AskModal(self))

        @tree.command(name="admin", description="Manage Server only", guild=guild)
        @app_commands.default_permissions(manage_guild=True)
        async def admin(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("admin ok", ephemeral=True)

        @tree.command(name="whoami", description="Global command, usable in DMs")
        @app_commands.allowed_contexts(guilds=True, dms=True)
        async def whoami(interaction: discord.Interaction) -> None:
            where = "dm" if interaction.guild is None else "guild"
            await interaction.response.send_message(f"{interaction.user.name} in {where}", ephemeral=True)

        @tree.context_menu(name="Quote it", guild=guild)
        async def quote_it(interaction: discord.Interaction, message: discord.Message) -> None:
            self.outcomes["quoted"] = (message.id, message.author.id)
            await interaction.response.send_message(f"quoted: {message.content}", ephemeral=True)

        @tree.context_menu(name="Slow quote", guild=guild)
        async def slow_quote(interaction: discord.Interaction, message: discord.Message) -> None:
            await asyncio.sleep(3.5)
            try:
                await interaction.response.send_message("too late")
            except discord.HTTPException as exc:
                self.outcomes["slow_quote"] = exc

        @tree.command(name="pick", description="Autocomplete", guild=guild)
        async def pick(interaction: discord.Interaction, outlet: str) -> None:
            await interaction.response.send_message(outlet)

        @pick.autocomplete("outlet")
        async def pick_outlet(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            names = ["Daily Planet", "The Courier", "Daily Bugle"]
            return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()]


# ---------------------------------------------------------------------------------------- harness
@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A started fake with discord.py pointed at it."""
    with FakeDiscord() as server, point_discord_py_at(server):
        yield server


async def wait_outcome(bot: MiniBot, key: str, timeout: float = STEP_TIMEOUT) -> Any:
    """Wait (inside the client's loop) until the bot recorded ``key``."""
    deadline = time.monotonic() + timeout
    while key not in bot.outcomes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"bot never recorded {key!r}; has {sorted(bot.outcomes)}")
        await asyncio.sleep(0.02)
    return bot.outcomes[key]


def run_bot(
    fake: FakeDiscord, scenario: Callable[[MiniBot], Awaitable[None]], *, sync: bool = True, members_intent: bool = False
) -> MiniBot:
    """Start a MiniBot against ``fake``, wait until ready (and synced), run ``scenario``, close cleanly."""

    async def main() -> MiniBot:
        bot = MiniBot(fake.ids.guild_id, members_intent=members_intent)
        runner = asyncio.create_task(bot.start(fake.token), name="minibot")
        try:
            ready = asyncio.create_task(fake.async_wait_ready(STEP_TIMEOUT))
            done, _ = await asyncio.wait({runner, ready}, timeout=STEP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                runner.result()
            assert ready in done, "client never became ready"
            await asyncio.wait_for(bot.wait_until_ready(), STEP_TIMEOUT)
            if sync:
                await bot.tree.sync(guild=bot.guild_obj)
            await scenario(bot)
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(runner, STEP_TIMEOUT)
        return bot

    return asyncio.run(main())


async def http(fake: FakeDiscord, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
    """A raw request to the fake's REST API (for rules discord.py would not let us break)."""
    headers = {"Authorization": f"Bot {fake.token}"} if auth else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.api_base + path, json=body, headers=headers) as resp,
    ):
        text = await resp.text()
        assert resp.status == 204 or resp.headers["Content-Type"] == "application/json"
        return resp.status, (json.loads(text) if text else None)


# ---------------------------------------------------------------------------------------- login / READY / sync
@pytest.mark.timeout(60)
def test_login_ready_and_guild_cache(fake: FakeDiscord) -> None:
    """The real client logs in, identifies and caches the guild, channel, roles and members."""

    async def scenario(bot: MiniBot) -> None:
        assert bot.user is not None and bot.user.id == fake.ids.bot_id
        assert bot.application_id == fake.ids.application_id
        guild = bot.get_guild(fake.ids.guild_id)
        assert guild is not None and guild.name == "Newsroom"
        channel = guild.get_channel(fake.ids.channel_id)
        assert isinstance(channel, discord.TextChannel) and channel.name == "general"
        assert {m.name for m in guild.members} >= {"newsbot", "alice", "admin", "otherbot", "owner"}
        admin = guild.get_member(fake.ids.admin_id)
        alice = guild.get_member(fake.ids.user_id)
        assert admin is not None and admin.guild_permissions.manage_guild
        assert alice is not None and not alice.guild_permissions.manage_guild
        other = guild.get_member(fake.ids.other_bot_id)
        assert other is not None and other.bot
        assert guild.owner_id == fake.ids.owner_id
        # heartbeats flow and are acknowledged
        await fake.async_wait_until(lambda f: f.connections and len(f.connections[-1].heartbeats) >= 2, 5)
        assert bot.latency < 5.0

    run_bot(fake, scenario, sync=False, members_intent=True)
    assert fake.identify_count == 1
    assert fake.intents is not None and fake.intents & C.INTENT_MESSAGE_CONTENT
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths and ("GET", "/oauth2/applications/@me") in paths
    assert fake.rejections == [] and fake.unhandled_routes == [] and fake.heartbeat_misses == []


@pytest.mark.timeout(60)
def test_wrong_token_is_login_failure(fake: FakeDiscord) -> None:
    """A wrong token gets 401 on GET /users/@me, which discord.py turns into LoginFailure."""

    async def main() -> None:
        client = discord.Client(intents=discord.Intents.default())
        try:
            with pytest.raises(discord.LoginFailure):
                await client.start("not-the-token")
        finally:
            await client.close()

    asyncio.run(main())
    assert [(r.status, r.code) for r in fake.rejections] == [(401, 0)]
    assert fake.identify_count == 0


@pytest.mark.timeout(60)
def test_gateway_rejects_bad_identify_token(fake: FakeDiscord) -> None:
    """IDENTIFY with a wrong token is closed with 4004 (Authentication failed)."""

    async def main() -> int | None:
        async with aiohttp.ClientSession() as session, session.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["op"] == C.OP_HELLO and hello["d"]["heartbeat_interval"] == 1000
            await ws.send_json({"op": C.OP_IDENTIFY, "d": {"token": "nope", "intents": 513, "properties": {}}})
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.CLOSE
            return ws.close_code

    assert asyncio.run(main()) == C.CLOSE_AUTHENTICATION_FAILED
    assert fake.rejections[-1].code == C.CLOSE_AUTHENTICATION_FAILED


@pytest.mark.timeout(60)
def test_tree_sync_schema_visible(fake: FakeDiscord) -> None:
    """tree.sync(guild=...) lands in fake.commands(guild_id) with the full option schema."""
    run_bot(fake, lambda bot: asyncio.sleep(0))
    commands = {c["name"]: c for c in fake.commands(fake.ids.guild_id)}
    assert set(commands) == {"news", "twice", "slow", "long", "panel", "modal", "admin", "pick", "Quote it",
                             "Slow quote"}
    assert fake.commands() == []
    menu = commands["Quote it"]  # a message context menu: Discord lists it with an empty description
    assert menu["type"] == C.CMD_MESSAGE and menu["description"] == "" and not menu.get("options")
    news = commands["news"]
    assert news["description"] == "Latest news on a topic"
    assert [(o["name"], o["type"], o.get("required", False)) for o in news["options"]] == [
        ("topic", C.OPT_STRING, True),
        ("limit", C.OPT_INTEGER, False),
    ]
    assert commands["admin"]["default_member_permissions"] == str(C.P_MANAGE_GUILD)
    assert commands["pick"]["options"][0]["autocomplete"] is True
    assert fake.rejections == []
    # Discord's view of who may use what
    with pytest.raises(FakeDiscordError, match="cannot see command"):
        fake.send_slash("admin", user="user")
    with pytest.raises(FakeDiscordError, match="not synced"):
        fake.send_slash("nope")
    with pytest.raises(FakeDiscordError, match="required option"):
        fake.send_slash("news", {})
    with pytest.raises(FakeDiscordError, match="expects an integer|expects a number"):
        fake.send_slash("news", {"topic": "x", "limit": "three"})
    with pytest.raises(FakeDiscordError, match="not available in DMs"):
        fake.send_slash("news", {"topic": "x"}, guild=False)


@pytest.mark.timeout(60)
def test_command_schema_rules_enforced(fake: FakeDiscord) -> None:
    """Bulk overwrite validates names, descriptions, option counts and required-before-optional."""
    app = fake.ids.application_id
    good_option = {"name": "q", "description": "question", "type": C.OPT_STRING, "required": True}
    bad = [
        {"name": "Ask", "description": "uppercase", "type": 1},
        {"name": "a" * 33, "description": "too long", "type": 1},
        {"name": "desc", "description": "", "type": 1},
        {"name": "many", "description": "26 options", "type": 1,
         "options": [{**good_option, "name": f"o{i}"} for i in range(26)]},
        {"name": "order", "description": "optional first", "type": 1,
         "options": [{**good_option, "name": "a", "required": False}, {**good_option, "name": "b"}]},
    ]

    async def main() -> None:
        for command in bad:
            status, body = await http(fake, "PUT", f"/applications/{app}/commands", [command])
            assert status == 400 and body["code"] == C.E_INVALID_FORM_BODY, command["name"]
            assert "0" in body["errors"]
        status, body = await http(fake, "PUT", f"/applications/{app}/commands",
                                  [{"name": "ask", "description": "ok", "type": 1, "options": [good_option]}])
        assert status == 200 and body[0]["id"] and body[0]["application_id"] == str(app)

    asyncio.run(main())
    assert len(fake.rejections) == len(bad)
    assert [c["name"] for c in fake.commands()] == ["ask"]


@pytest.mark.timeout(60)
def test_command_permission_overrides(fake: FakeDiscord) -> None:
    """Server admins' per-command overrides beat default_member_permissions (user > roles > @everyone)."""
    app = fake.ids.application_id
    command = {"name": "admin", "description": "Manage Server only", "type": 1,
               "default_member_permissions": str(C.P_MANAGE_GUILD)}
    assert asyncio.run(http(fake, "PUT", f"/applications/{app}/guilds/{fake.ids.guild_id}/commands", [command]))[0] == 200
    with pytest.raises(FakeDiscordError, match="cannot see command"):
        fake.send_slash("admin", user="user")
    fake.send_slash("admin", user="admin")
    fake.set_command_permissions("admin", {"user": True})
    assert fake.send_slash("admin", user="user").name == "admin"  # allowed without Manage Server
    fake.set_command_permissions("admin", {fake.ids.moderator_role_id: False})
    with pytest.raises(FakeDiscordError, match="denied"):
        fake.send_slash("admin", user="admin")
    fake.set_command_permissions("admin", {fake.ids.guild_id: False, "admin": True})
    with pytest.raises(FakeDiscordError, match="denied"):
        fake.send_slash("admin", user="user")
    fake.send_slash("admin", user="admin")
    fake.send_slash("admin", user="owner")  # administrators are never locked out
    with pytest.raises(FakeDiscordError, match="not synced"):
        fake.set_command_permissions("nope", {"user": True})


# ---------------------------------------------------------------------------------------- interactions
@pytest.mark.timeout(60)
def test_defer_then_followup_embed(fake: FakeDiscord) -> None:
    """A deferred command: type 5 within 3 s, then the follow-up embed fills the loading message."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        interaction = fake.send_slash("news", {"topic": "rail fares", "limit": 2})
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)
        result["interaction"] = interaction

    run_bot(fake, scenario)
    interaction: FakeInteraction = result["interaction"]
    reply = result["reply"]
    assert interaction.callback_type == C.CB_DEFERRED_CHANNEL_MESSAGE
    assert interaction.ack_latency is not None and interaction.ack_latency < 3.0
    assert reply["source"] == "followup" and reply["ephemeral"] is False
    assert reply["id"] == str(interaction.original_message_id)  # the first follow-up replaces the "thinking" message
    assert not reply["flags"] & C.MF_LOADING
    [embed] = reply["embeds"]
    assert embed["title"] == "News about rail fares" and embed["description"] == "2 articles"
    assert embed["fields"] == [{"name": "Source", "value": "Daily Planet", "inline": True}]
    assert reply["interaction_metadata"]["user"]["id"] == str(fake.ids.user_id)
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_second_response_is_refused(fake: FakeDiscord) -> None:
    """Responding twice: discord.py raises InteractionResponded; the fake itself answers 40060."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        interaction = fake.send_slash("twice")
        result["error"] = await wait_outcome(bot, "twice")
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)
        # bypass discord.py's client-side guard: the server must refuse a second acknowledgement too
        status, body = await http(fake, "POST", f"/interactions/{interaction.id}/{interaction.token}/callback",
                                  {"type": 4, "data": {"content": "again"}}, auth=False)
        result["raw"] = (status, body)
        result["interaction"] = interaction

    run_bot(fake, scenario)
    error = result["error"]
    assert isinstance(error, discord.InteractionResponded) or (
        isinstance(error, discord.HTTPException) and error.code == C.E_ALREADY_ACKNOWLEDGED
    )
    assert result["reply"]["content"] == "first"
    assert result["raw"] == (400, {"message": "Interaction has already been acknowledged.", "code": 40060})
    interaction: FakeInteraction = result["interaction"]
    assert [r.code for r in interaction.errors] == [C.E_ALREADY_ACKNOWLEDGED]


FORM = {"title": "What was wrong?", "custom_id": "form:1", "components": [
    {"type": C.COMP_LABEL, "label": "Reason", "component": {
        "type": C.COMP_STRING_SELECT, "custom_id": "reason", "options": [{"label": "Outdated", "value": "outdated"}]}}]}


@pytest.mark.timeout(60)
def test_a_modal_must_be_the_first_response(fake: FakeDiscord) -> None:
    """A modal (type 9) after the interaction was acknowledged is refused (40060), as is one in answer
    to a modal submission, or a select that is not in a Label; a select's submission is checked."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        answered = fake.send_slash("twice")
        await answered.async_wait_response(STEP_TIMEOUT)
        result["second"] = await http(fake, "POST", f"/interactions/{answered.id}/{answered.token}/callback",
                                      {"type": C.CB_MODAL, "data": FORM}, auth=False)

    run_bot(fake, scenario)
    assert result["second"] == (400, {"message": "Interaction has already been acknowledged.", "code": 40060})
    # With the bot gone, the test answers a command itself (nothing else races it).
    opener = fake.send_slash("panel")
    bare = {**FORM, "components": [{"type": C.COMP_ACTION_ROW, "components": [FORM["components"][0]["component"]]}]}
    status, body = asyncio.run(http(fake, "POST", f"/interactions/{opener.id}/{opener.token}/callback",
                                    {"type": C.CB_MODAL, "data": bare}, auth=False))
    assert status == 400 and body["code"] == C.E_INVALID_FORM_BODY  # a select in a modal goes in a Label
    status, _ = asyncio.run(http(fake, "POST", f"/interactions/{opener.id}/{opener.token}/callback",
                                 {"type": C.CB_MODAL, "data": FORM}, auth=False))
    assert status == 204
    with pytest.raises(FakeDiscordError, match="not among options"):
        fake.send_modal_submit(opener, {"reason": ["stale"]})
    with pytest.raises(FakeDiscordError, match="takes a list"):
        fake.send_modal_submit(opener, {"reason": "outdated"})
    with pytest.raises(FakeDiscordError, match="shown to user"):
        fake.send_modal_submit(opener, {"reason": ["outdated"]}, user="admin")
    submit = fake.send_modal_submit(opener, {"reason": ["outdated"]})
    assert submit.payload["data"]["components"] == [
        {"type": C.COMP_LABEL, "component": {"type": C.COMP_STRING_SELECT, "custom_id": "reason", "values": ["outdated"]}}]
    reply = asyncio.run(http(fake, "POST", f"/interactions/{submit.id}/{submit.token}/callback",
                             {"type": C.CB_MODAL, "data": FORM}, auth=False))
    assert reply[0] == 400 and reply[1]["code"] == C.E_INVALID_FORM_BODY  # no modal in answer to a modal


@pytest.mark.timeout(60)
def test_late_response_is_unknown_interaction(fake: FakeDiscord) -> None:
    """Responding after 3 s gets 404 / 10062 Unknown interaction (discord.NotFound)."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        interaction = fake.send_slash("slow")
        result["error"] = await wait_outcome(bot, "slow")
        result["interaction"] = interaction

    run_bot(fake, scenario)
    error = result["error"]
    assert isinstance(error, discord.NotFound) and error.code == C.E_UNKNOWN_INTERACTION
    interaction: FakeInteraction = result["interaction"]
    assert not interaction.acknowledged and interaction.visible == []
    assert [(r.status, r.code) for r in fake.rejections] == [(404, C.E_UNKNOWN_INTERACTION)]


@pytest.mark.timeout(60)
def test_a_message_context_menu(fake: FakeDiscord) -> None:
    """A message context menu: type 2 with data.type 3, the message resolved; a reply after 3 s is
    refused (10062); a menu on a message the user cannot see, or one never synced, cannot be run."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        said = fake.send_message("Chery is opening a European headquarters in Liverpool", author="admin")
        menu = fake.send_message_command("Quote it", said, user="user")
        result["reply"] = await menu.async_wait_response(STEP_TIMEOUT)
        result["menu"] = menu
        result["quoted"] = await wait_outcome(bot, "quoted")
        result["said"] = said
        slow = fake.send_message_command("Slow quote", said)
        result["late"] = await wait_outcome(bot, "slow_quote", timeout=STEP_TIMEOUT + 4)
        result["slow"] = slow

    run_bot(fake, scenario)
    menu: FakeInteraction = result["menu"]
    data = menu.payload["data"]
    said = result["said"]
    assert data["type"] == C.CMD_MESSAGE and data["target_id"] == said["id"] and data["name"] == "Quote it"
    assert data["resolved"]["messages"][said["id"]]["content"] == said["content"]
    assert result["quoted"] == (int(said["id"]), fake.ids.admin_id)
    assert result["reply"]["content"] == f"quoted: {said['content']}" and result["reply"]["ephemeral"] is True
    late = result["late"]
    assert isinstance(late, discord.NotFound) and late.code == C.E_UNKNOWN_INTERACTION
    assert not result["slow"].acknowledged
    assert [(r.status, r.code) for r in fake.rejections] == [(404, C.E_UNKNOWN_INTERACTION)]
    with pytest.raises(FakeDiscordError, match="not synced"):
        fake.send_message_command("Check it", said)
    with pytest.raises(FakeDiscordError, match="only visible to user"):  # another member's private reply
        fake.send_message_command("Quote it", result["reply"]["id"], user="admin")
    with pytest.raises(FakeDiscordError, match="unknown"):
        fake.send_message_command("Quote it", 12345)


@pytest.mark.timeout(60)
def test_overlong_content_rejected_then_recovered(fake: FakeDiscord) -> None:
    """2001 characters: HTTPException 50035 with Discord's error shape, recorded in rejections."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        interaction = fake.send_slash("long")
        result["error"] = await wait_outcome(bot, "long")
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)

    run_bot(fake, scenario)
    error = result["error"]
    assert isinstance(error, discord.HTTPException) and error.status == 400 and error.code == C.E_INVALID_FORM_BODY
    assert "data.content" in str(error) and "2000 or fewer" in str(error)
    [rejection] = fake.rejections
    assert rejection.errors == {
        "data": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}
    }
    assert len(result["reply"]["content"]) == 2000  # the failed attempt did not consume the acknowledgement


@pytest.mark.timeout(60)
def test_rate_limited_followup_is_retried(fake: FakeDiscord) -> None:
    """A 429 (with Discord's headers) on the follow-up: discord.py sleeps retry_after and succeeds."""
    result: dict[str, Any] = {}
    fake.rate_limit_next("POST", r"^/webhooks/\d+/[^/]+$", retry_after=0.3)

    async def scenario(bot: MiniBot) -> None:
        interaction = fake.send_slash("news", {"topic": "storms"})
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)

    run_bot(fake, scenario)
    assert result["reply"]["embeds"][0]["title"] == "News about storms"
    webhook_posts = [r for r in fake.requests if r.method == "POST" and r.path.startswith("/webhooks/")]
    assert [r.status for r in webhook_posts] == [429, 200]
    assert webhook_posts[1].monotonic - webhook_posts[0].monotonic >= 0.25
    assert [(r.injected, r.retry_after) for r in fake.rate_limited] == [(True, 0.3)]
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_button_press_updates_message(fake: FakeDiscord) -> None:
    """A discord.ui.View button: the component interaction reaches the view, which edits the message (type 7)."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        panel = fake.send_slash("panel")
        message = await panel.async_wait_response(STEP_TIMEOUT)
        assert message["components"][0]["components"][0]["custom_id"] == "panel:approve"
        with pytest.raises(FakeDiscordError, match="no component"):
            fake.send_component(message, "panel:missing")
        press = fake.send_component(message, "panel:approve", user="admin")
        result["update"] = await press.async_wait_response(STEP_TIMEOUT)
        result["press"] = press
        result["pressed_by"] = await wait_outcome(bot, "pressed_by")
        result["message_id"] = message["id"]

    run_bot(fake, scenario)
    press: FakeInteraction = result["press"]
    assert press.type == C.IT_MESSAGE_COMPONENT and press.callback_type == C.CB_UPDATE_MESSAGE
    assert result["pressed_by"] == fake.ids.admin_id
    assert result["update"]["id"] == result["message_id"]
    assert result["update"]["content"] == "approved by admin" and result["update"]["components"] == []
    assert fake.message(result["message_id"])["content"] == "approved by admin"
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_modal_and_autocomplete(fake: FakeDiscord) -> None:
    """Type 9 (modal) then its submission, and type 8 autocomplete results."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        opener = fake.send_slash("modal")
        callback = await opener.async_wait_callback(STEP_TIMEOUT)
        assert callback["type"] == C.CB_MODAL and callback["data"]["custom_id"] == "modal:ask"
        submit = fake.send_modal_submit(opener, {"modal:question": "Who won?"})
        result["modal_reply"] = await submit.async_wait_response(STEP_TIMEOUT)
        result["modal"] = await wait_outcome(bot, "modal")
        complete = fake.send_autocomplete("pick", {"outlet": "daily"}, focused="outlet")
        result["choices"] = (await complete.async_wait_callback(STEP_TIMEOUT))["data"]["choices"]

    run_bot(fake, scenario)
    assert result["modal"] == "Who won?"
    assert result["modal_reply"]["ephemeral"] is True and result["modal_reply"]["flags"] & C.MF_EPHEMERAL
    assert [c["name"] for c in result["choices"]] == ["Daily Planet", "Daily Bugle"]
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_autocomplete_only_for_options_that_have_it(fake: FakeDiscord) -> None:
    """Discord sends an option focused only when it has autocomplete."""

    async def scenario(bot: MiniBot) -> None:
        with pytest.raises(FakeDiscordError, match="has no autocomplete"):
            fake.send_autocomplete("news", {"topic": "spo"}, focused="topic")
        with pytest.raises(FakeDiscordError, match="must be given"):
            fake.send_autocomplete("pick", {}, focused="outlet")

    run_bot(fake, scenario)
    assert fake.interactions == [] and fake.rejections == []


@pytest.mark.timeout(60)
def test_a_channel_created_while_connected(fake: FakeDiscord) -> None:
    """``add_channel`` dispatches CHANNEL_CREATE: the client caches the channel and can write there."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        channel_id = fake.add_channel("newsdesk", topic="Feeds")
        deadline = time.monotonic() + STEP_TIMEOUT
        while bot.get_channel(channel_id) is None:
            assert time.monotonic() < deadline, "the new channel never reached the client's cache"
            await asyncio.sleep(0.02)
        channel = bot.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel)
        result["channel"] = (channel.name, channel.topic, channel.position, channel.guild.id)
        await channel.send("hello newsdesk")
        interaction = fake.send_slash("twice", channel_id=channel_id)
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)
        result["id"] = channel_id

    run_bot(fake, scenario)
    assert result["channel"] == ("newsdesk", "Feeds", 1, fake.ids.guild_id)
    sent = [m for m in fake.messages if m["content"] == "hello newsdesk"]
    assert [m["channel_id"] for m in sent] == [str(result["id"])]
    assert result["reply"]["channel_id"] == str(result["id"])
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_guild_create_can_come_late(fake: FakeDiscord) -> None:
    """``delay_guild_create``: READY first, the guild (and its channels) only later, as on Discord."""
    fake.delay_guild_create(1.0)
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        # MiniBot's guild_ready_timeout is 0.05 s: ready with its guild unavailable (READY only names it).
        guild = bot.get_guild(fake.ids.guild_id)
        result["at_ready"] = (guild is not None and guild.unavailable, bot.get_channel(fake.ids.channel_id))
        deadline = time.monotonic() + STEP_TIMEOUT
        while (guild := bot.get_guild(fake.ids.guild_id)) is None or guild.unavailable:
            assert time.monotonic() < deadline, "the guild never came"
            await asyncio.sleep(0.02)
        result["later"] = bot.get_channel(fake.ids.channel_id)
        # The channel is reachable over REST all along.
        result["fetched"] = await bot.fetch_channel(fake.ids.channel_id)

    run_bot(fake, scenario, sync=False)
    assert result["at_ready"] == (True, None)
    assert isinstance(result["later"], discord.TextChannel) and result["later"].name == "general"
    assert result["fetched"].id == fake.ids.channel_id
    assert fake.rejections == []
    with pytest.raises(ValueError):
        fake.delay_guild_create(-1)


@pytest.mark.timeout(60)
def test_webhook_token_rules() -> None:
    """Follow-ups before any acknowledgement: 404 10015; after the token's lifetime: 401 50027."""
    command = {"name": "ask", "description": "Ask", "type": 1}

    async def main(fake: FakeDiscord) -> None:
        app = fake.ids.application_id
        assert (await http(fake, "PUT", f"/applications/{app}/commands", [command]))[0] == 200
        interaction = fake.send_slash("ask")  # no client connected: nobody answers it
        hook = f"/webhooks/{app}/{interaction.token}"
        assert await http(fake, "POST", hook + "?wait=true", {"content": "early"}, auth=False) == (
            404, {"message": "Unknown Webhook", "code": C.E_UNKNOWN_WEBHOOK})
        status, _ = await http(fake, "PATCH", hook + "/messages/@original", {"content": "early"}, auth=False)
        assert status == 404
        callback = f"/interactions/{interaction.id}/{interaction.token}/callback?with_response=true"
        status, body = await http(fake, "POST", callback, {"type": 5, "data": {"flags": 64}}, auth=False)
        assert status == 200 and body["interaction"]["response_message_loading"] is True
        assert body["resource"]["message"]["flags"] == C.MF_LOADING | C.MF_EPHEMERAL
        status, original = await http(fake, "GET", hook + "/messages/@original", auth=False)
        assert status == 200 and original["id"] == body["interaction"]["response_message_id"]
        status, edited = await http(fake, "PATCH", hook + "/messages/@original", {"content": "done"}, auth=False)
        assert status == 200 and edited["content"] == "done" and edited["flags"] == C.MF_EPHEMERAL
        assert (await interaction.async_wait_response(1))["content"] == "done"
        status, second = await http(fake, "POST", hook + "?wait=true", {"content": "more"}, auth=False)
        assert status == 200 and second["id"] != original["id"]
        await asyncio.sleep(0.6)
        assert await http(fake, "POST", hook + "?wait=true", {"content": "late"}, auth=False) == (
            401, {"message": "Invalid Webhook Token", "code": C.E_INVALID_WEBHOOK_TOKEN})

    with FakeDiscord(interaction_token_ttl_s=0.5) as fake:
        asyncio.run(main(fake))
        assert [r.code for r in fake.rejections] == [C.E_UNKNOWN_WEBHOOK] * 2 + [C.E_INVALID_WEBHOOK_TOKEN]


@pytest.mark.timeout(60)
def test_privileged_intent_refused() -> None:
    """Asking for Message Content when the app may not have it: close 4014, PrivilegedIntentsRequired."""

    async def main(fake: FakeDiscord) -> None:
        client = MiniBot(fake.ids.guild_id)
        try:
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(client.start(fake.token), STEP_TIMEOUT)
        finally:
            await client.close()

    with FakeDiscord(allowed_privileged_intents=0) as fake, point_discord_py_at(fake):
        asyncio.run(main(fake))
        assert [c.close_code for c in fake.connections] == [C.CLOSE_DISALLOWED_INTENTS]


@pytest.mark.timeout(60)
def test_direct_messages(fake: FakeDiscord) -> None:
    """A global command used from a DM, and a DM message answered in the DM channel."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        await bot.tree.sync()
        interaction = fake.send_slash("whoami", guild=False)
        result["slash"] = await interaction.async_wait_response(STEP_TIMEOUT)
        message = fake.send_message("hello there", dm=True)
        result["dm"] = await fake.async_wait_message(lambda m: m["content"] == "dm: hello there")
        result["channel_id"] = message["channel_id"]

    run_bot(fake, scenario)
    assert [c["name"] for c in fake.commands()] == ["whoami"]
    assert result["slash"]["content"] == "alice in dm" and result["slash"]["ephemeral"] is True
    assert "guild_id" not in result["dm"] and result["dm"]["channel_id"] == result["channel_id"]
    assert fake.rejections == []


# ---------------------------------------------------------------------------------------- messages / threads
@pytest.mark.timeout(60)
def test_mention_gets_a_reply_with_reference(fake: FakeDiscord) -> None:
    """MESSAGE_CREATE mentioning the bot reaches on_message; the reply carries message_reference."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        mark = fake.mark()
        fake.send_message("no mention here")
        fake.send_message("hi bot", author="other_bot", mentions_bot=True)
        question = fake.send_message("what's new?", mentions_bot=True)
        assert question["content"] == f"<@{fake.ids.bot_id}> what's new?"
        assert question["mentions"][0]["id"] == str(fake.ids.bot_id)
        reply = await fake.async_wait_message(lambda m: m["event"] == "create", since=mark)
        result.update(question=question, reply=reply)
        await fake.async_wait_until(lambda f: any(m.author == bot.user for m in bot.seen_messages), 5)
        result["seen"] = [(m.author.name, m.content) for m in bot.seen_messages]

    run_bot(fake, scenario, sync=False)
    reply, question = result["reply"], result["question"]
    assert reply["content"] == "pong" and reply["type"] == C.MSG_REPLY
    assert reply["message_reference"]["message_id"] == question["id"]
    assert reply["allowed_mentions"]["replied_user"] is False and reply["mentions"] == []
    bot_replies = [m for m in fake.messages if m["source"] == "channel"]
    assert len(bot_replies) == 1  # neither the other bot's message nor the plain one was answered
    assert ("alice", "no mention here") in result["seen"]
    assert ("newsbot", "pong") in result["seen"]  # Discord echoes the bot's own messages
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_thread_from_message_and_follow_up(fake: FakeDiscord) -> None:
    """The bot starts a thread from a user's message (THREAD_CREATE, owner = bot) and answers inside it."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        question = fake.send_message("open a thread please", mentions_bot=True)
        intro = await fake.async_wait_message(lambda m: m["content"] == "Ask follow-ups here.")
        thread_id = int(intro["channel_id"])
        assert thread_id == int(question["id"])  # a thread started from a message shares its id
        await fake.async_wait_until(lambda f: bot.get_channel(thread_id) is not None, 5)
        fake.send_message("and then?", thread=thread_id)
        result["answer"] = await fake.async_wait_message(lambda m: m["content"] == "in thread: and then?")
        result["thread_id"] = thread_id

    run_bot(fake, scenario, sync=False)
    [thread] = fake.threads()
    assert int(thread["id"]) == result["thread_id"] and thread["owner_id"] == str(fake.ids.bot_id)
    assert thread["parent_id"] == str(fake.ids.channel_id) and thread["name"] == "Follow-up"
    assert result["answer"]["channel_id"] == thread["id"]
    assert fake.rejections == []


@pytest.mark.timeout(60)
def test_message_rules_enforced() -> None:
    """Length / count / shape limits answer 400 with Discord's codes and are recorded as rejections."""
    row = {"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": "b0"}]}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": ""}, C.E_EMPTY_MESSAGE, ""),
        ({"content": "x" * 2001}, C.E_INVALID_FORM_BODY, "content"),
        ({"embeds": [{"title": "t" * 257}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"description": "d" * 4097}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"description": "d"}] * 11}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"fields": [{"name": "n", "value": ""}]}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"footer": {"text": "f" * 2049}}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"author": {"name": "a" * 257}}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"embeds": [{"title": "t", "url": "news.example/no-scheme"}]}, C.E_INVALID_FORM_BODY, "embeds"),
        ({"content": "c", "components": [row] * 6}, C.E_INVALID_FORM_BODY, "components"),
        ({"content": "c", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "b", "custom_id": f"b{i}"} for i in range(6)]}]},
         C.E_INVALID_FORM_BODY, "components"),
        ({"content": "c", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "b", "custom_id": "x" * 101}]}]}, C.E_INVALID_FORM_BODY, "components"),
        ({"content": "c", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "l" * 81, "custom_id": "ok"}]}]}, C.E_INVALID_FORM_BODY, "components"),
    ]

    async def main(fake: FakeDiscord) -> None:
        path = f"/channels/{fake.ids.channel_id}/messages"
        for body, code, field in cases:
            status, reply = await http(fake, "POST", path, body)
            assert status == 400 and reply["code"] == code, (body, reply)
            if field:
                assert field in reply["errors"], reply
        status, message = await http(fake, "POST", path, {"content": "ok", "embeds": [{"description": "d" * 4096}]})
        assert status == 200
        status, reply = await http(fake, "PATCH", f"{path}/{message['id']}", {"content": "", "embeds": []})
        assert (status, reply["code"]) == (400, C.E_EMPTY_MESSAGE)  # an edit may not leave nothing to show
        status, _ = await http(fake, "GET", "/users/@me", auth=False)
        assert status == 401

    with FakeDiscord() as fake:
        asyncio.run(main(fake))
        assert len(fake.rejections) == len(cases) + 2
        assert [m["event"] for m in fake.messages] == ["create"]


@pytest.mark.timeout(60)
def test_channel_routes_and_permissions() -> None:
    """History, edits, deletes (own vs others'), reactions, typing, thread creation rules, DM to a bot."""

    async def main(fake: FakeDiscord) -> None:
        channel = f"/channels/{fake.ids.channel_id}"
        user_message = fake.send_message("a user's message")
        status, mine = await http(fake, "POST", channel + "/messages", {"content": "bot says hi"})
        assert status == 200 and mine["author"]["id"] == str(fake.ids.bot_id)
        status, history = await http(fake, "GET", channel + "/messages?limit=10")
        assert [m["content"] for m in history] == ["bot says hi", "a user's message"]  # newest first
        status, body = await http(fake, "PATCH", f"{channel}/messages/{user_message['id']}", {"content": "x"})
        assert (status, body["code"]) == (403, C.E_CANNOT_EDIT_OTHERS)
        status, body = await http(fake, "DELETE", f"{channel}/messages/{user_message['id']}")
        assert (status, body["code"]) == (403, C.E_MISSING_PERMISSIONS)  # the bot lacks MANAGE_MESSAGES
        assert (await http(fake, "PUT", f"{channel}/messages/{mine['id']}/reactions/%F0%9F%91%8D/@me"))[0] == 204
        assert (await http(fake, "POST", channel + "/typing"))[0] == 204
        status, body = await http(fake, "POST", channel + "/threads", {"name": "n" * 101, "type": 11})
        assert (status, body["code"]) == (400, C.E_INVALID_FORM_BODY)
        status, thread = await http(fake, "POST", channel + "/threads", {"name": "Digest", "type": 11,
                                                                         "auto_archive_duration": 60})
        assert status == 201 and thread["owner_id"] == str(fake.ids.bot_id) and thread["type"] == 11
        status, body = await http(fake, "POST", f"{channel}/messages/{mine['id']}/threads", {"name": "t"})
        assert status == 201
        status, body = await http(fake, "POST", f"{channel}/messages/{mine['id']}/threads", {"name": "t"})
        assert (status, body["code"]) == (400, C.E_THREAD_ALREADY_CREATED)
        status, dm = await http(fake, "POST", "/users/@me/channels", {"recipient_id": str(fake.ids.other_bot_id)})
        assert status == 200
        status, body = await http(fake, "POST", f"/channels/{dm['id']}/messages", {"content": "hi bot"})
        assert (status, body["code"]) == (403, C.E_CANNOT_DM_USER)
        ping = {"content": f"<@{fake.ids.user_id}> and <@{fake.ids.admin_id}> @everyone"}
        status, pinged = await http(fake, "POST", channel + "/messages", ping)
        assert [m["id"] for m in pinged["mentions"]] == [str(fake.ids.user_id), str(fake.ids.admin_id)]
        assert pinged["mention_everyone"] is False  # the bot lacks MENTION_EVERYONE
        quiet = {**ping, "allowed_mentions": {"parse": [], "users": [fake.ids.admin_id]}}
        status, muted = await http(fake, "POST", channel + "/messages", quiet)
        assert [m["id"] for m in muted["mentions"]] == [str(fake.ids.admin_id)]
        assert (await http(fake, "DELETE", f"{channel}/messages/{mine['id']}"))[0] == 204
        status, body = await http(fake, "GET", f"{channel}/messages/{mine['id']}")
        assert (status, body["code"]) == (404, C.E_UNKNOWN_MESSAGE)

    with FakeDiscord() as fake:
        asyncio.run(main(fake))
        assert [(r["emoji"], r["added"]) for r in fake.reactions] == [("👍", True)]
        assert len(fake.typing_events) == 1 and len(fake.threads()) == 2


@pytest.mark.timeout(60)
def test_message_content_intent_scrubs_content(fake: FakeDiscord) -> None:
    """Without the Message Content intent, guild messages arrive empty unless they mention the bot."""

    async def main() -> list[str]:
        seen: list[str] = []
        client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)

        @client.event
        async def on_message(message: discord.Message) -> None:
            seen.append(message.content)

        runner = asyncio.create_task(client.start(fake.token))
        try:
            await fake.async_wait_ready(STEP_TIMEOUT)
            await asyncio.wait_for(client.wait_until_ready(), STEP_TIMEOUT)
            fake.send_message("secret plans")
            fake.send_message("hello", mentions_bot=True)
            fake.send_message("in a dm", dm=True)
            await fake.async_wait_until(lambda f: len(seen) >= 3, STEP_TIMEOUT)
        finally:
            await client.close()
            await asyncio.wait_for(runner, STEP_TIMEOUT)
        return seen

    assert asyncio.run(main()) == ["", f"<@{fake.ids.bot_id}> hello", "in a dm"]
    assert fake.intents is not None and not fake.intents & C.INTENT_MESSAGE_CONTENT


# ---------------------------------------------------------------------------------------- gateway resilience
@pytest.mark.timeout(60)
def test_gateway_drop_resumes_and_keeps_handling(fake: FakeDiscord) -> None:
    """Drops (close 4000, abnormal TCP abort, op 7): the client RESUMEs, missed events are replayed."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        fake.drop_gateway(4000)
        fake.send_message("sent while dropping", mentions_bot=False)
        await fake.async_wait_until(lambda f: f.resume_count >= 1, STEP_TIMEOUT, "first resume")
        fake.drop_gateway(None)
        await fake.async_wait_until(lambda f: f.resume_count >= 2, STEP_TIMEOUT, "resume after abort")
        fake.request_reconnect()
        await fake.async_wait_until(lambda f: f.resume_count >= 3, STEP_TIMEOUT, "resume after op 7")
        interaction = fake.send_slash("news", {"topic": "after resume"})
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)
        await fake.async_wait_until(lambda f: any(m.content == "sent while dropping" for m in bot.seen_messages), 5)
        result["seen"] = [m.content for m in bot.seen_messages].count("sent while dropping")

    run_bot(fake, scenario)
    assert result["reply"]["embeds"][0]["title"] == "News about after resume"
    assert result["seen"] == 1
    assert fake.identify_count == 1 and fake.resume_count == 3
    resumed = [c for c in fake.connections if c.resumed]
    assert len(resumed) == 3 and all(c.path == "/resume" for c in resumed)
    assert [c.closed_by for c in fake.connections[:3]] == ["server", "abort", "client"]
    assert fake.rejections == [] and fake.heartbeat_misses == []


@pytest.mark.timeout(60)
def test_blocked_event_loop_is_a_heartbeat_miss() -> None:
    """Blocking the client's loop past 1.5 heartbeat intervals is recorded; the client then resumes."""
    result: dict[str, Any] = {}

    async def scenario(bot: MiniBot) -> None:
        await fake.async_wait_until(lambda f: len(f.connections[-1].heartbeats) >= 2, 5)
        assert fake.heartbeat_misses == []
        time.sleep(1.2)  # a synchronous call inside a coroutine: the event loop is blocked
        await fake.async_wait_until(lambda f: f.resume_count >= 1, STEP_TIMEOUT, "resume after the miss")
        interaction = fake.send_slash("news", {"topic": "recovered"})
        result["reply"] = await interaction.async_wait_response(STEP_TIMEOUT)

    with FakeDiscord(heartbeat_interval_ms=500) as fake, point_discord_py_at(fake):
        run_bot(fake, scenario)
        [miss] = fake.heartbeat_misses
        assert miss.gap_s > 0.75 and miss.interval_s == 0.5 and miss.closed_connection
        assert fake.max_heartbeat_gap() >= 0.75
        assert fake.connections[0].closed_by == "heartbeat"
        assert result["reply"]["embeds"][0]["title"] == "News about recovered"


# ---------------------------------------------------------------------------------------- subprocess bot
SUBPROCESS_BOT = textwrap.dedent(
    """
    import asyncio, os
    import discord, discord.gateway, discord.http, yarl
    from discord import app_commands

    discord.http.Route.BASE = os.environ["NEWSBOT_DISCORD_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["NEWSBOT_DISCORD_GATEWAY"])
    guild = discord.Object(int(os.environ["DISCORD_GUILD_ID"]))

    class Bot(discord.Client):
        def __init__(self):
            super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
            self.tree = app_commands.CommandTree(self)

            @self.tree.command(name="ping", description="Ping", guild=guild)
            async def ping(interaction: discord.Interaction) -> None:
                await interaction.response.send_message("pong", ephemeral=True)

        async def setup_hook(self):
            await self.tree.sync(guild=guild)

    asyncio.run(Bot().start(os.environ["DISCORD_TOKEN"]))
    """
)


@pytest.mark.timeout(60)
def test_subprocess_bot_via_env(tmp_path: Path) -> None:
    """A bot in another process, configured only through the env vars, is served too."""
    script = tmp_path / "tiny_bot.py"
    script.write_text(SUBPROCESS_BOT)
    with FakeDiscord() as fake:
        env = {**os.environ, **fake.env(token_var="DISCORD_TOKEN", guild_var="DISCORD_GUILD_ID")}
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            fake.wait_ready(30)
            fake.wait_until(lambda f: f.commands(f.ids.guild_id), 30, "command sync")
            interaction = fake.send_slash("ping", user="admin")
            reply = interaction.wait_response(15)
        finally:
            proc.terminate()
            output = proc.communicate(timeout=15)[0]
        assert reply["content"] == "pong" and reply["ephemeral"] is True, output
        assert interaction.ack_latency is not None and interaction.ack_latency < 3.0
        assert fake.rejections == [], output


# ---------------------------------------------------------------------------------------- sharding
class ShardClient(discord.Client):
    """A plain client on one shard (or, as an AutoShardedClient below, on several), recording what it gets."""

    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.seen: list[tuple[int | None, str]] = []  # (guild id, content)
        self.joined: list[int] = []

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append((message.guild.id if message.guild else None, message.content))

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.joined.append(guild.id)


class AutoShardClient(discord.AutoShardedClient):
    """An AutoShardedClient that identifies its shards without discord.py's 5 s pause between them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05, **options)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


async def start_clients(fake: FakeDiscord, *clients: discord.Client) -> list[asyncio.Task[None]]:
    """Start the clients one after the other, each ready before the next starts."""
    tasks = []
    for client in clients:
        task = asyncio.create_task(client.start(fake.token))
        tasks.append(task)
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=STEP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert ready in done, "a client never became ready"
    return tasks


async def stop_clients(clients: tuple[discord.Client, ...], tasks: list[asyncio.Task[None]]) -> None:
    for client in clients:
        await client.close()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, STEP_TIMEOUT)


@pytest.mark.timeout(60)
def test_guild_events_go_only_to_the_shard_that_owns_the_guild(fake: FakeDiscord) -> None:
    """Two clients on shards 0 and 1 of 2: each gets its guild's events, DMs go to shard 0 only."""
    first_shard = fake.shard_of(fake.ids.guild_id, 2)
    other = fake.add_guild("Sports desk", shard=(1 - first_shard, 2))
    assert fake.shard_of(other.guild_id, 2) == 1 - first_shard and other.channel_id != fake.ids.channel_id
    by_shard = {first_shard: fake.ids, 1 - first_shard: other}
    app = fake.ids.application_id
    command = {"name": "ping", "description": "Ping", "type": 1}
    assert asyncio.run(http(fake, "PUT", f"/applications/{app}/commands", [command]))[0] == 200
    result: dict[str, Any] = {}

    async def main() -> None:
        clients = (ShardClient(shard_id=0, shard_count=2), ShardClient(shard_id=1, shard_count=2))
        tasks = await start_clients(fake, *clients)
        try:
            result["guilds"] = [[g.id for g in c.guilds] for c in clients]
            result["roles"] = [[r.name for r in g.roles] for c in clients for g in c.guilds]
            for shard, ids in by_shard.items():
                fake.send_message(f"hello shard {shard}", mentions_bot=True, channel_id=ids.channel_id)
                interaction = fake.send_slash("ping", channel_id=ids.channel_id)
                result[f"slash {shard}"] = interaction.delivered_to
            fake.send_message("a direct message", dm=True)
            late = fake.add_guild("Late desk", shard=(1, 2))
            channel_id = fake.add_channel("results", guild_id=other.guild_id)
            await fake.async_wait_until(lambda f: len(clients[0].seen) >= 2 and len(clients[1].seen) >= 1, 5)
            await fake.async_wait_until(lambda f: clients[1].joined, 5, "the late guild")
            result["late"] = (late.guild_id, [c.joined for c in clients])
            owner = clients[1 - first_shard]
            await fake.async_wait_until(lambda f: owner.get_channel(channel_id) is not None, 5, "the new channel")
            result["channel"] = [c.get_channel(channel_id) is not None for c in clients]
            result["seen"] = [[content for _, content in c.seen] for c in clients]
        finally:
            await stop_clients(clients, tasks)

    asyncio.run(main())
    sessions = {s.shard: s for s in fake.sessions}
    assert set(sessions) == {(0, 2), (1, 2)}
    assert result["guilds"] == [[by_shard[0].guild_id], [by_shard[1].guild_id]]
    assert result["roles"] == [["@everyone", "Moderator", "NewsBot"]] * 2
    assert [result[f"slash {s}"] for s in (0, 1)] == [[sessions[(0, 2)].id], [sessions[(1, 2)].id]]
    mention = f"<@{fake.ids.bot_id}>"
    assert result["seen"][0] == [f"{mention} hello shard 0", "a direct message"]
    assert result["seen"][1] == [f"{mention} hello shard 1"]
    assert result["late"][1] == [[], [result["late"][0]]]
    assert result["channel"] == [first_shard == 1, first_shard == 0]  # only on the other guild's shard
    for session in sessions.values():  # nothing of another shard's guilds, ever
        for event in session.events:
            guild = event["d"].get("id") if event["t"] == "GUILD_CREATE" else event["d"].get("guild_id")
            assert guild is None or int(guild) in session.guild_ids, (session.shard, event["t"])
    assert [len(s.received("READY")) for s in sessions.values()] == [1, 1]
    assert fake.rejections == [] and fake.unhandled_routes == []


@pytest.mark.timeout(60)
def test_auto_sharded_client_takes_the_recommended_shard_count() -> None:
    """GET /gateway/bot recommends a shard per N guilds; an AutoShardedClient without a count runs that many."""
    result: dict[str, Any] = {}

    async def main(fake: FakeDiscord) -> None:
        status, body = await http(fake, "GET", "/gateway/bot")
        assert status == 200 and body["shards"] == 1 and body["url"] == fake.gateway_url
        fake.add_guild("Second", shard=(0, 2))
        fake.add_guild("Third", shard=(1, 2))
        assert (await http(fake, "GET", "/gateway/bot"))[1]["shards"] == 3
        client = AutoShardClient()
        tasks = await start_clients(fake, client)
        try:
            result["shards"] = (client.shard_count, sorted(client.shards))
            result["guilds"] = sorted(g.id for g in client.guilds)
        finally:
            await stop_clients((client,), tasks)

    with FakeDiscord(recommended_guilds_per_shard=1) as fake, point_discord_py_at(fake):
        asyncio.run(main(fake))
        assert result["shards"] == (3, [0, 1, 2])
        assert result["guilds"] == sorted(fake.guild_ids())
        assert sorted(s.shard for s in fake.sessions) == [(0, 3), (1, 3), (2, 3)]
        assert sum(len(s.guild_ids) for s in fake.sessions) == 3
        assert ("GET", "/gateway/bot") in [(r.method, r.path) for r in fake.requests]
        assert fake.rejections == []


@contextlib.asynccontextmanager
async def raw_session(fake: FakeDiscord, shard: Any) -> Any:
    """IDENTIFY over a raw websocket, kept open: yields (the READY data, None) or (None, the close code)."""
    identify: JSON = {"token": fake.token, "intents": 513 | C.INTENT_DIRECT_MESSAGES, "properties": {}}
    if shard is not None:
        identify["shard"] = shard
    async with aiohttp.ClientSession() as session, session.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
        assert (await ws.receive_json(timeout=5))["op"] == C.OP_HELLO
        await ws.send_json({"op": C.OP_IDENTIFY, "d": identify})
        msg = await ws.receive(timeout=5)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            yield None, ws.close_code
            return
        ready = json.loads(msg.data)
        assert ready["t"] == "READY"
        yield ready["d"], None


async def raw_identify(fake: FakeDiscord, shard: Any) -> tuple[JSON | None, int | None]:
    async with raw_session(fake, shard) as outcome:
        return outcome


@pytest.mark.timeout(60)
def test_shard_rules_at_identify() -> None:
    """Invalid shard arrays close with 4010; too many guilds for a session with 4011 (sharding
    required); one shard identified twice is allowed, and both sessions get its events."""
    bad = [[2, 2], [-1, 2], [0, 0], [0], [0, 1, 2], "0,2", [0.0, 2], [True, 2], ["0", "2"]]
    result: dict[str, Any] = {}

    async def main(fake: FakeDiscord) -> None:
        for shard in bad:
            assert await raw_identify(fake, shard) == (None, C.CLOSE_INVALID_SHARD), shard
        ready, code = await raw_identify(fake, None)  # 2 guilds, at most 1 a session
        assert (ready, code) == (None, C.CLOSE_SHARDING_REQUIRED)
        assert (await raw_identify(fake, [0, 1]))[1] == C.CLOSE_SHARDING_REQUIRED
        async with raw_session(fake, [1, 2]) as (a, _), raw_session(fake, [1, 2]) as (b, _), \
                raw_session(fake, [0, 2]) as (c, _):
            assert a is not None and b is not None and c is not None and a["session_id"] != b["session_id"]
            assert a["shard"] == b["shard"] == [1, 2] and c["shard"] == [0, 2]
            assert a["guilds"] == b["guilds"] == [{"id": str(fake.ids.guild_id), "unavailable": True}]
            assert [g["id"] for g in c["guilds"]] == [str(fake.guild_ids()[1])]
            message = fake.send_message("to shard 1 of 2", mentions_bot=True)
            got = fake.recipients("MESSAGE_CREATE", lambda d: d["id"] == message["id"])
            result["both"] = ({s.id for s in got}, {a["session_id"], b["session_id"]})
            dm = fake.send_message("a dm", dm=True)
            result["dm"] = [s.id for s in fake.recipients("MESSAGE_CREATE", lambda d: d["id"] == dm["id"])]
            result["c"] = c["session_id"]

    with FakeDiscord(max_guilds_per_shard=1) as fake:
        assert fake.shard_of(fake.ids.guild_id, 2) == 1
        fake.add_guild("Second", shard=(0, 2))
        asyncio.run(main(fake))
        codes = [r.code for r in fake.rejections]
        assert codes == [C.CLOSE_INVALID_SHARD] * len(bad) + [C.CLOSE_SHARDING_REQUIRED] * 2
        both, expected = result["both"]
        assert both == expected  # one shard identified twice: both sessions get its events
        assert result["dm"] == [result["c"]]  # a DM goes to shard 0 only
        assert [s.shard for s in fake.sessions] == [(1, 2), (1, 2), (0, 2)]
        assert all(s.invalidated for s in fake.sessions)  # closed by the client with 1000
        with pytest.raises(ValueError, match="shard"):
            fake.add_guild("Nowhere", shard=(2, 2))
        with pytest.raises(ValueError, match="on shard 1 of 2, not 0"):
            fake.add_guild("Wrong", guild_id=fake.ids.guild_id + (2 << 22), shard=(0, 2))


# ---------------------------------------------------------------------------------------- forums
@pytest.mark.timeout(60)
def test_forum_posts_are_threads_whose_first_message_has_their_id(fake: FakeDiscord) -> None:
    """A member's forum post: THREAD_CREATE then MESSAGE_CREATE; discord.py sees a thread in a
    ForumChannel whose starter message id is the thread's; a message posted to the forum itself is refused."""
    forum_id = fake.add_forum_channel("questions")

    async def scenario(bot: MiniBot) -> None:
        forum = bot.get_channel(forum_id)
        assert isinstance(forum, discord.ForumChannel)
        post = fake.create_forum_post(forum_id, "Rail fares", "What did the minister say about rail fares?")
        thread = await asyncio.wait_for(_until(lambda: bot.get_channel(int(post["id"]))), STEP_TIMEOUT)
        assert isinstance(thread, discord.Thread) and thread.parent_id == forum_id and thread.id == int(post["id"])
        assert thread.owner_id == fake.ids.user_id
        status, body = await http(fake, "POST", f"/channels/{forum_id}/messages", {"content": "hello"})
        assert status == 400 and body["code"] == C.E_NON_TEXT_CHANNEL
        status, _ = await http(fake, "POST", f"/channels/{post['id']}/messages", {"content": "a reply in the post"})
        assert status == 200

    run_bot(fake, scenario, sync=False)
    assert [r.code for r in fake.rejections] == [C.E_NON_TEXT_CHANNEL]
    with pytest.raises(FakeDiscordError, match="not a forum"):
        fake.create_forum_post(fake.ids.channel_id, "x", "y")


async def _until(get: Any, interval: float = 0.02) -> Any:
    while (value := get()) is None:
        await asyncio.sleep(interval)
    return value
