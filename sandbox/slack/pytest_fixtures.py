"""Pytest fixture `fake_slack`: a seeded FakeSlack on a free loopback port, stopped after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from sandbox.slack.server import FakeSlack


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    # Slack's 3 s ack deadline, but retries follow each other quickly so a test stays short.
    fake = FakeSlack(retry_delays=(0.0, 0.05, 0.1))
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()
