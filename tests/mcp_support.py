"""The tests' MCP server (tests/mcp_server.py), started over stdio or as an HTTP process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import McpServerConfig

MCP_SERVER = Path(__file__).resolve().parent / "mcp_server.py"
TRACKER_TOKEN = "trk-test-token-0123456789abcdef"


def stdio_tracker_json(**env: str) -> dict[str, Any]:
    """The tracker as PMTEAM_MCP_SERVERS names a stdio command: `python tests/mcp_server.py`."""
    return {"command": sys.executable, "args": [str(MCP_SERVER)], "env": env}


def stdio_tracker(**env: str) -> McpServerConfig:
    return McpServerConfig.model_validate(stdio_tracker_json(**env))


def calls_made(calls_file: Path) -> list[dict[str, Any]]:
    """The calls that reached the tracker, as it recorded them."""
    if not calls_file.exists():
        return []
    return [json.loads(line) for line in calls_file.read_text().splitlines() if line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class HttpTracker:
    """The tracker over streamable HTTP, in its own process, requiring TRACKER_TOKEN."""

    port: int = 0
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> HttpTracker:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(MCP_SERVER),
            "--http",
            "--port",
            str(self.port),
            "--token",
            TRACKER_TOKEN,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line.startswith(b"listening on "), line
        self.port = int(line.split()[-1])
        return self

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


@contextlib.asynccontextmanager
async def http_tracker(port: int = 0) -> Any:
    tracker = await HttpTracker(port=port).start()
    try:
        yield tracker
    finally:
        await tracker.kill()
