"""When Slack refuses part of a streamed answer, the partial message is closed and the whole
answer is posted once, in order."""

from __future__ import annotations

import pytest

from bot.app import Pmteam
from sandbox.model import FakeModel, Text
from sandbox.slack import FakeSlack
from storage.models import TurnStatus
from tests.e2e.conftest import ENGINEERING, bot_messages, mention, wait_until_idle

PARAGRAPHS = [f"Paragraph {n}: " + "use an idempotency key per request. " * 20 for n in range(12)]
ANSWER = "\n\n".join(PARAGRAPHS)


@pytest.mark.reliability("Slack refuses chat.appendStream mid-answer", kind="fault")
async def test_a_refused_append_closes_the_stream_and_posts_the_answer_once(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(Text(ANSWER))
    fake_slack.inject("chat.appendStream", error="internal_error", times=None)

    posted = await mention(fake_slack, "design the payments API")
    (turn,) = await wait_until_idle(pmteam, fake_slack, turns=1)

    assert turn.status == TurnStatus.DONE
    assert len(fake_slack.calls_to("chat.appendStream")) == 1  # no more writes once it broke
    stops = fake_slack.calls_to("chat.stopStream")
    assert len(stops) == 1 and "full answer follows" in str(stops[0].params)
    thread = bot_messages(fake_slack, ENGINEERING, posted.ts)
    partial, *full, summary = thread
    assert "full answer follows" in partial.text
    assert full, "the full answer was not posted"
    # Each part carries its full text in a markdown block (the `text` fallback is clipped).
    posted_text = "\n".join(
        b["text"] for m in full for b in (m.blocks or []) if b.get("type") == "markdown"
    )
    positions = [posted_text.find(p.split(":")[0] + ":") for p in PARAGRAPHS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert summary.text.startswith("Self-assessment ")
