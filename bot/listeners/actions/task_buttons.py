"""The task buttons (Acknowledge, Mark blocked, Mark done, Reopen) on reports, answers and Home."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.core.access import read_refusal
from bot.core.task_rules import MoveRefused, TaskMove
from bot.services.deps import Deps, log
from bot.services.task_moves import (
    MOVE_FOR_ACTION,
    after_move,
    apply_move,
    check_move,
    refresh_report_messages,
    refresh_status_view,
    tell,
)
from bot.slack.blocks.modal import ClickOrigin, build_blocked_modal, build_reopen_modal
from storage.models import Task


def click_origin(body: dict[str, Any]) -> ClickOrigin:
    """Where the click happened: a channel message, an ephemeral answer, or a view (Home)."""
    container = body.get("container") or {}
    if container.get("type") == "view":
        return ClickOrigin()
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return ClickOrigin(
        channel_id=str(channel) if channel else None,
        message_ts=str(container.get("message_ts") or "") or None,
        is_ephemeral=bool(container.get("is_ephemeral")),
        response_url=str(body.get("response_url") or "") or None,
    )


REASON_MODALS: dict[TaskMove, Callable[[Task, ClickOrigin], dict[str, Any]]] = {
    TaskMove.MARK_BLOCKED: build_blocked_modal,
    TaskMove.REOPEN: build_reopen_modal,
}


async def _refused(
    deps: Deps,
    task_id: int,
    user_id: str,
    origin: ClickOrigin,
    respond: AsyncRespond | None,
    text: str,
) -> None:
    """Say why, and redraw what was clicked: a stale card or view shows the task as it is."""
    await tell(deps, user_id=user_id, origin=origin, respond=respond, text=text)
    await refresh_report_messages(deps, task_id=task_id, clicked=origin)
    if origin.is_ephemeral and respond is not None:
        await refresh_status_view(deps, task_id=task_id, user_id=user_id, respond=respond)


def register(app: AsyncApp, deps: Deps, *, wake_worker: Callable[[], None]) -> None:
    async def handle_task_button(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        move = MOVE_FOR_ACTION.get(str(action.get("action_id")))
        value = str(action.get("value") or "")
        user_id = str((body.get("user") or {}).get("id") or "")
        if move is None or not value.isdigit() or not user_id:
            return
        task_id, origin = int(value), click_origin(body)
        responder = respond if origin.response_url else None
        settings = deps.settings
        refusal = read_refusal(
            user_id=user_id,
            channel_id=origin.channel_id,
            allowed_channels=settings.allowed_channels,
            allowed_users=settings.allowed_users,
            coordination_channel=settings.coordination_channel,
        )
        try:
            if refusal is not None:
                raise MoveRefused(refusal)
            if move in REASON_MODALS:
                # The reason comes from a modal; its submission makes the move.
                task = await check_move(
                    sessions=deps.sessions,
                    pm_users=settings.pm_users,
                    task_id=task_id,
                    move=move,
                    user_id=user_id,
                )
                await deps.client.views_open(
                    trigger_id=body["trigger_id"], view=REASON_MODALS[move](task, origin)
                )
                return
            outcome = await apply_move(
                sessions=deps.sessions,
                pm_users=settings.pm_users,
                task_id=task_id,
                move=move,
                user_id=user_id,
                reopen_ts=str(action.get("action_ts") or "") or None,
            )
        except MoveRefused as exc:
            deps.metrics.inc("pmteam_task_moves_total", move=move.value, outcome="refused")
            deps.spawn(
                _refused(deps, task_id, user_id, origin, responder, str(exc)),
                name="pmteam-move-refused",
            )
            return
        except SlackApiError as exc:
            log.warning("could not open the reason modal", error=exc.response.get("error"))
            return
        deps.metrics.inc("pmteam_task_moves_total", move=move.value, outcome="done")
        log.info("task moved", task=outcome.task.ref, move=move.value, user=user_id)
        if outcome.reopened_turn_id is not None:
            wake_worker()
        deps.spawn(
            after_move(deps, outcome=outcome, user_id=user_id, origin=origin, respond=responder),
            name="pmteam-after-move",
        )

    for action_id in MOVE_FOR_ACTION:
        app.action(action_id)(handle_task_button)
