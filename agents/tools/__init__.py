"""The engineer's tools, one per module; none has an effect outside the task's own thread."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call gives back to the model; failures go back as `is_error` results."""

    content: str
    is_error: bool = False
