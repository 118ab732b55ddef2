"""A setting that can't work is one line naming the variable and the fix, exit status 2 and no
traceback, from every command that reads the settings; and nothing is created on the way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.test_cli import Ran, run_cli

COMMANDS = [("doctor",), ("run",), ("standup",), ("db", "upgrade")]
# Enough for `run` and `standup` to get past their own checks; nothing here is ever reached.
READY = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-settings",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    "PMTEAM_SLACK_API_URL": "http://127.0.0.1:9/api/",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
}


async def _every_command(tmp_path: Path, env: dict[str, str]) -> dict[str, Ran]:
    runs = await asyncio.gather(
        *(run_cli(*command, cwd=tmp_path, env={**READY, **env}) for command in COMMANDS)
    )
    return {" ".join(command): ran for command, ran in zip(COMMANDS, runs, strict=True)}


def _assert_one_clean_line(command: str, ran: Ran, expected: str) -> None:
    assert ran.code == 2, f"{command}: {ran.out}{ran.err}"
    assert "Traceback" not in ran.out + ran.err, command
    lines = [line for line in ran.err.splitlines() if expected in line]
    assert len(lines) == 1, f"{command}: {ran.err}"


SETTINGS_CASES = {
    "a URL with an unknown scheme": (
        {"PMTEAM_DATABASE_URL": "garbage://x"},
        "PMTEAM_DATABASE_URL='garbage://x' names the database driver 'garbage', which pmteam "
        "doesn't support; use sqlite+aiosqlite:///./pmteam.db",
    ),
    "no URL at all": (
        {"PMTEAM_DATABASE_URL": "garbage"},
        "PMTEAM_DATABASE_URL='garbage' is not a database URL; write e.g.",
    ),
    "a database pmteam has no driver for": (
        {"PMTEAM_DATABASE_URL": "mysql://pm:hunter2@db/pmteam"},
        "PMTEAM_DATABASE_URL='mysql://pm:***@db/pmteam' names the database driver 'mysql'",
    ),
    "an unknown PostgreSQL driver": (
        {"PMTEAM_DATABASE_URL": "postgresql+pg8000://pm@db/pmteam"},
        "names the database driver 'postgresql+pg8000'",
    ),
    "a crontab that isn't one": (
        {"PMTEAM_STANDUP_CRON": "every morning"},
        "PMTEAM_STANDUP_CRON='every morning' is not a crontab expression",
    ),
    "an unknown time zone": (
        {"PMTEAM_TIMEZONE": "Mars/Olympus"},
        "PMTEAM_TIMEZONE='Mars/Olympus' is not an IANA time zone; use a name such as",
    ),
    "a user token as the bot token": (
        {"SLACK_BOT_TOKEN": "xoxp-1-2-3-person"},
        "SLACK_BOT_TOKEN holds a user token (xoxp-…), but pmteam acts as its bot: use the "
        "Bot User OAuth Token (xoxb-…)",
    ),
    "the bot token as the app token": (
        {"SLACK_APP_TOKEN": "xoxb-1-2-settings"},
        "SLACK_APP_TOKEN holds a bot token (xoxb-…). That one belongs in SLACK_BOT_TOKEN",
    ),
    "the app token as the bot token": (
        {"SLACK_BOT_TOKEN": "xapp-1-A1-2-abc"},
        "SLACK_BOT_TOKEN holds an app-level token (xapp-…). That one belongs in SLACK_APP_TOKEN",
    ),
    "a mode that doesn't exist": (
        {"PMTEAM_MODE": "sockets"},
        "PMTEAM_MODE='sockets': Input should be 'socket' or 'http'; leave it empty or unset",
    ),
}


# Every command reads the settings the same way: each case is tried on one of them in turn,
# and the test after it tries every command with all the problems at once.
@pytest.mark.parametrize(
    ("case", "command"),
    [
        pytest.param(case, command, id=f"{case}, {' '.join(command)}")
        for case, command in zip(SETTINGS_CASES, COMMANDS * len(SETTINGS_CASES), strict=False)
    ],
)
async def test_a_setting_that_cant_work_is_one_line_naming_the_fix(
    case: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    env, expected = SETTINGS_CASES[case]

    ran = await run_cli(*command, cwd=tmp_path, env={**READY, **env})

    _assert_one_clean_line(" ".join(command), ran, expected)
    assert "hunter2" not in ran.out + ran.err
    assert list(tmp_path.iterdir()) == []  # no ./pmteam.db, no half-made anything


async def test_every_problem_is_reported_at_once_the_database_url_too(tmp_path: Path) -> None:
    env = {
        "PMTEAM_DATABASE_URL": "garbage://x",
        "PMTEAM_STANDUP_CRON": "every morning",
        "SLACK_BOT_TOKEN": "xoxp-1-2-3-person",
        "PMTEAM_PORT": "http",
        "PMTEAM_TIMEZONE": "Mars/Olympus",
        "SLACK_APP_TOKEN": "xoxb-1-2-settings",
    }

    runs = await _every_command(tmp_path, env)

    for command, ran in runs.items():
        for expected in (
            "PMTEAM_DATABASE_URL='garbage://x'",
            "PMTEAM_STANDUP_CRON='every morning'",
            "PMTEAM_TIMEZONE='Mars/Olympus'",
            "SLACK_BOT_TOKEN holds a user token",
            "SLACK_APP_TOKEN holds a bot token",
            "PMTEAM_PORT='http': Input should be a valid integer",
        ):
            _assert_one_clean_line(command, ran, expected)
        assert ran.err.startswith(f"pmteam {command}: the settings have problems (read from")
    assert list(tmp_path.iterdir()) == []


DATABASE_CASES = {
    "a PostgreSQL server that isn't there": (
        "postgresql://nobody:hunter2@127.0.0.1:1/none",
        "cannot connect",
    ),
    "a SQLite file in a directory that doesn't exist": (
        "sqlite+aiosqlite:///{tmp}/missing/pmteam.db",
        "/missing does not exist; create it",
    ),
}


@pytest.mark.parametrize("case", list(DATABASE_CASES))
async def test_a_database_that_cant_be_used_is_one_line_and_the_doctor_fails_it(
    case: str, tmp_path: Path
) -> None:
    url, expected = DATABASE_CASES[case]
    url = url.format(tmp=tmp_path)

    runs = await _every_command(tmp_path, {"PMTEAM_DATABASE_URL": url})

    doctor = runs.pop("doctor")
    assert doctor.code == 1, doctor.out + doctor.err
    (line,) = [line for line in doctor.out.splitlines() if line.startswith("FAIL  database")]
    assert expected in line and "PMTEAM_DATABASE_URL" in line
    for command, ran in runs.items():
        _assert_one_clean_line(command, ran, expected)
        assert f"pmteam {command}: PMTEAM_DATABASE_URL=" in ran.err
    for ran in (doctor, *runs.values()):
        assert "hunter2" not in ran.out + ran.err
    assert list(tmp_path.iterdir()) == []
