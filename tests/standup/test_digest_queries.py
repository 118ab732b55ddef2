"""What `standup_digest` reads: in-progress tasks oldest first, and the red flags and handoffs
of each task's newest report in the period. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.standups
from storage.intake import Intake
from storage.models import LLMCall, Report, Task, TaskStatus
from storage.records import record_llm_call
from storage.standups import standup_digest
from tests.storage.support import T0, ask, file_report, force_status, minutes

SINCE = T0
UNTIL = T0 + timedelta(days=1)

_threads = count(1)


async def new_task(
    session: AsyncSession,
    *,
    status: TaskStatus = TaskStatus.IN_PROGRESS,
    channel: str = "C1",
    at: datetime = T0,
) -> Intake:
    """A task asked at `at`, put in `status`."""
    intake = await ask(session, thread=f"1700000000.{next(_threads):06d}", channel=channel, now=at)
    assert intake.task.id is not None
    if status != TaskStatus.QUEUED:
        await force_status(session, intake.task.id, status)
    return intake


async def follow_up(session: AsyncSession, intake: Intake, *, at: datetime) -> Intake:
    """A later message in the task's thread: a new turn, so a report of its own."""
    later = await ask(
        session,
        thread=intake.task.thread_ts,
        ts=f"1700000001.{next(_threads):06d}",
        channel=intake.task.channel_id,
        now=at,
    )
    assert later.task.id == intake.task.id and later.turn.id != intake.turn.id
    return later


def task_ids(rows: list[tuple[Task, Report | None]]) -> list[int | None]:
    return [task.id for task, _ in rows]


def report_task_ids(rows: list[tuple[Report, Task]]) -> list[int]:
    return [report.task_id for report, _ in rows]


async def test_in_progress_is_oldest_first_across_both_statuses_and_limited(
    session: AsyncSession,
) -> None:
    made: list[tuple[int, str]] = []
    # Interleaved so a merge that kept one status's tasks together would show.
    statuses = [TaskStatus.WORKING, TaskStatus.IN_PROGRESS] * 4
    for n, status in enumerate(statuses):
        intake = await new_task(session, status=status, at=T0 + minutes(n))
        assert intake.task.id is not None
        made.append((intake.task.id, status))
    # Neither in progress nor working: never listed, even though older than some.
    for status in (TaskStatus.QUEUED, TaskStatus.BLOCKED, TaskStatus.COMPLETED):
        await new_task(session, status=status, at=T0 - minutes(10))

    everything = await standup_digest(session=session, since=SINCE, until=UNTIL, limit=25)
    assert task_ids(everything.in_progress) == [task_id for task_id, _ in made]

    three = await standup_digest(session=session, since=SINCE, until=UNTIL, limit=3)
    assert task_ids(three.in_progress) == [task_id for task_id, _ in made[:3]]
    assert [t.status for t, _ in three.in_progress] == [
        TaskStatus.WORKING,
        TaskStatus.IN_PROGRESS,
        TaskStatus.WORKING,
    ]


async def test_in_progress_in_one_channel(session: AsyncSession) -> None:
    # The oldest in-progress and working tasks are another channel's: a per-status range
    # that took the oldest `limit` before filtering on the channel would miss C1's.
    for n in range(4):
        await new_task(session, status=TaskStatus.IN_PROGRESS, channel="C2", at=T0 + minutes(n))
        await new_task(session, status=TaskStatus.WORKING, channel="C2", at=T0 + minutes(n))
    c1 = []
    for n, status in enumerate([TaskStatus.IN_PROGRESS, TaskStatus.WORKING] * 2):
        intake = await new_task(session, status=status, channel="C1", at=T0 + minutes(10 + n))
        c1.append(intake.task.id)

    digest = await standup_digest(
        session=session, since=SINCE, until=UNTIL, channel_id="C1", limit=3
    )
    assert task_ids(digest.in_progress) == c1[:3]
    assert {t.channel_id for t, _ in digest.in_progress} == {"C1"}

    everywhere = await standup_digest(session=session, since=SINCE, until=UNTIL, limit=3)
    assert {t.channel_id for t, _ in everywhere.in_progress} == {"C2"}


