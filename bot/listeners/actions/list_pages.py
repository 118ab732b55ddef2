"""The "Next page" button under a `/pm list` answer."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core.access import read_refusal
from bot.services.deps import Deps, log
from bot.services.status import task_page
from bot.slack.blocks.common import plain_fallback
from bot.slack.blocks.pm import (
    ACTION_LIST_NEXT,
    build_notice_blocks,
    build_task_list_blocks,
    decode_page,
)
from storage.queries import TaskFilter


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_list_next(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        decoded = decode_page(str(action.get("value") or ""))
        if decoded is None or not body.get("response_url"):
            return
        task_filter, before_id = decoded
        _, _, number = str(action.get("block_id") or "").partition(":")
        page = int(number) if number.isdigit() else 2
        user_id = str((body.get("user") or {}).get("id") or "")
        channel_id = (body.get("container") or {}).get("channel_id")
        refusal = read_refusal(
            user_id=user_id,
            channel_id=channel_id,
            allowed_channels=deps.settings.allowed_channels,
            allowed_users=deps.settings.allowed_users,
            coordination_channel=deps.settings.coordination_channel,
        )
        deps.spawn(
            _show_page(deps, respond, task_filter, before_id, page, refusal, viewer=user_id),
            name="pmteam-list-page",
        )

    app.action(ACTION_LIST_NEXT)(handle_list_next)


async def _show_page(
    deps: Deps,
    respond: AsyncRespond,
    task_filter: TaskFilter,
    before_id: int,
    page: int,
    refusal: str | None,
    *,
    viewer: str,
) -> None:
    if refusal is not None:
        blocks = build_notice_blocks(refusal)
    else:
        found = await task_page(
            sessions=deps.sessions,
            task_filter=task_filter,
            before_id=before_id,
            reader=await deps.reader(viewer),
        )
        blocks = build_task_list_blocks(
            task_filter, found.tasks, next_before_id=found.next_before_id, page=page
        )
    try:
        await respond(text=plain_fallback(blocks), blocks=blocks, replace_original=True)
    except Exception:
        log.warning("could not show the next page of a /pm list")
