"""A fake Anthropic Messages API over HTTP: scripted replies, or an offline demo model."""

from sandbox.model.script import (
    ApiError,
    Blocks,
    CutStream,
    Delay,
    Json,
    ScriptItem,
    StopReason,
    Text,
    ToolUse,
    WebSearch,
)
from sandbox.model.server import FakeModel, RecordedRequest

__all__ = [
    "ApiError",
    "Blocks",
    "CutStream",
    "Delay",
    "FakeModel",
    "Json",
    "RecordedRequest",
    "ScriptItem",
    "StopReason",
    "Text",
    "ToolUse",
    "WebSearch",
]
