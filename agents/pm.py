"""The PM: a short standup narrative written from structured data; a failure yields None."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import structlog

from agents.config import AgentSettings
from agents.errors import AgentError
from agents.llm import ModelClient, PromptPrefix, TurnRef
from agents.templates import load_prompt

log = structlog.get_logger(__name__)

MAX_NARRATIVE_CHARS = 1_200


@dataclass(frozen=True)
class StandupTask:
    ref: str  # "T-42"
    title: str
    status: str
    detail: str | None = None  # the estimate, the blocker, the red flag or the handoff


@dataclass(frozen=True)
class StandupData:
    """What the standup covers; the bot fills it from storage's standup query."""

    period: str  # e.g. "since Mon 25 Nov 09:30 UTC"
    completed: Sequence[StandupTask] = ()
    in_progress: Sequence[StandupTask] = ()
    blocked: Sequence[StandupTask] = ()
    red_flags: Sequence[StandupTask] = ()
    handoffs: Sequence[StandupTask] = ()
    counts: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None

    def as_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, ensure_ascii=False, indent=1, default=list)


async def write_standup_narrative(
    *,
    model: ModelClient,
    settings: AgentSettings,
    data: StandupData,
) -> str | None:
    """Two to four sentences for the top of the standup, or None when the model could not
    write them (the standup goes out without; this never raises)."""
    try:
        async with asyncio.timeout(settings.pm_timeout_s):
            completion = await model.complete(
                agent="pm",
                model=settings.standup_model,
                # Once a day, far below any cache minimum: no breakpoints to pay for.
                prefix=PromptPrefix(system=load_prompt("pm_standup")),
                messages=[{"role": "user", "content": [{"type": "text", "text": data.as_json()}]}],
                max_tokens=settings.pm_max_tokens,
                ref=TurnRef(),
                continue_on_max_tokens=False,
            )
    except (AgentError, TimeoutError) as exc:
        log.warning("pm.narrative_failed", error=type(exc).__name__, detail=str(exc)[:200])
        return None
    except Exception:
        # Not a model failure but a bug; still, the standup must go out.
        log.exception("pm.narrative_crashed")
        return None
    text = " ".join(completion.text.split())
    if not text:
        return None
    if len(text) > MAX_NARRATIVE_CHARS:
        text = text[: MAX_NARRATIVE_CHARS - 1].rstrip() + "…"
    return text
