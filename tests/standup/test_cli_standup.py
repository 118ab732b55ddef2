"""`pmteam standup`: the same code as the scheduler, from a terminal."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from datetime import timedelta
from pathlib import Path

from bot.cli.standup import run_standup_command
from bot.config import Settings
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.db import create_engine, session_factory
from storage.models import TaskStatus
from storage.types import utcnow
from tests.e2e.conftest import e2e_settings
from tests.standup.conftest import COORDINATION
from tests.standup.support import add_task, all_text, standup_key, standup_posts


async def pmteam_cli(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PMTEAM_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_dry_run_prints_and_force_posts_once(
    tmp_path: Path, sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    engine = create_engine(sqlite_url)
    try:
        await add_task(
            session_factory(engine),
            title="Orders pagination",
            status=TaskStatus.COMPLETED,
            at=utcnow() - timedelta(hours=1),
        )
    finally:
        await engine.dispose()
    env = {
        "PMTEAM_DATABASE_URL": sqlite_url,
        "SLACK_BOT_TOKEN": "xoxb-1-2-cli",
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "PMTEAM_COORDINATION_CHANNEL": COORDINATION,
        "ANTHROPIC_API_KEY": "sk-ant-cli-test",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "PMTEAM_STANDUP_CRON": "0 0 29 2 *",  # no slot near today: nothing is due
    }

    code, printed = await pmteam_cli("standup", "--dry-run", cwd=tmp_path, env=env)
    assert code == 0, printed
    assert "Standup ·" in printed and "T-1 Orders pagination" in printed
    assert standup_posts(fake_slack, COORDINATION) == []

    code, forced = await pmteam_cli("standup", "--force", cwd=tmp_path, env=env)
    assert code == 0, forced
    assert f"Posted the standup to {COORDINATION}: 1 completed" in forced
    (post,) = standup_posts(fake_slack, COORDINATION)
    assert standup_key(post).startswith(f"standup:{COORDINATION}:adhoc:")
    assert "Orders pagination" in all_text(post)
    assert "xoxb-1-2-cli" not in forced + printed


async def test_without_force_it_posts_only_what_is_due(
    sqlite_url: str, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    def settings(**overrides: object) -> Settings:
        return e2e_settings(
            database_url=sqlite_url, fake_slack=fake_slack, fake_model=fake_model, **overrides
        )

    out = io.StringIO()
    nothing_due = settings(PMTEAM_STANDUP_CRON="0 0 29 2 *")
    code = await run_standup_command(
        nothing_due, channel_id=None, dry_run=False, force=False, out=out
    )
    assert code == 0 and "nothing to do" in out.getvalue()

    due_now = settings(PMTEAM_STANDUP_CRON="* * * * *")
    for _ in range(2):
        code = await run_standup_command(
            due_now, channel_id=COORDINATION, dry_run=False, force=False, out=out
        )
        assert code == 0
    assert "Posted the standup to C0PM (no activity to report)." in out.getvalue()
    keys = [standup_key(m) for m in standup_posts(fake_slack, COORDINATION)]
    assert len(keys) == len(set(keys)) >= 1  # the second run found its minute posted

    nowhere = settings(PMTEAM_COORDINATION_CHANNEL="")
    out = io.StringIO()
    code = await run_standup_command(nowhere, channel_id=None, dry_run=False, force=True, out=out)
    assert code == 2 and "PMTEAM_COORDINATION_CHANNEL" in out.getvalue()
