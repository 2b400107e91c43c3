"""Sending rendered payloads, and the apology that replaces silence when something breaks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from .render import Payload, fit_payload

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()

APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again in a moment."


def message_kwargs(payload: Payload) -> dict[str, Any]:
    """Keyword arguments for ``send`` / ``reply`` / ``followup.send`` / ``edit_message``."""
    payload = fit_payload(payload)
    return {
        "content": payload.content or None,
        "embeds": [discord.Embed.from_dict(e) for e in payload.embeds],
        "allowed_mentions": NO_MENTIONS,
    }


async def respond(
    interaction: discord.Interaction,
    payload: Payload,
    *,
    ephemeral: bool = False,
    view: discord.ui.View | None = None,
) -> None:
    """Reply to an interaction, whether or not it has been responded to (or deferred) yet."""
    kwargs = message_kwargs(payload)
    if view is not None:
        kwargs["view"] = view
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=ephemeral, **kwargs)
    else:
        await interaction.response.send_message(ephemeral=ephemeral, **kwargs)


async def apologise(interaction: discord.Interaction, text: str = APOLOGY) -> None:
    """Tell the user something went wrong; never raises (it runs inside error handlers)."""
    try:
        await respond(interaction, Payload(content=text), ephemeral=True)
    except discord.HTTPException as e:  # the interaction may have expired; the log has the rest
        log.warning("could not send the apology for interaction %s: %s", interaction.id, e)


async def guarded(interaction: discord.Interaction, action: Callable[[], Awaitable[object]]) -> None:
    """Run a component callback; on any error log the traceback and apologise.

    discord.py only logs errors raised by ``DynamicItem`` callbacks, so this is their edge.
    """
    try:
        await action()
    except Exception:  # the edge: every error becomes a logged traceback and an apology
        log.exception("error handling component %s", (interaction.data or {}).get("custom_id"))
        await apologise(interaction)
