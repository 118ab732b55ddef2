"""The 👀 on a message pmteam has taken: sent after the ack, at a pace Slack accepts.

`reactions.add` is a Tier 3 Web API method: Slack allows about 50 calls a minute per
workspace, with short bursts. A burst of mentions that each fired a reaction at once would
meet 429s, pile up retries, and spend the event loop's time when it should be acking. So the
marks wait in a queue and leave through a token bucket: the first `burst` go at once, then
`rate` a second. A mark still waiting when its turn finishes is dropped (`settle`), so a late
👀 never lands beside the ✅.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = structlog.get_logger("pmteam")

SEEN_REACTION = "eyes"
THINKING_STATUS = "is thinking…"
TIER_3_PER_MINUTE = 50

MessageKey = tuple[str, str]  # (channel, ts)


@dataclass(frozen=True)
class Mark:
    channel_id: str
    ts: str
    thread_ts: str
    assistant: bool  # an assistant thread also gets the "is thinking…" status


class SeenMarks:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        rate: float = TIER_3_PER_MINUTE / 60,
        burst: int = 20,
        max_waiting: int = 1000,
    ) -> None:
        self.client = client
        self.rate = rate
        self.burst = burst
        self.max_waiting = max_waiting
        self._waiting: OrderedDict[MessageKey, Mark] = OrderedDict()
        self._sending: dict[MessageKey, asyncio.Task[None]] = {}
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.sent = 0
        self.dropped = 0
        self._closed = False

    def mark(self, mark: Mark) -> None:
        """Queue the mark; never blocks (this runs before the ack)."""
        if self._closed:
            return  # shutting down: the turn's own reaction swap will mark the message
        key = (mark.channel_id, mark.ts)
        if key in self._waiting or key in self._sending:
            return
        if len(self._waiting) >= self.max_waiting:
            self._waiting.popitem(last=False)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("too many messages waiting for their 👀; skipping the oldest")
        self._waiting[key] = mark
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name="pmteam-seen-marks")

    async def settle(self, channel_id: str, ts: str) -> None:
        """The turn is finished: drop its mark if it hasn't gone yet, or let it land first, so
        the reaction swap that follows removes it."""
        key = (channel_id, ts)
        self._waiting.pop(key, None)
        sending = self._sending.get(key)
        if sending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(sending)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def close(self) -> None:
        """Stop sending; marks still waiting are dropped (their turns will swap the reaction)."""
        self._closed = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._sending:
            await asyncio.gather(*self._sending.values(), return_exceptions=True)
        self._waiting.clear()

    async def _send_loop(self) -> None:
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._take_token()
            if not self._waiting:
                continue  # settled while we waited for the token
            key, mark = self._waiting.popitem(last=False)
            self._sending[key] = asyncio.create_task(self._send(key, mark), name="pmteam-seen")

    async def _take_token(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)

    async def _send(self, key: MessageKey, mark: Mark) -> None:
        try:
            await self._call(mark)
        finally:
            self._sending.pop(key, None)

    async def _call(self, mark: Mark) -> None:
        await _courtesy(
            "could not add the seen reaction",
            self.client.reactions_add(
                channel=mark.channel_id, timestamp=mark.ts, name=SEEN_REACTION
            ),
        )
        self.sent += 1
        if mark.assistant:
            await _courtesy(
                "could not set the assistant status",
                self.client.assistant_threads_setStatus(
                    channel_id=mark.channel_id, thread_ts=mark.thread_ts, status=THINKING_STATUS
                ),
            )


async def _courtesy(failure: str, call: Awaitable[object]) -> None:
    """A Slack call the turn doesn't depend on: a failure is logged, never raised."""
    try:
        await call
    except SlackApiError as exc:
        if exc.response.get("error") != "already_reacted":
            log.warning(failure, error=exc.response.get("error"))
    except Exception as exc:  # a network failure: the turn goes on without it
        log.warning(failure, error=exc.__class__.__name__)
