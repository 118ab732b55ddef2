"""Helpers for the `/pm`, button and App Home end-to-end tests."""

from __future__ import annotations

import itertools
import json
from typing import Any

from bot.app import Pmteam
from sandbox.model import FakeModel, Json, Text
from sandbox.slack import FakeSlack
from sandbox.slack.delivery import Delivery
from sandbox.slack.workspace import Ephemeral, Message, User
from storage.models import Report, Task, TaskStatus, Turn, TurnStatus
from storage.types import utcnow
from tests.e2e.conftest import (
    ALICE,
    COORDINATION,
    ENGINEERING,
    bot_messages,
    mention,
    report_json,
    rows,
    wait_until_idle,
)

_SEEDED = itertools.count(1)
CAROL = "U0CAROL"  # in the channels, but neither a requester nor a PM


def add_carol(fake_slack: FakeSlack) -> str:
    fake_slack.workspace.add_user(User(id=CAROL, name="carol", real_name="Carol"))
    for channel in (ENGINEERING, COORDINATION):
        fake_slack.workspace.channel(channel).members.add(CAROL)
    return CAROL


async def settle(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    """Wait for the work pmteam does after an ack, and the events it sets off."""
    for _ in range(3):
        await pmteam.deps.drain()
        await fake_slack.drain()


async def run_pm(
    fake_slack: FakeSlack, text: str, *, user: str = ALICE, channel: str = ENGINEERING
) -> Delivery:
    return await fake_slack.slash_command(user, channel, "/pm", text)


def ack_of(delivery: Delivery) -> dict[str, Any]:
    """The ephemeral answer pmteam gave in the ack (asserting that it was one)."""
    assert delivery.acked and delivery.status_codes == [200]
    body = delivery.ack_body
    assert isinstance(body, dict), body
    assert body.get("response_type") == "ephemeral"
    return body


def shown(value: Any) -> str:
    """Everything a person could read in some blocks / a body / a view, as one string."""
    return json.dumps(value, ensure_ascii=False)


async def finished_task(
    pmteam: Pmteam,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    request: str = "design an idempotent payments API",
    *,
    user: str = ALICE,
    turns_before: int = 0,
    **report: Any,
) -> Task:
    """A task worked end to end through the pipeline with a scripted answer and report."""
    fake_model.script(
        Text(f"Here is the plan for: {request}."),
        Json(report_json(**report)),
    )
    await mention(fake_slack, request, user=user)
    await wait_until_idle(pmteam, fake_slack, turns=turns_before + 1)
    await settle(pmteam, fake_slack)
    tasks = await rows(pmteam, Task)
    return tasks[-1]


def report_message(fake_slack: FakeSlack, task: Task) -> Message:
    """The (last) report message for a task in the coordination channel."""
    found = [
        m
        for m in bot_messages(fake_slack, COORDINATION)
        if f'"task_actions:{task.id}"' in shown(m.blocks or [])
    ]
    assert found, "no report message for the task"
    return found[-1]


def last_ephemeral(fake_slack: FakeSlack, user: str, channel: str = ENGINEERING) -> Ephemeral:
    found = fake_slack.workspace.ephemerals(channel, user)
    assert found, f"no ephemeral message for {user} in {channel}"
    return found[-1]


async def submit_view(
    fake_slack: FakeSlack, user: str, values: dict[str, Any], view: dict[str, Any] | None = None
) -> Delivery:
    """The person fills in their open modal (the last one, unless `view` says which) with
    `values` (`state.values`: block id → action id → element state) and submits it."""
    workspace = fake_slack.workspace
    view = view if view is not None else workspace.modals(user)[-1]
    return await fake_slack.interact(
        {
            "type": "view_submission",
            "team": {"id": workspace.team.id, "domain": workspace.team.domain},
            "user": {"id": user, "username": user.lower(), "team_id": workspace.team.id},
            "api_app_id": workspace.bot_user.app_id,
            "token": fake_slack.verification_token,
            "trigger_id": workspace.issue_trigger(user),
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
    )


async def submit_reason(fake_slack: FakeSlack, user: str, reason: str) -> Delivery:
    """The person types a reason into the open reason modal (Mark blocked, Reopen), submits it."""
    [view] = fake_slack.workspace.modals(user)
    values = {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}
    return await submit_view(fake_slack, user, values, view)


async def add_tasks(
    pmteam: Pmteam,
    count: int,
    *,
    status: TaskStatus = TaskStatus.COMPLETED,
    requester: str = ALICE,
    channel: str = ENGINEERING,
    reason: str | None = None,
    title: str = "Seeded task",
) -> list[Task]:
    """Tasks written straight to the database (no turns, so the worker leaves them alone)."""
    # A write session (BEGIN IMMEDIATE on SQLite), as the app's own writes are: a read session
    # that writes can meet SQLITE_BUSY at once while the app writes too.
    async with pmteam.deps.sessions.begin() as session:
        tasks = [
            Task(
                team_id="T0SANDBOX",
                channel_id=channel,
                thread_ts=f"1700000000.{next(_SEEDED):06d}",
                requester_id=requester,
                title=f"{title} {index}",
                request_text=f"{title} {index}",
                status=status,
                status_reason=reason,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            for index in range(count)
        ]
        session.add_all(tasks)
    return tasks


async def add_reports(pmteam: Pmteam, tasks: list[Task], **report: Any) -> None:
    """A done turn and a stored report for each task, straight into the database."""
    data = report_json(**report)
    async with pmteam.deps.sessions.begin() as session:
        for task in tasks:
            assert task.id is not None
            turn = Turn(
                task_id=task.id,
                seq=1,
                team_id=task.team_id,
                channel_id=task.channel_id,
                message_ts=task.thread_ts,
                user_id=task.requester_id,
                text=task.request_text,
                status=TurnStatus.DONE,
            )
            session.add(turn)
            await session.flush()
            assert turn.id is not None
            session.add(
                Report(
                    task_id=task.id,
                    turn_id=turn.id,
                    status=data["status"],
                    data=data,
                    red_flag_count=len(data["red_flags"]),
                    min_score=min([*data["pm_scores"].values(), *data["self_assessment"].values()]),
                )
            )


def home_blocks(fake_slack: FakeSlack, user: str) -> list[dict[str, Any]]:
    view = fake_slack.workspace.home_view(user)
    assert view is not None, f"no Home published for {user}"
    blocks: list[dict[str, Any]] = view["blocks"]
    return blocks


def texts(value: Any) -> str:
    """Every text a person reads in some blocks, one per line (unlike `shown`, unescaped)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            text = node.get("text")
            if isinstance(text, str):
                found.append(text)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return "\n".join(found)
