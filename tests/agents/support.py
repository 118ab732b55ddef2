"""Builders shared by the agents tests: valid reports, and views of what the fake received."""

from __future__ import annotations

from typing import Any

from sandbox.model import FakeModel, Json, RecordedRequest, Text, ToolUse, WebSearch


def report_dict(**changes: Any) -> dict[str, Any]:
    """A valid CompletionReport as the model would send it; `changes` override fields."""
    report: dict[str, Any] = {
        "turn_kind": "backend_work",
        "task": "Design the orders API pagination",
        "status": "COMPLETED",
        "pm_scores": {
            "system_architecture_design": 8,
            "scalability_performance": 5,
            "integration_reliability": 7,
        },
        "self_assessment": {
            "probability_of_success": 8,
            "implementation_feasibility": 7,
            "quality_completeness": 7,
            "risk_assessment": 5,
            "alignment_value": 8,
        },
        "red_flags": [
            {
                "axis": "risk_assessment",
                "explanation": "The cursor format is not yet load-tested",
                "mitigation": "Run a k6 test at 2x peak before launch",
            },
            {
                "axis": "scalability_performance",
                "explanation": "Client migration off OFFSET paging is unplanned",
                "mitigation": "Ship both styles for one release and track usage",
            },
        ],
        "confidence_notes": "Assumes PostgreSQL 16 and fewer than 50M orders.",
        "key_deliverables": [
            {"kind": "api_integration", "description": "GET /v1/orders with cursor paging"},
            {"kind": "data_storage", "description": "Index on orders (customer_id, created_at)"},
        ],
        "dependencies_handoffs": [
            {"kind": "needed_from_others", "description": "Mobile team to adopt next_cursor"},
        ],
        "estimated_time": None,
    }
    report.update(changes)
    return report


def messages_requests(fake: FakeModel) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.path == "/v1/messages"]


def by_model(fake: FakeModel, model: str) -> list[RecordedRequest]:
    return [r for r in messages_requests(fake) if r.body.get("model") == model]


def tool_names(request: RecordedRequest) -> list[str]:
    return [str(tool["name"]) for tool in request.body.get("tools") or []]


def last_user_text(request: RecordedRequest) -> str:
    content = request.body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if b.get("type") == "text")


def tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    content = request.body["messages"][-1]["content"]
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def script_typical_task(fake: FakeModel, topic: str) -> None:
    """One typical task's replies: a research call, its web search, the answer, the report."""
    fake.script(
        ToolUse(
            "consult_researcher",
            {
                "objective": f"Proven designs for: {topic}",
                "context": "PostgreSQL 16 and Kafka, 40M rows, a REST API for mobile apps.",
                "specific_questions": ["What do teams at this scale use?", "What fails first?"],
                "constraints": ["No new datastore"],
                "output_wanted": "A recommendation with sources",
            },
            text_before="Let me check how others have built this.",
        ),
        WebSearch(
            topic,
            results=[
                (
                    "https://www.postgresql.org/docs/current/indexes.html",
                    "PostgreSQL: Indexes",
                    "Indexes are a common way to enhance database performance.",
                ),
                (
                    "https://kafka.apache.org/documentation/#semantics",
                    "Kafka: Message Delivery Semantics",
                    "Kafka supports idempotent producers and transactional writes.",
                ),
            ],
            answer_text=f"For {topic}, teams rely on composite indexes and idempotent consumers.",
        ),
        Text(
            f"Recommendation for {topic}: start with a composite index and an idempotency key; "
            "measure p95 and p99 before and after, and keep the old path behind a flag. " * 3
        ),
        Json(report_dict(task=topic)),
    )
