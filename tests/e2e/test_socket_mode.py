"""Socket Mode: events arrive over the WebSocket and get the same answer and report."""

from __future__ import annotations

from sandbox.slack import FakeSlack
from storage.models import Task, TurnStatus
from tests.e2e.conftest import (
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    app_mention_delivery,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)


async def test_mention_over_socket_mode_gets_an_answer_and_a_report(
    start_pmteam: StartPmteam, fake_slack: FakeSlack
) -> None:
    pmteam = await start_pmteam(PMTEAM_MODE="socket", SLACK_APP_TOKEN="xapp-1-A0PMTEAM-1-e2e")
    assert fake_slack.event_target is None  # no request URL: only the socket can deliver
    assert len(fake_slack.socket_mode.connections) == 1

    posted = await mention(fake_slack, "design a webhook retry policy")
    delivery = app_mention_delivery(posted)
    assert delivery.transport == "socket" and delivery.acked

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.DONE
    [task] = await rows(pmteam, Task)
    assert task.thread_ts == posted.ts
    assert fake_slack.socket_mode.acks  # the app acked the envelope over the socket
    answer, _summary = bot_messages(fake_slack, ENGINEERING, posted.ts)
    assert answer.stream is not None and answer.stream.state == "completed"
    assert turn.answer_text and turn.answer_text.split("\n\n")[-1] in answer.text
    [report] = bot_messages(fake_slack, COORDINATION)
    assert report.text.startswith("T-1 — ")