async def test_red_flags_come_from_each_tasks_newest_report_in_the_period(
    session: AsyncSession,
) -> None:
    # Flagged first, then a clean report: the newest one has no red flag, so not listed.
    cleared = await new_task(session)
    cleared_again = await follow_up(session, cleared, at=T0)
    # Clean first, then flagged: listed with the flagged report.
    flagged_late = await new_task(session)
    flagged_again = await follow_up(session, flagged_late, at=T0)
    # Flagged in the period, then a clean report after it ends: the period's newest counts.
    after_period = await new_task(session)
    after_again = await follow_up(session, after_period, at=T0)
    # Flagged before the period only.
    before = await new_task(session, at=T0 - timedelta(days=2))

    # Filed in time order, as the app files them (report ids follow time).
    await file_report(session, before, red_flags=3, at=T0 - minutes(1))
    await file_report(session, flagged_late, at=T0 + minutes(5))
    await file_report(session, cleared, red_flags=2, at=T0 + minutes(10))
    within = await file_report(session, after_period, red_flags=1, at=T0 + minutes(15))
    await file_report(session, cleared_again, at=T0 + minutes(20))
    late = await file_report(session, flagged_again, red_flags=1, at=T0 + minutes(30))
    await file_report(session, after_again, at=UNTIL + minutes(1))

    digest = await standup_digest(session=session, since=SINCE, until=UNTIL)
    assert [r.id for r, _ in digest.red_flags] == [late.id, within.id]  # newest first
    assert [t.id for _, t in digest.red_flags] == [
        flagged_late.task.id,
        after_period.task.id,
    ]
    assert cleared.task.id not in report_task_ids(digest.red_flags)


async def test_handoffs_leave_out_blocked_tasks_and_older_reports(session: AsyncSession) -> None:
    open_task = await new_task(session)
    handoff = await file_report(session, open_task, handoffs=["needs the auth team"], at=T0)
    blocked = await new_task(session, status=TaskStatus.BLOCKED)
    await file_report(session, blocked, handoffs=["waits on the vendor"], at=T0 + minutes(5))
    # Handed off first, then a report without: its newest report names no handoff.
    resolved = await new_task(session)
    await file_report(session, resolved, handoffs=["needs legal"], at=T0 + minutes(1))
    await file_report(session, await follow_up(session, resolved, at=T0), at=T0 + minutes(2))

    digest = await standup_digest(session=session, since=SINCE, until=UNTIL)
    assert [r.id for r, _ in digest.handoffs] == [handoff.id]
    # The blocked task's handoff is in the period all the same: it is shown with the task.
    assert task_ids(digest.blocked) == [blocked.task.id]


async def test_red_flags_and_handoffs_in_one_channel(session: AsyncSession) -> None:
    mine = await new_task(session, channel="C1")
    report = await file_report(session, mine, red_flags=1, handoffs=["ops"], at=T0 + minutes(1))
    other = await new_task(session, channel="C2")
    await file_report(session, other, red_flags=1, handoffs=["ops"], at=T0 + minutes(2))

    digest = await standup_digest(session=session, since=SINCE, until=UNTIL, channel_id="C1")
    assert [r.id for r, _ in digest.red_flags] == [report.id]
    assert [r.id for r, _ in digest.handoffs] == [report.id]


