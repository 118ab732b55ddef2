"""A report's handoffs become tracked work: DMed to their owners once, decided with Done or
Decline, shown on the card and in the thread, assigned by the PM, reminded, resumed, listed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from agents.ledger import StorageLedger
from agents.reports import stored_outcome
from bot.app import Pmteam
from bot.services.handoffs import dm_key, notify_report_handoffs
from bot.services.housekeeping import Housekeeping
from bot.slack.blocks.handoffs import (
    ACTION_HANDOFF_ASSIGN,
    ACTION_HANDOFF_DECLINE,
    ACTION_HANDOFF_DONE,
    ACTION_HANDOFFS_RESUME,
    ASSIGN_BLOCK,
    ASSIGN_INPUT,
)
from sandbox.model import FakeModel, Json, Text
from sandbox.slack import FakeSlack
from sandbox.slack.workspace import Message
from storage.models import HandoffItem, Report, Task, TaskStatus, Turn
from storage.records import forget_post
from storage.types import utcnow
from tests.conftest import _truncate_postgres
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    bot_messages,
    report_json,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import (
    ack_of,
    add_carol,
    finished_task,
    home_blocks,
    last_ephemeral,
    report_message,
    run_pm,
    settle,
    shown,
    submit_reason,
    submit_view,
    texts,
)

# Bob is the PM: the requester (Alice) and the owners are not.
KAFKA = "Create the Kafka topics"
STAGING = "Provision the staging database"
IN_PROGRESS: dict[str, Any] = {"status": "IN_PROGRESS", "estimated_time": "2 days"}


@pytest.fixture(params=["sqlite", "postgres"])
async def pmteam(start_pmteam: StartPmteam, request: pytest.FixtureRequest) -> Pmteam:
    """pmteam with Bob as its one PM, on each database."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_database")
        _truncate_postgres(url)
        return await start_pmteam(database_url=url, PMTEAM_PM_USERS=BOB)
    return await start_pmteam(PMTEAM_PM_USERS=BOB)


def dm_channel(user: str) -> str:
    return "D" + user[1:]  # the fake's DM with a person


def dms(fake_slack: FakeSlack, user: str) -> list[Message]:
    """What pmteam sent the person in their DM (none before its first message there)."""
    if fake_slack.workspace.find_channel(dm_channel(user)) is None:
        return []
    return bot_messages(fake_slack, dm_channel(user))


def handoff(kind: str, description: str, owner: str | None) -> dict[str, Any]:
    return {"kind": kind, "description": description, "owner": owner}


def two_handoffs(carol: str) -> list[dict[str, Any]]:
    return [
        handoff("needed_from_others", KAFKA, f"<@{BOB}>"),
        handoff("infrastructure_blocker", STAGING, f"<@{carol}>"),
        handoff("integration_endpoint_ready", "POST /payments is ready", None),
    ]


def thread_lines(fake_slack: FakeSlack, task: Task) -> list[str]:
    return [m.text for m in bot_messages(fake_slack, ENGINEERING, task.thread_ts)]


async def click_dm(
    pmteam: Pmteam, fake_slack: FakeSlack, owner: str, action: str, item: HandoffItem, *, user: str
) -> None:
    [dm] = dms(fake_slack, owner)
    delivery = await fake_slack.click_button(user, dm_channel(owner), dm.ts, action, str(item.id))
    assert delivery.acked and delivery.status_codes == [200]
    await settle(pmteam, fake_slack)


async def by_description(pmteam: Pmteam) -> dict[str, HandoffItem]:
    return {h.description: h for h in await rows(pmteam, HandoffItem)}


