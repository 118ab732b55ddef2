"""Recorded streams: a replica that dies mid-answer, or right after its answer ended, leaves
the next attempt what it needs, so a thread never shows a stuck partial answer, or two
answers to one turn."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.slack.posting import post_metadata
from sandbox.slack import FakeSlack
from storage.db import create_engine, session_factory
from storage.intake import record_intake
from storage.models import Report, Turn
from storage.queue import claim_next_turn, release_turn
from storage.records import installation_id, record_post
from tests.e2e.conftest import (
    ALICE,
    BOT_TOKEN,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    bot_messages,
    rows,
    wait_until_idle,
)


async def claimed_turn(sessions: async_sessionmaker[AsyncSession], thread_ts: str) -> Turn:
    """A mention an earlier process took up (and then died working on)."""
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
    return claimed


async def hand_back(sessions: async_sessionmaker[AsyncSession], turn: Turn) -> None:
    assert turn.id is not None
    async with sessions.begin() as session:
        await release_turn(session=session, turn_id=turn.id, owner="old-process")


@pytest.mark.reliability("A replica dies mid-stream (its stream never ended)", kind="fault")
async def test_a_stream_an_earlier_attempt_never_ended_is_taken_down(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, sqlite_url: str
) -> None:
    asked = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    turn = await claimed_turn(sessions, asked.ts)
    # The earlier process began streaming, recorded the stream's message, then died.
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    stuck = await client.chat_startStream(
        channel=ENGINEERING,
        thread_ts=asked.ts,
        recipient_team_id="T0SANDBOX",
        recipient_user_id=ALICE,
        markdown_text="Let me check proven designs first…",
    )
    async with sessions.begin() as session:
        await record_post(
            session=session,
            key=f"{turn.id}:stream",
            kind="stream",
            channel_id=ENGINEERING,
            ts=str(stuck["ts"]),
            turn_id=turn.id,
        )
    await hand_back(sessions, turn)
    await engine.dispose()

    pmteam = await start_pmteam()
    [done] = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert done.status == "done"
    thread = bot_messages(fake_slack, ENGINEERING, asked.ts)
    assert str(stuck["ts"]) not in [m.ts for m in thread]  # taken down
    assert all(m.stream is None or m.stream.state == "completed" for m in thread)
    answers = [m for m in thread if m.stream is not None]
    assert len(answers) == 1 and "Let me check proven designs first" not in answers[0].text
    assert len(await rows(pmteam, Report)) == 1


@pytest.mark.reliability("A replica dies right after its answer's chat.stopStream", kind="fault")
async def test_an_answer_that_ended_but_was_never_recorded_is_reused(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, sqlite_url: str
) -> None:
    asked = await fake_slack.post_as_user(ALICE, ENGINEERING, "design the orders API")
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    turn = await claimed_turn(sessions, asked.ts)
    async with sessions.begin() as session:
        installation = await installation_id(session=session)
    # The earlier process streamed its whole answer and ended it (the key in its metadata),
    # recorded the stream, then died before saving the text or recording the answer.
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    streamed = await client.chat_startStream(
        channel=ENGINEERING,
        thread_ts=asked.ts,
        recipient_team_id="T0SANDBOX",
        recipient_user_id=ALICE,
        markdown_text="Use cursor paging on (created_at, id).",
    )
    await client.chat_stopStream(
        channel=ENGINEERING,
        ts=str(streamed["ts"]),
        metadata=post_metadata(f"{turn.id}:answer", installation=installation),
    )
    async with sessions.begin() as session:
        await record_post(
            session=session,
            key=f"{turn.id}:stream",
            kind="stream",
            channel_id=ENGINEERING,
            ts=str(streamed["ts"]),
            turn_id=turn.id,
        )
    await hand_back(sessions, turn)
    await engine.dispose()
    starts_before = len(fake_slack.calls_to("chat.startStream"))

    pmteam = await start_pmteam()
    [done] = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert done.status == "done"
    assert len(fake_slack.calls_to("chat.startStream")) == starts_before  # no second answer
    assert done.answer_text == "Use cursor paging on (created_at, id)."
    thread = bot_messages(fake_slack, ENGINEERING, asked.ts)
    assert [m.ts for m in thread if m.stream is not None] == [str(streamed["ts"])]
    assert thread[-1].text.startswith("Self-assessment ")
    cards = [m for m in bot_messages(fake_slack, COORDINATION) if m.thread_ts in (None, m.ts)]
    assert len(cards) == 1
