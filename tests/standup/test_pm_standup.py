"""`/pm standup` previews the standup ephemerally; `/pm standup post` posts it once, now."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sandbox.model import FakeModel, Text
from sandbox.slack import FakeSlack
from storage.db import create_engine, session_factory
from storage.models import Standup, TaskStatus
from storage.types import utcnow
from tests.e2e.conftest import ALICE, BOB, COORDINATION, ENGINEERING, rows
from tests.e2e.pm_support import ack_of, last_ephemeral, run_pm, settle, shown
from tests.standup.support import add_task, all_text, standup_key, standup_posts
from tests.standup.test_scheduler import running_pmteam


async def completed_before_start(database_url: str, fake_slack: FakeSlack) -> None:
    """A finished task, written before pmteam starts (so its worker has nothing to claim)."""
    engine = create_engine(database_url)
    try:
        await add_task(
            session_factory(engine),
            title="Orders pagination",
            status=TaskStatus.COMPLETED,
            at=utcnow() - timedelta(hours=2),
            fake_slack=fake_slack,
        )
    finally:
        await engine.dispose()


async def test_pm_standup_previews_only_to_the_person_who_asked(
    sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await completed_before_start(sqlite_url, fake_slack)
    async with running_pmteam(sqlite_url, fake_slack, fake_model, scheduler=False) as pmteam:
        fake_slack.set_event_target(f"http://127.0.0.1:{pmteam.http_port}/slack/events")
        fake_model.script(Text("T-1 shipped yesterday."))

        ack = ack_of(await run_pm(fake_slack, "standup", user=BOB, channel=ENGINEERING))
        await settle(pmteam, fake_slack)

        preview = last_ephemeral(fake_slack, BOB, ENGINEERING)
        standup_rows = await rows(pmteam, Standup)

    assert "Preparing a standup preview" in shown(ack["blocks"])
    text = shown(preview.blocks)
    assert "T-1 shipped yesterday." in text and "Orders pagination" in text
    assert f"`/pm standup post` posts it to <#{COORDINATION}>" in text
    assert standup_posts(fake_slack, COORDINATION) == []  # a preview posts nothing
    assert standup_rows == []
    assert fake_slack.workspace.ephemerals(ENGINEERING, ALICE) == []


async def test_pm_standup_post_posts_to_the_coordination_channel_once(
    sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await completed_before_start(sqlite_url, fake_slack)
    async with running_pmteam(sqlite_url, fake_slack, fake_model, scheduler=False) as pmteam:
        fake_slack.set_event_target(f"http://127.0.0.1:{pmteam.http_port}/slack/events")

        await run_pm(fake_slack, "standup post", user=BOB, channel=ENGINEERING)
        await settle(pmteam, fake_slack)
        confirmation = last_ephemeral(fake_slack, BOB, ENGINEERING)
        await run_pm(fake_slack, "standup post", user=BOB, channel=ENGINEERING)
        await settle(pmteam, fake_slack)
        standup_rows = await rows(pmteam, Standup)

    assert confirmation.text.startswith(f"Posted the standup to <#{COORDINATION}>: 1 completed")
    posts = standup_posts(fake_slack, COORDINATION)
    assert posts and "Orders pagination" in all_text(posts[0])
    assert standup_posts(fake_slack, ENGINEERING) == []
    # A second request within the same minute is the same ad-hoc period: never a repeat.
    keys = Counter(standup_key(m) for m in posts)
    assert set(keys.values()) == {1}
    assert all(key.startswith(f"standup:{COORDINATION}:adhoc:") for key in keys)
    assert len(standup_rows) == len(posts)
