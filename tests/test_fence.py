"""Fencing: a process whose lease ran out (paused, cut off) posts nothing more to Slack, even
before its heartbeat has noticed."""

from __future__ import annotations

import asyncio
import time

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.fence import Fenced, ensure_held, holding
from bot.runtime.worker import TurnLease
from bot.slack.client import build_slack_client
from bot.slack.posting import Poster
from bot.slack.streaming import AnswerStream
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from tests.e2e.conftest import ALICE, BOT_TOKEN, ENGINEERING, e2e_settings


def test_outside_any_work_nothing_is_fenced() -> None:
    ensure_held()


async def test_a_lapsed_hold_is_seen_in_the_work_and_the_tasks_it_starts() -> None:
    with holding(lambda: False):
        with pytest.raises(Fenced):
            ensure_held()

        async def inner() -> None:
            ensure_held()

        with pytest.raises(Fenced):
            await asyncio.create_task(inner())
    ensure_held()  # and not after it


def test_a_lease_is_held_until_it_runs_out_or_is_lost() -> None:
    lease = TurnLease(turn_id=1, owner="me", seconds=10.0)
    assert lease.held()
    lease.renewed = time.monotonic() - 20  # paused for 20 s
    assert not lease.held()
    fresh = TurnLease(turn_id=1, owner="me", seconds=10.0)
    fresh.lost.set()
    assert not fresh.held()


@pytest.mark.reliability("A replica paused past its lease resumes mid-turn", kind="fault")
async def test_a_paused_replica_posts_and_streams_nothing_more(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    lease = TurnLease(turn_id=1, owner="me", seconds=10.0)
    lease.renewed = time.monotonic() - 60  # it was stopped for a minute
    poster = Poster(client=client, sessions=sessions, installation="1nstall00000")
    stream = AnswerStream(
        client=client,
        channel=ENGINEERING,
        thread_ts="1700000000.000001",
        team_id="T0SANDBOX",
        user_id=ALICE,
        flush_interval=0.0,
    )
    with holding(lease.held):
        with pytest.raises(Fenced):
            await poster.post_once(turn_id=1, kind="summary", channel=ENGINEERING, text="late")
        with pytest.raises(Fenced):
            await stream.write("a late answer ")
    assert fake_slack.calls_to("chat.postMessage") == []
    assert fake_slack.calls_to("chat.startStream") == []


async def test_the_client_refuses_every_write_of_lapsed_work_and_still_reads(
    fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    """pmteam's Slack client asks the fence before any call that changes what people see, so
    no code path of a paused turn (a card update, a deletion, a reaction) slips past it."""
    settings = e2e_settings(
        database_url="sqlite+aiosqlite:///:memory:", fake_slack=fake_slack, fake_model=fake_model
    )
    client = build_slack_client(settings)
    posted = await client.chat_postMessage(channel=ENGINEERING, text="before the pause")
    with holding(lambda: False):
        for write in (
            client.chat_update(channel=ENGINEERING, ts=posted["ts"], text="late"),
            client.chat_delete(channel=ENGINEERING, ts=posted["ts"]),
            client.reactions_add(channel=ENGINEERING, timestamp=posted["ts"], name="eyes"),
        ):
            with pytest.raises(Fenced):
                await write
        history = await client.conversations_history(channel=ENGINEERING)
    assert [m["text"] for m in history["messages"]][:1] == ["before the pause"]
    called = {c.method for c in fake_slack.calls}
    assert called == {"chat.postMessage", "conversations.history"}
