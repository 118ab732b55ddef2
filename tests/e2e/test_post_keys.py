"""Post keys can't collide: a post is found again by its key and this installation's id, so a
database moved to a new installation, or two installations sharing a channel, never take each
other's posts for their own; and a channel is searched back as far as the task's age needs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.slack.posting import Poster, card_key, post_metadata
from sandbox.slack import FakeSlack
from storage.records import installation_id
from storage.types import utcnow
from tests.e2e.conftest import BOT_TOKEN, COORDINATION


def client_for(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)


async def test_the_installation_id_is_made_once_and_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        first = await installation_id(session=session)
    async with sessions.begin() as session:
        again = await installation_id(session=session)
    assert first == again and len(first) == 12


@pytest.mark.reliability(
    "A database moved to a new installation posting to the same channel", kind="fault"
)
async def test_another_installation_s_post_with_the_same_key_is_not_taken_for_ours(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = client_for(fake_slack)
    # The old installation's card for its T-1, in the channel the new one reports to as well.
    old = await client.chat_postMessage(
        channel=COORDINATION,
        text="T-1 — the old installation's card",
        metadata=post_metadata(card_key(1), installation="0ld1nstall00"),
    )
    poster = Poster(client=client, sessions=sessions, installation="n3w1nstall00")
    # The new installation's T-1 is retried: it looks in Slack first, finds nothing of its own.
    ts = await poster.post_keyed(
        key=card_key(1),
        kind="card",
        turn_id=None,
        channel=COORDINATION,
        text="T-1 — the new installation's card",
        retried=True,
        since=utcnow() - timedelta(minutes=5),
    )
    assert ts != old["ts"]
    texts = [m.text for m in fake_slack.workspace.messages(COORDINATION)]
    assert "T-1 — the new installation's card" in texts

    # Its own post, though, is found again rather than posted twice (the record lost).
    fresh = Poster(client=client, sessions=sessions, installation="n3w1nstall00")
    found = await fresh.find_in_slack(
        key=card_key(1), channel=COORDINATION, thread_ts=None, since=utcnow() - timedelta(hours=1)
    )
    assert found == ts


async def test_a_channel_is_searched_back_to_the_task_s_start_across_pages(
    fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = client_for(fake_slack)
    started = utcnow() - timedelta(minutes=1)
    ours = await client.chat_postMessage(
        channel=COORDINATION,
        text="T-7 — our card",
        metadata=post_metadata(card_key(7), installation="0urs00000000"),
    )
    # A busy channel: more than the newest pages hold, posted after ours.
    for n in range(650):
        await client.chat_postMessage(channel=COORDINATION, text=f"chatter {n}")
    poster = Poster(client=client, sessions=sessions, installation="0urs00000000")
    newest_only = await poster.find_in_slack(key=card_key(7), channel=COORDINATION, thread_ts=None)
    assert newest_only is None  # beyond the few newest pages
    found = await poster.find_in_slack(
        key=card_key(7), channel=COORDINATION, thread_ts=None, since=started
    )
    assert found == ours["ts"]
