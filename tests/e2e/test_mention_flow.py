"""A mention becomes one task, one streamed answer, its summary line and the task's card."""

from __future__ import annotations

from bot.app import Pmteam
from bot.services.turns import FINISH_REACTION, TASK_STATUS_FOR
from bot.slack.blocks.report import (
    ACTION_ACKNOWLEDGE,
    ACTION_DETAILS,
    ACTION_MARK_BLOCKED,
    ACTION_MARK_DONE,
    ACTION_REOPEN,
    ACTION_STOP,
    REPORT_HEADER,
)
from sandbox.slack import FakeSlack
from storage.models import (
    LLMCall,
    Report,
    ResearchRequest,
    SlackPost,
    Task,
    TaskEvent,
    TaskStatus,
    Turn,
    TurnStatus,
)
from tests.e2e.conftest import (
    ALICE,
    COORDINATION,
    ENGINEERING,
    ON_EACH_DATABASE,
    app_mention_delivery,
    bot_messages,
    mention,
    post_key_of,
    rows,
    wait_until_idle,
)

pytestmark = ON_EACH_DATABASE

REQUEST = "design an idempotent payments API on PostgreSQL"
MOVES_AFTER = {
    "COMPLETED": [ACTION_REOPEN],
    "IN_PROGRESS": [ACTION_MARK_BLOCKED, ACTION_MARK_DONE],
    "BLOCKED": [ACTION_MARK_DONE, ACTION_REOPEN],
}


async def test_mention_produces_one_streamed_answer_summary_card_and_db_rows(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    # The offline model consults the researcher (a web search with sources), answers, and
    # files a report: the whole pipeline runs.
    posted = await mention(fake_slack, REQUEST)
    assert [d.status_codes for d in posted.deliveries] == [[200], [200]]  # mention + message

    await wait_until_idle(pmteam, fake_slack, turns=1)

    # --- the DB ---------------------------------------------------------------------------
    [task] = await rows(pmteam, Task)
    [turn] = await rows(pmteam, Turn)
    [report] = await rows(pmteam, Report)
    assert task.ref == "T-1"
    assert (task.channel_id, task.thread_ts, task.requester_id) == (ENGINEERING, posted.ts, ALICE)
    assert task.request_text == REQUEST
    assert task.status == TASK_STATUS_FOR[report.status]

    assert (turn.task_id, turn.seq, turn.message_ts, turn.source) == (
        task.id,
        1,
        posted.ts,
        "mention",
    )
    assert turn.status == TurnStatus.DONE
    assert turn.answer_text and "idempotency key" in turn.answer_text
    assert turn.started_at is not None and turn.finished_at is not None
    assert turn.lease_owner is None and turn.failure_reason is None

    assert (report.task_id, report.turn_id) == (task.id, turn.id)
    assert report.data["status"] == report.status

    events = await rows(pmteam, TaskEvent)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, TaskStatus.QUEUED),
        (TaskStatus.QUEUED, TaskStatus.WORKING),
        (TaskStatus.WORKING, TASK_STATUS_FOR[report.status]),
    ]
    assert all(e.task_id == task.id for e in events)

    [research] = await rows(pmteam, ResearchRequest)
    assert (research.task_id, research.turn_id) == (task.id, turn.id)
    assert research.web_searches >= 1
    assert research.sources and all(s["url"].startswith("http") for s in research.sources)

    calls = await rows(pmteam, LLMCall)
    assert {c.agent for c in calls} == {"engineer", "researcher", "reporter"}
    assert all(c.turn_id == turn.id and c.task_id == task.id for c in calls)
    assert all(c.output_tokens > 0 and c.request_id for c in calls)

    posts = {p.key: p for p in await rows(pmteam, SlackPost)}
    assert set(posts) == {
        f"{turn.id}:stream",  # recorded as soon as the stream began
        f"{turn.id}:answer",
        f"{turn.id}:summary",
        f"card:{task.id}",
    }

    # --- the streamed answer: one message, started, appended to, stopped --------------------
    starts = fake_slack.calls_to("chat.startStream")
    appends = fake_slack.calls_to("chat.appendStream")
    stops = fake_slack.calls_to("chat.stopStream")
    assert len(starts) == 1 and len(stops) == 1 and appends
    assert all(c.ok for c in starts + appends + stops)
    answer_ts = starts[0].response["ts"] if starts[0].response else None
    assert starts[0].params["thread_ts"] == posted.ts
    assert {c.params["ts"] for c in appends + stops} == {answer_ts}
    assert not fake_slack.calls_to("chat.update")  # streaming worked: no fallback
    # The Stop line shown while it ran was taken down when the answer ended.
    [working] = [c for c in fake_slack.calls_to("chat.postMessage") if ACTION_STOP in str(c.params)]
    [deleted] = fake_slack.calls_to("chat.delete")
    assert working.response is not None and deleted.params["ts"] == working.response["ts"]

    thread = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert len(thread) == 2  # the answer, then its one-line summary
    answer, summary = thread
    assert answer.ts == answer_ts == posts[f"{turn.id}:answer"].ts == posts[f"{turn.id}:stream"].ts
    assert answer.stream is not None and answer.stream.state == "completed"
    assert post_key_of(answer) == f"{turn.id}:answer"
    for paragraph in turn.answer_text.split("\n\n"):
        assert paragraph in answer.text
    # The research progress line, the sources and 👍/👎 under the answer.
    assert ":mag:" in answer.text
    sources = [b for b in answer.blocks or [] if b.get("type") == "context"]
    assert any(research.sources[0]["url"] in str(b) for b in sources)
    [feedback] = [b for b in answer.blocks or [] if b.get("type") == "context_actions"]
    assert feedback["block_id"] == f"feedback:{turn.id}"
    assert feedback["elements"][0]["type"] == "feedback_buttons"

    # --- the summary line in the thread: for the asker, the details a click away -------------
    assert summary.ts == posts[f"{turn.id}:summary"].ts
    assert post_key_of(summary) == f"{turn.id}:summary"
    scores = "·".join(str(v) for v in report.data["self_assessment"].values())
    assert summary.text.startswith(f"Self-assessment {scores} · ")
    assert summary.text.endswith(f"report in <#{COORDINATION}>")
    assert "SELF-ASSESSMENT" not in str(summary.blocks)  # the full matrix is in Details
    [details] = [
        e
        for b in summary.blocks or []
        for e in b.get("elements", [])
        if e.get("action_id") == ACTION_DETAILS
    ]
    assert details["value"] == str(turn.id)

    # --- the task's card in the coordination channel ----------------------------------------
    [card] = bot_messages(fake_slack, COORDINATION)
    assert card.ts == posts[f"card:{task.id}"].ts
    assert post_key_of(card) == f"card:{task.id}"
    assert card.thread_ts is None
    assert card.text.startswith("T-1 — ")  # the notification fallback
    blocks = card.blocks or []
    by_type = {b["type"]: b for b in reversed(blocks)}
    assert by_type["header"]["text"]["text"] == REPORT_HEADER
    fields = " ".join(f["text"] for f in by_type["section"]["fields"])
    assert "*Status:*" in fields and report.status.replace("_", " ") in fields
    score_tree = next(b["text"]["text"] for b in blocks if "Self-Assessment Scores" in str(b))
    assert "├──" in score_tree and "└──" in score_tree
    assert "System Architecture &amp; Design" in score_tree  # mrkdwn: & escaped
    link = f"/archives/{ENGINEERING}/p{posted.ts.replace('.', '')}"
    footer = [b for b in blocks if b["type"] == "context"][-1]["elements"][0]["text"]
    assert "T-1" in footer and link in footer and f"<@{ALICE}>" in footer
    # Only the moves the status allows: a finished task can be acknowledged or reopened.
    buttons = [e["action_id"] for e in by_type["actions"]["elements"]]
    assert buttons == [ACTION_ACKNOWLEDGE, *MOVES_AFTER[report.status]]
    assert {e["value"] for e in by_type["actions"]["elements"]} == {str(task.id)}

    # --- reactions: 👀 when seen, swapped for the report's status emoji ----------------------
    finish = FINISH_REACTION[report.status]
    added = [c.params["name"] for c in fake_slack.calls_to("reactions.add")]
    removed = [c.params["name"] for c in fake_slack.calls_to("reactions.remove")]
    assert added == ["eyes", finish]
    assert removed == ["eyes"]
    assert fake_slack.workspace.reactions(ENGINEERING, posted.ts) == {finish: [answer.user]}


