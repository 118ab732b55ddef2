"""FakeSlack: the Web API, event delivery and Socket Mode of a sandbox workspace, on loopback."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from sandbox.slack.blocks import find_action
from sandbox.slack.delivery import Courier, Delivery, SocketModeHub
from sandbox.slack.events import (
    DEFAULT_SUBSCRIPTIONS,
    action_from_element,
    app_mention_event,
    block_actions_payload,
    event_callback,
    message_changed_event,
    message_deleted_event,
    message_event,
    message_subscription,
    slash_command_form,
)
from sandbox.slack.web_api import DEFAULT_SCOPES, ApiCall, Fault, WebApi
from sandbox.slack.wire import random_id
from sandbox.slack.workspace import (
    Channel,
    Ephemeral,
    Message,
    SandboxError,
    SlackFile,
    Trigger,
    Workspace,
)

JSON = dict[str, Any]

logger = logging.getLogger(__name__)


@dataclass
class PostResult:
    """What a person's action stored, and the events Slack sent the app because of it."""

    ts: str
    channel: str
    deliveries: list[Delivery] = field(default_factory=list)
    message: Message | None = None


@dataclass
class ResponseUrlPost:
    """One POST the app made to a response_url the fake handed out."""

    url: str
    body: JSON
    at: float
    kind: Literal["commands", "actions"]
    status: int = 200


@dataclass
class AssistantThreadStart:
    channel_id: str
    thread_ts: str
    delivery: Delivery


@dataclass
class _ResponseTarget:
    url: str
    kind: Literal["commands", "actions"]
    user: str
    channel: str
    message_ts: str | None = None
    thread_ts: str | None = None
    uses: int = 0


# Slack lets an app use a response_url five times (within 30 minutes).
RESPONSE_URL_USES = 5


class _BotActivity:
    """Turns the app's own Web API writes into the events Slack would send back to the app."""

    def __init__(self, fake: FakeSlack) -> None:
        self._fake = fake

    def message_posted(self, message: Message) -> None:
        self._fake._spawn_events(self._fake._events_for_new_message(message))

    def message_changed(self, message: Message, previous: JSON) -> None:
        self._fake._spawn_events(self._fake._events_for_change(message, previous))

    def message_deleted(self, channel: Channel, previous: JSON) -> None:
        self._fake._spawn_events(self._fake._events_for_deletion(channel, previous))

    def member_joined(self, channel: Channel, user_id: str) -> None:
        self._fake._spawn_events(self._fake._events_for_join(channel, user_id))


