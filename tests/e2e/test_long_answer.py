"""An answer longer than Slack's 12,000-character limit arrives split, and every part renders."""

from __future__ import annotations

import pytest

from bot.app import Pmteam
from sandbox.model import FakeModel, Text
from sandbox.slack import FakeSlack
from sandbox.slack.workspace import Message
from storage.models import SlackPost, TurnStatus
from tests.e2e.conftest import ENGINEERING, bot_messages, mention, rows, wait_until_idle

SLACK_LIMIT = 12_000


def paragraph(number: int) -> str:
    return (
        f"Paragraph {number}: " + " ".join(f"step-{number}-{word}" for word in range(1, 70)) + "."
    )


CODE_LINES = [
    f"    queue_{n:04d} = claim_next(session, owner='worker-{n:04d}')  # {n}" for n in range(260)
]
CODE = "```python\ndef drain():\n" + "\n".join(CODE_LINES) + "\n```"
PARAGRAPHS_BEFORE = [paragraph(n) for n in range(1, 16)]
PARAGRAPHS_AFTER = [paragraph(n) for n in range(16, 31)]
ANSWER = "\n\n".join([*PARAGRAPHS_BEFORE, CODE, *PARAGRAPHS_AFTER])


def markdown_of(message: Message) -> str:
    """What Slack renders: the markdown block when there is one (the text is then only the
    notification fallback), else the message's markdown text."""
    blocks = [b for b in message.blocks or [] if b.get("type") == "markdown"]
    return str(blocks[0]["text"]) if blocks else message.text


def fence_lines(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.strip().startswith("```"))


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "posted-and-updated"])
async def test_answer_over_slack_limit_is_split_into_readable_messages(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel, streaming: bool
) -> None:
    assert len(ANSWER) > 2 * SLACK_LIMIT and len(CODE) > SLACK_LIMIT
    if not streaming:
        fake_slack.inject("chat.startStream", error="unknown_method", times=None)
    fake_model.script(Text(ANSWER))
    posted = await mention(fake_slack, "write the queue drainer")

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    assert turn.status == TurnStatus.DONE
    assert turn.answer_text == ANSWER  # the DB keeps the answer whole

    *parts, summary = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert summary.text.startswith("Self-assessment ")
    assert len(parts) >= 3
    texts = [markdown_of(part) for part in parts]
    for part, text in zip(parts, texts, strict=True):
        if streaming:
            assert part.stream is not None and part.stream.state == "completed"
        assert 0 < len(text) <= SLACK_LIMIT
        assert fence_lines(text) % 2 == 0, f"unbalanced code fence in {part.ts}"
    # The long code block was closed at a part boundary and reopened with its language.
    assert sum(text.count("```python") for text in texts) >= 2

    joined = "\n".join(texts)
    for text in (*PARAGRAPHS_BEFORE, *PARAGRAPHS_AFTER, *CODE_LINES):
        assert text in joined
    # In order, none lost between parts.
    positions = [joined.index(p) for p in (*PARAGRAPHS_BEFORE, *PARAGRAPHS_AFTER)]
    assert positions == sorted(positions)

    # The first part is the one recorded as the answer post.
    answer_post = next(p for p in await rows(pmteam, SlackPost) if p.kind == "answer")
    assert answer_post.ts == parts[0].ts
