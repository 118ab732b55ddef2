"""Slack listeners, one module per surface; `register` wires them into the Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners.actions import list_pages, task_buttons
from bot.listeners.commands import pm
from bot.listeners.events import assistant, catch_all, home, mentions, messages
from bot.listeners.views import blocked_reason
from bot.services.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    mentions.register(app, deps)
    messages.register(app, deps)
    assistant.register(app, deps)
    home.register(app, deps)
    pm.register(app, deps)
    task_buttons.register(app, deps)
    list_pages.register(app, deps)
    blocked_reason.register(app, deps)
    # Last: every other event the app receives is acknowledged with 200, never Bolt's 404.
    catch_all.register(app, deps)