async def test_mention_is_recorded_before_the_ack_without_waiting_on_slack(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    # Every Web API call is slow now: none of them may sit between the event and its ack.
    fake_slack.inject("*", delay=1.0, times=None)
    posted = await mention(fake_slack, REQUEST)
    delivery = app_mention_delivery(posted)
    assert delivery.status_codes == [200]
    assert delivery.attempts[0].elapsed < 0.5
    # Acked means durable: the turn was committed before Slack got its 200.
    [turn] = await rows(pmteam, Turn)
    assert (turn.message_ts, turn.status) in {
        (posted.ts, TurnStatus.QUEUED),
        (posted.ts, TurnStatus.RUNNING),
    }
    fake_slack.clear_faults()
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.DONE


async def test_answer_falls_back_to_post_and_update_when_streaming_is_unavailable(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    fake_slack.inject("chat.startStream", error="unknown_method", times=None)
    posted = await mention(fake_slack, REQUEST)
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.DONE and turn.answer_text

    assert not fake_slack.calls_to("chat.appendStream")
    answer, summary = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert answer.stream is None
    assert post_key_of(answer) == f"{turn.id}:answer"
    assert fake_slack.calls_to("chat.update")
    shown = answer.text + str(answer.blocks)
    for paragraph in turn.answer_text.split("\n\n"):
        assert paragraph in shown
    assert post_key_of(summary) == f"{turn.id}:summary"
    assert len(bot_messages(fake_slack, COORDINATION)) == 1