class FakeSlack:
    """A local Slack workspace for pmteam: real HTTP and WebSocket, Slack's wire formats."""

    def __init__(
        self,
        *,
        signing_secret: str = "sandbox-secret",
        token: str | None = None,
        app_token: str | None = None,
        seed: bool = True,
        ack_timeout: float = 3.0,
        retry_delays: Sequence[float] = (0.0, 1.0, 2.0),
        max_retries: int = 3,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        subscriptions: Iterable[str] = DEFAULT_SUBSCRIPTIONS,
        verification_token: str = "sandbox-verification-token",
        trigger_ttl: float = 3.0,
    ) -> None:
        self.signing_secret = signing_secret
        self.verification_token = verification_token
        self.workspace = Workspace(seed=seed)
        # The Events API subscriptions of the app, e.g. {"app_mention", "message.channels"}.
        self.subscriptions: set[str] = set(subscriptions)
        self.deliveries: list[Delivery] = []
        self.responses: list[ResponseUrlPost] = []
        assert self.workspace.bot_user.app_id is not None
        self.socket_mode = SocketModeHub(app_id=self.workspace.bot_user.app_id)
        self.api = WebApi(
            workspace=self.workspace,
            happenings=_BotActivity(self),
            hub=self.socket_mode,
            base_url=lambda: self.url,
            token=token,
            app_token=app_token,
            scopes=scopes,
            trigger_ttl=trigger_ttl,
        )
        self._courier = Courier(
            signing_secret=signing_secret,
            hub=self.socket_mode,
            ack_timeout=ack_timeout,
            retry_delays=retry_delays,
            max_retries=max_retries,
        )
        self._envelopes: dict[str, JSON] = {}
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._address: tuple[str, int] | None = None
        # Built now, so the sandbox page can add its routes before start().
        self.web_app = web.Application()
        self.web_app.router.add_route("GET", "/api/{method}", self.api.handle)
        self.web_app.router.add_route("POST", "/api/{method}", self.api.handle)
        self.web_app.router.add_get("/socket-mode", self.socket_mode.handle)
        router = self.web_app.router
        router.add_post("/hooks/{kind}/{team}/{id}/{secret}", self._handle_response_url)
        self.web_app.router.add_get("/archives/{channel}/{p}", self._handle_permalink)
        self.web_app.router.add_get("/files-pri/{key}/{name}", self._handle_file)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self._address = (host, sock.getsockname()[1])
        self._runner = web.AppRunner(self.web_app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        await self._courier.start()
        logger.info("fake Slack listening on %s (Web API at %s)", self.url, self.api_url)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.socket_mode.close_all()
        await self._courier.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._address is None:
            raise RuntimeError("FakeSlack is not started")
        host, port = self._address
        # A wildcard bind is reached through loopback.
        shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def port(self) -> int:
        if self._address is None:
            raise RuntimeError("FakeSlack is not started")
        return self._address[1]

    # --- what the app did -------------------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        return self.api.calls

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.api.calls if c.method == method]

    def inject(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int = 1,
        error: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        lose_response: bool = False,
        when: Callable[[JSON], bool] | None = None,
        after: Callable[[ApiCall], Awaitable[None]] | None = None,
    ) -> Fault:
        """Make the next `times` calls to `method` ("*" = any) fail or slow down.

        status=429 answers "ratelimited" with Retry-After; another status (e.g. 500) answers
        that HTTP status; error="..." answers HTTP 200 ok:false; delay adds latency first;
        lose_response=True carries the call out, then drops the connection unanswered.
        when=... limits the fault to calls whose arguments it accepts; after=... is awaited
        once the call is carried out, before its answer (to stop or kill the caller right then).
        times=None keeps the fault until clear_faults().
        """
        if status is None and error is None and not delay and not lose_response and not after:
            raise ValueError("inject needs a status, an error, a delay, lose_response or after")
        fault = Fault(
            method=method,
            status=status,
            retry_after=retry_after,
            error=error,
            delay=delay,
            times=times,
            lose_response=lose_response,
            when=when,
            after=after,
        )
        self.api.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.api.faults.clear()

    def set_retry_schedule(self, delays: Sequence[float], max_retries: int) -> None:
        """How Slack retries an event the app didn't acknowledge (or couldn't be reached for)."""
        self._courier.retry_delays = tuple(delays) or (0.0,)
        self._courier.max_retries = max_retries

    async def drop_socket_connections(self) -> None:
        """Slack closes every Socket Mode connection (as on a server restart)."""
        await self.socket_mode.close_all()

    # --- event delivery configuration -------------------------------------------------------

    def set_event_target(self, url: str | None) -> None:
        """The app's request URL (e.g. http://127.0.0.1:3000/slack/events) for signed HTTP."""
        self._courier.target_url = url

    @property
    def event_target(self) -> str | None:
        return self._courier.target_url

    # --- people acting in the workspace -------------------------------------------------------

    async def post_as_user(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        thread_ts: str | None = None,
        *,
        blocks: list[JSON] | None = None,
        files: Sequence[tuple[str, str, bytes]] = (),
    ) -> PostResult:
        """A person posts, optionally sharing `files` as (name, mimetype, content); the app
        gets the app_mention / message events Slack would send."""
        channel = self._channel_of(user_id, channel_id)
        user = self.workspace.user(user_id)
        shared = [
            self._add_file(user.id, name, mimetype, content) for name, mimetype, content in files
        ]
        message = Message(
            channel=channel.id,
            ts=self.workspace.next_ts(),
            text=text,
            user=user.id,
            thread_ts=thread_ts,
            blocks=blocks,
            client_msg_id=str(uuid.uuid4()),
            subtype="file_share" if shared else None,
            files=shared,
            files_base_url=self.url if shared else "",
        )
        self.workspace.add_message(message)
        deliveries = await self._deliver_events(self._events_for_new_message(message))
        return PostResult(ts=message.ts, channel=channel.id, deliveries=deliveries, message=message)

    async def edit_as_user(self, user_id: str, channel_id: str, ts: str, text: str) -> PostResult:
        """A person edits their message: a `message_changed` event (never a new app_mention)."""
        channel = self._channel_of(user_id, channel_id)
        message = self._authored(user_id, channel, ts)
        previous = message.to_api(self.workspace.team.id, include_metadata=False)
        message.text, message.blocks = text, None
        message.edited = {"user": user_id, "ts": self.workspace.next_ts()}
        self.workspace.touch()
        deliveries = await self._deliver_events(self._events_for_change(message, previous))
        return PostResult(ts=ts, channel=channel.id, deliveries=deliveries, message=message)

    async def delete_as_user(self, user_id: str, channel_id: str, ts: str) -> PostResult:
        """A person deletes their message: a `message_deleted` event."""
        channel = self._channel_of(user_id, channel_id)
        message = self._authored(user_id, channel, ts)
        previous = message.to_api(self.workspace.team.id, include_metadata=False)
        self.workspace.remove_message(message)
        deliveries = await self._deliver_events(self._events_for_deletion(channel, previous))
        return PostResult(ts=ts, channel=channel.id, deliveries=deliveries)

    async def join_channel(self, user_id: str, channel_id: str) -> PostResult:
        """A person joins a channel: a `channel_join` message (and member_joined_channel)."""
        channel = self.workspace.channel(channel_id)
        self.workspace.user(user_id)
        if channel.is_im:
            raise SandboxError("nobody joins a DM")
        channel.members.add(user_id)
        message = Message(
            channel=channel.id,
            ts=self.workspace.next_ts(),
            text=f"<@{user_id}> has joined the channel",
            user=user_id,
            subtype="channel_join",
        )
        self.workspace.add_message(message)
        events = self._events_for_new_message(message) + self._events_for_join(channel, user_id)
        deliveries = await self._deliver_events(events)
        return PostResult(ts=message.ts, channel=channel.id, deliveries=deliveries, message=message)

    async def slash_command(
        self, user_id: str, channel_id: str, command: str = "/pm", text: str = "status"
    ) -> Delivery:
        """A person runs a slash command; the app's immediate answer is kept as `ack_body`."""
        channel = self._channel_of(user_id, channel_id, must_be_member=False)
        form = slash_command_form(
            self.workspace,
            user_id=user_id,
            channel=channel,
            command=command,
            text=text,
            response_url=self._response_url("commands", user_id, channel.id),
            trigger_id=self.workspace.issue_trigger(user_id),
            verification_token=self.verification_token,
        )
        delivery = await self._deliver(Delivery(kind="slash_commands", type=command, payload=form))
        if delivery.acked:
            self._show_reply(delivery.ack_body, user_id, channel.id, source="ack")
        return delivery

    async def interact(self, payload: JSON) -> Delivery:
        """Send a raw interactivity payload (form `payload=<json>`, or a Socket Mode envelope)."""
        trigger_id = payload.get("trigger_id")
        user = payload.get("user") or {}
        if isinstance(trigger_id, str) and trigger_id not in self.workspace.triggers:
            user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
            self.workspace.triggers[trigger_id] = Trigger(trigger_id, user_id, time.time())
        kind = str(payload.get("type", ""))
        return await self._deliver(Delivery(kind="interactive", type=kind, payload=dict(payload)))

    async def click_button(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        *,
        selected_option: JSON | None = None,
    ) -> Delivery:
        """A person clicks a button (or other element) of a stored message or ephemeral message;
        for a select, `selected_option` is the option they chose; for feedback_buttons, `value`
        must be the clicked side's value (no value is refused with a SandboxError)."""
        channel = self._channel_of(user_id, channel_id, must_be_member=False)
        message = self.workspace.message(channel.id, message_ts)
        source: Message | Ephemeral | None = message or self._ephemeral(channel.id, message_ts)
        if source is None or (isinstance(source, Ephemeral) and source.user != user_id):
            raise SandboxError(f"{user_id} sees no message {message_ts} in {channel.id}")
        found = find_action(source.blocks or [], action_id)
        if found is None:
            raise SandboxError(f"no element with action_id {action_id!r} on {message_ts}")
        block_id, element = found
        thread_ts = source.thread_ts
        container: JSON = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel.id,
            "is_ephemeral": message is None,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload = block_actions_payload(
            self.workspace,
            user_id=user_id,
            container=container,
            action=action_from_element(
                element, block_id=block_id, value=value, selected_option=selected_option
            ),
            trigger_id=self.workspace.issue_trigger(user_id),
            verification_token=self.verification_token,
            response_url=self._response_url(
                "actions", user_id, channel.id, message_ts=message_ts, thread_ts=thread_ts
            ),
            channel=channel,
            message=message,
        )
        delivery = Delivery(kind="interactive", type="block_actions", payload=payload)
        return await self._deliver(delivery)

    async def click_view_button(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        *,
        view_id: str | None = None,
        selected_option: JSON | None = None,
    ) -> Delivery:
        """A person clicks an element in a view: their App Home unless `view_id` says otherwise."""
        view_id = view_id or self.workspace.home_views.get(user_id)
        view = self.workspace.views.get(view_id or "")
        if view is None:
            raise SandboxError(f"no view to click for {user_id}")
        found = find_action(view.body.get("blocks", []), action_id)
        if found is None:
            raise SandboxError(f"no element with action_id {action_id!r} in view {view.id}")
        block_id, element = found
        payload = block_actions_payload(
            self.workspace,
            user_id=user_id,
            container={"type": "view", "view_id": view.id},
            action=action_from_element(
                element, block_id=block_id, value=value, selected_option=selected_option
            ),
            trigger_id=self.workspace.issue_trigger(user_id),
            verification_token=self.verification_token,
            view=view.to_api(self.workspace.team.id),
        )
        delivery = Delivery(kind="interactive", type="block_actions", payload=payload)
        return await self._deliver(delivery)

    async def open_app_home(self, user_id: str, tab: str = "home") -> Delivery:
        """A person opens the app's Home tab: `app_home_opened` (with their current view)."""
        dm = self.workspace.dm_with(user_id)
        event: JSON = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": dm.id,
            "tab": tab,
            "event_ts": self.workspace.next_ts(),
        }
        view = self.workspace.home_view(user_id)
        if view is not None and tab == "home":
            event["view"] = view
        return await self._deliver_subscribed(event, "app_home_opened")

    async def start_assistant_thread(
        self, user_id: str, *, context_channel_id: str | None = None
    ) -> AssistantThreadStart:
        """A person opens a new thread in the app's assistant container."""
        dm = self.workspace.dm_with(user_id)
        bot = self.workspace.bot_user
        # Slack itself creates the thread's root message, on the app's behalf.
        root = Message(
            channel=dm.id,
            ts=self.workspace.next_ts(),
            text="",
            user=bot.id,
            bot_id=bot.bot_id,
            app_id=bot.app_id,
            subtype="assistant_app_thread",
        )
        self.workspace.add_message(root)
        thread = self.workspace.assistant_thread_for(dm.id, root.ts)
        thread.user = user_id
        thread.context = self._assistant_context(context_channel_id)
        event: JSON = {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user_id,
                "context": thread.context,
                "channel_id": dm.id,
                "thread_ts": root.ts,
            },
            "event_ts": self.workspace.next_ts(),
        }
        delivery = await self._deliver_subscribed(event, "assistant_thread_started")
        return AssistantThreadStart(channel_id=dm.id, thread_ts=root.ts, delivery=delivery)

    async def change_assistant_context(
        self, user_id: str, channel_id: str, thread_ts: str, context_channel_id: str | None
    ) -> Delivery:
        """The person switches channels while the assistant thread is open."""
        thread = self.workspace.assistant_thread_for(channel_id, thread_ts)
        thread.context = self._assistant_context(context_channel_id)
        self.workspace.touch()
        event: JSON = {
            "type": "assistant_thread_context_changed",
            "assistant_thread": {
                "user_id": user_id,
                "context": thread.context,
                "channel_id": channel_id,
                "thread_ts": thread_ts,
            },
            "event_ts": self.workspace.next_ts(),
        }
        return await self._deliver_subscribed(event, "assistant_thread_context_changed")

    async def deliver_event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> Delivery:
        """Deliver a raw event; an `event_id` already delivered is resent as the same envelope."""
        event = dict(event)
        event.setdefault("event_ts", self.workspace.next_ts())
        return await self._deliver_event(
            event, event_id=event_id, retry_num=retry_num or 0, retry_reason=retry_reason
        )

    # --- test helpers ----------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, *, interval: float = 0.01
    ) -> None:
        """Poll until `predicate()` is true; TimeoutError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                raise TimeoutError(f"condition still false after {timeout}s")
            await asyncio.sleep(interval)

    async def drain(self) -> None:
        """Wait for the events set off by the app's own posts (delivered in the background)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def dm_channel(self, user_id: str) -> str:
        return self.workspace.dm_with(user_id).id

    # --- events -----------------------------------------------------------------------------------

    def _events_for_new_message(self, message: Message) -> list[JSON]:
        channel = self.workspace.channel(message.channel)
        bot = self.workspace.bot_user
        if bot.id not in channel.members:
            return []
        events: list[JSON] = []
        mentioned = f"<@{bot.id}>" in message.text
        if (
            mentioned
            and not channel.is_im
            and message.subtype in (None, "file_share")
            and message.user != bot.id
            and "app_mention" in self.subscriptions
        ):
            events.append(app_mention_event(self.workspace, message))
        if message_subscription(channel) in self.subscriptions:
            events.append(message_event(self.workspace, message))
        return events

    def _events_for_change(self, message: Message, previous: JSON) -> list[JSON]:
        channel = self.workspace.channel(message.channel)
        if not self._hears(channel):
            return []
        ts = self.workspace.next_ts()
        return [message_changed_event(self.workspace, message, previous, event_ts=ts)]

    def _events_for_deletion(self, channel: Channel, previous: JSON) -> list[JSON]:
        if not self._hears(channel):
            return []
        ts = self.workspace.next_ts()
        return [message_deleted_event(self.workspace, channel, previous, event_ts=ts)]

    def _events_for_join(self, channel: Channel, user_id: str) -> list[JSON]:
        bot = self.workspace.bot_user
        if "member_joined_channel" not in self.subscriptions or bot.id not in channel.members:
            return []
        return [
            {
                "type": "member_joined_channel",
                "user": user_id,
                "channel": channel.id,
                "channel_type": "G" if channel.is_private else "C",
                "team": self.workspace.team.id,
                "event_ts": self.workspace.next_ts(),
            }
        ]

    def _hears(self, channel: Channel) -> bool:
        bot = self.workspace.bot_user.id
        return bot in channel.members and message_subscription(channel) in self.subscriptions

    def _spawn_events(self, events: list[JSON]) -> None:
        if events:
            self._spawn(self._deliver_events(events))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver_events(self, events: list[JSON]) -> list[Delivery]:
        # Slack sends each event on its own; one slow ack does not hold up the others.
        return list(await asyncio.gather(*(self._deliver_event(e) for e in events)))

    async def _deliver_event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
    ) -> Delivery:
        event_id = event_id or random_id("Ev0", 8)
        envelope = self._envelopes.get(event_id)
        if envelope is None:
            envelope = event_callback(
                self.workspace,
                event,
                event_id=event_id,
                verification_token=self.verification_token,
            )
            self._envelopes[event_id] = envelope
        kind = str(envelope["event"].get("type"))
        delivery = Delivery(kind="events_api", type=kind, payload=envelope, event_id=event_id)
        return await self._deliver(delivery, retry_num=retry_num, retry_reason=retry_reason)

    async def _deliver_subscribed(self, event: JSON, subscription: str) -> Delivery:
        if subscription in self.subscriptions:
            return await self._deliver_event(event)
        # Not subscribed: Slack sends nothing, and nothing is recorded as delivered.
        return Delivery(kind="events_api", type=str(event["type"]), payload={"event": event})

    async def _deliver(
        self, delivery: Delivery, *, retry_num: int = 0, retry_reason: str | None = None
    ) -> Delivery:
        self.deliveries.append(delivery)
        await self._courier.deliver(delivery, retry_num=retry_num, retry_reason=retry_reason)
        if delivery.transport == "none":
            logger.debug("nowhere to deliver %s %s", delivery.kind, delivery.type)
        return delivery

    # --- response_url, permalinks -----------------------------------------------------------

    def _response_url(
        self,
        kind: Literal["commands", "actions"],
        user_id: str,
        channel_id: str,
        *,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        key = secrets.token_hex(12)
        number = len(self._response_targets) + 1
        url = f"{self.url}/hooks/{kind}/{self.workspace.team.id}/{number}/{key}"
        self._response_targets[key] = _ResponseTarget(
            url=url,
            kind=kind,
            user=user_id,
            channel=channel_id,
            message_ts=message_ts,
            thread_ts=thread_ts,
        )
        return url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        target = self._response_targets.get(request.match_info["secret"])
        if target is None:
            return web.Response(status=404, text="no_service")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        target.uses += 1
        post = ResponseUrlPost(url=target.url, body=body, at=time.time(), kind=target.kind)
        self.responses.append(post)
        if target.uses > RESPONSE_URL_USES:
            post.status = 404
            return web.Response(status=404, text="used_url")
        self._apply_response(target, body)
        return web.json_response({"ok": True})

    def _apply_response(self, target: _ResponseTarget, body: JSON) -> None:
        """What Slack shows for a response_url post: replace, delete, in_channel or ephemeral."""
        ts = target.message_ts or ""
        original = self.workspace.message(target.channel, ts)
        ephemeral = self._ephemeral(target.channel, ts)
        if body.get("delete_original") and original is not None:
            self.workspace.remove_message(original)
        elif body.get("delete_original") and ephemeral is not None:
            self.workspace.ephemeral_messages.remove(ephemeral)
            self.workspace.touch()
        elif body.get("replace_original") and (original or ephemeral) is not None:
            replaced = original or ephemeral
            assert replaced is not None
            replaced.text = str(body.get("text", replaced.text))
            if "blocks" in body:
                replaced.blocks = body["blocks"] or None
            if original is not None:
                bot = self.workspace.bot_user.id
                original.edited = {"user": bot, "ts": self.workspace.next_ts()}
            self.workspace.touch()
        else:
            thread_ts = body.get("thread_ts") or target.thread_ts
            self._show_reply(
                body, target.user, target.channel, source="response_url", thread_ts=thread_ts
            )

    def _show_reply(
        self,
        body: Any,
        user_id: str,
        channel_id: str,
        *,
        source: Literal["ack", "response_url"],
        thread_ts: str | None = None,
    ) -> None:
        if isinstance(body, str):
            body = {"text": body}
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return
        text = str(body.get("text", ""))
        blocks = body.get("blocks") or None
        if body.get("response_type") == "in_channel":
            bot = self.workspace.bot_user
            message = Message(
                channel=channel_id,
                ts=self.workspace.next_ts(),
                text=text,
                user=bot.id,
                bot_id=bot.bot_id,
                app_id=bot.app_id,
                bot_profile=bot.bot_profile(self.workspace.team.id),
                blocks=blocks,
                thread_ts=thread_ts,
            )
            self.workspace.add_message(message)
            self._spawn_events(self._events_for_new_message(message))
        else:
            ephemeral = Ephemeral(
                channel=channel_id,
                user=user_id,
                ts=self.workspace.next_ts(),
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                source=source,
            )
            self.workspace.add_ephemeral(ephemeral)

    async def _handle_permalink(self, request: web.Request) -> web.Response:
        channel_id, p = request.match_info["channel"], request.match_info["p"]
        digits = p.removeprefix("p")
        ts = f"{digits[:-6]}.{digits[-6:]}"
        message = self.workspace.message(channel_id, ts)
        if message is None:
            return web.Response(status=404, text="message not found")
        return web.json_response(
            {"channel": channel_id, "message": message.to_api(self.workspace.team.id)}
        )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """A file's bytes, for a request carrying the bot token; without it Slack answers
        with its sign-in page, not an error status, so that is what this does too."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        expected = self.api.token
        if not token.startswith("xoxb-") or (expected is not None and token != expected):
            return web.Response(
                status=200, content_type="text/html", text="<html><body>Sign in</body></html>"
            )
        team_file = request.match_info["key"]
        found = self.workspace.files.get(team_file.split("-", 1)[-1])
        if found is None or found.name != request.match_info["name"]:
            return web.Response(status=404, text="file_not_found")
        self.api.calls.append(
            ApiCall(
                method="files.download",
                params={"file": found.id},
                token=token,
                at=time.monotonic(),
                http_method="GET",
                response={"ok": True},
            )
        )
        return web.Response(body=found.content, content_type=found.mimetype)

    def _add_file(self, user_id: str, name: str, mimetype: str, content: bytes) -> SlackFile:
        file = SlackFile(
            id=f"F{len(self.workspace.files) + 1:09d}",
            name=name,
            mimetype=mimetype,
            filetype=name.rsplit(".", 1)[-1].lower() if "." in name else "binary",
            content=content,
            user=user_id,
            created=int(time.time()),
        )
        self.workspace.files[file.id] = file
        return file

    # --- helpers ------------------------------------------------------------------------------

    def _channel_of(self, user_id: str, channel_id: str, *, must_be_member: bool = True) -> Channel:
        self.workspace.user(user_id)
        channel = self.workspace.channel(channel_id)
        if must_be_member and user_id not in channel.members:
            raise SandboxError(f"{user_id} is not a member of {channel.id}")
        return channel

    def _ephemeral(self, channel_id: str, ts: str) -> Ephemeral | None:
        return next((e for e in self.workspace.ephemerals(channel_id) if e.ts == ts), None)

    def _authored(self, user_id: str, channel: Channel, ts: str) -> Message:
        message = self.workspace.message(channel.id, ts)
        if message is None or message.user != user_id or message.bot_id is not None:
            raise SandboxError(f"{user_id} has no message {ts} in {channel.id}")
        return message

    def _assistant_context(self, channel_id: str | None) -> JSON:
        if channel_id is None:
            return {}
        return {
            "channel_id": channel_id,
            "team_id": self.workspace.team.id,
            "enterprise_id": None,
        }
