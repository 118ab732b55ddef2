"""Posting to Slack exactly once per (turn, kind): recorded in the DB and in message metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.fence import ensure_held
from storage.records import find_post, record_post

METADATA_EVENT_TYPE = "pmteam_post"
POST_ATTEMPTS = 3  # a post whose answer is lost is looked for, then tried again, this often
PAGE_SIZE = 200  # Slack's largest page of conversations.replies / .history
# Without a known age, a channel post is looked for among the newest pages only.
CHANNEL_PAGES = 3


def post_key(turn_id: int, kind: str) -> str:
    return f"{turn_id}:{kind}"


def card_key(task_id: int) -> str:
    """The key of a task's one card in the coordination channel."""
    return f"card:{task_id}"


def post_metadata(key: str, *, installation: str, **extra: Any) -> dict[str, Any]:
    """The metadata that makes a post findable again: its key, and which installation made
    it (a key alone, e.g. "1:report", would match another installation's post)."""
    payload = {"key": key, "installation": installation, **extra}
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": payload}


def carries_key(message: dict[str, Any], key: str, *, installation: str) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return bool(
        metadata.get("event_type") == METADATA_EVENT_TYPE
        and payload.get("key") == key
        and payload.get("installation", "") == installation
    )


def slack_ts(moment: datetime) -> str:
    """A moment as Slack's `oldest`/`latest` bound, a minute early for clock differences."""
    return f"{moment.timestamp() - 60:.6f}"


async def messages(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str | None = None,
    oldest: str | None = None,
    with_metadata: bool = False,
    max_pages: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """A thread's replies (`thread_ts`) or a channel's history, page after page: a long thread
    has more than one page, and what is looked for may be on any of them."""
    cursor: str | None = None
    pages = 0
    while max_pages is None or pages < max_pages:
        kwargs: dict[str, Any] = {"channel": channel, "limit": PAGE_SIZE}
        if cursor:
            kwargs["cursor"] = cursor
        if oldest:
            kwargs["oldest"] = oldest
        if with_metadata:
            kwargs["include_all_metadata"] = True
        if thread_ts:
            response = await client.conversations_replies(ts=thread_ts, **kwargs)
        else:
            response = await client.conversations_history(**kwargs)
        pages += 1
        for message in response.get("messages") or []:
            yield message
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return


async def find_keyed_message(
    client: AsyncWebClient,
    *,
    key: str,
    installation: str,
    channel: str,
    thread_ts: str | None = None,
    oldest: str | None = None,
    max_pages: int | None = None,
) -> str | None:
    """The ts of the message whose metadata carries `key`: a post an earlier attempt made but
    could not record. Slack's errors are the caller's to handle."""
    async for message in messages(
        client,
        channel=channel,
        thread_ts=thread_ts,
        oldest=oldest,
        with_metadata=True,
        max_pages=max_pages,
    ):
        if carries_key(message, key, installation=installation):
            return str(message["ts"])
    return None


@dataclass(frozen=True)
class Found:
    """A post made before: its ts, and whether the database knew of it (False: it was found
    in Slack, posted by an earlier attempt that died before recording it)."""

    ts: str
    recorded: bool


@dataclass
class Poster:
    """Posts with an idempotency key. A retried turn (attempt > 0) also looks in Slack itself,
    for the case where the process died after posting but before recording the post."""

    client: AsyncWebClient
    sessions: async_sessionmaker[AsyncSession]
    installation: str = ""

    def metadata(self, key: str) -> dict[str, Any]:
        return post_metadata(key, installation=self.installation)

    async def already_posted(
        self,
        *,
        key: str,
        kind: str,
        turn_id: int | None,
        channel: str,
        thread_ts: str | None,
        look_in_slack: bool,
        since: datetime | None = None,
    ) -> Found | None:
        """The post with this key: from the database, or else (`look_in_slack`, when an
        earlier attempt may have posted it and died before recording it) from Slack, and then
        recorded, so the next lookup, by this turn or a later one, finds it here."""
        async with self.sessions() as session:
            post = await find_post(session=session, key=key)
        if post is not None:
            return Found(ts=post.ts or "", recorded=True)
        if not look_in_slack:
            return None
        ts = await self.find_in_slack(key=key, channel=channel, thread_ts=thread_ts, since=since)
        if ts is None:
            return None
        await self.record(key=key, kind=kind, channel=channel, ts=ts, turn_id=turn_id)
        return Found(ts=ts, recorded=False)

    async def find_in_slack(
        self, *, key: str, channel: str, thread_ts: str | None, since: datetime | None = None
    ) -> str | None:
        """The post with this key in the thread (every page), or in the channel since `since`
        (every page back to then; without it, the newest few pages)."""
        try:
            return await find_keyed_message(
                self.client,
                key=key,
                installation=self.installation,
                channel=channel,
                thread_ts=thread_ts,
                oldest=slack_ts(since) if since is not None and not thread_ts else None,
                max_pages=None if thread_ts or since is not None else CHANNEL_PAGES,
            )
        except SlackApiError:
            return None

    async def record(
        self, *, key: str, kind: str, channel: str, ts: str | None, turn_id: int | None
    ) -> None:
        async with self.sessions.begin() as session:
            await record_post(
                session=session, key=key, kind=kind, channel_id=channel, ts=ts, turn_id=turn_id
            )

    async def post_once(
        self,
        *,
        turn_id: int,
        kind: str,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        retried: bool = False,
        since: datetime | None = None,
    ) -> str:
        """Post unless this (turn, kind) was posted before; returns the message ts either way."""
        return await self.post_keyed(
            key=post_key(turn_id, kind),
            kind=kind,
            turn_id=turn_id,
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            retried=retried,
            since=since,
        )

    async def post_keyed(
        self,
        *,
        key: str,
        kind: str,
        turn_id: int | None,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        retried: bool = False,
        since: datetime | None = None,
    ) -> str:
        """Post unless a message with this key was posted before; its ts either way. `since`
        (when the turn or task began) bounds how far back a channel is searched. Work whose
        lease ran out posts nothing (`Fenced`)."""
        ensure_held()
        existing = await self.already_posted(
            key=key,
            kind=kind,
            turn_id=turn_id,
            channel=channel,
            thread_ts=thread_ts,
            look_in_slack=retried,
            since=since,
        )
        if existing is not None:
            return existing.ts
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "metadata": self.metadata(key),
            "unfurl_links": False,
        }
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        for attempt in range(POST_ATTEMPTS):
            try:
                response = await self.client.chat_postMessage(**kwargs)
                break
            except (aiohttp.ClientError, TimeoutError, SlackApiError) as exc:
                if isinstance(exc, SlackApiError) and exc.response.status_code < 500:
                    raise  # Slack answered, and said no: nothing was posted
                # The answer was lost (a reset, a timeout, a 5xx): Slack may have posted it.
                # Look for the key before posting again, every time.
                found = await self.find_in_slack(
                    key=key, channel=channel, thread_ts=thread_ts, since=since
                )
                if found is not None:
                    await self.record(
                        key=key, kind=kind, channel=channel, ts=found, turn_id=turn_id
                    )
                    return found
                if attempt == POST_ATTEMPTS - 1:
                    raise
        ts = str(response["ts"])
        await self.record(key=key, kind=kind, channel=channel, ts=ts, turn_id=turn_id)
        return ts
