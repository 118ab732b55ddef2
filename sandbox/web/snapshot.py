"""What the sandbox page shows, as JSON: channels, messages, threads, ephemerals, views."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.slack.workspace import (
    AssistantThread,
    Channel,
    Ephemeral,
    Message,
    User,
    Workspace,
)

JSON = dict[str, Any]

SLACKBOT = {"id": "USLACKBOT", "name": "Slackbot", "is_bot": True}

# `@name` typed in the composer; a name may hold dots, dashes and underscores, as Slack's do.
_AT_NAME = re.compile(r"(?<![\w<])@([a-z0-9][a-z0-9._-]*)", re.IGNORECASE)
# `#name` typed in a slash command; Slack sends a known channel as `<#C…|name>`.
_HASH_NAME = re.compile(r"(?<![\w<&])#([a-z0-9][a-z0-9._-]*)", re.IGNORECASE)
_SPECIAL = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}
# The empty root message Slack creates for each assistant thread.
ASSISTANT_ROOT = "assistant_app_thread"


@dataclass
class Notice:
    """Something Slack itself tells one person (e.g. a command that failed), never the app."""

    channel: str
    user: str
    ts: str
    text: str
    thread_ts: str | None = None


def compose_text(workspace: Workspace, typed: str) -> str:
    """What Slack's client sends for typed text: &, < and > escaped, `@name` as `<@U…>`."""
    return _mentions(workspace, _escape(typed), labelled=False)


def command_text(workspace: Workspace, typed: str) -> str:
    """A slash command's text as Slack sends it for a command with `should_escape: true`:
    `@name` as `<@U…|name>` and `#channel` as `<#C…|channel>`."""
    by_name = {c.name.lower(): c for c in workspace.channels.values() if not c.is_im}

    def channel(match: re.Match[str]) -> str:
        name = match.group(1).rstrip("._-")
        rest = match.group(1)[len(name) :]
        found = by_name.get(name.lower())
        return f"<#{found.id}|{found.name}>{rest}" if found else match.group(0)

    return _HASH_NAME.sub(channel, _mentions(workspace, _escape(typed), labelled=True))


def _escape(typed: str) -> str:
    return typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mentions(workspace: Workspace, text: str, *, labelled: bool) -> str:
    by_name = {u.name.lower(): u for u in workspace.users.values()}

    def mention(match: re.Match[str]) -> str:
        name = match.group(1).rstrip("._-")
        rest = match.group(1)[len(name) :]
        key = name.lower()
        if key in by_name:
            user = by_name[key]
            return (f"<@{user.id}|{user.name}>" if labelled else f"<@{user.id}>") + rest
        if key in _SPECIAL:
            return _SPECIAL[key] + rest
        return match.group(0)

    return _AT_NAME.sub(mention, text)


def split_command(typed: str) -> tuple[str, str] | None:
    """`/pm status T-4` → ("/pm", "status T-4"); None when the text is not a command."""
    stripped = typed.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    command, _, rest = stripped.partition(" ")
    return command.lower(), rest.strip()


def person_json(user: User) -> JSON:
    return {"id": user.id, "name": user.name, "real_name": user.real_name, "title": user.title}


def author_json(workspace: Workspace, user_id: str | None) -> JSON:
    if user_id is None or user_id not in workspace.users:
        return {"id": user_id or "", "name": user_id or "unknown", "is_bot": False}
    user = workspace.users[user_id]
    return {"id": user.id, "name": user.real_name or user.name, "is_bot": user.is_bot}


def message_json(workspace: Workspace, message: Message) -> JSON:
    data: JSON = {
        "ts": message.ts,
        "thread_ts": message.thread_ts,
        "author": author_json(workspace, message.user),
        "text": message.text,
        "blocks": message.blocks,
        "attachments": message.attachments,
        "subtype": message.subtype,
        "reply_count": message.reply_count,
        "reply_users": list(message.reply_users),
        "latest_reply": message.latest_reply,
        "reactions": [
            {"name": name, "count": len(users), "users": list(users)}
            for name, users in message.reactions.items()
            if users
        ],
        "edited": message.edited is not None,
        "ephemeral": False,
        # A streamed message's text is markdown; it grows until the app stops the stream.
        "stream": None if message.stream is None else message.stream.state,
    }
    return data


