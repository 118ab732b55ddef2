"""A fake Slack workspace for pmteam: Web API, signed event delivery and Socket Mode."""

from sandbox.slack.delivery import Attempt, Delivery
from sandbox.slack.server import AssistantThreadStart, FakeSlack, PostResult, ResponseUrlPost
from sandbox.slack.web_api import DEFAULT_SCOPES, ApiCall, Fault
from sandbox.slack.workspace import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    AssistantThread,
    Channel,
    Ephemeral,
    Message,
    SandboxError,
    User,
    View,
    Workspace,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_SCOPES",
    "TEAM_ID",
    "ApiCall",
    "AssistantThread",
    "AssistantThreadStart",
    "Attempt",
    "Channel",
    "Delivery",
    "Ephemeral",
    "FakeSlack",
    "Fault",
    "Message",
    "PostResult",
    "ResponseUrlPost",
    "SandboxError",
    "User",
    "View",
    "Workspace",
]
