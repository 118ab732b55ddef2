"""Builders for the payloads Slack sends an app: Events API envelopes, commands, interactions."""

from __future__ import annotations

import time
from typing import Any

from sandbox.slack.wire import event_context
from sandbox.slack.workspace import Channel, Message, SandboxError, Workspace

JSON = dict[str, Any]

DEFAULT_SUBSCRIPTIONS = frozenset(
    {
        "app_mention",
        "message.im",
        "app_home_opened",
        "assistant_thread_started",
        "assistant_thread_context_changed",
    }
)


def message_subscription(channel: Channel) -> str:
    return {"im": "message.im", "group": "message.groups", "channel": "message.channels"}[
        channel.channel_type
    ]


def event_callback(
    workspace: Workspace,
    event: JSON,
    *,
    event_id: str,
    verification_token: str,
    event_time: int | None = None,
) -> JSON:
    """The `event_callback` envelope, as posted to the request URL or wrapped for Socket Mode."""
    team, bot = workspace.team, workspace.bot_user
    channel = event.get("channel")
    if not isinstance(channel, str):
        channel = None
    assert bot.app_id is not None
    return {
        "token": verification_token,
        "team_id": team.id,
        "context_team_id": team.id,
        "context_enterprise_id": None,
        "api_app_id": bot.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team.id,
                "user_id": bot.id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": event_context(str(event.get("type")), team.id, bot.app_id, channel),
    }


def message_event(workspace: Workspace, message: Message) -> JSON:
    """A `message` event for a newly posted message (channel_type says where it was posted)."""
    channel = workspace.channel(message.channel)
    event = message.to_api(workspace.team.id, include_metadata=False)
    event["channel"] = channel.id
    event["event_ts"] = message.ts
    event["channel_type"] = channel.channel_type
    return event


def app_mention_event(workspace: Workspace, message: Message) -> JSON:
    event = message.to_api(workspace.team.id, include_metadata=False)
    event["type"] = "app_mention"
    # A mention that shares files arrives with them, but without the message's subtype.
    if event.get("subtype") == "file_share":
        del event["subtype"]
    event["channel"] = message.channel
    event["event_ts"] = message.ts
    return event


def message_changed_event(
    workspace: Workspace, message: Message, previous: JSON, *, event_ts: str
) -> JSON:
    channel = workspace.channel(message.channel)
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": message.to_api(workspace.team.id, include_metadata=False),
        "previous_message": previous,
        "channel": channel.id,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def message_deleted_event(
    workspace: Workspace, channel: Channel, previous: JSON, *, event_ts: str
) -> JSON:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": previous,
        "channel": channel.id,
        "hidden": True,
        "deleted_ts": previous["ts"],
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def slash_command_form(
    workspace: Workspace,
    *,
    user_id: str,
    channel: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
    verification_token: str,
) -> dict[str, str]:
    """The form fields of a slash command request, in Slack's order."""
    user = workspace.user(user_id)
    assert workspace.bot_user.app_id is not None
    return {
        "token": verification_token,
        "team_id": workspace.team.id,
        "team_domain": workspace.team.domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": workspace.bot_user.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def user_ref(workspace: Workspace, user_id: str) -> JSON:
    user = workspace.user(user_id)
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": workspace.team.id}


def block_actions_payload(
    workspace: Workspace,
    *,
    user_id: str,
    container: JSON,
    action: JSON,
    trigger_id: str,
    verification_token: str,
    response_url: str | None = None,
    channel: Channel | None = None,
    message: Message | None = None,
    view: JSON | None = None,
) -> JSON:
    """A `block_actions` interaction payload for one clicked element."""
    payload: JSON = {
        "type": "block_actions",
        "user": user_ref(workspace, user_id),
        "api_app_id": workspace.bot_user.app_id,
        "token": verification_token,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": workspace.team.id, "domain": workspace.team.domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if channel is not None:
        payload["channel"] = {
            "id": channel.id,
            "name": "directmessage" if channel.is_im else channel.name,
        }
    if message is not None:
        payload["message"] = message.to_api(workspace.team.id)
    if view is not None:
        payload["view"] = view
    payload["state"] = {"values": {}}
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def action_from_element(
    element: JSON, *, block_id: str, value: str | None, selected_option: JSON | None = None
) -> JSON:
    """The `actions[0]` entry Slack reports for a clicked element (or a chosen select option).

    For `feedback_buttons`, `value` picks the side clicked: it must be the value of the
    positive or the negative button; without one the click is refused (SandboxError).
    """
    action: JSON = {
        "action_id": element.get("action_id"),
        "block_id": block_id,
        "type": element.get("type"),
        "action_ts": f"{time.time():.6f}",
    }
    if element.get("type") == "feedback_buttons":
        if selected_option is not None:
            raise SandboxError("feedback_buttons have no options to choose")
        action["value"] = feedback_value(element, value)
        return action
    if selected_option is not None:
        # A select reports the option chosen, never a `value` of its own.
        action["selected_option"] = selected_option
        if "placeholder" in element:
            action["placeholder"] = element["placeholder"]
        return action
    if "text" in element:
        action["text"] = element["text"]
    chosen = value if value is not None else element.get("value")
    if chosen is not None:
        action["value"] = chosen
    if "style" in element:
        action["style"] = element["style"]
    return action


def feedback_value(element: JSON, value: str | None) -> str:
    """The value of the side of a feedback_buttons element that `value` names."""
    sides = [element.get("positive_button"), element.get("negative_button")]
    choices = [s["value"] for s in sides if isinstance(s, dict) and isinstance(s.get("value"), str)]
    if value is None:
        raise SandboxError(
            f"clicking feedback_buttons {element.get('action_id')!r} needs the value of the "
            f"button clicked: one of {choices}"
        )
    if value not in choices:
        raise SandboxError(
            f"feedback_buttons {element.get('action_id')!r} has no button with value "
            f"{value!r}: one of {choices}"
        )
    return value
