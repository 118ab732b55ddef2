"""The "Make this a pmteam task" message shortcut: a modal asks what to do and where to answer;
its submission makes the task, with the message and its thread as context."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from bot.services.deps import Deps, log
from bot.services.intake import Intake
from bot.services.shortcut_tasks import task_from_message
from bot.slack.blocks.shortcut import (
    TASK_SHORTCUT,
    TASK_SHORTCUT_MODAL,
    WHAT_BLOCK,
    SourceMessage,
    build_task_shortcut_modal,
    submitted_task,
)


def register(app: AsyncApp, deps: Deps, *, intake: Intake) -> None:
    async def open_modal(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        message = SourceMessage.from_payload(body)
        if message is None:
            log.warning("a message shortcut without its message")
            return
        try:
            await deps.client.views_open(
                trigger_id=str(body.get("trigger_id") or ""),
                view=build_task_shortcut_modal(message),
            )
        except SlackApiError as exc:
            log.warning("could not open the task modal", error=exc.response.get("error"))

    async def submit(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        message = SourceMessage.from_metadata(str(view.get("private_metadata") or ""))
        user_id = str((body.get("user") or {}).get("id") or "")
        if message is None or not user_id:
            await ack()
            return
        what, where = submitted_task(view)
        if not what:
            await ack(
                response_action="errors",
                errors={WHAT_BLOCK: "Say what you'd like me to do with this message."},
            )
            return
        await ack()
        team_id = str((body.get("team") or {}).get("id") or deps.identity.team_id)
        deps.spawn(
            task_from_message(
                deps,
                intake,
                team_id=team_id,
                user_id=user_id,
                message=message,
                what=what,
                where=where,
            ),
            name="pmteam-task-from-message",
        )

    app.shortcut(TASK_SHORTCUT)(open_modal)
    app.view(TASK_SHORTCUT_MODAL)(submit)
