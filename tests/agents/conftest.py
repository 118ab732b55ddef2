"""Fixtures for the agents: the fake Anthropic server over real HTTP, and a task to work on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from anthropic import AsyncAnthropic
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.config import AgentSettings
from agents.ledger import StorageLedger
from agents.llm import ModelClient, TurnRef
from sandbox.model import FakeModel
from storage.intake import record_intake


@pytest_asyncio.fixture
async def anthropic_client(fake_model: FakeModel) -> AsyncIterator[AsyncAnthropic]:
    client = AsyncAnthropic(base_url=fake_model.base_url, api_key="test-key", max_retries=2)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def settings() -> AgentSettings:
    return AgentSettings()


@pytest.fixture
def model(anthropic_client: AsyncAnthropic, settings: AgentSettings) -> ModelClient:
    """A model client with no ledger, for tests about the calls themselves."""
    return ModelClient(anthropic_client, max_retries=settings.max_retries, timeout_s=30)


@pytest.fixture
def ledger(sessions: async_sessionmaker[AsyncSession]) -> StorageLedger:
    return StorageLedger(sessions)


@pytest.fixture
def ledgered_model(
    anthropic_client: AsyncAnthropic, ledger: StorageLedger, settings: AgentSettings
) -> ModelClient:
    return ModelClient(
        anthropic_client, usage_sink=ledger, max_retries=settings.max_retries, timeout_s=30
    )


@pytest_asyncio.fixture
async def turn_ref(sessions: async_sessionmaker[AsyncSession]) -> TurnRef:
    """A real task and its first turn, so ledger rows can point at them."""
    async with sessions.begin() as session:
        intake = await record_intake(
            session=session,
            team_id="T1",
            channel_id="C1",
            thread_ts="1700000000.000100",
            message_ts="1700000000.000100",
            user_id="U1",
            text="Design the orders API",
        )
        return TurnRef(task_id=intake.task.id, turn_id=intake.turn.id)
