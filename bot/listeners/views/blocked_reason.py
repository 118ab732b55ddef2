"""The "Mark blocked" modal: its submission blocks the task with the reason given."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core.task_rules import MoveRefused, TaskMove
from bot.services.deps import Deps, log
from bot.services.task_moves import after_move, apply_move
from bot.slack.blocks.modal import BLOCKED_MODAL, REASON_BLOCK, REASON_INPUT, decode_modal_origin


def submitted_reason(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}
    return str((values.get(REASON_INPUT) or {}).get("value") or "").strip()


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_blocked_reason(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        decoded = decode_modal_origin(str(view.get("private_metadata") or ""))
        user_id = str((body.get("user") or {}).get("id") or "")
        if decoded is None or not user_id:
            await ack()
            return
        task_id, origin = decoded
        reason = submitted_reason(view)
        if not reason:
            await ack(response_action="errors", errors={REASON_BLOCK: "Say what it's blocked on."})
            return
        try:
            outcome = await apply_move(
                sessions=deps.sessions,
                pm_users=deps.settings.pm_users,
                task_id=task_id,
                move=TaskMove.MARK_BLOCKED,
                user_id=user_id,
                reason=reason,
            )
        except MoveRefused as exc:
            # Someone moved the task while the modal was open: say so in the modal.
            deps.metrics.inc("pmteam_task_moves_total", move="mark_blocked", outcome="refused")
            await ack(response_action="errors", errors={REASON_BLOCK: str(exc)})
            return
        await ack()
        deps.metrics.inc("pmteam_task_moves_total", move="mark_blocked", outcome="done")
        log.info("task moved", task=outcome.task.ref, move="mark_blocked", user=user_id)
        respond = AsyncRespond(response_url=origin.response_url) if origin.response_url else None
        deps.spawn(
            after_move(deps, outcome=outcome, user_id=user_id, origin=origin, respond=respond),
            name="pmteam-after-move",
        )

    app.view(BLOCKED_MODAL)(handle_blocked_reason)
