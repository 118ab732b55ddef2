"""`pmteam sandbox`: one command, no settings, the whole product on loopback; Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cli import build_parser
from bot.cli.sandbox import Sandbox, start_sandbox, stop_sandbox
from bot.slack.blocks.report import REPORT_HEADER
from sandbox.model import FakeModel

# The command must work with none of pmteam's settings in the environment.
SETTINGS_PREFIXES = ("SLACK_", "PMTEAM_", "ANTHROPIC_")
REPORT_TIMEOUT = 45.0


def _clean_environment() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    return {**clean, "PYTHONUNBUFFERED": "1"}


def _has_report(state: dict[str, Any]) -> bool:
    return any(
        block.get("type") == "header" and block["text"]["text"] == REPORT_HEADER
        for message in state["messages"]
        for block in message.get("blocks") or []
    )


async def _wait_for_reply(http: aiohttp.ClientSession, url: str, ts: str) -> dict[str, Any]:
    """The first message pmteam posts in the thread (its answer, as it starts streaming)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPORT_TIMEOUT
    query = {"channel": "C0ENG", "thread": ts}
    while True:
        async with http.get(f"{url}sandbox/state", params=query) as response:
            state: dict[str, Any] = await response.json()
        replies = state["thread"]["messages"][1:]
        if replies:
            reply: dict[str, Any] = replies[0]
            return reply
        assert loop.time() < deadline, "pmteam never answered in the thread"
        await asyncio.sleep(0.1)


def test_the_command_defaults_to_port_8080_and_http_mode() -> None:
    args = build_parser().parse_args(["sandbox"])

    assert (args.port, args.socket_mode, args.reset) == (8080, False, False)
    assert build_parser().parse_args(["sandbox", "--socket-mode", "--port", "0"]).socket_mode


async def test_sandbox_command_answers_a_mention_and_stops_cleanly_on_ctrl_c_mid_answer(
    tmp_path: Path,
) -> None:
    # --reset starts over: a leftover file that is no database must not matter.
    (tmp_path / "pmteam-sandbox.db").write_text("not a database")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sandbox",
        "--port",
        "0",
        "--reset",
        cwd=tmp_path,
        env=_clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "pmteam sandbox exited before it was ready:\n" + "".join(output)
            output.append(line)
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as page:
                assert page.status == 200 and "pmteam sandbox" in await page.text()
            async with http.get(f"{url}sandbox/state") as response:
                state = await response.json()
            assert state["model"]["offline"] is True
            assert state["connection"] == "http"
            mention = {
                "as": "U0ALICE",
                "channel": "C0ENG",
                "text": "@pmteam design a rate limiter for our public API",
            }
            async with http.post(f"{url}sandbox/post", json=mention) as response:
                posted = await response.json()
            assert posted["deliveries"][0]["acked"]
            reply = await _wait_for_reply(http, url, posted["ts"])
            assert reply["author"]["name"] == "pmteam"

        # Ctrl-C while the answer is being worked on: everything still stops cleanly.
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
        output.append(rest.decode())
        assert process.returncode == 0, "".join(output)
        assert "sandbox stopped" in output[-1]
        assert "Traceback" not in "".join(output)
        assert (tmp_path / "pmteam-sandbox.db").read_bytes().startswith(b"SQLite format 3")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_a_busy_port_is_reported_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bot", "sandbox", "--port", str(port)],
            cwd=tmp_path,
            env=_clean_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "--port" in result.stderr


@pytest.fixture
async def socket_sandbox(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Sandbox]:
    database = tmp_path / "sandbox.db"
    shutil.copy(sqlite_template, database)
    started = await start_sandbox(
        port=0,
        socket_mode=True,
        database_url=f"sqlite+aiosqlite:///{database}",
        stream_delay=0.0,
        migrate=False,
    )
    yield started
    await stop_sandbox(started)


async def test_socket_mode_sandbox_delivers_over_the_websocket(socket_sandbox: Sandbox) -> None:
    slack = socket_sandbox.slack
    assert slack.event_target is None
    assert len(slack.socket_mode.connections) == 1
    assert socket_sandbox.page.state({})["connection"] == "socket"

    posted = await socket_sandbox.page.post(
        {"as": "U0BOB", "channel": "C0ENG", "text": "@pmteam review our retry policy"}
    )

    assert posted["deliveries"][0]["transport"] == "socket"
    assert posted["deliveries"][0]["acked"]
    [question] = slack.workspace.messages("C0ENG")
    assert question.text == "<@U0PMTEAM> review our retry policy"
    # Finished: the ✅ reaction comes last, after the answer, its summary and the card.
    await slack.wait_for(lambda: "white_check_mark" in question.reactions, 30)
    assert _has_report(socket_sandbox.page.state({"channel": "C0PM"}))
    assert question.reply_count == 2  # the answer and its summary line


async def test_with_an_api_key_the_sandbox_uses_that_model_and_says_so(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for Claude: it refuses any other key, at the base URL the SDK is pointed at.
    claude = FakeModel(api_key="sk-ant-api03-sandbox-test")
    await claude.start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", claude.base_url)
    database = tmp_path / "sandbox.db"
    shutil.copy(sqlite_template, database)
    started = await start_sandbox(
        port=0,
        database_url=f"sqlite+aiosqlite:///{database}",
        anthropic_api_key="sk-ant-api03-sandbox-test",
        migrate=False,
    )
    try:
        assert started.model is None and not started.offline
        assert started.page.state({})["model"]["offline"] is False
        posted = await started.page.post(
            {"as": "U0ALICE", "channel": "C0ENG", "text": "@pmteam size our Redis cluster"}
        )
        [question] = started.slack.workspace.messages("C0ENG")
        await started.slack.wait_for(lambda: "white_check_mark" in question.reactions, 30)
    finally:
        await stop_sandbox(started)
        await claude.stop()

    assert posted["deliveries"][0]["acked"]
    asked = [r for r in claude.requests if r.path == "/v1/messages"]
    assert asked, "the key's model was never asked"
    keys = {r.headers.get("x-api-key") or r.headers["authorization"][7:] for r in asked}
    assert keys == {"sk-ant-api03-sandbox-test"}
