"""The handoff modals: Decline (with its reason) and Assign (with the new owner)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.core.handoff_rules import HandoffRefused
from bot.services.deps import Deps, log
from bot.services.handoffs import after_change, assign, decide
from bot.slack.blocks.handoffs import (
    ASSIGN_BLOCK,
    ASSIGN_INPUT,
    ASSIGN_MODAL,
    DECLINE_BLOCK,
    DECLINE_INPUT,
    DECLINE_MODAL,
    decode_handoff_metadata,
)
from storage.models import HandoffStatus


def _value(view: dict[str, Any], block: str, action: str) -> dict[str, Any]:
    values = ((view.get("state") or {}).get("values") or {}).get(block) or {}
    found = values.get(action) or {}
    return found if isinstance(found, dict) else {}


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_decline(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        decoded = decode_handoff_metadata(str(view.get("private_metadata") or ""))
        user_id = str((body.get("user") or {}).get("id") or "")
        if decoded is None or not user_id:
            await ack()
            return
        reason = str(_value(view, DECLINE_BLOCK, DECLINE_INPUT).get("value") or "").strip()
        if not reason:
            await ack(response_action="errors", errors={DECLINE_BLOCK: "Say why, so they know."})
            return
        try:
            change = await decide(
                deps,
                handoff_id=decoded[0],
                user_id=user_id,
                status=HandoffStatus.DECLINED,
                reason=reason,
            )
        except HandoffRefused as exc:
            await ack(response_action="errors", errors={DECLINE_BLOCK: str(exc)})
            return
        await ack()
        deps.metrics.inc("pmteam_handoffs_total", event="declined")
        log.info("handoff declined", handoff=decoded[0], task=change.task.ref, user=user_id)
        deps.spawn(after_change(deps, change), name="pmteam-handoff-changed")

    async def handle_assign(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        decoded = decode_handoff_metadata(str(view.get("private_metadata") or ""))
        user_id = str((body.get("user") or {}).get("id") or "")
        if decoded is None or not user_id:
            await ack()
            return
        owner = str(_value(view, ASSIGN_BLOCK, ASSIGN_INPUT).get("selected_user") or "")
        if not owner:
            await ack(response_action="errors", errors={ASSIGN_BLOCK: "Choose a person."})
            return
        try:
            change = await assign(deps, handoff_id=decoded[0], user_id=user_id, owner_id=owner)
        except HandoffRefused as exc:
            await ack(response_action="errors", errors={ASSIGN_BLOCK: str(exc)})
            return
        await ack()
        deps.metrics.inc("pmteam_handoffs_total", event="assigned")
        log.info("handoff assigned", handoff=decoded[0], task=change.task.ref, owner=owner)
        deps.spawn(after_change(deps, change), name="pmteam-handoff-changed")

    app.view(DECLINE_MODAL)(handle_decline)
    app.view(ASSIGN_MODAL)(handle_assign)
