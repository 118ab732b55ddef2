"""A later message in a task's thread, mention or not, is a new turn of the same task, with the
thread as context."""

from __future__ import annotations

import json

from bot.app import Pmteam
from sandbox.model import FakeModel, Text
from sandbox.slack import FakeSlack
from storage.models import Report, Task, Turn, TurnStatus
from tests.e2e.conftest import (
    BOB,
    COORDINATION,
    ENGINEERING,
    ON_EACH_DATABASE,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)

pytestmark = ON_EACH_DATABASE

FIRST = "design the schema for a ledger of account balances"
ANSWER = "Use an append-only `entry` table and derive balances with a materialised view."
BETWEEN = "Note that we already run PostgreSQL 16 with logical replication."
SECOND = "now add multi-currency support to it"


def first_engineer_request(fake_model: FakeModel, model: str, containing: str) -> str:
    """The body (as JSON text) of the first engineer request that carries `containing`."""
    bodies = [
        json.dumps(r.body, ensure_ascii=False)
        for r in fake_model.requests
        if r.path == "/v1/messages"
        and r.body.get("model") == model
        and "output_config" not in r.body  # not the report
    ]
    return next(b for b in bodies if containing in b)


async def test_a_reply_in_the_thread_is_turn_two_without_a_mention_and_sees_the_thread(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # Bob starts a thread (no mention: not pmteam's business yet); Alice brings pmteam in.
    opener = await fake_slack.post_as_user(BOB, ENGINEERING, BETWEEN)
    await fake_slack.drain()
    assert await rows(pmteam, Task) == []
    fake_model.script(Text(ANSWER))  # turn 1's engineer answers at once; the rest is offline
    first = await mention(fake_slack, FIRST, thread_ts=opener.ts)
    await wait_until_idle(pmteam, fake_slack, turns=1)

    # Bob replies in the thread without mentioning pmteam: the thread is a task now, so the
    # reply is its next turn.
    second = await fake_slack.post_as_user(BOB, ENGINEERING, SECOND, thread_ts=opener.ts)
    assert [d.type for d in second.deliveries] == ["message"]
    await wait_until_idle(pmteam, fake_slack, turns=2)

    [task] = await rows(pmteam, Task)
    turns = await rows(pmteam, Turn)
    assert task.ref == "T-1"
    assert task.thread_ts == opener.ts
    assert [(t.task_id, t.seq, t.message_ts, t.source) for t in turns] == [
        (task.id, 1, first.ts, "mention"),
        (task.id, 2, second.ts, "thread"),
    ]
    assert all(t.status == TurnStatus.DONE for t in turns)
    assert turns[0].answer_text == ANSWER

    # Turn 2's engineer saw Bob's opener (from conversations.replies), turn 1's request and
    # answer (from the DB), in thread order, before the new request.
    body = first_engineer_request(fake_model, pmteam.settings.engineer_model, SECOND)
    for earlier in (FIRST, ANSWER, BETWEEN):
        assert earlier in body
    assert body.index(BETWEEN) < body.index(FIRST) < body.index(ANSWER) < body.index(SECOND)
    assert fake_slack.calls_to("conversations.replies")

    # Two answers and two summaries in the one thread; two reports, both for T-1, on its
    # one card (updated in place), the second with a line in the card's thread.
    assert len(await rows(pmteam, Report)) == 2
    assert len(fake_slack.calls_to("chat.startStream")) == 2
    assert len(bot_messages(fake_slack, ENGINEERING, opener.ts)) == 4
    [card, line] = bot_messages(fake_slack, COORDINATION)
    assert card.text.startswith("T-1 — ") and card.thread_ts in (None, card.ts)
    assert line.thread_ts == card.ts and line.text.startswith("T-1: ")


async def test_a_follow_up_keeps_the_earlier_research_and_reads_it_from_the_cache(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # Turn 1 is the offline model's: it consults the researcher, then answers.
    first = await mention(fake_slack, FIRST)
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    [turn1] = await rows(pmteam, Turn)
    assert turn1.exchange is not None
    request, tool_call, findings = turn1.exchange
    assert [m["role"] for m in turn1.exchange] == ["user", "assistant", "user"]
    assert FIRST in json.dumps(request) and "consult_researcher" in json.dumps(tool_call)
    assert "research_findings" in json.dumps(findings)

    engineer = pmteam.settings.engineer_model
    sent = [r for r in fake_model.requests if r.path == "/v1/messages"]
    turn1_answer_call = [
        u for r, u in zip(sent, fake_model.usages, strict=True) if r.body["model"] == engineer
    ][-1]
    written_through_findings = (
        turn1_answer_call["cache_read_input_tokens"]
        + turn1_answer_call["cache_creation_input_tokens"]
    )

    await fake_slack.post_as_user(BOB, ENGINEERING, SECOND, thread_ts=first.ts)
    await wait_until_idle(pmteam, fake_slack, turns=2, timeout=30)

    # Turn 2's engineer is sent turn 1 as it was sent then, research findings included, so it
    # reads all of that from the cache and pays only for what is new.
    requests = [r for r in fake_model.requests if r.path == "/v1/messages"]
    index = next(
        i
        for i, r in enumerate(requests)
        if r.body["model"] == engineer and SECOND in json.dumps(r.body, ensure_ascii=False)
    )
    messages = requests[index].body["messages"]
    assert messages[:3] == turn1.exchange
    assert messages[3]["role"] == "assistant"  # turn 1's answer
    usage = fake_model.usages[index]
    assert usage["cache_read_input_tokens"] >= written_through_findings
