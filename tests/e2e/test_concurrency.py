"""Mentions in different threads run concurrently; mentions in one thread run in order."""

from __future__ import annotations

from bot.app import Pmteam
from sandbox.model import Delay, FakeModel, Text
from sandbox.slack import FakeSlack
from storage.models import Task, TurnStatus
from tests.e2e.conftest import ON_EACH_DATABASE, mention, rows, wait_until_idle

pytestmark = ON_EACH_DATABASE

SLOW = 0.8  # seconds the engineer takes to start answering


async def test_mentions_in_two_threads_are_worked_concurrently(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(
        Delay(SLOW, Text("Answer for one thread.")), Delay(SLOW, Text("Answer for another."))
    )
    a = await mention(fake_slack, "design the orders API")
    b = await mention(fake_slack, "design the invoices API")

    turns = await wait_until_idle(pmteam, fake_slack, turns=2)

    tasks = await rows(pmteam, Task)
    assert [t.thread_ts for t in tasks] == [a.ts, b.ts]
    assert [t.task_id for t in turns] == [tasks[0].id, tasks[1].id]
    assert all(t.status == TurnStatus.DONE for t in turns)
    first, second = turns
    assert first.started_at and first.finished_at and second.started_at and second.finished_at
    # Both were running at once: each started before the other finished.
    assert max(first.started_at, second.started_at) < min(first.finished_at, second.finished_at)


async def test_mentions_in_one_thread_are_worked_in_order(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(Delay(SLOW, Text("The first answer, given slowly.")))
    first = await mention(fake_slack, "design the orders API")
    # The follow-up arrives while the first turn is still running.
    await mention(fake_slack, "and make it paginated", thread_ts=first.ts)

    turns = await wait_until_idle(pmteam, fake_slack, turns=2)

    [task] = await rows(pmteam, Task)
    assert [(t.task_id, t.seq) for t in turns] == [(task.id, 1), (task.id, 2)]
    assert all(t.status == TurnStatus.DONE for t in turns)
    one, two = turns
    assert one.finished_at and two.started_at
    assert two.started_at >= one.finished_at
    # And turn 2 was written knowing turn 1's answer.
    assert one.answer_text == "The first answer, given slowly."
    engineer = pmteam.settings.engineer_model
    turn_two_requests = [
        r.body
        for r in fake_model.requests
        if r.body.get("model") == engineer and "and make it paginated" in str(r.body)
    ]
    assert turn_two_requests and "The first answer, given slowly." in str(turn_two_requests[0])
