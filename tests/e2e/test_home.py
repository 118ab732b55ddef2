"""The App Home board: published on open, refreshed for live viewers, within Slack's limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.app import Pmteam
from bot.slack.blocks.report import ACTION_ACKNOWLEDGE, ACTION_MARK_DONE, ACTION_REOPEN
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import HomeVisit, Task, TaskEvent, TaskStatus, TurnStatus
from storage.types import utcnow
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ON_EACH_DATABASE,
    mention,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import (
    CAROL,
    add_carol,
    add_reports,
    add_tasks,
    finished_task,
    home_blocks,
    report_message,
    settle,
    shown,
    submit_reason,
    texts,
)

RED_FLAGGED: dict[str, Any] = {
    "task": "Shard the events table",
    "pm_scores": {
        "system_architecture_design": 8,
        "scalability_performance": 4,
        "integration_reliability": 8,
    },
    "red_flags": [
        {
            "axis": "scalability_performance",
            "explanation": "Cross-shard queries are untested",
            "mitigation": "Load test with production-sized data",
        }
    ],
}


async def open_home(pmteam: Pmteam, fake_slack: FakeSlack, user: str) -> None:
    delivery = await fake_slack.open_app_home(user)
    assert delivery.acked and delivery.status_codes == [200]
    await settle(pmteam, fake_slack)


def published_for(fake_slack: FakeSlack) -> list[str]:
    return [c.params["user_id"] for c in fake_slack.calls_to("views.publish") if c.ok]


@ON_EACH_DATABASE
async def test_opening_home_publishes_the_board(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await finished_task(pmteam, fake_slack, fake_model, **RED_FLAGGED)
    await add_tasks(pmteam, 2, status=TaskStatus.BLOCKED, requester=BOB, reason="needs VPN")
    await add_tasks(pmteam, 1, status=TaskStatus.IN_PROGRESS, title="Alice's open one")

    await open_home(pmteam, fake_slack, ALICE)

    blocks = home_blocks(fake_slack, ALICE)
    text = shown(blocks)
    assert published_for(fake_slack) == [ALICE]
    assert len(blocks) <= 100
    counts = {f["text"] for b in blocks if "fields" in b for f in b["fields"]}
    assert ":no_entry: blocked\n*2*" in counts and ":white_check_mark: completed\n*1*" in counts
    # Blocked tasks with their reasons and who is waiting.
    assert "_needs VPN_" in text and f"waiting: <@{BOB}>" in text
    # Your tasks.
    assert "Alice's open one 0" in text
    # The last reports, with their scores in short, and this week's red flags.
    assert "Shard the events table" in text and "Scale 4 :warning:" in text
    assert "Cross-shard queries are untested" in text
    # Usage this week.
    assert "*Usage this week*" in text and "*Cost*" in text and "$0.00" not in text
    [visit] = await rows_of_visits(pmteam)
    assert visit.user_id == ALICE


async def rows_of_visits(pmteam: Pmteam) -> list[HomeVisit]:
    async with pmteam.deps.sessions() as session:
        from sqlmodel import select

        return list((await session.exec(select(HomeVisit))).all())


async def test_the_messages_tab_publishes_nothing(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    await fake_slack.open_app_home(ALICE, tab="messages")
    await settle(pmteam, fake_slack)

    assert published_for(fake_slack) == []


async def test_a_big_board_stays_within_the_home_tab_limit(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    blocked = await add_tasks(pmteam, 40, status=TaskStatus.BLOCKED, reason="x" * 400)
    await add_tasks(pmteam, 30, status=TaskStatus.IN_PROGRESS, title="y" * 200)
    await add_reports(pmteam, blocked[:25], **RED_FLAGGED)

    await open_home(pmteam, fake_slack, ALICE)

    blocks = home_blocks(fake_slack, ALICE)
    assert len(blocks) <= 100
    assert [c for c in fake_slack.calls_to("views.publish") if not c.ok] == []
    for block in blocks:
        assert len(block.get("text", {}).get("text", "")) <= 3000


@ON_EACH_DATABASE
async def test_a_status_change_refreshes_boards_opened_in_the_last_hour(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    add_carol(fake_slack)
    task = await finished_task(
        pmteam, fake_slack, fake_model, status="IN_PROGRESS", estimated_time="1 day"
    )
    await open_home(pmteam, fake_slack, BOB)
    await open_home(pmteam, fake_slack, CAROL)
    async with pmteam.deps.sessions.begin() as session:  # Carol looked two hours ago
        visit = await session.get(HomeVisit, CAROL)
        assert visit is not None
        visit.opened_at = utcnow() - timedelta(hours=2)
    assert ":hourglass_flowing_sand: in progress\n*1*" in texts(home_blocks(fake_slack, BOB))
    before = len(published_for(fake_slack))

    message = report_message(fake_slack, task)
    await fake_slack.click_button(ALICE, COORDINATION, message.ts, ACTION_MARK_DONE, str(task.id))
    await settle(pmteam, fake_slack)

    assert published_for(fake_slack)[before:] == [BOB]
    assert ":white_check_mark: completed\n*1*" in texts(home_blocks(fake_slack, BOB))


async def test_a_finished_turn_refreshes_live_boards(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await open_home(pmteam, fake_slack, BOB)
    assert "No reports yet." in shown(home_blocks(fake_slack, BOB))

    await mention(fake_slack, "design a rate limiter for our public API")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    await settle(pmteam, fake_slack)

    board = shown(home_blocks(fake_slack, BOB))
    assert "No reports yet." not in board and "*T-1*" in board


async def test_acknowledge_from_home_and_a_refusal_shown_on_it(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model)
    await open_home(pmteam, fake_slack, BOB)

    await fake_slack.click_view_button(BOB, ACTION_ACKNOWLEDGE, str(task.id))
    await settle(pmteam, fake_slack)
    acks = [e for e in await rows(pmteam, TaskEvent) if e.kind == "acknowledged"]
    assert [(e.task_id, e.actor) for e in acks] == [(task.id, BOB)]
    assert f"Acknowledged by <@{BOB}>" in shown(report_message(fake_slack, task).blocks)

    await fake_slack.click_view_button(BOB, ACTION_ACKNOWLEDGE, str(task.id))
    await settle(pmteam, fake_slack)
    notice = home_blocks(fake_slack, BOB)[1]["text"]["text"]
    assert notice == f":warning: {task.ref}'s latest report was already acknowledged by <@{BOB}>."


async def test_reopen_a_blocked_task_from_home(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    blocker = [{"kind": "infrastructure_blocker", "description": "needs VPN"}]
    task = await finished_task(
        pmteam, fake_slack, fake_model, status="BLOCKED", dependencies_handoffs=blocker
    )
    assert task.status == TaskStatus.BLOCKED
    fake_model.script()  # the offline model answers the reopened turn
    await open_home(pmteam, fake_slack, BOB)
    assert "_needs VPN_" in shown(home_blocks(fake_slack, BOB))

    await fake_slack.click_view_button(BOB, ACTION_REOPEN, str(task.id))
    await fake_slack.wait_for(lambda: bool(fake_slack.workspace.modals(BOB)))
    await submit_reason(fake_slack, BOB, "the VPN is up now")
    _, turn = await wait_until_idle(pmteam, fake_slack, turns=2)
    await settle(pmteam, fake_slack)

    assert turn.status == TurnStatus.DONE and (turn.user_id, turn.source) == (BOB, "reopen")
    assert turn.text == "the VPN is up now"
    [reloaded] = await rows(pmteam, Task)
    assert reloaded.status != TaskStatus.BLOCKED
    assert "_needs VPN_" not in shown(home_blocks(fake_slack, BOB))
