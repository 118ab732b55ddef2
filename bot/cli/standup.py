"""`pmteam standup`: the scheduled standup if it is due, one now with --force, or a dry run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import IO, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import agent_settings_for, build_models, open_standup_runner
from bot.config import Settings
from bot.services.deps import Deps
from bot.services.standups import Outcome, StandupResult, StandupRunner
from bot.slack.blocks.standup import blocks_as_text
from bot.slack.client import BotIdentity
from bot.slack.reactions import SeenMarks
from storage.db import create_engine, session_factory


class NoSlack(AsyncWebClient):
    """The Web API client of a run without SLACK_BOT_TOKEN: every call is refused at once,
    the way Slack refuses a call with no token (`not_authed`), and nothing is sent."""

    async def api_call(self, api_method: str, *_args: Any, **_kwargs: Any) -> Any:
        raise SlackApiError(  # type: ignore[no-untyped-call]
            f"{api_method} was not called: SLACK_BOT_TOKEN is not set",
            {"ok": False, "error": "not_authed"},
        )


@contextlib.asynccontextmanager
async def open_database_standup_runner(settings: Settings) -> AsyncIterator[StandupRunner]:
    """A StandupRunner for `--dry-run` without SLACK_BOT_TOKEN: it reads the database (and
    asks the model for the narrative when ANTHROPIC_API_KEY is set) and never calls Slack,
    so the standup has no message links."""
    engine = create_engine(settings.database_url)
    client = NoSlack(base_url=settings.slack_api_url)
    deps = Deps(
        settings=settings,
        sessions=session_factory(engine),
        client=client,
        identity=BotIdentity(team_id="", bot_user_id="", bot_id=""),
        seen=SeenMarks(client),
    )
    models = build_models(settings, deps) if settings.anthropic_api_key is not None else None
    try:
        yield StandupRunner(
            deps=deps,
            model=models.client if models is not None else None,
            agent_settings=agent_settings_for(settings),
        )
    finally:
        if models is not None:
            await models.close()
        await deps.seen.close()
        await deps.drain()
        await engine.dispose()


def open_runner(
    settings: Settings, *, dry_run: bool
) -> contextlib.AbstractAsyncContextManager[StandupRunner]:
    """Slack is needed to post; a dry run without a bot token makes do with the database."""
    if dry_run and settings.slack_bot_token is None:
        return open_database_standup_runner(settings)
    return open_standup_runner(settings)


async def run_standup_command(
    settings: Settings, *, channel_id: str | None, dry_run: bool, force: bool, out: IO[str]
) -> int:
    """`pmteam standup`: the scheduled standup (if due), `--force` one now, `--dry-run` print."""
    async with open_runner(settings, dry_run=dry_run) as runner:
        channel = channel_id or settings.coordination_channel or None
        if dry_run:
            content = await runner.compose(channel)
            out.write(blocks_as_text(content.blocks) + "\n")
            return 0
        nowhere = channel is None if force else channel_id is None and not runner.schedules
        if nowhere:
            out.write(StandupResult(None, None, Outcome.NO_CHANNEL).describe() + "\n")
            return 2
        if force:
            assert channel is not None
            results = [await runner.post_now(channel)]
        elif channel_id is not None:
            single = await runner.run_channel(channel_id)
            results = [single] if single is not None else []
        else:
            results = await runner.run_due()
        if not results:
            out.write("No standup slot in the look-back window; nothing to do.\n")
        for result in results:
            line = result.describe().replace(f"<#{result.channel_id}>", str(result.channel_id))
            out.write(f"{result.period}: {line}\n")
        return 1 if any(r.outcome is Outcome.FAILED for r in results) else 0
