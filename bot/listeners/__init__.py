"""Slack listeners, one module per surface; `register` wires them into the Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners.actions import list_pages, task_buttons
from bot.listeners.commands import pm
from bot.listeners.events import assistant, catch_all, home, mentions, messages
from bot.listeners.views import blocked_reason
from bot.runtime import Runtime


def register(app: AsyncApp, runtime: Runtime) -> None:
    mentions.register(app, runtime)
    messages.register(app, runtime)
    assistant.register(app, runtime)
    home.register(app, runtime)
    pm.register(app, runtime)
    task_buttons.register(app, runtime)
    list_pages.register(app, runtime)
    blocked_reason.register(app, runtime)
    # Last: every other event the app receives is acknowledged with 200, never Bolt's 404.
    catch_all.register(app, runtime)
