"""Tasks in a given state at a given time, made through the real intake, queue and reports."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.standups import StandupRunner
from sandbox.slack import FakeSlack, Message
from storage.intake import record_intake
from storage.models import Standup, Task, TaskStatus
from storage.queue import claim_next_turn, complete_turn
from storage.records import save_report
from tests.e2e.conftest import ALICE, ENGINEERING, report_json

_thread_numbers = itertools.count(1)

RED_FLAG_REPORT: dict[str, Any] = {
    "pm_scores": {
        "system_architecture_design": 8,
        "scalability_performance": 7,
        "integration_reliability": 8,
    },
    "self_assessment": {
        "probability_of_success": 8,
        "implementation_feasibility": 7,
        "quality_completeness": 7,
        "risk_assessment": 4,
        "alignment_value": 9,
    },
    "red_flags": [
        {
            "axis": "risk_assessment",
            "explanation": "no load test of the failover yet",
            "mitigation": "run the failover drill on staging",
        }
    ],
}


async def add_task(
    sessions: async_sessionmaker[AsyncSession],
    *,
    title: str,
    status: TaskStatus,
    at: datetime,
    fake_slack: FakeSlack | None = None,
    channel: str = ENGINEERING,
    requester: str = ALICE,
    note: str | None = None,
    estimate: timedelta | None = None,
    **report: Any,
) -> Task:
    """A task asked at `at` whose first turn finished at `at` with a report in `status`
    (QUEUED: asked, not worked yet). With `fake_slack`, its thread exists in Slack too."""
    thread_ts = f"1774000000.{next(_thread_numbers):06d}"
    if fake_slack is not None:
        fake_slack.workspace.add_message(
            Message(channel=channel, ts=thread_ts, text=title, user=requester)
        )
    async with sessions.begin() as session:
        intake = await record_intake(
            session=session,
            team_id="T0SANDBOX",
            channel_id=channel,
            thread_ts=thread_ts,
            message_ts=thread_ts,
            user_id=requester,
            text=title,
            now=at,
        )
    task_id = intake.task.id
    assert task_id is not None
    if status == TaskStatus.QUEUED:
        return intake.task
    async with sessions.begin() as session:
        turn = await claim_next_turn(session=session, owner="test", lease_seconds=60, now=at)
    assert turn is not None and turn.id is not None and turn.task_id == task_id
    report_status = {
        TaskStatus.COMPLETED: "COMPLETED",
        TaskStatus.IN_PROGRESS: "IN_PROGRESS",
        TaskStatus.BLOCKED: "BLOCKED",
    }[status]
    estimated_time = f"{int(estimate.total_seconds() // 3600)} hours" if estimate else None
    data = report_json(task=title, status=report_status, estimated_time=estimated_time, **report)
    async with sessions.begin() as session:
        await save_report(
            session=session,
            task_id=task_id,
            turn_id=turn.id,
            status=report_status,
            data=data,
            red_flag_count=len(data["red_flags"]),
            min_score=min([*data["pm_scores"].values(), *data["self_assessment"].values()]),
            now=at,
        )
    async with sessions.begin() as session:
        await complete_turn(
            session=session,
            turn_id=turn.id,
            owner="test",
            answer_text=f"the answer to {title}",
            task_status=status,
            status_note=note,
            estimated_time=estimated_time,
            estimate_due_at=at + estimate if estimate else None,
            now=at,
        )
    async with sessions() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


async def standups(runner: StandupRunner) -> list[Standup]:
    async with runner.deps.sessions() as session:
        result = await session.exec(select(Standup).order_by(col(Standup.id)))
        return list(result.all())


def standup_posts(fake_slack: FakeSlack, channel: str) -> list[Message]:
    """pmteam's standup messages in a channel, oldest first."""
    return [
        m
        for m in fake_slack.workspace.messages(channel)
        if str(((m.metadata or {}).get("event_payload") or {}).get("key", "")).startswith(
            "standup:"
        )
    ]


def standup_key(message: Message) -> str:
    return str(((message.metadata or {}).get("event_payload") or {}).get("key"))


def all_text(message: Message) -> str:
    """Everything a person can read in a message: the text and every block's text."""
    parts = [message.text]
    for block in message.blocks or []:
        if "text" in block and isinstance(block["text"], dict):
            parts.append(str(block["text"].get("text", "")))
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and "text" in element:
                parts.append(str(element["text"]))
    return "\n".join(parts)
