"""The reason modals ("Mark blocked", "Reopen"): a submission makes the move with its reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core.task_rules import MoveRefused, TaskMove
from bot.services.deps import Deps, log
from bot.services.task_moves import after_move, apply_move
from bot.slack.blocks.modal import (
    BLOCKED_MODAL,
    REASON_BLOCK,
    REASON_INPUT,
    REOPEN_MODAL,
    decode_modal_origin,
)

MOVE_FOR_MODAL = {BLOCKED_MODAL: TaskMove.MARK_BLOCKED, REOPEN_MODAL: TaskMove.REOPEN}
MISSING_REASON = {
    TaskMove.MARK_BLOCKED: "Say what it's blocked on.",
    TaskMove.REOPEN: "Say what is missing, so the engineer knows what to do next.",
}


def submitted_reason(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}
    return str((values.get(REASON_INPUT) or {}).get("value") or "").strip()


def register(app: AsyncApp, deps: Deps, *, wake_worker: Callable[[], None]) -> None:
    async def handle_reason(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        move = MOVE_FOR_MODAL.get(str(view.get("callback_id") or ""))
        decoded = decode_modal_origin(str(view.get("private_metadata") or ""))
        user_id = str((body.get("user") or {}).get("id") or "")
        if move is None or decoded is None or not user_id:
            await ack()
            return
        task_id, origin = decoded
        reason = submitted_reason(view)
        if not reason:
            await ack(response_action="errors", errors={REASON_BLOCK: MISSING_REASON[move]})
            return
        try:
            outcome = await apply_move(
                sessions=deps.sessions,
                pm_users=deps.settings.pm_users,
                task_id=task_id,
                move=move,
                user_id=user_id,
                reason=reason,
            )
        except MoveRefused as exc:
            # Someone moved the task while the modal was open: say so in the modal.
            deps.metrics.inc("pmteam_task_moves_total", move=move.value, outcome="refused")
            await ack(response_action="errors", errors={REASON_BLOCK: str(exc)})
            return
        await ack()
        deps.metrics.inc("pmteam_task_moves_total", move=move.value, outcome="done")
        log.info("task moved", task=outcome.task.ref, move=move.value, user=user_id)
        if outcome.reopened_turn_id is not None:
            wake_worker()
        respond = AsyncRespond(response_url=origin.response_url) if origin.response_url else None
        deps.spawn(
            after_move(deps, outcome=outcome, user_id=user_id, origin=origin, respond=respond),
            name="pmteam-after-move",
        )

    for callback_id in MOVE_FOR_MODAL:
        app.view(callback_id)(handle_reason)