def ephemeral_json(workspace: Workspace, ephemeral: Ephemeral) -> JSON:
    return {
        "ts": ephemeral.ts,
        "thread_ts": ephemeral.thread_ts,
        "author": author_json(workspace, workspace.bot_user.id),
        "text": ephemeral.text,
        "blocks": ephemeral.blocks,
        "attachments": None,
        "subtype": None,
        "reply_count": 0,
        "reply_users": [],
        "latest_reply": None,
        "reactions": [],
        "edited": False,
        "ephemeral": True,
        "stream": None,
    }


def notice_json(notice: Notice) -> JSON:
    return {
        "ts": notice.ts,
        "thread_ts": notice.thread_ts,
        "author": dict(SLACKBOT),
        "text": notice.text,
        "blocks": None,
        "attachments": None,
        "subtype": "slackbot_notice",
        "reply_count": 0,
        "reply_users": [],
        "latest_reply": None,
        "reactions": [],
        "edited": False,
        "ephemeral": True,
        "stream": None,
    }


def channel_json(workspace: Workspace, channel: Channel, viewer: str) -> JSON:
    bot = workspace.bot_user.id
    return {
        "id": channel.id,
        "name": "pmteam" if channel.is_im else channel.name,
        "is_im": channel.is_im,
        "purpose": channel.purpose,
        "is_member": viewer in channel.members,
        "bot_is_member": bot in channel.members,
        "latest": channel.messages[-1].ts if channel.messages else None,
    }


def visible_channels(workspace: Workspace, viewer: str) -> list[Channel]:
    """Public channels, then the viewer's own DM with the app (never someone else's)."""
    channels = [c for c in workspace.channels.values() if not c.is_im and not c.is_private]
    channels += [
        c
        for c in workspace.channels.values()
        if (c.is_private and viewer in c.members) or (c.is_im and c.im_user == viewer)
    ]
    return channels


def channel_messages(
    workspace: Workspace, channel: Channel, viewer: str, notices: list[Notice]
) -> list[JSON]:
    """The channel's own messages (not thread replies), with the viewer's ephemerals in place."""
    shown = [message_json(workspace, m) for m in workspace.messages(channel.id)]
    shown += [
        ephemeral_json(workspace, e)
        for e in workspace.ephemerals(channel.id, viewer)
        if e.thread_ts is None
    ]
    shown += [
        notice_json(n)
        for n in notices
        if n.channel == channel.id and n.user == viewer and n.thread_ts is None
    ]
    return sorted(shown, key=lambda m: float(m["ts"]))


def thread_messages(
    workspace: Workspace, channel: Channel, ts: str, viewer: str, notices: list[Notice]
) -> list[JSON]:
    """The parent and its replies, with the viewer's ephemerals posted in the thread."""
    messages = workspace.thread(channel.id, ts)
    if not messages:
        return []
    root = messages[0].ts
    shown = [message_json(workspace, m) for m in messages]
    shown += [
        ephemeral_json(workspace, e)
        for e in workspace.ephemerals(channel.id, viewer)
        if e.thread_ts == root
    ]
    shown += [
        notice_json(n)
        for n in notices
        if n.channel == channel.id and n.user == viewer and n.thread_ts == root
    ]
    return sorted(shown, key=lambda m: float(m["ts"]))


def modal_json(workspace: Workspace, viewer: str) -> JSON | None:
    """The modal on top of the viewer's stack, as views.open stored it."""
    stack = workspace.modal_views.get(viewer) or []
    if not stack:
        return None
    view = workspace.views.get(stack[-1])
    return None if view is None else view.to_api(workspace.team.id)


def assistant_json(
    workspace: Workspace, thread: AssistantThread, viewer: str, notices: list[Notice]
) -> JSON:
    """One assistant thread as its pane shows it: what the app set, and the conversation."""
    channel = workspace.channel(thread.channel)
    messages = thread_messages(workspace, channel, thread.thread_ts, viewer, notices)
    context_channel = thread.context.get("channel_id")
    return {
        "channel": thread.channel,
        "ts": thread.thread_ts,
        "title": thread.title,
        "status": thread.status,
        "loading_messages": list(thread.loading_messages),
        "prompts": [
            {"title": str(p.get("title", "")), "message": str(p.get("message", ""))}
            for p in thread.suggested_prompts
        ],
        "prompts_title": thread.prompts_title,
        "context_channel": context_channel if isinstance(context_channel, str) else None,
        # Slack's own empty root message is not part of the conversation.
        "messages": [m for m in messages if m["subtype"] != ASSISTANT_ROOT],
    }
