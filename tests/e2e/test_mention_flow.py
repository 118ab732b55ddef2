"""A mention becomes one task, one streamed answer, one matrix and one PM report."""

from __future__ import annotations

from sqlmodel import select

from bot.app import Pmteam
from sandbox.slack import FakeSlack
from storage.models import LLMCall, Report, Task, TaskEvent, Turn
from tests.e2e.conftest import ALICE, BOT_USER, COORDINATION, ENGINEERING


async def test_mention_produces_answer_matrix_and_report(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    posted = await fake_slack.post_as_user(
        ALICE, ENGINEERING, f"<@{BOT_USER}> design an idempotent payments API on PostgreSQL"
    )
    await fake_slack.wait_for(
        lambda: len(fake_slack.workspace.messages(COORDINATION)) == 1, timeout=20
    )
    thread = fake_slack.workspace.thread(ENGINEERING, posted.ts)
    print([ (m.user, m.text[:80]) for m in thread])
    report = fake_slack.workspace.messages(COORDINATION)[0]
    print(report.text[:500])
    async with pmteam.runtime.sessions() as session:
        tasks = (await session.exec(select(Task))).all()
        turns = (await session.exec(select(Turn))).all()
        print(tasks, turns)
