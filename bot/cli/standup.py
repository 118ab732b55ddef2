"""`pmteam standup`: the scheduled standup if it is due, one now with --force, or a dry run."""

from __future__ import annotations

from typing import IO

from bot.app import open_standup_runner
from bot.config import Settings
from bot.services.standups import Outcome, StandupResult
from bot.slack.blocks.standup import blocks_as_text


async def run_standup_command(
    settings: Settings, *, channel_id: str | None, dry_run: bool, force: bool, out: IO[str]
) -> int:
    """`pmteam standup`: the scheduled standup (if due), `--force` one now, `--dry-run` print."""
    async with open_standup_runner(settings) as runner:
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
