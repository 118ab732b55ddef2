"""What the agents can be tuned with; the bot fills it from its Settings (bot → agents)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentSettings:
    """Models, limits and switches for every agent call.

    The bot maps `PMTEAM_ENGINEER_MODEL`, `PMTEAM_RESEARCHER_MODEL`,
    `PMTEAM_ENGINEER_PROMPT_FILE` and `PMTEAM_RESEARCH_WEB` onto these; the rest are
    defaults an operator rarely needs to touch.
    """

    engineer_model: str = "claude-sonnet-5-5"
    researcher_model: str = "claude-haiku-5-5"
    # The completion report is written from a compact transcript of the turn; by default on
    # the researcher's cheaper model (bench/cost.py compares it with the engineer's).
    report_model: str | None = None
    # The standup narrative is a few sentences over data we already have: the cheap model does.
    pm_model: str | None = None
    engineer_prompt_file: Path | None = None
    research_web: bool = True

    # The SDK retries 408/409/429/5xx/529 and connection errors with backoff (and honours
    # retry-after); this is how many times, per call.
    max_retries: int = 2
    request_timeout_s: float = 300.0
    # Once an answer streams, the API sends an event (a ping, at least) every few seconds:
    # this long with none is a stall, noticed well before the request timeout.
    stream_stall_s: float = 60.0
    pm_timeout_s: float = 60.0

    engineer_max_tokens: int = 8_192
    researcher_max_tokens: int = 4_096
    report_max_tokens: int = 4_096
    pm_max_tokens: int = 600

    # Per turn of the engineer: the tool loop stops asking for tools after these.
    max_tool_calls: int = 8
    max_research_calls: int = 3
    max_turn_output_tokens: int = 32_000
    # How often a `pause_turn` (long server-side work) is sent back before giving up.
    max_pause_continuations: int = 3

    # Each search costs $0.01 and its results are billed again on each later step of the
    # research call: two aimed searches keep a researched task within budget (bench/cost.py).
    web_search_max_uses: int = 2
    web_fetch_max_uses: int = 2
    web_fetch_max_content_tokens: int = 10_000

    @property
    def reporter_model(self) -> str:
        return self.report_model or self.researcher_model

    @property
    def standup_model(self) -> str:
        return self.pm_model or self.researcher_model
