"""The prompts cover what the issue asks of each role, and forbid broadcast mentions."""

from __future__ import annotations

import pytest

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
