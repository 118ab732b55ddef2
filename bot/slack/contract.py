"""What pmteam asks of Slack: the bot scopes and events; manifest.yml must match these exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "manifest.yml"

# Each scope is here because a Web API method or event pmteam uses needs it.
BOT_SCOPES: frozenset[str] = frozenset(
    {
        "app_mentions:read",  # app_mention events
        "assistant:write",  # assistant.threads.setStatus / setTitle / setSuggestedPrompts
        "channels:history",  # message.channels (follow-ups in a task's thread), thread context
        # conversations.info (the coordination channel; is a channel private?) and
        # users.conversations (which channels a reader is in)
        "channels:read",
        "chat:write",  # answers, streams, reports, standups, ephemeral replies
        "commands",  # /pm
        "files:read",  # the files shared with a request (downloaded with the bot token)
        "groups:history",  # message.groups and thread context in private channels
        "groups:read",  # the same for private channels
        "im:history",  # message.im events and DM thread context
        "im:write",  # conversations.open: the DM that tells a handoff's owner, updated later
        "reactions:write",  # 👀 when a task is seen, ✅ ⏳ ❌ when it finishes
        "users:read",  # names in standups and on the App Home
    }
)

BOT_EVENTS: frozenset[str] = frozenset(
    {
        "app_mention",
        "message.channels",  # a reply in a task's thread is a follow-up, mention or not
        "message.groups",
        "message.im",
        "app_home_opened",
        "assistant_thread_started",
        "assistant_thread_context_changed",
    }
)


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        manifest: dict[str, Any] = yaml.safe_load(handle)
    return manifest


def manifest_scopes(manifest: dict[str, Any]) -> frozenset[str]:
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


def manifest_events(manifest: dict[str, Any]) -> frozenset[str]:
    return frozenset(manifest["settings"]["event_subscriptions"]["bot_events"])
