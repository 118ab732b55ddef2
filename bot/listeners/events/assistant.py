"""The assistant surface: greet a new assistant thread with suggested prompts."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.services.deps import Deps, log

SUGGESTED_PROMPTS = [
    {
        "title": "Design an API",
        "message": "Design a paginated REST API for orders, with filtering and versioning.",
    },
    {
        "title": "Review a schema",
        "message": "Review this PostgreSQL schema for indexing and integrity problems.",
    },
    {
        "title": "Plan a queue",
        "message": "How should we build a durable job queue on PostgreSQL?",
    },
]


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_assistant_thread_started(body: dict[str, Any]) -> None:
        thread = (body.get("event") or {}).get("assistant_thread") or {}
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if channel and thread_ts:
            deps.spawn(_greet(deps, channel, thread_ts), name="pmteam-assistant-greet")

    async def handle_assistant_thread_context_changed(body: dict[str, Any]) -> None:
        return None  # the context (which channel the user is viewing) isn't used yet

    app.event("assistant_thread_started")(handle_assistant_thread_started)
    app.event("assistant_thread_context_changed")(handle_assistant_thread_context_changed)


async def _greet(deps: Deps, channel: str, thread_ts: str) -> None:
    try:
        await deps.client.assistant_threads_setSuggestedPrompts(
            channel_id=channel,
            thread_ts=thread_ts,
            title="What backend work can I take on?",
            prompts=SUGGESTED_PROMPTS,
        )
    except SlackApiError as exc:
        log.warning("could not set suggested prompts", error=exc.response.get("error"))
