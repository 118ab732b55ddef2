"""The prompts cover what the issue asks of each role, and forbid broadcast mentions."""

from __future__ import annotations

import re
from datetime import date

import pytest

from agents.engineer import TaskBrief, build_messages
from agents.reports import ScoreAxis
from agents.researcher import ResearchBrief, research_request_text
from agents.templates import load_prompt

# One or more phrases per part of the engineer's role (issue 4).
ENGINEER_ROLE = {
    "relational, NoSQL, time-series and search databases": [
        "Relational databases",
        "NoSQL",
        "Time-series",
        "Search engines",
    ],
    "API styles, messaging, caching, containers and cloud": [
        "API styles",
        "Messaging",
        "Caching",
        "Containers",
        "Cloud platforms",
    ],
    "responsibilities": [
        "Database architecture",
        "API design and implementation",
        "Performance optimisation",
        "Data processing pipelines",
    ],
    "security": [
        "defence in depth",
        "encryption",
        "injection prevention",
        "rate limiting",
        "audit",
    ],
    "microservice and event-driven patterns": [
        "Microservices",
        "Event-driven",
        "Sagas",
        "CQRS",
        "Event sourcing",
    ],
    "schema and query optimisation": ["EXPLAIN ANALYZE", "Indexing", "N+1", "denormalise"],
    "REST standards": ["status codes", "Pagination", "Filtering", "Versioning", "HATEOAS"],
    "metrics": ["p50, p95 and p99", "throughput", "cache hit rate", "queue times", "error rates"],
    "scaling strategies": ["How you scale systems", "read replicas", "shard"],
    "key principles": [
        "Design for failure",
        "Data integrity over performance",
        "Observability from day one",
        "Security first",
        "Document trade-offs",
    ],
    "research validation": ["consult_researcher", "Research before significant designs"],
    "self-assessment and PM reporting": [
        "Self-assessment and reporting to the project manager",
        "Red flags",
        "below 6",
        "IN_PROGRESS",
    ],
}


@pytest.mark.parametrize("part", sorted(ENGINEER_ROLE))
def test_the_engineer_prompt_covers_each_part_of_the_role(part: str) -> None:
    prompt = load_prompt("backend_engineer").lower()
    missing = [phrase for phrase in ENGINEER_ROLE[part] if phrase.lower() not in prompt]
    assert not missing, f"{part}: {missing}"


@pytest.mark.parametrize("name", ["backend_engineer", "researcher", "report", "pm_standup"])
def test_every_prompt_forbids_broadcast_mentions(name: str) -> None:
    prompt = load_prompt(name)
    assert "@channel" in prompt and "<!channel>" in prompt and "<!here>" in prompt


@pytest.mark.parametrize("name", ["backend_engineer", "researcher"])
def test_web_content_is_framed_as_data(name: str) -> None:
    prompt = load_prompt(name).lower()
    assert "data" in prompt and "instructions" in prompt


# --- today's date: in each request, never in a cached system prompt -----------------------------

DEC_2 = date(2026, 12, 2)


def test_the_engineers_request_says_what_day_it_is_for_the_team() -> None:
    brief = TaskBrief(
        ref="T-1", request="design the API", requester="<@U1>", channel="<#C1>", today=DEC_2
    )
    messages, _ = build_messages(brief, [])
    request = messages[-1]["content"][0]["text"]
    assert request.startswith("Today is Wednesday 2 December 2026.")
    assert "design the API" in request


def test_the_researchers_request_says_what_day_it_is_and_asks_for_current_material() -> None:
    brief = ResearchBrief(objective="compare outbox libraries")
    text = research_request_text(brief, web=True, today=DEC_2)
    assert "Today is Wednesday 2 December 2026" in text
    assert "current as of this date" in text


@pytest.mark.parametrize("name", ["backend_engineer", "researcher", "report"])
def test_no_system_prompt_carries_a_date_that_would_break_its_cache(name: str) -> None:
    prompt = load_prompt(name)
    assert "$today" not in prompt
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\bToday is\b", prompt)


# --- the specification's substance: bands, axes, when research is required ----------------------


def test_the_report_prompt_gives_the_bands_and_defines_every_axis_and_its_direction() -> None:
    prompt = load_prompt("report")
    for band in ("**1-3**", "**4-6**", "**7-9**"):
        assert band in prompt
    for axis in ScoreAxis:
        assert f"`{axis.value}`:" in prompt, axis
    assert "9 is always the good end" in prompt
    assert "9 means\n    low risk" in prompt or "9 means low risk" in prompt


def test_research_is_required_for_datastores_migrations_security_and_10x_scale() -> None:
    prompt = load_prompt("backend_engineer")
    section = prompt[prompt.index("Research is **required**") :]
    section = section[: section.index("Use the `consult_researcher` tool")]
    for trigger in ("datastore", "migrates data", "security-relevant", "ten times today's load"):
        assert trigger in section, trigger
    assert "say why in one line" in section


def test_a_research_request_asks_for_comparisons_failures_and_numbers() -> None:
    engineer = load_prompt("backend_engineer")
    researcher = load_prompt("researcher")
    for asked in ("at least two implementations compared", "failure modes", "before-and-after"):
        assert asked in engineer
    for section in ("**Proven approaches**", "**Failures and lessons**", "**Numbers**"):
        assert section in researcher


@pytest.mark.parametrize(
    "phrase",
    [
        "FastAPI",
        "Django",
        "Flask",
        "SQLAlchemy",
        "Celery",
        "SQL Server",
        "Solr",
        "DDoS protection",
        "Service discovery and inter-service communication",
        "Scale up (a bigger machine)",
        "scale out (more machines)",
        "Eventual consistency",
        "RTO and RPO",
        "database query performance",
        "immediate and the long-term implications",
    ],
)
def test_the_engineer_prompt_keeps_the_specifications_technical_content(phrase: str) -> None:
    assert phrase in load_prompt("backend_engineer")
