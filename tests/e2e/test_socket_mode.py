"""Socket Mode: events arrive over the WebSocket and get the same answer and report."""

from __future__ import annotations

import asyncio

import pytest

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
from tests.e2e.test_http_surface import get


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


@pytest.mark.reliability(
    "Slack drops the Socket Mode connection and refuses new ones", kind="fault"
)
async def test_a_dropped_socket_is_reconnected_health_says_so_and_no_event_is_lost(
    start_pmteam: StartPmteam, fake_slack: FakeSlack
) -> None:
    pmteam = await start_pmteam(PMTEAM_MODE="socket", SLACK_APP_TOKEN="xapp-1-A0PMTEAM-1-e2e")
    pmteam.socket_down_limit = 0.5
    # Slack retries an undelivered event for about 15 s.
    fake_slack.set_retry_schedule((1.0, 2.0, 4.0, 8.0), max_retries=4)
    assert (await get(pmteam, "/healthz"))[0] == 200

    # Slack drops the connection and, for a while, won't open a new one.
    refusal = fake_slack.inject("apps.connections.open", error="internal_error", times=None)
    await fake_slack.drop_socket_connections()
    await fake_slack.wait_for(lambda: not fake_slack.socket_mode.connections, 5)
    status = 200
    for _ in range(60):
        status, body = await get(pmteam, "/healthz")
        if status == 503:
            break
        await asyncio.sleep(0.1)
    assert status == 503 and "Socket Mode connection has been down" in body

    # A mention while it is down: Slack holds it and retries.
    posting = asyncio.create_task(mention(fake_slack, "design a webhook retry policy"))
    await asyncio.sleep(0.5)
    assert refusal.hits >= 1  # pmteam kept trying to reconnect
    fake_slack.clear_faults()
    posted = await posting
    delivery = app_mention_delivery(posted)
    assert delivery.acked and delivery.transport == "socket"
    assert [a.error for a in delivery.attempts][0] == "no_connection"

    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    assert turn.status == TurnStatus.DONE
    assert len(fake_slack.socket_mode.connections) == 1
    for _ in range(50):  # the watch looks once a second
        if (await get(pmteam, "/healthz"))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await get(pmteam, "/healthz"))[0] == 200
    assert pmteam.socket_down_since is None
