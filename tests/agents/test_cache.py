"""Prompt caching as the fake simulates it, over whole tasks: engineer, research, report."""

from __future__ import annotations

from typing import Any

from agents.config import AgentSettings
from agents.engineer import RelatedTask, TaskBrief, run_engineer
from agents.llm import ModelClient, TurnRef, UsageTotals
from agents.reports import ReportInput, ResearchNote, write_report
from sandbox.model import FakeModel
from tests.agents.support import messages_requests, script_typical_task

REQUESTS = (
    "Our Postgres orders query is slow; how should we index it?",
    "Design a Kafka consumer for billing events that never double-charges.",
)


async def no_related(query: str, limit: int) -> list[RelatedTask]:
    return []


async def run_task(
    fake: FakeModel, model: ModelClient, settings: AgentSettings, request: str
) -> UsageTotals:
    """One typical task: the engineer with one research call, then the report call."""
    script_typical_task(fake, request)
    result = await run_engineer(
        model=model,
        settings=settings,
        task=TaskBrief(ref="T-1", request=request, requester="<@U1>", channel="<#C1>"),
        find_related_tasks=no_related,
    )
    outcome = await write_report(
        model=model,
        settings=settings,
        turn=ReportInput(
            ref="T-1",
            channel="<#C1>",
            requester="<@U1>",
            request=request,
            answer=result.answer,
            today="Wednesday 2 December 2026",
            research=[ResearchNote.of(r) for r in result.research],
        ),
        ref=TurnRef(),
    )
    usage = result.usage
    usage.merge(outcome.usage)
    return usage


def agents_of(fake: FakeModel, settings: AgentSettings, start: int) -> list[str]:
    names = []
    for request in messages_requests(fake)[start:]:
        if "output_config" in request.body:
            names.append("reporter")
        elif request.body["model"] == settings.researcher_model:
            names.append("researcher")
        else:
            names.append("engineer")
    return names


def reads(usages: list[dict[str, Any]]) -> list[int]:
    return [u["cache_read_input_tokens"] for u in usages]


async def test_cache_reads_within_a_task_and_from_the_first_call_of_the_next(
    fake_model: FakeModel, model: ModelClient, settings: AgentSettings
) -> None:
    await run_task(fake_model, model, settings, REQUESTS[0])
    first_task = list(fake_model.usages)
    assert agents_of(fake_model, settings, 0) == ["engineer", "researcher", "engineer", "reporter"]
    engineer_calls = [0, 2]
    first_reads = reads(first_task)
    assert first_reads[0] == 0  # a cold cache
    assert all(first_reads[i] > 0 for i in engineer_calls[1:])
    # The researcher's first call ever is cold too: another model, so another cache; and so
    # is the first report, whose prefix is the reporter's own.
    assert first_reads[1] == 0
    assert first_reads[3] == 0
    # The engineer's long prompt and tools are written once, for an hour.
    assert first_task[0]["cache_creation"]["ephemeral_1h_input_tokens"] > 3_000

    await run_task(fake_model, model, settings, REQUESTS[1])
    second_task = fake_model.usages[len(first_task) :]
    assert agents_of(fake_model, settings, len(first_task)) == [
        "engineer",
        "researcher",
        "engineer",
        "reporter",
    ]
    # Every call of the second task reads the cache, the very first one included, and the
    # report reads at least the reporter's whole prefix.
    assert all(read > 0 for read in reads(second_task))
    assert (
        second_task[3]["cache_read_input_tokens"]
        >= (first_task[3]["cache_creation"]["ephemeral_1h_input_tokens"])
    )
    assert (
        second_task[0]["cache_read_input_tokens"]
        >= (first_task[0]["cache_creation"]["ephemeral_1h_input_tokens"])
    )


async def test_the_second_task_is_served_mostly_from_the_cache(
    fake_model: FakeModel, model: ModelClient, settings: AgentSettings
) -> None:
    await run_task(fake_model, model, settings, REQUESTS[0])
    second = await run_task(fake_model, model, settings, REQUESTS[1])
    assert second.cache_share >= 0.8


async def test_the_prefix_is_byte_identical_across_calls_and_tasks(
    fake_model: FakeModel, model: ModelClient, settings: AgentSettings
) -> None:
    for request in REQUESTS:
        await run_task(fake_model, model, settings, request)
    engineer = [
        r.body for r in messages_requests(fake_model) if r.body["model"] == settings.engineer_model
    ]
    assert len(engineer) == 4
    assert all(body["system"] == engineer[0]["system"] for body in engineer)
    assert all(body["tools"] == engineer[0]["tools"] for body in engineer)
