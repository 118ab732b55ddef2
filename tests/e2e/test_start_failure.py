"""A start that fails part-way stops what it had started: no port left listening, no worker
left claiming, no connection left open."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.app import start
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from tests.e2e.conftest import e2e_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _listening(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_a_start_that_fails_after_the_http_server_is_up_closes_it_again(
    fake_slack: FakeSlack, fake_model: FakeModel, tmp_path: Path
) -> None:
    port = _free_port()
    settings = e2e_settings(
        # A database with no schema: the worker's first lease sweep fails, after the HTTP
        # server is already listening.
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        fake_slack=fake_slack,
        fake_model=fake_model,
        PMTEAM_PORT=port,
    )

    with pytest.raises(OperationalError):
        await start(settings, migrate=False)

    assert not await _listening(port)
    workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("pmteam-worker-")]
    assert workers == []
