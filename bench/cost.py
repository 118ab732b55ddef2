"""What a typical researched task costs, per call and per task, cold and warm, at list prices.

The agents run for real (prompts, tool loop, research, report) against the fake Anthropic
server, which bills as the API does: prompt-cache reads and writes by TTL, a structured-output
format that invalidates the cached conversation, $10 per 1,000 web searches, and search
results billed again as input on each later step of their call. The model's side is scripted
at the sizes of a typical researched task (below), because the offline model's answers are
far shorter than a real one's, which would flatter the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import structlog
from anthropic import AsyncAnthropic

from agents.config import AgentSettings
from agents.engineer import RelatedTask, TaskBrief, run_engineer
from agents.llm import LLMUsage, ModelClient, TurnRef, Wire
from agents.reports import REPORT_SCHEMA, ReportInput, ResearchNote, write_report
from agents.templates import load_prompt
from sandbox.model import Blocks, FakeModel, Json, Text, ToolUse
from sandbox.model.script import text_block, web_search_blocks, web_search_citation

# A typical researched task, in tokens (the fake counts 4 characters a token).
RESEARCH_BRIEF_CHARS = 1_000  # the engineer's request to the researcher (~250 tokens)
RESULTS_PER_SEARCH = 5  # each billed at the fake's 800 tokens when read back
FINDINGS_CHARS = 4_000  # the researcher's findings (~1,000 tokens)
ANSWER_CHARS = 7_200  # the engineer's answer (~1,800 tokens)
REQUEST = (
    "We're moving order events from a cron-polled table to Kafka. Design the consumer for "
    "billing so a customer is never charged twice, and plan the migration off the old table."
)


def _words(chars: int, seed: str) -> str:
    text = (seed + " ") * (chars // (len(seed) + 1) + 1)
    return text[:chars].rstrip()


def script_task(fake: FakeModel, number: int, *, searches: int) -> None:
    """The model's side of one typical researched task: a research request, the research (with
    `searches` web searches and cited findings), the answer, and the report."""
    results = [
        (f"https://example.com/t{number}/s{s}/r{r}", f"Source {s}.{r} on idempotent consumers")
        for s in range(searches)
        for r in range(RESULTS_PER_SEARCH)
    ]
    research: list[dict[str, Any]] = [text_block("I'll compare how teams run this.")]
    for s in range(searches):
        chunk = results[s * RESULTS_PER_SEARCH : (s + 1) * RESULTS_PER_SEARCH]
        research += web_search_blocks(
            f"kafka idempotent consumer billing {s}",
            [(url, title, "snippet", None) for url, title in chunk],
        )
    cited = results[::RESULTS_PER_SEARCH][:4] or results[:1]
    research.append(
        text_block(
            _words(FINDINGS_CHARS, "Teams dedupe on an idempotency key in the same transaction."),
            [web_search_citation(url, title, "dedupe", i) for i, (url, title) in enumerate(cited)],
        )
    )
    fake.script(
        ToolUse(
            "consult_researcher",
            {
                "objective": "How billing consumers on Kafka avoid double charges",
                "context": _words(RESEARCH_BRIEF_CHARS, "Postgres 16, Kafka 3.7, 2k events/s."),
                "specific_questions": ["Which two designs do teams compare?", "What fails?"],
            },
            text_before="Let me check how others built this before I design it.",
        ),
        Blocks(research) if searches else Text(research[-1]["text"]),
        Text(_words(ANSWER_CHARS, "Consume with an idempotency key per charge [1] [2].")),
        Json(_report()),
    )


def _report() -> dict[str, Any]:
    return {
        "turn_kind": "backend_work",
        "task": "Design an exactly-once billing consumer on Kafka and the migration to it",
        "status": "IN_PROGRESS",
        "pm_scores": {
            "system_architecture_design": 7,
            "scalability_performance": 7,
            "integration_reliability": 6,
        },
        "self_assessment": {
            "probability_of_success": 7,
            "implementation_feasibility": 7,
            "quality_completeness": 6,
            "risk_assessment": 5,
            "alignment_value": 8,
        },
        "red_flags": [
            {
                "axis": "risk_assessment",
                "explanation": "The dual-write window during the migration can double-charge.",
                "mitigation": "Gate the cutover on a shadow-run with zero key conflicts.",
            }
        ],
        "confidence_notes": _words(400, "The design follows the outbox pattern."),
        "key_deliverables": [
            {"kind": "system", "description": "Billing consumer design with idempotency keys"},
            {"kind": "data_storage", "description": "charge_keys table and migration plan"},
        ],
        "dependencies_handoffs": [
            {"kind": "needed_from_others", "description": "Platform to create the topics"}
        ],
        "estimated_time": "3-4 days",
    }


@dataclass
class Recorder:
    """Every call's usage, in order (the ModelClient's usage sink)."""

    calls: list[LLMUsage] = field(default_factory=list)

    async def record(self, call: LLMUsage) -> None:
        self.calls.append(call)


async def _no_related(query: str, limit: int) -> Sequence[RelatedTask]:
    return []


@dataclass(frozen=True)
class TaskCost:
    number: int
    calls: list[LLMUsage]

    @property
    def total(self) -> float:
        return sum(call.cost_usd for call in self.calls)


async def run_task(
    fake: FakeModel,
    model: ModelClient,
    recorder: Recorder,
    settings: AgentSettings,
    number: int,
    *,
    searches: int,
    report: str,
) -> TaskCost:
    script_task(fake, number, searches=searches)
    start = len(recorder.calls)
    result = await run_engineer(
        model=model,
        settings=settings,
        task=TaskBrief(ref=f"T-{number}", request=REQUEST, requester="<@U1>", channel="<#C1>"),
        find_related_tasks=_no_related,
    )
    if report == "conversation":
        # How reports were written before: over the engineer's own conversation and prefix,
        # with the structured-output format added (which the API does not read from cache).
        messages: list[Wire] = [
            *result.conversation,
            {"role": "user", "content": [{"type": "text", "text": load_prompt("report")}]},
        ]
        await model.complete(
            agent="reporter",
            model=settings.engineer_model,
            prefix=result.prefix,
            messages=messages,
            max_tokens=settings.report_max_tokens,
            ref=TurnRef(),
            output_schema=REPORT_SCHEMA,
            continue_on_max_tokens=False,
        )
    else:
        await write_report(
            model=model,
            settings=settings,
            turn=ReportInput(
                ref=f"T-{number}",
                channel="<#C1>",
                requester="<@U1>",
                request=REQUEST,
                answer=result.answer,
                today="Wednesday 2 December 2026",
                research=[ResearchNote.of(r) for r in result.research],
            ),
            ref=TurnRef(),
        )
    return TaskCost(number=number, calls=recorder.calls[start:])


@dataclass(frozen=True)
class Variant:
    name: str
    searches: int  # web searches the researcher makes (within web_search_max_uses)
    report: str  # "compact" (the reporter's transcript) or "conversation" (before)
    report_model: str | None = None


VARIANTS = (
    # Before: up to 5 searches allowed; a typical request used 3 (an assumption).
    Variant("before: 3 searches, report over the engineer's conversation", 3, "conversation"),
    Variant("3 searches, compact report on the engineer's model", 3, "compact", "sonnet"),
    Variant("3 searches, compact report on the researcher's model", 3, "compact"),
    Variant(
        "now: 2 searches (max_uses), compact report on the researcher's model",
        AgentSettings().web_search_max_uses,
        "compact",
    ),
)


async def measure(variant: Variant, tasks: int) -> list[TaskCost]:
    fake = FakeModel()
    await fake.start(host="127.0.0.1", port=0)
    client = AsyncAnthropic(base_url=fake.base_url, api_key="bench", max_retries=0)
    recorder = Recorder()
    try:
        model = ModelClient(client, usage_sink=recorder, max_retries=0, timeout_s=30)
        settings = AgentSettings()
        settings = replace(
            settings,
            web_search_max_uses=max(variant.searches, 1),
            report_model=settings.engineer_model if variant.report_model == "sonnet" else None,
        )
        return [
            await run_task(
                fake,
                model,
                recorder,
                settings,
                n,
                searches=variant.searches,
                report=variant.report,
            )
            for n in range(1, tasks + 1)
        ]
    finally:
        await client.close()
        await fake.stop()


def _per_call(task: TaskCost) -> list[str]:
    lines = [
        f"    {'call':<11} {'model':<18} {'input':>6} {'cache rd':>8} {'cache wr':>8} "
        f"{'output':>6} {'search':>6} {'cost $':>8}"
    ]
    for call in task.calls:
        c = call.counts
        lines.append(
            f"    {call.agent:<11} {call.model:<18} {c.input_tokens:>6} {c.cache_read_tokens:>8} "
            f"{c.cache_write_tokens:>8} {c.output_tokens:>6} {c.web_searches:>6} "
            f"{call.cost_usd:>8.5f}"
        )
    return lines


def report(results: Sequence[tuple[Variant, list[TaskCost]]], detail: bool) -> str:
    lines = [
        "Cost of a typical researched task at list prices (agents/llm.py), fake model billing as "
        "the API does; task 1 is cold, the rest warm",
        f"{'variant':<70} {'cold $':>8} {'warm $':>8}",
    ]
    for variant, costs in results:
        warm = max(t.total for t in costs[1:])
        lines.append(f"{variant.name:<70} {costs[0].total:>8.4f} {warm:>8.4f}")
    if detail:
        for variant, costs in results:
            lines.append(f"\n{variant.name}")
            for task in costs[:2]:
                lines.append(f"  task {task.number} ({'cold' if task.number == 1 else 'warm'}):")
                lines += _per_call(task)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3, help="tasks per variant (>= 2)")
    parser.add_argument("--detail", action="store_true", help="print every call of tasks 1-2")
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    tasks = max(2, args.tasks)
    results = [(v, asyncio.run(measure(v, tasks))) for v in VARIANTS]
    sys.stdout.write(report(results, args.detail) + "\n")
    now = results[-1][1]
    cold, warm = Decimal(str(now[0].total)), max(Decimal(str(t.total)) for t in now[1:])
    met = cold <= Decimal("0.07") and warm <= Decimal("0.05")
    sys.stdout.write(
        f"goal: <= $0.07 cold, <= $0.05 warm: {'met' if met else 'MISSED'} "
        f"(${cold:.4f} cold, ${warm:.4f} warm)\n"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
