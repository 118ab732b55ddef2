"""Channel conventions: a channel's standing context for the engineer, one row per channel."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert
from storage.models import ChannelConvention
from storage.types import utcnow

# What a channel's conventions may hold: a page of standing context, sent with every task.
MAX_CONVENTIONS_CHARS = 3_000


async def channel_conventions(
    *, session: AsyncSession, team_id: str, channel_id: str
) -> ChannelConvention | None:
    found = await session.exec(
        select(ChannelConvention).where(
            col(ChannelConvention.team_id) == team_id,
            col(ChannelConvention.channel_id) == channel_id,
        )
    )
    return found.first()


async def set_channel_conventions(
    *,
    session: AsyncSession,
    team_id: str,
    channel_id: str,
    text: str,
    user_id: str,
    now: datetime | None = None,
) -> None:
    """Write a channel's conventions (empty text removes them); the last writer wins."""
    text = text.strip()
    if not text:
        existing = await channel_conventions(
            session=session, team_id=team_id, channel_id=channel_id
        )
        if existing is not None:
            await session.delete(existing)
        return
    upsert = insert(session, ChannelConvention).values(
        team_id=team_id,
        channel_id=channel_id,
        text=text[:MAX_CONVENTIONS_CHARS],
        updated_by=user_id,
        updated_at=now or utcnow(),
    )
    await session.exec(
        upsert.on_conflict_do_update(
            index_elements=[col(ChannelConvention.team_id), col(ChannelConvention.channel_id)],
            set_={
                "text": upsert.excluded.text,
                "updated_by": upsert.excluded.updated_by,
                "updated_at": upsert.excluded.updated_at,
            },
        )
    )


async def channels_with_conventions(
    *, session: AsyncSession, limit: int = 20
) -> list[ChannelConvention]:
    """The channels that have conventions, most recently edited first."""
    found = await session.exec(
        select(ChannelConvention).order_by(col(ChannelConvention.updated_at).desc()).limit(limit)
    )
    return list(found.all())
