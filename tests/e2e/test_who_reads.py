"""Who may read what: a task asked in a channel is for that channel's members, its requester
and the PMs; posting to the PM's channel is the PMs' when they are named; and the PM's own
channel always works for them."""

from __future__ import annotations

import pytest

from bot.app import Pmteam
from bot.slack.blocks.report import ACTION_ACKNOWLEDGE
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import TaskEvent
from tests.e2e.conftest import (
    BOB,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    rows,
)
from tests.e2e.pm_support import (
    CAROL,
    ack_of,
    add_carol,
    finished_task,
    report_message,
    run_pm,
    settle,
    shown,
)


def leave(fake_slack: FakeSlack, user: str, channel: str) -> None:
    fake_slack.workspace.channel(channel).members.discard(user)


@pytest.mark.reliability("Someone outside a channel reads its tasks", kind="attack")
async def test_a_channel_task_is_for_that_channel_s_members(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    add_carol(fake_slack)
    leave(fake_slack, CAROL, ENGINEERING)
    leave(fake_slack, CAROL, COORDINATION)
    await finished_task(pmteam, fake_slack, fake_model, "design the salary bands API")

    # Carol is in neither #engineering nor the PM's channel: she reads nothing of it.
    status = shown(ack_of(await run_pm(fake_slack, "status T-1", user=CAROL, channel="C0RANDOM")))
    assert "which you're not in" in status and "salary bands" not in status
    listed = shown(ack_of(await run_pm(fake_slack, "list done", user=CAROL, channel="C0RANDOM")))
    assert "salary bands" not in listed
    # Bob is in #engineering: he reads it.
    status = shown(ack_of(await run_pm(fake_slack, "status T-1", user=BOB)))
    assert "salary bands" in status
    assert "salary bands" in shown(ack_of(await run_pm(fake_slack, "list done", user=BOB)))


@pytest.mark.reliability("A non-PM makes pmteam post to the PM's channel", kind="attack")
async def test_a_pm_reads_every_channel_task_and_only_pms_post_to_the_pm_channel(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_PM_USERS=BOB)
    add_carol(fake_slack)
    await finished_task(pmteam, fake_slack, fake_model, "design the salary bands API")
    leave(fake_slack, BOB, ENGINEERING)  # a PM reads a channel's tasks without being in it

    assert "salary bands" in shown(ack_of(await run_pm(fake_slack, "status T-1", user=BOB)))
    posts_before = len(fake_slack.calls_to("chat.postMessage"))
    report = shown(ack_of(await run_pm(fake_slack, "report T-1", user=CAROL)))
    standup = shown(ack_of(await run_pm(fake_slack, "standup post", user=CAROL)))
    await settle(pmteam, fake_slack)
    assert "Only a project manager (PMTEAM_PM_USERS) can repost a report." in report
    assert "Only a project manager (PMTEAM_PM_USERS) can post the standup." in standup
    assert len(fake_slack.calls_to("chat.postMessage")) == posts_before
    # Carol may still preview the standup only she sees.
    preview = shown(ack_of(await run_pm(fake_slack, "standup", user=CAROL)))
    assert "Preparing a standup preview" in preview


@pytest.mark.reliability("The PM acts in a channel the allow-list doesn't name", kind="fault")
async def test_the_pm_channel_works_for_the_pm_whatever_the_allow_list_says(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_ALLOWED_CHANNELS=ENGINEERING, PMTEAM_PM_USERS=BOB)
    task = await finished_task(pmteam, fake_slack, fake_model)
    card = report_message(fake_slack, task)

    await fake_slack.click_button(BOB, COORDINATION, card.ts, ACTION_ACKNOWLEDGE, str(task.id))
    await settle(pmteam, fake_slack)

    acks = [e for e in await rows(pmteam, TaskEvent) if e.kind == "acknowledged"]
    assert [(e.task_id, e.actor) for e in acks] == [(task.id, BOB)]
    assert fake_slack.workspace.ephemerals(COORDINATION, BOB) == []
