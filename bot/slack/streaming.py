"""An answer streamed into a Slack thread: safe text, split past Slack's limits, with a fallback."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.fence import ensure_held
from bot.core.mrkdwn import (
    DEFAULT_PART_LIMIT,
    fence_open_after,
    safe_model_markdown,
    unfinished_link_start,
)

# Errors that mean "this workspace or surface can't stream": fall back to post + update.
_NO_STREAMING = frozenset(
    {
        "unknown_method",
        "not_allowed_token_type",
        "method_deprecated",
        "feature_not_enabled",
        "not_supported",
        "invalid_arguments",
        "streaming_not_supported",
        "missing_scope",
    }
)
SOFT_PART_LIMIT = 9_000  # past this, a part ends at the next paragraph break
LINK_REACH = 600  # a flush holds back an unfinished link at most this far (see _cut)


@dataclass
class AnswerStream:
    """Feed model text deltas with `write`; `finish` closes the last message.

    Text is flushed at word boundaries (so a mention split across deltas is still caught by
    the neutraliser) and never inside a link still being written (so it is shown as its URL
    whole, not as two halves of markup), at most every `flush_interval` seconds, and parts
    roll over to a new message before Slack's 12,000-character limit, closing and reopening
    an open code fence.
    """

    client: AsyncWebClient
    channel: str
    thread_ts: str
    team_id: str
    user_id: str
    flush_interval: float = 0.7
    update_interval: float = 1.2  # fallback chat.update pacing (Slack allows ~1/s per channel)
    part_limit: int = DEFAULT_PART_LIMIT
    clock: Callable[[], float] = time.monotonic
    # Called with the first message's ts as soon as Slack names it (before any more text).
    on_started: Callable[[str], Awaitable[None]] | None = None
    message_ts: list[str] = field(default_factory=list)
    text: str = ""  # everything written, as the model wrote it
    _pending: str = ""
    _part: str = ""  # the current message's text as sent (made safe)
    _streaming: bool = True
    _open: bool = False  # a message is in progress
    _last_flush: float = 0.0
    _fence: str | None = None
    api_calls: int = 0

    broken: bool = False  # Slack refused a write: the answer will be posted another way

    async def write(self, delta: str) -> None:
        self.text += delta
        self._pending += delta
        if self.broken:
            return
        if self.clock() - self._last_flush >= self._interval() or len(self._pending) > 2000:
            await self._guarded(self._flush(final=False))

    async def note(self, line: str) -> None:
        """A progress line in the answer (e.g. research under way), on its own paragraph."""
        if self.broken:
            return
        # A progress line is not worth failing the turn over: the answer will say it all.
        with contextlib.suppress(SlackApiError):
            await self._guarded(self._note(line))

    async def abandon(self) -> None:
        """After a broken stream: close the partial message with a pointer to the full answer
        that follows, instead of leaving it open (best effort)."""
        if not (self._open and self._streaming and self.message_ts):
            return
        with contextlib.suppress(SlackApiError):
            await self.client.chat_stopStream(
                channel=self.channel,
                ts=self.message_ts[-1],
                markdown_text="\n\n_(the live answer broke off; the full answer follows)_",
            )
            self.api_calls += 1
        self._open = False

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except SlackApiError:
            self.broken = True
            raise

    async def _note(self, line: str) -> None:
        await self._flush(final=True)
        prefix = "" if not self._part or self._part.endswith("\n\n") else "\n\n"
        self._pending = f"{prefix}_{line}_\n\n"
        self.text += self._pending
        await self._flush(final=True)

    async def finish(
        self, *, blocks: list[dict[str, Any]] | None = None, metadata: dict[str, Any] | None = None
    ) -> list[str]:
        await self._flush(final=True)
        if not self._open and not self.message_ts:
            await self._send("_(no answer text)_")
        await self._close(blocks=blocks, metadata=metadata)
        return self.message_ts

    def _interval(self) -> float:
        return self.flush_interval if self._streaming else self.update_interval

    async def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        cut = self._cut(final=final)
        # Room left in this message (less the few characters a closing fence may need).
        room = self.part_limit - len(self._part) - 5
        if self._fence is None and (len(self._part) > SOFT_PART_LIMIT or cut > room):
            # End the message at a paragraph break that still fits in it, not wherever the
            # hard limit falls (which would cut a paragraph, or a word, in two).
            paragraph = self._pending.rfind("\n\n", 0, max(min(cut, room), 0))
            if paragraph > 0:
                cut = paragraph + 2
                await self._send(self._pending[:cut])
                self._pending = self._pending[cut:]
                await self._rollover()
                cut = self._cut(final=final)
        if cut <= 0:
            return
        chunk, self._pending = self._pending[:cut], self._pending[cut:]
        await self._send(chunk)

    def _cut(self, *, final: bool) -> int:
        """How much pending text to send now: all of it at the end; else up to the last word
        boundary, but not into a link the next deltas may finish. Each piece is made safe on
        its own, so a link cut in two would arrive as broken markup (defused, but unreadable)
        instead of as its URL."""
        if final:
            return len(self._pending)
        cut = _last_boundary(self._pending)
        begun = unfinished_link_start(self._pending[:cut], context=self._part, reach=LINK_REACH)
        return cut if begun is None else _last_boundary(self._pending[:begun])

    async def _send(self, raw: str) -> None:
        # Made safe in the light of what this message already shows (it decides what is code),
        # and of what may follow (a note, or the next delta, may go on with the same line).
        chunk = safe_model_markdown(raw, context=self._part, partial=True)
        while len(self._part) + len(chunk) > self.part_limit:
            head, safe_head = self._head(raw)
            if safe_head:
                await self._emit(safe_head)
            raw = raw[len(head) :]
            await self._rollover()
            chunk = safe_model_markdown(raw, context=self._part, partial=True)
        if chunk:
            await self._emit(chunk)
        self._last_flush = self.clock()

    def _head(self, raw: str) -> tuple[str, str]:
        """The start of `raw` that still fits in this message, and that start made safe."""
        room = self.part_limit - len(self._part) - 5
        while room > 0:
            head = raw[:room]
            # No paragraph break fits: end at a line break, else between words, and before a
            # link that would otherwise straddle two messages.
            newline = head.rfind("\n")
            space = head.rfind(" ")
            if newline > room // 2:
                head = head[: newline + 1]
            elif space > room // 2:
                head = head[: space + 1]
            begun = unfinished_link_start(head, context=self._part, reach=LINK_REACH)
            if begun is not None and (begun > room // 2 or room < self.part_limit // 2):
                head = head[:begun]  # a message over half full may as well end early
            safe_head = safe_model_markdown(head, context=self._part, partial=True)
            if len(safe_head) <= room:
                return head, safe_head
            room -= len(safe_head) - room  # made longer (a word joiner or two): take less
        return "", ""

    async def _emit(self, chunk: str) -> None:
        ensure_held()  # work whose lease ran out writes nothing more
        self._fence = fence_open_after(chunk, self._fence)
        self._part += chunk
        if self._streaming:
            try:
                if not self._open:
                    response = await self.client.chat_startStream(
                        channel=self.channel,
                        thread_ts=self.thread_ts,
                        recipient_team_id=self.team_id,
                        recipient_user_id=self.user_id,
                        markdown_text=self._part,
                    )
                    self.message_ts.append(str(response["ts"]))
                    self._open = True
                    if self.on_started is not None and len(self.message_ts) == 1:
                        await self.on_started(self.message_ts[0])
                else:
                    await self.client.chat_appendStream(
                        channel=self.channel, ts=self.message_ts[-1], markdown_text=chunk
                    )
                self.api_calls += 1
                return
            except SlackApiError as exc:
                if exc.response.get("error") not in _NO_STREAMING or self._open:
                    raise
                self._streaming = False
        if not self._open:
            response = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, markdown_text=self._part
            )
            self.message_ts.append(str(response["ts"]))
            self._open = True
        else:
            await self.client.chat_update(
                channel=self.channel, ts=self.message_ts[-1], markdown_text=self._part
            )
        self.api_calls += 1

    async def _rollover(self) -> None:
        fence = self._fence
        if fence is not None:
            await self._emit("\n```")
        await self._close(blocks=None, metadata=None)
        self._part = ""
        self._fence = None
        if fence is not None:
            await self._emit(fence + "\n")

    async def _close(
        self, *, blocks: list[dict[str, Any]] | None, metadata: dict[str, Any] | None
    ) -> None:
        ensure_held()
        if not self._open:
            return
        if self._streaming:
            kwargs: dict[str, Any] = {"channel": self.channel, "ts": self.message_ts[-1]}
            if blocks:
                kwargs["blocks"] = blocks
            if metadata:
                kwargs["metadata"] = metadata
            await self.client.chat_stopStream(**kwargs)
            self.api_calls += 1
        elif blocks or metadata:
            kwargs = {"channel": self.channel, "ts": self.message_ts[-1]}
            kwargs["blocks"] = [{"type": "markdown", "text": self._part}, *(blocks or [])]
            kwargs["text"] = self._part[:3000]
            if metadata:
                kwargs["metadata"] = metadata
            await self.client.chat_update(**kwargs)
            self.api_calls += 1
        self._open = False


def _last_boundary(text: str) -> int:
    """Flush up to the last whitespace, so no word (or mention) is cut in two."""
    return max(text.rfind(" "), text.rfind("\n")) + 1
