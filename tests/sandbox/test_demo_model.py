"""The offline demo model, through the real agents: answers, research and reports follow the
request — its nouns, the backend pattern it calls for, and what it waits on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
import pytest_asyncio
from anthropic import AsyncAnthropic

from agents.config import AgentSettings
from agents.engineer import EngineerResult, RelatedTask, TaskBrief, ThreadMessage, run_engineer
from agents.llm import ModelClient, TurnRef
from agents.pm import StandupData, StandupTask, write_standup_narrative
from agents.reports import (
    RED_FLAG_BELOW,
    CompletionReport,
    ReportInput,
    ReportStatus,
    ResearchNote,
    ScoreAxis,
    TurnKind,
    write_report,
)
from agents.researcher import cited_sources
from bot.core.estimates import parse_estimate
from sandbox.model import FakeModel
from sandbox.model.offline import DISCLAIMER

PAGINATION = "Our /v1/invoices list endpoint gets slow past page 50 — how should we paginate it?"
MIGRATION = "Plan the migration of the orders table from MySQL to PostgreSQL without downtime"
BLOCKED = (
    "Set up the Stripe webhook consumer — we're waiting for the production API credentials "
    "from finance"
)


@dataclass(frozen=True)
class Case:
    request: str
    terms: tuple[str, ...]  # the request's own nouns, named back in the answer
    title: str  # the pattern's title
    step: str  # a phrase only that pattern's approach uses


CASES = {
    "pagination": Case(PAGINATION, ("/v1/invoices", "invoices table"), "Keyset (cursor)", "OFFSET"),
    "queue": Case(
        "Design a Kafka consumer for billing events that never double-charges a customer.",
        ("Kafka consumer",),
        "Job queue with leased claims",
        "SKIP LOCKED",
    ),
    "caching": Case(
        "How should we cache product pages in Redis without serving stale prices?",
        ("Redis",),
        "Cache-aside with bounded staleness",
        "TTL plus random jitter",
    ),
    "indexing": Case(
        "Our Postgres orders table query is slow at p99; how should we index it?",
        ("orders table", "Postgres"),
        "Index for the query you run",
        "EXPLAIN (ANALYZE, BUFFERS)",
    ),
    "migration": Case(
        MIGRATION, ("orders table", "PostgreSQL"), "Expand, migrate, contract", "Dual-write"
    ),
    "rate_limiting": Case(
        "design a rate limiter for our public API",
        ("public API",),
        "Per-client rate limiting",
        "Retry-After",
    ),
    "auth": Case(
        "How should the mobile app authenticate against the orders API: JWTs or sessions?",
        ("orders API",),
        "Authentication with short-lived tokens",
        "refresh tokens",
    ),
}


@pytest_asyncio.fixture
async def model(fake_model: FakeModel) -> AsyncIterator[ModelClient]:
    client = AsyncAnthropic(base_url=fake_model.base_url, api_key="demo", max_retries=0)
    try:
        yield ModelClient(client, max_retries=0, timeout_s=30)
    finally:
        await client.close()


async def no_related_tasks(query: str, limit: int) -> list[RelatedTask]:
    return []


async def engineer(
    model: ModelClient, request: str, history: Sequence[ThreadMessage] = ()
) -> EngineerResult:
    return await run_engineer(
        model=model,
        settings=AgentSettings(),
        task=TaskBrief(ref="T-1", request=request, requester="<@U1>", channel="<#C1>"),
        history=history,
        find_related_tasks=no_related_tasks,
    )


async def report_on(
    model: ModelClient, request: str, result: EngineerResult, thread: Sequence[str] = ()
) -> CompletionReport:
    outcome = await write_report(
        model=model,
        settings=AgentSettings(),
        turn=ReportInput(
            ref="T-1",
            channel="<#C1>",
            requester="<@U1>",
            request=request,
            answer=result.answer,
            today="Wednesday 2 December 2026",
            thread=thread,
            research=[ResearchNote.of(r) for r in result.research],
        ),
        ref=TurnRef(),
    )
    assert outcome.attempts == 1 and not outcome.gaps  # valid on the first ask
    return outcome.report


def low_scores(report: CompletionReport) -> set[ScoreAxis]:
    return {axis for axis, score in report.scores() if score < RED_FLAG_BELOW}


@pytest.mark.parametrize("name", list(CASES))
async def test_the_answer_names_the_request_and_follows_its_pattern(
    model: ModelClient, name: str
) -> None:
    case = CASES[name]
    result = await engineer(model, case.request)

    answer = result.answer
    for term in (*case.terms, case.title, case.step):
        assert term in answer, f"{term!r} missing from the {name} answer:\n{answer}"
    others = [other.title for key, other in CASES.items() if key != name]
    assert not [title for title in others if title in answer]
    assert answer.count(DISCLAIMER) == 1
    assert re.search(r"^1\. .+\n2\. .+\n3\. ", answer, re.M)  # numbered steps
    assert re.search(r"```(sql|python)\n.+```", answer, re.S)
    # It relied on the research, cited by number, and only cited sources are listed.
    cited = cited_sources(answer, result.research)
    assert cited and all(f"[{number}]" in answer for number, _ in cited)


async def test_the_research_searches_the_requests_key_terms_and_returns_real_references(
    model: ModelClient, fake_model: FakeModel
) -> None:
    result = await engineer(model, PAGINATION)

    [call] = result.tool_calls
    assert call.name == "consult_researcher"
    objective = str(call.input["objective"])
    assert "/v1/invoices endpoint" in objective and "keyset" in objective
    assert "offline demo" not in str(call.input) and "Objective for" not in str(call.input)
    assert PAGINATION in str(call.input["context"])

    [research] = result.research
    searched = re.search(r"I searched the web for “(.+?)”", research.findings)
    assert searched is not None
    query = searched.group(1)
    assert query == "/v1/invoices list endpoint slow page paginate"
    for boilerplate in ("objective", "research", "request", "engineer", "backend"):
        assert boilerplate not in query.lower()
    titles = [source.title for source in research.sources]
    assert "Paging Through Results — Use The Index, Luke" in titles
    assert "PostgreSQL Documentation: 7.6. LIMIT and OFFSET" in titles
    assert all(source.url.startswith("https://") for source in research.sources)
    assert research.live_sources and research.web_searches == 1


async def test_a_question_is_completed_with_deliverables_that_name_its_nouns(
    model: ModelClient,
) -> None:
    result = await engineer(model, PAGINATION)
    report = await report_on(model, PAGINATION, result)

    assert report.turn_kind is TurnKind.BACKEND_WORK
    assert report.status is ReportStatus.COMPLETED and report.estimated_time is None
    assert report.task == "Keyset pagination for the /v1/invoices endpoint"
    descriptions = [d.description for d in report.key_deliverables]
    assert len(set(descriptions)) == len(descriptions) >= 2
    assert any("/v1/invoices" in d for d in descriptions)
    assert any("invoices table" in d for d in descriptions)
    assert not [d for d in descriptions if "offline demo" in d or "Description for" in d]
    assert {d.kind for d in report.key_deliverables} == {"api_integration", "data_storage"}
    kinds = {h.kind for h in report.dependencies_handoffs}
    assert "infrastructure_blocker" not in kinds  # nothing blocks a completed task
    assert low_scores(report) == set() and report.red_flags == []


async def test_a_planned_migration_is_in_progress_with_an_estimate_and_a_risk_flag(
    model: ModelClient,
) -> None:
    result = await engineer(model, MIGRATION)
    report = await report_on(model, MIGRATION, result)

    assert report.status is ReportStatus.IN_PROGRESS
    assert report.estimated_time == "3-5 days" and parse_estimate(report.estimated_time)
    assert report.score("risk_assessment") == 5
    [flag] = report.red_flags
    assert flag.axis is ScoreAxis.RISK_ASSESSMENT
    assert "migration" in flag.explanation and "rollback" in flag.mitigation
    assert "3-5 days" in result.answer  # the answer says the plan is the first part


async def test_a_request_waiting_on_a_named_person_makes_them_the_handoffs_owner(
    model: ModelClient,
) -> None:
    request = BLOCKED.replace("from finance", "from <@U0DANA>")
    result = await engineer(model, request)
    report = await report_on(model, request, result)

    [waiting] = [h for h in report.dependencies_handoffs if h.kind == "needed_from_others"]
    assert waiting.description == "Waiting for the production API credentials from <@U0DANA>"
    assert waiting.owner == "<@U0DANA>"
    # Nobody is named where the request names nobody.
    plain = await report_on(model, BLOCKED, await engineer(model, BLOCKED))
    assert all(h.owner is None for h in plain.dependencies_handoffs)


async def test_a_request_waiting_on_credentials_is_blocked_on_exactly_that(
    model: ModelClient,
) -> None:
    result = await engineer(model, BLOCKED)
    report = await report_on(model, BLOCKED, result)

    assert report.status is ReportStatus.BLOCKED
    [waiting] = [h for h in report.dependencies_handoffs if h.kind == "needed_from_others"]
    assert waiting.description == "Waiting for the production API credentials from finance"
    assert report.task == "Set up the Stripe webhook consumer"
    assert report.score("implementation_feasibility") < RED_FLAG_BELOW
    assert report.score("probability_of_success") < RED_FLAG_BELOW
    assert {flag.axis for flag in report.red_flags} == low_scores(report)
    assert all("production API credentials" in f.explanation for f in report.red_flags)
    assert "Blocked on the production API credentials from finance" in result.answer


@pytest.mark.parametrize("name", list(CASES))
async def test_red_flags_are_one_per_low_score_with_a_reason(model: ModelClient, name: str) -> None:
    case = CASES[name]
    report = await report_on(model, case.request, await engineer(model, case.request))

    axes = [flag.axis for flag in report.red_flags]
    assert sorted(axes) == sorted(low_scores(report))  # one each, none on a good score
    assert all(flag.explanation and flag.mitigation for flag in report.red_flags)


async def test_a_query_plan_in_the_request_is_not_a_request_for_a_plan(
    model: ModelClient,
) -> None:
    request = (
        "This query on events went from 40 ms to 4 s after a deploy: the plan shows a Seq Scan "
        "on account_id and created_at. How do we fix it?"
    )
    report = await report_on(model, request, await engineer(model, request))

    assert report.status is ReportStatus.COMPLETED
    assert "Index for the query you run" in report.confidence_notes


@pytest.mark.parametrize("request_text", ["what's a good lasagne recipe?", "thanks!"])
async def test_an_off_topic_or_social_request_is_a_conversation_without_research(
    model: ModelClient, request_text: str
) -> None:
    result = await engineer(model, request_text)
    report = await report_on(model, request_text, result)

    assert result.tool_calls == [] and result.research == []
    assert "**Approach**" not in result.answer
    assert report.turn_kind is TurnKind.CONVERSATION
    assert report.key_deliverables == [] and report.dependencies_handoffs == []


async def test_a_retry_request_in_a_thread_reports_on_the_threads_work(
    model: ModelClient,
) -> None:
    history = [ThreadMessage(author="<@U1>", text="design the refunds API")]
    result = await engineer(model, "please try again", history)
    report = await report_on(
        model, "please try again", result, thread=["<@U1>: design the refunds API"]
    )

    assert "the refunds API" in result.answer
    assert report.turn_kind is TurnKind.BACKEND_WORK
    assert report.task == "Design the refunds API"


async def test_a_follow_up_answers_the_new_question_instead_of_repeating_the_first(
    model: ModelClient,
) -> None:
    first_request = "How should workers claim jobs from a queue?"
    first = await engineer(model, first_request)
    history = [
        ThreadMessage(author="<@U1>", text=first_request, exchange=tuple(first.exchange)),
        ThreadMessage(author="pmteam", text=first.answer, from_engineer=True),
    ]

    same_topic = await engineer(model, "And how do workers renew their claim?", history)
    assert same_topic.tool_calls == []  # the first turn's research still stands
    assert "> And how do workers renew their claim?" in same_topic.answer
    assert "lease" in same_topic.answer and "**Approach**" not in same_topic.answer
    assert DISCLAIMER not in same_topic.answer  # said once per thread

    growth = await engineer(model, "Thanks. What would you change at ten times the load?", history)
    assert "At ten times the jobs" in growth.answer

    new_topic = await engineer(model, "How should we cache the job results in Redis?", history)
    assert "Cache-aside with bounded staleness" in new_topic.answer
    assert "Job queue with leased claims" not in new_topic.answer


async def test_the_standup_narrative_summarises_the_digest_by_task(
    model: ModelClient,
) -> None:
    data = StandupData(
        period="since Mon 30 Nov 09:30 UTC",
        completed=[StandupTask("T-1", "Paginate the invoices endpoint", "completed")],
        in_progress=[StandupTask("T-2", "Plan the orders migration", "in_progress", "3-5 days")],
        blocked=[
            StandupTask(
                "T-3",
                "Set up the Stripe webhook consumer",
                "blocked",
                "Waiting for the production API credentials from finance",
            )
        ],
        red_flags=[
            StandupTask(
                "T-2", "Plan the orders migration", "in_progress", "Risk Assessment 5/9: data loss"
            )
        ],
        counts={"completed": 1, "in_progress": 1, "blocked": 1, "red_flags": 1},
    )

    narrative = await write_standup_narrative(model=model, settings=AgentSettings(), data=data)

    assert narrative is not None
    assert narrative.startswith("Since Mon 30 Nov 09:30 UTC: 1 task completed, 1 in progress")
    assert "T-1 (Paginate the invoices endpoint) was completed" in narrative
    assert (
        "T-3 (Set up the Stripe webhook consumer) is blocked: waiting for the production API "
        "credentials from finance." in narrative
    )
    assert "red flags on T-2 (Plan the orders migration): Risk Assessment 5/9" in narrative
    assert "```" not in narrative and '"period"' not in narrative and "You asked" not in narrative
    assert 2 <= len(re.findall(r"[.!?](?:\s|$)", narrative)) <= 4


async def test_a_quiet_standup_says_so_in_one_sentence(model: ModelClient) -> None:
    narrative = await write_standup_narrative(
        model=model, settings=AgentSettings(), data=StandupData(period="since Mon 30 Nov")
    )

    assert (
        narrative == "A quiet period since Mon 30 Nov: no task was completed, started or blocked."
    )
