"""The fake Slack Web API under /api/<method>: parsing, auth, faults, and the methods themselves."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from sandbox.slack.blocks import MESSAGE_BLOCK_LIMIT, block_errors, view_errors
from sandbox.slack.delivery import SocketModeHub
from sandbox.slack.wire import (
    ApiError,
    Params,
    decode_cursor,
    decode_json_arguments,
    encode_cursor,
    random_id,
)
from sandbox.slack.workspace import Channel, Ephemeral, Message, Stream, View, Workspace

JSON = dict[str, Any]
T = TypeVar("T")

logger = logging.getLogger(__name__)

MAX_TEXT = 40_000
MAX_MARKDOWN_TEXT = 12_000
DEFAULT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "channels:join",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "reactions:read",
    "reactions:write",
    "users:read",
)


@dataclass
class ApiCall:
    """One Web API request as the fake saw it, and what it answered."""

    method: str
    params: JSON
    token: str | None
    at: float
    http_method: str = "POST"
    content_type: str = ""
    status: int = 200
    response: JSON | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")


@dataclass
class Fault:
    """An injected failure for the next `times` calls to `method` ("*" for every method)."""

    method: str
    status: int | None = None
    retry_after: int = 1
    error: str | None = None
    delay: float = 0.0
    times: int | None = 1
    # The call is carried out, then the connection drops before the answer: the caller can't
    # tell whether it happened (a reset after Slack posted the message).
    lose_response: bool = False
    # Only calls whose arguments this accepts (e.g. a post to one channel).
    when: Callable[[JSON], bool] | None = None
    # The call is carried out, then this is awaited before the answer is sent: a test's moment
    # to stop or kill the caller right after Slack did what it asked.
    after: Callable[[ApiCall], Awaitable[None]] | None = None
    hits: int = 0

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, params: JSON) -> bool:
        return (
            self.method in (method, "*")
            and not self.spent
            and (self.when is None or self.when(params))
        )


class Happenings(Protocol):
    """What the Web API tells the rest of the fake, so it can send the events Slack would."""

    def message_posted(self, message: Message) -> None: ...

    def message_changed(self, message: Message, previous: JSON) -> None: ...

    def message_deleted(self, channel: Channel, previous: JSON) -> None: ...

    def member_joined(self, channel: Channel, user_id: str) -> None: ...


def _page(
    items: Sequence[T], key: Callable[[T], str], *, cursor: str | None, limit: int, prefix: str
) -> tuple[list[T], str]:
    """One page of `items` and the next cursor ("" at the end), Slack's cursor pagination."""
    start = 0
    if cursor:
        wanted = decode_cursor(cursor, prefix)
        keys = [key(item) for item in items]
        if wanted not in keys:
            raise ApiError("invalid_cursor")
        start = keys.index(wanted)
    end = start + limit
    next_cursor = encode_cursor(prefix + key(items[end])) if end < len(items) else ""
    return list(items[start:end]), next_cursor


def _with_generated_ids(blocks: list[JSON]) -> list[JSON]:
    """Slack fills in a block_id for each block and an action_id for each element lacking one."""
    filled = copy.deepcopy(blocks)
    for block in filled:
        block.setdefault("block_id", random_id("", 5))
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for holder in ("accessory", "element"):
            if isinstance(block.get(holder), dict):
                elements.append(block[holder])
        for element in elements:
            if isinstance(element, dict) and element.get("type") not in (
                "plain_text",
                "mrkdwn",
                "image",
            ):
                element.setdefault("action_id", random_id("", 4))
    return filled


