"""`pmteam standup --dry-run` needs only the database: no SLACK_BOT_TOKEN, no Slack, no model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from storage.db import create_engine, session_factory
from storage.models import TaskStatus
from storage.types import utcnow
from tests.standup.support import add_task
from tests.test_cli import run_cli

NO_SLACK = {"PMTEAM_SLACK_API_URL": "http://127.0.0.1:9/api/"}  # a call would fail


async def test_dry_run_prints_the_standup_from_the_database_alone(
    tmp_path: Path, sqlite_url: str
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

    ran = await run_cli(
        "standup", "--dry-run", cwd=tmp_path, env={**NO_SLACK, "PMTEAM_DATABASE_URL": sqlite_url}
    )

    assert ran.code == 0, ran.out + ran.err
    assert "Standup ·" in ran.out and "T-1 Orders pagination" in ran.out
    assert "Traceback" not in ran.err


async def test_dry_run_without_a_database_says_so_and_creates_none(tmp_path: Path) -> None:
    ran = await run_cli("standup", "--dry-run", cwd=tmp_path, env=NO_SLACK)

    assert ran.code == 2
    assert ran.err == (
        "pmteam standup: PMTEAM_DATABASE_URL=sqlite+aiosqlite:///./pmteam.db: there is no "
        "pmteam database there yet; run `pmteam db upgrade` (or start `pmteam run`, which "
        "migrates on start)\n"
    )
    assert list(tmp_path.iterdir()) == []


async def test_posting_a_standup_still_needs_the_bot_token(tmp_path: Path, sqlite_url: str) -> None:
    ran = await run_cli(
        "standup", "--force", cwd=tmp_path, env={**NO_SLACK, "PMTEAM_DATABASE_URL": sqlite_url}
    )

    assert ran.code == 2
    assert "SLACK_BOT_TOKEN is not set" in ran.err and "--dry-run" in ran.err
