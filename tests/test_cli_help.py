"""`pmteam --help` and `--version` load none of the app; each command's help says where the
settings come from; `run --host/--port` win over PMTEAM_HOST/PMTEAM_PORT."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest

from bot.cli import SETTINGS_NOTE, build_parser, run_settings
from bot.config import load_settings
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from tests.test_cli import SETTINGS_PREFIXES, run_cli

# What makes `pmteam --help` slow when it is imported for nothing.
HEAVY = {
    "anthropic",
    "slack_bolt",
    "slack_sdk",
    "sqlalchemy",
    "sqlmodel",
    "aiohttp",
    "apscheduler",
    "alembic",
    "psycopg",
    "pydantic",
    "pydantic_settings",
    "structlog",
}


def _imported_packages(*args: str) -> set[str]:
    """The top-level packages `python -X importtime -m bot ARGS` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    packages = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and not line.rstrip().endswith("imported package"):
            packages.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
    return packages


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("run", "--help")])
def test_help_and_version_import_none_of_the_app(args: tuple[str, ...]) -> None:
    packages = _imported_packages(*args)

    assert "argparse" in packages  # the scan sees imports at all
    assert packages & HEAVY == set()


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout == f"pmteam {version('pmteam')}\n"


@pytest.mark.parametrize("command", [["run"], ["doctor"], ["standup"], ["db"], ["db", "upgrade"]])
def test_each_command_help_says_where_settings_come_from(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])

    assert exited.value.code == 0
    assert " ".join(SETTINGS_NOTE.split()) in " ".join(capsys.readouterr().out.split())


def test_run_host_and_port_override_the_settings() -> None:
    settings = load_settings(_env_file=None, PMTEAM_HOST="127.0.0.1", PMTEAM_PORT=3000)

    given = run_settings(settings, build_parser().parse_args(["run", "--host", "0.0.0.0"]))
    both = run_settings(
        settings, build_parser().parse_args(["run", "--host", "::", "--port", "8000"])
    )
    neither = run_settings(settings, build_parser().parse_args(["run"]))

    assert (given.host, given.port) == ("0.0.0.0", 3000)
    assert (both.host, both.port) == ("::", 8000)
    assert (neither.host, neither.port) == ("127.0.0.1", 3000)


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_run_refuses_a_port_that_is_no_port(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "--port", port])

    assert exited.value.code == 2
    assert "is not a port number" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_for_health(url: str, process: asyncio.subprocess.Process) -> int:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            assert process.returncode is None, "pmteam run exited before it was healthy"
            try:
                async with http.get(url) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


async def test_run_listens_where_host_and_port_say_whatever_the_env_file_says(
    tmp_path: Path, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # What a container meets: a `.env` written for a laptop, with an address it doesn't have.
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-1-2-hostport\n"
        "SLACK_SIGNING_SECRET=8f742231b10e8888abcd99yyyzzz85a5\n"
        "PMTEAM_HOST=192.0.2.1\n"
        "PMTEAM_PORT=1\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)},
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "ANTHROPIC_API_KEY": "sk-ant-hostport",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "PMTEAM_LOG_FORMAT": "json",
    }

    unreachable = await run_cli("run", cwd=tmp_path, env=env)
    assert unreachable.code == 2, unreachable.out + unreachable.err
    assert "pmteam run: 192.0.2.1:1 is not an address of this machine; pass --host 0.0.0.0" in (
        unreachable.err
    )
    assert "Traceback" not in unreachable.err

    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert await _wait_for_health(f"http://127.0.0.1:{port}/healthz", process) == 200
    finally:
        # How it stops is not this test's business (and a SIGTERM can come before `serve` has
        # put its handlers in place): only that it listened where it was told.
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.communicate(), timeout=30)
