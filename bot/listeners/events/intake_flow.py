"""The shared path of every intake listener: access checks, durable record, then after-ack work."""

from __future__ import annotations

from bot.intake import IncomingMessage, check_access, claim_reply
from bot.runtime import Runtime, log
from bot.seen import Mark


async def take_message(runtime: Runtime, message: IncomingMessage) -> None:
    """Runs before the ack: only the DB write. Slack calls go to background tasks."""
    settings = runtime.settings
    refusal = check_access(
        message,
        allowed_channels=settings.allowed_channels,
        allowed_users=settings.allowed_users,
    )
    if refusal is None and not runtime.rate_limiter.allow(message.user_id, message.ts):
        runtime.metrics.inc("pmteam_intake_total", outcome="rate_limited")
        log.warning("rate limited", user=message.user_id, ts=message.ts)
        if not await claim_reply(sessions=runtime.sessions, message=message):
            return
        runtime.spawn(
            _reply(
                runtime,
                message,
                "You've sent me a lot of tasks in the last few minutes; I'm working through "
                "them. Please wait a little and mention me again.",
            ),
            name="pmteam-rate-limited",
        )
        return
    if refusal is not None:
        runtime.metrics.inc("pmteam_intake_total", outcome="refused")
        if await claim_reply(sessions=runtime.sessions, message=message):
            runtime.spawn(_reply(runtime, message, refusal.text), name="pmteam-refusal")
        return
    intake = await runtime.intake_writer.submit(message)
    if not intake.created:
        runtime.metrics.inc("pmteam_intake_total", outcome="duplicate")
        log.info("duplicate delivery ignored", ts=message.ts, task=intake.task_ref)
        return
    runtime.metrics.inc("pmteam_intake_total", outcome="queued")
    log.info(
        "turn queued",
        task=intake.task_ref,
        turn=intake.turn_id,
        seq=intake.seq,
        source=message.source,
    )
    # Both only queue work for after the ack: the claim, and the 👀 (paced to Slack's limits).
    if runtime.wake_worker is not None:
        runtime.wake_worker()
    runtime.seen.mark(
        Mark(
            channel_id=message.channel_id,
            ts=message.ts,
            thread_ts=message.thread_ts,
            assistant=message.source == "assistant",
        )
    )


async def _reply(runtime: Runtime, message: IncomingMessage, text: str) -> None:
    await runtime.client.chat_postMessage(
        channel=message.channel_id, thread_ts=message.thread_ts, text=text
    )
