"""The evaluation's checks judge a turn the way the issue says, and one case's failure is
scored, not raised."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from agents.config import AgentSettings
from agents.engineer import EngineerResult
from agents.evaluation import (
    CASES_FILE,
    CHECKS,
    CaseResult,
    EvalCase,
    EvalRun,
    Limits,
    check_key_terms,
    check_red_flags,
    check_research,
    check_schema,
    check_sources,
    load_cases,
    render_table,
    run_case,
    score_case,
    verdict,
)
from agents.llm import ModelClient, PromptPrefix, UsageTotals
from agents.reports import ReportOutcome, TurnKind, stored_outcome
from agents.researcher import Research, ResearchBrief, Source
from sandbox.model import ApiError, FakeModel, Json, Text
from tests.agents.support import report_dict

MIGRATION = EvalCase(
    name="migration",
    request="Plan a zero-downtime migration of users.address into an addresses table.",
    key_terms=("zero-downtime", "backfill", "addresses", "rollback"),
    research_required=True,
    expect_kind=TurnKind.BACKEND_WORK,
)
SLOW_QUERY = EvalCase(
    name="slow_query",
    request="This query went from 40 ms to 4 s; the plan shows a Seq Scan.",
    key_terms=("index", "Seq Scan", "account_id", "created_at"),
    research_required=False,
    expect_kind=TurnKind.BACKEND_WORK,
)


def research(*urls: str, live: bool = True) -> Research:
    return Research(
        brief=ResearchBrief(objective="How do teams split a users table online?"),
        findings="Teams backfill in batches and dual-write.",
        sources=tuple(Source(url=url, title="a page", cited_text="") for url in urls),
        live_sources=live,
        web_searches=1 if live else 0,
        web_fetches=0,
    )


def engineer_result(
    answer: str = "", researched: tuple[Research, ...] = (), cost_usd: float = 0.01
) -> EngineerResult:
    return EngineerResult(
        answer=answer,
        truncated=False,
        stopped_early=None,
        research=list(researched),
        tool_calls=[],
        conversation=[],
        exchange=[],
        prefix=PromptPrefix(system="You are the backend engineer."),
        usage=UsageTotals(calls=1, cost_usd=cost_usd),
        stream_failed=False,
        trimmed=0,
    )


def outcome(cost_usd: float = 0.001, **changes: Any) -> ReportOutcome:
    """A report as the reporter's call returns it (read leniently, as a kept report is)."""
    kept = stored_outcome(report_dict(**changes), [])
    return ReportOutcome(
        report=kept.report, gaps=kept.gaps, usage=UsageTotals(calls=1, cost_usd=cost_usd)
    )


def scored(
    case: EvalCase = SLOW_QUERY,
    result: EngineerResult | None = None,
    report: ReportOutcome | None = None,
    *,
    seconds: float = 10.0,
    limits: Limits | None = None,
) -> CaseResult:
    return score_case(
        case,
        result=result or engineer_result("Add an index on (account_id, created_at)."),
        outcome=report or outcome(),
        seconds=seconds,
        limits=limits or Limits(),
        web=True,
    )


# -- the checks ------------------------------------------------------------------------------


def test_a_score_below_six_without_its_red_flag_fails_red_flags_and_schema() -> None:
    unflagged = outcome(red_flags=report_dict()["red_flags"][:1])  # scalability 5/9 unflagged

    result = scored(report=unflagged)

    assert not result.check("red_flags").passed
    assert "scalability_performance 5/9" in result.check("red_flags").reason
    assert not result.check("schema").passed  # the reporter kept it only with a gap


def test_a_red_flag_on_a_score_of_six_or_more_is_a_mismatch() -> None:
    flags = [
        *report_dict()["red_flags"],
        {"axis": "alignment_value", "explanation": "Unclear", "mitigation": "Ask the PM"},
    ]

    check = check_red_flags(outcome(red_flags=flags).report)

    assert not check.passed
    assert "alignment_value 8/9" in check.reason


def test_every_low_score_flagged_passes_red_flags() -> None:
    check = check_red_flags(outcome().report)

    assert check.passed
    assert check.reason == "2 score(s) below 6, each flagged"


