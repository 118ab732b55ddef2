"""A turn taken up again (handed back at shutdown, or after its lease expired) is finished
from what its earlier attempt left, without redoing what already went out: a report kept
with gaps is reused as it was, and an answer posted deep in a long thread is found."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.slack.posting import post_metadata
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from sandbox.slack.workspace import Message
from storage.db import create_engine, session_factory
from storage.intake import record_intake
from storage.models import Report, Task, Turn
from storage.queue import claim_next_turn, release_turn
from storage.records import installation_id, record_post, save_answer, save_report
from tests.e2e.conftest import (
    ALICE,
    BOB,
    BOT_TOKEN,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    bot_messages,
    report_json,
    rows,
    wait_until_idle,
)


async def _answered_then_handed_back(
    sessions: async_sessionmaker[AsyncSession], thread_ts: str, *, recorded: bool = True
) -> Turn:
    """An earlier process answered the mention (text saved, and unless `recorded=False` the
    post recorded); the caller then hands the turn back."""
    async with sessions.begin() as session:
        await record_intake(
            session=session,
            team_id="T0SANDBOX",
            channel_id=ENGINEERING,
            thread_ts=thread_ts,
            message_ts=thread_ts,
            user_id=ALICE,
            text="design the orders API",
        )
    async with sessions.begin() as session:
        claimed = await claim_next_turn(session=session, owner="old-process", lease_seconds=60)
    assert claimed is not None and claimed.id is not None
    async with sessions.begin() as session:
        await save_answer(
            session=session,
            turn_id=claimed.id,
            owner="old-process",
            answer_text="Use cursor paging.",
        )
    if recorded:
        async with sessions.begin() as session:
            await record_post(
                session=session,
                key=f"{claimed.id}:answer",
                kind="answer",
                channel_id=ENGINEERING,
                ts="1.000001",
                turn_id=claimed.id,
            )
    return claimed


async def test_a_report_stored_by_an_earlier_attempt_is_reused_not_rewritten(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel, sqlite_url: str
) -> None:
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    turn = await _answered_then_handed_back(sessions, posted.ts)
    assert turn.id is not None
    blocked = report_json(
        status="BLOCKED",
        dependencies_handoffs=[
            {"kind": "infrastructure_blocker", "description": "needs a staging database"}
        ],
    )
    async with sessions.begin() as session:
        await save_report(
            session=session,
            task_id=turn.task_id,
            turn_id=turn.id,
            status="BLOCKED",
            data=blocked,
            red_flag_count=0,
            min_score=7,
        )
    async with sessions.begin() as session:
        await release_turn(session=session, turn_id=turn.id, owner="old-process")
    await engine.dispose()

    pmteam = await start_pmteam()
    await wait_until_idle(pmteam, fake_slack, turns=1)

    assert [r for r in fake_model.requests if r.path.endswith("/v1/messages")] == []
    (task,) = await rows(pmteam, Task)
    assert task.status == "blocked"
    assert task.status_reason == "needs a staging database"
    (report,) = fake_slack.workspace.messages(COORDINATION)
    assert "BLOCKED" in report.text


@pytest.mark.reliability("A worker stops after answering, before the report", kind="fault")
async def test_released_turn_with_a_posted_answer_goes_straight_to_the_report(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, sqlite_url: str
) -> None:
    # Before pmteam runs: the mention exists, and an earlier process answered it (text saved,
    # post recorded), then was stopped during the report and handed the turn back.
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    claimed = await _answered_then_handed_back(sessions, posted.ts)
    assert claimed.id is not None
    async with sessions.begin() as session:
        released = await release_turn(session=session, turn_id=claimed.id, owner="old-process")
    assert released.attempts == 0  # a hand-back is not a failed attempt
    await engine.dispose()

    pmteam = await start_pmteam()
    (turn,) = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert turn.status == "done"
    assert fake_slack.calls_to("chat.startStream") == []  # no second answer
    thread = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert [m.text.startswith("Self-assessment ") for m in thread] == [True]
    assert len(fake_slack.workspace.messages(COORDINATION)) == 1
    (stored,) = await rows(pmteam, Turn)
    assert stored.answer_text == "Use cursor paging."


async def test_a_report_kept_with_gaps_is_reused_when_the_turn_is_taken_up_again(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel, sqlite_url: str
) -> None:
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    turn = await _answered_then_handed_back(sessions, posted.ts)
    assert turn.id is not None
    # What the report writer keeps after its re-ask: a score below 6 with no red flag for it.
    scores: dict[str, Any] = {**report_json()["pm_scores"], "risk_assessment": 4}
    gappy = report_json(pm_scores=scores)
    async with sessions.begin() as session:
        session.add(
            Report(
                task_id=turn.task_id,
                turn_id=turn.id,
                status="COMPLETED",
                data=gappy,
                red_flag_count=0,
                min_score=4,
                gaps=["risk_assessment is 4 but has no red flag"],
            )
        )
    async with sessions.begin() as session:
        await release_turn(session=session, turn_id=turn.id, owner="old-process")
    await engine.dispose()

    pmteam = await start_pmteam()
    (done,) = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert done.status == "done", done.failure_reason
    assert [r for r in fake_model.requests if r.path.endswith("/v1/messages")] == []
    (card,) = fake_slack.workspace.messages(COORDINATION)
    assert "risk_assessment is 4 but has no red flag" in str(card.blocks)
    thread = [m.text for m in bot_messages(fake_slack, ENGINEERING, posted.ts)]
    assert not any("went wrong" in text for text in thread)


@pytest.mark.reliability("A retried turn whose answer is deep in a long thread", kind="fault")
async def test_an_answer_posted_deep_in_a_long_thread_is_found_not_posted_again(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, sqlite_url: str
) -> None:
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    for n in range(250):  # more than one page of conversations.replies (200)
        fake_slack.workspace.add_message(
            Message(
                channel=ENGINEERING,
                ts=fake_slack.workspace.next_ts(),
                text=f"thinking out loud, part {n}",
                user=BOB,
                thread_ts=posted.ts,
            )
        )
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    turn = await _answered_then_handed_back(sessions, posted.ts, recorded=False)
    assert turn.id is not None
    # The earlier process posted its answer (keyed in the metadata), then died before it
    # could record the post.
    async with sessions.begin() as session:
        installation = await installation_id(session=session)  # made at its first start
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    await client.chat_postMessage(
        channel=ENGINEERING,
        thread_ts=posted.ts,
        text="Use cursor paging.",
        metadata=post_metadata(f"{turn.id}:answer", installation=installation),
    )
    async with sessions.begin() as session:
        await release_turn(session=session, turn_id=turn.id, owner="old-process")
    await engine.dispose()

    pmteam = await start_pmteam()
    (done,) = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert done.status == "done"
    assert fake_slack.calls_to("chat.startStream") == []  # no second answer
    answers = [
        m
        for m in bot_messages(fake_slack, ENGINEERING, posted.ts)
        if m.text == "Use cursor paging."
    ]
    assert len(answers) == 1
    assert len(await rows(pmteam, Report)) == 1
