"""The shared path of every intake listener: access checks, durable record, then after-ack work."""

from __future__ import annotations

from bot.services.deps import Deps, log
from bot.services.intake import IncomingMessage, check_access, claim_reply
from bot.slack.reactions import Mark


async def take_message(deps: Deps, message: IncomingMessage) -> None:
    """Runs before the ack: only the DB write. Slack calls go to background tasks."""
    settings = deps.settings
    refusal = check_access(
        message,
        allowed_channels=settings.allowed_channels,
        allowed_users=settings.allowed_users,
    )
    if refusal is None and not deps.rate_limiter.allow(message.user_id, message.ts):
        deps.metrics.inc("pmteam_intake_total", outcome="rate_limited")
        log.warning("rate limited", user=message.user_id, ts=message.ts)
        if not await claim_reply(sessions=deps.sessions, message=message):
            return
        deps.spawn(
            _reply(
                deps,
                message,
                "You've sent me a lot of tasks in the last few minutes; I'm working through "
                "them. Please wait a little and mention me again.",
            ),
            name="pmteam-rate-limited",
        )
        return
    if refusal is not None:
        deps.metrics.inc("pmteam_intake_total", outcome="refused")
        if await claim_reply(sessions=deps.sessions, message=message):
            deps.spawn(_reply(deps, message, refusal.text), name="pmteam-refusal")
        return
    intake = await deps.intake_writer.submit(message)
    if not intake.created:
        deps.metrics.inc("pmteam_intake_total", outcome="duplicate")
        log.info("duplicate delivery ignored", ts=message.ts, task=intake.task_ref)
        return
    deps.metrics.inc("pmteam_intake_total", outcome="queued")
    log.info(
        "turn queued",
        task=intake.task_ref,
        turn=intake.turn_id,
        seq=intake.seq,
        source=message.source,
    )
    # Both only queue work for after the ack: the claim, and the 👀 (paced to Slack's limits).
    if deps.wake_worker is not None:
        deps.wake_worker()
    deps.seen.mark(
        Mark(
            channel_id=message.channel_id,
            ts=message.ts,
            thread_ts=message.thread_ts,
            assistant=message.source == "assistant",
        )
    )


async def _reply(deps: Deps, message: IncomingMessage, text: str) -> None:
    await deps.client.chat_postMessage(
        channel=message.channel_id, thread_ts=message.thread_ts, text=text
    )
