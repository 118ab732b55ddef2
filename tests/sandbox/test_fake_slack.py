"""The fake Slack, driven only by the real slack_sdk clients and real HTTP/WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import FakeSlack

SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-sandbox-test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    # A short ack deadline and no backoff keep the retry tests quick.
    slack = FakeSlack(signing_secret=SECRET, ack_timeout=0.3, retry_delays=(0.0,))
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Responder = Callable[[Received, int], Awaitable[web.StreamResponse]]


async def _ok(received: Received, index: int) -> web.StreamResponse:
    return web.Response(status=200)


@dataclass
class Receiver:
    """A tiny app endpoint standing in for the bot's /slack/events."""

    respond: Responder = _ok
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(headers=dict(request.headers), body=await request.read())
        self.requests.append(received)
        return await self.respond(received, len(self.requests) - 1)

    def events(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.headers["Content-Type"] == "application/json"]


@pytest.fixture
async def receiver(fake: FakeSlack) -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", target.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    fake.set_event_target(target.url)
    yield target
    await runner.cleanup()


def _mention(text: str = "please look at the flaky deploy") -> str:
    return f"<@U0PMTEAM> {text}"


# --- Web API -------------------------------------------------------------------------------------


async def test_auth_test_names_the_bot_and_lists_scopes(client: AsyncWebClient) -> None:
    response = await client.auth_test()

    assert response["user_id"] == "U0PMTEAM"
    assert response["bot_id"] == "B0PMTEAM"
    assert response["team_id"] == "T0SANDBOX"
    assert "chat:write" in response.headers["x-oauth-scopes"].split(",")


async def test_scopes_are_configurable() -> None:
    async with FakeSlack(scopes=["chat:write"]) as slack:
        response = await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()
    assert response.headers["x-oauth-scopes"] == "chat:write"


