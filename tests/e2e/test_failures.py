"""A failed turn is never silent: the thread says what went wrong, and a new mention retries."""

from __future__ import annotations

import re

import pytest

from bot.app import Pmteam
from bot.services.turns import FINISH_REACTION
from sandbox.model import ApiError, FakeModel, Text
from sandbox.slack import FakeSlack
from storage.models import Report, SlackPost, Task, TaskStatus, Turn, TurnStatus
from tests.e2e.conftest import (
    COORDINATION,
    ENGINEERING,
    ON_EACH_DATABASE,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)

pytestmark = ON_EACH_DATABASE

RETRY_HINT = "Mention me again in this thread to retry"


def reactions_on(fake_slack: FakeSlack, ts: str) -> set[str]:
    return set(fake_slack.workspace.reactions(ENGINEERING, ts))


@pytest.mark.reliability("The Anthropic API answers HTTP 500 on every retry", kind="fault")
async def test_model_failure_is_reported_in_the_thread_and_a_new_mention_retries(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # The API fails on the first try and on both of the SDK's retries (short Retry-After).
    fake_model.script(*[ApiError(500, retry_after_ms=10) for _ in range(3)])
    first = await mention(fake_slack, "design the refunds API")

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert fake_model.pending == 0 and len(fake_model.requests) == 3
    assert turn.status == TurnStatus.FAILED
    assert turn.failure_reason and "HTTP 500" in turn.failure_reason
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.FAILED
    assert task.status_reason == turn.failure_reason

    # One message in the thread, saying what happened and what to do; no report anywhere.
    [failure] = bot_messages(fake_slack, ENGINEERING, first.ts)
    assert failure.text.startswith(":x: I couldn't finish this: ")
    assert "HTTP 500" in failure.text and RETRY_HINT in failure.text
    assert bot_messages(fake_slack, COORDINATION) == []
    assert await rows(pmteam, Report) == []
    assert reactions_on(fake_slack, first.ts) == {"x"}
    # The Stop line shown while it ran was taken down, and its record with it.
    assert [p.key for p in await rows(pmteam, SlackPost)] == [f"{turn.id}:failure"]

    # Mentioning again in the thread re-queues the same task, and this time it works.
    again = await mention(fake_slack, "please try again", thread_ts=first.ts)
    turns = await wait_until_idle(pmteam, fake_slack, turns=2)
    assert [(t.task_id, t.seq, t.status) for t in turns] == [
        (task.id, 1, TurnStatus.FAILED),
        (task.id, 2, TurnStatus.DONE),
    ]
    [report] = await rows(pmteam, Report)
    [task] = await rows(pmteam, Task)
    assert task.status != TaskStatus.FAILED and task.status_reason is None
    assert [r.text.startswith("T-1 — ") for r in bot_messages(fake_slack, COORDINATION)] == [True]
    assert len(bot_messages(fake_slack, ENGINEERING, first.ts)) == 3  # failure, answer, summary
    assert reactions_on(fake_slack, again.ts) == {FINISH_REACTION[report.status]}
    assert reactions_on(fake_slack, first.ts) == {"x"}


@pytest.mark.reliability("An API error whose text quotes the key it was sent", kind="attack")
async def test_rejected_request_fails_at_once_in_pmteam_s_own_words_with_an_error_id(
    pmteam: Pmteam,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The API's message quotes the key it was sent: it must not reach Slack.
    leaked = "invalid x-api-key: sk-ant-e2e-test"
    fake_model.script(ApiError(400, "invalid_request_error", leaked))
    posted = await mention(fake_slack, "design the refunds API")

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert len(fake_model.requests) == 1  # a 400 is not retried
    assert turn.status == TurnStatus.FAILED
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.FAILED
    assert task.status_reason and "HTTP 400" in task.status_reason
    [failure] = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert "HTTP 400" in failure.text and RETRY_HINT in failure.text
    assert "sk-ant" not in failure.text and "x-api-key" not in failure.text
    error_id = re.search(r"error id `([0-9a-f]{8})`", failure.text)
    assert error_id is not None
    # The log has the same id, and the API's detail (`pmteam run` redacts keys in the log;
    # tests/test_logging.py checks that).
    logged = capsys.readouterr().out
    assert error_id.group(1) in logged and "anthropic.error" in logged
    assert reactions_on(fake_slack, posted.ts) == {"x"}


@pytest.mark.reliability("The model refuses to answer", kind="fault")
async def test_refusal_ends_with_a_clear_message(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(Text("I can't help with that.", stop_reason="refusal"))
    posted = await mention(fake_slack, "write a credential stuffing tool")

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.FAILED
    assert turn.failure_reason and "declined" in turn.failure_reason
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.FAILED
    thread = bot_messages(fake_slack, ENGINEERING, posted.ts)
    failure = thread[-1]
    assert "Claude declined to help with this request" in failure.text
    assert "Rephrase it" in failure.text and RETRY_HINT in failure.text
    # Whatever streamed before the refusal was closed, not left "typing" forever.
    assert all(m.stream is None or m.stream.state == "completed" for m in thread)
    assert await rows(pmteam, Report) == []
    assert reactions_on(fake_slack, posted.ts) == {"x"}
    assert [t.status for t in await rows(pmteam, Turn)] == [TurnStatus.FAILED]
