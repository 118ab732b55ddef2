"""The `pmteam` command, run as a newcomer would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _pmteam(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PMTEAM_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _pmteam("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("doctor", "db"):
        assert command in result.stdout


def test_doctor_then_db_upgrade_then_doctor(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    before = _pmteam("doctor", cwd=tmp_path, PMTEAM_DATABASE_URL=url)
    assert before.returncode == 1
    assert "FAIL  database" in before.stdout
    assert "pmteam db upgrade" in before.stdout

    upgraded = _pmteam("db", "upgrade", cwd=tmp_path, PMTEAM_DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "up to date" in upgraded.stdout

    after = _pmteam("doctor", cwd=tmp_path, PMTEAM_DATABASE_URL=url)
    assert after.returncode == 0, after.stdout
    assert "ok    database" in after.stdout


def test_doctor_reports_an_unreachable_database(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = _pmteam("doctor", cwd=tmp_path, PMTEAM_DATABASE_URL=url)
    assert result.returncode == 1
    assert "cannot connect" in result.stdout
    assert "PMTEAM_DATABASE_URL" in result.stdout


def test_bad_configuration_is_a_short_message_not_a_traceback(tmp_path: Path) -> None:
    result = _pmteam("doctor", cwd=tmp_path, SLACK_BOT_TOKEN="xapp-1-A-2-b")
    assert result.returncode == 2
    assert "belongs in SLACK_APP_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
