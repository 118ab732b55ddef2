"""Threads as a team lives in them: pmteam follows the threads that are its tasks, stays out of
the others, and answers a bare mention with what it does."""

from __future__ import annotations

from bot.app import Pmteam
from sandbox.slack import FakeSlack
from storage.models import Task, Turn
from tests.e2e.conftest import (
    ALICE,
    BOB,
    ENGINEERING,
    StartPmteam,
    app_mention_delivery,
    bot_messages,
    mention,
    mention_text,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import settle


async def test_replies_in_a_thread_that_is_not_a_task_are_left_alone(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    opener = await fake_slack.post_as_user(ALICE, ENGINEERING, "lunch at noon?")
    reply = await fake_slack.post_as_user(BOB, ENGINEERING, "sure, the usual", thread_ts=opener.ts)
    assert [d.type for d in reply.deliveries] == ["message"]  # delivered, and acked
    assert all(d.status_codes == [200] for d in reply.deliveries)
    await settle(pmteam, fake_slack)

    assert await rows(pmteam, Task) == []
    assert await rows(pmteam, Turn) == []
    assert bot_messages(fake_slack, ENGINEERING) == []
    assert fake_slack.workspace.reactions(ENGINEERING, reply.ts) == {}


async def test_pmteam_s_own_posts_and_edits_in_a_task_thread_start_no_turns(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    first = await mention(fake_slack, "design the refunds API")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    # pmteam's answer and summary were delivered back to it as thread messages: no turns.
    assert len(bot_messages(fake_slack, ENGINEERING, first.ts)) == 2

    reply = await fake_slack.post_as_user(BOB, ENGINEERING, "and refunds over $500?", first.ts)
    await wait_until_idle(pmteam, fake_slack, turns=2)
    edited = await fake_slack.edit_as_user(BOB, ENGINEERING, reply.ts, "and refunds over 500 EUR?")
    assert [d.payload["event"]["subtype"] for d in edited.deliveries] == ["message_changed"]
    await settle(pmteam, fake_slack)

    assert [t.message_ts for t in await rows(pmteam, Turn)] == [first.ts, reply.ts]


async def test_a_bare_mention_is_answered_with_what_pmteam_does_once(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, mention_text(""))
    await fake_slack.wait_for(lambda: bool(bot_messages(fake_slack, ENGINEERING, posted.ts)))
    # Slack's retry of the same event gets no second answer.
    delivery = app_mention_delivery(posted)
    retry = await fake_slack.deliver_event(
        delivery.payload["event"], event_id=delivery.event_id, retry_num=1
    )
    assert retry.status_codes == [200]
    await settle(pmteam, fake_slack)

    [reply] = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert reply.thread_ts == posted.ts
    assert "backend engineer" in reply.text and "For example" in reply.text
    assert await rows(pmteam, Task) == []


async def test_a_thread_in_a_channel_outside_the_allowlist_is_ignored_without_a_reply(
    start_pmteam: StartPmteam, fake_slack: FakeSlack
) -> None:
    pmteam = await start_pmteam(PMTEAM_ALLOWED_CHANNELS="C0OTHER")
    opener = await fake_slack.post_as_user(ALICE, ENGINEERING, "the deploy is stuck")
    await fake_slack.post_as_user(BOB, ENGINEERING, "looking", thread_ts=opener.ts)
    await settle(pmteam, fake_slack)

    assert await rows(pmteam, Turn) == []
    assert bot_messages(fake_slack, ENGINEERING) == []