def test_a_report_read_only_on_the_re_ask_passes_schema_but_none_at_all_fails() -> None:
    retried = ReportOutcome(report=outcome().report, attempts=2, first_error="not JSON")

    assert check_schema(retried).passed
    assert not check_schema(None, "asked twice, nothing readable").passed


def test_research_required_but_none_done_fails_research_and_sources() -> None:
    result = scored(MIGRATION, engineer_result("Add a column, backfill, then drop the old one."))

    assert not result.check("research").passed
    assert not result.check("sources").passed


def test_research_not_required_and_none_done_passes_research_and_sources() -> None:
    result = scored(SLOW_QUERY, engineer_result("Add an index on (account_id, created_at)."))

    assert result.check("research").passed
    assert result.check("sources").passed


def test_required_research_without_live_sources_fails_only_when_web_search_is_on() -> None:
    offline_research = engineer_result(researched=(research(live=False),))

    assert not check_research(MIGRATION, offline_research, web=True).passed
    assert check_research(MIGRATION, offline_research, web=False).passed
    assert check_research(MIGRATION, engineer_result(researched=(research(),)), web=True).passed


def test_sources_need_a_web_page_when_research_ran_on_the_web() -> None:
    no_page = engineer_result(researched=(research("urn:isbn:0451450523"),))
    a_page = engineer_result(researched=(research("https://www.postgresql.org/docs/"),))

    assert not check_sources(MIGRATION, no_page, web=True).passed
    assert check_sources(MIGRATION, a_page, web=True).passed


def test_half_the_key_terms_is_enough_and_fewer_is_not() -> None:
    half = "Create the INDEX concurrently; the Seq Scans go away."
    quarter = "Create the index concurrently."

    assert check_key_terms(SLOW_QUERY, half).passed
    failed = check_key_terms(SLOW_QUERY, quarter)
    assert not failed.passed
    assert failed.reason == "1/4 found; missing: Seq Scan, account_id, created_at"


@pytest.mark.parametrize(
    ("terms", "answer", "found"),
    [
        (("migrations",), "one migration", True),  # a plural term finds its singular
        (("index",), "the indexes on events", True),
        (("Seq Scan",), "a seq\nscan over 80M rows", True),
        (("rate",), "a separate table", False),  # not inside another word
        (("KMS",), "use envelope encryption", False),
    ],
)
def test_key_terms_match_case_insensitively_at_the_start_of_a_word(
    terms: tuple[str, ...], answer: str, found: bool
) -> None:
    case = EvalCase("t", "q", terms, research_required=False, expect_kind=None)

    assert check_key_terms(case, answer).passed is found


def test_no_key_terms_to_look_for_passes() -> None:
    off_topic = EvalCase("off_topic", "lasagne?", (), research_required=False, expect_kind=None)

    assert check_key_terms(off_topic, "I only do backend work.").passed


def test_cost_over_the_cap_fails_counting_the_engineer_and_the_report() -> None:
    limits = Limits(max_cost_usd=0.07)
    each_under = scored(
        result=engineer_result(cost_usd=0.05), report=outcome(cost_usd=0.03), limits=limits
    )
    both_under = scored(
        result=engineer_result(cost_usd=0.05), report=outcome(cost_usd=0.01), limits=limits
    )

    assert not each_under.check("cost").passed
    assert each_under.check("cost").reason == "$0.0800 > $0.0700"
    assert both_under.check("cost").passed


def test_latency_over_the_cap_fails() -> None:
    assert not scored(seconds=181.0, limits=Limits(max_seconds=180)).check("latency").passed
    assert scored(seconds=179.0, limits=Limits(max_seconds=180)).check("latency").passed


def test_the_wrong_turn_kind_fails_kind_and_no_expectation_accepts_either() -> None:
    either = EvalCase("vague", "make it faster", (), research_required=False, expect_kind=None)
    talk = outcome(turn_kind="conversation")

    assert not scored(SLOW_QUERY, report=talk).check("kind").passed
    assert scored(either, report=talk).check("kind").passed


def test_a_case_scores_its_share_of_passed_checks() -> None:
    result = scored(MIGRATION, engineer_result("zero-downtime backfill of addresses, rollback"))

    assert [c.name for c in result.checks] == list(CHECKS)
    assert result.passed == 6  # research and sources fail
    assert result.score == 6 / 8


# -- the cases -------------------------------------------------------------------------------


