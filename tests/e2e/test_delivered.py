"""Delivered is delivered: once the answer is in the thread, trouble with the PM's channel, a
stream that won't stop, or a database that drops its connections never fails the task."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest

from bot.app import Pmteam
from bot.services.housekeeping import Housekeeping
from sandbox.model import CutStream, FakeModel, Json, Text
from sandbox.slack import FakeSlack
from storage.models import Report, Task, TaskStatus, Turn, TurnStatus
from storage.types import utcnow
from tests.conftest import POSTGRES_ADMIN_URL, _truncate_postgres
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    bot_messages,
    mention,
    report_json,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import home_blocks, last_ephemeral, run_pm, settle, shown
from tests.e2e.test_home import open_home


def top_level(fake_slack: FakeSlack, channel: str) -> list[str]:
    return [m.ts for m in bot_messages(fake_slack, channel) if m.thread_ts in (None, m.ts)]


@pytest.mark.reliability(
    "The coordination channel refuses the card (pmteam not invited)", kind="fault"
)
async def test_a_card_the_pm_channel_refuses_is_kept_flagged_and_posted_later(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    bot = fake_slack.workspace.bot_user.id
    fake_slack.workspace.channel(COORDINATION).members.discard(bot)  # nobody invited pmteam
    fake_model.script(Text("Use an idempotency-key table."), Json(report_json()))
    asked = await mention(fake_slack, "design an idempotent payments API")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    await settle(pmteam, fake_slack)

    # The answer stands and the task is done, not failed.
    assert turn.status == TurnStatus.DONE
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.COMPLETED
    assert task.report_error == "not_in_channel" and task.report_retry_at is not None
    assert top_level(fake_slack, COORDINATION) == []
    # Said once in the thread, in plain words, with what fixes it.
    thread = [m.text for m in bot_messages(fake_slack, ENGINEERING, asked.ts)]
    [note] = [text for text in thread if "couldn't post" in text]
    assert "Your answer is above" in note and "`not_in_channel`" in note
    assert "/invite @pmteam" in note
    # Flagged where people look.
    await run_pm(fake_slack, "status T-1", user=BOB)
    assert "couldn't be posted to the PM's channel yet" in shown(
        last_ephemeral(fake_slack, BOB).blocks
    )
    await open_home(pmteam, fake_slack, BOB)
    assert "Reports waiting to be posted" in shown(home_blocks(fake_slack, BOB))

    # Not due yet: nothing is tried. Still refused when due: backed off further.
    housekeeping = Housekeeping(deps=pmteam.deps, clock=utcnow)
    assert await housekeeping.post_unposted_reports() == []
    later = Housekeeping(deps=pmteam.deps, clock=lambda: utcnow() + timedelta(minutes=2))
    assert await later.post_unposted_reports() == []
    [task] = await rows(pmteam, Task)
    assert task.report_attempts == 2 and task.report_retry_at is not None
    assert task.report_retry_at > utcnow() + timedelta(minutes=1)

    # Someone invites pmteam; the next try posts the card and clears the flag.
    fake_slack.workspace.channel(COORDINATION).members.add(bot)
    much_later = Housekeeping(deps=pmteam.deps, clock=lambda: utcnow() + timedelta(hours=2))
    assert await much_later.post_unposted_reports() == [task.id]
    assert len(top_level(fake_slack, COORDINATION)) == 1
    [task] = await rows(pmteam, Task)
    assert (task.report_error, task.report_retry_at, task.report_attempts) == (None, None, 0)
    # The thread was told once, not on every try.
    thread = [m.text for m in bot_messages(fake_slack, ENGINEERING, asked.ts)]
    assert len([text for text in thread if "couldn't post" in text]) == 1


@pytest.mark.reliability("chat.stopStream fails with HTTP 500 on every try", kind="fault")
async def test_a_stream_that_will_not_stop_is_replaced_by_the_whole_answer(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    answer = "Use an idempotency-key table.\n\nKeep keys for 24 hours."
    fake_model.script(Text(answer), Json(report_json()))
    fake_slack.inject("chat.stopStream", status=500, times=None)
    asked = await mention(fake_slack, "design an idempotent payments API")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    await settle(pmteam, fake_slack)

    assert turn.status == TurnStatus.DONE
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.COMPLETED
    assert len(await rows(pmteam, Report)) == 1
    assert len(top_level(fake_slack, COORDINATION)) == 1
    thread = bot_messages(fake_slack, ENGINEERING, asked.ts)
    # No message is left "typing": the stuck stream was taken down, the answer posted whole.
    assert all(m.stream is None or m.stream.state == "completed" for m in thread)
    assert any("Keep keys for 24 hours." in m.text for m in thread if m.stream is None)
    assert thread[-1].text.startswith("Self-assessment ")


@pytest.mark.reliability(
    "PostgreSQL backends killed every 0.1 s right after the answer", kind="fault"
)
async def test_postgres_connections_dropped_after_the_answer_do_not_fail_the_task(
    start_pmteam: StartPmteam,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    postgres_database: str,
) -> None:
    _truncate_postgres(postgres_database)
    pmteam = await start_pmteam(database_url=postgres_database)
    fake_model.script(Text("Use an idempotency-key table."), Json(report_json()))
    # The answer's stream ends slowly: meanwhile every pmteam connection is killed, again and
    # again, so the writes that follow the answer meet dead connections.
    fake_slack.inject("chat.stopStream", delay=0.6)
    database = postgres_database.rsplit("/", 1)[1]

    async def churn() -> int:
        killed = 0
        await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.stopStream")), 15)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            for _ in range(12):
                rows_killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                killed += len(rows_killed)
                await asyncio.sleep(0.1)
        return killed

    killer = asyncio.create_task(churn())
    await mention(fake_slack, "design an idempotent payments API", user=ALICE)
    killed = await killer
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1, timeout=60)
    await settle(pmteam, fake_slack)

    assert killed > 0
    assert turn.status == TurnStatus.DONE
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.COMPLETED
    assert len(await rows(pmteam, Report)) == 1
    assert len(top_level(fake_slack, COORDINATION)) == 1
    assert [t.status for t in await rows(pmteam, Turn)] == [TurnStatus.DONE]


@pytest.mark.reliability(
    "Slack posts a message, then the connection drops before its answer", kind="fault"
)
async def test_posts_whose_answer_was_lost_are_found_by_their_key_not_posted_twice(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # Slack carries out each of the turn's posts (the Stop line, the summary, the card), then
    # the connection drops before its answer arrives.
    fake_model.script(Text("Use an idempotency-key table."), Json(report_json()))
    fault = fake_slack.inject("chat.postMessage", lose_response=True, times=3)
    asked = await mention(fake_slack, "design an idempotent payments API")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    await settle(pmteam, fake_slack)

    assert fault.hits == 3
    assert turn.status == TurnStatus.DONE
    posts = fake_slack.calls_to("chat.postMessage")
    assert len(posts) == 3  # none of them repeated, by the SDK or by pmteam
    assert len(top_level(fake_slack, COORDINATION)) == 1
    thread = bot_messages(fake_slack, ENGINEERING, asked.ts)
    assert [m.text.startswith("Self-assessment") for m in thread] == [False, True]


@pytest.mark.reliability("The model's stream stalls mid-answer", kind="fault")
async def test_a_stalled_stream_is_closed_said_and_tried_once_more(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_STREAM_STALL_SECONDS=0.5)
    # The first answer sends a few events, then nothing; the second try answers whole.
    fake_model.script(
        CutStream(
            Text("Start with an idempotency key table, then"), after_events=4, stall_seconds=5.0
        ),
        Text("Use an idempotency-key table."),
        Json(report_json()),
    )
    asked = await mention(fake_slack, "design an idempotent payments API")
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("chat.stopStream")), timeout=10)
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1, timeout=20)
    await settle(pmteam, fake_slack)

    assert turn.status == TurnStatus.DONE and turn.attempts == 1
    assert turn.answer_text == "Use an idempotency-key table."
    thread = bot_messages(fake_slack, ENGINEERING, asked.ts)
    # The stalled answer was closed and marked at once (the first stopStream), then taken
    # down by the second try, which answered in full: one answer in the thread.
    appended = " ".join(str(c.params) for c in fake_slack.calls_to("chat.appendStream"))
    assert "stopped before the answer was finished" in appended
    assert all(m.stream is None or m.stream.state == "completed" for m in thread)
    answers = [m for m in thread if m.stream is not None]
    assert [m.text for m in answers] == ["Use an idempotency-key table."]
    assert [t.status for t in await rows(pmteam, Turn)] == [TurnStatus.DONE]
