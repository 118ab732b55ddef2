"""Sessions on SQLite: a read waits for no writer and blocks none; a write locks at BEGIN."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_engine, session_factory
from storage.models import HomeVisit, Task
from storage.records import record_home_visit
from tests.storage.support import T0, ask

IMPATIENT_MS = 200  # a lock that is not free by then is held, not merely busy


@pytest.fixture
async def impatient(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """An SQLite engine whose connections give up on a held lock quickly instead of after
    the app's 15 s, so a lock held by mistake fails the test rather than stalling it."""
    engine = create_engine(sqlite_url)

    @event.listens_for(engine.sync_engine, "connect")
    def _impatient(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={IMPATIENT_MS}")
        cursor.close()

    yield engine
    await engine.dispose()


async def test_an_open_read_does_not_block_a_write(impatient: AsyncEngine) -> None:
    sessions = session_factory(impatient)
    async with sessions() as setup:
        await ask(setup)

    async with sessions() as reader:
        assert (await reader.exec(select(Task))).first() is not None
        assert reader.in_transaction()  # the read's transaction is still open
        async with sessions.begin() as writer:
            await record_home_visit(session=writer, user_id="U1", team_id="T1", now=T0)

    async with sessions() as fresh:
        assert [v.user_id for v in (await fresh.exec(select(HomeVisit))).all()] == ["U1"]


async def test_a_write_transaction_takes_the_write_lock_when_it_begins(
    impatient: AsyncEngine,
) -> None:
    # Taking it at BEGIN (IMMEDIATE) is what lets a transaction read and then write while
    # other connections write: a deferred one can fail at its first write, without waiting.
    sessions = session_factory(impatient)
    async with sessions.begin():
        with pytest.raises(OperationalError, match="database is locked"):
            async with impatient.begin() as other:
                await other.exec_driver_sql("SELECT 1")


async def test_a_write_transaction_commits_on_exit_and_rolls_back_on_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await record_home_visit(session=session, user_id="U1", team_id="T1", now=T0)
    with pytest.raises(RuntimeError, match="undone"):
        async with sessions.begin() as session:
            await record_home_visit(session=session, user_id="U2", team_id="T1", now=T0)
            raise RuntimeError("undone")

    async with sessions() as session:
        visitors = (await session.exec(select(HomeVisit.user_id))).all()
    assert list(visitors) == ["U1"]
