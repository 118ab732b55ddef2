"""Approve / Deny on a team tool call that writes: only its requester may answer."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.listeners.actions.task_buttons import click_origin
from bot.services.deps import Deps
from bot.services.task_moves import tell
from bot.services.tool_calls import answer_tool_call
from bot.slack.blocks.tools import ACTION_TOOL_APPROVE, ACTION_TOOL_DENY


def register(app: AsyncApp, deps: Deps) -> None:
    async def answer(body: dict[str, Any], respond: AsyncRespond, *, approved: bool) -> None:
        action = (body.get("actions") or [{}])[0]
        user_id = str((body.get("user") or {}).get("id") or "")
        value = str(action.get("value") or "")
        if not value.isdigit() or not user_id:
            return
        origin = click_origin(body)
        refused = await answer_tool_call(
            deps,
            call_id=int(value),
            user_id=user_id,
            approved=approved,
            channel=origin.channel_id,
            ts=origin.message_ts,
        )
        if refused is not None:
            responder = respond if origin.response_url else None
            await tell(deps, user_id=user_id, origin=origin, respond=responder, text=refused.text)

    async def handle_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        deps.spawn(answer(body, respond, approved=True), name="pmteam-tool-approve")

    async def handle_deny(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        deps.spawn(answer(body, respond, approved=False), name="pmteam-tool-deny")

    app.action(ACTION_TOOL_APPROVE)(handle_approve)
    app.action(ACTION_TOOL_DENY)(handle_deny)