@pytest.mark.parametrize("page", [None, 2])
async def test_red_flags_and_handoffs_are_limited_newest_first(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, page: int | None
) -> None:
    if page is not None:
        # Small pages, so reading the period a page at a time is exercised with few reports.
        monkeypatch.setattr(storage.standups, "_REPORT_PAGE", page)
    flagged: list[int] = []
    handed_off: list[int] = []
    for n in range(5):
        # Two reports at each time: paging must neither skip nor repeat on a tie.
        at = T0 + minutes(n // 2)
        red = await file_report(session, await new_task(session), red_flags=1, at=at)
        assert red.id is not None
        flagged.append(red.id)
        hand = await file_report(session, await new_task(session), handoffs=["data"], at=at)
        assert hand.id is not None
        handed_off.append(hand.id)
        # A clean report between them: neither list names it.
        await file_report(session, await new_task(session), at=at)
    # A task whose newest report is clean, its older flagged ones behind a page boundary.
    cleared = await new_task(session)
    for n in range(3):
        cleared = await follow_up(session, cleared, at=T0)
        await file_report(
            session, cleared, red_flags=1, handoffs=["x"], at=T0 - minutes(n) + minutes(30)
        )
    await file_report(session, await follow_up(session, cleared, at=T0), at=T0 + minutes(40))

    everything = await standup_digest(session=session, since=SINCE, until=UNTIL, limit=25)
    assert sorted(r.id or 0 for r, _ in everything.red_flags) == sorted(flagged)
    assert sorted(r.id or 0 for r, _ in everything.handoffs) == sorted(handed_off)
    assert cleared.task.id not in report_task_ids(everything.red_flags)
    assert cleared.task.id not in report_task_ids(everything.handoffs)
    times = [r.created_at for r, _ in everything.red_flags]
    assert times == sorted(times, reverse=True)

    two = await standup_digest(session=session, since=SINCE, until=UNTIL, limit=2)
    # The newest two: the one filed alone at T0+2min, then the later filed of the T0+1min pair.
    assert [r.id for r, _ in two.red_flags] == [flagged[4], flagged[3]]
    assert [r.id for r, _ in two.handoffs] == [handed_off[4], handed_off[3]]
    assert len(two.in_progress) <= 2


async def spend(session: AsyncSession, *, task: Intake | None, cost: float, at: datetime) -> None:
    """A model call for `task` (None: outside any task) that cost `cost`."""
    call = LLMCall(
        task_id=task.task.id if task else None,
        agent="engineer",
        model="claude-sonnet-5-5",
        input_tokens=10,
        cost_usd=cost,
        created_at=at,
    )
    await record_llm_call(session=session, call=call)
    await session.commit()


async def test_the_digest_covers_the_period(session: AsyncSession) -> None:
    inside, before, after = T0 + minutes(90), T0 - minutes(1), UNTIL + minutes(1)
    done = await new_task(session, status=TaskStatus.COMPLETED, at=inside)
    done_report = await file_report(
        session, done, handoffs=["Ops: rotate the DB password"], at=inside
    )
    await new_task(session, status=TaskStatus.COMPLETED, at=before)
    await new_task(session, status=TaskStatus.COMPLETED, at=after)
    progress = await new_task(session, status=TaskStatus.IN_PROGRESS, at=inside)
    flagged = await file_report(
        session, progress, status="IN_PROGRESS", red_flags=2, at=inside + minutes(1)
    )
    working = await new_task(session, status=TaskStatus.WORKING, at=inside + minutes(2))
    blocked = await new_task(session, status=TaskStatus.BLOCKED, at=inside)
    old = await new_task(session, status=TaskStatus.COMPLETED, at=before)
    await file_report(session, old, red_flags=4, handoffs=["stale"], at=before)
    await spend(session, task=done, cost=0.5, at=inside)
    await spend(session, task=done, cost=9.0, at=after)
    await file_report(session, done, at=inside)  # the same turn: stored once

    digest = await standup_digest(session=session, since=SINCE, until=UNTIL)

    assert [(t.id, r.id if r else None) for t, r in digest.completed] == [
        (done.task.id, done_report.id)
    ]
    assert [(t.id, r.id if r else None) for t, r in digest.in_progress] == [
        (progress.task.id, flagged.id),
        (working.task.id, None),
    ]
    assert task_ids(digest.blocked) == [blocked.task.id]
    assert [(r.id, t.id) for r, t in digest.red_flags] == [(flagged.id, progress.task.id)]
    assert [(r.id, t.id) for r, t in digest.handoffs] == [(done_report.id, done.task.id)]
    assert [(r.calls, r.cost_usd) for r in digest.usage.rows] == [(1, 0.5)]
    assert not digest.is_empty


async def test_the_digest_of_an_empty_database_is_empty(session: AsyncSession) -> None:
    digest = await standup_digest(session=session, since=SINCE, until=UNTIL)

    assert digest.is_empty
    assert digest.completed == digest.in_progress == digest.blocked == []
    assert digest.red_flags == digest.handoffs == []
    assert digest.usage.rows == []


async def test_usage_in_one_channel_counts_the_calls_for_its_tasks(session: AsyncSession) -> None:
    mine = await new_task(session, channel="C1")
    other = await new_task(session, channel="C2")
    await spend(session, task=mine, cost=0.25, at=T0)
    await spend(session, task=mine, cost=0.5, at=T0 + minutes(1))
    await spend(session, task=other, cost=4.0, at=T0)
    await spend(session, task=None, cost=8.0, at=T0)
    await spend(session, task=mine, cost=16.0, at=UNTIL)  # after the period

    in_c1 = await standup_digest(session=session, since=SINCE, until=UNTIL, channel_id="C1")
    everywhere = await standup_digest(session=session, since=SINCE, until=UNTIL)

    assert [(r.calls, r.cost_usd) for r in in_c1.usage.rows] == [(2, 0.75)]
    assert [(r.calls, r.cost_usd) for r in everywhere.usage.rows] == [(4, 12.75)]
