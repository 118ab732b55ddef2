"""A turn that fails leaves nothing running behind it: the permalink it asked for early is
cancelled, and a post still in flight beside the one that failed is not finished later."""

from __future__ import annotations

import asyncio

from bot.app import Pmteam
from sandbox.model import ApiError, FakeModel
from sandbox.slack import FakeSlack
from storage.models import SlackPost, TurnStatus
from tests.e2e.conftest import mention, rows, wait_until_idle


async def test_a_failed_answer_leaves_no_permalink_request_running(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_slack.inject("chat.getPermalink", delay=3.0)  # still on its way when the turn fails
    fake_model.script(ApiError(400, retry_after_ms=10))

    await mention(fake_slack, "design the refunds API")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert turn.status == TurnStatus.FAILED
    left = [
        t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("pmteam-permalink")
    ]
    assert left == []


async def test_when_one_of_the_report_posts_fails_the_other_is_not_finished_later(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    # The matrix (in the thread) is slow; the PM card (in the coordination channel) is refused.
    await mention(fake_slack, "design the refunds API")
    fake_slack.inject("chat.postMessage", delay=1.0)
    fake_slack.inject("chat.postMessage", error="channel_not_found")

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.FAILED
    await asyncio.sleep(1.5)  # past the slow post's delay

    kinds = {post.key.split(":", 1)[1] for post in await rows(pmteam, SlackPost)}
    assert "matrix" not in kinds  # cancelled with the turn, not recorded after it failed
