"""The report buttons move tasks through the state machine, record who did it, and say so."""

from __future__ import annotations

from typing import Any

from bot.app import Pmteam
from bot.slack.blocks.modal import BLOCKED_MODAL
from bot.slack.blocks.report import (
    ACTION_ACKNOWLEDGE,
    ACTION_MARK_BLOCKED,
    ACTION_MARK_DONE,
    ACTION_REOPEN,
)
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import Task, TaskEvent, TaskStatus, Turn, TurnStatus
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    ON_EACH_DATABASE,
    StartPmteam,
    bot_messages,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import (
    add_carol,
    finished_task,
    last_ephemeral,
    report_message,
    run_pm,
    settle,
    shown,
    submit_blocked_reason,
)

IN_PROGRESS: dict[str, Any] = {"status": "IN_PROGRESS", "estimated_time": "2 days"}


async def click(
    pmteam: Pmteam, fake_slack: FakeSlack, task: Task, action: str, *, user: str = BOB
) -> None:
    message = report_message(fake_slack, task)
    delivery = await fake_slack.click_button(user, COORDINATION, message.ts, action, str(task.id))
    assert delivery.acked and delivery.status_codes == [200]
    await settle(pmteam, fake_slack)


async def people_events(pmteam: Pmteam) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (e.kind, e.to_status, e.note, e.actor)
        for e in await rows(pmteam, TaskEvent)
        if e.actor != "pmteam" and e.note != "asked in Slack"
    ]


def refusals(fake_slack: FakeSlack, user: str) -> list[str]:
    """What pmteam told `user` alone (through the response_url) in the coordination channel."""
    return [e.text for e in fake_slack.workspace.ephemerals(COORDINATION, user)]


@ON_EACH_DATABASE
async def test_acknowledge_records_the_pm_and_updates_the_report(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)

    await click(pmteam, fake_slack, task, ACTION_ACKNOWLEDGE)

    assert await people_events(pmteam) == [("acknowledged", None, None, BOB)]
    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status == TaskStatus.COMPLETED  # acknowledging changes no status
    updated = report_message(fake_slack, task)
    assert f":heavy_check_mark: Acknowledged by <@{BOB}>" in shown(updated.blocks)
    assert fake_slack.calls_to("chat.update")[-1].params["ts"] == updated.ts
    # The buttons are still there, under the activity line.
    types = [b["type"] for b in updated.blocks or []]
    assert types[-2:] == ["context", "actions"]

    # A second acknowledgement of the same report is refused, only to the clicker.
    await click(pmteam, fake_slack, task, ACTION_ACKNOWLEDGE)
    assert refusals(fake_slack, BOB) == [
        f"{task.ref}'s latest report was already acknowledged by <@{BOB}>."
    ]
    assert refusals(fake_slack, ALICE) == []
    assert len(await people_events(pmteam)) == 1


