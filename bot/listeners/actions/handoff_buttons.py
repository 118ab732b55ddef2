"""The handoff buttons: Done and Decline in an owner's DM, Assign on the card, Resume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.core.handoff_rules import HandoffRefused, assign_refusal, decide_refusal
from bot.listeners.actions.task_buttons import click_origin
from bot.services.deps import Deps, log
from bot.services.handoffs import after_change, decide, load_handoff, resume, said_resumed
from bot.services.task_moves import tell
from bot.slack.blocks.handoffs import (
    ACTION_HANDOFF_ASSIGN,
    ACTION_HANDOFF_DECLINE,
    ACTION_HANDOFF_DONE,
    ACTION_HANDOFFS_RESUME,
    build_assign_modal,
    build_decline_modal,
)
from storage.models import HandoffStatus


def _clicked(body: dict[str, Any]) -> tuple[str, str, str]:
    action = (body.get("actions") or [{}])[0]
    user_id = str((body.get("user") or {}).get("id") or "")
    return str(action.get("value") or ""), user_id, str(action.get("action_ts") or "")


def register(app: AsyncApp, deps: Deps, *, wake_worker: Callable[[], None]) -> None:
    async def refuse(body: dict[str, Any], respond: AsyncRespond, user_id: str, text: str) -> None:
        origin = click_origin(body)
        responder = respond if origin.response_url else None
        await tell(deps, user_id=user_id, origin=origin, respond=responder, text=text)

    async def handle_done(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        value, user_id, _ = _clicked(body)
        if not value.isdigit() or not user_id:
            return
        try:
            change = await decide(
                deps, handoff_id=int(value), user_id=user_id, status=HandoffStatus.DONE
            )
        except HandoffRefused as exc:
            deps.spawn(refuse(body, respond, user_id, str(exc)), name="pmteam-handoff-refused")
            return
        deps.metrics.inc("pmteam_handoffs_total", event="done")
        log.info("handoff done", handoff=value, task=change.task.ref, user=user_id)
        deps.spawn(after_change(deps, change), name="pmteam-handoff-changed")

    async def handle_decline(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        value, user_id, _ = _clicked(body)
        if not value.isdigit() or not user_id:
            return
        found = await load_handoff(deps, handoff_id=int(value))
        refusal = (
            "That handoff no longer exists."
            if found is None
            else decide_refusal(handoff=found[0], user_id=user_id, pm_users=deps.settings.pm_users)
        )
        if refusal is not None or found is None:
            deps.spawn(refuse(body, respond, user_id, refusal or ""), name="pmteam-handoff-refused")
            return
        try:
            await deps.client.views_open(
                trigger_id=body["trigger_id"], view=build_decline_modal(found[0], found[1], {})
            )
        except SlackApiError as exc:
            log.warning("could not open the decline modal", error=exc.response.get("error"))

    async def handle_assign(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        value, user_id, _ = _clicked(body)
        if not value.isdigit() or not user_id:
            return
        found = await load_handoff(deps, handoff_id=int(value))
        refusal = (
            "That handoff no longer exists."
            if found is None
            else assign_refusal(handoff=found[0], user_id=user_id, pm_users=deps.settings.pm_users)
        )
        if refusal is not None or found is None:
            deps.spawn(refuse(body, respond, user_id, refusal or ""), name="pmteam-handoff-refused")
            return
        try:
            await deps.client.views_open(
                trigger_id=body["trigger_id"], view=build_assign_modal(found[0], found[1])
            )
        except SlackApiError as exc:
            log.warning("could not open the assign modal", error=exc.response.get("error"))

    async def handle_resume(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        value, user_id, action_ts = _clicked(body)
        if not value.isdigit() or not user_id:
            return
        try:
            resumed = await resume(
                deps, task_id=int(value), user_id=user_id, message_ts=action_ts or None
            )
        except HandoffRefused as exc:
            deps.spawn(refuse(body, respond, user_id, str(exc)), name="pmteam-handoff-refused")
            return
        log.info("task resumed after its handoffs", task=resumed.task.ref, user=user_id)
        wake_worker()
        origin = click_origin(body)
        deps.spawn(
            said_resumed(
                deps, resumed, user_id=user_id, channel=origin.channel_id, ts=origin.message_ts
            ),
            name="pmteam-resumed",
        )

    app.action(ACTION_HANDOFF_DONE)(handle_done)
    app.action(ACTION_HANDOFF_DECLINE)(handle_decline)
    app.action(ACTION_HANDOFF_ASSIGN)(handle_assign)
    app.action(ACTION_HANDOFFS_RESUME)(handle_resume)