def _ts_bound(params: Params, name: str) -> float | None:
    value = params.opt(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ApiError(f"invalid_ts_{name}") from None


def _in_range(ts: str, params: Params) -> bool:
    """Slack's oldest/latest window (exclusive unless inclusive=true)."""
    inclusive = params.flag("inclusive")
    value = float(ts)
    oldest, latest = _ts_bound(params, "oldest"), _ts_bound(params, "latest")
    if oldest is not None and (value < oldest or (value == oldest and not inclusive)):
        return False
    return latest is None or value < latest or (value == latest and inclusive)


class WebApi:
    """Serves /api/<method>, records every call, and applies injected faults."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        happenings: Happenings,
        hub: SocketModeHub,
        base_url: Callable[[], str],
        token: str | None,
        app_token: str | None,
        scopes: Sequence[str],
        trigger_ttl: float,
    ) -> None:
        self.workspace = workspace
        self.happenings = happenings
        self.hub = hub
        self.base_url = base_url
        self.token = token
        self.app_token = app_token
        self.scopes = tuple(scopes)
        self.trigger_ttl = trigger_ttl
        self.calls: list[ApiCall] = []
        self.faults: list[Fault] = []
        self.methods: dict[str, Callable[[Params], JSON]] = {
            "api.test": self.api_test,
            "apps.connections.open": self.apps_connections_open,
            "assistant.threads.setStatus": self.assistant_threads_set_status,
            "assistant.threads.setSuggestedPrompts": self.assistant_threads_set_suggested_prompts,
            "assistant.threads.setTitle": self.assistant_threads_set_title,
            "auth.test": self.auth_test,
            "chat.appendStream": self.chat_append_stream,
            "chat.delete": self.chat_delete,
            "chat.getPermalink": self.chat_get_permalink,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.postMessage": self.chat_post_message,
            "chat.startStream": self.chat_start_stream,
            "chat.stopStream": self.chat_stop_stream,
            "chat.update": self.chat_update,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "conversations.join": self.conversations_join,
            "conversations.list": self.conversations_list,
            "conversations.open": self.conversations_open,
            "conversations.replies": self.conversations_replies,
            "files.info": self.files_info,
            "reactions.add": self.reactions_add,
            "reactions.get": self.reactions_get,
            "reactions.remove": self.reactions_remove,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "users.conversations": self.users_conversations,
            "views.open": self.views_open,
            "views.publish": self.views_publish,
            "views.push": self.views_push,
            "views.update": self.views_update,
        }

    # --- HTTP ----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = ApiCall(
            method=method,
            params={},
            token=None,
            at=time.time(),
            http_method=request.method,
            content_type=request.content_type,
        )
        self.calls.append(call)
        try:
            values, call.token = await self._read(request)
        except ApiError as exc:
            return self._answer(call, exc.body())
        call.params = decode_json_arguments(values)
        fault = next((f for f in self.faults if f.matches(method, call.params)), None)
        if fault is not None:
            fault.hits += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status == 429:
                headers = {"Retry-After": str(fault.retry_after)}
                return self._answer(call, {"ok": False, "error": "ratelimited"}, 429, headers)
            if fault.status is not None:
                return self._answer(call, {"ok": False, "error": "internal_error"}, fault.status)
            if fault.error is not None:
                return self._answer(call, {"ok": False, "error": fault.error})
        lose_response = fault is not None and fault.lose_response
        handler = self.methods.get(method)
        if handler is None:
            return self._answer(call, {"ok": False, "error": "unknown_method"})
        try:
            if method != "api.test":
                self._authenticate(method, call.token)
            result = handler(Params(values))
        except ApiError as exc:
            return self._answer(call, exc.body())
        except Exception:
            # A bug in the fake must not pass for a Slack answer: fail loudly, keep serving.
            logger.exception("fake Slack failed on %s", method)
            return self._answer(call, {"ok": False, "error": "internal_error"}, 500)
        if lose_response and request.transport is not None:
            call.status, call.response = 0, {"ok": True, **result}
            request.transport.abort()  # done, but the answer never arrives
            raise ConnectionResetError("the fake Slack dropped the connection")
        if fault is not None and fault.after is not None:
            call.status, call.response = 200, {"ok": True, **result}
            await fault.after(call)
        headers = {}
        if call.token and call.token.startswith("xoxb-"):
            headers["x-oauth-scopes"] = ",".join(self.scopes)
            headers["x-accepted-oauth-scopes"] = ""
        return self._answer(call, {"ok": True, **result}, 200, headers)

    def _answer(
        self, call: ApiCall, body: JSON, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        call.status, call.response = status, body
        if not body.get("ok"):
            logger.debug("%s -> %s %s", call.method, status, body.get("error"))
        return web.json_response(body, status=status, headers=headers)

    async def _read(self, request: web.Request) -> tuple[JSON, str | None]:
        values: JSON = dict(request.query)
        token: str | None = None
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError("invalid_json") from None
                if not isinstance(body, dict):
                    raise ApiError("invalid_json")
                # Slack ignores a token inside a JSON body: it must come as a Bearer header.
                body.pop("token", None)
                values.update(body)
            else:
                form = await request.post()
                values.update({k: v for k, v in form.items() if isinstance(v, str)})
        if "token" in values:
            token = str(values.pop("token"))
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip()
        return values, token or None

    def _authenticate(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if method == "apps.connections.open":
            if token.startswith("xapp-"):
                if self.app_token is None or token == self.app_token:
                    return
                raise ApiError("invalid_auth")
            if token.startswith("xoxb-"):
                raise ApiError("not_allowed_token_type")
            raise ApiError("invalid_auth")
        if token.startswith("xapp-"):
            raise ApiError("not_allowed_token_type")
        if not token.startswith("xoxb-") or (self.token is not None and token != self.token):
            raise ApiError("invalid_auth")

    # --- shared checks -------------------------------------------------------------------------

    @property
    def _team_id(self) -> str:
        return self.workspace.team.id

    def _channel(self, params: Params, name: str = "channel") -> Channel:
        key = params.opt(name)
        channel = None if key is None else self.workspace.find_channel(key)
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _postable_channel(self, params: Params) -> Channel:
        """chat.postMessage also accepts a user id, meaning the DM with that person."""
        key = params.opt("channel") or ""
        if key.startswith(("U", "W")) and key in self.workspace.users:
            return self.workspace.dm_with(key)
        return self._channel(params)

    def _require_member(self, channel: Channel) -> None:
        if self.workspace.bot_user.id not in channel.members:
            raise ApiError("not_in_channel")

    def _blocks(self, params: Params, *, limit: int = MESSAGE_BLOCK_LIMIT) -> list[JSON] | None:
        if params.values.get("blocks") in (None, ""):
            return None
        blocks = params.obj("blocks", error="invalid_blocks_format")
        if not isinstance(blocks, list):
            raise ApiError("invalid_blocks_format")
        errors = block_errors(blocks, limit=limit)
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        return _with_generated_ids(blocks)

    def _attachments(self, params: Params) -> list[JSON] | None:
        if params.values.get("attachments") in (None, ""):
            return None
        attachments = params.obj("attachments")
        if not isinstance(attachments, list):
            raise ApiError("invalid_attachments")
        if len(attachments) > 100:
            raise ApiError("too_many_attachments")
        return attachments

    def _metadata(self, params: Params) -> JSON | None:
        if params.values.get("metadata") in (None, ""):
            return None
        metadata = params.obj("metadata", error="invalid_metadata_format")
        if not isinstance(metadata, dict):
            raise ApiError("invalid_metadata_format")
        event_type, payload = metadata.get("event_type"), metadata.get("event_payload", {})
        if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
            raise ApiError("invalid_metadata_schema")
        return {"event_type": event_type, "event_payload": payload}

    def _text(self, params: Params) -> tuple[str, list[JSON] | None]:
        """text and blocks, or markdown_text (which Slack stores as a markdown block)."""
        text = params.opt("text") or ""
        blocks = self._blocks(params)
        markdown = params.opt("markdown_text")
        if markdown is not None:
            if text or blocks:
                raise ApiError("markdown_text_conflict")
            if len(markdown) > MAX_MARKDOWN_TEXT:
                raise ApiError("msg_too_long")
            return markdown, [{"type": "markdown", "text": markdown, "block_id": random_id("", 5)}]
        if len(text) > MAX_TEXT:
            raise ApiError("msg_too_long")
        return text, blocks

    def _bot_message(self, channel: Channel, text: str, *, thread_ts: str | None) -> Message:
        bot = self.workspace.bot_user
        return Message(
            channel=channel.id,
            ts=self.workspace.next_ts(),
            text=text,
            user=bot.id,
            bot_id=bot.bot_id,
            app_id=bot.app_id,
            bot_profile=bot.bot_profile(self._team_id),
            thread_ts=thread_ts,
        )

    def _thread_parent(self, channel: Channel, thread_ts: str | None) -> None:
        if thread_ts is not None and self.workspace.message(channel.id, thread_ts) is None:
            raise ApiError("invalid_thread_ts")

    def _replied(self, message: Message) -> None:
        """Slack clears an assistant thread's status once the app replies in it (a streamed
        reply: when it starts and when it ends, since the app may set a status meanwhile)."""
        if message.thread_ts is None:
            return
        thread = self.workspace.assistant_thread(message.channel, message.thread_ts)
        if thread is not None:
            thread.status = ""
            thread.loading_messages = []

    def _own_message(self, channel: Channel, ts: str, error: str) -> Message:
        message = self.workspace.message(channel.id, ts)
        if message is None:
            raise ApiError("message_not_found")
        if message.bot_id != self.workspace.bot_user.bot_id:
            raise ApiError(error)
        return message

    # --- api / auth / apps -----------------------------------------------------------------------

    def api_test(self, params: Params) -> JSON:
        return {"args": dict(params.values)} if params.values else {}

    def auth_test(self, params: Params) -> JSON:
        bot, team = self.workspace.bot_user, self.workspace.team
        return {
            "url": self.base_url() + "/",
            "team": team.name,
            "user": bot.name,
            "team_id": team.id,
            "user_id": bot.id,
            "bot_id": bot.bot_id,
            "app_id": bot.app_id,
            "app_name": bot.name,
            "is_enterprise_install": False,
        }

    def apps_connections_open(self, params: Params) -> JSON:
        ws_base = self.base_url().replace("http://", "ws://", 1)
        return {"url": f"{ws_base}/socket-mode?ticket={self.hub.issue_ticket()}"}

    # --- chat ------------------------------------------------------------------------------------

    def chat_post_message(self, params: Params) -> JSON:
        channel = self._postable_channel(params)
        self._require_member(channel)
        text, blocks = self._text(params)
        attachments = self._attachments(params)
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
        metadata = self._metadata(params)
        thread_ts = params.opt("thread_ts")
        self._thread_parent(channel, thread_ts)
        message = self._bot_message(channel, text, thread_ts=thread_ts)
        message.blocks, message.attachments, message.metadata = blocks, attachments, metadata
        message.reply_broadcast = thread_ts is not None and params.flag("reply_broadcast")
        self.workspace.add_message(message)
        self._replied(message)
        self.happenings.message_posted(message)
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api(self._team_id)}

    def chat_update(self, params: Params) -> JSON:
        channel = self._channel(params)
        ts = params.req("ts", "message_not_found")
        message = self._own_message(channel, ts, "cant_update_message")
        previous = message.to_api(self._team_id, include_metadata=False)
        # Slack keeps whatever the update leaves out; an empty blocks array removes the blocks.
        values = params.values
        text, blocks = self._text(params)
        attachments, metadata = self._attachments(params), self._metadata(params)
        if "text" in values or values.get("markdown_text") is not None:
            new_text = text
        else:
            new_text = message.text
        if values.get("blocks") is not None or values.get("markdown_text") is not None:
            new_blocks = blocks or None
        else:
            new_blocks = message.blocks
        new_attachments = attachments if "attachments" in values else message.attachments
        if not new_text and not new_blocks and not new_attachments:
            raise ApiError("no_text")
        message.text, message.blocks, message.attachments = new_text, new_blocks, new_attachments
        if metadata is not None:
            message.metadata = metadata
        message.edited = {"user": self.workspace.bot_user.id, "ts": self.workspace.next_ts()}
        self.workspace.touch()
        self.happenings.message_changed(message, previous)
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(self._team_id),
        }

    def chat_delete(self, params: Params) -> JSON:
        channel = self._channel(params)
        ts = params.req("ts", "message_not_found")
        message = self._own_message(channel, ts, "cant_delete_message")
        previous = message.to_api(self._team_id, include_metadata=False)
        self.workspace.remove_message(message)
        self.happenings.message_deleted(channel, previous)
        return {"channel": channel.id, "ts": previous["ts"]}

    def chat_post_ephemeral(self, params: Params) -> JSON:
        channel = self._channel(params)
        user_id = params.req("user", "user_not_found")
        if user_id not in self.workspace.users:
            raise ApiError("user_not_found")
        self._require_member(channel)
        if user_id not in channel.members:
            raise ApiError("user_not_in_channel")
        text, blocks = self._text(params)
        if not text and not blocks and not self._attachments(params):
            raise ApiError("no_text")
        ephemeral = Ephemeral(
            channel=channel.id,
            user=user_id,
            ts=self.workspace.next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=params.opt("thread_ts"),
        )
        self.workspace.add_ephemeral(ephemeral)
        return {"message_ts": ephemeral.ts}

    def chat_get_permalink(self, params: Params) -> JSON:
        channel = self._channel(params)
        ts = params.req("message_ts", "message_not_found")
        message = self.workspace.message(channel.id, ts)
        if message is None:
            raise ApiError("message_not_found")
        permalink = f"{self.base_url()}/archives/{channel.id}/p{ts.replace('.', '')}"
        if message.is_reply:
            permalink += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": permalink}

    # --- streaming -------------------------------------------------------------------------------

    def _chunks(self, params: Params) -> list[JSON]:
        if params.values.get("chunks") in (None, ""):
            return []
        chunks = params.obj("chunks")
        if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
            raise ApiError("invalid_arguments")
        for chunk in chunks:
            kind = chunk.get("type")
            if kind not in ("markdown_text", "task_update", "plan_update", "blocks"):
                raise ApiError("invalid_chunks")
            if kind == "markdown_text" and not isinstance(chunk.get("text"), str):
                raise ApiError("invalid_chunks")
        return chunks

    def _stream_into(self, message: Message, markdown: str | None, chunks: list[JSON]) -> None:
        """Grow a streaming message: markdown text is appended, task and plan chunks are kept."""
        stream = message.stream
        assert stream is not None
        if markdown and len(markdown) > MAX_MARKDOWN_TEXT:
            raise ApiError("msg_too_long")
        added = (markdown or "") + "".join(
            c["text"] for c in chunks if c["type"] == "markdown_text"
        )
        if len(message.text) + len(added) > MAX_TEXT:
            raise ApiError("msg_too_long")
        message.text += added
        for chunk in chunks:
            stream.chunks.append(chunk)
            kind = chunk["type"]
            if kind == "task_update" and chunk.get("id") is not None:
                stream.tasks[str(chunk["id"])] = chunk
            elif kind == "plan_update":
                stream.plan_title = chunk.get("title")
            elif kind == "blocks" and isinstance(chunk.get("blocks"), list):
                message.blocks = (message.blocks or []) + _with_generated_ids(chunk["blocks"])
        self.workspace.touch()

    def _streaming_message(self, params: Params) -> Message:
        channel = self._channel(params)
        message = self.workspace.message(channel.id, params.req("ts", "message_not_found"))
        if message is None:
            raise ApiError("message_not_found")
        if message.stream is None or message.stream.state != "in_progress":
            raise ApiError("message_not_in_streaming_state")
        return message

    def chat_start_stream(self, params: Params) -> JSON:
        channel = self._channel(params)
        self._require_member(channel)
        thread_ts = params.req("thread_ts")
        self._thread_parent(channel, thread_ts)
        recipient = params.opt("recipient_user_id")
        if not channel.is_im:
            # Slack needs to know whom a channel stream is for.
            if "recipient_team_id" not in params:
                raise ApiError("missing_recipient_team_id")
            if recipient is None:
                raise ApiError("missing_recipient_user_id")
        if recipient is not None and recipient not in self.workspace.users:
            raise ApiError("user_not_found")
        chunks = self._chunks(params)
        message = self._bot_message(channel, "", thread_ts=thread_ts)
        message.stream = Stream(
            recipient_user_id=recipient,
            recipient_team_id=params.opt("recipient_team_id"),
            task_display_mode=params.opt("task_display_mode"),
        )
        self._stream_into(message, params.opt("markdown_text"), chunks)
        self.workspace.add_message(message)
        self._replied(message)
        self.happenings.message_posted(message)
        return {"channel": channel.id, "ts": message.ts}

    def chat_append_stream(self, params: Params) -> JSON:
        message = self._streaming_message(params)
        markdown, chunks = params.opt("markdown_text"), self._chunks(params)
        if not markdown and not chunks:
            raise ApiError("invalid_arguments")
        assert message.stream is not None
        message.stream.appends += 1
        self._stream_into(message, markdown, chunks)
        return {"channel": message.channel, "ts": message.ts}

    def chat_stop_stream(self, params: Params) -> JSON:
        message = self._streaming_message(params)
        blocks, metadata = self._blocks(params), self._metadata(params)
        self._stream_into(message, params.opt("markdown_text"), self._chunks(params))
        if blocks is not None:
            message.blocks = (message.blocks or []) + blocks
        if metadata is not None:
            message.metadata = metadata
        assert message.stream is not None
        message.stream.state = "completed"
        self._replied(message)
        self.workspace.touch()
        return {
            "channel": message.channel,
            "ts": message.ts,
            "message": message.to_api(self._team_id),
        }

    # --- reactions -------------------------------------------------------------------------------

    def _reaction_target(self, params: Params) -> tuple[Message, str]:
        channel = self._channel(params)
        ts = params.req("timestamp", "no_item_specified")
        name = (params.opt("name") or "").strip(":")
        if not name:
            raise ApiError("invalid_name")
        message = self.workspace.message(channel.id, ts)
        if message is None:
            raise ApiError("message_not_found")
        return message, name

    def reactions_add(self, params: Params) -> JSON:
        message, name = self._reaction_target(params)
        users = message.reactions.setdefault(name, [])
        bot = self.workspace.bot_user.id
        if bot in users:
            raise ApiError("already_reacted")
        users.append(bot)
        self.workspace.touch()
        return {}

    def reactions_remove(self, params: Params) -> JSON:
        message, name = self._reaction_target(params)
        users = message.reactions.get(name, [])
        bot = self.workspace.bot_user.id
        if bot not in users:
            raise ApiError("no_reaction")
        users.remove(bot)
        if not users:
            del message.reactions[name]
        self.workspace.touch()
        return {}

    def reactions_get(self, params: Params) -> JSON:
        channel = self._channel(params)
        message = self.workspace.message(channel.id, params.req("timestamp", "no_item_specified"))
        if message is None:
            raise ApiError("message_not_found")
        return {
            "type": "message",
            "channel": channel.id,
            "message": message.to_api(self._team_id),
        }

    # --- conversations ---------------------------------------------------------------------------

    def conversations_list(self, params: Params) -> JSON:
        types = set((params.opt("types") or "public_channel").split(","))
        bot = self.workspace.bot_user.id
        chosen = [
            c
            for c in self.workspace.channels.values()
            if ("im" in types and c.is_im)
            or ("public_channel" in types and not c.is_im and not c.is_private)
            or ("private_channel" in types and c.is_private and bot in c.members)
        ]
        page, next_cursor = _page(
            chosen,
            lambda c: c.id,
            cursor=params.opt("cursor"),
            limit=params.number("limit", 100),
            prefix="team:",
        )
        return {
            "channels": [c.to_api(viewer=bot) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def users_conversations(self, params: Params) -> JSON:
        """The conversations a user (the bot by default) is a member of, of the given types."""
        types = set((params.opt("types") or "public_channel").split(","))
        user = params.opt("user") or self.workspace.bot_user.id
        if user not in self.workspace.users and user != self.workspace.bot_user.id:
            raise ApiError("user_not_found")
        chosen = [
            c
            for c in self.workspace.channels.values()
            if user in c.members
            and (
                ("im" in types and c.is_im)
                or ("public_channel" in types and not c.is_im and not c.is_private)
                or ("private_channel" in types and c.is_private and not c.is_im)
            )
        ]
        page, next_cursor = _page(
            chosen,
            lambda c: c.id,
            cursor=params.opt("cursor"),
            limit=params.number("limit", 100),
            prefix="user:",
        )
        return {
            "channels": [c.to_api(viewer=user) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def conversations_info(self, params: Params) -> JSON:
        channel = self._channel(params)
        return {"channel": channel.to_api(viewer=self.workspace.bot_user.id)}

    def conversations_join(self, params: Params) -> JSON:
        channel = self._channel(params)
        if channel.is_im or channel.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        bot = self.workspace.bot_user
        info: JSON = {}
        if bot.id in channel.members:
            info = {"warning": "already_in_channel"}
            info["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:
            channel.members.add(bot.id)
            join = self._bot_message(channel, f"<@{bot.id}> has joined the channel", thread_ts=None)
            join.subtype = "channel_join"
            self.workspace.add_message(join)
            self.happenings.message_posted(join)
            self.happenings.member_joined(channel, bot.id)
        return {"channel": channel.to_api(viewer=bot.id), **info}

    def conversations_open(self, params: Params) -> JSON:
        users = [u for u in (params.opt("users") or "").split(",") if u]
        if params.opt("channel"):
            channel = self._channel(params)
        elif len(users) == 1:
            if users[0] not in self.workspace.users:
                raise ApiError("user_not_found")
            channel = self.workspace.dm_with(users[0])
        elif not users:
            raise ApiError("users_list_not_supplied")
        else:
            raise ApiError("not_enough_users" if len(users) < 2 else "method_not_supported")
        if params.flag("return_im"):
            return {"channel": channel.to_api(viewer=self.workspace.bot_user.id)}
        return {"channel": {"id": channel.id}}

    def conversations_history(self, params: Params) -> JSON:
        channel = self._channel(params)
        self._require_member(channel)
        with_metadata = params.flag("include_all_metadata")
        newest_first = [
            m for m in reversed(self.workspace.messages(channel.id)) if _in_range(m.ts, params)
        ]
        page, next_cursor = _page(
            newest_first,
            lambda m: m.ts,
            cursor=params.opt("cursor"),
            limit=params.number("limit", 100),
            prefix="next_ts:",
        )
        return {
            "messages": [m.to_api(self._team_id, include_metadata=with_metadata) for m in page],
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def conversations_replies(self, params: Params) -> JSON:
        channel = self._channel(params)
        self._require_member(channel)
        thread = self.workspace.thread(channel.id, params.req("ts", "thread_not_found"))
        if not thread:
            raise ApiError("thread_not_found")
        parent, replies = thread[0], [m for m in thread[1:] if _in_range(m.ts, params)]
        with_metadata = params.flag("include_all_metadata")
        # Slack repeats the parent at the top of every page of replies.
        page, next_cursor = _page(
            replies,
            lambda m: m.ts,
            cursor=params.opt("cursor"),
            limit=max(1, params.number("limit", 1000) - 1),
            prefix="next_ts:",
        )
        return {
            "messages": [
                m.to_api(self._team_id, include_metadata=with_metadata) for m in [parent, *page]
            ],
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    # --- users -----------------------------------------------------------------------------------

    def users_info(self, params: Params) -> JSON:
        user = self.workspace.users.get(params.req("user", "user_not_found"))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self._team_id)}

    def users_list(self, params: Params) -> JSON:
        users = list(self.workspace.users.values())
        page, next_cursor = _page(
            users,
            lambda u: u.id,
            cursor=params.opt("cursor"),
            limit=params.number("limit", 200),
            prefix="users:",
        )
        return {
            "members": [u.to_api(self._team_id) for u in page],
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    # --- views -----------------------------------------------------------------------------------

    def _view_body(self, params: Params, kind: str | None) -> JSON:
        view = params.obj("view")
        errors = view_errors(view)
        if errors:
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        assert isinstance(view, dict)
        if kind is not None and view.get("type") != kind:
            raise ApiError("invalid_arguments")
        body = dict(view)
        body["blocks"] = _with_generated_ids(list(view.get("blocks", [])))
        return body

    def _take_trigger(self, params: Params) -> str:
        trigger_id = params.req("trigger_id", "invalid_trigger_id")
        trigger = self.workspace.triggers.pop(trigger_id, None)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if time.time() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        return trigger.user

    def _store_view(self, user: str, body: JSON, view_id: str | None = None) -> View:
        view = View(
            id=view_id or self.workspace.next_view_id(),
            user=user,
            type=str(body["type"]),
            body=body,
            hash=f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            external_id=body.get("external_id"),
        )
        self.workspace.views[view.id] = view
        self.workspace.touch()
        return view

    def views_publish(self, params: Params) -> JSON:
        user_id = params.req("user_id", "invalid_arguments")
        if user_id not in self.workspace.users:
            raise ApiError("user_not_found")
        body = self._view_body(params, "home")
        current = self.workspace.home_views.get(user_id)
        expected_hash = params.opt("hash")
        if current and expected_hash and self.workspace.views[current].hash != expected_hash:
            raise ApiError("hash_conflict")
        view = self._store_view(user_id, body, current)
        self.workspace.home_views[user_id] = view.id
        return {"view": view.to_api(self._team_id)}

    def views_open(self, params: Params) -> JSON:
        body = self._view_body(params, "modal")
        user = self._take_trigger(params)
        view = self._store_view(user, body)
        self.workspace.modal_views[user] = [view.id]
        return {"view": view.to_api(self._team_id)}

    def views_push(self, params: Params) -> JSON:
        body = self._view_body(params, "modal")
        user = self._take_trigger(params)
        stack = self.workspace.modal_views.setdefault(user, [])
        if len(stack) >= 3:
            raise ApiError("push_limit_reached")
        view = self._store_view(user, body)
        stack.append(view.id)
        return {"view": view.to_api(self._team_id)}

    def views_update(self, params: Params) -> JSON:
        view_id, external_id = params.opt("view_id"), params.opt("external_id")
        if view_id is None and external_id is None:
            raise ApiError("invalid_arguments")
        views = self.workspace.views
        found = views.get(view_id or "") or next(
            (v for v in views.values() if external_id and v.external_id == external_id), None
        )
        if found is None:
            raise ApiError("not_found")
        expected_hash = params.opt("hash")
        if expected_hash and found.hash != expected_hash:
            raise ApiError("hash_conflict")
        view = self._store_view(found.user, self._view_body(params, found.type), found.id)
        return {"view": view.to_api(self._team_id)}

    # --- assistant threads -----------------------------------------------------------------------

    def _assistant_thread_key(self, params: Params) -> tuple[str, str]:
        channel = self._channel(params, "channel_id")
        thread_ts = params.req("thread_ts", "invalid_thread_ts")
        if self.workspace.message(channel.id, thread_ts) is None:
            raise ApiError("invalid_thread_ts")
        return channel.id, thread_ts

    def assistant_threads_set_status(self, params: Params) -> JSON:
        channel_id, thread_ts = self._assistant_thread_key(params)
        if "status" not in params.values:
            raise ApiError("invalid_arguments")
        status = params.opt("status") or ""
        loading = params.obj("loading_messages") or []
        if not isinstance(loading, list) or len(loading) > 10:
            raise ApiError("invalid_arguments")
        thread = self.workspace.assistant_thread_for(channel_id, thread_ts)
        thread.status = status
        thread.loading_messages = [str(m) for m in loading]
        thread.status_history.append(status)
        self.workspace.touch()
        return {}

    def files_info(self, params: Params) -> JSON:
        found = self.workspace.files.get(params.req("file"))
        if found is None:
            raise ApiError("file_not_found")
        return {"file": found.to_api(self._team_id, self.base_url())}

    def assistant_threads_set_title(self, params: Params) -> JSON:
        channel_id, thread_ts = self._assistant_thread_key(params)
        thread = self.workspace.assistant_thread_for(channel_id, thread_ts)
        thread.title = params.req("title")
        self.workspace.touch()
        return {}

    def assistant_threads_set_suggested_prompts(self, params: Params) -> JSON:
        channel = self._channel(params, "channel_id")
        thread_ts = params.opt("thread_ts")
        if thread_ts is None:
            raise ApiError("invalid_thread_ts")
        if self.workspace.message(channel.id, thread_ts) is None:
            raise ApiError("invalid_thread_ts")
        prompts = params.obj("prompts")
        valid = isinstance(prompts, list) and 0 < len(prompts) <= 4
        if not valid or not all(
            isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts
        ):
            raise ApiError("invalid_arguments")
        thread = self.workspace.assistant_thread_for(channel.id, thread_ts)
        thread.suggested_prompts = [dict(p) for p in prompts]
        thread.prompts_title = params.opt("title")
        self.workspace.touch()
        return {}