async def test_reply_bumps_parent_reply_count_and_replies_come_parent_first(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    reply = await client.chat_postMessage(channel="C0ENG", thread_ts=parent.ts, text="On it.")

    assert reply["message"]["thread_ts"] == parent.ts
    thread = await client.conversations_replies(channel="C0ENG", ts=parent.ts)
    assert [m["ts"] for m in thread["messages"]] == [parent.ts, reply["ts"]]
    assert thread["messages"][0]["reply_count"] == 1
    assert thread["messages"][1]["bot_id"] == "B0PMTEAM"
    assert fake.workspace.thread("C0ENG", parent.ts)[0].reply_count == 1


async def test_metadata_round_trips_only_when_asked_for(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    metadata = {"event_type": "pmteam_reply", "event_payload": {"turn": 7, "kind": "answer"}}
    posted = await client.chat_postMessage(channel="C0ENG", text="done", metadata=metadata)

    plain = await client.conversations_history(channel="C0ENG")
    full = await client.conversations_history(channel="C0ENG", include_all_metadata=True)

    assert "metadata" not in plain["messages"][0]
    assert full["messages"][0]["metadata"] == metadata
    assert fake.workspace.messages("C0ENG")[-1].metadata == metadata
    assert posted["ts"] == full["messages"][0]["ts"]


@pytest.mark.parametrize(
    ("blocks", "text", "error"),
    [
        ([{"type": "divider"}] * 51, "x", "invalid_blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "x", None),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}], "x", None),
        ([{"type": "markdown", "text": "m" * 12_001}], "x", None),
        ([{"type": "no_such_block"}], "x", None),
        (None, "t" * 40_001, "msg_too_long"),
        (None, "", "no_text"),
    ],
)
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_slack_rejects_what_breaks_its_limits(
    client: AsyncWebClient, blocks: list[dict[str, Any]] | None, text: str, error: str | None
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0ENG", text=text, blocks=blocks)
    assert raised.value.response["error"] == (error or "invalid_blocks")


async def test_blocks_within_limits_are_stored_with_generated_block_ids(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000}},
        {"type": "markdown", "text": "m" * 1000},
        *[{"type": "divider"}] * 47,
    ]

    await client.chat_postMessage(channel="C0ENG", text="report", blocks=blocks)

    stored = fake.workspace.messages("C0ENG")[-1].blocks
    assert stored is not None and len(stored) == 50
    assert all(block["block_id"] for block in stored)


@pytest.mark.parametrize(
    ("channel", "error"), [("C0NOPE", "channel_not_found"), ("C0RANDOM", "not_in_channel")]
)
async def test_posting_where_the_bot_cannot(
    client: AsyncWebClient, channel: str, error: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=channel, text="hello")
    assert raised.value.response["error"] == error


async def test_unknown_method(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.api_call("chat.teleport", json={"channel": "C0ENG"})
    assert raised.value.response["error"] == "unknown_method"


async def test_tokens_are_checked() -> None:
    async with FakeSlack(token=BOT_TOKEN) as slack:
        errors = []
        for token in ("xoxb-someone-else", "not-a-token", None, "xapp-1-app"):
            try:
                await AsyncWebClient(token=token, base_url=slack.api_url).auth_test()
            except SlackApiError as exc:
                errors.append(exc.response["error"])
        ok = await AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()

    assert errors == ["invalid_auth", "invalid_auth", "not_authed", "not_allowed_token_type"]
    assert ok["ok"]


async def test_form_json_and_query_string_calls_parse_the_same(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    await client.api_call(
        "chat.postMessage",
        data={"channel": "C0ENG", "text": "form", "blocks": json.dumps(blocks)},
    )
    await client.chat_postMessage(channel="C0ENG", text="json", blocks=blocks)
    history = await client.api_call(
        "conversations.history", http_verb="GET", params={"channel": "C0ENG", "limit": 2}
    )

    form_call, json_call = fake.calls_to("chat.postMessage")
    assert form_call.content_type == "application/x-www-form-urlencoded"
    assert json_call.content_type == "application/json"
    assert form_call.params["blocks"][0]["text"]["text"] == "*hi*"
    assert json_call.params["blocks"] == form_call.params["blocks"]
    assert form_call.token == json_call.token == BOT_TOKEN
    assert [m["text"] for m in history["messages"]] == ["json", "form"]
    assert fake.calls_to("conversations.history")[0].http_method == "GET"


async def test_permalink_is_served_by_the_fake(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await fake.post_as_user("U0ALICE", "C0ENG", "root")
    reply = await client.chat_postMessage(channel="C0ENG", thread_ts=parent.ts, text="reply")

    link = await client.chat_getPermalink(channel="C0ENG", message_ts=reply["ts"])

    assert link["permalink"].startswith(f"{fake.url}/archives/C0ENG/p")
    assert f"thread_ts={parent.ts}" in link["permalink"]
    async with aiohttp.ClientSession() as session, session.get(link["permalink"]) as page:
        assert (await page.json())["message"]["text"] == "reply"


async def test_reactions_add_and_remove(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    await client.reactions_add(channel="C0ENG", timestamp=posted.ts, name="eyes")
    with pytest.raises(SlackApiError) as duplicate:
        await client.reactions_add(channel="C0ENG", timestamp=posted.ts, name="eyes")
    assert fake.workspace.reactions("C0ENG", posted.ts) == {"eyes": ["U0PMTEAM"]}
    await client.reactions_remove(channel="C0ENG", timestamp=posted.ts, name="eyes")
    with pytest.raises(SlackApiError) as missing:
        await client.reactions_remove(channel="C0ENG", timestamp=posted.ts, name="eyes")

    assert duplicate.value.response["error"] == "already_reacted"
    assert missing.value.response["error"] == "no_reaction"
    assert fake.workspace.reactions("C0ENG", posted.ts) == {}


async def test_stream_grows_one_message_and_refuses_appends_after_stop(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await fake.post_as_user("U0ALICE", "C0ENG", _mention())
    with pytest.raises(SlackApiError) as no_recipient:
        await client.chat_startStream(channel="C0ENG", thread_ts=parent.ts, markdown_text="x")
    started = await client.chat_startStream(
        channel="C0ENG",
        thread_ts=parent.ts,
        recipient_team_id="T0SANDBOX",
        recipient_user_id="U0ALICE",
        markdown_text="Looking ",
    )
    await client.chat_appendStream(channel="C0ENG", ts=started["ts"], markdown_text="into it")
    await client.chat_appendStream(
        channel="C0ENG",
        ts=started["ts"],
        chunks=[{"type": "task_update", "id": "r1", "title": "Research", "status": "complete"}],
    )
    metadata = {"event_type": "pmteam_reply", "event_payload": {"turn": 1}}
    stopped = await client.chat_stopStream(
        channel="C0ENG",
        ts=started["ts"],
        markdown_text=".",
        metadata=metadata,
        blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": "sources"}]}],
    )
    with pytest.raises(SlackApiError) as late:
        await client.chat_appendStream(channel="C0ENG", ts=started["ts"], markdown_text="more")

    assert no_recipient.value.response["error"] == "missing_recipient_team_id"
    assert late.value.response["error"] == "message_not_in_streaming_state"
    assert stopped["message"]["text"] == "Looking into it."
    message = fake.workspace.thread("C0ENG", parent.ts)[1]
    assert message.text == "Looking into it." and message.metadata == metadata
    assert message.stream is not None and message.stream.state == "completed"
    assert message.stream.tasks["r1"]["status"] == "complete"


async def test_sdk_chat_stream_helper(fake: FakeSlack, client: AsyncWebClient) -> None:
    dm = fake.dm_channel("U0ALICE")
    parent = await fake.post_as_user("U0ALICE", dm, "what changed in the API?")

    streamer = await client.chat_stream(channel=dm, thread_ts=parent.ts, buffer_size=8)
    for word in ("The ", "answer ", "streams ", "in."):
        await streamer.append(markdown_text=word)
    await streamer.stop()

    reply = fake.workspace.thread(dm, parent.ts)[1]
    assert reply.text == "The answer streams in."
    assert [c.method for c in fake.calls if c.method.endswith("Stream")][0] == "chat.startStream"
    assert fake.calls_to("chat.stopStream")[-1].ok


async def test_home_view_modal_and_trigger_ids(
    fake: FakeSlack, client: AsyncWebClient, receiver: Receiver
) -> None:
    board = {"type": "section", "text": {"type": "mrkdwn", "text": "*Board*"}}
    home = {"type": "home", "blocks": [board]}
    published = await client.views_publish(user_id="U0ALICE", view=home)
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Task T-1"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "details"}}],
    }
    with pytest.raises(SlackApiError) as bad_trigger:
        await client.views_open(trigger_id="12345.98765.abc", view=modal)
    command = await fake.slash_command("U0ALICE", "C0ENG", "/pm", "report T-1")
    opened = await client.views_open(trigger_id=command.payload["trigger_id"], view=modal)
    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=opened["view"]["id"], view=modal, hash="stale")

    assert fake.workspace.home_view("U0ALICE") == published["view"]
    assert bad_trigger.value.response["error"] == "invalid_trigger_id"
    assert fake.workspace.modals("U0ALICE")[0]["title"]["text"] == "Task T-1"
    assert conflict.value.response["error"] == "hash_conflict"


async def test_assistant_thread_status_title_and_prompts(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    started = await fake.start_assistant_thread("U0BOB", context_channel_id="C0ENG")
    channel, thread_ts = started.channel_id, started.thread_ts

    await client.assistant_threads_setStatus(
        channel_id=channel, thread_ts=thread_ts, status="is thinking..."
    )
    await client.assistant_threads_setTitle(
        channel_id=channel, thread_ts=thread_ts, title="Deploy question"
    )
    await client.assistant_threads_setSuggestedPrompts(
        channel_id=channel,
        thread_ts=thread_ts,
        prompts=[{"title": "Status", "message": "/pm status"}],
    )
    await client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status="")
    with pytest.raises(SlackApiError) as bad:
        await client.assistant_threads_setStatus(
            channel_id=started.channel_id, thread_ts="1.000001", status="x"
        )

    thread = fake.workspace.assistant_thread(started.channel_id, started.thread_ts)
    assert thread is not None
    assert thread.status_history == ["is thinking...", ""]
    assert thread.title == "Deploy question"
    assert thread.suggested_prompts == [{"title": "Status", "message": "/pm status"}]
    assert thread.context["channel_id"] == "C0ENG"
    assert bad.value.response["error"] == "invalid_thread_ts"


async def test_replies_and_history_paginate_with_cursors(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await fake.post_as_user("U0ALICE", "C0ENG", "root")
    for n in range(5):
        await fake.post_as_user("U0BOB", "C0ENG", f"reply {n}", thread_ts=parent.ts)

    pages = []
    cursor = None
    while True:
        page = await client.conversations_replies(
            channel="C0ENG", ts=parent.ts, limit=3, cursor=cursor
        )
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    history_pages = [
        [m["text"] for m in page["messages"]]
        async for page in await client.conversations_history(channel="C0ENG", limit=1)
    ]

    assert pages == [
        ["root", "reply 0", "reply 1"],
        ["root", "reply 2", "reply 3"],
        ["root", "reply 4"],
    ]
    assert history_pages == [["root"]]


async def test_ephemeral_update_and_delete(fake: FakeSlack, client: AsyncWebClient) -> None:
    mine = await client.chat_postMessage(channel="C0ENG", text="draft")
    theirs = await fake.post_as_user("U0ALICE", "C0ENG", "mine, not yours")

    await client.chat_postEphemeral(channel="C0ENG", user="U0BOB", text="only for Bob")
    with pytest.raises(SlackApiError) as outsider:
        await client.chat_postEphemeral(channel="C0PM", user="U0PMTEAM2", text="x")
    await client.chat_update(channel="C0ENG", ts=mine["ts"], text="final")
    with pytest.raises(SlackApiError) as not_ours:
        await client.chat_update(channel="C0ENG", ts=theirs.ts, text="edited by a bot")
    await client.chat_delete(channel="C0ENG", ts=mine["ts"])
    with pytest.raises(SlackApiError) as gone:
        await client.chat_delete(channel="C0ENG", ts=mine["ts"])

    assert [e.text for e in fake.workspace.ephemerals("C0ENG", user="U0BOB")] == ["only for Bob"]
    assert outsider.value.response["error"] == "user_not_found"
    assert not_ours.value.response["error"] == "cant_update_message"
    assert gone.value.response["error"] == "message_not_found"
    assert [m.text for m in fake.workspace.messages("C0ENG")] == ["mine, not yours"]


async def test_conversations_and_users(fake: FakeSlack, client: AsyncWebClient) -> None:
    listed = await client.conversations_list(limit=2)
    rest = await client.conversations_list(cursor=listed["response_metadata"]["next_cursor"])
    joined = await client.conversations_join(channel="C0RANDOM")
    again = await client.conversations_join(channel="C0RANDOM")
    info = await client.conversations_info(channel="C0RANDOM")
    alice = await client.users_info(user="U0ALICE")
    with pytest.raises(SlackApiError) as nobody:
        await client.users_info(user="U0NOBODY")

    names = [c["name"] for c in listed["channels"] + rest["channels"]]
    assert names == ["engineering", "pm-coordination", "random"]
    assert joined["channel"]["is_member"] and again["warning"] == "already_in_channel"
    assert info["channel"]["is_member"]
    assert fake.workspace.messages("C0RANDOM")[-1].subtype == "channel_join"
    assert (alice["user"]["name"], alice["user"]["profile"]["title"]) == ("alice", "Engineer")
    assert nobody.value.response["error"] == "user_not_found"
    assert (await client.chat_postMessage(channel="C0RANDOM", text="hello"))["ok"]


# --- fault injection ------------------------------------------------------------------------------


async def test_rate_limit_is_retried_by_the_sdk_handler(fake: FakeSlack) -> None:
    fake.inject("chat.postMessage", status=429, retry_after=0, times=1)
    client = AsyncWebClient(
        token=BOT_TOKEN,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )

    response = await client.chat_postMessage(channel="C0ENG", text="after the limit")

    assert response["ok"]
    first, second = fake.calls_to("chat.postMessage")
    assert (first.status, first.error) == (429, "ratelimited")
    assert second.ok
    assert len(fake.workspace.messages("C0ENG")) == 1


async def test_server_error_then_recovery(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.inject("chat.update", status=500, times=1)
    posted = await client.chat_postMessage(channel="C0ENG", text="v1")

    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel="C0ENG", ts=posted["ts"], text="v2")
    updated = await client.chat_update(channel="C0ENG", ts=posted["ts"], text="v2")

    assert raised.value.response.status_code == 500
    assert updated["text"] == "v2"


async def test_injected_error_and_delay(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.inject("reactions.add", error="ratelimited", times=1)
    fake.inject("auth.test", delay=0.2)
    posted = await fake.post_as_user("U0ALICE", "C0ENG", "hi")

    with pytest.raises(SlackApiError) as raised:
        await client.reactions_add(channel="C0ENG", timestamp=posted.ts, name="eyes")
    started = time.monotonic()
    await client.auth_test()

    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "ratelimited"
    assert time.monotonic() - started >= 0.2


# --- event delivery over HTTP ---------------------------------------------------------------------


async def test_signed_delivery_of_a_mention(fake: FakeSlack, receiver: Receiver) -> None:
    result = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    assert [d.type for d in result.deliveries] == ["app_mention"]
    assert result.deliveries[0].status_codes == [200]
    (request,) = receiver.requests
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(request.body, request.headers)
    envelope = request.json()
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev") and envelope["api_app_id"] == "A0PMTEAM"
    assert envelope["authorizations"][0]["user_id"] == "U0PMTEAM"
    assert envelope["event"]["ts"] == result.ts and envelope["event"]["channel"] == "C0ENG"


async def test_slow_ack_is_retried_with_retry_headers(fake: FakeSlack, receiver: Receiver) -> None:
    async def slow_first(received: Received, index: int) -> web.StreamResponse:
        if index == 0:
            await asyncio.sleep(0.6)
        return web.Response(status=200)

    receiver.respond = slow_first

    result = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    (delivery,) = result.deliveries
    assert delivery.status_codes == [None, 200]
    assert delivery.retry_count == 1
    retried = receiver.requests[1]
    assert retried.headers["X-Slack-Retry-Num"] == "1"
    assert retried.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert retried.json()["event_id"] == receiver.requests[0].json()["event_id"]


async def test_http_error_is_retried_up_to_three_times(fake: FakeSlack, receiver: Receiver) -> None:
    async def failing(received: Received, index: int) -> web.StreamResponse:
        return web.Response(status=500)

    receiver.respond = failing

    result = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    (delivery,) = result.deliveries
    assert delivery.status_codes == [500, 500, 500, 500]
    assert delivery.retry_reasons == [None, "http_error", "http_error", "http_error"]
    assert not delivery.acked


async def test_forced_retry_resends_the_same_event(fake: FakeSlack, receiver: Receiver) -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "text": _mention(), "channel": "C0ENG"}
    first = await fake.deliver_event(event)

    again = await fake.deliver_event(
        event, event_id=first.event_id, retry_num=1, retry_reason="http_timeout"
    )

    assert again.event_id == first.event_id
    assert receiver.requests[1].body == receiver.requests[0].body
    assert receiver.requests[1].headers["X-Slack-Retry-Num"] == "1"


async def test_mention_makes_app_mention_and_message_with_different_event_ids(
    fake: FakeSlack, receiver: Receiver
) -> None:
    fake.subscriptions.add("message.channels")

    result = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    by_type = {e["event"]["type"]: e for e in receiver.events()}
    assert set(by_type) == {"app_mention", "message"}
    assert by_type["app_mention"]["event_id"] != by_type["message"]["event_id"]
    assert by_type["message"]["event"]["channel_type"] == "channel"
    assert {d.event_id for d in result.deliveries} == {e["event_id"] for e in by_type.values()}


async def test_dm_and_the_bots_own_reply_both_arrive_as_message_events(
    fake: FakeSlack, client: AsyncWebClient, receiver: Receiver
) -> None:
    dm = fake.dm_channel("U0ALICE")

    await fake.post_as_user("U0ALICE", dm, "can you check the queue?")
    await client.chat_postMessage(channel="U0ALICE", text="Checking.")
    await fake.drain()

    user_event, bot_event = (e["event"] for e in receiver.events())
    assert (user_event["channel_type"], user_event["user"]) == ("im", "U0ALICE")
    assert "bot_id" not in user_event
    assert (bot_event["channel"], bot_event["bot_id"]) == (dm, "B0PMTEAM")


async def test_edits_deletes_and_joins_produce_message_subtypes(
    fake: FakeSlack, receiver: Receiver
) -> None:
    fake.subscriptions.add("message.channels")
    posted = await fake.post_as_user("U0BOB", "C0ENG", "typo")

    await fake.edit_as_user("U0BOB", "C0ENG", posted.ts, _mention("fixed"))
    await fake.delete_as_user("U0BOB", "C0ENG", posted.ts)
    await fake.join_channel("U0BOB", "C0PM")

    subtypes = [(e["event"]["type"], e["event"].get("subtype")) for e in receiver.events()]
    assert subtypes == [
        ("message", None),
        ("message", "message_changed"),
        ("message", "message_deleted"),
        ("message", "channel_join"),
    ]
    assert fake.workspace.message("C0ENG", posted.ts) is None


async def test_slash_command_form_ack_and_response_url(fake: FakeSlack, receiver: Receiver) -> None:
    async def ack_with_text(received: Received, index: int) -> web.StreamResponse:
        return web.json_response({"text": "Looking up your tasks..."})

    receiver.respond = ack_with_text

    delivery = await fake.slash_command("U0BOB", "C0PM", "/pm", "status")
    form = receiver.requests[0].form()
    async with aiohttp.ClientSession() as session:
        reply = {"response_type": "ephemeral", "text": "2 open tasks"}
        async with session.post(form["response_url"], json=reply) as answer:
            assert answer.status == 200

    assert SignatureVerifier(SECRET).is_valid_request(
        receiver.requests[0].body, receiver.requests[0].headers
    )
    assert (form["command"], form["text"], form["channel_name"]) == (
        "/pm",
        "status",
        "pm-coordination",
    )
    assert form["trigger_id"] and form["team_domain"] == "sandbox"
    assert delivery.ack_body == {"text": "Looking up your tasks..."}
    assert fake.responses[0].body == reply and fake.responses[0].url == form["response_url"]
    assert [e.text for e in fake.workspace.ephemerals("C0PM", user="U0BOB")] == [
        "Looking up your tasks...",
        "2 open tasks",
    ]


async def test_button_click_sends_block_actions_and_can_replace_the_message(
    fake: FakeSlack, client: AsyncWebClient, receiver: Receiver
) -> None:
    button = {
        "type": "button",
        "action_id": "task_details",
        "text": {"type": "plain_text", "text": "Details"},
        "value": "T-42",
    }
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "T-42 done"}},
        {"type": "actions", "block_id": "task", "elements": [button]},
    ]
    posted = await client.chat_postMessage(channel="C0PM", text="T-42 done", blocks=blocks)

    delivery = await fake.click_button("U0BOB", "C0PM", posted["ts"], "task_details")
    payload = json.loads(receiver.requests[-1].form()["payload"])
    async with aiohttp.ClientSession() as session:
        replacement = {"replace_original": True, "text": "T-42 (seen)"}
        await session.post(payload["response_url"], json=replacement)

    assert delivery.acked and payload["type"] == "block_actions"
    assert payload["actions"][0]["value"] == "T-42" and payload["actions"][0]["block_id"] == "task"
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C0PM",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == posted["ts"] and payload["trigger_id"]
    assert fake.workspace.message("C0PM", posted["ts"]).text == "T-42 (seen)"  # type: ignore[union-attr]


async def test_clicking_an_ephemeral_button_and_deleting_it(
    fake: FakeSlack, client: AsyncWebClient, receiver: Receiver
) -> None:
    button = {"type": "button", "action_id": "more", "text": {"type": "plain_text", "text": "More"}}
    blocks: list[dict[str, Any]] = [{"type": "actions", "elements": [button]}]
    posted = await client.chat_postEphemeral(
        channel="C0ENG", user="U0ALICE", text="3 tasks", blocks=blocks
    )

    await fake.click_button("U0ALICE", "C0ENG", posted["message_ts"], "more")
    payload = json.loads(receiver.requests[-1].form()["payload"])
    async with aiohttp.ClientSession() as session:
        await session.post(payload["response_url"], json={"delete_original": True})

    assert payload["container"]["is_ephemeral"] and "message" not in payload
    assert payload["actions"][0]["action_id"] == "more"
    assert fake.workspace.ephemerals("C0ENG") == []


async def test_raw_interaction_payload_is_a_signed_form(
    fake: FakeSlack, receiver: Receiver
) -> None:
    async def validation_errors(received: Received, index: int) -> web.StreamResponse:
        errors = {"response_action": "errors", "errors": {"title": "Too short"}}
        return web.json_response(errors)

    receiver.respond = validation_errors
    payload = {"type": "view_submission", "user": {"id": "U0BOB"}, "view": {"id": "V1"}}

    delivery = await fake.interact(payload)

    (request,) = receiver.requests
    assert SignatureVerifier(SECRET).is_valid_request(request.body, request.headers)
    assert json.loads(request.form()["payload"]) == payload
    assert delivery.ack_body == {"response_action": "errors", "errors": {"title": "Too short"}}


async def test_app_home_opened(fake: FakeSlack, receiver: Receiver) -> None:
    delivery = await fake.open_app_home("U0ALICE")

    event = receiver.events()[0]["event"]
    assert delivery.acked
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "U0ALICE", "home")
    assert event["channel"] == fake.dm_channel("U0ALICE")


# --- Socket Mode ----------------------------------------------------------------------------------


Listener = Callable[[AsyncBaseSocketModeClient, SocketModeRequest], Awaitable[None]]


@contextlib.asynccontextmanager
async def socket_mode_client(fake: FakeSlack, listener: Listener) -> AsyncIterator[None]:
    """A real SDK Socket Mode client, connected through apps.connections.open."""
    client = SocketModeClient(
        app_token="xapp-1-sandbox",
        web_client=AsyncWebClient(base_url=fake.api_url),
        auto_reconnect_enabled=False,
    )
    client.socket_mode_request_listeners.append(listener)
    await client.connect()  # type: ignore[no-untyped-call]
    try:
        await fake.wait_for(lambda: bool(fake.socket_mode.connections), timeout=2)
        yield
    finally:
        await client.close()  # type: ignore[no-untyped-call]


def acking_when(
    should_ack: Callable[[SocketModeRequest], bool], received: list[SocketModeRequest]
) -> Listener:
    async def listener(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        if should_ack(request):
            await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))

    return listener


async def test_socket_mode_client_receives_and_acks_a_mention(fake: FakeSlack) -> None:
    received: list[SocketModeRequest] = []
    async with socket_mode_client(fake, acking_when(lambda request: True, received)):
        result = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    (delivery,) = result.deliveries
    assert delivery.transport == "socket" and delivery.acked
    (request,) = received
    assert request.type == "events_api"
    assert request.payload["event"]["type"] == "app_mention"
    assert request.payload["event_id"] == delivery.event_id
    assert request.retry_attempt == 0
    assert fake.socket_mode.acks[0]["envelope_id"] == request.envelope_id


async def test_socket_mode_resends_an_unacked_envelope(fake: FakeSlack) -> None:
    received: list[SocketModeRequest] = []
    on_retry = acking_when(lambda request: (request.retry_attempt or 0) >= 1, received)
    async with socket_mode_client(fake, on_retry):
        result = await fake.post_as_user("U0ALICE", "C0ENG", _mention())

    (delivery,) = result.deliveries
    assert delivery.acked and delivery.retry_count == 1
    assert [r.retry_attempt for r in received] == [0, 1]
    assert received[1].retry_reason == "timeout"
    assert received[0].envelope_id != received[1].envelope_id
    assert received[0].payload["event_id"] == received[1].payload["event_id"]


async def test_socket_mode_slash_command_ack_carries_a_payload(fake: FakeSlack) -> None:
    async def answer(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        ack = SocketModeResponse(request.envelope_id, {"text": "Here is your status"})
        await client.send_socket_mode_response(ack)

    async with socket_mode_client(fake, answer):
        delivery = await fake.slash_command("U0ALICE", "C0ENG", "/pm", "status")

    assert delivery.kind == "slash_commands" and delivery.transport == "socket"
    assert delivery.ack_body == {"text": "Here is your status"}
    assert fake.workspace.ephemerals("C0ENG", "U0ALICE")[-1].text == "Here is your status"


async def test_socket_mode_says_hello_first_and_tickets_are_single_use(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    opened = await client.apps_connections_open(app_token="xapp-1-sandbox")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(opened["url"]) as ws:
            hello = await ws.receive_json(timeout=2)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(opened["url"])

    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0PMTEAM"}


async def test_connections_open_needs_an_app_token(fake: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.apps_connections_open(app_token=BOT_TOKEN)
    opened = await client.apps_connections_open(app_token="xapp-1-sandbox")

    assert raised.value.response["error"] == "not_allowed_token_type"
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/socket-mode\?ticket=[\w-]+", opened["url"])


# --- standalone server ----------------------------------------------------------------------------


async def test_standalone_server_answers_and_stops_on_sigint() -> None:
    root = Path(__file__).resolve().parents[2]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "slack",
        "--port",
        "0",
        cwd=root,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 10)).decode()
            assert line, "the server exited before it was ready"
            found = re.search(r"listening on (http://\S+)", line)
            url = found.group(1) if found else None

        response = await AsyncWebClient(token=BOT_TOKEN, base_url=f"{url}/api/").auth_test()
        assert response["user_id"] == "U0PMTEAM"

        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 5) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_shared_fixture_serves_a_seeded_workspace(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)

    channels = await client.conversations_list()

    assert {c["id"] for c in channels["channels"]} == {"C0ENG", "C0PM", "C0RANDOM"}
