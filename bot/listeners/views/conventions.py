"""The channel-conventions modal: a submission saves the channel's standing context."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.services.deps import Deps, log
from bot.slack.blocks.conventions import CONVENTIONS_MODAL, submitted_conventions
from storage.conventions import set_channel_conventions


def register(app: AsyncApp, deps: Deps) -> None:
    async def handle_conventions(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        channel_id = str(view.get("private_metadata") or "")
        user_id = str((body.get("user") or {}).get("id") or "")
        team_id = str((body.get("team") or {}).get("id") or deps.identity.team_id)
        if not channel_id or not user_id:
            await ack()
            return
        text = submitted_conventions(view)
        async with deps.sessions.begin() as session:
            await set_channel_conventions(
                session=session, team_id=team_id, channel_id=channel_id, text=text, user_id=user_id
            )
        await ack()
        log.info("channel conventions saved", channel=channel_id, user=user_id, chars=len(text))
        said = (
            f":memo: <@{user_id}> updated the conventions of this channel; the engineer gets "
            "them with every task asked here (`/pm conventions` shows them)."
            if text
            else f":memo: <@{user_id}> removed the conventions of this channel."
        )
        deps.spawn(_tell(deps, channel_id, user_id, said), name="pmteam-conventions-saved")

    app.view(CONVENTIONS_MODAL)(handle_conventions)


async def _tell(deps: Deps, channel_id: str, user_id: str, text: str) -> None:
    try:
        await deps.client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
    except Exception as exc:  # the save stands; the confirmation is a courtesy
        log.warning("could not confirm the conventions", error=type(exc).__name__)
