"""The completion report: validation, the structured call with its re-ask, storage, layouts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.config import AgentSettings
from agents.errors import ReportUnavailable
from agents.ledger import StorageLedger
from agents.llm import ModelClient, TurnRef
from agents.reports import (
    PM_AXES,
    REPORT_SCHEMA,
    SELF_AXES,
    CompletionReport,
    ReportInput,
    ReportOutcome,
    ReportStatus,
    ResearchNote,
    ScoreAxis,
    parse_report,
    render_pm_report,
    render_self_assessment,
    reporter_prefix,
    write_report,
)
from sandbox.model import FakeModel, Json, Text, ToolUse
from storage.models import LLMCall, Report
from tests.agents.support import last_user_text, messages_requests, report_dict, tool_results

TURN = ReportInput(
    ref="T-1",
    channel="<#C1>",
    requester="<@U1>",
    request="Paginate GET /v1/orders",
    answer="Use keyset pagination on (created_at, id).",
    today="Wednesday 2 December 2026",
    thread=["<@U2>: we have 40M orders"],
    research=[
        ResearchNote(
            objective="Keyset vs offset pagination at scale",
            findings="Keyset pagination keeps p99 flat as the offset grows.",
            sources=3,
            live_sources=True,
            web_searches=2,
        )
    ],
)


async def report(model: ModelClient, ref: TurnRef | None = None) -> ReportOutcome:
    return await write_report(
        model=model, settings=AgentSettings(), turn=TURN, ref=ref or TurnRef()
    )


# --- validation ----------------------------------------------------------------------------------


def test_a_valid_report_parses() -> None:
    parsed = parse_report(json.dumps(report_dict()))
    assert parsed.status is ReportStatus.COMPLETED
    assert parsed.min_score == 5 and parsed.red_flag_count == 2


@pytest.mark.parametrize("score", [0, 10, -1])
def test_scores_outside_one_to_nine_are_refused(score: int) -> None:
    data = report_dict()
    data["pm_scores"]["scalability_performance"] = score
    with pytest.raises(ValueError, match="pm_scores.scalability_performance"):
        parse_report(json.dumps(data))


def test_every_score_below_six_needs_a_red_flag_naming_its_axis() -> None:
    data = report_dict()
    data["red_flags"] = data["red_flags"][:1]  # the scalability flag is missing
    with pytest.raises(ValueError, match=r"scalability_performance is 5/9 but has no"):
        parse_report(json.dumps(data))


def test_an_axis_in_both_views_has_one_value_and_one_flag() -> None:
    data = report_dict()
    # A report stored before the axes were unified carried its own PM copies and named
    # flags by group: the copies are ignored, the flags read as the one axis.
    data["pm_scores"] |= {"implementation_feasibility": 2, "risk_assessment": 9}
    data["red_flags"][0]["axis"] = "pm_scores.risk_assessment"
    parsed = parse_report(json.dumps(data))

    pm, own = dict(parsed.pm_view()), dict(parsed.self_view())
    assert pm["Implementation Feasibility"] == own["Implementation Feasibility"] == 7
    assert pm["Risk Assessment"] == own["Risk Assessment"] == 5
    assert parsed.red_flags[0].axis is ScoreAxis.RISK_ASSESSMENT
    # Each view shows the flags on the scores it shows.
    assert [f.axis for f in parsed.flags_in(SELF_AXES)] == [ScoreAxis.RISK_ASSESSMENT]
    assert [f.axis for f in parsed.flags_in(PM_AXES)] == [
        ScoreAxis.RISK_ASSESSMENT,
        ScoreAxis.SCALABILITY_PERFORMANCE,
    ]
    assert "Scalability" not in render_self_assessment(parsed)
    # The schema the model fills asks for the shared axes once.
    pm_schema = REPORT_SCHEMA["$defs"]["PMScores"]["properties"]
    assert set(pm_schema) == {
        "system_architecture_design",
        "scalability_performance",
        "integration_reliability",
    }


def test_a_turn_says_whether_it_is_work_to_report() -> None:
    assert parse_report(json.dumps(report_dict())).reportable
    chat = parse_report(json.dumps(report_dict(turn_kind="conversation")))
    assert not chat.reportable
    with pytest.raises(ValueError, match="turn_kind"):
        parse_report(json.dumps(report_dict(turn_kind="chit-chat")))
    # Reports stored before turns had a kind were all backend work.
    legacy = report_dict()
    del legacy["turn_kind"]
    assert parse_report(json.dumps(legacy)).reportable


def test_in_progress_needs_an_estimated_time() -> None:
    with pytest.raises(ValueError, match="estimated_time is required"):
        parse_report(json.dumps(report_dict(status="IN_PROGRESS", estimated_time=None)))
    ok = parse_report(json.dumps(report_dict(status="IN_PROGRESS", estimated_time="2 days")))
    assert ok.estimated_time == "2 days"


def test_the_task_is_kept_to_one_line() -> None:
    parsed = parse_report(json.dumps(report_dict(task="Design the\norders   API\n")))
    assert parsed.task == "Design the orders API"


def test_the_schema_sent_to_the_api_is_strict() -> None:
    assert REPORT_SCHEMA["additionalProperties"] is False
    assert set(REPORT_SCHEMA["required"]) >= {"task", "status", "pm_scores", "red_flags"}
    axis = REPORT_SCHEMA["$defs"]["RedFlag"]["properties"]["axis"]
    assert "$ref" in axis or "enum" in axis


# --- the structured call ------------------------------------------------------------------------


async def test_a_valid_report_is_parsed_from_one_structured_call(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Json(report_dict()))
    outcome = await report(model)

    assert outcome.attempts == 1 and outcome.gaps == ()
    assert outcome.report.task == "Design the orders API pagination"
    body = messages_requests(fake_model)[0].body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": REPORT_SCHEMA}}
    assert "tool_choice" not in body and "tools" not in body
    # The reporter's own model and instructions, over a compact transcript of the turn: a
    # structured-output call could not read the engineer's cached conversation anyway.
    assert body["model"] == AgentSettings().reporter_model == AgentSettings().researcher_model
    assert body["system"] == reporter_prefix().system_param()
    assert "completion report" in body["system"][0]["text"]
    transcript = last_user_text(messages_requests(fake_model)[0])
    assert len(body["messages"]) == 1
    for part in (
        "Task T-1 in <#C1>, asked by <@U1>. Today is Wednesday 2 December 2026.",
        "<@U2>: we have 40M orders",
        "<request>\nPaginate GET /v1/orders\n</request>",
        "1. Objective: Keyset vs offset pagination at scale",
        "Backing: 3 source(s) from 2 live web search(es)",
        "<answer>\nUse keyset pagination on (created_at, id).\n</answer>",
    ):
        assert part in transcript


async def test_the_report_model_can_be_set_apart_from_the_researcher(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Json(report_dict()))
    settings = AgentSettings(report_model="claude-sonnet-5-5")
    await write_report(model=model, settings=settings, turn=TURN, ref=TurnRef())
    assert messages_requests(fake_model)[0].body["model"] == "claude-sonnet-5-5"


def test_the_transcript_says_when_no_research_was_done_and_how_the_turn_ended() -> None:
    bare = ReportInput(
        ref="T-2",
        channel="<#C1>",
        requester="<@U1>",
        request="Add a column",
        answer="x" * 30_000,
        today="Wednesday 2 December 2026",
        stopped_early="tool_limit",
        truncated=True,
    ).transcript()
    assert "No research was done in this turn." in bare
    assert "(nothing before this request)" in bare
    assert "The turn stopped early: its tool calls were used up." in bare
    assert "The answer was cut off at the length limit." in bare
    assert len(bare) < 26_000  # the answer is clipped, so the prompt stays bounded
    offline = ResearchNote(
        objective="o", findings="f", sources=0, live_sources=False, web_searches=0
    )
    assert "no live sources" in offline.render(1)


async def test_a_report_missing_a_red_flag_is_asked_again_with_the_error_quoted(
    fake_model: FakeModel, model: ModelClient
) -> None:
    missing = report_dict(red_flags=report_dict()["red_flags"][:1])
    fake_model.script(Json(missing), Json(report_dict()))
    outcome = await report(model)

    assert outcome.attempts == 2 and outcome.gaps == ()
    assert outcome.report.red_flag_count == 2
    assert outcome.first_error is not None
    second = messages_requests(fake_model)[1]
    assert "scalability_performance is 5/9 but has no red flag" in last_user_text(second)
    assert "not accepted" in last_user_text(second)
    # The rejected attempt stays in the conversation, so the model sees what it sent.
    assert json.loads(second.body["messages"][-2]["content"][0]["text"]) == missing


async def test_a_report_still_missing_its_red_flag_is_kept_with_the_gap_marked(
    fake_model: FakeModel,
    model: ModelClient,
    ledger: StorageLedger,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    missing = report_dict(red_flags=[])
    fake_model.script(Json(missing), Json(missing))
    outcome = await report(model)

    assert outcome.attempts == 2
    assert outcome.gaps == (
        "scalability_performance is 5/9 but has no red flag",
        "risk_assessment is 5/9 but has no red flag",
    )
    assert "⚠ GAP: risk_assessment is 5/9" in render_self_assessment(outcome.report, outcome.gaps)
    assert "⚠ Report gaps:" in render_pm_report(outcome.report, outcome.gaps)

    assert turn_ref.task_id is not None and turn_ref.turn_id is not None
    await ledger.save_report(outcome, task_id=turn_ref.task_id, turn_id=turn_ref.turn_id)
    async with sessions() as session:
        row = (await session.exec(select(Report))).one()
    assert row.status == "COMPLETED" and row.red_flag_count == 0 and row.min_score == 5
    assert row.gaps == list(outcome.gaps)
    assert row.data["self_assessment"]["risk_assessment"] == 5


async def test_an_in_progress_report_without_an_estimate_is_asked_again(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(
        Json(report_dict(status="IN_PROGRESS")),
        Json(report_dict(status="IN_PROGRESS", estimated_time="3 days")),
    )
    outcome = await report(model)
    assert outcome.report.estimated_time == "3 days" and outcome.attempts == 2
    assert "estimated_time is required" in last_user_text(messages_requests(fake_model)[1])


async def test_a_tool_call_instead_of_a_report_is_answered_and_asked_again(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(ToolUse("find_related_tasks", {"query": "x"}), Json(report_dict()))
    outcome = await report(model)
    assert outcome.attempts == 2
    returned = tool_results(messages_requests(fake_model)[1])[0]
    assert returned["is_error"] is True


async def test_an_unreadable_report_after_two_tries_is_a_clear_error(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Text("Sorry, no JSON today."), Text("Still none."))
    with pytest.raises(ReportUnavailable) as caught:
        await report(model)
    assert "asking twice" in str(caught.value) and "answer in the thread stands" in str(
        caught.value
    )


async def test_report_calls_are_ledgered_as_the_reporter(
    fake_model: FakeModel,
    ledgered_model: ModelClient,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    fake_model.script(Json(report_dict(red_flags=[])), Json(report_dict()))
    outcome = await report(ledgered_model, turn_ref)
    async with sessions() as session:
        rows = (await session.exec(select(LLMCall))).all()
    assert [(r.agent, r.turn_id) for r in rows] == [("reporter", turn_ref.turn_id)] * 2
    assert outcome.usage.calls == 2


async def test_the_offline_model_files_a_usable_report(
    fake_model: FakeModel, model: ModelClient
) -> None:
    outcome = await report(model)  # valid first time, or kept with its gaps: never raises
    assert 1 <= outcome.report.min_score <= 9


# --- layouts -------------------------------------------------------------------------------------


def sample(**changes: Any) -> CompletionReport:
    return parse_report(json.dumps(report_dict(**changes)))


def test_self_assessment_matrix_layout() -> None:
    assert render_self_assessment(sample()) == (
        "SELF-ASSESSMENT SCORES:\n"
        "├── Probability of Success: 8/9\n"
        "├── Implementation Feasibility: 7/9\n"
        "├── Quality & Completeness: 7/9\n"
        "├── Risk Assessment: 5/9\n"
        "└── Alignment & Value: 8/9\n"
        "\n"
        "RED FLAGS: Risk Assessment 5/9: The cursor format is not yet load-tested. "
        "Mitigation: Run a k6 test at 2x peak before launch.\n"
        "CONFIDENCE NOTES: Assumes PostgreSQL 16 and fewer than 50M orders."
    )


def test_pm_report_layout() -> None:
    assert render_pm_report(sample()) == (
        "PROJECT MANAGER REPORT - Backend Engineer Agent\n"
        "Task: Design the orders API pagination\n"
        "Status: ✅ COMPLETED\n"
        "Self-Assessment Scores (1-9):\n"
        "├── System Architecture & Design: 8/9\n"
        "├── Implementation Feasibility: 7/9\n"
        "├── Scalability & Performance: 5/9\n"
        "├── Risk Assessment: 5/9\n"
        "└── Integration & Reliability: 7/9\n"
        "Key Deliverables:\n"
        "• API integrations: GET /v1/orders with cursor paging\n"
        "• Data/storage: Index on orders (customer_id, created_at)\n"
        "Dependencies/Handoffs:\n"
        "• Needed from others: Mobile team to adopt next_cursor"
    )


def test_pm_report_shows_the_estimate_and_each_status_word() -> None:
    in_progress = render_pm_report(sample(status="IN_PROGRESS", estimated_time="2-3 days"))
    assert "Status: ⏳ IN PROGRESS" in in_progress
    assert in_progress.endswith("Estimated Time: 2-3 days")
    assert "Status: ❌ BLOCKED" in render_pm_report(sample(status="BLOCKED"))


def test_a_report_without_red_flags_says_so() -> None:
    data = report_dict(red_flags=[])
    data["pm_scores"]["scalability_performance"] = 7
    data["self_assessment"]["risk_assessment"] = 6
    text = render_self_assessment(parse_report(json.dumps(data)))
    assert "RED FLAGS: none (every score here is 6 or above)" in text
