"""Team tool calls: recorded as they start, approved or denied once, finished with an outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Approval, ToolCall, Turn, TurnStatus
from storage.types import utcnow


async def start_tool_call(
    *,
    session: AsyncSession,
    task_id: int,
    turn_id: int,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    writes: bool,
) -> ToolCall:
    """The call, recorded before anything runs; one that writes waits for its requester."""
    call = ToolCall(
        task_id=task_id,
        turn_id=turn_id,
        server=server,
        tool=tool,
        arguments=arguments,
        writes=writes,
        approval=Approval.PENDING if writes else None,
    )
    session.add(call)
    await session.flush()
    return call


async def decide_tool_call(
    *, session: AsyncSession, call_id: int, approved: bool, user_id: str
) -> bool:
    """Approve or deny a waiting call; False when it isn't waiting any more (answered before,
    given up on, or its turn has ended), so the first answer is the one that counts."""
    running = select(Turn.id).where(col(Turn.status) == TurnStatus.RUNNING)
    decided = await session.exec(
        update(ToolCall)
        .where(
            col(ToolCall.id) == call_id,
            col(ToolCall.approval) == Approval.PENDING,
            col(ToolCall.turn_id).in_(running),
        )
        .values(
            approval=Approval.APPROVED if approved else Approval.DENIED,
            decided_by=user_id,
            decided_at=utcnow(),
        )
    )
    return decided.rowcount == 1


async def close_approval(*, session: AsyncSession, call_id: int, approval: Approval) -> bool:
    """Stop waiting for an answer (TIMED_OUT, WITHDRAWN); False when one came first."""
    closed = await session.exec(
        update(ToolCall)
        .where(col(ToolCall.id) == call_id, col(ToolCall.approval) == Approval.PENDING)
        .values(approval=approval, decided_at=utcnow())
    )
    return closed.rowcount == 1


async def mark_tool_call_started(
    *, session: AsyncSession, call_id: int, now: datetime | None = None
) -> None:
    await session.exec(
        update(ToolCall).where(col(ToolCall.id) == call_id).values(started_at=now or utcnow())
    )


async def finish_tool_call(
    *, session: AsyncSession, call_id: int, outcome: str, duration_ms: int | None
) -> None:
    await session.exec(
        update(ToolCall)
        .where(col(ToolCall.id) == call_id)
        .values(outcome=outcome[:300], duration_ms=duration_ms)
    )


async def task_tool_calls(*, session: AsyncSession, task_id: int) -> list[ToolCall]:
    found = await session.exec(
        select(ToolCall).where(col(ToolCall.task_id) == task_id).order_by(col(ToolCall.id))
    )
    return list(found.all())
