"""The `consult_researcher` tool: hands a structured research request to the researcher."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pydantic

from agents.config import AgentSettings
from agents.errors import AgentError
from agents.llm import ModelClient, TurnRef, Wire
from agents.researcher import Research, ResearchBrief, ResearchSink, consult_researcher
from agents.templates import load_prompt
from agents.tools import ToolOutcome

NAME = "consult_researcher"


@dataclass(frozen=True)
class ResearchDeps:
    model: ModelClient
    settings: AgentSettings
    ref: TurnRef
    sink: ResearchSink | None = None
    today: date | None = None


def spec() -> Wire:
    text_list = {"type": "array", "items": {"type": "string"}}
    return {
        "name": NAME,
        "description": load_prompt("tools/consult_researcher"),
        "input_schema": {
            "type": "object",
            "properties": {
                "objective": {
                    "type": "string",
                    "description": "What the research must establish, in one or two sentences.",
                },
                "context": {
                    "type": "string",
                    "description": "What the researcher needs to know: the system, its scale "
                    "and stack, and what is already decided.",
                },
                "specific_questions": {
                    **text_list,
                    "description": "The concrete questions to answer.",
                },
                "constraints": {
                    **text_list,
                    "description": "Limits the answer must respect: stack, budget, "
                    "compliance, versions, deadlines.",
                },
                "output_wanted": {
                    "type": "string",
                    "description": "The form of the answer, e.g. 'a comparison of options A "
                    "and B with a recommendation and sources'.",
                },
            },
            "required": [
                "objective",
                "context",
                "specific_questions",
                "constraints",
                "output_wanted",
            ],
        },
    }


def parse_input(tool_input: Wire) -> ResearchBrief:
    """The brief, or ValueError with a message the model can act on."""
    try:
        return ResearchBrief.model_validate(tool_input)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'input'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(problems) from exc


async def run(
    brief: ResearchBrief, deps: ResearchDeps, *, first_source: int = 1
) -> tuple[ToolOutcome, Research | None]:
    """Consult the researcher; its sources are numbered from `first_source`, so the numbers
    stay unique across the research requests of one turn."""
    try:
        research = await consult_researcher(
            model=deps.model,
            settings=deps.settings,
            brief=brief,
            ref=deps.ref,
            sink=deps.sink,
            today=deps.today,
        )
    except AgentError as exc:
        return (
            ToolOutcome(
                f"The researcher could not answer: {exc.message} Continue without research and "
                "say that the recommendation was not validated against current sources.",
                is_error=True,
            ),
            None,
        )
    return ToolOutcome(research.as_tool_result(first=first_source)), research
