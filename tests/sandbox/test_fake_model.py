"""The fake Messages API, driven by the real AsyncAnthropic client over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import anthropic
import httpx2
import jsonschema
import pytest
from anthropic.types import (
    Message,
    MessageParam,
    ToolParam,
    ToolUnionParam,
    ToolUseBlockParam,
)
from pydantic import BaseModel, Field

from sandbox.model import (
    ApiError,
    Blocks,
    CutStream,
    Delay,
    FakeModel,
    Json,
    Text,
    ToolUse,
    WebSearch,
)
from sandbox.model.offline import DISCLAIMER

MODEL = "claude-sonnet-5-5"
ASK: list[MessageParam] = [
    {"role": "user", "content": "How should workers claim jobs from a queue?"}
]
RESEARCH_TOOL: ToolParam = {
    "name": "consult_researcher",
    "description": "Ask the researcher to search the web and report back with sources.",
    "input_schema": {
        "type": "object",
        "properties": {
            "question": {"type": "string"},
            "depth": {"type": "string", "enum": ["quick", "thorough"]},
        },
        "required": ["question"],
    },
}
LOOKUP_TOOL: ToolParam = {
    "name": "find_past_tasks",
    "description": "Look up earlier tasks by keyword.",
    "input_schema": {"type": "object", "properties": {"keyword": {"type": "string"}}},
}
WEB_SEARCH: ToolUnionParam = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(fake_model: FakeModel) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake_model.base_url, api_key="test-key", max_retries=0)


def _comparable(value: Any) -> Any:
    """A dump without the fields that legitimately differ between two answers: ids."""
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return {
            k: _comparable(v)
            for k, v in value.items()
            if k not in ("id", "tool_use_id", "parsed_output")
        }
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


async def test_create_returns_the_scripted_text(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    fake_model.script(Text("Use SKIP LOCKED."))

    message = await client.messages.create(model=MODEL, max_tokens=256, messages=ASK)

    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Use SKIP LOCKED."
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert fake_model.requests[-1].path == "/v1/messages"
    assert fake_model.requests[-1].body["messages"] == ASK
    assert fake_model.usages == [message.usage.model_dump(exclude_none=True)]


async def test_responses_carry_a_request_id(client: anthropic.AsyncAnthropic) -> None:
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=ASK)

    assert raw.headers["request-id"].startswith("req_")
    assert raw.request_id == raw.headers["request-id"]


async def test_scripted_tool_use_round_trip(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    fake_model.script(
        ToolUse("consult_researcher", {"question": "queue claims"}, text_before="Checking."),
        Text("Workers should claim with SKIP LOCKED."),
    )

    first = await client.messages.create(
        model=MODEL, max_tokens=256, messages=ASK, tools=[RESEARCH_TOOL]
    )
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert call.type == "tool_use"
    assert call.id.startswith("toolu_")
    assert (call.name, call.input) == ("consult_researcher", {"question": "queue claims"})

    second = await client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[RESEARCH_TOOL],
        messages=[
            *ASK,
            first.to_param(),
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "found"}],
            },
        ],
    )

    assert second.content[0].type == "text"
    assert second.content[0].text == "Workers should claim with SKIP LOCKED."
    sent = fake_model.requests[-1].body["messages"]
    assert sent[-1]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": "found",
    }


async def test_a_tool_use_without_its_tool_result_is_rejected(
    client: anthropic.AsyncAnthropic,
) -> None:
    call: ToolUseBlockParam = {
        "type": "tool_use",
        "id": "toolu_01x",
        "name": "consult_researcher",
        "input": {},
    }
    unanswered: MessageParam = {"role": "assistant", "content": [call]}

    with pytest.raises(anthropic.BadRequestError, match="tool_result"):
        await client.messages.create(
            model=MODEL,
            max_tokens=256,
            tools=[RESEARCH_TOOL],
            messages=[*ASK, unanswered, *ASK],
        )


STREAM_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "text": (Text("A queue table, claimed with FOR UPDATE SKIP LOCKED. " * 5), {}),
    "tool_use": (
        ToolUse("consult_researcher", {"question": "queues", "depth": "thorough", "n": [1, 2.5]}),
        {"tools": [RESEARCH_TOOL]},
    ),
    "web_search": (
        WebSearch(
            "postgres skip locked",
            results=[
                (
                    "https://www.postgresql.org/docs/current/sql-select.html",
                    "SELECT",
                    "SKIP LOCKED…",
                ),
                ("https://example.com/queues", "Queues in Postgres", "Workers skip locked rows."),
            ],
            answer_text="Claim rows with SKIP LOCKED.",
            page_age="May 1, 2025",
        ),
        {"tools": [WEB_SEARCH]},
    ),
    "thinking_then_text": (
        Blocks(
            [
                {"type": "thinking", "thinking": "Queues need leases.", "signature": "c2ln"},
                {"type": "text", "text": "Use leases."},
            ]
        ),
        {},
    ),
    "refusal": (Text("I can't help with that.", stop_reason="refusal"), {}),
    "offline_tool_call": (None, {"tools": [LOOKUP_TOOL, RESEARCH_TOOL]}),
    "offline_web_search": (None, {"tools": [WEB_SEARCH]}),
    "offline_answer": (None, {}),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
async def test_stream_accumulates_to_the_non_streamed_message(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic, case: str
) -> None:
    item, extra = STREAM_CASES[case]
    if item is not None:
        fake_model.script(item, item)

    created = await client.messages.create(model=MODEL, max_tokens=2048, messages=ASK, **extra)
    async with client.messages.stream(
        model=MODEL, max_tokens=2048, messages=ASK, **extra
    ) as stream:
        event_types = [event.type async for event in stream]
        streamed = await stream.get_final_message()

    assert event_types[0] == "message_start"
    assert event_types[-1] == "message_stop"
    assert "content_block_delta" in event_types
    assert streamed.stop_reason == created.stop_reason
    assert streamed.stop_details == created.stop_details
    assert _comparable(streamed.content) == _comparable(created.content)
    assert _comparable(streamed.usage) == _comparable(created.usage)


async def test_web_search_reply_has_results_and_cited_text(
    client: anthropic.AsyncAnthropic,
) -> None:
    message = await client.messages.create(
        model=MODEL,
        max_tokens=2048,
        messages=[{"role": "user", "content": "How do idempotency keys make retries safe?"}],
        tools=[WEB_SEARCH],
    )

    kinds = [b.type for b in message.content]
    assert kinds[:3] == ["text", "server_tool_use", "web_search_tool_result"]
    call, result = message.content[1], message.content[2]
    assert call.type == "server_tool_use" and result.type == "web_search_tool_result"
    assert call.name == "web_search" and call.id.startswith("srvtoolu_")
    assert "idempotency" in str(call.input["query"])
    assert result.tool_use_id == call.id
    assert isinstance(result.content, list) and result.content
    urls = {r.url for r in result.content}
    assert "https://docs.stripe.com/api/idempotent_requests" in urls
    assert all(r.encrypted_content and r.title for r in result.content)
    citations = [c for b in message.content if b.type == "text" for c in b.citations or []]
    assert citations
    assert all(c.type == "web_search_result_location" for c in citations)
    assert {c.url for c in citations if c.type == "web_search_result_location"} <= urls
    first_text = message.content[0]
    assert first_text.type == "text" and first_text.text.startswith(DISCLAIMER)
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1


class Scores(BaseModel):
    system_architecture: int = Field(ge=1, le=9)
    implementation_feasibility: int = Field(ge=1, le=9)
    scalability_performance: int = Field(ge=1, le=9)
    risk_assessment: int = Field(ge=1, le=9)
    integration_reliability: int = Field(ge=1, le=9)


class RedFlag(BaseModel):
    score: str
    explanation: str
    mitigation: str


class Report(BaseModel):
    task: str
    status: Literal["COMPLETED", "IN_PROGRESS", "BLOCKED"]
    pm_scores: Scores
    self_assessment: Scores
    red_flags: list[RedFlag] = Field(description="One red flag per score below 6.")
    confidence_notes: str
    key_deliverables: list[str] = Field(min_length=1)
    estimated_time: str | None = None


async def test_parse_offline_returns_a_validated_report(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    message = await client.messages.parse(
        model=MODEL, max_tokens=4096, messages=ASK, output_format=Report
    )

    report = message.parsed_output
    assert isinstance(report, Report)
    assert report.task == "How should workers claim jobs from a queue?"
    assert report.key_deliverables
    assert "offline demo model" in report.confidence_notes
    sent = fake_model.requests[-1].body["output_config"]
    assert sent["format"]["type"] == "json_schema"
    assert sent["format"]["schema"]["additionalProperties"] is False


async def test_offline_red_flags_match_the_low_scores(client: anthropic.AsyncAnthropic) -> None:
    flagged = 0
    for topic in ("queues", "rate limits", "caching", "standups", "retries", "indexes"):
        message = await client.messages.parse(
            model=MODEL,
            max_tokens=4096,
            messages=[{"role": "user", "content": f"Write up the work on {topic}."}],
            output_format=Report,
        )
        report = message.parsed_output
        assert report is not None
        scores = [
            *report.pm_scores.model_dump().items(),
            *report.self_assessment.model_dump().items(),
        ]
        low = [name for name, value in scores if value < 6]
        assert len(report.red_flags) == len(low)
        flagged += len(low)
    # The scores vary with the conversation, so some of these reports carry red flags.
    assert flagged > 0


async def test_offline_scores_are_deterministic(client: anthropic.AsyncAnthropic) -> None:
    reports = [
        (
            await client.messages.parse(
                model=MODEL, max_tokens=4096, messages=ASK, output_format=Report
            )
        ).parsed_output
        for _ in range(2)
    ]

    assert reports[0] == reports[1]


async def test_streamed_structured_output_is_parsed_at_the_end(
    client: anthropic.AsyncAnthropic,
) -> None:
    async with client.messages.stream(
        model=MODEL, max_tokens=4096, messages=ASK, output_format=Report
    ) as stream:
        message = await stream.get_final_message()

    assert isinstance(message.parsed_output, Report)


async def test_parse_returns_the_scripted_json(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    scores = {
        "system_architecture": 8,
        "implementation_feasibility": 7,
        "scalability_performance": 7,
        "risk_assessment": 5,
        "integration_reliability": 7,
    }
    fake_model.script(
        Json(
            {
                "task": "Queue design",
                "status": "IN_PROGRESS",
                "pm_scores": scores,
                "self_assessment": scores,
                "red_flags": [{"score": "Risk", "explanation": "untested", "mitigation": "test"}],
                "confidence_notes": "fine",
                "key_deliverables": ["queue table"],
                "estimated_time": "2 days",
            }
        )
    )

    message = await client.messages.parse(
        model=MODEL, max_tokens=4096, messages=ASK, output_format=Report
    )

    assert message.parsed_output is not None
    assert message.parsed_output.status == "IN_PROGRESS"
    assert message.parsed_output.pm_scores.risk_assessment == 5


async def test_offline_json_conforms_to_a_raw_schema(client: anthropic.AsyncAnthropic) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "$defs": {
            "Step": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 3, "maxLength": 40},
                    "hours": {"type": "integer", "minimum": 1, "maximum": 40},
                    "kind": {"enum": ["build", "test", "ship"]},
                },
                "required": ["title", "hours", "kind"],
                "additionalProperties": False,
            }
        },
        "properties": {
            "summary": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}, "minItems": 4},
            "owner": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
            "blocked": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 1},
        },
        "required": ["summary", "confidence", "steps", "owner", "blocked", "tags"],
        "additionalProperties": False,
    }

    message = await client.messages.create(
        model=MODEL,
        max_tokens=4096,
        messages=ASK,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )

    block = message.content[0]
    assert block.type == "text"
    value = json.loads(block.text)
    jsonschema.validate(value, schema)
    assert len(value["steps"]) >= 4


async def test_overloaded_twice_then_success_is_retried(fake_model: FakeModel) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_model.base_url, api_key="k", max_retries=2)
    fake_model.script(
        ApiError(529, "overloaded_error", "Overloaded", retry_after_ms=5),
        ApiError(529, retry_after_ms=5),
        Text("third time lucky"),
    )

    started = time.monotonic()
    message = await client.messages.create(model=MODEL, max_tokens=256, messages=ASK)

    assert message.content[0].type == "text" and message.content[0].text == "third time lucky"
    assert len(fake_model.requests) == 3
    assert [r.headers["x-stainless-retry-count"] for r in fake_model.requests] == ["0", "1", "2"]
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
    ],
)
async def test_scripted_errors_have_the_api_error_shape(
    fake_model: FakeModel,
    client: anthropic.AsyncAnthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    fake_model.script(ApiError(status, message="nope", retry_after_ms=1))

    with pytest.raises(error_class) as caught:
        await client.messages.create(model=MODEL, max_tokens=256, messages=ASK)

    assert caught.value.status_code == status
    assert caught.value.body == {
        "type": "error",
        "error": {"type": error_type, "message": "nope"},
        "request_id": caught.value.request_id,
    }
    assert str(caught.value.request_id).startswith("req_")


@pytest.mark.parametrize(
    "choice", [{"type": "tool", "name": "consult_researcher"}, {"type": "any"}]
)
async def test_forced_tool_choice_is_rejected(
    client: anthropic.AsyncAnthropic, choice: Any
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=MODEL, max_tokens=256, messages=ASK, tools=[RESEARCH_TOOL], tool_choice=choice
        )

    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "invalid_request_error"


async def test_missing_required_fields_are_rejected(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: Field required"):
        await client.post("/v1/messages", body={"model": MODEL, "messages": ASK}, cast_to=Message)
    with pytest.raises(anthropic.BadRequestError, match="messages: Field required"):
        await client.post("/v1/messages", body={"model": MODEL, "max_tokens": 5}, cast_to=Message)


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[FakeModel, ManualClock]]:
    clock = ManualClock()
    fake = FakeModel(clock=clock)
    await fake.start(host="127.0.0.1", port=0)
    yield fake, clock
    await fake.stop()


def _cached_request(ttl: Literal["5m", "1h"]) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "system": [
            {
                "type": "text",
                "text": "You are a careful backend engineer. " * 40,
                "cache_control": {"type": "ephemeral", "ttl": ttl},
            }
        ],
        "messages": ASK,
    }


async def test_prompt_cache_writes_then_reads_then_expires(
    clocked: tuple[FakeModel, ManualClock],
) -> None:
    fake, clock = clocked
    client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    request = _cached_request("5m")
    counted = await client.messages.count_tokens(
        model=MODEL, system=request["system"], messages=ASK
    )

    first = await client.messages.create(**request)
    clock.now += 200
    second = await client.messages.create(**request)
    clock.now += 299  # the read refreshed the entry, so it is still alive
    third = await client.messages.create(**request)
    clock.now += 301
    fourth = await client.messages.create(**request)

    written = first.usage.cache_creation_input_tokens
    assert written and written > 0
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == written
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 0
    assert first.usage.input_tokens + written == counted.input_tokens
    for hit in (second, third):
        assert hit.usage.cache_read_input_tokens == written
        assert hit.usage.cache_creation_input_tokens == 0
        assert hit.usage.input_tokens == first.usage.input_tokens
    assert fourth.usage.cache_read_input_tokens == 0
    assert fourth.usage.cache_creation_input_tokens == written
    assert [u["cache_read_input_tokens"] for u in fake.usages] == [0, written, written, 0]
    assert fake.requests[0].path == "/v1/messages/count_tokens"


async def test_one_hour_cache_outlives_five_minutes(
    clocked: tuple[FakeModel, ManualClock],
) -> None:
    fake, clock = clocked
    client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)
    request = _cached_request("1h")

    first = await client.messages.create(**request)
    clock.now += 1800
    second = await client.messages.create(**request)
    clock.now += 3601
    third = await client.messages.create(**request)

    assert first.usage.cache_creation is not None
    assert (
        first.usage.cache_creation.ephemeral_1h_input_tokens
        == first.usage.cache_creation_input_tokens
    )
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert third.usage.cache_read_input_tokens == 0


async def test_agent_loop_reads_the_previous_turns_prefix(
    client: anthropic.AsyncAnthropic,
) -> None:
    system: Any = [
        {"type": "text", "text": "Engineer. " * 100, "cache_control": {"type": "ephemeral"}}
    ]
    first = await client.messages.create(
        model=MODEL,
        max_tokens=2048,
        system=system,
        tools=[RESEARCH_TOOL],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Design a queue.",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            }
        ],
    )
    call = first.content[-1]
    assert call.type == "tool_use"
    second = await client.messages.create(
        model=MODEL,
        max_tokens=2048,
        system=system,
        tools=[RESEARCH_TOOL],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Design a queue."}]},
            first.to_param(),
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": "Use SKIP LOCKED.",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
        ],
    )

    # The breakpoint moved forward, and the earlier prefix is found by looking back.
    total_first = (
        first.usage.input_tokens
        + (first.usage.cache_creation_input_tokens or 0)
        + (first.usage.cache_read_input_tokens or 0)
    )
    assert second.usage.cache_read_input_tokens == total_first
    assert (second.usage.cache_creation_input_tokens or 0) > 0


async def test_a_cut_stream_raises_in_the_sdk(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    fake_model.script(CutStream(Text("half of a long answer " * 20), after_events=4))
    received: list[str] = []

    with pytest.raises((httpx2.TransportError, anthropic.APIConnectionError)):
        async with client.messages.stream(model=MODEL, max_tokens=256, messages=ASK) as stream:
            async for event in stream:
                received.append(event.type)

    assert "message_start" in received
    assert "message_stop" not in received


async def test_an_error_event_mid_stream_raises_in_the_sdk(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    overloaded = ApiError(529, "overloaded_error", "Overloaded")
    fake_model.script(CutStream(Text("half of a long answer " * 20), 5, error=overloaded))

    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=256, messages=ASK) as stream:
            await stream.get_final_message()

    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


async def test_a_cut_non_streamed_request_is_a_connection_error(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    fake_model.script(CutStream(Text("never sent")))

    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(model=MODEL, max_tokens=256, messages=ASK)

    assert fake_model.usages == []


async def test_delay_holds_the_answer_back(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    fake_model.script(Delay(0.2, then=Text("late")))

    started = time.monotonic()
    message = await client.messages.create(model=MODEL, max_tokens=256, messages=ASK)

    assert time.monotonic() - started >= 0.2
    assert message.content[0].type == "text" and message.content[0].text == "late"


async def test_offline_model_calls_research_first_then_answers(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    tools = [LOOKUP_TOOL, RESEARCH_TOOL]
    first = await client.messages.create(model=MODEL, max_tokens=2048, messages=ASK, tools=tools)

    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    assert call.name == "consult_researcher"
    jsonschema.validate(call.input, RESEARCH_TOOL["input_schema"])
    assert call.input["question"] == "How should workers claim jobs from a queue?"

    second = await client.messages.create(
        model=MODEL,
        max_tokens=2048,
        tools=tools,
        messages=[
            *ASK,
            first.to_param(),
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "SKIP LOCKED works."}
                ],
            },
        ],
    )

    assert second.stop_reason == "end_turn"
    answer = second.content[0]
    assert answer.type == "text"
    assert answer.text.startswith(DISCLAIMER)
    assert "SKIP LOCKED works." in answer.text
    assert len(fake_model.requests) == 2


async def test_the_offline_disclaimer_is_said_once_per_thread(
    client: anthropic.AsyncAnthropic,
) -> None:
    first = await client.messages.create(model=MODEL, max_tokens=2048, messages=ASK)
    first_text = "".join(b.text for b in first.content if b.type == "text")
    assert first_text.count("offline demo model") == 2  # the disclaimer, and the risks

    follow_up = await client.messages.create(
        model=MODEL,
        max_tokens=2048,
        messages=[
            *ASK,
            {"role": "assistant", "content": first_text},
            {"role": "user", "content": "And how do workers renew their claim?"},
        ],
    )
    again = "".join(b.text for b in follow_up.content if b.type == "text")
    assert "renew their claim" in again  # a real answer to the follow-up
    assert DISCLAIMER not in again and "offline demo model" not in again


async def test_offline_answer_respects_max_tokens(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=ASK)

    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens <= 10


async def test_bearer_and_x_api_key_are_accepted_and_no_key_is_401(
    fake_model: FakeModel, client: anthropic.AsyncAnthropic
) -> None:
    await client.messages.create(model=MODEL, max_tokens=256, messages=ASK)
    await client.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=ASK,
        extra_headers={"Authorization": anthropic.omit, "x-api-key": "test-key"},
    )
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await client.messages.create(
            model=MODEL,
            max_tokens=256,
            messages=ASK,
            extra_headers={"Authorization": anthropic.omit},
        )

    bearer, api_key, anonymous = fake_model.requests
    assert bearer.headers["authorization"] == "Bearer test-key"
    assert "authorization" not in api_key.headers and api_key.headers["x-api-key"] == "test-key"
    assert "authorization" not in anonymous.headers and "x-api-key" not in anonymous.headers
    assert caught.value.status_code == 401
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "authentication_error"


async def test_the_offline_model_reads_the_request_past_its_date_and_intro_lines(
    client: anthropic.AsyncAnthropic,
) -> None:
    """The engineer's request opens with the date and who asked; the demo's research question
    is the request itself, with neither in it."""
    dated = [
        {
            "role": "user",
            "content": "Today is Wednesday 2 December 2026.\n\n"
            "Task T-1 in <#C1>, from <@U1>:\n\nHow should workers claim jobs from a queue?",
        }
    ]
    first = await client.messages.create(
        model=MODEL, max_tokens=2048, messages=dated, tools=[LOOKUP_TOOL, RESEARCH_TOOL]
    )
    call = first.content[-1]
    assert call.type == "tool_use"
    assert call.input["question"] == "How should workers claim jobs from a queue?"
