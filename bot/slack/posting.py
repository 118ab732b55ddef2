"""Posting to Slack exactly once per (turn, kind): recorded in the DB and in message metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.records import find_post, record_post

METADATA_EVENT_TYPE = "pmteam_post"


def post_key(turn_id: int, kind: str) -> str:
    return f"{turn_id}:{kind}"


def post_metadata(key: str, **extra: Any) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key, **extra}}


@dataclass
class Poster:
    """Posts with an idempotency key. A retried turn (attempt > 0) also looks in Slack itself,
    for the case where the process died after posting but before recording the post."""

    client: AsyncWebClient
    sessions: async_sessionmaker[AsyncSession]

    async def already_posted(
        self, *, key: str, channel: str, thread_ts: str | None, look_in_slack: bool
    ) -> str | None:
        async with self.sessions() as session:
            post = await find_post(session=session, key=key)
        if post is not None:
            return post.ts or ""
        if look_in_slack:
            return await self.find_in_slack(key=key, channel=channel, thread_ts=thread_ts)
        return None

    async def find_in_slack(self, *, key: str, channel: str, thread_ts: str | None) -> str | None:
        try:
            if thread_ts:
                response = await self.client.conversations_replies(
                    channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
                )
            else:
                response = await self.client.conversations_history(
                    channel=channel, include_all_metadata=True, limit=100
                )
        except SlackApiError:
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == METADATA_EVENT_TYPE and payload.get("key") == key:
                return str(message.get("ts"))
        return None

    async def record(
        self, *, key: str, kind: str, channel: str, ts: str | None, turn_id: int | None
    ) -> None:
        async with self.sessions() as session:
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
    ) -> str:
        """Post unless this (turn, kind) was posted before; returns the message ts either way."""
        key = post_key(turn_id, kind)
        existing = await self.already_posted(
            key=key, channel=channel, thread_ts=thread_ts, look_in_slack=retried
        )
        if existing is not None:
            return existing
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "metadata": post_metadata(key),
            "unfurl_links": False,
        }
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        response = await self.client.chat_postMessage(**kwargs)
        ts = str(response["ts"])
        await self.record(key=key, kind=kind, channel=channel, ts=ts, turn_id=turn_id)
        return ts
