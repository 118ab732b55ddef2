"""The 👀 after intake: paced to Slack's Tier 3 limit, and never left beside the final reaction.

Driven over real HTTP against the fake Slack, with a fast bucket so the pacing shows in
tenths of a second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.reactions import SEEN_REACTION, THINKING_STATUS, Mark, SeenMarks
from sandbox.slack import FakeSlack

CHANNEL = "C0ENG"


@pytest.fixture
def client(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-sandbox-test", base_url=fake_slack.api_url)


@pytest.fixture
async def marks(client: AsyncWebClient) -> AsyncIterator[SeenMarks]:
    seen = SeenMarks(client, rate=20.0, burst=3)
    yield seen
    await seen.close()


async def posted(fake_slack: FakeSlack, count: int) -> list[str]:
    return [
        (await fake_slack.post_as_user("U0ALICE", CHANNEL, f"task {i}")).ts for i in range(count)
    ]


def mark(ts: str, *, assistant: bool = False) -> Mark:
    return Mark(channel_id=CHANNEL, ts=ts, thread_ts=ts, assistant=assistant)


async def wait_for_calls(fake_slack: FakeSlack, method: str, count: int) -> None:
    for _ in range(200):
        if len(fake_slack.calls_to(method)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{method} was called {len(fake_slack.calls_to(method))} times")


async def test_a_burst_goes_at_once_then_the_rest_at_the_rate(
    fake_slack: FakeSlack, marks: SeenMarks
) -> None:
    stamps = await posted(fake_slack, 6)
    for ts in stamps:
        marks.mark(mark(ts))

    await wait_for_calls(fake_slack, "reactions.add", 6)

    calls = fake_slack.calls_to("reactions.add")
    sent = [c.params["timestamp"] for c in calls]
    assert set(sent[:3]) == set(stamps[:3]) and sent[3:] == stamps[3:]  # in arrival order
    for ts in stamps:
        assert fake_slack.workspace.reactions(CHANNEL, ts) == {SEEN_REACTION: ["U0PMTEAM"]}
    gaps = [later.at - earlier.at for earlier, later in zip(calls, calls[1:], strict=False)]
    # The burst of 3 leaves together; the next 3 wait for tokens at 20 a second (50 ms each).
    assert max(gaps[:2]) < 0.04
    assert all(gap >= 0.035 for gap in gaps[2:])


async def test_the_same_message_is_marked_once(fake_slack: FakeSlack, marks: SeenMarks) -> None:
    [ts] = await posted(fake_slack, 1)
    marks.mark(mark(ts))
    marks.mark(mark(ts))  # the app_mention + message double delivery, or a retry

    await wait_for_calls(fake_slack, "reactions.add", 1)
    await asyncio.sleep(0.1)

    assert len(fake_slack.calls_to("reactions.add")) == 1


async def test_a_mark_still_waiting_when_its_turn_finishes_is_never_sent(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    marks = SeenMarks(client, rate=2.0, burst=1)
    try:
        first, second = await posted(fake_slack, 2)
        marks.mark(mark(first))
        marks.mark(mark(second))  # waits half a second for a token
        await wait_for_calls(fake_slack, "reactions.add", 1)

        await marks.settle(CHANNEL, second)  # its turn finished before the 👀 went out
        await asyncio.sleep(0.7)

        assert [c.params["timestamp"] for c in fake_slack.calls_to("reactions.add")] == [first]
        assert fake_slack.workspace.reactions(CHANNEL, second) == {}
        assert marks.waiting == 0
    finally:
        await marks.close()


async def test_settle_waits_for_a_mark_on_its_way(
    fake_slack: FakeSlack, marks: SeenMarks, client: AsyncWebClient
) -> None:
    [ts] = await posted(fake_slack, 1)
    fake_slack.inject("reactions.add", delay=0.3)
    marks.mark(mark(ts))
    await asyncio.sleep(0.05)  # the call is in flight now

    await marks.settle(CHANNEL, ts)

    # Landed before settle returned, so the swap that follows finds and removes it.
    assert fake_slack.workspace.reactions(CHANNEL, ts) == {SEEN_REACTION: ["U0PMTEAM"]}
    await client.reactions_remove(channel=CHANNEL, timestamp=ts, name=SEEN_REACTION)
    await client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    assert fake_slack.workspace.reactions(CHANNEL, ts) == {"white_check_mark": ["U0PMTEAM"]}


async def test_an_assistant_thread_also_gets_the_thinking_status(
    fake_slack: FakeSlack, marks: SeenMarks
) -> None:
    [ts] = await posted(fake_slack, 1)
    marks.mark(mark(ts, assistant=True))

    await wait_for_calls(fake_slack, "assistant.threads.setStatus", 1)

    [status] = fake_slack.calls_to("assistant.threads.setStatus")
    assert status.params["status"] == THINKING_STATUS
    assert status.params["thread_ts"] == ts


async def test_a_failed_reaction_is_logged_and_the_next_mark_still_goes(
    fake_slack: FakeSlack, marks: SeenMarks
) -> None:
    first, second = await posted(fake_slack, 2)
    fake_slack.inject("reactions.add", error="message_not_found")
    marks.mark(mark(first))
    marks.mark(mark(second))

    await wait_for_calls(fake_slack, "reactions.add", 2)
    await asyncio.sleep(0.05)

    assert fake_slack.workspace.reactions(CHANNEL, first) == {}
    assert fake_slack.workspace.reactions(CHANNEL, second) == {SEEN_REACTION: ["U0PMTEAM"]}
    assert marks.sent == 2


async def test_the_queue_is_bounded_and_drops_the_oldest(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    marks = SeenMarks(client, rate=0.001, burst=1, max_waiting=2)
    try:
        stamps = await posted(fake_slack, 4)
        marks.mark(mark(stamps[0]))
        await wait_for_calls(fake_slack, "reactions.add", 1)
        for ts in stamps[1:]:
            marks.mark(mark(ts))

        # The first went with the only token; of the three left, the oldest was dropped.
        assert marks.waiting == 2
        assert marks.dropped == 1
        assert [c.params["timestamp"] for c in fake_slack.calls_to("reactions.add")] == [stamps[0]]
    finally:
        await marks.close()
