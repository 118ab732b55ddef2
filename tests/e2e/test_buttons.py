"""The report buttons move tasks through the state machine, record who did it, and say so."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app import Pmteam
from bot.slack.blocks.modal import BLOCKED_MODAL, REOPEN_MODAL
from bot.slack.blocks.report import (
    ACTION_ACKNOWLEDGE,
    ACTION_MARK_BLOCKED,
    ACTION_MARK_DONE,
    ACTION_REOPEN,
)
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import Report, Task, TaskEvent, TaskStatus, Turn, TurnStatus
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
    submit_reason,
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
async def test_acknowledge_records_the_pm_and_updates_the_card(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)
    assert card_buttons(fake_slack, task) == [ACTION_ACKNOWLEDGE, ACTION_REOPEN]

    await click(pmteam, fake_slack, task, ACTION_ACKNOWLEDGE)

    assert await people_events(pmteam) == [("acknowledged", None, None, BOB)]
    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status == TaskStatus.COMPLETED  # acknowledging changes no status
    updated = report_message(fake_slack, task)
    assert f":heavy_check_mark: Acknowledged by <@{BOB}>" in shown(updated.blocks)
    assert fake_slack.calls_to("chat.update")[-1].params["ts"] == updated.ts
    # Acknowledged once: the button is gone; the rest stay, under the activity line.
    assert card_buttons(fake_slack, task) == [ACTION_REOPEN]
    types = [b["type"] for b in updated.blocks or []]
    assert types[-2:] == ["context", "actions"]
    # Said in the card's thread too, for whoever follows the task there.
    assert card_thread(fake_slack, task) == [
        f":heavy_check_mark: <@{BOB}> acknowledged {task.ref}'s report"
    ]


@ON_EACH_DATABASE
async def test_a_stale_click_is_told_why_and_the_card_is_brought_up_to_date(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    assert card_buttons(fake_slack, task) == [
        ACTION_ACKNOWLEDGE,
        ACTION_MARK_BLOCKED,
        ACTION_MARK_DONE,
    ]

    # Alice and Bob both press Mark done on the card as they see it.
    card = report_message(fake_slack, task)
    clicks = [
        fake_slack.click_button(user, COORDINATION, card.ts, ACTION_MARK_DONE, str(task.id))
        for user in (ALICE, BOB)
    ]
    await asyncio.gather(*clicks)
    await settle(pmteam, fake_slack)

    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status == TaskStatus.COMPLETED
    [moved] = await people_events(pmteam)
    winner = moved[3]
    loser = BOB if winner == ALICE else ALICE
    assert refusals(fake_slack, loser) == [f"{task.ref} is already completed."]
    assert refusals(fake_slack, winner) == []
    assert f":white_check_mark: Marked done by <@{winner}>" in shown(
        report_message(fake_slack, task).blocks
    )
    # The card shows the status now, and only what it allows.
    assert "✅ COMPLETED" in shown(report_message(fake_slack, task).blocks)
    assert card_buttons(fake_slack, task) == [ACTION_ACKNOWLEDGE, ACTION_REOPEN]


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

    delivery = await submit_reason(fake_slack, BOB, "waiting for <!channel> prod creds")
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

    delivery = await submit_reason(fake_slack, BOB, "   ")

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

    delivery = await submit_reason(fake_slack, BOB, "waiting for creds")

    assert delivery.ack_body == {
        "response_action": "errors",
        "errors": {"reason": f"{task.ref} is completed; it can't be moved to blocked."},
    }
    assert (await rows(pmteam, Task))[0].status == TaskStatus.COMPLETED


@ON_EACH_DATABASE
async def test_reopen_asks_what_is_missing_and_the_engineer_works_on_that(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)
    fake_model.script()  # from here the offline model answers

    await click(pmteam, fake_slack, task, ACTION_REOPEN)
    [view] = fake_slack.workspace.modals(BOB)
    assert view["callback_id"] == REOPEN_MODAL and "What is missing?" in shown(view["blocks"])
    assert len(await rows(pmteam, Turn)) == 1  # nothing runs until the reason is given
    refused = await submit_reason(fake_slack, BOB, "  ")
    assert refused.ack_body == {
        "response_action": "errors",
        "errors": {"reason": "Say what is missing, so the engineer knows what to do next."},
    }

    await submit_reason(fake_slack, BOB, "cover partial refunds too")
    turns = await wait_until_idle(pmteam, fake_slack, turns=2)
    await settle(pmteam, fake_slack)

    first, second = turns
    assert (second.task_id, second.seq, second.user_id, second.source) == (
        task.id,
        2,
        BOB,
        "reopen",
    )
    assert second.text == "cover partial refunds too"  # the reason is the request
    assert second.status == TurnStatus.DONE and second.answer_text
    events = await people_events(pmteam)
    assert events[0] == ("status", "queued", "reopened: cover partial refunds too", BOB)
    [reloaded] = await rows(pmteam, Task)
    assert reloaded.title == task.title  # the task is still what was first asked
    # Said in the task's thread, where the engineer answered again; one card for the task.
    thread = bot_messages(fake_slack, ENGINEERING, task.thread_ts)
    said = f":leftwards_arrow_with_hook: <@{BOB}> reopened {task.ref}: cover partial refunds too"
    assert [m.text for m in thread][2] == said
    assert len(thread) == 5  # answer + summary, the reopen line, answer + summary
    card = report_message(fake_slack, task)
    [first_report, _] = await rows(pmteam, Report)
    assert f"*Task:*\\n{first_report.data['task']}" in shown(card.blocks)
    lines = card_thread(fake_slack, task)
    assert lines[0] == said and lines[1].startswith(f"{task.ref}: ")


async def test_a_task_with_a_turn_under_way_refuses_reopen_and_done(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    async with pmteam.deps.sessions.begin() as session:
        row = await session.get(Task, task.id)
        assert row is not None
        row.status = TaskStatus.WORKING  # as while a follow-up is being worked

    # The card still shows the buttons of its last report: both clicks are stale.
    card = report_message(fake_slack, task)
    await asyncio.gather(
        *(
            fake_slack.click_button(BOB, COORDINATION, card.ts, action, str(task.id))
            for action in (ACTION_MARK_BLOCKED, ACTION_MARK_DONE)
        )
    )
    await settle(pmteam, fake_slack)

    busy = (
        f"{task.ref} is working right now; its report will set the status. "
        "Use the buttons once it has reported."
    )
    assert refusals(fake_slack, BOB) == [busy, busy]
    assert fake_slack.calls_to("views.open") == []
    assert await people_events(pmteam) == []
    assert len(await rows(pmteam, Turn)) == 1
    # Refreshed: no moves while it works, and it says so.
    assert card_buttons(fake_slack, task) == [ACTION_ACKNOWLEDGE]
    assert "the buttons come back when it reports" in shown(report_message(fake_slack, task).blocks)


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


async def test_a_stale_click_on_the_status_answer_is_said_under_it_and_redraws_it(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, **IN_PROGRESS)
    await run_pm(fake_slack, f"status {task.ref}", user=BOB)
    answer = last_ephemeral(fake_slack, BOB)
    assert ACTION_MARK_DONE in shown(answer.blocks)
    await click(pmteam, fake_slack, task, ACTION_MARK_DONE, user=ALICE)  # meanwhile, the card

    await fake_slack.click_button(BOB, ENGINEERING, answer.ts, ACTION_MARK_DONE, str(task.id))
    await settle(pmteam, fake_slack)

    messages = fake_slack.workspace.ephemerals(ENGINEERING, BOB)
    assert [m.text for m in messages[1:]] == [f"{task.ref} is already completed."]
    redrawn = messages[0]
    assert redrawn.ts == answer.ts
    assert ":white_check_mark: completed" in shown(redrawn.blocks)
    # Bob's buttons now: he may acknowledge or reopen, not mark done again.
    assert ACTION_MARK_DONE not in shown(redrawn.blocks)
    assert ACTION_REOPEN in shown(redrawn.blocks)


def card_buttons(fake_slack: FakeSlack, task: Task) -> list[str]:
    card = report_message(fake_slack, task)
    actions = [b for b in card.blocks or [] if b["type"] == "actions"]
    return [e["action_id"] for b in actions for e in b["elements"]]


def card_thread(fake_slack: FakeSlack, task: Task) -> list[str]:
    """What pmteam said in the card's thread, oldest first."""
    card = report_message(fake_slack, task)
    return [m.text for m in bot_messages(fake_slack, COORDINATION, card.ts) if m.ts != card.ts]
