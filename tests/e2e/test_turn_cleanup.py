"""A turn that fails leaves nothing running behind it: the permalink it asked for early is
cancelled. (A card the coordination channel refuses no longer fails the turn: see
test_delivered.py.)"""

from __future__ import annotations

import asyncio

from bot.app import Pmteam
from sandbox.model import ApiError, FakeModel
from sandbox.slack import FakeSlack
from storage.models import TurnStatus
from tests.e2e.conftest import mention, wait_until_idle


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
