"""A task made from an existing message ("Make this a pmteam task")."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from bot.core.access import task_refusal
from bot.core.storable import storable
from bot.services.deps import Deps, log
from bot.services.intake import Intake
from bot.slack.blocks.shortcut import IN_THREAD, SourceMessage
from bot.slack.client import slack_error
from bot.slack.events import is_private_channel, stored_text
from storage.intake import IntakeMessage


def request_text(what: str, message: SourceMessage) -> str:
    """The task's request: what the person asked, then the message it is about, quoted."""
    quoted = "\n".join(f"> {line}" for line in message.text.splitlines()) or "> (no text)"
    who = f"<@{message.author}>" if message.author.startswith(("U", "W")) else "a bot"
    return f"{what}\n\nThe message this is about, from {who}:\n{quoted}"


async def task_from_message(
    deps: Deps,
    intake: Intake,
    *,
    team_id: str,
    user_id: str,
    message: SourceMessage,
    what: str,
    where: str,
) -> None:
    """Say in the channel that pmteam took the message on, then queue the task on that line:
    in the message's thread (whose messages the engineer then reads as context), or in a new
    thread of the channel. Problems are told to the person in a DM."""
    settings = deps.settings
    refusal = task_refusal(
        user_id=user_id,
        channel_id=message.channel_id,
        source="shortcut",
        allowed_channels=settings.allowed_channels,
        allowed_users=settings.allowed_users,
    )
    if refusal is not None:
        await _tell(deps, user_id, refusal)
        return
    thread_ts = (message.thread_ts or message.ts) if where == IN_THREAD else None
    said = f":inbox_tray: <@{user_id}> asked me to take this on: {what}"
    try:
        posted = await deps.client.chat_postMessage(
            channel=message.channel_id, thread_ts=thread_ts, text=said, unfurl_links=False
        )
    except SlackApiError as exc:
        error = slack_error(exc)
        log.warning("could not start a task from a message", error=error)
        fix = (
            f" Invite me to <#{message.channel_id}> first (`/invite @pmteam`), then try again."
            if error in ("not_in_channel", "channel_not_found")
            else " Try again in a moment."
        )
        await _tell(deps, user_id, f"I couldn't start that task ({error}).{fix}")
        return
    anchor = str(posted["ts"])
    await intake.take(
        IntakeMessage(
            team_id=team_id,
            channel_id=message.channel_id,
            thread_ts=thread_ts or anchor,
            message_ts=anchor,
            user_id=user_id,
            text=request_text(storable(what).text, _decoded(message)),
            source="shortcut",
            private=is_private_channel(message.channel_id),
        )
    )


def _decoded(message: SourceMessage) -> SourceMessage:
    return SourceMessage(
        channel_id=message.channel_id,
        ts=message.ts,
        thread_ts=message.thread_ts,
        author=message.author,
        text=stored_text(message.text, ts=message.ts),
    )


async def _tell(deps: Deps, user_id: str, text: str) -> None:
    try:
        await deps.client.chat_postMessage(channel=user_id, text=text)
    except SlackApiError as exc:
        log.warning("could not tell the person", error=slack_error(exc))