def test_the_shipped_cases_are_the_eight_of_the_issue() -> None:
    cases = {case.name: case for case in load_cases()}

    assert list(cases) == [
        "schema_review",
        "api_design",
        "queue",
        "slow_query",
        "migration",
        "security",
        "vague",
        "off_topic",
    ]
    assert {name for name, c in cases.items() if c.research_required} == {
        "queue",
        "migration",
        "security",
    }
    assert cases["off_topic"].key_terms == ()
    assert cases["off_topic"].expect_kind is TurnKind.CONVERSATION
    assert all(3 <= len(c.key_terms) <= 5 for name, c in cases.items() if name != "off_topic")


def test_a_case_without_its_request_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "cases.toml"
    path.write_text('[[case]]\nname = "queue"\nkey_terms = ["SQS"]\n')

    with pytest.raises(ValueError, match=r"case 1 \(queue\): request must be"):
        load_cases(path)


def test_the_shipped_file_is_toml_a_person_can_edit() -> None:
    with CASES_FILE.open("rb") as file:
        assert len(tomllib.load(file)["case"]) == 8


# -- the run and its verdict -----------------------------------------------------------------


def run_of(*results: CaseResult) -> EvalRun:
    return EvalRun(results=results, seconds=1.0, settings=AgentSettings())


def test_the_verdict_fails_under_the_threshold_or_when_a_case_raised() -> None:
    perfect = scored()
    raised = CaseResult(
        case=MIGRATION, checks=(), cost_usd=0.0, seconds=0.1, error="ModelUnavailable: down"
    )

    assert verdict(run_of(perfect), 0.85) == "score 1.00 ≥ threshold 0.85: pass"
    assert verdict(run_of(perfect), 1.01) == "score 1.00 < threshold 1.01: FAIL"
    assert not run_of(perfect, raised).passes(0.0)
    assert verdict(run_of(perfect, raised), 0.4).endswith("but 1 case(s) raised: FAIL")


def test_a_score_just_under_the_threshold_is_not_shown_as_equal() -> None:
    unresearched = scored(MIGRATION, engineer_result("zero-downtime backfill of addresses"))
    run = run_of(*([scored()] * 6), unresearched, unresearched)  # (6 + 2 * 6/8) / 8 = 0.9375

    assert verdict(run, 0.94) == "score 0.938 < threshold 0.940: FAIL"


def test_the_table_names_each_failed_check_with_its_reason() -> None:
    table = render_table(run_of(scored(MIGRATION, engineer_result("backfill"))), 0.85)

    assert "migration · research: required, but no research request ran" in table
    assert table.splitlines()[-1] == "score 0.62 < threshold 0.85: FAIL"


# -- running a case against the fake model ---------------------------------------------------


async def test_a_turn_without_the_required_research_is_scored_not_raised(
    fake_model: FakeModel, model: ModelClient, settings: AgentSettings
) -> None:
    fake_model.script(
        Text("Add addresses, backfill it in batches of 10k, dual-write, then drop the columns."),
        Json(report_dict()),
    )

    result = await run_case(MIGRATION, model=model, settings=settings, limits=Limits())

    assert result.error is None
    assert result.check("schema").passed
    assert not result.check("research").passed
    assert result.check("key_terms").passed  # backfill, addresses
    assert result.cost_usd > 0


async def test_an_unreadable_report_fails_schema_and_the_case_still_finishes(
    fake_model: FakeModel, model: ModelClient, settings: AgentSettings
) -> None:
    fake_model.script(
        Text("Create an index on events (account_id, created_at DESC)."),
        Text("Here is my report: all good."),
        Text("Sorry, still no JSON."),
    )

    result = await run_case(SLOW_QUERY, model=model, settings=settings, limits=Limits())

    assert result.error is None
    assert not result.check("schema").passed
    assert result.check("schema").reason.startswith("no readable report")
    assert not result.check("red_flags").passed
    assert result.check("key_terms").passed


async def test_a_model_that_refuses_the_request_is_a_case_that_raised(
    fake_model: FakeModel, model: ModelClient, settings: AgentSettings
) -> None:
    fake_model.script(ApiError(400, message="model: unknown model 'claude-nonesuch'"))

    result = await run_case(SLOW_QUERY, model=model, settings=settings, limits=Limits())

    assert result.error is not None and result.error.startswith("ModelRejected")
    assert result.score == 0.0
