"""Slack listeners, one module per surface; `register` wires them into the Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners.events import assistant, catch_all, mentions, messages
from bot.runtime import Runtime


def register(app: AsyncApp, runtime: Runtime) -> None:
    mentions.register(app, runtime)
    messages.register(app, runtime)
    assistant.register(app, runtime)
    # Last: every other event the app receives is acknowledged with 200, never Bolt's 404.
    catch_all.register(app, runtime)
