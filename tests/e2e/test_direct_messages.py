"""Direct messages and the assistant surface: a DM is a task; a new assistant thread is greeted."""

from __future__ import annotations

from bot.app import Pmteam
from bot.core.mrkdwn import one_line
from bot.listeners.events.assistant import SUGGESTED_PROMPTS
from sandbox.slack import FakeSlack
from storage.models import Task, TurnStatus
from tests.e2e.conftest import ALICE, COORDINATION, bot_messages, rows, wait_until_idle


async def test_direct_message_becomes_a_task_answered_in_the_dm_thread(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    dm = fake_slack.dm_channel(ALICE)
    posted = await fake_slack.post_as_user(ALICE, dm, "design an audit log for the admin panel")
    assert [(d.type, d.status_codes) for d in posted.deliveries] == [("message", [200])]

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert (turn.source, turn.channel_id, turn.status) == ("dm", dm, TurnStatus.DONE)
    # pmteam's own replies in the DM came back as message.im events: none became a task.
    [task] = await rows(pmteam, Task)
    assert (task.channel_id, task.thread_ts, task.request_text) == (
        dm,
        posted.ts,
        "design an audit log for the admin panel",
    )

    answer, summary = bot_messages(fake_slack, dm, posted.ts)
    assert answer.thread_ts == posted.ts and summary.thread_ts == posted.ts
    assert answer.stream is not None and answer.stream.state == "completed"
    assert turn.answer_text and turn.answer_text.split("\n\n")[-1] in answer.text
    assert summary.text.startswith("Self-assessment ")
    # Asked in private: nothing goes to the PM until Alice shares it.
    assert "only you can see this task" in summary.text
    assert bot_messages(fake_slack, COORDINATION) == []
    assert "eyes" in [c.params["name"] for c in fake_slack.calls_to("reactions.add")]


async def test_new_assistant_thread_gets_suggested_prompts(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    started = await fake_slack.start_assistant_thread(ALICE)
    assert started.delivery.status_codes == [200]

    await fake_slack.wait_for(
        lambda: bool(fake_slack.calls_to("assistant.threads.setSuggestedPrompts"))
    )
    thread = fake_slack.workspace.assistant_thread(started.channel_id, started.thread_ts)
    assert thread is not None
    assert [p["title"] for p in thread.suggested_prompts] == [p["title"] for p in SUGGESTED_PROMPTS]
    assert thread.prompts_title
    assert await rows(pmteam, Task) == []


async def test_message_in_an_assistant_thread_is_a_task_with_thinking_status(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    started = await fake_slack.start_assistant_thread(ALICE)
    asked = await fake_slack.post_as_user(
        ALICE, started.channel_id, SUGGESTED_PROMPTS[2]["message"], thread_ts=started.thread_ts
    )

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert (turn.source, turn.message_ts, turn.status) == ("assistant", asked.ts, TurnStatus.DONE)
    [task] = await rows(pmteam, Task)
    assert task.thread_ts == started.thread_ts
    thread = fake_slack.workspace.assistant_thread(started.channel_id, started.thread_ts)
    assert thread is not None and "is thinking…" in thread.status_history
    # The thread is named after its first request, as the assistant's history lists it.
    assert thread.title == one_line(SUGGESTED_PROMPTS[2]["message"], 60)
    assert thread.title
    # The answer and its summary are in the assistant thread.
    assert len(bot_messages(fake_slack, started.channel_id, started.thread_ts)) == 2
