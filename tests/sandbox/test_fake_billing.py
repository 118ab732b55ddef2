"""What the fake bills the way the real API does: a change of output format costs the cached
conversation, and web-search results are billed again on each later step of their call."""

from __future__ import annotations

from typing import Any

import anthropic

from sandbox.model import Blocks, FakeModel, Text, WebSearch
from sandbox.model.script import web_search_blocks
from sandbox.model.wire import SEARCH_RESULT_TOKENS

MODEL = "claude-sonnet-5-5"
SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string"}},
    "required": ["verdict"],
    "additionalProperties": False,
}
TOOL = {
    "name": "lookup",
    "description": "Look something up. " * 60,
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    "cache_control": {"type": "ephemeral", "ttl": "1h"},
}


def _conversation(fmt: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "tools": [TOOL],
        "system": [
            {
                "type": "text",
                "text": "You are a careful backend engineer. " * 60,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        "messages": [
            {"role": "user", "content": "Index the orders table. " * 80},
            {"role": "assistant", "content": "Use a composite index on (customer_id, id)."},
            {"role": "user", "content": [{"type": "text", "text": "File the report."}]},
        ],
        "cache_control": {"type": "ephemeral"},
    }
    if fmt is not None:
        body["output_config"] = {"format": fmt}
    return body


async def test_a_new_output_format_reads_only_the_tools_from_the_cache(
    fake_model: FakeModel,
) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_model.base_url, api_key="k", max_retries=0)
    plain = _conversation(None)
    formatted = _conversation({"type": "json_schema", "schema": SCHEMA})
    fake_model.script(Text("ok"), Text("ok"), Text('{"verdict": "ok"}'), Text('{"verdict": "ok"}'))

    first = await client.messages.create(**plain)
    again = await client.messages.create(**plain)
    with_format = await client.messages.create(**formatted)
    format_again = await client.messages.create(**formatted)

    prompt = first.usage.cache_creation_input_tokens or 0
    assert first.usage.cache_read_input_tokens == 0 and prompt > 0
    assert again.usage.cache_read_input_tokens == prompt  # same request: all of it cached
    # The format adds a system prompt ahead of ours: the system prompt and the conversation
    # miss, and only the tools (cached before the system prompt) are read.
    tools_only = with_format.usage.cache_read_input_tokens or 0
    assert 0 < tools_only < prompt // 3
    assert (with_format.usage.cache_creation_input_tokens or 0) > prompt - tools_only
    # The added prompt is billed: the formatted request is longer than the plain one.
    formatted_total = (
        with_format.usage.input_tokens
        + (with_format.usage.cache_creation_input_tokens or 0)
        + tools_only
    )
    assert formatted_total > prompt
    # The same format again reads what the first formatted call wrote.
    assert format_again.usage.cache_read_input_tokens == formatted_total


async def test_search_results_are_billed_again_on_each_later_step_of_the_call(
    fake_model: FakeModel,
) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_model.base_url, api_key="k", max_retries=0)
    results = [("https://example.com/a", "A", "alpha"), ("https://example.com/b", "B", "beta")]
    one = WebSearch("orders index", results=results, answer_text="Use an index.")
    two_searches = Blocks(
        [
            *web_search_blocks("first", [(u, t, s, None) for u, t, s in results]),
            *web_search_blocks("second", [(u, t, s, None) for u, t, s in results]),
            {"type": "text", "text": "Use an index."},
        ]
    )
    fake_model.script(Text("plain"), one, two_searches)
    ask: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "How should we index orders?"}],
    }
    plain = await client.messages.create(**ask)
    searched = await client.messages.create(**ask)
    twice = await client.messages.create(**ask)

    base = plain.usage.input_tokens
    per_search = 2 * SEARCH_RESULT_TOKENS
    # One search: its two results are read back once, by the step that writes the answer.
    assert per_search <= searched.usage.input_tokens - base < per_search + 100
    # Two searches: the first search's results are read by two later steps, the second's by
    # one; three result sets in all.
    assert 3 * per_search <= twice.usage.input_tokens - base < 3 * per_search + 200
    assert searched.usage.server_tool_use is not None
    assert searched.usage.server_tool_use.web_search_requests == 1


async def test_the_billed_size_of_a_search_result_can_be_set() -> None:
    async with FakeModel(search_result_tokens=50) as fake:
        client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k", max_retries=0)
        results = [("https://example.com/a", "A", "alpha")] * 4
        fake.script(Text("plain"), WebSearch("q", results=results, answer_text="done"))
        ask: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "q"}],
        }
        plain = await client.messages.create(**ask)
        searched = await client.messages.create(**ask)
    assert 4 * 50 <= searched.usage.input_tokens - plain.usage.input_tokens < 4 * 50 + 60


async def test_diagnostics_name_what_changed_since_the_previous_message(
    fake_model: FakeModel,
) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_model.base_url, api_key="k", max_retries=0)
    fake_model.script(*(Text('{"verdict": "ok"}') for _ in range(4)))
    plain = _conversation(None)
    first = await client.messages.create(**plain, diagnostics={"previous_message_id": None})
    assert first.diagnostics is None  # opted in, nothing to compare yet

    same = await client.messages.create(**plain, diagnostics={"previous_message_id": first.id})
    assert same.diagnostics is None  # the same prefix: no divergence

    formatted = _conversation({"type": "json_schema", "schema": SCHEMA})
    report = await client.messages.create(**formatted, diagnostics={"previous_message_id": same.id})
    assert report.diagnostics is not None and report.diagnostics.cache_miss_reason is not None
    assert report.diagnostics.cache_miss_reason.type == "system_changed"

    lost = await client.messages.create(**plain, diagnostics={"previous_message_id": "msg_unknown"})
    assert lost.diagnostics is not None and lost.diagnostics.cache_miss_reason is not None
    assert lost.diagnostics.cache_miss_reason.type == "previous_message_not_found"