@ON_EACH_DATABASE
async def test_mark_done_then_again_is_refused(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    assert task.status == TaskStatus.IN_PROGRESS

    await click(pmteam, fake_slack, task, ACTION_MARK_DONE)

    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status == TaskStatus.COMPLETED
    assert await people_events(pmteam) == [("status", "completed", "marked done", BOB)]
    assert f":white_check_mark: Marked done by <@{BOB}>" in shown(
        report_message(fake_slack, task).blocks
    )

    await click(pmteam, fake_slack, task, ACTION_MARK_DONE)
    assert refusals(fake_slack, BOB) == [f"{task.ref} is already completed."]
    assert len(await people_events(pmteam)) == 1


@ON_EACH_DATABASE
async def test_mark_blocked_asks_for_the_reason_in_a_modal(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)

    await click(pmteam, fake_slack, task, ACTION_MARK_BLOCKED)

    # Nothing moves until the reason is given.
    [view] = fake_slack.workspace.modals(BOB)
    assert view["callback_id"] == BLOCKED_MODAL and task.ref in shown(view["blocks"])
    assert [c.params["trigger_id"] for c in fake_slack.calls_to("views.open")]
    assert (await rows(pmteam, Task))[0].status == TaskStatus.IN_PROGRESS

    delivery = await submit_blocked_reason(fake_slack, BOB, "waiting for <!channel> prod creds")
    await settle(pmteam, fake_slack)

    assert delivery.acked and delivery.ack_body in (None, "")  # the modal closes
    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status == TaskStatus.BLOCKED
    assert reloaded.status_reason == "waiting for <!channel> prod creds"
    assert await people_events(pmteam) == [
        ("status", "blocked", "waiting for <!channel> prod creds", BOB)
    ]
    updated = shown(report_message(fake_slack, task).blocks)
    assert f":no_entry: Marked blocked by <@{BOB}>: _waiting for" in updated
    assert "<!channel>" not in updated  # the reason is escaped


async def test_an_empty_reason_is_asked_for_again(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    await click(pmteam, fake_slack, task, ACTION_MARK_BLOCKED)

    delivery = await submit_blocked_reason(fake_slack, BOB, "   ")

    assert delivery.ack_body == {
        "response_action": "errors",
        "errors": {"reason": "Say what it's blocked on."},
    }
    assert (await rows(pmteam, Task))[0].status == TaskStatus.IN_PROGRESS


async def test_a_move_made_while_the_modal_was_open_is_refused_in_the_modal(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    await click(pmteam, fake_slack, task, ACTION_MARK_BLOCKED)
    await click(pmteam, fake_slack, task, ACTION_MARK_DONE, user=ALICE)  # meanwhile

    delivery = await submit_blocked_reason(fake_slack, BOB, "waiting for creds")

    assert delivery.ack_body == {
        "response_action": "errors",
        "errors": {"reason": f"{task.ref} is completed; it can't be moved to blocked."},
    }
    assert (await rows(pmteam, Task))[0].status == TaskStatus.COMPLETED


async def test_blocking_a_completed_task_is_refused_without_a_modal(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)  # COMPLETED

    await click(pmteam, fake_slack, task, ACTION_MARK_BLOCKED)

    assert fake_slack.calls_to("views.open") == []
    assert refusals(fake_slack, BOB) == [f"{task.ref} is completed; it can't be moved to blocked."]
    assert await people_events(pmteam) == []


@ON_EACH_DATABASE
async def test_reopen_queues_a_turn_the_engineer_works(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)
    fake_model.script()  # from here the offline model answers

    await click(pmteam, fake_slack, task, ACTION_REOPEN)
    turns = await wait_until_idle(pmteam, fake_slack, turns=2)
    await settle(pmteam, fake_slack)

    first, second = turns
    assert (second.task_id, second.seq, second.user_id, second.source) == (
        task.id,
        2,
        BOB,
        "reopen",
    )
    assert second.text == f"Please continue this task (reopened by <@{BOB}>)."
    assert second.status == TurnStatus.DONE and second.answer_text
    events = await people_events(pmteam)
    assert events[0] == ("status", "queued", "reopened", BOB)
    # The engineer answered in the task's thread again, and filed a second report.
    thread = bot_messages(fake_slack, ENGINEERING, task.thread_ts)
    assert len(thread) == 4  # answer + matrix, twice
    reports = [m for m in bot_messages(fake_slack, COORDINATION) if m.blocks]
    assert len(reports) == 2
    assert ":leftwards_arrow_with_hook: Reopened by <@U0BOB>" in shown(reports[0].blocks)


async def test_a_task_with_a_turn_under_way_refuses_reopen_and_done(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    async with pmteam.deps.sessions.begin() as session:
        row = await session.get(Task, task.id)
        assert row is not None
        row.status = TaskStatus.WORKING  # as while a follow-up is being worked

    await click(pmteam, fake_slack, task, ACTION_REOPEN)
    await click(pmteam, fake_slack, task, ACTION_MARK_DONE)

    assert refusals(fake_slack, BOB) == [
        f"{task.ref} is already working; it needs no reopening.",
        f"{task.ref} is working right now; its report will set the status. "
        "Use the buttons once it has reported.",
    ]
    assert await people_events(pmteam) == []
    assert len(await rows(pmteam, Turn)) == 1


async def test_only_the_requester_or_a_pm_may_change_status(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_PM_USERS=BOB)
    carol = add_carol(fake_slack)
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)  # Alice asked

    await click(pmteam, fake_slack, task, ACTION_MARK_DONE, user=carol)
    await click(pmteam, fake_slack, task, ACTION_ACKNOWLEDGE, user=ALICE)

    assert refusals(fake_slack, carol) == [
        f"Only <@{ALICE}> (who asked for {task.ref}) or a project manager can change its status."
    ]
    assert refusals(fake_slack, ALICE) == [
        "Only a project manager (PMTEAM_PM_USERS) can acknowledge reports."
    ]
    assert await people_events(pmteam) == []

    await click(pmteam, fake_slack, task, ACTION_ACKNOWLEDGE, user=BOB)
    await click(pmteam, fake_slack, task, ACTION_MARK_DONE, user=ALICE)  # her own task
    assert await people_events(pmteam) == [
        ("acknowledged", None, None, BOB),
        ("status", "completed", "marked done", ALICE),
    ]
    activity = shown(report_message(fake_slack, task).blocks)
    assert f"Acknowledged by <@{BOB}> · :white_check_mark: Marked done by <@{ALICE}>" in activity


async def test_buttons_on_the_status_answer_update_it_and_the_report(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    await run_pm(fake_slack, f"status {task.ref}", user=BOB)
    answer = last_ephemeral(fake_slack, BOB)
    assert ":hourglass_flowing_sand: in progress" in shown(answer.blocks)

    await fake_slack.click_button(BOB, ENGINEERING, answer.ts, ACTION_MARK_DONE, str(task.id))
    await settle(pmteam, fake_slack)

    refreshed = last_ephemeral(fake_slack, BOB)
    assert refreshed.ts == answer.ts  # replaced in place
    assert ":white_check_mark: completed" in shown(refreshed.blocks)
    assert "in progress → *completed* by <@U0BOB>" in shown(refreshed.blocks)
    assert f"Marked done by <@{BOB}>" in shown(report_message(fake_slack, task).blocks)


async def test_a_refused_click_on_the_status_answer_is_said_under_it(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)  # COMPLETED
    await run_pm(fake_slack, f"status {task.ref}", user=BOB)
    answer = last_ephemeral(fake_slack, BOB)

    await fake_slack.click_button(BOB, ENGINEERING, answer.ts, ACTION_MARK_DONE, str(task.id))
    await settle(pmteam, fake_slack)

    messages = fake_slack.workspace.ephemerals(ENGINEERING, BOB)
    assert [m.text for m in messages[1:]] == [f"{task.ref} is already completed."]
    assert messages[0].ts == answer.ts and messages[0].blocks == answer.blocks  # untouched
