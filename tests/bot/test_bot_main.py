"""``python -m bot``: help, exit codes, the token kept secret, and a start-up against a tiny local stand-in.

The stand-in here only answers what start-up needs (login, application info, command sync,
HELLO/IDENTIFY/READY); the full fake Discord lives in tests/fakediscord.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import discord
import pytest
import yarl
from aiohttp import web

from bot.config import BotSettings as Settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIz.secret-token-value.never-logged"
APP_ID = "555"


def _json(data: object, status: int = 200) -> web.Response:
    # exactly "application/json": discord.py parses JSON only for that content type (no charset)
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def make_app(*, reject_token: bool = False) -> tuple[web.Application, dict]:  # type: ignore[type-arg]
    seen: dict = {"commands": None, "identify": None, "auth": []}  # type: ignore[type-arg]
    app = web.Application()

    async def me(request: web.Request) -> web.Response:
        seen["auth"].append(request.headers.get("Authorization"))
        if reject_token:
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json({"id": "99", "username": "newsbot", "discriminator": "0", "avatar": None, "bot": True})

    async def application(request: web.Request) -> web.Response:
        owner = {"id": "1", "username": "owner", "discriminator": "0", "avatar": None}
        return _json({"id": APP_ID, "name": "newsbot", "description": "", "icon": None, "bot_public": True,
                                  "bot_require_code_grant": False, "owner": owner, "verify_key": "k", "flags": 0})

    async def put_commands(request: web.Request) -> web.Response:
        body = await request.json()
        seen["commands"] = body
        # As Discord: a context menu comes back with an empty description.
        return _json([{"description": "", **c, "id": str(1000 + i), "application_id": APP_ID, "version": "1",
                       "guild_id": request.match_info["guild"]} for i, c in enumerate(body)])

    async def gateway(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 40000}, "s": None, "t": None}))
        async for msg in ws:
            data = json.loads(msg.data)
            if data["op"] == 2:
                seen["identify"] = data["d"]
                user = {"id": "99", "username": "newsbot", "discriminator": "0", "avatar": None, "bot": True}
                ready = {"v": 10, "user": user, "guilds": [], "session_id": "s1",
                         "resume_gateway_url": str(request.url.with_query(None)),
                         "application": {"id": APP_ID, "flags": 0}}
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": 1, "d": ready}))
            elif data["op"] == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        return ws

    app.router.add_get("/api/v10/users/@me", me)
    app.router.add_get("/api/v10/oauth2/applications/@me", application)
    app.router.add_put("/api/v10/applications/{app}/guilds/{guild}/commands", put_commands)
    app.router.add_get("/gateway", gateway)
    return app, seen


@pytest.fixture
def server_in_thread() -> Iterator[callable]:  # type: ignore[valid-type]
    """Start a stand-in in a background thread; yields a function (reject_token) -> base URL."""
    loops: list[tuple[asyncio.AbstractEventLoop, web.AppRunner]] = []

    def start(reject_token: bool = False) -> str:
        loop = asyncio.new_event_loop()
        app, _ = make_app(reject_token=reject_token)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        threading.Thread(target=loop.run_forever, daemon=True).start()
        loops.append((loop, runner))
        return f"http://127.0.0.1:{port}"

    yield start
    for loop, runner in loops:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)


def run_bot(env: dict[str, str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    full_env.update({"NEWSBOT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "NEWSBOT_INDEX_DIR": str(tmp_path / "ix")})
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", "--env-file", str(empty_env), *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60,
    )


def test_help(tmp_path: Path) -> None:
    out = run_bot({}, "--help", tmp_path=tmp_path)
    assert out.returncode == 0
    assert "DISCORD_TOKEN" in out.stdout and "Message Content Intent" in out.stdout


def test_missing_token_exits_2(tmp_path: Path) -> None:
    out = run_bot({"DISCORD_TOKEN": ""}, tmp_path=tmp_path)
    assert out.returncode == 2
    assert "DISCORD_TOKEN is not set" in out.stderr


def test_bad_setting_exits_2(tmp_path: Path) -> None:
    out = run_bot({"DISCORD_TOKEN": TOKEN, "NEWSBOT_COOLDOWN_SECONDS": "soon"}, tmp_path=tmp_path)
    assert out.returncode == 2 and "NEWSBOT_COOLDOWN_SECONDS" in out.stderr
    assert TOKEN not in out.stderr + out.stdout


def test_rejected_token_exits_nonzero_without_showing_it(tmp_path: Path, server_in_thread) -> None:  # type: ignore[no-untyped-def]
    base = server_in_thread(reject_token=True)
    out = run_bot({"DISCORD_TOKEN": TOKEN, "NEWSBOT_DISCORD_API_BASE": base + "/api/v10",
                   "NEWSBOT_DISCORD_GATEWAY": base.replace("http", "ws") + "/gateway",
                   "NEWSBOT_LOG_LEVEL": "DEBUG"}, tmp_path=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Discord rejected DISCORD_TOKEN" in out.stderr
    assert TOKEN not in out.stderr + out.stdout
    assert "secret-token-value" not in out.stderr + out.stdout


def test_settings_repr_hides_the_token() -> None:
    s = Settings.from_env({"DISCORD_TOKEN": TOKEN})
    assert TOKEN not in repr(s) and TOKEN not in str(s)


def test_starts_syncs_and_says_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, engine) -> None:  # type: ignore[no-untyped-def]
    """In-process: the test endpoints are used, commands sync to the guild, 'newsbot ready' is logged."""
    from bot.__main__ import run, use_test_endpoints

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    caplog.set_level(logging.INFO)

    async def scenario() -> dict:  # type: ignore[type-arg]
        app, seen = make_app()
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        settings = Settings.from_env({
            "DISCORD_TOKEN": TOKEN, "DISCORD_GUILD_ID": "777",
            "NEWSBOT_DISCORD_API_BASE": base + "/api/v10", "NEWSBOT_DISCORD_GATEWAY": f"ws://127.0.0.1:{port}/gateway",
            "NEWSBOT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "NEWSBOT_CORPUS_DIR": str(tmp_path / "corpus"),
        })
        use_test_endpoints(settings.discord_api_base, settings.discord_gateway)
        assert yarl.URL(settings.discord_gateway) == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        task = asyncio.create_task(run(settings, engine_factory=lambda s: engine))
        try:
            for _ in range(200):
                if "newsbot ready" in caplog.text or task.done():
                    break
                await asyncio.sleep(0.05)
            if task.done() and task.exception():
                raise task.exception()
            assert "newsbot ready" in caplog.text, caplog.text
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()
        return seen

    seen = asyncio.run(scenario())
    assert seen["auth"] == [f"Bot {TOKEN}"]
    assert seen["identify"]["intents"] & discord.Intents(message_content=True).value
    commands = {c["name"]: c for c in seen["commands"]}
    assert set(commands) == {"ask", "sources", "reload", "feeds", "add", "help", "about", "settings",
                             "Check against the news"}
    manage = str(discord.Permissions(manage_guild=True).value)
    for admin in ("reload", "feeds", "add"):  # for server admins, in servers only
        assert str(commands[admin]["default_member_permissions"]) == manage
        assert commands[admin].get("contexts") == [0] or commands[admin].get("dm_permission") is False
    assert {o["name"]: o["type"] for o in commands["feeds"]["options"]} == {"add": 1, "list": 1, "remove": 1}
    remove = next(o for o in commands["feeds"]["options"] if o["name"] == "remove")
    assert remove["options"][0]["name"] == "url" and remove["options"][0]["autocomplete"]
    question = next(o for o in commands["ask"]["options"] if o["name"] == "question")
    assert question["max_length"] == 500 and question["required"]
    source = next(o for o in commands["ask"]["options"] if o["name"] == "source")
    assert source["autocomplete"]
    query = commands["sources"]["options"][0]
    assert query["max_length"] == 40 and not query.get("required")
    assert str(commands["reload"]["default_member_permissions"]) == str(discord.Permissions(manage_guild=True).value)
    assert commands["reload"]["contexts"] == [0]  # guild only
    assert TOKEN not in caplog.text


def test_no_heavy_imports() -> None:
    code = ("import sys, bot.__main__, bot.client, bot.cogs.ask, bot.cogs.sources, bot.cogs.admin; "
            "print([m for m in sys.modules if m.split('.')[0] in ('torch', 'faiss', 'sentence_transformers')"
            " or m == 'index.engine'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


_ = aiohttp  # aiohttp is the stand-in's server library


@pytest.mark.model
def test_missing_index_exits_1_with_a_clear_message(tmp_path: Path, server_in_thread) -> None:  # type: ignore[no-untyped-def]
    base = server_in_thread()
    out = run_bot({"DISCORD_TOKEN": TOKEN, "NEWSBOT_DISCORD_API_BASE": base + "/api/v10",
                   "NEWSBOT_DISCORD_GATEWAY": base.replace("http", "ws") + "/gateway",
                   "NEWSBOT_INDEX_DIR": str(tmp_path / "no-index-here"), "HF_HUB_OFFLINE": "1"}, tmp_path=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "newsbot: " in out.stderr and "no-index-here" in out.stderr
    assert TOKEN not in out.stderr + out.stdout