async def test_each_owner_gets_one_dm_and_decides_it_and_the_card_and_thread_show_it(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    carol = add_carol(fake_slack)
    task = await finished_task(
        pmteam, fake_slack, fake_model, dependencies_handoffs=two_handoffs(carol), **IN_PROGRESS
    )

    # Tracked: the two that wait on someone, with their owners; not the ready endpoint.
    items = await by_description(pmteam)
    assert {(d, h.owner_kind, h.owner_id, h.status) for d, h in items.items()} == {
        (KAFKA, "user", BOB, "open"),
        (STAGING, "user", carol, "open"),
    }
    [bob_dm], [carol_dm] = dms(fake_slack, BOB), dms(fake_slack, carol)
    assert KAFKA in shown(bob_dm.blocks) and task.ref in shown(bob_dm.blocks)
    assert STAGING in shown(carol_dm.blocks)
    assert "View the thread" in shown(bob_dm.blocks)

    # A retried turn stores its report once and DMs nobody again.
    [report] = await rows(pmteam, Report)
    ledger = StorageLedger(pmteam.deps.sessions)
    await ledger.save_report(
        stored_outcome(report.data, report.gaps), task_id=report.task_id, turn_id=report.turn_id
    )
    assert report.id is not None
    await notify_report_handoffs(
        pmteam.deps, task=task, report_id=report.id, permalink=None, retried=True
    )
    assert len(await rows(pmteam, HandoffItem)) == 2
    assert len(dms(fake_slack, BOB)) == 1 and len(dms(fake_slack, carol)) == 1
    # Even when the earlier attempt died between posting and recording: Slack is asked.
    async with pmteam.deps.sessions.begin() as session:
        await forget_post(session=session, key=dm_key(items[KAFKA]))
    await notify_report_handoffs(
        pmteam.deps, task=task, report_id=report.id, permalink=None, retried=True
    )
    assert len(dms(fake_slack, BOB)) == 1

    # Someone else pressing Done is refused; the handoff stays open.
    await click_dm(pmteam, fake_slack, BOB, ACTION_HANDOFF_DONE, items[KAFKA], user=ALICE)
    assert (await by_description(pmteam))[KAFKA].status == "open"
    refused = [e.text for e in fake_slack.workspace.ephemerals(dm_channel(BOB), ALICE)]
    assert any(f"Only <@{BOB}>" in text for text in refused), refused

    # Bob marks his done: his DM shows it, the card shows both states, the thread is told.
    await click_dm(pmteam, fake_slack, BOB, ACTION_HANDOFF_DONE, items[KAFKA], user=BOB)
    assert (await by_description(pmteam))[KAFKA].status == "done"
    [bob_dm] = dms(fake_slack, BOB)
    assert ACTION_HANDOFF_DONE not in shown(bob_dm.blocks)
    assert f"done by <@{BOB}>" in shown(bob_dm.blocks)
    card = shown(report_message(fake_slack, task).blocks)
    assert f":white_check_mark: done by <@{BOB}>" in card
    assert ":hourglass_flowing_sand: open" in card
    assert f"{task.ref}: <@{BOB}> marked ‘{KAFKA}’ done" in "\n".join(
        thread_lines(fake_slack, task)
    )

    # Carol declines hers with a reason, typed into the modal.
    await click_dm(pmteam, fake_slack, carol, ACTION_HANDOFF_DECLINE, items[STAGING], user=carol)
    submitted = await submit_reason(fake_slack, carol, "Not our team; ask platform")
    assert submitted.acked
    await settle(pmteam, fake_slack)
    declined = (await by_description(pmteam))[STAGING]
    assert (declined.status, declined.reason, declined.decided_by) == (
        "declined",
        "Not our team; ask platform",
        carol,
    )
    card = shown(report_message(fake_slack, task).blocks)
    assert f"declined by <@{carol}>: Not our team; ask platform" in card
    lines = "\n".join(thread_lines(fake_slack, task))
    assert f"<@{carol}> declined ‘{STAGING}’: Not our team; ask platform" in lines
    # One declined: not all done, so no Resume.
    assert ACTION_HANDOFFS_RESUME not in shown(
        [m.blocks for m in bot_messages(fake_slack, ENGINEERING, task.thread_ts)]
    )


async def test_all_handoffs_done_offers_resume_to_the_requester_which_queues_a_turn(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    carol = add_carol(fake_slack)
    task = await finished_task(
        pmteam,
        fake_slack,
        fake_model,
        dependencies_handoffs=[handoff("needed_from_others", KAFKA, f"<@{BOB}>")],
        **IN_PROGRESS,
    )
    [item] = await rows(pmteam, HandoffItem)
    await click_dm(pmteam, fake_slack, BOB, ACTION_HANDOFF_DONE, item, user=BOB)

    [done_line] = [
        m
        for m in bot_messages(fake_slack, ENGINEERING, task.thread_ts)
        if ACTION_HANDOFFS_RESUME in shown(m.blocks)
    ]
    assert "every handoff is done" in done_line.text

    async def resume(user: str) -> None:
        delivery = await fake_slack.click_button(
            user, ENGINEERING, done_line.ts, ACTION_HANDOFFS_RESUME, str(task.id)
        )
        assert delivery.acked and delivery.status_codes == [200]
        await settle(pmteam, fake_slack)

    # Only the requester (or a PM) may resume: Carol is refused and nothing is queued.
    fake_slack.workspace.channel(ENGINEERING).members.add(carol)
    await resume(carol)
    assert len(await rows(pmteam, Turn)) == 1
    assert any("Only <@" in e.text for e in fake_slack.workspace.ephemerals(ENGINEERING, carol))

    fake_model.script(Text("Carrying on with the topics in place."), Json(report_json()))
    await resume(ALICE)
    turns = await wait_until_idle(pmteam, fake_slack, turns=2)
    assert turns[-1].text == f"The handoffs are done: {KAFKA}; carry on."
    assert turns[-1].user_id == ALICE
    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status == TaskStatus.COMPLETED


async def test_an_unowned_handoff_assigned_by_the_pm_is_dmed_to_the_new_owner(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    carol = add_carol(fake_slack)
    task = await finished_task(
        pmteam,
        fake_slack,
        fake_model,
        dependencies_handoffs=[handoff("needed_from_others", KAFKA, None)],
        **IN_PROGRESS,
    )
    [item] = await rows(pmteam, HandoffItem)
    assert (item.owner_kind, item.owner_id) == ("unassigned", None)
    assert "no owner yet" in shown(report_message(fake_slack, task).blocks)
    assert dms(fake_slack, carol) == []

    async def press_assign(user: str) -> None:
        card = report_message(fake_slack, task)
        delivery = await fake_slack.click_button(
            user, COORDINATION, card.ts, ACTION_HANDOFF_ASSIGN, str(item.id)
        )
        assert delivery.acked
        await settle(pmteam, fake_slack)

    await press_assign(ALICE)  # not a PM
    assert fake_slack.workspace.modals(ALICE) == []
    await press_assign(BOB)
    [view] = fake_slack.workspace.modals(BOB)
    values = {ASSIGN_BLOCK: {ASSIGN_INPUT: {"type": "users_select", "selected_user": carol}}}
    submitted = await submit_view(fake_slack, BOB, values, view)
    assert submitted.acked
    await settle(pmteam, fake_slack)

    [item] = await rows(pmteam, HandoffItem)
    assert (item.owner_kind, item.owner_id) == ("user", carol)
    [carol_dm] = dms(fake_slack, carol)
    assert KAFKA in shown(carol_dm.blocks) and ACTION_HANDOFF_DONE in shown(carol_dm.blocks)
    assert f"<@{carol}> · :hourglass_flowing_sand: open" in shown(
        report_message(fake_slack, task).blocks
    )
    assert f"<@{BOB}> assigned ‘{KAFKA}’ to <@{carol}>" in "\n".join(thread_lines(fake_slack, task))


async def test_an_old_open_handoff_reminds_its_owner_once(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await finished_task(
        pmteam,
        fake_slack,
        fake_model,
        dependencies_handoffs=[handoff("needed_from_others", KAFKA, f"<@{BOB}>")],
        **IN_PROGRESS,
    )
    housekeeping = Housekeeping(deps=pmteam.deps)
    await housekeeping.nudge_overdue_tasks()
    assert len(dms(fake_slack, BOB)) == 1  # not old enough yet

    async with pmteam.deps.sessions.begin() as session:
        await session.exec(update(HandoffItem).values(created_at=utcnow() - timedelta(days=4)))
    await housekeeping.nudge_overdue_tasks()
    await housekeeping.nudge_overdue_tasks()

    reminders = dms(fake_slack, BOB)[1:]
    assert len(reminders) == 1
    assert "A reminder" in reminders[0].text and KAFKA in reminders[0].text
    [item] = await rows(pmteam, HandoffItem)
    assert item.nudged_at is not None


async def test_waiting_on_you_in_pm_handoffs_the_home_tab_and_the_standup(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    carol = add_carol(fake_slack)
    task = await finished_task(
        pmteam, fake_slack, fake_model, dependencies_handoffs=two_handoffs(carol), **IN_PROGRESS
    )
    async with pmteam.deps.sessions.begin() as session:
        await session.exec(
            update(HandoffItem)
            .where(col(HandoffItem.description) == STAGING)
            .values(created_at=utcnow() - timedelta(days=5))
        )

    mine = texts(ack_of(await run_pm(fake_slack, "handoffs", user=BOB))["blocks"])
    assert "Waiting on you" in mine and KAFKA in mine and STAGING not in mine
    nothing = texts(ack_of(await run_pm(fake_slack, "handoffs", user=ALICE))["blocks"])
    assert "Nothing open" in nothing
    theirs = texts(ack_of(await run_pm(fake_slack, f"handoffs <@{carol}>", user=ALICE))["blocks"])
    assert STAGING in theirs and "overdue" in theirs and KAFKA not in theirs
    everyone = texts(ack_of(await run_pm(fake_slack, "handoffs all", user=ALICE))["blocks"])
    assert KAFKA in everyone and STAGING in everyone
    assert f"<@{BOB}>" in everyone and f"<@{carol}>" in everyone

    delivery = await fake_slack.open_app_home(BOB)
    assert delivery.acked
    await settle(pmteam, fake_slack)
    home = texts(home_blocks(fake_slack, BOB))
    assert "Waiting on you" in home and f"{task.ref}" in home and KAFKA in home

    fake_model.script(Text("T-1 is waiting on two handoffs."))
    await run_pm(fake_slack, "standup", user=ALICE)
    await settle(pmteam, fake_slack)
    standup = texts(last_ephemeral(fake_slack, ALICE, ENGINEERING).blocks)
    assert "Open handoffs by owner" in standup
    [carol_line] = [line for line in standup.splitlines() if f"<@{carol}>:" in line]
    assert STAGING in carol_line and "overdue" in carol_line
    [bob_line] = [line for line in standup.splitlines() if f"<@{BOB}>:" in line]
    assert KAFKA in bob_line and "overdue" not in bob_line
