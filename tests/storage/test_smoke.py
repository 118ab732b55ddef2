"""The migrated schema accepts a task on both databases."""

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tasks import record_intake


async def test_intake_creates_task_and_turn(session: AsyncSession) -> None:
    intake = await record_intake(
        session=session,
        team_id="T1",
        channel_id="C1",
        thread_ts="1.000001",
        message_ts="1.000001",
        user_id="U1",
        text="Design the orders API",
    )
    assert intake.created
    assert intake.task.ref == "T-1"
    assert intake.turn.seq == 1
