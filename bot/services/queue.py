"""The turn queue as the worker sees it: claims, heartbeats, hand-backs and the lease sweep."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from bot.services.deps import Sessions
from storage.models import Turn
from storage.queue import (
    LeaseLost,
    claim_next_turn,
    expire_leases,
    heartbeat,
    queued_turn_count,
    release_turn,
)

log = structlog.get_logger("pmteam.worker")

FailedTurns = Callable[[Sequence[Turn]], Awaitable[None]]


@dataclass
class TurnQueue:
    sessions: Sessions
    # Turns that ran out of attempts in a sweep: told so in their threads.
    on_failed: FailedTurns | None = None

    async def claim(self, *, owner: str, lease_seconds: float) -> Turn | None:
        async with self.sessions.begin() as session:
            return await claim_next_turn(session=session, owner=owner, lease_seconds=lease_seconds)

    async def heartbeat(self, *, turn_id: int, owner: str, lease_seconds: float) -> bool:
        async with self.sessions.begin() as session:
            return await heartbeat(
                session=session, turn_id=turn_id, owner=owner, lease_seconds=lease_seconds
            )

    async def release(self, *, turn_id: int, owner: str) -> bool:
        """Hand a claimed turn back untouched; False when it was no longer ours to hand back."""
        try:
            async with self.sessions.begin() as session:
                await release_turn(session=session, turn_id=turn_id, owner=owner)
        except LeaseLost:
            return False
        return True

    async def depth(self) -> int:
        """Turns waiting for a worker, across every replica."""
        async with self.sessions() as session:
            return await queued_turn_count(session=session)

    async def sweep(self) -> int:
        """Expired leases back to the queue (or failed, after their last attempt); returns how
        many turns were queued again."""
        async with self.sessions.begin() as session:
            expired = await expire_leases(session=session)
        if expired.requeued or expired.failed:
            log.warning(
                "leases expired",
                requeued=[t.id for t in expired.requeued],
                failed=[t.id for t in expired.failed],
            )
        if expired.failed and self.on_failed is not None:
            await self.on_failed(expired.failed)
        return len(expired.requeued)
