"""The App Home board: published when someone opens it, refreshed after each status change."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.services.deps import Deps, log
from bot.services.status import home_board, home_tasks
from bot.slack.blocks.handoffs import handoff_list_line
from bot.slack.blocks.home import HomeBoard, build_home_view
from bot.slack.blocks.report import ACTION_ACKNOWLEDGE, ACTION_REOPEN
from storage.handoffs import open_handoffs
from storage.records import recent_home_visitors, record_home_visit
from storage.types import utcnow

# Boards opened within this window are live: status changes republish them.
LIVE_HOME = timedelta(hours=1)
_PUBLISH_CONCURRENCY = 4


async def publish_home(
    deps: Deps,
    *,
    user_id: str,
    board: HomeBoard | None = None,
    notice: str | None = None,
) -> None:
    """Build and publish one person's board (`board`: the shared part, if already built)."""
    if board is None:
        board = await home_board(
            sessions=deps.sessions,
            timezone=deps.settings.timezone,
            daily_budget=deps.settings.daily_budget_usd,
        )
    mine = await home_tasks(sessions=deps.sessions, user_id=user_id)
    async with deps.sessions() as session:
        waiting = await open_handoffs(session=session, owner_id=user_id, viewer=user_id, limit=10)
    now, overdue_after = utcnow(), timedelta(days=deps.settings.handoff_nudge_days)
    view = build_home_view(
        board,
        mine,
        notice=notice,
        acknowledge_action=ACTION_ACKNOWLEDGE,
        reopen_action=ACTION_REOPEN,
        waiting=[
            handoff_list_line(h, t, now=now, overdue_after=overdue_after, owner=False)
            for h, t in waiting
        ],
    )
    try:
        await deps.client.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        log.warning("could not publish the App Home", user=user_id, error=exc.response.get("error"))


async def open_home(deps: Deps, *, user_id: str, team_id: str) -> None:
    """`app_home_opened`: remember the visit (so changes refresh it), then publish."""
    async with deps.sessions.begin() as session:
        await record_home_visit(session=session, user_id=user_id, team_id=team_id)
    await publish_home(deps, user_id=user_id)


async def refresh_homes(deps: Deps, *, include: Sequence[str] = ()) -> None:
    """Republish the board of everyone who opened it in the last hour (and of `include`)."""
    async with deps.sessions() as session:
        visitors = await recent_home_visitors(session=session, within=LIVE_HOME)
    users = list(dict.fromkeys([*(v.user_id for v in visitors), *include]))
    if not users:
        return
    board = await home_board(
        sessions=deps.sessions,
        timezone=deps.settings.timezone,
        daily_budget=deps.settings.daily_budget_usd,
    )
    limit = asyncio.Semaphore(_PUBLISH_CONCURRENCY)

    async def publish(user_id: str) -> None:
        async with limit:
            await publish_home(deps, user_id=user_id, board=board)

    await asyncio.gather(*(publish(user_id) for user_id in users))
    deps.metrics.inc("pmteam_home_refreshes_total", len(users))
