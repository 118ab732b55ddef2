"""The API's cache diagnostics: each call names the previous call of its agent in the turn,
and why the cache could not carry over is kept with the call's usage (and logged)."""

from __future__ import annotations

from anthropic import AsyncAnthropic

from agents.llm import LLMUsage, ModelClient, PromptPrefix, TurnRef, Wire
from sandbox.model import FakeModel, Text


class Calls:
    def __init__(self) -> None:
        self.seen: list[LLMUsage] = []

    async def record(self, call: LLMUsage) -> None:
        self.seen.append(call)


def ask(text: str) -> list[Wire]:
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


async def test_a_changed_prefix_is_diagnosed_and_an_appended_conversation_is_not(
    fake_model: FakeModel, anthropic_client: AsyncAnthropic
) -> None:
    calls = Calls()
    model = ModelClient(anthropic_client, usage_sink=calls, max_retries=0)
    prefix = PromptPrefix(system="You are careful. " * 50, ttl="1h")
    ref = TurnRef(task_id=1, turn_id=7)
    fake_model.script(Text("one"), Text("two"), Text("three"), Text("four"))

    first = await model.complete(
        agent="engineer",
        model="claude-sonnet-5-5",
        prefix=prefix,
        messages=ask("a"),
        max_tokens=50,
        ref=ref,
    )
    grown = [*first.conversation, *ask("b")]
    await model.complete(
        agent="engineer",
        model="claude-sonnet-5-5",
        prefix=prefix,
        messages=grown,
        max_tokens=50,
        ref=ref,
    )
    changed = PromptPrefix(system="You are brisk. " * 50, ttl="1h")
    await model.complete(
        agent="engineer",
        model="claude-sonnet-5-5",
        prefix=changed,
        messages=grown,
        max_tokens=50,
        ref=ref,
    )
    # Another turn's first call has nothing to be compared with.
    await model.complete(
        agent="engineer",
        model="claude-sonnet-5-5",
        prefix=prefix,
        messages=ask("c"),
        max_tokens=50,
        ref=TurnRef(task_id=1, turn_id=8),
    )

    bodies = [r.body for r in fake_model.requests if r.path == "/v1/messages"]
    assert bodies[0]["diagnostics"] == {"previous_message_id": None}
    assert bodies[1]["diagnostics"]["previous_message_id"].startswith("msg_")
    assert bodies[3]["diagnostics"] == {"previous_message_id": None}
    reasons = [(c.cache_miss_reason, c.cache_missed_tokens) for c in calls.seen]
    assert reasons[0] == (None, None) and reasons[1] == (None, None) and reasons[3] == (None, None)
    assert reasons[2][0] == "system_changed"
    assert reasons[2][1] is not None and reasons[2][1] > 100
