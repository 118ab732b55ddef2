"""The buttons under an answer (Details, Share with PM, 👍/👎) and Stop on a running one."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.listeners.actions.task_buttons import click_origin
from bot.services.answers import (
    Refused,
    rate_answer,
    refresh_summary,
    share_with_pm,
    stop_turn,
    turn_details,
)
from bot.services.deps import Deps, log
from bot.services.task_moves import tell
from bot.slack.blocks.report import (
    ACTION_DETAILS,
    ACTION_FEEDBACK,
    ACTION_SHARE,
    ACTION_STOP,
)
from storage.models import Rating


def _action(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    action = (body.get("actions") or [{}])[0]
    return action, str((body.get("user") or {}).get("id") or "")


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def register(app: AsyncApp, deps: Deps) -> None:
    async def say(body: dict[str, Any], respond: AsyncRespond, user_id: str, text: str) -> None:
        origin = click_origin(body)
        responder = respond if origin.response_url else None
        await tell(deps, user_id=user_id, origin=origin, respond=responder, text=text)

    async def handle_details(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action, user_id = _action(body)
        turn_id = _number(str(action.get("value") or ""))
        if turn_id is None or not user_id:
            return
        view = await turn_details(deps, turn_id=turn_id, user_id=user_id)
        if isinstance(view, Refused):
            await say(body, respond, user_id, view.text)
            return
        try:
            await deps.client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("could not open the details modal", error=exc.response.get("error"))

    async def handle_share(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action, user_id = _action(body)
        task_id = _number(str(action.get("value") or ""))
        if task_id is None or not user_id:
            return

        async def share() -> None:
            await say(
                body, respond, user_id, await share_with_pm(deps, task_id=task_id, user_id=user_id)
            )
            origin = click_origin(body)
            _, _, turn = str(action.get("block_id") or "").partition(":")
            if origin.channel_id and origin.message_ts and turn.isdigit():
                await refresh_summary(
                    deps, turn_id=int(turn), channel=origin.channel_id, ts=origin.message_ts
                )

        deps.spawn(share(), name="pmteam-share")

    async def handle_feedback(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action, user_id = _action(body)
        _, _, turn = str(action.get("block_id") or "").partition(":")
        value = str(action.get("value") or "")
        turn_id = _number(turn)
        if turn_id is None or not user_id or value not in (Rating.GOOD, Rating.BAD):
            return
        said = await rate_answer(deps, turn_id=turn_id, user_id=user_id, rating=Rating(value))
        deps.spawn(say(body, respond, user_id, said), name="pmteam-feedback")

    async def handle_stop(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action, user_id = _action(body)
        turn_id = _number(str(action.get("value") or ""))
        if turn_id is None or not user_id:
            return
        refused = await stop_turn(deps, turn_id=turn_id, user_id=user_id)
        if refused is not None:
            deps.spawn(say(body, respond, user_id, refused.text), name="pmteam-stop-refused")

    app.action(ACTION_DETAILS)(handle_details)
    app.action(ACTION_SHARE)(handle_share)
    app.action(ACTION_FEEDBACK)(handle_feedback)
    app.action(ACTION_STOP)(handle_stop)
