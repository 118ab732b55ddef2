"""A turn handed back at shutdown after its answer went out is not answered twice."""

from __future__ import annotations

from sandbox.slack import FakeSlack
from storage.db import create_engine, session_factory
from storage.models import Turn
from storage.queue import claim_next_turn, release_turn
from storage.records import record_post, save_answer
from storage.tasks import record_intake
from tests.e2e.conftest import (
    ALICE,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    bot_messages,
    rows,
    wait_until_idle,
)


async def test_released_turn_with_a_posted_answer_goes_straight_to_the_report(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, sqlite_url: str
) -> None:
    # Before pmteam runs: the mention exists, and an earlier process answered it (text saved,
    # post recorded), then was stopped during the report and handed the turn back.
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        intake = await record_intake(
            session=session,
            team_id="T0SANDBOX",
            channel_id=ENGINEERING,
            thread_ts=posted.ts,
            message_ts=posted.ts,
            user_id=ALICE,
            text="design the orders API",
        )
    async with sessions() as session:
        claimed = await claim_next_turn(session=session, owner="old-process", lease_seconds=60)
    assert claimed is not None and claimed.id == intake.turn.id
    async with sessions() as session:
        await save_answer(session=session, turn_id=claimed.id, answer_text="Use cursor paging.")
    async with sessions() as session:
        await record_post(
            session=session,
            key=f"{claimed.id}:answer",
            kind="answer",
            channel_id=ENGINEERING,
            ts="1.000001",
            turn_id=claimed.id,
        )
    async with sessions() as session:
        released = await release_turn(session=session, turn_id=claimed.id, owner="old-process")
    assert released.attempts == 0  # a hand-back is not a failed attempt
    await engine.dispose()

    pmteam = await start_pmteam()
    (turn,) = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert turn.status == "done"
    assert fake_slack.calls_to("chat.startStream") == []  # no second answer
    thread = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert [m.text.startswith("SELF-ASSESSMENT") for m in thread] == [True]
    assert len(fake_slack.workspace.messages(COORDINATION)) == 1
    (stored,) = await rows(pmteam, Turn)
    assert stored.answer_text == "Use cursor paging."
