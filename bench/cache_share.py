"""Share of each task's input tokens served from the prompt cache, against the offline fake."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from anthropic import AsyncAnthropic

from agents.config import AgentSettings
from agents.engineer import RelatedTask, TaskBrief, ThreadMessage, run_engineer
from agents.llm import ModelClient, TurnRef, UsageTotals
from agents.reports import ReportInput, ResearchNote, write_report
from sandbox.model import FakeModel

# Typical requests; each becomes a new task (a new thread), so nothing but the prefix repeats.
REQUESTS = (
    "Our Postgres orders query is slow at p99; how should we index it?",
    "Design a Kafka consumer for billing events that never double-charges a customer.",
    "We need cursor pagination and filtering on GET /v1/orders; what should the API look like?",
    "How should we cache product pages in Redis without serving stale prices?",
    "Plan a zero-downtime migration that splits the users table into users and profiles.",
)


FOLLOW_UP = "Thanks. What would you change if the traffic grew ten times?"


@dataclass(frozen=True)
class TaskFigures:
    number: int
    usage: UsageTotals
    follow_up: UsageTotals  # the engineer's calls of a follow-up in the same thread
    # The same follow-up with the first turn as bare request and answer text (how follow-ups
    # were rendered before turns kept their exchange): no research, and no cache past the
    # prefix.
    bare_follow_up: UsageTotals


async def _no_related(query: str, limit: int) -> Sequence[RelatedTask]:
    return []


async def run_task(model: ModelClient, settings: AgentSettings, number: int) -> TaskFigures:
    """One typical task: the engineer (who consults the researcher once), then the report."""
    request = REQUESTS[(number - 1) % len(REQUESTS)]
    result = await run_engineer(
        model=model,
        settings=settings,
        task=TaskBrief(ref=f"T-{number}", request=request, requester="<@U1>", channel="<#C1>"),
        find_related_tasks=_no_related,
    )
    outcome = await write_report(
        model=model,
        settings=settings,
        turn=ReportInput(
            ref=f"T-{number}",
            channel="<#C1>",
            requester="<@U1>",
            request=request,
            answer=result.answer,
            today="Wednesday 2 December 2026",
            research=[ResearchNote.of(r) for r in result.research],
        ),
        ref=TurnRef(),
    )
    usage = UsageTotals()
    usage.merge(result.usage)
    usage.merge(outcome.usage)
    # A follow-up in the same thread, as the bot renders it: the first turn as it was sent
    # (research included), then its answer, then the new request.
    history = [
        ThreadMessage(author="<@U1>", text=request, exchange=tuple(result.exchange)),
        ThreadMessage(author="pmteam", text=result.answer, from_engineer=True),
    ]
    follow_up = await run_engineer(
        model=model,
        settings=settings,
        task=TaskBrief(ref=f"T-{number}", request=FOLLOW_UP, requester="<@U1>", channel="<#C1>"),
        history=history,
        find_related_tasks=_no_related,
    )
    bare = await run_engineer(
        model=model,
        settings=settings,
        task=TaskBrief(ref=f"T-{number}", request=FOLLOW_UP, requester="<@U1>", channel="<#C1>"),
        history=[ThreadMessage(author="<@U1>", text=request), history[1]],
        find_related_tasks=_no_related,
    )
    return TaskFigures(
        number=number, usage=usage, follow_up=follow_up.usage, bare_follow_up=bare.usage
    )


async def measure(tasks: int, min_cache_tokens: int) -> list[TaskFigures]:
    fake = FakeModel(min_cache_tokens=min_cache_tokens)
    await fake.start(host="127.0.0.1", port=0)
    client = AsyncAnthropic(base_url=fake.base_url, api_key="bench", max_retries=0)
    try:
        model = ModelClient(client, max_retries=0, timeout_s=30)
        settings = AgentSettings()
        return [await run_task(model, settings, n) for n in range(1, tasks + 1)]
    finally:
        await client.close()
        await fake.stop()


def report(figures: Sequence[TaskFigures], min_cache_tokens: int) -> str:
    lines = [
        "Prompt-cache share per task (engineer + one research call + report), offline fake model,"
        f" minimum cacheable prefix {min_cache_tokens} tokens",
        f"{'task':>4} {'calls':>5} {'prompt tok':>10} {'cache read':>10} {'cache write':>11} "
        f"{'uncached':>8} {'share':>6} {'cost $':>9} {'follow-up share':>15} "
        f"{'(bare)':>6}",
    ]
    for f in figures:
        u = f.usage
        lines.append(
            f"{f.number:>4} {u.calls:>5} {u.prompt_tokens:>10} {u.cache_read_tokens:>10} "
            f"{u.cache_write_tokens:>11} {u.input_tokens:>8} {u.cache_share:>6.3f} "
            f"{u.cost_usd:>9.5f} {f.follow_up.cache_share:>15.3f} "
            f"{f.bare_follow_up.cache_share:>6.3f}"
        )
    later = figures[1:]
    if later:
        worst = min(f.usage.cache_share for f in later)
        verdict = "meets" if worst >= 0.8 else "MISSES"
        lines.append(f"lowest share on task 2 and later: {worst:.3f} ({verdict} the 0.8 target)")
    follow = min(f.follow_up.cache_share for f in figures)
    bare = max(f.bare_follow_up.cache_share for f in figures)
    lines.append(
        f"follow-up turns (their engineer calls): lowest share {follow:.3f}, the first turn read "
        f"back from the cache with its research; rendered bare, highest {bare:.3f}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5, help="how many tasks to run (>= 2)")
    parser.add_argument(
        "--min-cache-tokens",
        type=int,
        default=0,
        help="the fake's minimum cacheable prefix (the real API's is 1024-4096 by model)",
    )
    args = parser.parse_args(argv)
    # The per-call log lines would bury the table: warnings only, and on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    figures = asyncio.run(measure(max(2, args.tasks), args.min_cache_tokens))
    sys.stdout.write(report(figures, args.min_cache_tokens) + "\n")
    later = figures[1:]
    return 0 if all(f.usage.cache_share >= 0.8 for f in later) else 1


if __name__ == "__main__":
    sys.exit(main())
