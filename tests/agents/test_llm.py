"""Model calls over HTTP to the fake: retries, stop reasons, cache breakpoints, prices, ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.errors import (
    ContextTooLong,
    ModelRefused,
    ModelRejected,
    ModelUnavailable,
    TurnIncomplete,
)
from agents.llm import (
    Completion,
    ModelClient,
    PromptPrefix,
    TokenCounts,
    TurnRef,
    Wire,
    cost_usd,
    price_for,
)
from sandbox.model import ApiError, Blocks, CutStream, FakeModel, Text
from storage.models import LLMCall
from tests.agents.support import last_user_text, messages_requests

PROMPT_TEXT = "You are a test."
PREFIX = PromptPrefix(
    system=PROMPT_TEXT,
    tools=(
        {"name": "lookup", "description": "d", "input_schema": {"type": "object"}},
        {"name": "other", "description": "d", "input_schema": {"type": "object"}},
    ),
    ttl="1h",
)
ASK: list[Wire] = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]


async def complete(model: ModelClient, **kwargs: Any) -> Completion:
    args: dict[str, Any] = {
        "agent": "engineer",
        "model": "claude-sonnet-5-5",
        "prefix": PREFIX,
        "messages": ASK,
        "max_tokens": 1000,
        "ref": TurnRef(),
    }
    args.update(kwargs)
    return await model.complete(**args)


# --- prices -------------------------------------------------------------------------------------


def test_cost_of_a_sonnet_call_matches_hand_arithmetic() -> None:
    counts = TokenCounts(
        input_tokens=1_000,
        output_tokens=500,
        cache_read_tokens=10_000,
        cache_write_5m_tokens=2_000,
        cache_write_1h_tokens=4_000,
        web_searches=3,
    )
    # By hand, at $2 in / $10 out per MTok:
    #   input 1,000 x 2 = 0.002; 5m writes 2,000 x 2 x 1.25 = 0.005;
    #   1h writes 4,000 x 2 x 2 = 0.016; reads 10,000 x 2 x 0.1 = 0.002;
    #   output 500 x 10 = 0.005; searches 3 x $10/1000 = 0.03.  Total 0.060.
    assert cost_usd("claude-sonnet-5-5", counts) == Decimal("0.060")


def test_cost_of_haiku_and_opus_calls_match_hand_arithmetic() -> None:
    million = 1_000_000
    haiku = TokenCounts(
        input_tokens=million,
        output_tokens=million,
        cache_read_tokens=million,
        cache_write_1h_tokens=million,
    )
    # 0.10 + 0.50 + 0.10 x 0.1 + 0.10 x 2 = 0.81
    assert cost_usd("claude-haiku-5-5", haiku) == Decimal("0.81")
    opus = TokenCounts(input_tokens=2_000, output_tokens=1_000, cache_write_5m_tokens=1_000)
    # 2,000 x 4 = 0.008; 1,000 x 20 = 0.02; 1,000 x 4 x 1.25 = 0.005  -> 0.033
    assert cost_usd("claude-opus-5-5", opus) == Decimal("0.033")


def test_a_dated_snapshot_is_priced_as_its_alias() -> None:
    assert price_for("claude-sonnet-5-5-20260101") == price_for("claude-sonnet-5-5")
    assert price_for("claude-haiku-5-5-latest") == price_for("claude-haiku-5-5")


def test_an_unknown_model_is_priced_as_the_dearest_rather_than_free() -> None:
    assert price_for("mystery-model") == price_for("claude-opus-5-5")


async def test_ledger_row_carries_the_usage_and_cost_of_the_call(
    fake_model: FakeModel,
    ledgered_model: ModelClient,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    fake_model.script(Text("Hi there."))
    await complete(ledgered_model, ref=turn_ref)

    usage = fake_model.usages[-1]
    async with sessions() as session:
        row = (await session.exec(select(LLMCall))).one()
    assert row.task_id == turn_ref.task_id and row.turn_id == turn_ref.turn_id
    assert row.agent == "engineer" and row.model == "claude-sonnet-5-5"
    assert row.stop_reason == "end_turn"
    assert row.request_id is not None and row.request_id.startswith("req_")
    assert row.input_tokens == usage["input_tokens"]
    assert row.output_tokens == usage["output_tokens"]
    assert row.cache_read_tokens == usage["cache_read_input_tokens"]
    assert row.cache_write_tokens == usage["cache_creation_input_tokens"] > 0
    written_1h = usage["cache_creation"]["ephemeral_1h_input_tokens"]
    written_5m = usage["cache_creation"]["ephemeral_5m_input_tokens"]
    by_hand = (
        usage["input_tokens"] * 2
        + written_5m * 2 * 1.25
        + written_1h * 2 * 2
        + usage["cache_read_input_tokens"] * 2 * 0.1
        + usage["output_tokens"] * 10
    ) / 1_000_000
    assert row.cost_usd == pytest.approx(by_hand)
    assert row.latency_ms >= 0


# --- cache breakpoints ------------------------------------------------------------------------


async def test_breakpoints_sit_on_the_last_tool_and_the_system_prompt(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Text("ok"))
    await complete(model)

    body = messages_requests(fake_model)[-1].body
    assert "cache_control" not in body["tools"][0]
    one_hour = {"type": "ephemeral", "ttl": "1h"}
    assert body["tools"][-1]["cache_control"] == one_hour
    assert body["system"] == [{"type": "text", "text": PROMPT_TEXT, "cache_control": one_hour}]
    # The moving breakpoint for the conversation itself.
    assert body["cache_control"] == {"type": "ephemeral"}
    assert "tool_choice" not in body


async def test_second_call_reads_the_prefix_the_first_wrote(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Text("one"), Text("two"))
    first = await complete(model)
    await complete(model, messages=first.conversation + ASK)

    first_usage, second_usage = fake_model.usages
    assert first_usage["cache_read_input_tokens"] == 0
    assert second_usage["cache_read_input_tokens"] >= (
        first_usage["cache_creation_input_tokens"] + first_usage["input_tokens"]
    )


# --- retries and errors -------------------------------------------------------------------------


async def test_overloaded_twice_then_success(
    fake_model: FakeModel,
    ledgered_model: ModelClient,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    fake_model.script(
        ApiError(529, retry_after_ms=10), ApiError(529, retry_after_ms=10), Text("Made it.")
    )
    result = await complete(ledgered_model, ref=turn_ref)

    assert result.text == "Made it."
    assert len(messages_requests(fake_model)) == 3
    async with sessions() as session:
        rows = (await session.exec(select(LLMCall))).all()
    assert [row.stop_reason for row in rows] == ["end_turn"]  # one logical call, one row


async def test_overloaded_beyond_the_retries_is_model_unavailable(
    fake_model: FakeModel,
    ledgered_model: ModelClient,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    fake_model.script(*[ApiError(529, retry_after_ms=10)] * 3)
    with pytest.raises(ModelUnavailable) as caught:
        await complete(ledgered_model, ref=turn_ref)

    assert "overloaded" in str(caught.value) and "few minutes" in str(caught.value)
    assert len(messages_requests(fake_model)) == 3
    async with sessions() as session:
        row = (await session.exec(select(LLMCall))).one()
    assert row.stop_reason == "error:529" and row.cost_usd == 0
    assert row.request_id is not None


async def test_a_rejected_key_says_what_an_admin_must_fix(model: ModelClient) -> None:
    fake = FakeModel(api_key="the-right-key")
    await fake.start(port=0)
    try:
        client = AsyncAnthropic(base_url=fake.base_url, api_key="wrong", max_retries=2)
        with pytest.raises(ModelRejected) as caught:
            await complete(ModelClient(client))
        await client.close()
    finally:
        await fake.stop()
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert len(fake.requests) == 1  # a 401 is not retried


# --- stop reasons -------------------------------------------------------------------------------


def _paused() -> Blocks:
    return Blocks(
        [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_01paused",
                "name": "web_search",
                "input": {"query": "postgres index"},
            },
        ],
        stop_reason="pause_turn",
    )


async def test_pause_turn_is_sent_back_as_is_and_the_turn_finishes(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(_paused(), Text("Finished."))
    result = await complete(model)

    second = messages_requests(fake_model)[1].body["messages"]
    assert second[-1]["role"] == "assistant"
    assert second[-1]["content"][0]["id"] == "srvtoolu_01paused"
    assert result.text == "Finished."
    final = result.conversation[-1]
    assert [b["type"] for b in final["content"]] == ["server_tool_use", "text"]


async def test_pause_turn_that_never_finishes_is_a_clear_error(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(_paused(), _paused(), _paused())
    with pytest.raises(TurnIncomplete) as caught:
        await complete(model, max_pause_continuations=2)

    assert "paused" in str(caught.value) and "narrower" in str(caught.value)
    assert len(messages_requests(fake_model)) == 3


async def test_refusal_is_a_clear_error(fake_model: FakeModel, model: ModelClient) -> None:
    fake_model.script(Text("I can't help with that.", stop_reason="refusal"))
    with pytest.raises(ModelRefused) as caught:
        await complete(model)
    assert "declined" in str(caught.value) and "Rephrase" in str(caught.value)


async def test_a_cut_stream_is_a_clear_error_and_still_ledgered(
    fake_model: FakeModel,
    ledgered_model: ModelClient,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    fake_model.script(CutStream(Text("A long answer that never arrives " * 20), after_events=6))
    received: list[str] = []

    class Sink:
        async def block_started(self) -> None:
            pass

        async def delta(self, text: str) -> None:
            received.append(text)

    with pytest.raises(TurnIncomplete) as caught:
        await complete(ledgered_model, ref=turn_ref, text=Sink())

    assert "dropped" in str(caught.value) and "Mention me again" in str(caught.value)
    assert received  # part of the answer had streamed before the cut
    assert len(messages_requests(fake_model)) == 1  # never silently re-run mid-answer
    async with sessions() as session:
        row = (await session.exec(select(LLMCall))).one()
    assert row.stop_reason == "stream_cut"
    assert row.cache_write_tokens > 0  # the input was billed: message_start carried it


async def test_max_tokens_continues_once_then_marks_the_answer_truncated(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(
        Text("First half,", stop_reason="max_tokens"),
        Text(" second half", stop_reason="max_tokens"),
    )
    result = await complete(model)

    assert result.truncated
    assert result.text == "First half, second half"
    requests = messages_requests(fake_model)
    assert len(requests) == 2
    assert "cut off by the output limit" in last_user_text(requests[1])
    assert requests[1].body["messages"][-2]["content"][0]["text"] == "First half,"


async def test_max_tokens_then_a_finished_continuation_is_not_truncated(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Text("Start", stop_reason="max_tokens"), Text(" and end."))
    result = await complete(model)
    assert not result.truncated
    assert result.text == "Start and end."


def _history(n: int) -> list[Wire]:
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": [{"type": "text", "text": f"old message {i}"}],
        }
        for i in range(n)
    ]


async def test_context_window_exceeded_leaves_out_older_history_and_goes_on(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(
        Text("Partial answer", stop_reason="model_context_window_exceeded"), Text(" completed.")
    )
    result = await complete(model, messages=_history(4) + ASK, trimmable=4)

    assert result.text == "Partial answer completed."
    assert result.trimmed == 2
    sent = messages_requests(fake_model)[1].body["messages"]
    texts = [b.get("text", "") for m in sent for b in m["content"]]
    assert "old message 0" not in texts and "old message 1" not in texts
    assert "old message 2" in texts
    assert any("were left out" in t for t in texts)


async def test_prompt_too_long_is_retried_with_less_history(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(
        ApiError(400, message="prompt is too long: 210000 tokens > 200000 maximum"), Text("Fits.")
    )
    result = await complete(model, messages=_history(6) + ASK, trimmable=6)
    assert result.text == "Fits."
    assert len(messages_requests(fake_model)[1].body["messages"]) < 7


async def test_context_window_exceeded_with_nothing_to_trim_is_a_clear_error(
    fake_model: FakeModel, model: ModelClient
) -> None:
    fake_model.script(Text("Partial", stop_reason="model_context_window_exceeded"))
    with pytest.raises(ContextTooLong) as caught:
        await complete(model)
    assert "new thread" in str(caught.value)


async def test_request_ids_are_recorded_from_the_response(
    fake_model: FakeModel,
    ledgered_model: ModelClient,
    sessions: async_sessionmaker[AsyncSession],
    turn_ref: TurnRef,
) -> None:
    fake_model.script(Text("a"), Text("b"))
    await complete(ledgered_model, ref=turn_ref)
    await complete(ledgered_model, ref=turn_ref)
    async with sessions() as session:
        rows = (await session.exec(select(LLMCall).order_by(col(LLMCall.id)))).all()
    ids = [row.request_id for row in rows]
    assert len(set(ids)) == 2 and all(i and i.startswith("req_") for i in ids)


# --- the fence ----------------------------------------------------------------------------------


class _LeaseRanOut(Exception):
    pass


async def test_a_call_whose_work_is_no_longer_held_is_never_sent(
    anthropic_client: AsyncAnthropic, fake_model: FakeModel
) -> None:
    """`before_call` runs before every request: the bot passes its fence, so a turn whose lease
    ran out (a paused replica) spends nothing more on the model."""
    held = [True, True, False]
    asked: list[bool] = []

    def before_call() -> None:
        asked.append(held.pop(0))
        if not asked[-1]:
            raise _LeaseRanOut

    model = ModelClient(anthropic_client, before_call=before_call)
    fake_model.script(Text("one"), Text("two"), Text("three"))
    await complete(model)
    await complete(model)
    with pytest.raises(_LeaseRanOut):
        await complete(model)
    assert asked == [True, True, False]
    assert len(messages_requests(fake_model)) == 2
