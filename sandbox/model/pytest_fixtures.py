"""Pytest fixture `fake_model`: a FakeModel on a free loopback port, stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from sandbox.model.server import FakeModel


@pytest_asyncio.fixture
async def fake_model() -> AsyncIterator[FakeModel]:
    fake = FakeModel()
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()
