"""Real `pmteam run` processes for the multi-process tests: started, checked for health, stopped,
and their output kept for the failure message."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SETTINGS_PREFIXES = ("SLACK_", "PMTEAM_", "ANTHROPIC_")


def clean_environment() -> dict[str, str]:
    """This process's environment without any pmteam setting a developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    port: int
    output: list[str]
    reader: asyncio.Task[None]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def log(self) -> str:
        return "".join(self.output)


async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


async def start_replica(env: dict[str, str], cwd: Path) -> Replica:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1", "PMTEAM_HOST": "127.0.0.1", "PMTEAM_PORT": str(port)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    return Replica(process, port, output, asyncio.create_task(_read(process.stdout, output)))


async def wait_healthy(replica: Replica, timeout: float = START_TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    url = f"http://127.0.0.1:{replica.port}/healthz"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if replica.process.returncode is not None:
                await replica.reader
                pytest.fail(f"a replica exited {replica.process.returncode}:\n{replica.log()}")
            assert loop.time() < deadline, f"/healthz never answered:\n{replica.log()}"
            await asyncio.sleep(0.1)


async def stop_replica(replica: Replica) -> int:
    """SIGTERM (SIGCONT first, in case a test left it stopped), then SIGKILL if it lingers."""
    process = replica.process
    if process.returncode is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
    await replica.reader
    assert process.returncode is not None
    return process.returncode
