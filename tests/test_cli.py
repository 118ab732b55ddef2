"""The `pmteam` command, run as a newcomer would run it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.model import FakeModel
from sandbox.slack import FakeSlack


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


# A developer's own settings must not leak into a test of the command.
SETTINGS_PREFIXES = ("SLACK_", "PMTEAM_", "ANTHROPIC_")


@dataclass(frozen=True)
class Ran:
    """One run of `pmteam`: exit status, what it printed, and how long it took."""

    code: int
    out: str
    err: str
    seconds: float


async def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Ran:
    """`python -m bot ARGS` in `cwd`, with none of the caller's settings but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode(), time.monotonic() - started)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _pmteam("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("doctor", "db"):
        assert command in result.stdout


async def _apmteam(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
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


async def test_doctor_then_db_upgrade_then_doctor(
    tmp_path: Path, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    env = {
        "PMTEAM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "SLACK_BOT_TOKEN": "xoxb-1-2-doctor",
        "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "PMTEAM_COORDINATION_CHANNEL": "C0PM",
        "ANTHROPIC_API_KEY": "sk-ant-doctor-test",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
    }
    code, before = await _apmteam("doctor", cwd=tmp_path, **env)
    assert code == 0, before
    assert "ok    database" in before
    assert "will be created and migrated by `pmteam run`" in before
    assert not (tmp_path / "cli.db").exists()

    code, upgraded = await _apmteam("db", "upgrade", cwd=tmp_path, **env)
    assert code == 0, upgraded
    assert "up to date" in upgraded

    code, after = await _apmteam("doctor", cwd=tmp_path, **env)
    assert code == 0, after
    for line in ("ok    database", "ok    slack", "ok    scopes", "ok    channel", "ok    model"):
        assert line in after
    assert "sk-ant-doctor-test" not in after and "xoxb-1-2-doctor" not in after


async def test_doctor_names_the_fix_for_slack_problems(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    env = {
        "PMTEAM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "SLACK_BOT_TOKEN": "xoxb-1-2-doctor",
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "PMTEAM_COORDINATION_CHANNEL": "C0RANDOM",
    }
    code, out = await _apmteam("doctor", cwd=tmp_path, **env)
    assert code == 1
    assert "pmteam is not a member" in out
    assert "/invite @pmteam" in out
    assert "FAIL  model" in out and "ANTHROPIC_API_KEY" in out


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
